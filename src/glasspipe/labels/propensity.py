"""Dynamic propensity from iso-configurational ensembles, and the noise ceiling it implies.

The propensity of particle i at time t is the mean over R iso-configurational replicas (same initial
positions, fresh Maxwell-Boltzmann velocities) of the distance |r_i(t) - r_i(0)| travelled, with r the
unwrapped position (Widmer-Cooper & Harrowell; Bapst et al. 2020; BOTAN; GlassBench). It is the mean
distance, not the mean squared displacement.

Conventions:
- ``trajectories[r][k]`` is replica r's Snapshot at label time k; all replicas share the times (read from
  ``Snapshot.time``). The initial frame at t = 0 is not part of the list, but a caller may leave each
  replica's own t = 0 frame at the head of its list: it is then checked against the initial snapshot and
  used as that replica's origin, so that the image flags of a replica never need to agree with the
  initial snapshot's.
- Positions at t = 0 must agree with the initial snapshot modulo the box, to single-precision rounding
  (the GSD files store float32).
- The per-particle spread over replicas is the sample standard deviation (ddof = 1).

Noise ceiling (REFERENCE.md section 3): the replica mean is itself a noisy estimate of the true propensity.
Splitting the replicas into two halves gives two independent estimates; their Pearson correlation r_hh
over A particles, corrected with Spearman-Brown, estimates the reliability of the full R-replica mean,
rho = 2 r_hh / (1 + r_hh) (for an odd number of replicas, the general formula of glasspipe.labels.ceiling),
and no predictor can correlate with the measured propensity better than
sqrt(rho) on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot, read_snapshot, read_trajectory
from glasspipe.labels.ceiling import pearson_rows, reliability_from_halves

# Single-precision positions carry a relative rounding error of 2**-24 ~ 6e-8; allow a wide margin.
_POSITION_RTOL = 1e-6


def _position_tolerance(box_length: float) -> float:
    return _POSITION_RTOL * max(1.0, box_length)


def _min_image(delta: np.ndarray, box_length: float) -> np.ndarray:
    return delta - box_length * np.round(delta / box_length)


def _check_same_particles(initial: Snapshot, snapshot: Snapshot, where: str) -> None:
    if snapshot.n_particles != initial.n_particles:
        raise ValueError(
            f"{where} holds {snapshot.n_particles} particles but the initial configuration {initial.n_particles}"
        )
    if not np.array_equal(snapshot.typeid, initial.typeid):
        n_diff = int(np.count_nonzero(snapshot.typeid != initial.typeid))
        raise ValueError(f"{where} has different particle types than the initial configuration ({n_diff} differ)")
    if not np.isclose(snapshot.box_length, initial.box_length, rtol=1e-6):
        raise ValueError(
            f"{where} has box length {snapshot.box_length} but the initial configuration {initial.box_length}"
        )


def _check_origin(initial: Snapshot, frame: Snapshot, where: str) -> None:
    delta = _min_image(frame.positions - initial.positions, initial.box_length)
    worst = float(np.abs(delta).max(initial=0.0))
    tol = _position_tolerance(initial.box_length)
    if worst > tol:
        particle = int(np.argmax(np.abs(delta).max(axis=1)))
        raise ValueError(
            f"{where}: positions at t = 0 differ from the initial configuration by up to {worst:.3g} "
            f"(particle {particle}; tolerance {tol:.3g} for single-precision rounding); "
            "the replicas do not start from this configuration"
        )


def replica_displacements(
    initial: Snapshot, trajectories: Sequence[Sequence[Snapshot]]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated displacement norms |r_i(t_k) - r_i(0)| of every replica.

    Returns ``(times, distances)`` with ``times`` of shape (K,) and ``distances`` of shape (R, K, N).
    Raises ValueError naming the replica and frame where particle numbers, types, box, times or the
    positions at t = 0 disagree.
    """
    if len(trajectories) == 0:
        raise ValueError("no replicas given: propensity needs at least one iso-configurational replica")
    origin0 = initial.unwrapped_positions()
    times_ref: np.ndarray | None = None
    distances = []
    for r, frames in enumerate(trajectories):
        frames = list(frames)
        origin = origin0
        if frames and frames[0].time == 0.0:
            _check_same_particles(initial, frames[0], f"replica {r}, frame at t = 0")
            _check_origin(initial, frames[0], f"replica {r}")
            origin = frames[0].unwrapped_positions()
            frames = frames[1:]
        if not frames:
            raise ValueError(f"replica {r} holds no frame after t = 0")
        times = np.array([frame.time for frame in frames], dtype=np.float64)
        if np.any(times <= 0.0):
            raise ValueError(f"replica {r} has a frame at time {times[times <= 0][0]} after its first frame")
        if times_ref is None:
            times_ref = times
        elif len(times) != len(times_ref) or not np.allclose(times, times_ref, rtol=1e-9, atol=0.0):
            raise ValueError(
                f"replica {r} has label times {times.tolist()} but replica 0 has {times_ref.tolist()}; "
                "all replicas must be sampled at the same times"
            )
        positions = np.empty((len(frames), initial.n_particles, 3))
        for k, frame in enumerate(frames):
            _check_same_particles(initial, frame, f"replica {r}, frame {k} (t = {frame.time:g})")
            positions[k] = frame.unwrapped_positions()
        distances.append(np.linalg.norm(positions - origin[None], axis=-1))
    return times_ref, np.stack(distances)


