"""Transfer across temperatures (glasspipe.learn.transfer), without Snakemake: config checks, label-time
matching, and training / evaluation on a synthetic results directory whose labels are known linear
functions of the descriptors."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY, snakemake

from glasspipe import config as cfg
from glasspipe import stages
from glasspipe.io.gsd_io import Snapshot, write_gsd
from glasspipe.io.tables import write_table
from glasspipe.layout import Layout
from glasspipe.learn import transfer
from glasspipe.learn.samples import Sample
from glasspipe.stages import transfer as transfer_stage

N_PARTICLES = 200
N_FEATURES = 6
CEILING = 0.9  # the synthetic labels' stored noise ceiling (any value in (0, 1] would do)


def base_config(**changes) -> dict:
    """The tiny test config at T = 0.7 and 0.8, label times in tau_alpha, ridge only, transfer 0.8 -> 0.7."""
    config = yaml.safe_load(TINY.read_text())
    config["temperatures"] = [0.7, 0.8]
    config["tau_alpha_estimates"] = [5.0, 2.0]
    config["isoconf"] = {"n_replicas": 3, "time_unit": "tau_alpha", "times": [0.1, 1.0]}
    config["labels"] = {"phop": {"enabled": False}, "cwt": {"enabled": False}}
    config["models"] = {"ridge": {"alphas": [1e-4, 1e-2]}, "mlp": {"enabled": False}, "bapst": {"enabled": False}}
    config["transfer"] = {"train": [0.8], "test": [0.7], "models": ["ridge"]}
    for key, value in changes.items():
        config[key] = value
    return config


def weights(temperature: float, flip: bool) -> np.ndarray:
    """(F, times) weights of the synthetic labels: the same at every temperature, or sign-flipped at 0.7."""
    w = np.array([[1.0, 0.5], [-0.8, 0.3], [0.5, -1.0], [0.0, 0.7], [0.3, 0.0], [-0.2, 0.4]])
    return -w if flip and np.isclose(temperature, 0.7) else w


def write_synthetic_results(root, config: dict, flip: bool = False, noise: float = 0.2, slope=None) -> Layout:
    """A results directory holding, for every temperature and configuration, the files the models read:
    a GSD configuration, descriptors (F Gaussian columns) and labels at that temperature's label times
    (labels = descriptors @ weights(T) (+ slope(n) * n-dependent term) + Gaussian noise, plus a T-dependent
    offset and scale that no Pearson correlation sees), with a noise ceiling in the labels' metadata."""
    layout = Layout(root)
    for T in config["temperatures"]:
        times = cfg.label_times(config, T)
        for c in range(config["n_configurations"]):
            rng = np.random.default_rng([int(T * 1000), c])
            length = (N_PARTICLES / 1.2) ** (1 / 3)
            positions = rng.uniform(-length / 2, length / 2, (N_PARTICLES, 3))
            typeid = np.zeros(N_PARTICLES, dtype=int)
            typeid[: N_PARTICLES // 5] = 1
            write_gsd(layout.equilibrated(T, c), [Snapshot(positions=positions, typeid=typeid, box_length=length)])
            types = np.where(typeid == 0, "A", "B")
            x = rng.normal(size=(N_PARTICLES, N_FEATURES))
            descriptors = pd.DataFrame(x, columns=[f"d{k}" for k in range(N_FEATURES)])
            descriptors.insert(0, "type", types)
            descriptors.insert(0, "particle", np.arange(N_PARTICLES))
            write_table(descriptors, layout.structure(T, c), metadata={})
            y = x @ weights(T, flip) + noise * rng.normal(size=(N_PARTICLES, len(times)))
            y = 3.0 + T * y  # offset and scale differ between temperatures
            labels = pd.DataFrame(
                {
                    "particle": np.tile(np.arange(N_PARTICLES), len(times)),
                    "type": np.tile(types, len(times)),
                    "time": np.repeat(times, N_PARTICLES),
                    "propensity": y.T.reshape(-1),
                }
            )
            ceiling = {"time": times.tolist(), "half_half_pearson": [0.8] * len(times)}
            ceiling |= {"reliability": [CEILING**2] * len(times), "ceiling": [CEILING] * len(times)}
            meta = {"temperature": float(T), "configuration": c, "noise_ceiling": ceiling}
            write_table(labels, layout.labels(T, c), metadata=meta)
    return layout


def train_in_temperature(config: dict, layout: Layout, run: str = "ridge") -> None:
    """The per-temperature models (the 'train' rule's job) at every temperature."""
    settings = cfg.settings_from_json(cfg.stage_settings_json(config, f"train_{run}"))
    for T in config["temperatures"]:
        stages.train(settings, run, T, 0, layout)


def mean_a(metrics: pd.DataFrame, scheme: str) -> pd.Series:
    rows = metrics[(metrics["scheme"] == scheme) & (metrics["type"] == "A") & (metrics["scope"] == "configuration")]
    return rows.groupby("time")["pearson"].mean()


# ----------------------------------------------------------------------------- config checks
@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"train": [0.9], "test": [0.7]}, "'transfer.train' names temperature(s) [0.9]"),
        ({"train": [0.8], "test": [0.6]}, "'transfer.test' names temperature(s) [0.6]"),
        ({"train": [0.8, 0.7], "test": [0.7]}, "share temperature(s) [0.7]"),
        ({"train": [0.8], "test": []}, "'transfer.test' is empty"),
        ({"train": [], "test": [0.7]}, "'transfer.train' is empty"),
        ({"train": [0.8], "test": [0.7], "models": ["bapst"]}, "names 'bapst', which is not an enabled model run"),
        ({"train": [0.8], "test": [0.7], "models": ["ridge.cage_propensity"]}, "'ridge.cage_propensity'"),
    ],
)
def test_bad_transfer_section_is_refused_naming_the_key(section, message):
    config = base_config(transfer=section)
    with pytest.raises(cfg.ConfigError, match=re.escape(message)):
        cfg.validate_config(config)


