"""Shared fixtures: the public dataset samples in ../shared/data (skipped where absent).

GLASSPIPE_SHARED_DATA, when set, is the only place looked: set it to an empty or missing folder to run the
tests as on a fresh clone, which has no ../shared (.ci/run does this once for the config and dataset tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glasspipe.plugins_all  # noqa: F401  (fills the registries: models, labels, descriptor sets, formats)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The folder of public dataset samples: $GLASSPIPE_SHARED_DATA when set (even to ''), else shared/data
    beside the repo; None when that folder is missing or empty (the tests that need it then skip)."""
    explicit = os.environ.get("GLASSPIPE_SHARED_DATA")
    # Set means "look here only": an empty or missing folder hides ../shared, as on a fresh clone.
    folder = Path(explicit) if explicit is not None else REPO.parent / "shared" / "data"
    if explicit == "" or not folder.is_dir() or not any(folder.iterdir()):
        return None
    return folder


SHARED_MISSING = (
    "public dataset samples (shared/data beside the repository, or $GLASSPIPE_SHARED_DATA) are not available, "
    "as on a fresh clone"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of public dataset samples (shared_data_dir); skips the test where there is none."""
    folder = shared_data_dir()
    if folder is None:
        pytest.skip(SHARED_MISSING)
    return folder


@pytest.fixture(scope="session")
def shared_botan_train(shared_data) -> Path:
    """The local copy of BOTAN's 10 training files at T = 0.44 (shared/data/botan_T0.44_train); skips the
    test where it is absent. Read-only: copy it before changing anything."""
    folder = shared_data / "botan_T0.44_train"
    if not folder.is_dir():
        pytest.skip(f"{folder} (BOTAN's 10 training files, a sample in shared/data) is not available")
    return folder


@pytest.fixture
def dataset_cache(tmp_path, monkeypatch) -> Path:
    """An empty glasspipe cache for one test ($GLASSPIPE_CACHE), so that neither the user's installed
    datasets nor the test's own leak into other tests; datasets install under its datasets/ folder."""
    cache = tmp_path / "glasspipe-cache"
    monkeypatch.setenv("GLASSPIPE_CACHE", str(cache))
    return cache


def random_sequential_addition(n: int, box_length: float, min_distance: float, rng) -> np.ndarray:
    """(n, 3) positions inserted one by one, uniformly in the periodic box, rejecting any trial closer than
    min_distance to an earlier particle: no overlaps and no lattice memory (for test configurations)."""
    positions = np.empty((0, 3))
    while len(positions) < n:
        trial = rng.uniform(-0.5 * box_length, 0.5 * box_length, 3)
        d = positions - trial
        d -= box_length * np.round(d / box_length)
        if not np.any(np.einsum("ij,ij->i", d, d) < min_distance**2):
            positions = np.vstack([positions, trial])
    return positions


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: the machine is shared, and oversubscribed threads make small models crawl."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- the tiny end-to-end run

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, configfile: Path = TINY) -> subprocess.CompletedProcess:
    """``snakemake`` on this repository's Snakefile in ``workdir`` with ``configfile`` (the tiny config)."""
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(configfile), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One run of the whole tiny workflow, shared by every test that reads it (it takes ~2 minutes).
    Tests must not change its files; copy them first."""
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir
