"""The config schema and its cross-field checks: bad input is refused with the key named."""

from __future__ import annotations

import copy
import dataclasses
import hashlib

import numpy as np
import pytest
import yaml
from conftest import REPO, shared_data_dir

from glasspipe import config as cfg
from glasspipe import datasets, plugins

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
    assert settings["models"]["bapst"] == {k: v for k, v in config["models"]["bapst"].items() if k != "threads"}
    assert "ridge" not in settings["models"] and "system" not in settings
    # A training setting does not enter the settings of any simulation stage.
    changed = copy.deepcopy(config)
    changed["models"]["bapst"]["learning_rate"] = 0.5
    for stage in ("init", "equilibrate", "isoconf", "labels", "structure", "train_ridge", "train_mlp"):
        assert cfg.stage_settings_json(config, stage) == cfg.stage_settings_json(changed, stage)
    assert cfg.stage_settings_json(config, "train_bapst") != cfg.stage_settings_json(changed, "train_bapst")


def test_model_threads_default_from_the_registry_and_rerun_nothing():
    """models.<name>.threads: every model has it, its default is the registry's; a job's settings (what
    Snakemake compares to decide a rerun) are the same whatever it is; 0 threads is refused by name."""
    config = cfg.validate_config(MINIMAL)
    for name, spec in plugins.MODELS.items():
        assert config["models"][name]["threads"] == spec.threads
    changed = copy.deepcopy(config)
    for name in plugins.MODELS:
        changed["models"][name]["threads"] = 7
    assert cfg.validate_config(changed)["models"]["se3"]["threads"] == 7
    for name in plugins.MODELS:
        stage = f"train_{name}"
        assert cfg.stage_settings_json(config, stage) == cfg.stage_settings_json(changed, stage)
        assert "threads" not in cfg.stage_settings(config, stage)[f"models.{name}"]
    bad = copy.deepcopy(MINIMAL)
    bad["models"] = {**bad.get("models", {}), "se3": {"threads": 0}}
    with pytest.raises(cfg.ConfigError, match=r"models\.se3\.threads"):
        cfg.validate_config(bad)


def test_schema_file_is_the_one_the_package_uses():
    on_disk = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    loaded = copy.deepcopy(cfg.schema())
    # The package fills in the plugins' sections (each descriptor set's settings, each model's section, the
    # dataset formats); the rest is the file itself.
    sets = loaded["properties"]["structure"]["properties"]["sets"]
    assert set(sets.pop("properties")) >= {"radial", "boattini", "glassmlp"}
    assert sets.pop("additionalProperties") is False
    models = loaded["properties"]["models"]
    assert list(models.pop("properties")) == list(plugins.MODELS)
    labels = loaded["properties"]["labels"]["properties"]
    for name in [name for name, spec in plugins.LABELS.items() if spec.settings]:
        assert labels.pop(name)["properties"] == plugins.LABELS[name].settings
    assert "properties" not in on_disk["properties"]["models"]
    formats = loaded["properties"]["source"]["properties"]["format"]
    assert formats["enum"] == ["simulate", *plugins.FORMATS]
    formats["enum"] = on_disk["properties"]["source"]["properties"]["format"]["enum"]
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


def install_for_test(name: str, monkeypatch, tmp_path) -> str:
    """Install registered dataset ``name`` into the test's cache (the dataset_cache fixture must be active).

    From the copy in shared/data where there is one ('shared'); else, as on a fresh clone, from stand-ins
    ('stand-ins'): small files of the same names under an injected registry entry. Config validation counts
    the files and never reads them, so stand-ins check everything a config says except the data themselves.
    """
    item = datasets.DATASETS[name]
    shared = shared_data_dir()
    if shared is not None and all(datasets._local_copy(shared, item, entry) for entry in item.files):
        datasets.install_from(item, shared)
        return "shared"
    folder = tmp_path / "stand-ins"
    folder.mkdir()
    files = []
    for entry in item.files:
        content = f"stand-in for {entry.name}".encode()
        (folder / entry.name).write_bytes(content)
        files.append(dataclasses.replace(entry, sha256=hashlib.sha256(content).hexdigest(), size=len(content)))
    stand_in = dataclasses.replace(item, files=tuple(files))
    monkeypatch.setitem(datasets.DATASETS, name, stand_in)
    datasets.install_from(stand_in, folder)
    return "stand-ins"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path, dataset_cache, monkeypatch, tmp_path):
    """The configs in configs/ are what users start from; each must pass the same validation as a run.

    A config that names a dataset first fails, in the test's empty cache, with the command that gets the
    data; then passes once that dataset is installed (the shared copy, or stand-ins on a fresh clone)."""
    name = (yaml.safe_load(path.read_text()).get("source") or {}).get("dataset")
    if name is not None:
        group = datasets.DATASETS[name].group
        with pytest.raises(cfg.ConfigError, match=rf"'source.dataset' = '{name}'.*run: glasspipe download {group}$"):
            cfg.load_config(path)
        install_for_test(name, monkeypatch, tmp_path)
    config = cfg.load_config(path)
    assert config["temperatures"]
    if name is not None:
        assert cfg.source_files(config) == datasets.installed_files(datasets.DATASETS[name])


