"""A public dataset through the whole workflow: BOTAN-format files in, cross-validated models and the
headline summary out (import_source replaces the simulation stages)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, random_sequential_addition
from test_workflow import planned_jobs, snakemake

TINY_IMPORT = REPO / "tests" / "configs" / "tiny_import.yaml"
N, R, N_FILES = 200, 4, 6


def write_botan_like(folder, n_files: int, seed: int = 0):
    """BOTAN-format files (types, initial_positions in [0, L), replicas' unwrapped positions) whose
    displacements grow with the number of close neighbours, so that structure predicts them."""
    rng = np.random.default_rng(seed)
    box = (N / 1.2) ** (1 / 3)
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(1, n_files + 1):
        positions = random_sequential_addition(N, box, 0.7, rng) + 0.5 * box
        types = (rng.random(N) < 0.2).astype(np.int8)
        d = positions[:, None] - positions[None]
        d -= box * np.round(d / box)
        crowding = (np.linalg.norm(d, axis=-1) < 1.3).sum(axis=1)
        scale = 0.002 * crowding[None, :, None] ** 2
        replicas = positions[None] + scale * rng.normal(size=(R, N, 3))
        np.savez(
            folder / f"isoconfig_N{N}T0.44_{c}_tc07.npz", types=types, initial_positions=positions, positions=replicas
        )


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_import")
    write_botan_like(workdir / "botan_tiny", N_FILES)
    result = snakemake(workdir, "--cores", "2", configfile=TINY_IMPORT)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_imported_dataset_runs_end_to_end(imported_run):
    config = yaml.safe_load(TINY_IMPORT.read_text())
    root = imported_run / "results"
    tdir = root / "T0.44"
    for c in range(N_FILES):
        labels = pd.read_parquet(tdir / "labels" / f"cfg{c:03d}.parquet")
        # One label time: BOTAN's time index 7 at T = 0.44 is their tau_alpha, 4120 tau.
        assert len(labels) == N and labels["time"].unique().tolist() == [4120.0]
        assert (tdir / "equilibrate" / f"cfg{c:03d}.inherent.gsd").stat().st_size > 0
    assert not (tdir / "init").exists() and not (tdir / "isoconf").exists()
    folds = config["split"]["folds"]
    for model in ("ridge", "bapst"):
        for k in range(folds):
            assert (tdir / "models" / model / f"fold{k}" / "train_log.parquet").is_file()
        predictions = pd.read_parquet(tdir / "predictions" / f"{model}.parquet")
        # Cross-validation: every configuration is predicted exactly once, by the fold that held it out.
        per_config = predictions.groupby("configuration")["fold"].unique()
        assert sorted(per_config.index) == list(range(N_FILES))
        assert all(len(f) == 1 and f[0] == c % folds for c, f in per_config.items())
    summary = json.loads((root / "report" / "summary.json").read_text())
    entry = summary["temperatures"]["0.44"]
    assert entry["tau_alpha"] == 4120.0
    for model in ("ridge", "bapst"):
        (row,) = entry["labels"]["propensity"][model]
        assert row["time"] == 4120.0 and row["time_tau_alpha"] == 1.0
        assert row["n_test_configurations"] == N_FILES
        assert 0 < row["noise_ceiling"] <= 1 and -1 <= row["mean_pearson"] <= 1
    # The crowding-driven displacements are learnable: ridge on radial descriptors finds them.
    assert entry["labels"]["propensity"]["ridge"][0]["mean_pearson"] > 0.3
    assert "BOTAN" in (root / "README.md").read_text()
    # The artifact: the manifest verifies, and the citation record names the dataset's source and license.
    from glasspipe import artifact

    assert artifact.verify(root).ok
    (_, dataset) = yaml.safe_load((root / "CITATION.cff").read_text())["references"]
    assert dataset["title"] == "botan dataset" and dataset["license"] == "Apache-2.0"


@pytest.mark.slow
def test_test_directory_switches_cross_validation_off(imported_run):
    write_botan_like(imported_run / "botan_tiny_test", 2, seed=1)
    result = snakemake(
        imported_run,
        "-n",
        "--config",
        "source={format: botan, train: botan_tiny, test: botan_tiny_test}",
        configfile=TINY_IMPORT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result)
    # Two new configurations to import and describe; one fold per model instead of three.
    assert jobs["import_source"] == 2 and jobs["structure"] == 2
    resolved = yaml.safe_load((imported_run / "results" / "report" / "config.resolved.yaml").read_text())
    n_models = sum(model["enabled"] for model in resolved["models"].values())
    assert jobs["train"] == jobs["evaluate"] == n_models >= 3
