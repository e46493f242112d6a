"""The structure stage: per-particle descriptors of one configuration."""

from __future__ import annotations

import time
from pathlib import Path

from glasspipe import config as cfg
from glasspipe.io.gsd_io import read_snapshot
from glasspipe.io.tables import write_table
from glasspipe.stages.common import metadata


def structure(settings: dict, configuration: Path, output: Path, inherent: Path | None = None) -> None:
    """Per-particle descriptors (the sets of 'structure.sets', joined) of one configuration (Parquet).

    ``configuration`` is the equilibrated configuration or its inherent structure ('structure.input'); with
    'structure.input: both' it is the equilibrated one and ``inherent`` its inherent structure
    (glasspipe.structure.descriptors.compute_paired_descriptors).
    """
    from glasspipe.structure.descriptors import compute_descriptors, compute_paired_descriptors

    section = cfg.fill_defaults(settings)["structure"]
    started = time.perf_counter()
    if inherent is not None:
        table = compute_paired_descriptors(read_snapshot(configuration), read_snapshot(inherent), section["sets"])
    else:
        table = compute_descriptors(read_snapshot(configuration), section["sets"])
    meta = metadata("structure", settings, configuration=str(configuration), wall_s=time.perf_counter() - started)
    write_table(table, output, metadata=meta)
