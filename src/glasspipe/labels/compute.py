"""The labels of one configuration: every enabled label of glasspipe.labels.registry, its replica
mean, a single replica's value and the noise ceiling of every label column and time.

Outputs (written by glasspipe.stages.labels; paths in glasspipe.layout):
- the labels table ``T{T}/labels/cfg{c}.parquet`` (LONG: one row per label time and particle): the
  propensity columns the models read (particle, type, time, propensity, propensity_std; unchanged), then
  one column per label-grid label column (replica means: disp_x/y/z, cage_disp_x/y/z, cage_propensity,
  bond_breaking);
- the dense labels table ``T{T}/labels/cfg{c}.dense.parquet`` (only with a dense window and a dense label
  enabled): one row per dense frame and particle, columns particle, type, time, and per dense label column
  (phop, phop_iterative, cwt_s<scale>) its replica mean and ``<column>_single``, replica 0's own value;
- the ceilings table ``T{T}/labels/cfg{c}.ceilings.parquet``: one row per label column and time: grid,
  half_half_pearson, reliability, ceiling (glasspipe.labels.ceiling; A particles; replicas 0..R//2-1 versus
  the rest), single_vs_mean (Pearson correlation over A particles of replica 0's value with the mean of the
  other replicas: how much of one trajectory the iso-configurational average explains), n_half1, n_half2,
  n_particles.
Every table's metadata holds the label settings (times in tau), units and descriptions.

Replicas are read one file at a time and the labels computed ``chunk_replicas`` replicas at a time, so the
memory holds one block of dense trajectories, not the whole ensemble.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot, read_metadata
from glasspipe.labels.ceiling import ceiling_table, pearson_rows
from glasspipe.labels.propensity import _long_table, is_label_frame, load_replica_file
from glasspipe.labels.registry import DENSE_GRID, LABEL_GRID, Context, LabelSpec, enabled, in_tau

# Dense frames come from MD steps rounded to the dt grid: their spacing may differ by one step.
_SPACING_TOLERANCE_STEPS = 1.01


class _Accumulator:
    """Streaming sums over replicas of per-replica values (K, N) of one column."""

    def __init__(self, n_replicas: int):
        self.n_replicas = n_replicas
        self.half = n_replicas // 2
        self.total = None
        self.first_half = None
        self.single = None
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        """values: (r, K, N) of the next r replicas (in replica order)."""
        if self.total is None:
            self.total = np.zeros(values.shape[1:])
            self.single = np.array(values[0], dtype=np.float64)
        for value in values:  # in place, replica by replica: no temporaries of the block's size
            self.total += value
            self.seen += 1
            if self.seen == self.half:  # the same sums in the same order as a separate first-half sum
                self.first_half = self.total.copy()

    def mean(self) -> np.ndarray:
        return self.total / self.n_replicas

    def ceiling(self, times: np.ndarray, mask: np.ndarray) -> dict:
        n1, n2 = self.half, self.n_replicas - self.half
        table = ceiling_table(times, self.first_half / n1, (self.total - self.first_half) / n2, n1, n2, mask)
        others = (self.total - self.single) / (self.n_replicas - 1)
        table["single_vs_mean"] = pearson_rows(self.single[:, mask], others[:, mask]).tolist()
        return table


def _compute_block(specs, block, resolved, context, pool, threads) -> list[dict[str, np.ndarray]]:
    """[{column: (r_k, K, N)}] of every label of ``specs`` on consecutive parts of the replicas ``block``
    (r, K, N, 3), in replica order: the parts are split among the threads of ``pool`` (None: one part, this
    thread). The parts are not concatenated (the accumulators take them one after the other)."""

    def work(part):
        return {c: v for spec in specs for c, v in spec.compute(part, resolved[spec.name], context).items()}

    if pool is None or (len(block) == 1 and len(specs) == 1):
        return [work(block)]
    if len(specs) >= threads:
        # One task per label on the whole block: labels whose kernels hold the GIL (p_hop's many small array
        # operations) then overlap with labels that release it (the CWT's matrix product), which splitting
        # the replicas of one label between threads does not achieve (measured: 1.2x on 2 threads).
        merged: dict[str, np.ndarray] = {}
        for part in pool.map(lambda spec: spec.compute(block, resolved[spec.name], context), specs):
            merged.update(part)
        return [merged]
    return list(pool.map(work, np.array_split(block, min(threads, len(block)))))


@dataclass
class LabelResult:
    """What :func:`compute_labels` returns: the tables and the metadata to store beside them."""

    table: pd.DataFrame
    dense: pd.DataFrame | None
    ceilings: pd.DataFrame
    info: dict
    label_times: np.ndarray  # (K,) tau
    label_positions: np.ndarray  # (R, K, N, 3) unwrapped positions at the label times (sigma_AA)
    origin: np.ndarray  # (N, 3) unwrapped initial positions
    typeid: np.ndarray


def _settings_for(spec: LabelSpec, labels_section: dict, tau_alpha: float | None) -> dict:
    section = dict(labels_section.get(spec.name, {}))
    resolved = in_tau(spec, section, tau_alpha)
    resolved["_columns"] = spec.columns(section)
    return resolved


def _dense_selection(path: Path, labels_settings: dict) -> tuple[set[int], bool]:
    """Steps of the dense-window frames of a replica file (from its isoconf metadata) and whether t = 0 is one."""
    meta = read_metadata(path)
    steps = {int(s) for s in meta.get("dense_steps", [])}
    window = (labels_settings.get("isoconf") or {}).get("dense_window") or {}
    return steps, bool(steps) and float(window.get("start", 1.0)) == 0.0


def _check_spacing(times: np.ndarray, dt: float, source: str) -> float:
    """The spacing (tau) of the dense frames; raises when they are not equally spaced on the dt grid."""
    if len(times) < 2:
        raise ValueError(f"{source} holds {len(times)} dense-window frame(s); p_hop and CWT need more")
    spacing = (times[-1] - times[0]) / (len(times) - 1)
    worst = float(np.abs(np.diff(times) - spacing).max())
    if worst > _SPACING_TOLERANCE_STEPS * dt:
        raise ValueError(
            f"{source}: dense-window frames are not equally spaced (spacing {spacing:g} tau, deviation "
            f"{worst:g} tau > one MD step {dt:g}); check 'isoconf.dense_window'"
        )
    return float(spacing)


@dataclass
class ReplicaFrames:
    """One replica's frames: unwrapped positions (sigma_AA) at the label times (K, N, 3) and, when dense
    labels are wanted, on the dense window (F, N, 3); times in tau; ``source`` names it in messages."""

    label_times: np.ndarray
    label_positions: np.ndarray
    dense_times: np.ndarray | None = None
    dense_positions: np.ndarray | None = None
    dt: float = 0.005
    source: str = "replica"


def replicas_from_files(
    settings: dict, initial: Snapshot, replica_paths: Sequence[str | Path], dense: bool
) -> Iterator[ReplicaFrames]:
    """Read the replica files one at a time (glasspipe.labels.propensity.load_replica_file): label frames are
    those flagged log 'label' = 1, dense frames those at the file's isoconf 'dense_steps' (plus t = 0 when the
    window starts there)."""
    for path in replica_paths:
        path = Path(path)
        frames = load_replica_file(initial, path)
        labelled = [f for f in frames[1:] if is_label_frame(f)]
        if not labelled:
            raise ValueError(f"replica file {path} holds no label-time frame")
        item = ReplicaFrames(
            label_times=np.array([f.time for f in labelled]),
            label_positions=np.stack([f.unwrapped_positions() for f in labelled]),
            dt=frames[0].dt,
            source=f"replica file {path}",
        )
        if dense:
            steps, with_origin = _dense_selection(path, settings)
            if not steps:
                item.dense_times = np.zeros(0)
            else:
                chosen = [f for k, f in enumerate(frames) if f.step in steps or (k == 0 and with_origin)]
                item.dense_times = np.array([f.time for f in chosen])
                item.dense_positions = np.stack([f.unwrapped_positions() for f in chosen])
        yield item


def compute_labels(
    settings: dict,
    initial: Snapshot,
    replicas: Iterable[ReplicaFrames],
    n_replicas: int,
    tau_alpha: float | None = None,
    chunk_replicas: int = 4,
    threads: int = 1,
) -> LabelResult:
    """Every enabled label of one configuration from its ``n_replicas`` replicas (an iterable, consumed once).

    settings: the stage settings (sections 'isoconf' and 'labels', filled with defaults); initial: the
    equilibrated configuration (time origin); tau_alpha: the temperature's estimate (tau), for settings in
    units of tau_alpha. Labels are computed ``chunk_replicas`` replicas at a time, the replicas of a block
    split among ``threads`` threads (numpy releases the GIL in its array operations).
    """
    labels_section = settings.get("labels", {})
    specs = enabled(labels_section)
    label_specs = [s for s in specs if s.grid == LABEL_GRID]
    dense_specs = [s for s in specs if s.grid == DENSE_GRID]
    resolved = {s.name: _settings_for(s, labels_section, tau_alpha) for s in specs}
    if n_replicas < 2:
        raise ValueError(f"the labels need at least 2 replicas (noise ceiling from two halves), found {n_replicas}")
    origin = initial.unwrapped_positions()
    is_a = initial.typeid == 0
    label_positions, label_times = [], None
    dense_times, interval = None, None
    # The dense trajectories of one block of replicas, filled in place (float64): no per-replica copies and
    # no stacking; reused from block to block (the labels return new arrays, never views of it).
    dense_buffer: np.ndarray | None = None
    in_buffer = 0
    acc: dict[str, _Accumulator] = {}

    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None

    def add_block(specs_, block, context):
        for part in _compute_block(specs_, block, resolved, context, pool, threads):
            for column, values in part.items():
                acc.setdefault(column, _Accumulator(n_replicas)).add(values)

    def flush_dense():
        nonlocal in_buffer
        add_block(
            dense_specs,
            dense_buffer[:in_buffer],
            Context(origin, initial.typeid, initial.box_length, dense_times, interval),
        )
        in_buffer = 0

    count = 0
    for item in replicas:
        count += 1
        times = np.asarray(item.label_times, dtype=np.float64)
        if label_times is None:
            label_times = times
        elif len(times) != len(label_times) or not np.allclose(times, label_times, rtol=1e-9, atol=0.0):
            raise ValueError(
                f"{item.source} has label times {times.tolist()} but the first replica {label_times.tolist()}"
            )
        label_positions.append(np.asarray(item.label_positions, dtype=np.float64))
        if dense_specs:
            if item.dense_positions is None or len(item.dense_times) == 0:
                names = ", ".join(f"'labels.{s.name}.enabled'" for s in dense_specs)
                raise ValueError(
                    f"{names} need the dense window of frames, but {item.source} has none; set "
                    "'isoconf.dense_window' (and rerun isoconf) or disable these labels"
                )
            times_d = np.asarray(item.dense_times, dtype=np.float64)
            if dense_times is None:
                dense_times = times_d
                interval = _check_spacing(times_d, item.dt, item.source)
            elif len(times_d) != len(dense_times) or not np.allclose(times_d, dense_times, rtol=1e-9, atol=1e-12):
                raise ValueError(f"{item.source} has other dense-window times than the first replica")
            positions_d = np.asarray(item.dense_positions)
            if dense_buffer is None:
                dense_buffer = np.empty((min(chunk_replicas, n_replicas), *positions_d.shape))
            if positions_d.shape != dense_buffer.shape[1:]:
                raise ValueError(
                    f"{item.source}: dense-window positions of shape {positions_d.shape}, the first replica's are "
                    f"{dense_buffer.shape[1:]}"
                )
            dense_buffer[in_buffer] = positions_d  # converted to float64 in the copy
            in_buffer += 1
            if in_buffer == len(dense_buffer):
                flush_dense()
    if count != n_replicas:
        raise ValueError(f"{count} replicas given, {n_replicas} expected")
    if in_buffer:
        flush_dense()
    positions = np.stack(label_positions)  # (R, K, N, 3)
    context = Context(origin, initial.typeid, initial.box_length, label_times)
    for spec in label_specs:  # build the neighbour lists once, before any thread needs them
        if "r_in" in resolved[spec.name] or "r_cage" in resolved[spec.name]:
            context.neighbours(resolved[spec.name].get("r_in", resolved[spec.name].get("r_cage")))
    for start in range(0, n_replicas, chunk_replicas):
        add_block(label_specs, positions[start : start + chunk_replicas], context)
    if pool is not None:
        pool.shutdown()
    delta = positions - origin
    distances = np.sqrt(np.einsum("...i,...i->...", delta, delta))  # |r_i(t) - r_i(0)|, one pass (norm is slow on 3)
    table = _long_table(initial, label_times, distances)
    ceilings = []
    column_info = {}
    for spec in specs:
        grid_times = label_times if spec.grid == LABEL_GRID else dense_times
        for column in resolved[spec.name]["_columns"]:
            ceil = acc[column].ceiling(grid_times, is_a)
            ceilings.append(pd.DataFrame({"label": column, "grid": spec.grid, **ceil}))
            column_info[column] = {"label": spec.name, "grid": spec.grid, "units": spec.units}
    dense_table = None
    for spec in label_specs:
        for column in resolved[spec.name]["_columns"]:
            if column not in table.columns:
                table[column] = acc[column].mean().reshape(-1)
    if dense_specs:
        n = initial.n_particles
        dense_table = pd.DataFrame(
            {
                "particle": np.tile(np.arange(n, dtype=np.int64), len(dense_times)),
                "type": np.tile(np.asarray(initial.type_names, dtype=object)[initial.typeid], len(dense_times)),
                "time": np.repeat(dense_times, n),
            }
        )
        for spec in dense_specs:
            for column in resolved[spec.name]["_columns"]:
                dense_table[column] = acc[column].mean().reshape(-1)
                dense_table[f"{column}_single"] = acc[column].single.reshape(-1)
    info = {
        "labels": {
            spec.name: {
                "grid": spec.grid,
                "description": spec.description,
                "units": spec.units,
                "settings_tau": {k: v for k, v in resolved[spec.name].items() if k != "_columns"},
                "columns": resolved[spec.name]["_columns"],
            }
            for spec in specs
        },
        "columns": column_info,
        "dense_interval": interval,
        "n_replicas": n_replicas,
        "ceiling_split": f"replicas 0..{n_replicas // 2 - 1} vs {n_replicas // 2}..{n_replicas - 1}; A particles",
    }
    return LabelResult(
        table=table,
        dense=dense_table,
        ceilings=pd.concat(ceilings, ignore_index=True),
        info=info,
        label_times=label_times,
        label_positions=positions,
        origin=origin,
        typeid=initial.typeid,
    )
