"""The labels stage: every enabled dynamical label of one configuration, read from its files and written as
three tables (the library that computes them: glasspipe.labels.compute and the label modules)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe import config as cfg
from glasspipe.io.gsd_io import read_snapshot
from glasspipe.io.tables import write_table
from glasspipe.labels.compute import LabelResult, compute_labels, replicas_from_files
from glasspipe.labels.registry import DENSE_GRID, enabled
from glasspipe.stages.common import metadata


def labels(
    settings: dict,
    temperature: float,
    configuration: int,
    equilibrated: Path,
    replicas: list[Path],
    output: Path,
    dense_output: Path | None = None,
    ceilings_output: Path | None = None,
) -> None:
    """Every enabled dynamical label of one configuration (glasspipe.labels.compute; Parquet, long format).

    ``output``: propensity (the columns the models read) and the label-time labels; ``dense_output``: the
    dense-window labels (p_hop, CWT), written when some are enabled; ``ceilings_output``: the noise ceiling
    of every label column and time. The labels table's metadata also carries the self intermediate
    scattering function F_s(q = 7.25, t) of the A particles averaged over replicas, from which the report
    reads tau_alpha, and the noise ceiling of the A propensity per label time (``noise_ceiling``, as before).
    """
    from glasspipe.dynamics.relaxation import Q_PEAK_KA, self_isf
    from glasspipe.labels.propensity import noise_ceiling_from_distances

    config = cfg.fill_defaults(settings)
    result = compute_labels_from_files(config, equilibrated, replicas, cfg.tau_alpha_estimate(config, temperature))
    table = result.table
    times = result.label_times
    positions = result.label_positions  # (replicas, times, N, 3), unwrapped from the common origin
    is_a = result.typeid == 0
    ceiling = noise_ceiling_from_distances(times, np.linalg.norm(positions - result.origin, axis=-1), is_a)
    fs = [float(self_isf(result.origin, positions[:, k], Q_PEAK_KA, mask=is_a).mean()) for k in range(len(times))]
    common = dict(temperature=temperature, configuration=configuration, equilibrated=str(equilibrated))
    meta = metadata(
        "labels",
        settings,
        **common,
        n_replicas=len(replicas),
        self_isf={"q": Q_PEAK_KA, "times": times.tolist(), "fs_A": fs},
        noise_ceiling=ceiling.to_dict(orient="list"),
        noise_ceilings=_label_ceilings(result.ceilings),
        label_info=result.info,
    )
    write_table(table, output, metadata=meta)
    if dense_output is not None and result.dense is not None:
        write_table(result.dense, dense_output, metadata=metadata("labels", settings, **common, label_info=result.info))
    if ceilings_output is not None:
        write_table(result.ceilings, ceilings_output, metadata=metadata("labels", settings, **common))


def _label_ceilings(ceilings: pd.DataFrame) -> dict:
    """{label column: {time, half_half_pearson, reliability, ceiling}} of the label-time columns (the report
    reads the ceiling of the label a model learnt from here)."""
    label_grid = ceilings[ceilings["grid"] == "label"]
    columns = ["time", "half_half_pearson", "reliability", "ceiling"]
    return {name: group[columns].to_dict(orient="list") for name, group in label_grid.groupby("label", sort=False)}


def compute_labels_from_files(
    settings: dict, equilibrated: str | Path, replica_paths: Sequence[str | Path], tau_alpha: float | None = None
) -> LabelResult:
    """:func:`glasspipe.labels.compute.compute_labels` with the initial configuration read from ``equilibrated``
    (its last frame)."""
    if len(replica_paths) == 0:
        raise ValueError(f"no replica files given for the initial configuration {equilibrated}")
    chunk = int(settings.get("labels", {}).get("chunk_replicas", 4))
    threads = int(settings.get("labels", {}).get("threads", 1))
    initial = read_snapshot(equilibrated)
    dense = any(spec.grid == DENSE_GRID for spec in enabled(settings.get("labels", {})))
    frames = replicas_from_files(settings, initial, replica_paths, dense)
    return compute_labels(settings, initial, frames, len(replica_paths), tau_alpha, chunk, threads)
