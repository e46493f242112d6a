"""Loading and validating the glasspipe configuration.

The schema of the pipeline's own sections lives once, in ``workflow/schemas/config.schema.yaml`` (shipped
inside the package as ``glasspipe/config.schema.yaml``); the sections of the plugins (each model's
``models.<name>``, each descriptor set's ``structure.sets.<name>``, the dataset formats of ``source.format``)
are declared by the plugins themselves and merged in from the registries of :mod:`glasspipe.plugins`. This
module adds the checks that a JSON schema cannot express (splits that add up, a radial range that fits in the
box; the plugins' own cross-key checks) and the derived quantities every stage needs (box length, label times
on the MD step grid, per-stage settings).

This is the ground floor: it imports no feature module of glasspipe, only the registries. Whoever validates a
config imports :mod:`glasspipe.plugins_all` first (the Snakefile, the CLI and the tests do).
"""

from __future__ import annotations

import copy
import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from glasspipe import datasets, plugins

# The config sections each stage's numbers depend on. Snakemake passes exactly these to a rule as a
# parameter, so that changing a setting reruns the stages that read it and nothing upstream of them.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "init": ("seed", "system", "init"),
    "equilibrate": ("seed", "system", "engine", "equilibrate"),
    "isoconf": ("seed", "system", "engine", "isoconf"),
    # One dataset file per job (passed on its own): the other source keys must not rerun every import.
    "import": ("system", "engine", "source.format", "source.box_length", "source.times"),
    "labels": ("isoconf", "labels"),
    "structure": ("system", "structure"),
    "evaluate": ("n_configurations", "split", "source"),
    "report": (),
}
# Training jobs read the split (which configurations), their model's section and, for graph models, the
# graph section: see train_sections(). Models are listed in glasspipe.plugins.MODELS.

SIMULATE = "simulate"


class ConfigError(ValueError):
    """A configuration key holds a value glasspipe cannot use; the message names the key."""


def schema() -> dict:
    """The config JSON schema, as a dict: the schema file, with the plugins' sections merged in from the
    registries (glasspipe.plugins): every model's ``models.<name>``, every label's ``labels.<name>``, every
    descriptor set's ``structure.sets.<name>`` and the dataset formats of ``source.format``."""
    plugins.require()
    return _schema(plugins.generation())


@cache
def _schema(generation: int) -> dict:
    """schema() for one state of the registries (a plugin registered later gives a new generation)."""
    text = resources.files("glasspipe").joinpath("config.schema.yaml").read_text()
    full = yaml.safe_load(text)
    sets = full["properties"]["structure"]["properties"]["sets"]
    sets["additionalProperties"] = False
    # A set is computed only when the config names it: its own schema must not default it into existence.
    sets["properties"] = {
        name: {k: v for k, v in item.schema.items() if k != "default"} for name, item in plugins.DESCRIPTOR_SETS.items()
    }
    # Each label with settings has its section labels.<name>, beside the stage's own keys (threads, chunks).
    full["properties"]["labels"]["properties"].update(
        {
            name: {"type": "object", "additionalProperties": False, "default": {}, "properties": spec.settings}
            for name, spec in plugins.LABELS.items()
            if spec.settings
        }
    )
    full["properties"]["models"]["properties"] = {name: spec.section_schema() for name, spec in plugins.MODELS.items()}
    full["properties"]["source"]["properties"]["format"]["enum"] = [SIMULATE, *plugins.FORMATS]
    return full


