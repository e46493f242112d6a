"""The config schema and its cross-field checks: bad input is refused with the key named."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from conftest import REPO

from glasspipe import config as cfg

MINIMAL = {"temperatures": [0.7], "n_configurations": 4, "split": {"train": 2, "validation": 1, "test": 1}}


def test_default_config_is_valid_and_fills_defaults():
    config = cfg.load_config(REPO / "config.yaml")
    assert config["system"]["density"] == 1.2
    assert config["engine"]["name"] == "lammps"
    # Demo: ~1000 particles, one temperature in the moderately supercooled range, >= 8 replicas.
    assert 500 <= config["system"]["n_particles"] <= 2000
    assert all(0.6 <= T <= 0.8 for T in config["temperatures"])
    assert config["isoconf"]["n_replicas"] >= 8
    full = cfg.validate_config(MINIMAL)
    assert full["system"]["cutoff_mode"] == "shift"
    assert full["models"]["bapst"]["n_message_passing"] == 7


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"system": {"n_particles": -5}}, "system.n_particles"),
        ({"system": {"density": 0}}, "system.density"),
        ({"engine": {"name": "gromacs"}}, "engine.name"),
        ({"models": {"transformer": {}}}, "transformer"),
        ({"temperatures": [0.7, -1.0]}, "temperatures.1"),
        ({"tempratures": [0.7]}, "tempratures"),
        ({"split": {"train": 1, "validation": 1, "test": 1}}, "split"),
        ({"structure": {"sets": {"radial": {"r_max": 9.0}}}}, "structure.sets.radial.r_max"),
        ({"structure": {"sets": {"voronoi_tessellation": {}}}}, "voronoi_tessellation"),
        ({"structure": {"input": "quenched"}}, "structure.input"),
        ({"source": {"format": "lammps_dump"}}, "source.format"),
        ({"source": {"format": "botan"}}, "source.train"),
        ({"source": {"format": "botan", "train": "/nonexistent/botan"}}, "source.train"),
        ({"system": {"cutoff_mode": "smooth"}}, "system.cutoff_mode"),
        ({"isoconf": {"times": "often"}}, "isoconf.times"),
    ],
)
def test_bad_values_name_the_key(change, key):
    config = copy.deepcopy(MINIMAL)
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            config[section].update(value)
        else:
            config[section] = value
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate_config(config)
    assert key in str(err.value)


def test_box_too_small_for_cutoff_is_refused():
    with pytest.raises(cfg.ConfigError, match="system.n_particles"):
        cfg.validate_config(
            {
                **MINIMAL,
                "system": {"n_particles": 100},
                "structure": {"sets": {"radial": {"r_max": 2.0}}},
                "graph": {"r_cut": 1.5},
            }
        )


def test_label_times_on_the_step_grid():
    config = cfg.validate_config({**MINIMAL, "isoconf": {"times": {"start": 0.01, "stop": 10.0, "count": 4}}})
    steps = cfg.label_steps(config)
    assert steps.tolist() == [2, 20, 200, 2000]
    np.testing.assert_allclose(cfg.label_times(config), [0.01, 0.1, 1.0, 10.0])
    # Times that collapse onto one MD step are refused (issue 7: grids stay distinct across temperatures);
    # label_steps itself still raises sub-step times to one step and removes duplicates.
    with pytest.raises(cfg.ConfigError, match=r"isoconf\.times.*0\.001, 0\.002"):
        cfg.validate_config({**MINIMAL, "isoconf": {"times": [0.001, 0.002, 0.5]}})
    config["isoconf"]["times"] = [0.001, 0.002, 0.5]
    assert cfg.label_steps(config).tolist() == [1, 100]


def test_split_indices_and_box_length():
    config = cfg.validate_config(MINIMAL)
    assert cfg.split_indices(config) == {"train": [0, 1], "validation": [2], "test": [3]}
    assert cfg.box_length(cfg.validate_config({**MINIMAL, "system": {"n_particles": 4096}})) == pytest.approx(
        15.0566, abs=1e-4
    )


def test_stage_settings_round_trip_and_isolation():
    config = cfg.validate_config(MINIMAL)
    text = cfg.stage_settings_json(config, "train_bapst")
    settings = cfg.settings_from_json(text)
    assert settings["models"]["bapst"] == config["models"]["bapst"]
    assert "ridge" not in settings["models"] and "system" not in settings
    # A training setting does not enter the settings of any simulation stage.
    changed = copy.deepcopy(config)
    changed["models"]["bapst"]["learning_rate"] = 0.5
    for stage in ("init", "equilibrate", "isoconf", "labels", "structure", "train_ridge", "train_mlp"):
        assert cfg.stage_settings_json(config, stage) == cfg.stage_settings_json(changed, stage)
    assert cfg.stage_settings_json(config, "train_bapst") != cfg.stage_settings_json(changed, "train_bapst")


def test_schema_file_is_the_one_the_package_uses():
    on_disk = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    loaded = copy.deepcopy(cfg.schema())
    # The package fills in each registered descriptor set's settings; the rest is the file itself.
    sets = loaded["properties"]["structure"]["properties"]["sets"]
    assert set(sets.pop("properties")) >= {"radial", "boattini", "glassmlp"}
    assert sets.pop("additionalProperties") is False
    assert on_disk == loaded


def _botan_like_dir(tmp_path, n_files: int):
    """n_files empty files named like BOTAN's (list_files only reads names)."""
    folder = tmp_path / "botan"
    folder.mkdir()
    for c in range(1, n_files + 1):
        (folder / f"isoconfig_N4096T0.44_{c}_tc07.npz").write_bytes(b"")
    return folder


