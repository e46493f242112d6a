"""The plugin registries (glasspipe.plugins): a model is one module plus one import line.

tests/plugins/toy_model.py is such a module, outside the package; these tests register it and check that the
config schema, the defaults, the cross-key checks and the workflow's wildcards all take it from the registry,
and that the workflow trains and evaluates it like a built-in model.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY, snakemake  # noqa: F401  (tiny_run: a session fixture there)
from test_workflow import planned_jobs

from glasspipe import config as cfg
from glasspipe import plugins

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture
def toy(monkeypatch):
    """The toy model registered for one test (and gone after it, so the other tests see the built-in set)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    sys.modules.pop("toy_model", None)
    module = importlib.import_module("toy_model")
    yield module
    plugins.unregister_model("toy")
    sys.modules.pop("toy_model", None)


def _tiny_with_toy(**toy_settings) -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["models"]["toy"] = {"enabled": True, **toy_settings}
    return config


def test_builtin_models_are_registered_in_their_order():
    assert list(plugins.MODELS) == ["ridge", "mlp", "bapst", "baseline", "se3"]
    assert cfg.model_names() == tuple(plugins.MODELS)


def test_toy_model_enters_schema_defaults_checks_and_runs(toy):
    schema = cfg.schema()["properties"]["models"]["properties"]["toy"]
    assert list(schema["properties"]) == ["target", "enabled", "threads", "column", "scale"]
    config = cfg.validate_config(_tiny_with_toy(scale=-1.0))
    # Defaults from the module's schema fragment, the shared keys from the registry.
    assert config["models"]["toy"] == {
        "enabled": True,
        "threads": toy.SPEC.threads,
        "target": "propensity",
        "column": 0,
        "scale": -1.0,
    }
    assert "toy" in cfg.model_runs(config)
    assert cfg.train_sections("toy")[-1] == "models.toy"
    assert "graph" not in cfg.train_sections("toy")  # a descriptor model
    assert toy.SPEC.defaults == {"column": 0, "scale": 2.0}
    # Its cross-key check runs with validation.
    bad = _tiny_with_toy()
    bad["structure"]["sets"] = {"boattini": {}}
    with pytest.raises(cfg.ConfigError, match="models.toy.enabled"):
        cfg.validate_config(bad)
    # Its settings are typed like a built-in model's.
    with pytest.raises(cfg.ConfigError, match="models.toy.column"):
        cfg.validate_config(_tiny_with_toy(column=-1))


def test_unregistered_model_is_refused_and_schema_follows_the_registry(toy):
    plugins.unregister_model("toy")
    with pytest.raises(cfg.ConfigError, match="unknown key.*'toy'.*GLASSPIPE_PLUGINS"):
        cfg.validate_config(_tiny_with_toy())
    assert "toy" not in cfg.schema()["properties"]["models"]["properties"]


@pytest.mark.parametrize("key", plugins.REGISTRY_KEYS)
def test_plugin_declares_no_shared_key(key):
    with pytest.raises(ValueError, match="added by the registry"):
        plugins.register_model(
            plugins.ModelSpec("bad", "descriptors", False, 1, "m:f", "m:g", "bad", settings={key: {}})
        )
    assert "bad" not in plugins.MODELS


def test_registry_keys_are_the_ones_the_section_schema_adds():
    """A model gets target only when it takes one and loss_weighting only when it weights label times; the
    se3 model (no target) and the baseline (no weighting) say so, and every built-in model gets the rest."""
    assert plugins.model("se3").registry_keys == ("enabled", "threads", "loss_weighting")
    assert plugins.model("baseline").registry_keys == ("target", "enabled", "threads")
    assert plugins.model("ridge").registry_keys == plugins.REGISTRY_KEYS
    for spec in plugins.MODELS.values():
        assert set(spec.registry_keys) <= set(plugins.REGISTRY_KEYS)
        assert set(spec.section_schema()["properties"]) == set(spec.registry_keys) | set(spec.settings)


@pytest.mark.slow
def test_toy_model_runs_through_the_workflow(tiny_run, tmp_path, monkeypatch):
    """The tiny workflow with the toy model switched on: the toy is trained and evaluated and enters the
    report, and nothing else reruns (the simulation and the other models' settings are unchanged)."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    configfile = tmp_path / "toy.yaml"
    configfile.write_text(yaml.safe_dump(_tiny_with_toy()))
    # The one line that adds a model from outside the package, inherited by every job of the workflow.
    monkeypatch.setenv("GLASSPIPE_PLUGINS", "toy_model")
    monkeypatch.setenv("PYTHONPATH", f"{PLUGIN_DIR}:{REPO / 'src'}")
    dry = snakemake(workdir, "-n", configfile=configfile)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert planned_jobs(dry) == {"train": 1, "evaluate": 1, "report": 1, "all": 1}
    result = snakemake(workdir, "--cores", "2", configfile=configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = pd.read_parquet(workdir / "results" / "T0.8" / "metrics" / "toy.parquet")
    assert metrics["pearson"].notna().any()
    summary = (workdir / "results" / "report" / "summary.json").read_text()
    assert '"toy"' in summary


def test_each_default_is_declared_once():
    """The trainers' defaults are the registry's (declared by each model's module), and the config schema
    fills in the same values: a default cannot drift between validation, fill_defaults and training."""
    from glasspipe.learn.models import bapst, mlp, se3
    from glasspipe.learn.training import weights

    trainers = {"mlp": mlp.MLP_DEFAULTS, "bapst": bapst.BAPST_DEFAULTS, "se3": se3.SE3_DEFAULTS}
    for name, trainer_defaults in trainers.items():
        spec = plugins.MODELS[name]
        assert trainer_defaults == spec.defaults, name
        filled = cfg.fill_defaults({"models": {name: {}}})["models"][name]
        for key, value in spec.defaults.items():
            assert filled.get(key, spec.extra_defaults.get(key)) == value, (name, key)
    assert weights.WEIGHTING_DEFAULTS == plugins.defaults_of(plugins.LOSS_WEIGHTING_SCHEMA)


def test_lazy_callables_resolve():
    """The built-in models name their heavy code as 'module:function': every name must import."""
    import importlib

    for spec in plugins.MODELS.values():
        for function in (spec.train, spec.predict):
            reference = getattr(function, "reference", None)
            if reference is None:  # a plain function of the model's module: its own lazy references
                module = importlib.import_module(function.__module__)
                references = [v.reference for v in vars(module).values() if isinstance(v, plugins.Lazy)]
            else:
                references = [reference]
            for ref in references:
                module_name, _, attribute = ref.partition(":")
                assert callable(getattr(importlib.import_module(module_name), attribute)), ref


def test_schema_command_prints_the_plugins_sections(toy, capsys):
    from glasspipe.cli import main

    assert main(["schema"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == cfg.schema()
    assert printed["properties"]["models"]["properties"]["toy"]["properties"]["scale"]["default"] == 2.0
    assert "phop" in printed["properties"]["labels"]["properties"]