def _with_defaults(validator_class):
    """A jsonschema validator class that fills in ``default`` values while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """A one-line message naming the key, the value found and what is allowed."""
    key = _key_path(error)
    sub = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = key if key != "<top level>" else "the top level"
        # A section of the plugins (models, labels) is unknown when no registered module declares it.
        hint = " (a model outside glasspipe is registered by naming its module in GLASSPIPE_PLUGINS)"
        return f"unknown key(s) {extra} in {where}; allowed keys are {allowed}" + (hint if key == "models" else "")
    if error.validator == "enum":
        return f"config key '{key}' = {error.instance!r} is not allowed; choose one of {error.validator_value}"
    if error.validator == "required":
        return f"config section '{key}' is missing a required key: {error.message}"
    if error.validator == "oneOf":
        return f"config key '{key}' = {error.instance!r} must be a list of positive times or {{start, stop, count}}"
    description = sub.get("description")
    hint = f" ({description.strip()})" if description else ""
    return f"config key '{key}' = {error.instance!r}: {error.message}{hint}"


def validate_config(config: dict) -> dict:
    """Validate ``config`` against the schema, fill defaults and run the cross-field checks.

    Strings where the schema wants another type (as `snakemake --config` hands them over) are first
    coerced to it (coerce_config); empty strings, non-finite numbers and shell-breaking paths are refused
    (check_values). Returns a new dict (the input is not modified). Raises ConfigError naming the offending key.
    """
    config = coerce_config(config)
    problems = check_values(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    errors = sorted(_Validator(schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in errors))
    _check_consistency(config)
    return config


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it (see validate_config)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open() as fh:
            config = yaml.safe_load(fh) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values, found {type(config).__name__}")
    return validate_config(config)


def box_length(config: dict) -> float:
    """Edge length L (sigma_AA) of the cubic box holding n_particles at the configured density."""
    system = config["system"]
    return float((system["n_particles"] / system["density"]) ** (1.0 / 3.0))


def n_type_a(config: dict) -> int:
    """Number of A particles (the rest are B)."""
    return int(round(config["system"]["fraction_A"] * config["system"]["n_particles"]))


def tau_alpha_estimate(config: dict, temperature: float | None = None) -> float | None:
    """The estimated tau_alpha (tau) of ``temperature``: the job's own value, or looked up in
    tau_alpha_estimates; None when the config gives none."""
    if config.get("tau_alpha_estimate") is not None:
        return float(config["tau_alpha_estimate"])
    estimates = config.get("tau_alpha_estimates")
    if not estimates or temperature is None:
        return None
    temperatures = [float(t) for t in config["temperatures"]]
    return float(estimates[temperatures.index(float(temperature))])


def time_scale(config: dict, section: str, temperature: float | None = None) -> float:
    """Factor that turns the section's times into tau: 1, or tau_alpha when its time_unit is tau_alpha."""
    if config[section].get("time_unit", "tau") == "tau":
        return 1.0
    tau_alpha = tau_alpha_estimate(config, temperature)
    if tau_alpha is None:
        raise ConfigError(
            f"config key '{section}.time_unit' = 'tau_alpha' needs 'tau_alpha_estimates' (one per temperature)"
        )
    return tau_alpha


def label_steps(config: dict, temperature: float | None = None) -> np.ndarray:
    """Label times as MD step counts (sorted, unique, at least 1) on the dt grid."""
    times = config["isoconf"]["times"]
    if isinstance(times, dict):
        times = np.geomspace(times["start"], times["stop"], times["count"])
    times = np.asarray(times, dtype=float) * time_scale(config, "isoconf", temperature)
    steps = np.unique(np.maximum(1, np.round(times / config["engine"]["dt"])))
    return steps.astype(np.int64)


def dense_steps(config: dict, temperature: float | None = None) -> np.ndarray:
    """Steps (> 0) of the optional dense window of isoconf frames; empty when none is configured."""
    window = config["isoconf"].get("dense_window")
    if not window:
        return np.zeros(0, dtype=np.int64)
    scale = time_scale(config, "isoconf", temperature) / config["engine"]["dt"]
    start, stop, interval = (window[k] * scale for k in ("start", "stop", "interval"))
    steps = np.round(np.arange(start, stop + 0.5 * interval, interval)).astype(np.int64)
    return np.unique(steps[steps > 0])


def label_times(config: dict, temperature: float | None = None) -> np.ndarray:
    """Label times (tau) actually sampled: label_steps * dt."""
    return label_steps(config, temperature) * config["engine"]["dt"]


def split_indices(config: dict) -> dict[str, list[int]]:
    """Configuration indices of each split of a single-fold plan (see split_plan)."""
    plan = split_plan(config)
    if len(plan) != 1:
        raise ConfigError(f"the config asks for {len(plan)} cross-validation folds; use split_plan()")
    return plan[0]


def temperature_tag(temperature: float) -> str:
    """The directory-name form of a temperature, e.g. 0.7 -> 'T0.7', 0.44 -> 'T0.44'."""
    return f"T{float(temperature):g}"


def model_names() -> tuple[str, ...]:
    """Every model glasspipe knows (glasspipe.plugins.MODELS), in registration order."""
    plugins.require()
    return tuple(plugins.MODELS)


def enabled_models(config: dict) -> list[str]:
    """Names of the models switched on in ``models``."""
    return [name for name in model_names() if config["models"].get(name, {}).get("enabled", False)]


def model_targets(config: dict, model: str) -> list[str]:
    """The labels ``model`` learns (``models.<model>.target``: one name or a list), in config order."""
    target = config["models"].get(model, {}).get("target", "propensity")
    return [target] if isinstance(target, str) else list(target)