def test_transfer_runs_default_to_every_enabled_run_and_off_without_train():
    config = cfg.validate_config(base_config(transfer={"train": [0.8], "test": [0.7]}))
    assert transfer.runs(config) == cfg.model_runs(config) == ["ridge"]
    assert transfer.runs(cfg.validate_config(base_config(transfer={}))) == []


def test_label_grids_matched_by_tau_alpha_within_one_step_and_refused_otherwise():
    dt = 0.005
    nominal = np.array([0.1, 1.0, 10.0])
    # T = 0.7, tau_alpha 5: 0.5, 5, 50 tau; T = 0.8, tau_alpha 2.07: 0.207 -> 0.205 on the step grid.
    grids = {0.7: np.array([0.5, 5.0, 50.0]), 0.8: np.array([0.205, 2.07, 20.7])}
    common = transfer.common_grid(grids, "tau_alpha", {0.7: 5.0, 0.8: 2.07}, nominal, dt)
    np.testing.assert_array_equal(common, nominal)  # exact: the nominal grid itself
    # A time two steps away from nominal * tau_alpha: labels made with another tau_alpha estimate.
    bad = {0.7: np.array([0.5, 5.0, 50.0]), 0.8: np.array([0.215, 2.07, 20.7])}
    with pytest.raises(ValueError, match=r"0\.215 tau at T = 0\.8 is not 0\.1 tau_alpha"):
        transfer.common_grid(bad, "tau_alpha", {0.7: 5.0, 0.8: 2.07}, nominal, dt)
    with pytest.raises(ValueError, match="has 2 label times but the grid isoconf.times has 3"):
        transfer.common_grid({0.7: np.array([0.5, 5.0])}, "tau_alpha", {0.7: 5.0}, nominal, dt)
    with pytest.raises(ValueError, match="no tau_alpha estimate"):
        transfer.common_grid(grids, "tau_alpha", {0.7: 5.0, 0.8: None}, nominal, dt)
    # In tau, grids must be equal (1e-9 relative) and are kept in tau.
    same = {0.7: np.array([0.1, 1.0]), 0.8: np.array([0.1, 1.0])}
    np.testing.assert_array_equal(transfer.common_grid(same, "tau"), [0.1, 1.0])
    with pytest.raises(ValueError, match="matched in tau; use isoconf.time_unit: tau_alpha"):
        transfer.common_grid({0.7: np.array([0.1, 1.0]), 0.8: np.array([0.1, 1.1])}, "tau")


