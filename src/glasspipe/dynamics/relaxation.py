"""Self intermediate scattering function and the alpha-relaxation time.

F_s(q, t) = < sin(q |dr_i(t)|) / (q |dr_i(t)|) >_i is the isotropic (orientation-averaged) self
intermediate scattering function, dr_i(t) = r_i(t) - r_i(0) computed from *unwrapped* positions, averaged
over the selected particles (usually the A particles) and, where several are given, over replicas or
time origins. tau_alpha is the first time at which F_s at the main peak of S(q) (q ~ 7.25 for KA at
rho = 1.2) falls below 1/e (REFERENCE.md, "Relaxation times").
"""

from __future__ import annotations

import warnings

import numpy as np

Q_PEAK_KA = 7.25  # wavevector of the main peak of S(q), KA at rho = 1.2 (sigma_AA^-1)


def _isotropic_sinc(distances: np.ndarray, q: float) -> np.ndarray:
    """sin(q r) / (q r), equal to 1 at r = 0 (np.sinc(x) = sin(pi x) / (pi x))."""
    return np.sinc(q * distances / np.pi)


def _check_mask(mask, n: int) -> np.ndarray | slice:
    if mask is None:
        return slice(None)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(f"mask must be a boolean array of shape ({n},), got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise ValueError("mask selects no particles")
    return mask


def self_isf(
    reference_positions: np.ndarray,
    trajectory_positions: np.ndarray,
    q: float = Q_PEAK_KA,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """F_s(q, t) of every frame of a trajectory relative to one reference configuration.

    reference_positions: (N, 3) unwrapped positions at t = 0.
    trajectory_positions: (T, N, 3) unwrapped positions (frames, or iso-configurational replicas at one
        time); a single (N, 3) frame is accepted and gives a (1,) result.
    q: wavevector modulus (sigma_AA^-1).
    mask: optional (N,) boolean selection of the particles averaged over (e.g. typeid == 0).
    Returns (T,): the mean of sin(q|dr|)/(q|dr|) over the selected particles, frame by frame.
    """
    reference = np.asarray(reference_positions, dtype=np.float64)
    trajectory = np.asarray(trajectory_positions, dtype=np.float64)
    if trajectory.ndim == 2:
        trajectory = trajectory[None]
    if reference.ndim != 2 or reference.shape[1] != 3 or trajectory.shape[1:] != reference.shape:
        raise ValueError(
            f"reference positions {reference.shape} and trajectory {trajectory.shape} must be (N, 3) and (T, N, 3)"
        )
    if not q > 0:
        raise ValueError(f"q must be positive, got {q}")
    select = _check_mask(mask, len(reference))
    displacement = trajectory[:, select, :] - reference[select, :]
    return _isotropic_sinc(np.linalg.norm(displacement, axis=-1), q).mean(axis=1)


def self_isf_multi_origin(
    times: np.ndarray,
    positions: np.ndarray,
    q: float = Q_PEAK_KA,
    mask: np.ndarray | None = None,
    max_lag: int | None = None,
    origin_stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """F_s(q, t) averaged over time origins of an evenly spaced trajectory.

    times: (F,) frame times, evenly spaced (checked to 1e-6 relative).
    positions: (F, N, 3) unwrapped positions.
    max_lag: largest lag in frames (default F - 1); origin_stride: use every k-th frame as an origin.
    Returns (lag_times, fs), each (max_lag + 1,): lag_times[k] = k * dt and fs[k] the mean over origins
    t0 (and selected particles) of sin(q|r(t0 + k dt) - r(t0)|) / (q|...|); fs[0] = 1.
    """
    times = np.asarray(times, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    n_frames = len(times)
    if positions.ndim != 3 or positions.shape[0] != n_frames or positions.shape[2] != 3:
        raise ValueError(f"positions {positions.shape} must be (F, N, 3) with F = len(times) = {n_frames}")
    if n_frames < 2:
        raise ValueError("need at least two frames")
    steps = np.diff(times)
    dt = steps.mean()
    if not dt > 0 or not np.allclose(steps, dt, rtol=1e-6, atol=0.0):
        raise ValueError("times must be evenly spaced and increasing for a multi-origin average")
    if max_lag is None:
        max_lag = n_frames - 1
    if not 0 <= max_lag < n_frames:
        raise ValueError(f"max_lag = {max_lag} must lie in [0, {n_frames - 1}]")
    if origin_stride < 1:
        raise ValueError(f"origin_stride must be >= 1, got {origin_stride}")
    if not q > 0:
        raise ValueError(f"q must be positive, got {q}")
    select = _check_mask(mask, positions.shape[1])
    selected = positions[:, select, :]

    fs = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        origins = np.arange(0, n_frames - lag, origin_stride)
        displacement = selected[origins + lag] - selected[origins]
        fs[lag] = _isotropic_sinc(np.linalg.norm(displacement, axis=-1), q).mean()
    return np.arange(max_lag + 1) * dt, fs


def tau_alpha(times: np.ndarray, fs: np.ndarray, threshold: float = np.exp(-1.0)) -> float:
    """First time at which F_s falls below ``threshold`` (1/e), interpolated in log time.

    Between the last point above and the first point below the threshold, ln(-ln F_s) is interpolated
    linearly in ln t: this is exact for any exponential or stretched exponential exp(-(t/tau)^beta),
    whatever the time grid. Where that transform is undefined (F_s >= 1 or <= 0 at a bracketing point)
    F_s itself is interpolated linearly in ln t, and linearly in t when the earlier point is t = 0.
    Returns NaN with a RuntimeWarning when F_s never falls below the threshold (or is below it already
    at the first time, so the crossing is not bracketed).
    """
    times = np.asarray(times, dtype=np.float64)
    fs = np.asarray(fs, dtype=np.float64)
    if times.ndim != 1 or times.shape != fs.shape or len(times) == 0:
        raise ValueError(f"times {times.shape} and fs {fs.shape} must be 1-d arrays of the same length")
    if np.any(np.diff(times) <= 0):
        raise ValueError("times must be strictly increasing")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    below = np.flatnonzero(fs < threshold)
    if len(below) == 0:
        warnings.warn(
            f"F_s never falls below {threshold:.4f} (last value {fs[-1]:.4f} at t = {times[-1]:g}); "
            "tau_alpha is longer than the run",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    k = int(below[0])
    if k == 0:
        warnings.warn(
            f"F_s is already below {threshold:.4f} at the first time t = {times[0]:g}; tau_alpha is not bracketed",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    t1, t2 = times[k - 1], times[k]
    f1, f2 = fs[k - 1], fs[k]
    if t1 <= 0:  # no log time at t = 0: linear in t
        return float(t1 + (threshold - f1) / (f2 - f1) * (t2 - t1))
    x1, x2 = np.log(t1), np.log(t2)
    if 0 < f2 and f1 < 1:
        y1, y2, y = np.log(-np.log(f1)), np.log(-np.log(f2)), np.log(-np.log(threshold))
    else:
        y1, y2, y = f1, f2, threshold
    return float(np.exp(x1 + (y - y1) / (y2 - y1) * (x2 - x1)))