def model_runs(config: dict) -> list[str]:
    """One trained model ("run") per enabled model and label it learns: the model's own name for its first
    target, '<model>.<target>' for each further one. Runs name the model directories, predictions and
    metrics, and the ``{model}`` wildcard of the train and evaluate rules."""
    runs = []
    for model in enabled_models(config):
        first, *others = model_targets(config, model)
        runs += [model, *(f"{model}.{target}" for target in others)]
    return runs


def run_model(run: str) -> str:
    """The registered model a run trains ('ridge.bond_breaking' -> 'ridge')."""
    return run.partition(".")[0]


def run_target(config: dict, run: str) -> str:
    """The label a run learns ('ridge.bond_breaking' -> 'bond_breaking'; 'ridge' -> ridge's first target)."""
    model, _, target = run.partition(".")
    return target or model_targets(config, model)[0]


def train_sections(model: str) -> tuple[str, ...]:
    """The config sections the training job of ``model`` (a model or a run '<model>.<target>') depends on."""
    plugins.require()
    model = run_model(model)
    spec = plugins.model(model)
    extra = ("graph",) if spec.inputs == "graph" else ()
    return ("seed", "n_configurations", "split", "source", *extra, f"models.{model}")


def is_imported(config: dict) -> bool:
    """True when the configurations come from a public dataset rather than from simulation."""
    return config.get("source", {}).get("format", SIMULATE) != SIMULATE


def source_dataset(config: dict):
    """The registered dataset (glasspipe.datasets.Dataset) that 'source.dataset' names, or None when the
    config gives none or overrides it with an explicit 'source.train' path.

    Raises ConfigError naming 'source.dataset' when the name is not registered or its files are of another
    format than 'source.format'.
    """
    source = config["source"]
    name = source.get("dataset")
    # An explicit path wins, so that `--config source='{train: DIR}'` still works on a config naming a dataset.
    if name is None or source.get("train") is not None:
        return None
    if name not in datasets.DATASETS:
        raise ConfigError(
            f"config key 'source.dataset' = {name!r} is not a registered dataset; choose one of "
            f"{sorted(datasets.DATASETS)} (glasspipe download --help), or give 'source.train' a path"
        )
    item = datasets.DATASETS[name]
    if source["format"] != item.format:
        raise ConfigError(
            f"config key 'source.dataset' = {name!r} holds {item.format} files but 'source.format' = "
            f"{source['format']!r}; set 'source.format' to {item.format!r}"
        )
    return item


def _missing_path_hint(path: Path) -> str:
    """For a missing path whose folder is named like a registered dataset (a config that pointed into a
    copy the clone lacks): how to install it and name it instead; '' otherwise."""
    for item in datasets.DATASETS.values():
        if item.name in path.parts:
            return (
                f"; to use the published {item.name} files, run: {datasets.download_command(item)}, then give "
                f"'source.dataset: {item.name}' instead of a path"
            )
    return ""


def source_files(config: dict) -> list[Path]:
    """The dataset files of an imported run, configuration index order: the train directory, then test.

    The train files are 'source.train' (a file or a directory) or, without it, the installed files of
    'source.dataset' (in the registry's order). Raises ConfigError naming 'source.train' / 'source.test' /
    'source.dataset' when a path is missing, holds no files of the format, or a dataset is not (fully)
    installed; the last names the command that installs it (glasspipe download ...).
    """
    source = config["source"]
    files: list[Path] = []
    item = source_dataset(config)
    if item is not None:
        problem = datasets.missing_message(item, source.get("cache"))
        if problem:
            raise ConfigError(f"config key 'source.dataset' = {item.name!r}: the dataset {problem}")
        files += datasets.installed_files(item, source.get("cache"))
    for key in ("train", "test"):
        path = source.get(key)
        if path is None:
            continue
        path = Path(path)
        if not path.exists():
            raise ConfigError(
                f"config key 'source.{key}' = {str(path)!r}: no such file or directory{_missing_path_hint(path)}"
            )
        found = plugins.format_files(source["format"], path) if path.is_dir() else [path]
        if not found:
            raise ConfigError(f"config key 'source.{key}' = {str(path)!r} holds no {source['format']} files")
        files += found
    return files


def n_source(config: dict, key: str) -> int:
    """Number of dataset files under 'source.train' or 'source.test' (0 when not given); a registered
    dataset's count comes from the registry, without looking at the disk."""
    if key == "train":
        item = source_dataset(config)
        if item is not None:
            return len(item.files)
    path = config["source"].get(key)
    if path is None:
        return 0
    path = Path(path)
    return len(plugins.format_files(config["source"]["format"], path)) if path.is_dir() else 1