def _type_names(snapshot: Snapshot) -> np.ndarray:
    return np.asarray(snapshot.type_names, dtype=object)[snapshot.typeid]


def propensity(initial: Snapshot, trajectories: Sequence[Sequence[Snapshot]]) -> pd.DataFrame:
    """Propensity of every particle at every label time, in long format.

    One row per (time, particle), ordered by time then particle: ``particle`` (int), ``type`` ('A'/'B'),
    ``time`` (tau), ``propensity`` (mean over replicas of |r_i(t) - r_i(0)|, sigma_AA) and
    ``propensity_std`` (sample standard deviation over replicas; NaN with a single replica).
    """
    times, distances = replica_displacements(initial, trajectories)
    return _long_table(initial, times, distances)


def _long_table(initial: Snapshot, times: np.ndarray, distances: np.ndarray) -> pd.DataFrame:
    n_replicas, n_times, n = distances.shape
    mean = distances.mean(axis=0)
    if n_replicas > 1:
        std = distances.std(axis=0, ddof=1)
    else:
        std = np.full_like(mean, np.nan)
    return pd.DataFrame(
        {
            "particle": np.tile(np.arange(n, dtype=np.int64), n_times),
            "type": np.tile(_type_names(initial), n_times),
            "time": np.repeat(times, n),
            "propensity": mean.reshape(-1),
            "propensity_std": std.reshape(-1),
        }
    )


def load_replicas(
    initial_path: str | Path, replica_paths: Sequence[str | Path]
) -> tuple[Snapshot, list[list[Snapshot]]]:
    """Read the initial configuration (last frame of ``initial_path``) and each replica's GSD trajectory.

    Each replica file holds frame 0 at t = 0 (checked against the initial configuration) and then one frame
    per label time. The returned trajectories hold only the label-time frames, with image flags shifted so
    that every replica's t = 0 frame unwraps onto the initial configuration's unwrapped positions; they can
    be passed to :func:`propensity` directly.
    """
    initial = read_snapshot(initial_path)
    if len(replica_paths) == 0:
        raise ValueError(f"no replica files given for the initial configuration {initial_path}")
    trajectories = []
    for path in replica_paths:
        frames = load_replica_file(initial, path)
        # Frames of an isoconf dense window carry log 'label' = 0; only label frames make labels.
        trajectories.append([f for f in frames[1:] if is_label_frame(f)])
    return initial, trajectories


def is_label_frame(frame: Snapshot) -> bool:
    """True for a frame at a label time (log 'label' = 1, the default), False for a dense-window-only frame."""
    return float(np.ravel(frame.log.get("label", 1.0))[0]) == 1.0


def load_replica_file(initial: Snapshot, path: str | Path) -> list[Snapshot]:
    """Every frame of one replica file (t = 0 first, then label and dense-window frames in time order), with
    image flags shifted so that the t = 0 frame unwraps onto the initial configuration's unwrapped positions.
    Raises ValueError naming the file when frame 0 is not at t = 0, no other frame exists, or the replica does
    not start from ``initial``."""
    frames = read_trajectory(path)
    first = frames[0]
    if first.time != 0.0:
        raise ValueError(f"replica file {path}: frame 0 is at t = {first.time}, expected the t = 0 frame")
    if len(frames) < 2:
        raise ValueError(f"replica file {path} holds only the t = 0 frame; no label times were written")
    _check_same_particles(initial, first, f"replica file {path}, frame 0")
    _check_origin(initial, first, f"replica file {path}")
    offset = np.round((initial.unwrapped_positions() - first.unwrapped_positions()) / initial.box_length).astype(
        np.int32
    )
    shifted = []
    for frame in frames:
        frame = frame.copy()
        frame.images = frame.images + offset
        shifted.append(frame)
    return shifted