def test_align_puts_samples_on_the_common_grid_and_refuses_foreign_times():
    config = cfg.validate_config(base_config())
    times = cfg.label_times(config, 0.7)  # 0.5, 5.0 tau at tau_alpha 5
    np.testing.assert_allclose(times, [0.5, 5.0])
    sample = Sample(3, np.zeros(4), np.zeros((4, 3)), 5.0, times, np.arange(8.0).reshape(4, 2))
    aligned = transfer.align([sample], 0.7, config, np.array([0.1, 1.0]))[0]
    np.testing.assert_array_equal(aligned.times, [0.1, 1.0])
    np.testing.assert_array_equal(aligned.targets, sample.targets)  # targets untouched, same order
    assert aligned.configuration == 3 and sample.times[0] == 0.5  # the original is not modified
    foreign = Sample(3, np.zeros(4), np.zeros((4, 3)), 5.0, [0.5, 6.0], np.zeros((4, 2)))
    with pytest.raises(ValueError, match="label time 6 tau at T = 0.7"):
        transfer.align([foreign], 0.7, config, np.array([0.1, 1.0]))


def test_time_unit_tau_keeps_times_in_tau():
    config = base_config()
    config["isoconf"] = {"n_replicas": 3, "times": [0.1, 1.0]}
    config = cfg.validate_config(config)
    assert transfer.time_basis(config) == "tau"
    np.testing.assert_allclose(transfer.config_grid(config, [0.7, 0.8]), [0.1, 1.0])


# ----------------------------------------------------------------------------- train and evaluate
@pytest.mark.parametrize("flip", [False, True])
def test_transfer_learns_what_carries_over_and_not_what_does_not(tmp_path, flip):
    """Labels = the same linear function of the descriptors at both temperatures (flip False): the model
    trained at 0.8 predicts 0.7's test configuration as well as 0.7's own model (noise 0.2 on labels of
    std ~1.6: r ~ 0.99). With the function's sign flipped at 0.7 (flip True) the transfer model must score
    ~ -0.99 while the in-temperature model still scores ~ +0.99: the evaluation really uses both models."""
    config = cfg.validate_config(base_config())
    layout = write_synthetic_results(tmp_path / "results", config, flip=flip)
    train_in_temperature(config, layout)
    model_dir = transfer_stage.train(transfer.train_settings(config, "ridge"), "ridge", layout)
    assert model_dir == layout.transfer_model_dir("ridge") and layout.transfer_train_log("ridge").is_file()
    metrics = transfer_stage.evaluate(transfer.evaluate_settings(config, "ridge"), "ridge", layout)
    assert layout.transfer_metrics("ridge").is_file() and layout.transfer_predictions("ridge").is_file()
    assert set(metrics["scheme"]) == {"transfer", "in_temperature"}
    assert set(metrics["temperature"]) == {0.7} and set(metrics["time_unit"]) == {"tau_alpha"}
    # Label times on the common grid in tau_alpha, with the test temperature's tau beside them.
    assert sorted(set(metrics["time"])) == [0.1, 1.0]
    np.testing.assert_allclose(sorted(set(metrics["time_tau"])), [0.5, 5.0])
    assert set(metrics.loc[metrics["scheme"] == "transfer", "trained_at"]) == {"0.8"}
    np.testing.assert_allclose(metrics["noise_ceiling"], CEILING)
    own, moved = mean_a(metrics, "in_temperature"), mean_a(metrics, "transfer")
    assert (own > 0.97).all(), own
    if flip:
        assert (moved < -0.97).all(), moved
    else:
        assert (moved > 0.97).all() and np.allclose(moved, own, atol=0.01), (moved, own)
    table = transfer.summary_table(metrics)
    assert len(table) == 2 and table["n_configurations"].tolist() == [1, 1]
    lines = transfer.headline_lines(table)
    assert len(lines) == 1 and "trained on 0.8 -> tested on 0.7 at t = 1 tau_alpha (5 tau)" in lines[0]


@pytest.mark.parametrize("model", ["mlp", "bapst"])
def test_every_registered_kind_of_model_transfers(tmp_path, model, one_torch_thread):
    """The descriptor MLP and the graph network (multi-time head) train on the pooled temperatures and are
    evaluated beside their in-temperature models (tiny sizes: this checks the plumbing of both input kinds,
    not their accuracy; the MLP must still find the linear signal, r > 0.5)."""
    config = base_config()
    config["models"] = {
        "ridge": {"enabled": False},
        "mlp": {"enabled": model == "mlp", "epochs": 30, "batch_size": 64},
        "bapst": {"enabled": model == "bapst", "hidden": 8, "n_message_passing": 1, "epochs": 1}
        | {"multi_time_head": True, "standardise_targets": True, "augment": False, "device": "cpu"},
    }
    config["transfer"] = {"train": [0.8], "test": [0.7]}
    config = cfg.validate_config(config)
    layout = write_synthetic_results(tmp_path / "results", config)
    train_in_temperature(config, layout, model)
    transfer_stage.train(transfer.train_settings(config, model), model, layout)
    metrics = transfer_stage.evaluate(transfer.evaluate_settings(config, model), model, layout)
    assert set(metrics["scheme"]) == {"transfer", "in_temperature"} and sorted(set(metrics["time"])) == [0.1, 1.0]
    assert metrics["pearson"].notna().all()
    if model == "mlp":
        assert (mean_a(metrics, "transfer") > 0.5).all()