def is_cross_validated(config: dict) -> bool:
    """True when the models are judged by k-fold cross-validation over the configurations: simulated data
    whose ``split`` gives no ``train``/``test`` counts, or imported data without ``source.test``."""
    if is_imported(config):
        return config["source"].get("test") is None
    return "train" not in config["split"] and "test" not in config["split"]


def split_plan(config: dict) -> list[dict[str, list[int]]]:
    """The folds of the evaluation: per fold, the configuration indices of train, validation and test.

    - Simulated data with ``split.train`` and ``split.test``: one fold, the first ``split.train``
      configurations train, then ``split.validation`` validate, then ``split.test`` are the test set.
    - Simulated data without them: ``split.folds``-fold cross-validation over all ``n_configurations``, as
      for imported data below.
    - Imported data with a test directory: one fold; the train directory's files train, except the last
      ``split.validation`` that validate; the test directory's files are the test set.
    - Imported data without a test directory: ``split.folds``-fold cross-validation over the train
      directory. Fold k tests the configurations c with c % folds == k; its validation set is the next
      ``split.validation`` configurations after the test fold's last one (cyclically); the rest train. Every
      configuration is tested exactly once, by a model that never saw it.
    The test configurations never choose anything (penalties, epochs): that is the validation set's job.
    """
    split = config["split"]
    n = int(config["n_configurations"])
    if not is_imported(config) and not is_cross_validated(config):
        edges = np.cumsum([0, split["train"], split["validation"], split["test"]])
        names = ("train", "validation", "test")
        return [{name: list(range(edges[i], edges[i + 1])) for i, name in enumerate(names)}]
    n_validation = int(split["validation"])
    n_test = n_source(config, "test") if is_imported(config) else 0
    if n_test:
        n_train = n - n_test
        return [
            {
                "train": list(range(n_train - n_validation)),
                "validation": list(range(n_train - n_validation, n_train)),
                "test": list(range(n_train, n)),
            }
        ]
    folds = int(split["folds"])
    plan = []
    for k in range(folds):
        test = [c for c in range(n) if c % folds == k]
        rest = sorted((c for c in range(n) if c % folds != k), key=lambda c: (c - test[-1] - 1) % n)
        plan.append({"train": sorted(rest[n_validation:]), "validation": sorted(rest[:n_validation]), "test": test})
    return plan


def _get(config: dict, dotted: str) -> Any:
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def stage_settings(config: dict, stage: str, temperature: float | None = None) -> dict:
    """The part of ``config`` that stage ``stage`` reads, keyed by dotted section name.

    Simulation stages of one temperature also get that temperature's tau_alpha estimate (when the config
    gives estimates), so adding a temperature does not change the settings of the others.
    """
    sections = train_sections(stage.removeprefix("train_")) if stage.startswith("train_") else STAGE_SECTIONS[stage]
    settings = {section: _get(config, section) for section in sections}
    for section in sections:
        # A model's threads say how its job runs, not what it computes (plugins.JOB_ONLY_KEYS).
        if section.startswith("models.") and isinstance(settings[section], dict):
            settings[section] = {k: v for k, v in settings[section].items() if k not in plugins.JOB_ONLY_KEYS}
    if stage in ("equilibrate", "isoconf", "labels") and temperature is not None:
        settings["tau_alpha_estimate"] = tau_alpha_estimate(config, temperature)
    return settings


def stage_settings_json(config: dict, stage: str, temperature: float | None = None) -> str:
    """stage_settings as canonical JSON (sorted keys), the form Snakemake passes to a rule."""
    return json.dumps(stage_settings(config, stage, temperature), sort_keys=True, separators=(",", ":"))


