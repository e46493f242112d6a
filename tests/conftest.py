"""Shared fixtures: the public dataset samples in ../shared/data (skipped where absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The folder of public dataset samples: $GLASSPIPE_SHARED_DATA, or shared/data beside the repo."""
    candidates = [os.environ.get("GLASSPIPE_SHARED_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("public dataset samples (shared/data) are not available")
    return folder


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