def test_transfer_pools_the_train_splits_of_every_train_temperature(tmp_path):
    """Training reads the train and validation configurations of each train temperature and nothing else:
    the test temperature's files and the train temperatures' test configurations are deleted first."""
    import json
    import shutil

    config = base_config(temperatures=[0.6, 0.7, 0.8], tau_alpha_estimates=[30.0, 5.0, 2.0])
    config["transfer"] = {"train": [0.7, 0.8], "test": [0.6]}
    config = cfg.validate_config(config)
    layout = write_synthetic_results(tmp_path / "results", config)
    shutil.rmtree(layout.tdir(0.6))
    for T in (0.7, 0.8):
        layout.labels(T, 3).unlink()
    transfer_stage.train(transfer.train_settings(config, "ridge"), "ridge", layout)
    record = json.loads((layout.transfer_model_dir("ridge") / "input.json").read_text())
    assert record["train_temperatures"] == [0.7, 0.8] and record["train"] == [0, 1] and record["test"] == [3]
    assert record["times"] == [0.1, 1.0] and record["time_basis"] == "tau_alpha"
    model = json.loads((layout.transfer_model_dir("ridge") / "model.json").read_text())
    # Configurations 0, 1 of T = 0.7, then of T = 0.8; validation configuration 2 of each.
    assert model["train_configurations"] == [0, 1, 0, 1] and model["validation_configurations"] == [2, 2]
    np.testing.assert_allclose(model["times"], [0.1, 1.0])  # the model knows the common grid only


def test_command_line_runs_the_transfer_from_a_config_file(tmp_path, capsys):
    """`glasspipe transfer-train / transfer-evaluate --config FILE` (what a user runs by hand); a run that
    is not part of the transfer is refused with exit status 2, naming it."""
    from glasspipe import cli

    config = base_config()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    layout = write_synthetic_results(tmp_path / "results", cfg.validate_config(config))
    train_in_temperature(cfg.validate_config(config), layout)
    common = ["--config", str(path), "--results-dir", str(layout.root), "--model"]
    assert cli.main(["transfer-train", *common, "ridge"]) == 0
    assert cli.main(["transfer-evaluate", *common, "ridge"]) == 0
    assert "in-temperature r" in capsys.readouterr().out and layout.transfer_metrics("ridge").is_file()
    assert cli.main(["transfer-train", *common, "mlp"]) == 2
    assert "'mlp' is not a transfer run" in capsys.readouterr().err


def test_evaluation_refuses_a_model_trained_elsewhere(tmp_path):
    config = cfg.validate_config(base_config())
    layout = write_synthetic_results(tmp_path / "results", config)
    train_in_temperature(config, layout)
    transfer_stage.train(transfer.train_settings(config, "ridge"), "ridge", layout)
    other = copy.deepcopy(config)
    other["transfer"] = {"train": [0.7], "test": [0.8], "models": ["ridge"]}
    with pytest.raises(ValueError, match=r"trained at T = \[0\.8\] but 'transfer.train' is \[0\.7\]"):
        transfer_stage.evaluate(transfer.evaluate_settings(other, "ridge"), "ridge", layout)


def test_settings_hold_only_the_transfer_temperatures():
    config = base_config(temperatures=[0.6, 0.7, 0.8], tau_alpha_estimates=[30.0, 5.0, 2.0])
    config = cfg.validate_config(config)
    settings = transfer.train_settings(config, "ridge")
    assert settings["temperatures"] == [0.8] and settings["tau_alpha_estimates"] == [2.0]
    assert settings["transfer.train"] == [0.8] and "transfer.test" not in settings
    evaluate = transfer.evaluate_settings(config, "ridge")
    assert evaluate["temperatures"] == [0.8, 0.7] and evaluate["tau_alpha_estimates"] == [2.0, 5.0]