def settings_from_json(text: str) -> dict:
    """Rebuild a nested config dict from stage_settings_json output (dotted keys are expanded)."""
    flat = json.loads(text)
    config: dict = {}
    for dotted, value in flat.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def _check_split(config: dict) -> None:
    split = config["split"]
    if not is_imported(config):
        if config["source"].get("dataset") is not None:
            raise ConfigError(
                f"config key 'source.dataset' = {config['source']['dataset']!r} needs 'source.format' set to its "
                "dataset format (e.g. botan); 'source.format' = 'simulate' imports nothing"
            )
        if "n_configurations" not in config:
            raise ConfigError("config key 'n_configurations' is required for simulated data (source.format = simulate)")
        if is_cross_validated(config):
            _check_folds(config, config["n_configurations"], "'n_configurations'")
            return
        missing = [k for k in ("train", "test") if k not in split]
        if missing:
            raise ConfigError(
                f"config section 'split' needs {missing} for simulated data (numbers of configurations), or "
                "neither, for split.folds-fold cross-validation"
            )
        total = split["train"] + split["validation"] + split["test"]
        if total != config["n_configurations"]:
            raise ConfigError(
                f"config key 'split' adds up to {total} configurations (train {split['train']} + validation "
                f"{split['validation']} + test {split['test']}) but 'n_configurations' is {config['n_configurations']}"
            )
        return
    source = config["source"]
    if source.get("train") is None and source.get("dataset") is None:
        raise ConfigError(
            f"config key 'source.dataset' (a registered dataset: glasspipe download --help) or 'source.train' (a "
            f"path) is required when 'source.format' = {source['format']!r}"
        )
    if len(config["temperatures"]) != 1:
        raise ConfigError(
            f"config key 'temperatures' lists {len(config['temperatures'])} values; an imported dataset "
            "('source') holds one temperature: give exactly that one"
        )
    n = len(source_files(config))
    if "n_configurations" in config and config["n_configurations"] != n:
        raise ConfigError(
            f"config key 'n_configurations' = {config['n_configurations']} but 'source' holds {n} files; "
            "leave 'n_configurations' out for imported data"
        )
    config["n_configurations"] = n
    n_test = n_source(config, "test")
    n_train = n - n_test
    if n_test:
        if not 1 <= n_train - split["validation"]:
            raise ConfigError(
                f"config key 'split.validation' = {split['validation']} leaves no training configuration of the "
                f"{n_train} in 'source.train'"
            )
        return
    _check_folds(config, n, "'source.train'")


def _check_folds(config: dict, n: int, over: str) -> None:
    """split.folds and split.validation must leave every fold a test and a training configuration."""
    split = config["split"]
    folds = split["folds"]
    if not 2 <= folds <= n:
        raise ConfigError(
            f"config key 'split.folds' = {folds}: cross-validation over the {n} configurations of {over} "
            f"needs 2 <= folds <= {n}"
        )
    largest_test = -(-n // folds)
    if n - largest_test - split["validation"] < 1:
        raise ConfigError(
            f"config key 'split.validation' = {split['validation']} leaves no training configuration in a fold of "
            f"{folds}-fold cross-validation over {n} configurations"
        )


def _check_structure(config: dict) -> None:
    """Every radius setting of a descriptor set (a number named r_*, r_min aside) must stay below L/2, where
    minimum-image distances stop being unique; the radial set's range must be a range."""
    half_box = 0.5 * box_length(config)
    for name, settings in config["structure"]["sets"].items():
        for key, value in settings.items():
            if key.startswith("r_") and isinstance(value, int | float) and key != "r_min" and value >= half_box:
                raise ConfigError(
                    f"config key 'structure.sets.{name}.{key}' = {value} must be below half the box length "
                    f"({half_box:.4f} for n_particles = {config['system']['n_particles']} at density "
                    f"{config['system']['density']})"
                )
    radial = config["structure"]["sets"].get("radial")
    if radial is not None:
        if not radial["r_min"] < radial["r_max"]:
            raise ConfigError(
                f"config key 'structure.sets.radial.r_max' = {radial['r_max']} must exceed "
                f"'structure.sets.radial.r_min' = {radial['r_min']}"
            )
        if radial["dr"] > radial["r_max"] - radial["r_min"]:
            raise ConfigError(f"config key 'structure.sets.radial.dr' = {radial['dr']} is wider than the radial range")


def _check_models(config: dict) -> None:
    """Each registered model's own cross-key check (glasspipe.plugins.ModelSpec.check)."""
    for spec in plugins.MODELS.values():
        if spec.check is not None:
            spec.check(config)


def _check_label_grid(config: dict) -> None:
    """Refuse label times that collapse onto the same MD step at some temperature (isoconf.times in units of
    tau_alpha at a high T, or times below dt): the grids would differ in length and meaning across temperatures."""
    if is_imported(config):
        return  # the dataset's own times
    times = config["isoconf"]["times"]
    requested = np.geomspace(times["start"], times["stop"], times["count"]) if isinstance(times, dict) else times
    requested = np.unique(np.asarray(requested, dtype=float))
    dt = config["engine"]["dt"]
    for temperature in config["temperatures"]:
        if config["isoconf"]["time_unit"] == "tau_alpha" and tau_alpha_estimate(config, temperature) is None:
            return  # reported by the tau_alpha_estimates check
        steps = np.maximum(1, np.round(requested * time_scale(config, "isoconf", temperature) / dt))
        if len(np.unique(steps)) < len(requested):
            collapsed = requested[np.r_[False, np.diff(steps) == 0] | np.r_[np.diff(steps) == 0, False]]
            raise ConfigError(
                f"config key 'isoconf.times' gives {len(requested)} label times but only {len(np.unique(steps))} "
                f"distinct MD steps at T = {temperature:g} (dt = {dt:g}, time_unit {config['isoconf']['time_unit']}): "
                f"times {collapsed.tolist()} fall on the same step. Raise the earliest times (or lower engine.dt) so "
                "every temperature keeps every label time"
            )


def dense_labels(config: dict) -> list[str]:
    """Names of the enabled labels that live on the isoconf dense window (the label registry's 'dense' grid:
    p_hop, CWT), in registration order."""
    return plugins.enabled_dense_labels(config.get("labels", {}))


def dense_windows(config: dict):
    """(temperature, interval (tau), length (tau), where) of the isoconf dense window at each temperature, for
    the dense labels' checks; ``where`` names it in messages. Stops at the first temperature whose tau_alpha
    is unknown (the tau_alpha_estimates check reports that)."""
    window = config["isoconf"].get("dense_window")
    if not window:
        return
    for temperature in config["temperatures"]:
        try:
            scale = time_scale(config, "isoconf", temperature)
        except ConfigError:
            return
        interval = window["interval"] * scale
        length = (window["stop"] - window["start"]) * scale
        where = f"at T = {temperature:g}: 'isoconf.dense_window' has interval {interval:g} tau, length {length:g} tau"
        yield temperature, interval, length, where


def label_time_scale(config: dict, name: str, temperature: float) -> float:
    """Factor that turns the times of ``labels.<name>`` into tau: 1, or tau_alpha for time_unit tau_alpha."""
    if config["labels"][name].get("time_unit", "tau") != "tau_alpha":
        return 1.0
    unit = tau_alpha_estimate(config, temperature)
    if unit is None:
        raise ConfigError(
            f"config key 'labels.{name}.time_unit' = 'tau_alpha' needs 'tau_alpha_estimates' (one per temperature)"
        )
    return unit


def _check_labels(config: dict) -> None:
    """Simulated data with dense-window labels need the dense window; then each registered label's own
    cross-key checks (glasspipe.labels: p_hop's window, the CWT's scales, bond_breaking's radii)."""
    wanted = dense_labels(config)
    if wanted and not is_imported(config) and not config["isoconf"].get("dense_window"):
        raise ConfigError(
            f"config key(s) {[f'labels.{n}.enabled' for n in wanted]} need the isoconf dense window: set "
            "'isoconf.dense_window' {start, stop, interval} or disable these labels"
        )
    for spec in plugins.LABELS.values():
        if spec.check is not None:
            spec.check(config)


def _check_targets(config: dict) -> None:
    """Each enabled model's 'target' must be a label-time column the labels stage writes (simulated data;
    an imported dataset's columns are checked when its labels are read)."""
    if is_imported(config):
        return
    available = ["propensity"]
    for spec in plugins.enabled_labels(config.get("labels", {})):
        if spec.grid == plugins.LABEL_GRID:
            available += [c for c in spec.columns(config["labels"].get(spec.name, {})) if c not in available]
    for model in enabled_models(config):
        for target in model_targets(config, model):
            if target not in available:
                raise ConfigError(
                    f"config key 'models.{model}.target' names {target!r}, which is not a label the labels stage "
                    f"writes at the label times; choose from {available} (enable its label in 'labels')"
                )


def _check_extra_sections(config: dict) -> None:
    """The sections of the optional evaluations (transfer across temperatures, learning curves), checked by
    their own modules (registered in glasspipe.plugins.CHECKS)."""
    for check in plugins.CHECKS:
        check(config)


def _check_consistency(config: dict) -> None:
    _check_split(config)
    _check_models(config)
    _check_targets(config)
    _check_label_grid(config)
    _check_labels(config)
    _check_extra_sections(config)
    n_a = n_type_a(config)
    if not 0 < n_a < config["system"]["n_particles"]:
        raise ConfigError(
            f"config key 'system.fraction_A' = {config['system']['fraction_A']} leaves no particle of one type "
            f"at n_particles = {config['system']['n_particles']}"
        )
    half_box = 0.5 * box_length(config)
    _check_structure(config)
    if config["graph"]["r_cut"] >= half_box:
        raise ConfigError(
            f"config key 'graph.r_cut' = {config['graph']['r_cut']} must be below half the box length ({half_box:.4f})"
        )
    # The KA cutoff is 2.5 sigma_AA; the engines' neighbour lists need the box to hold it.
    if 2.5 >= half_box:
        raise ConfigError(
            f"config key 'system.n_particles' = {config['system']['n_particles']} gives a box of length "
            f"{2 * half_box:.3f}, too small for the Kob-Andersen cutoff 2.5 (need L > 5.0)"
        )
    times = config["isoconf"]["times"]
    if isinstance(times, dict) and not times["start"] < times["stop"] and times["count"] > 1:
        raise ConfigError(
            f"config key 'isoconf.times' runs from start = {times['start']} to stop = {times['stop']}; "
            "start must be smaller"
        )
    window = config["isoconf"].get("dense_window")
    if window and not window["start"] < window["stop"]:
        raise ConfigError(
            f"config key 'isoconf.dense_window' runs from start = {window['start']} to stop = {window['stop']}; "
            "start must be smaller"
        )
    if window and (window["stop"] - window["start"]) / window["interval"] > 100_000:
        raise ConfigError("config key 'isoconf.dense_window' asks for more than 100000 frames per replica")
    estimates = config.get("tau_alpha_estimates")
    if estimates is not None and len(estimates) != len(config["temperatures"]):
        raise ConfigError(
            f"config key 'tau_alpha_estimates' has {len(estimates)} values for {len(config['temperatures'])} "
            "'temperatures'; give one per temperature, in the same order"
        )
    for section in ("equilibrate", "isoconf"):
        if config[section]["time_unit"] == "tau_alpha" and estimates is None:
            raise ConfigError(
                f"config key '{section}.time_unit' = 'tau_alpha' needs 'tau_alpha_estimates' (one per temperature)"
            )
    equilibrate = config["equilibrate"]
    shortest = min(
        equilibrate["production_time"] * time_scale(config, "equilibrate", T) for T in config["temperatures"]
    )
    if equilibrate["log_interval"] > shortest / 4:
        raise ConfigError(
            f"config key 'equilibrate.log_interval' = {equilibrate['log_interval']} (tau) leaves fewer than 4 log "
            f"rows in the shortest production window ({shortest:g} tau); the checks need more"
        )


def fill_defaults(partial: dict) -> dict:
    """Fill schema defaults into a partial config (a stage's settings), validating what is present.

    Top-level keys that the full config requires but the stage did not receive are not demanded.
    """
    partial = copy.deepcopy(dict(partial))
    errors = [
        e for e in _Validator(schema()).iter_errors(partial) if not (e.validator == "required" and not e.absolute_path)
    ]
    if errors:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(_describe(e) for e in errors))
    return partial


