"""The registries that glasspipe's plugins fill in, on the ground floor.

A model, a label, a descriptor set and a dataset format is each one module that declares its settings (a
JSON-schema fragment whose ``default`` keywords are the one place its defaults live), its cross-key checks and
its callables, and registers itself here. This module imports no feature of glasspipe, so that the config
layer (glasspipe.config) can assemble the config schema, the defaults, the checks and the workflow's wildcards
from the registries without importing a feature: the features import *this*, never the other way round.

The registries:

- :data:`MODELS`: name -> :class:`ModelSpec` (what a model reads, its settings schema, its check, train and
  predict); the built-in ones are the modules of :mod:`glasspipe.learn.zoo`.
- :data:`LABELS`: name -> ``glasspipe.labels.registry.LabelSpec`` (grid, columns, compute), registered by the
  modules of :mod:`glasspipe.labels`.
- :data:`DESCRIPTOR_SETS`: name -> ``glasspipe.structure.descriptors.DescriptorSet`` (defaults, schema, compute).
- :data:`FORMATS`: name -> ``glasspipe.importers.Importer`` (file pattern, parse), the dataset formats.
- :data:`CHECKS`: cross-key checks of whole config sections that belong to no single plugin (the transfer
  and learning-curve sections), each ``check(config)`` raising ConfigError.

Who fills them: importing :mod:`glasspipe.plugins_all` imports every plugin module once (the Snakefile, the
CLI and the tests do); :func:`require` refuses to answer from registries that were never filled, so that a
caller that forgot it gets a message instead of a schema without models.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The file a training job writes last (atomically): the workflow takes it as the sign that a model directory
# is complete. Named here because the layout (ground floor) and every trainer need it.
TRAIN_LOG = "train_log.parquet"

# Label grids: 'label' labels live at the isoconf label times, 'dense' labels on the isoconf dense window.
LABEL_GRID = "label"
DENSE_GRID = "dense"

MODELS: dict[str, ModelSpec] = {}
LABELS: dict[str, Any] = {}
DESCRIPTOR_SETS: dict[str, Any] = {}
FORMATS: dict[str, Any] = {}
CHECKS: list[Callable[[dict], None]] = []

_state = {"generation": 0, "loaded": False}


def generation() -> int:
    """A number that changes whenever a registry changes: the config schema is cached per generation."""
    return _state["generation"]


def _changed() -> None:
    _state["generation"] += 1


def mark_loaded() -> None:
    """Called once by glasspipe.plugins_all after it imported every plugin module."""
    _state["loaded"] = True
    _changed()


def require() -> None:
    """Raise RuntimeError unless glasspipe.plugins_all has filled the registries."""
    if not _state["loaded"]:
        raise RuntimeError(
            "glasspipe's plugins (models, labels, descriptor sets, dataset formats) are not loaded: "
            "`import glasspipe.plugins_all` first (the Snakefile, the CLI and the tests do)"
        )


# ----------------------------------------------------------------------------------------------- models


class Lazy:
    """A callable named by 'module:attribute', imported on its first call.

    A model's module names its training and prediction functions this way so that reading the registry (the
    Snakefile, every workflow job's config validation) does not import torch and the model's code.
    """

    def __init__(self, reference: str):
        module, _, attribute = reference.partition(":")
        if not module or not attribute:
            raise ValueError(f"a lazy callable is 'module:attribute', not {reference!r}")
        self.reference = reference
        self._function: Callable | None = None

    def __call__(self, *args, **kwargs):
        if self._function is None:
            module, _, attribute = self.reference.partition(":")
            self._function = getattr(importlib.import_module(module), attribute)
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.reference!r})"


def _callable(value: Callable | str | None) -> Callable | None:
    return Lazy(value) if isinstance(value, str) else value


# Settings every model section has, whatever the model: which label(s) it learns and whether it is trained.
TARGET_SCHEMA: dict = {
    "oneOf": [
        {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        },
    ],
    "default": "propensity",
    "description": (
        "the label the model learns: a label-time column of the labels table (propensity, bond_breaking, "
        "cage_propensity, disp_x, ...; glasspipe.labels), enabled in labels. A list trains one model per label: "
        "the first keeps the model's name (models/<name>/), each further label is the run '<name>.<label>' "
        "(models/<name>.<label>/, metrics/<name>.<label>.parquet)\n"
    ),
}

# The importance-weighted loss (glasspipe.learn.training.weights), shared by the models that train on a loss.
LOSS_WEIGHTING_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "description": (
        "importance-weighted loss for skewed labels (p_hop, CWT; Pezzicoli's thesis eq. 2.20, "
        "glasspipe.learn.training.weights): each training row's squared residual is weighted by w = 1 / p(y)^alpha, "
        "p(y) "
        "the probability of the bin of a histogram of the TRAINING labels (per label time) holding y; weights "
        "capped at max_weight times the weight of the most common bin, then normalised to mean 1 over the "
        "training rows. alpha = 0 (default) is the plain loss\n"
    ),
    "properties": {
        "alpha": {
            "type": "number",
            "minimum": 0,
            "default": 0.0,
            "description": "exponent (0 = off, 1 = every bin the same total weight)",
        },
        "n_bins": {
            "type": "integer",
            "minimum": 1,
            "default": 50,
            "description": "equal-width bins over the training labels' range, per label time",
        },
        "max_weight": {
            "type": "number",
            "minimum": 1,
            "default": 100.0,
            "description": "largest weight relative to the most common bin's (an isolated outlier would get n^alpha)",
        },
    },
}

# Early stopping for the models whose original trains a fixed number of epochs: no schema default, so that
# configs without the key resolve (and train) exactly as before the option existed; the model's defaults
# hold None (never).
PATIENCE_OFF_SCHEMA: dict = {
    "type": ["integer", "null"],
    "minimum": 1,
    "description": (
        "early stopping (glasspipe.learn.training.trainer): stop after this many epochs without a better validation "
        "Pearson; the best epoch is kept. Absent or null (the default): never, all epochs are trained. No schema "
        "default, so that configs without the key resolve, and train, exactly as before the option existed\n"
    ),
}


def defaults_of(schema: dict) -> dict:
    """The defaults an object schema declares, nested objects filled from their own properties' defaults
    (as validation fills them): {'epochs': 100, 'pretrain_denoise': {'epochs': 0, ...}}."""
    out = {}
    for name, sub in schema.get("properties", {}).items():
        if "default" not in sub:
            continue
        value = copy.deepcopy(sub["default"])
        if isinstance(value, dict) and "properties" in sub:
            value = {**defaults_of(sub), **value}
        out[name] = value
    return out


# The keys of a ``models.<name>`` section that the registry adds to every model's own settings: the
# workflow's, not the model's (which label it learns, whether and with how many threads its jobs run, how
# label times are weighted). A model declares none of them; ModelSpec.registry_keys says which it gets.
REGISTRY_KEYS = ("target", "enabled", "threads", "loss_weighting")
# Of those, the keys that say how a job runs, not what it computes: kept out of the job's settings, so that
# changing them reruns nothing (Snakemake reruns a job whose settings changed).
JOB_ONLY_KEYS = ("threads",)


@dataclass(frozen=True)
class ModelSpec:
    """One model.

    name: its config section ``models.<name>`` and its runs' directory names; inputs: 'descriptors' or
    'graph'; gpu: the training job asks for a GPU where the cluster profile gives one; threads: the default of
    the setting ``models.<name>.threads``, the CPU threads of a training job; description: one line for the
    CLI and the docs.

    settings: the JSON-schema properties of the model's own settings, each with its ``default`` (the one
    place it is declared); ``target``, ``enabled``, ``threads`` and, where ``loss_weighting`` is true, the shared
    ``loss_weighting`` block are added by :meth:`section_schema`. extra_defaults: defaults the schema must not
    fill in (a key added later whose absence must keep old configs' settings as they were).
    enabled: whether the model is trained when the config does not say; targets: whether it takes ``target``.
    section_description: the description of the whole ``models.<name>`` section.

    check: ``check(config)`` on the validated config, raising glasspipe.config.ConfigError naming the key.

    train: ``train(train_samples, validation_samples, settings, seed, out_dir)``; ``settings`` is the job's
    part of the config (defaults filled: ``models.<name>``, ``graph`` for graph models, ``split``, ``seed``).
    It must write :data:`TRAIN_LOG` last (atomically). predict: ``predict(model_dir, samples, r_cut=None,
    device='auto')`` returning, per sample, (label times (T,), predictions (N, T)). Either is a callable or a
    'module:function' string, imported on the first call (:class:`Lazy`).
    """

    name: str
    inputs: str
    gpu: bool
    threads: int
    train: Callable[..., None] | str
    predict: Callable[..., list] | str
    description: str
    settings: dict = field(default_factory=dict)
    extra_defaults: dict = field(default_factory=dict)
    enabled: bool = True
    targets: bool = True
    loss_weighting: bool = True
    section_description: str | None = None
    check: Callable[[dict], None] | None = None
    # Where the shared blocks stand among the model's own settings (the schema's and the resolved config's
    # key order): loss_weighting right after enabled unless the model names the setting it follows.
    loss_weighting_after: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "train", _callable(self.train))
        object.__setattr__(self, "predict", _callable(self.predict))

    def section_schema(self) -> dict:
        """The JSON schema of the config section ``models.<name>``."""
        properties: dict = {}
        if self.targets:
            properties["target"] = TARGET_SCHEMA
        properties["enabled"] = {"type": "boolean", "default": self.enabled}
        properties["threads"] = {
            "type": "integer",
            "minimum": 1,
            "default": self.threads,
            "description": "CPU threads of each training job of this model (Snakemake runs as many jobs side by"
            " side as --cores allows: on a few cores, 1-thread jobs two at a time finish the graph models sooner"
            " than 2-thread jobs one at a time). How a job runs, not what it computes: it is no part of the job's"
            " settings, so changing it reruns nothing",
        }
        if self.loss_weighting and self.loss_weighting_after is None:
            properties["loss_weighting"] = LOSS_WEIGHTING_SCHEMA
        for key, sub in self.settings.items():
            properties[key] = sub
            if self.loss_weighting and key == self.loss_weighting_after:
                properties["loss_weighting"] = LOSS_WEIGHTING_SCHEMA
        section = {"type": "object", "additionalProperties": False, "default": {}}
        if self.section_description:
            section["description"] = self.section_description
        section["properties"] = properties
        return copy.deepcopy(section)

    @property
    def registry_keys(self) -> tuple:
        """The keys of :data:`REGISTRY_KEYS` that :meth:`section_schema` adds to this model's section."""
        return tuple(key for key in self.section_schema()["properties"] if key not in self.settings)

    @property
    def defaults(self) -> dict:
        """The model's own settings with their defaults (target, enabled, threads and loss_weighting aside)."""
        return {**defaults_of({"properties": self.settings}), **copy.deepcopy(self.extra_defaults)}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS` (a name registered again replaces the first, for tests and notebooks)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", spec.name):
        raise ValueError(f"model name {spec.name!r}: letters, digits and _ only (it names directories and runs)")
    if spec.inputs not in ("descriptors", "graph"):
        raise ValueError(f"model {spec.name!r}: inputs must be 'descriptors' or 'graph', not {spec.inputs!r}")
    if spec.predict is None or spec.train is None:
        raise ValueError(f"model {spec.name!r} needs a train and a predict callable")
    shared = set(REGISTRY_KEYS) & set(spec.settings)
    if shared:
        raise ValueError(f"model {spec.name!r}: {sorted(shared)} are added by the registry, not declared")
    MODELS[spec.name] = spec
    _changed()
    return spec


def unregister_model(name: str) -> None:
    """Remove a model (tests that register a toy model clean up with this)."""
    MODELS.pop(name, None)
    _changed()


def model(name: str) -> ModelSpec:
    """The registered model ``name``; ValueError naming the known ones otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; glasspipe knows {sorted(MODELS)}")
    return MODELS[name]


# ------------------------------------------------------------------------------- labels, sets, formats


def register_label(spec) -> Any:
    """Add a label (glasspipe.labels.registry.LabelSpec) to :data:`LABELS`."""
    if spec.name in LABELS:
        raise ValueError(f"label {spec.name!r} is registered twice")
    if spec.grid not in (LABEL_GRID, DENSE_GRID):
        raise ValueError(f"label {spec.name!r}: grid {spec.grid!r} is not {LABEL_GRID!r} or {DENSE_GRID!r}")
    LABELS[spec.name] = spec
    _changed()
    return spec


def enabled_labels(labels_section: dict) -> list:
    """The labels switched on in the config section ``labels`` (propensity always), in registration order."""
    return [
        spec for name, spec in LABELS.items() if name == "propensity" or labels_section.get(name, {}).get("enabled")
    ]


def enabled_dense_labels(labels_section: dict) -> list[str]:
    """Names of the enabled labels that live on the isoconf dense window (p_hop, CWT, ...)."""
    return [spec.name for spec in enabled_labels(labels_section) if spec.grid == DENSE_GRID]


def register_format(importer) -> Any:
    """Add a dataset format (an instance of glasspipe.importers.Importer) to :data:`FORMATS`."""
    if importer.name in FORMATS:
        raise ValueError(f"dataset format {importer.name!r} is registered twice")
    FORMATS[importer.name] = importer
    _changed()
    return importer


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def format_files(fmt: str, directory: str | Path) -> list[Path]:
    """The files of dataset format ``fmt`` (its glob pattern) in ``directory``, in natural order (1, 2, 10)."""
    pattern = FORMATS[fmt].pattern
    return sorted((p for p in Path(directory).glob(pattern) if p.is_file()), key=_natural_key)


def register_check(check: Callable[[dict], None]) -> Callable[[dict], None]:
    """Add a cross-key check of the whole config to :data:`CHECKS` (once; usable as a decorator)."""
    if check not in CHECKS:
        CHECKS.append(check)
        _changed()
    return check