# ----------------------------------------------------------------------------- through Snakemake
TINY_TRANSFER = TINY.parent / "tiny_transfer.yaml"


def test_tiny_transfer_dry_run_plans_the_transfer_and_learning_curve_jobs(tmp_path):
    from test_workflow import planned_jobs

    result = snakemake(tmp_path, "-n", configfile=TINY_TRANSFER)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result)
    # One transfer model (ridge, 0.9 -> 0.8); learning curve n = 1 at both temperatures (n = 2 is the full model).
    assert jobs["transfer_train"] == jobs["transfer_evaluate"] == 1
    assert jobs["learning_curve_train"] == jobs["learning_curve_evaluate"] == jobs["train"] == 2


def test_transfer_config_refused_before_any_job(tmp_path):
    config = yaml.safe_load(TINY_TRANSFER.read_text())
    config["transfer"]["test"] = [0.7]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=bad)
    assert result.returncode != 0 and "'transfer.test' names temperature(s) [0.7]" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def check_tiny_transfer_results(root) -> None:
    """The outputs of the tiny transfer workflow (tests/configs/tiny_transfer.yaml) and their consistency
    with the per-temperature stages."""
    layout = Layout(root)
    metrics = pd.read_parquet(layout.transfer_metrics("ridge"))
    assert set(metrics["scheme"]) == {"transfer", "in_temperature"} and set(metrics["temperature"]) == {0.8}
    # Label times matched by t / tau_alpha: 0.05, 0.5, 2 tau_alpha = 0.08, 0.8, 3.2 tau at T = 0.8 (1.6).
    np.testing.assert_allclose(sorted(set(metrics["time"])), [0.05, 0.5, 2.0])
    np.testing.assert_allclose(sorted(set(metrics["time_tau"])), [0.08, 0.8, 3.2], rtol=1e-9)
    assert metrics["pearson"].between(-1, 1).all() and metrics["noise_ceiling"].between(0, 1).all()
    # The in-temperature rows are the evaluate stage's numbers for the same model and test configuration.
    own = pd.read_parquet(layout.metrics(0.8, "ridge"))
    key = ["type", "scope", "configuration"]
    inside = metrics[metrics["scheme"] == "in_temperature"].sort_values([*key, "time_tau"])
    own = own.sort_values([*key, "time"])
    np.testing.assert_allclose(inside["pearson"].to_numpy(), own["pearson"].to_numpy(), rtol=0, atol=1e-12)
    # Learning curve: n = 1 and the full model (n = 2) at both temperatures; the full point is evaluate's.
    for T in (0.8, 0.9):
        curve = pd.read_parquet(layout.learning_curve_metrics(T, "ridge"))
        assert sorted(set(curve["n_train"])) == [1, 2]
        full = curve[curve["full"]].sort_values([*key, "time"])
        own = pd.read_parquet(layout.metrics(T, "ridge")).sort_values([*key, "time"])
        np.testing.assert_allclose(full["pearson"].to_numpy(), own["pearson"].to_numpy(), rtol=0, atol=1e-12)
    assert "ridge: trained on 0.9 -> tested on 0.8 at t = " in (layout.report_dir / "transfer.md").read_text()
    assert len(pd.read_parquet(layout.report_dir / "transfer.parquet")) == 3
    assert (layout.report_dir / "learning_curve.png").stat().st_size > 0
    figure = pd.read_parquet(layout.report_dir / "learning_curve.parquet")
    assert sorted(figure["n_train"]) == [1, 1, 2, 2] and figure["ceiling"].between(0, 1).all()
    readme = (layout.root / "README.md").read_text()
    assert "## Transfer across temperatures" in readme and "## Learning curves" in readme
    # The slopes of the curves: one step (1 to 2) per temperature and label time (3 times at each of 2).
    assert "per doubling" in readme and readme.count(" 1 to 2 ") == 2 * 3
    assert "  transfer/ridge/metrics.parquet\n" in (layout.root / "MANIFEST.sha256").read_text()  # checksummed


@pytest.mark.slow
def test_tiny_transfer_workflow_end_to_end(tmp_path):
    """Two temperatures of the tiny workflow with transfer and a learning curve (ridge): 42 jobs, ~130 s of
    CPU, 79 s wall on 2 cores."""
    result = snakemake(tmp_path, "--cores", "2", configfile=TINY_TRANSFER)
    assert result.returncode == 0, result.stderr[-3000:]
    check_tiny_transfer_results(tmp_path / "results")