# --- Values from the command line, and values no schema keyword refuses -----------------------------------
#
# `snakemake --config key=value` parses a value with int, float, then YAML's BaseLoader, which keeps every
# scalar inside a list or mapping as a string: `temperatures=[0.6]` arrives as ['0.6'] and
# `models={bapst: {epochs: 5}}` as {'bapst': {'epochs': '5'}}. coerce_config() turns such strings into the
# type the schema asks for before validation; strings where the schema takes a string stay as they are.
# check_values() then refuses what the schema's keywords let through: empty strings, non-finite numbers
# (inf passes 'exclusiveMinimum: 0' and would run forever) and paths a shell or Snakemake would misread.

# Config keys that hold a path (dotted); Snakemake puts them into file names and shell commands.
PATH_KEYS: tuple[str, ...] = ("results_dir", "source.train", "source.test", "source.cache")
# Characters that a shell treats specially (quotes, expansion, separators, globs, redirection), that
# Snakemake reads as wildcards ({}), or whitespace: refused in PATH_KEYS even though the rules quote paths,
# because users paste these paths into shells, job scripts and other tools.
_SHELL_UNSAFE = frozenset("'\"`$;&|<>(){}[]*?!#\\")

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_NULL = frozenset({"null", "~", "none", ""})
_YAML_FLOATS = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
_INTEGER = re.compile(r"[+-]?\d+")


def _json_type(value: Any) -> str:
    """The JSON-schema type name of a Python value ('integer' for int, 'number' for float)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _allowed_types(subschema: dict) -> set[str]:
    """JSON types a subschema admits (from 'type', 'enum', and its 'oneOf'/'anyOf' alternatives); empty when
    it says nothing (then nothing is coerced)."""
    types: set[str] = set()
    declared = subschema.get("type")
    if declared is not None:
        types |= {declared} if isinstance(declared, str) else set(declared)
    types |= {_json_type(value) for value in subschema.get("enum", ())}
    for key in ("oneOf", "anyOf"):
        for alternative in subschema.get(key, ()):
            types |= _allowed_types(alternative)
    return types


def _parse_number(text: str) -> int | float | None:
    """An int for an integer literal, else a float (nan and inf included: check_values refuses them with
    the key named); None when the text is no number."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if text.lower() in _YAML_FLOATS:
        return _YAML_FLOATS[text.lower()]
    try:
        return float(text)
    except ValueError:
        return None


