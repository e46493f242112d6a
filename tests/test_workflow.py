"""The Snakemake workflow end to end on a tiny configuration, reruns, and refusal of bad configs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import gsd.hoomd
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, TINY, snakemake  # noqa: F401  (tiny_run: a session fixture there)

from glasspipe import config as cfg


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule name -> job count."""
    text = result.stdout + result.stderr
    stats = text[text.index("Job stats:") :]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m.group(1) != "total"}


@pytest.mark.slow
def test_end_to_end_outputs_exist_and_are_well_formed(tiny_run):
    config = yaml.safe_load(TINY.read_text())
    root = tiny_run / "results"
    tdir = root / "T0.8"
    n, n_cfg, n_rep = (
        config["system"]["n_particles"],
        config["n_configurations"],
        config["isoconf"]["n_replicas"],
    )
    n_times = len(config["isoconf"]["times"])
    for c in range(n_cfg):
        with gsd.hoomd.open(tdir / "equilibrate" / f"cfg{c:03d}.gsd") as traj:
            assert len(traj) == 1 and traj[0].particles.N == n
        with gsd.hoomd.open(tdir / "equilibrate" / f"cfg{c:03d}.inherent.gsd") as traj:
            assert traj[0].particles.N == n
        for r in range(n_rep):
            with gsd.hoomd.open(tdir / "isoconf" / f"cfg{c:03d}" / f"replica{r:02d}.gsd") as traj:
                # t = 0, the label times 10, 100, 400 steps and the dense window 50, 100, 150, 200.
                assert [frame.configuration.step for frame in traj] == [0, 10, 50, 100, 150, 200, 400]
                assert sum(frame.log["glasspipe/label"][0] for frame in traj) == 1 + n_times
        labels = pd.read_parquet(tdir / "labels" / f"cfg{c:03d}.parquet")
        assert len(labels) == n * n_times and (labels["propensity"] > 0).all()
        structure = pd.read_parquet(tdir / "structure" / f"cfg{c:03d}.parquet")
        assert len(structure) == n
        checks = json.loads((tdir / "equilibrate" / f"cfg{c:03d}.checks.json").read_text())
        assert set(checks["checks"]) == {"stationarity", "temperature", "crystal", "ageing"}
        # Inherent structures of KA at density 1.2 lie near U/N = -7.6 to -7.7, far below the liquid's -6.3.
        assert -8.0 < checks["inherent_potential_energy"] < -7.2
        thermo = pd.read_parquet(tdir / "equilibrate" / f"cfg{c:03d}.thermo.parquet")
        assert {"time", "potential_energy", "kinetic_temperature", "pressure", "phase"} <= set(thermo.columns)
    # Propensity grows with time on average (ballistic -> diffusive).
    labels = pd.read_parquet(tdir / "labels" / "cfg000.parquet")
    means = labels.groupby("time")["propensity"].mean()
    assert means.is_monotonic_increasing
    for model in ("ridge", "bapst"):
        metrics = pd.read_parquet(tdir / "metrics" / f"{model}.parquet")
        pooled = metrics[(metrics["scope"] == "pooled") & (metrics["type"] == "A")]
        assert len(pooled) == n_times and pooled["pearson"].between(-1, 1).all()
    assert (tdir / "models" / "bapst" / "fold0" / "model.pt").stat().st_size > 0
    summary = json.loads((root / "report" / "summary.json").read_text())
    entries = summary["temperatures"]["0.8"]["labels"]["propensity"]["bapst"]
    assert len(entries) == n_times and all(0 < e["noise_ceiling"] <= 1 for e in entries)
    # ridge learns two labels (target: [propensity, bond_breaking]): a second run, 'ridge.bond_breaking',
    # whose metrics name the label and whose predictions' targets are the bond-breaking column.
    metrics = pd.read_parquet(tdir / "metrics" / "ridge.bond_breaking.parquet")
    assert set(metrics["model"]) == {"ridge"} and set(metrics["label"]) == {"bond_breaking"}
    assert set(pd.read_parquet(tdir / "metrics" / "ridge.parquet")["label"]) == {"propensity"}
    predictions = pd.read_parquet(tdir / "predictions" / "ridge.bond_breaking.parquet")
    test_labels = pd.read_parquet(tdir / "labels" / f"cfg{int(predictions['configuration'].iloc[0]):03d}.parquet")
    merged = predictions.merge(test_labels, on=["particle", "time"], suffixes=("", "_label"))
    assert len(merged) > 0 and np.allclose(merged["target"], merged["bond_breaking"], rtol=0, atol=1e-12)
    assert "ridge" in summary["temperatures"]["0.8"]["labels"]["bond_breaking"]
    figure_data = pd.read_parquet(root / "report" / "correlation.parquet")
    assert set(figure_data["label"]) == {"propensity", "bond_breaking"}
    for name in (
        "correlation.png",
        "correlation.pdf",
        "correlation.parquet",
        "metrics.md",
        "versions.json",
        "config.resolved.yaml",
        "equilibration.parquet",
        "relaxation.parquet",
    ):
        assert (root / "report" / name).stat().st_size > 0, name
    readme = (root / "README.md").read_text()
    assert "bapst" in readme and "ridge" in readme and "lammps" in readme
    # Nothing half-written is left behind.
    assert not list(root.rglob("*.partial"))


@pytest.mark.slow
def test_training_change_reruns_only_training_evaluation_report(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"]["bapst"]["learning_rate"] = 3.0e-3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = snakemake(tiny_run, "-n", configfile=changed)
    assert result.returncode == 0, result.stderr[-2000:]
    assert planned_jobs(result) == {"train": 1, "evaluate": 1, "report": 1, "all": 1}


@pytest.mark.slow
def test_cross_validation_of_simulated_data_retrains_per_fold_and_reuses_the_simulation(tiny_run, tmp_path):
    """split: {validation, folds} on simulated data: one training job per model and fold, one evaluation per
    model over all folds; the split is not a simulation setting, so no MD job reruns."""
    config = yaml.safe_load(TINY.read_text())
    config["split"] = {"validation": 1, "folds": 4}
    changed = tmp_path / "cv.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = snakemake(tiny_run, "-n", configfile=changed)
    assert result.returncode == 0, result.stderr[-2000:]
    n_runs = len(cfg.model_runs(cfg.validate_config(config)))
    assert planned_jobs(result) == {"train": 4 * n_runs, "evaluate": n_runs, "report": 1, "all": 1}


@pytest.mark.slow
def test_temperature_change_reruns_everything(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["temperatures"] = [0.9]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(tiny_run, "-n", configfile=changed))
    n_cfg = config["n_configurations"]
    for rule in ("init", "equilibrate", "isoconf", "labels", "structure"):
        assert jobs[rule] == n_cfg
    n_models = len(cfg.model_runs(cfg.validate_config(config)))  # one per model and label it learns
    assert jobs["train"] == jobs["evaluate"] == n_models >= 2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"engine": {"name": "gromacs"}}, "engine.name"),
        ({"system": {"n_particles": -10}}, "system.n_particles"),
        ({"system": {"density": 0}}, "system.density"),
        ({"models": {"resnet": {}}}, "resnet"),
    ],
)
def test_bad_config_is_refused_before_any_job(tmp_path, change, key):
    config = yaml.safe_load(TINY.read_text())
    for section, value in change.items():
        config.setdefault(section, {}).update(value)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=bad)
    assert result.returncode != 0
    assert key in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_default_config_dry_run_is_clean(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "-n", configfile=tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result)
    assert jobs["equilibrate"] == 8 and jobs["train"] >= 2