def _toy_dataset(monkeypatch, tmp_path, n: int = 6, name: str = "toy_botan") -> datasets.Dataset:
    """A registered stand-in dataset of ``n`` BOTAN-named files (injected into the registry), not installed;
    its files are in tmp_path/toy-copy for install_from."""
    folder = tmp_path / "toy-copy"
    folder.mkdir()
    files = []
    for c in range(1, n + 1):
        fname = f"isoconfig_N4096T0.44_{c}_tc07.npz"
        content = f"toy {c}".encode()
        (folder / fname).write_bytes(content)
        files.append(datasets.DataFile(fname, hashlib.sha256(content).hexdigest(), len(content), url=None))
    item = datasets.Dataset(name, "botan", "toy", tuple(files), "toy", "tests", "none")
    monkeypatch.setitem(datasets.DATASETS, name, item)
    return item


def _imported(source: dict) -> dict:
    return {"temperatures": [0.44], "system": {"n_particles": 4096}, "source": source, "split": {"validation": 1}}


def test_source_dataset_resolves_to_the_cache(dataset_cache, monkeypatch, tmp_path):
    item = _toy_dataset(monkeypatch, tmp_path)
    datasets.install_from(item, tmp_path / "toy-copy")
    config = cfg.validate_config(_imported({"format": "botan", "dataset": "toy_botan"}))
    folder = dataset_cache / "datasets" / "toy_botan"
    assert cfg.source_files(config) == [folder / f.name for f in item.files]
    assert config["n_configurations"] == 6 and cfg.n_source(config, "train") == 6
    assert len(cfg.split_plan(config)) == 5
    # The dataset adds no key to configs that do not use it (the 'source' section is in every training job's
    # settings, which Snakemake compares to rerun jobs).
    assert "dataset" not in cfg.validate_config(MINIMAL)["source"]
    assert "cache" not in cfg.validate_config(MINIMAL)["source"]


def test_source_cache_names_where_download_dest_installed(dataset_cache, monkeypatch, tmp_path):
    item = _toy_dataset(monkeypatch, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    source = {"format": "botan", "dataset": "toy_botan", "cache": str(elsewhere)}
    with pytest.raises(
        cfg.ConfigError,
        match=rf"not installed in {elsewhere}/toy_botan; run: glasspipe download toy --dest {elsewhere}$",
    ):
        cfg.validate_config(_imported(source))
    datasets.install_from(item, tmp_path / "toy-copy", elsewhere)
    config = cfg.validate_config(_imported(source))
    assert cfg.source_files(config)[0] == elsewhere / "toy_botan" / item.files[0].name
    assert not (dataset_cache / "datasets").exists()


def test_an_explicit_train_path_takes_precedence_over_the_dataset(dataset_cache, monkeypatch, tmp_path):
    """`--config source='{train: DIR}'` merges into a config that names a dataset: the path wins."""
    _toy_dataset(monkeypatch, tmp_path)
    train = _botan_like_dir(tmp_path, 8)
    config = cfg.validate_config(_imported({"format": "botan", "dataset": "toy_botan", "train": str(train)}))
    assert config["n_configurations"] == 8 and cfg.source_files(config)[0].parent == train


def test_an_incomplete_dataset_is_refused_with_the_command(dataset_cache, monkeypatch, tmp_path):
    item = _toy_dataset(monkeypatch, tmp_path)
    datasets.install_from(item, tmp_path / "toy-copy")
    (dataset_cache / "datasets" / "toy_botan" / item.files[3].name).unlink()
    with pytest.raises(
        cfg.ConfigError, match=r"'source.dataset' = 'toy_botan'.*1 of its 6 files.*glasspipe download toy"
    ):
        cfg.validate_config(_imported({"format": "botan", "dataset": "toy_botan"}))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"format": "botan", "dataset": "no_such_data"}, r"'source.dataset' = 'no_such_data' is not a registered"),
        ({"format": "deepmind", "dataset": "botan_T0.44_train"}, r"holds botan files but 'source.format' = 'deepmind'"),
        ({"format": "botan"}, r"'source.dataset' .* or 'source.train' .* is required"),
        ({"format": "botan", "dataset": "botan_T0.44_train", "cache": "my cache"}, r"'source.cache' = 'my cache'"),
        ({"format": "botan", "dataset": ""}, r"'source.dataset' = '' is empty"),
    ],
)
def test_source_dataset_mistakes_name_the_key(source, message, dataset_cache):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate_config(_imported(source))


def test_a_dataset_with_simulated_data_is_refused():
    with pytest.raises(cfg.ConfigError, match=r"'source.dataset' = 'botan_T0.44_train' needs 'source.format'"):
        cfg.validate_config({**MINIMAL, "source": {"dataset": "botan_T0.44_train"}})


def test_a_missing_path_into_a_dataset_folder_suggests_the_download(tmp_path):
    """The old form of the BOTAN config (a relative path into ../shared) on a clone that lacks it."""
    missing = tmp_path / "shared" / "data" / "botan_T0.44_train"
    hint = r"no such file or directory; .*run: glasspipe download botan, then give 'source.dataset: botan_T0.44_train'"
    with pytest.raises(cfg.ConfigError, match=hint):
        cfg.validate_config(_imported({"format": "botan", "train": str(missing)}))


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