def _parse_string(text: str, types: set[str]) -> tuple[bool, Any]:
    """(True, value) when ``text`` reads as one of the JSON ``types`` (YAML spellings of null and booleans,
    Python/YAML spellings of numbers, YAML flow lists and mappings); (False, text) otherwise."""
    stripped = text.strip()
    if "null" in types and stripped.lower() in _NULL:
        return True, None
    if "boolean" in types and stripped.lower() in _TRUE | _FALSE:
        return True, stripped.lower() in _TRUE
    if types & {"integer", "number"}:
        number = _parse_number(stripped)
        if number is not None:
            if "number" in types:
                return True, number
            if isinstance(number, int):
                return True, number
            if math.isfinite(number) and number.is_integer():
                return True, int(number)
            if not math.isfinite(number):
                return True, number  # refused by check_values with the key named
    if types & {"array", "object"}:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            return False, text
        if _json_type(parsed) in types & {"array", "object"}:
            return True, parsed
    return False, text


def _alternative(subschema: dict, json_type: str) -> dict | None:
    """The part of ``subschema`` that describes values of ``json_type`` ('array' or 'object'): itself, or
    its first 'oneOf'/'anyOf' alternative of that type."""
    if json_type in _allowed_types({k: v for k, v in subschema.items() if k not in ("oneOf", "anyOf")}):
        return subschema
    for key in ("oneOf", "anyOf"):
        for alternative in subschema.get(key, ()):
            found = _alternative(alternative, json_type)
            if found is not None:
                return found
    return None


def _coerce(value: Any, subschema: dict | None) -> Any:
    if not isinstance(subschema, dict):
        return value
    types = _allowed_types(subschema)
    if isinstance(value, str) and types and "string" not in types:
        ok, value = _parse_string(value, types)
        if not ok:
            return value  # the schema validation names the key and what it expected
    if isinstance(value, dict):
        node = _alternative(subschema, "object")
        if node is None:
            return value
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {k: _coerce(v, properties.get(k, extra if isinstance(extra, dict) else None)) for k, v in value.items()}
    if isinstance(value, list):
        node = _alternative(subschema, "array")
        items = node.get("items") if node is not None else None
        return [_coerce(v, items) for v in value]
    return value


def coerce_config(config: dict) -> dict:
    """A copy of ``config`` with strings turned into the types the schema asks for at their key.

    Numbers ('0.6' -> 0.6, '5' -> 5, '1e-4' -> 0.0001), integers ('5', '1e3'), booleans ('true', 'no'),
    null ('null', '~', '' where null is allowed and a string is not), and lists or mappings written as
    YAML flow text ('[0.6, 0.7]', '{epochs: 5}'), recursively. A string that does not read as the wanted
    type is left for validate_config to refuse, naming the key; keys of type string are never touched.
    """
    return _coerce(copy.deepcopy(dict(config)), schema())


def _walk(value: Any, path: str):
    """(dotted key, value) of every leaf of a nested config."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}")
    else:
        yield path, value


def _path_problem(text: str) -> str | None:
    unsafe = sorted({c for c in text if c in _SHELL_UNSAFE or c.isspace() or not c.isprintable()})
    if unsafe:
        named = ", ".join("a space" if c == " " else repr(c) for c in unsafe)
        return f"contains {named}: characters that break shell commands or Snakemake file patterns"
    if text.startswith("-"):
        return "starts with '-', which commands read as an option"
    if text.startswith("~"):
        return "starts with '~', which a shell expands but Snakemake and Python do not"
    return None


def check_values(config: dict) -> list[str]:
    """Messages (one per offending key) for what the schema's keywords accept but glasspipe cannot use:
    empty or blank strings, non-finite numbers (nan, inf) and, in the path keys (PATH_KEYS), characters
    that break shell commands or Snakemake file patterns. Empty list when all is well."""
    problems = []
    for key, value in _walk(config, ""):
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"config key '{key}' = {value!r}: must be a finite number")
        elif isinstance(value, str) and not value.strip():
            problems.append(f"config key '{key}' = {value!r} is empty; give a value or leave the key out")
        elif isinstance(value, str) and key in PATH_KEYS:
            problem = _path_problem(value)
            if problem:
                problems.append(
                    f"config key '{key}' = {value!r} {problem}; use letters, digits and . _ - / + , : = @ %"
                )
    return problems
