"""Shared fixtures: the public dataset samples in ../shared/data (skipped where absent)."""

from __future__ import annotations

import os
from pathlib import Path

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