def propensity_from_files(initial_path: str | Path, replica_paths: Sequence[str | Path]) -> pd.DataFrame:
    """:func:`propensity` of the replicas stored in GSD files (see :func:`load_replicas`)."""
    initial, trajectories = load_replicas(initial_path, replica_paths)
    return propensity(initial, trajectories)


def noise_ceiling(
    initial: Snapshot,
    trajectories: Sequence[Sequence[Snapshot]],
    type_name: str = "A",
    n_splits: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Half-half reliability of the propensity at each label time, over particles of ``type_name``.

    The replicas are split into two halves (R // 2 and R - R // 2 replicas); the Pearson correlation r_hh
    between the two half-means over the particles of ``type_name`` estimates the reliability of a
    half-size ensemble. With ``n_splits = 1`` the split is first half versus second half; with more, r_hh
    is the mean over ``n_splits`` random splits drawn with ``seed``.

    Returns one row per time: ``time``, ``half_half_pearson`` (r_hh), ``half_half_std`` (spread over the
    splits, 0 for one split), ``reliability`` (Spearman-Brown 2 r_hh / (1 + r_hh) for equal halves, the
    general formula of glasspipe.labels.ceiling for R odd: the reliability of the full R-replica mean),
    ``ceiling`` (sqrt(reliability): the largest Pearson correlation a predictor can
    reach against the measured propensity on average), ``n_replicas``, ``n_particles``.
    """
    times, distances = replica_displacements(initial, trajectories)
    return noise_ceiling_from_distances(
        times, distances, initial.typeid == _type_id(initial, type_name), n_splits=n_splits, seed=seed
    )


def _type_id(snapshot: Snapshot, type_name: str) -> int:
    if type_name not in snapshot.type_names:
        raise ValueError(f"type {type_name!r} is not one of the snapshot's types {list(snapshot.type_names)}")
    return list(snapshot.type_names).index(type_name)


def noise_ceiling_from_distances(
    times: np.ndarray, distances: np.ndarray, mask: np.ndarray, n_splits: int = 1, seed: int = 0
) -> pd.DataFrame:
    """:func:`noise_ceiling` on precomputed distances (R, K, N) and a particle mask (N,)."""
    distances = np.asarray(distances, dtype=np.float64)
    n_replicas = distances.shape[0]
    if n_replicas < 2:
        raise ValueError(f"the noise ceiling needs at least 2 replicas to split in halves, found {n_replicas}")
    mask = np.asarray(mask, dtype=bool)
    n_selected = int(mask.sum())
    if n_selected < 3:
        raise ValueError(f"the noise ceiling needs at least 3 particles of the chosen type, found {n_selected}")
    if n_splits < 1:
        raise ValueError(f"n_splits = {n_splits} must be at least 1")
    selected = distances[:, :, mask]
    half = n_replicas // 2
    if n_splits == 1:
        orders = [np.arange(n_replicas)]
    else:
        rng = np.random.default_rng(seed)
        orders = [rng.permutation(n_replicas) for _ in range(n_splits)]
    r_hh = np.stack([pearson_rows(selected[o[:half]].mean(axis=0), selected[o[half:]].mean(axis=0)) for o in orders])
    mean = r_hh.mean(axis=0)
    # Spearman-Brown 2 r / (1 + r) for equal halves; the general formula when R is odd (labels.ceiling).
    reliability = reliability_from_halves(mean, half, n_replicas - half)
    return pd.DataFrame(
        {
            "time": np.asarray(times, dtype=np.float64),
            "half_half_pearson": mean,
            "half_half_std": r_hh.std(axis=0),
            "reliability": reliability,
            "ceiling": np.sqrt(np.clip(reliability, 0.0, None)),
            "n_replicas": n_replicas,
            "n_particles": n_selected,
        }
    )


# --- registry --------------------------------------------------------------------------------------
from glasspipe.labels.registry import LABEL_GRID, Context, LabelSpec, register  # noqa: E402


def _compute(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    delta = np.asarray(positions, dtype=np.float64) - context.origin
    return {"propensity": np.sqrt(np.einsum("...i,...i->...", delta, delta))}  # |r_i(t) - r_i(0)|, one pass


register(
    LabelSpec(
        name="propensity",
        grid=LABEL_GRID,
        columns=lambda settings: ["propensity"],
        compute=_compute,
        units="sigma_AA",
        description="replica mean of |r_i(t) - r_i(0)| (always computed; the models' default target)",
    )
)