def test_cross_validation_plan_tests_every_configuration_once(tmp_path):
    train = _botan_like_dir(tmp_path, 10)
    config = cfg.validate_config(
        {
            "temperatures": [0.44],
            "system": {"n_particles": 4096},
            "source": {"format": "botan", "train": str(train)},
            "split": {"validation": 2, "folds": 5},
        }
    )
    assert config["n_configurations"] == 10
    plan = cfg.split_plan(config)
    assert len(plan) == 5
    tested = sorted(c for fold in plan for c in fold["test"])
    assert tested == list(range(10))
    for fold in plan:
        parts = [set(fold[s]) for s in ("train", "validation", "test")]
        assert sum(len(p) for p in parts) == 10 and set.union(*parts) == set(range(10))
        assert len(fold["validation"]) == 2 and len(fold["test"]) == 2 and len(fold["train"]) == 6
    assert plan[0]["test"] == [0, 5] and plan[0]["validation"] == [6, 7]


def test_held_out_test_directory_is_only_tested(tmp_path):
    train = _botan_like_dir(tmp_path, 10)
    test = tmp_path / "test"
    test.mkdir()
    for c in (11, 12, 13):
        (test / f"isoconfig_N4096T0.44_{c}_tc07.npz").write_bytes(b"")
    config = cfg.validate_config(
        {
            "temperatures": [0.44],
            "system": {"n_particles": 4096},
            "source": {"format": "botan", "train": str(train), "test": str(test)},
            "split": {"validation": 2},
        }
    )
    assert cfg.split_plan(config) == [{"train": list(range(8)), "validation": [8, 9], "test": [10, 11, 12]}]
    assert [p.name for p in cfg.source_files(config)][-3:] == [
        f"isoconfig_N4096T0.44_{c}_tc07.npz" for c in (11, 12, 13)
    ]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    """The configs in configs/ are what users start from; each must pass the same validation as a run."""
    config = cfg.load_config(path)
    assert config["temperatures"]


def test_a_model_with_several_targets_is_one_run_per_label():
    config = cfg.load_config(REPO / "tests" / "configs" / "tiny.yaml")
    assert cfg.model_targets(config, "ridge") == ["propensity", "bond_breaking"]
    assert cfg.model_targets(config, "bapst") == ["propensity"]
    runs = cfg.model_runs(config)
    assert "ridge" in runs and "ridge.bond_breaking" in runs and "bapst" in runs
    assert cfg.run_model("ridge.bond_breaking") == "ridge" and cfg.run_target(config, "ridge.bond_breaking") == (
        "bond_breaking"
    )
    assert cfg.run_target(config, "ridge") == "propensity"
    # A train job's settings are its model's: the run shares them.
    assert cfg.stage_settings(config, "train_ridge.bond_breaking") == cfg.stage_settings(config, "train_ridge")
    bad = copy.deepcopy(config)
    bad["models"]["ridge"]["target"] = ["propensity", "no_such_label"]
    with pytest.raises(cfg.ConfigError, match=r"models\.ridge\.target.*no_such_label"):
        cfg.validate_config(bad)
    bad["models"]["ridge"]["target"] = ["propensity", "propensity"]
    with pytest.raises(cfg.ConfigError, match=r"models\.ridge\.target"):
        cfg.validate_config(bad)


def test_simulated_data_without_train_and_test_is_cross_validated():
    """split: {validation, folds} on simulated data: every configuration is tested exactly once, and no fold's
    test or validation configuration trains it."""
    config = cfg.load_config(REPO / "config.yaml")
    config["n_configurations"] = 16
    config["split"] = {"validation": 2, "folds": 4}
    config = cfg.validate_config(config)
    plan = cfg.split_plan(config)
    assert len(plan) == 4
    tested = sorted(c for fold in plan for c in fold["test"])
    assert tested == list(range(16))
    for fold in plan:
        assert len(fold["test"]) == 4 and len(fold["validation"]) == 2 and len(fold["train"]) == 10
        assert not set(fold["train"]) & (set(fold["test"]) | set(fold["validation"]))
        assert not set(fold["test"]) & set(fold["validation"])


def test_cross_validation_of_simulated_data_refuses_folds_that_leave_no_training_configuration():
    config = cfg.load_config(REPO / "config.yaml")
    config["n_configurations"] = 4
    config["split"] = {"validation": 2, "folds": 2}
    with pytest.raises(cfg.ConfigError, match="split.validation"):
        cfg.validate_config(config)
