"""Continuous wavelet transform (CWT) label of single trajectories (Pezzicoli's thesis, eqs. 2.16-2.17).

For each Cartesian coordinate d of particle i, on F frames t_j = t_0 + j Delta equally spaced in time,

    W_i^d(s, t_k) = (Delta / sqrt(s)) sum_j r_i^d(t_j) psi((t_j - t_k) / s),
    psi(u) = -C u exp(-u^2),   C = 2 (2 / pi)^(1/4)   (so that integral psi^2 du = 1),

the Riemann sum of (1/sqrt(s)) integral r(t) psi((t - t_k)/s) dt: scale s and times in tau, W in
sigma_AA tau^(1/2). psi is minus the derivative of a Gaussian (PyWavelets' 'gaus1' up to its sign
convention, see tests/test_labels_dynamics.py), so W is minus a smoothed velocity: W < 0 where r increases.
The label of particle i at frame k and scale s is the norm over x, y, z: c_i(s, t_k) = sqrt(sum_d W_i^d^2).

Edges: the trajectory is extended beyond the window by its first and last positions (constant extension),
so that a particle at rest has W = 0 at every frame, the edges included; the sum runs over |u| <= 6
(psi(6) / max psi ~ 4e-15). Because psi is odd, W does not depend on the origin of the positions.

The transform is one matrix product per trajectory: W = X @ M_s with M_s (F x F) holding the wavelet
weights (the constant extension folded into the first and last rows), all scales side by side.
"""

from __future__ import annotations

import numpy as np

PSI_NORM = 2.0 * (2.0 / np.pi) ** 0.25
SUPPORT = 6.0  # |u| beyond which psi(u) is neglected (psi(6) ~ 1.7e-15)


def psi(u: np.ndarray) -> np.ndarray:
    """The wavelet psi(u) = -C u exp(-u^2), unit L2 norm."""
    u = np.asarray(u, dtype=np.float64)
    return -PSI_NORM * u * np.exp(-u * u)


def wavelet_matrix(n_frames: int, interval: float, scale: float) -> np.ndarray:
    """M (F x F) with W[k] = sum_j x[j] M[j, k] for one scale (see the module docstring)."""
    j = np.arange(n_frames)
    u = (j[:, None] - j[None, :]) * interval / scale
    matrix = np.where(np.abs(u) <= SUPPORT, psi(u), 0.0)
    # Frames beyond the window repeat the first (last) position: fold their weights into row 0 (F - 1).
    reach = int(np.floor(SUPPORT * scale / interval))
    if reach > 0:
        offsets = np.arange(1, reach + 1)
        outside_left = (-offsets[None, :] - j[:, None]) * interval / scale  # frames -1, -2, ... minus t_k
        outside_right = (n_frames - 1 + offsets[None, :] - j[:, None]) * interval / scale
        keep_left = np.abs(outside_left) <= SUPPORT
        keep_right = np.abs(outside_right) <= SUPPORT
        matrix[0] += np.where(keep_left, psi(outside_left), 0.0).sum(axis=1)
        matrix[-1] += np.where(keep_right, psi(outside_right), 0.0).sum(axis=1)
    return matrix * interval / np.sqrt(scale)


def cwt_coefficients(signal: np.ndarray, interval: float, scales) -> np.ndarray:
    """W(s, t_k) of signals (..., F) sampled every ``interval`` (tau); returns (..., S, F)."""
    signal = np.asarray(signal, dtype=np.float64)
    n_frames = signal.shape[-1]
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    matrices = np.concatenate([wavelet_matrix(n_frames, interval, s) for s in scales], axis=1)
    flat = signal.reshape(-1, n_frames)
    flat = flat - flat[:, :1]  # psi is odd: the origin drops out; smaller numbers round better
    out = flat @ matrices
    return out.reshape(*signal.shape[:-1], len(scales), n_frames)


def cwt_label(positions: np.ndarray, interval: float, scales, dtype=np.float64) -> np.ndarray:
    """CWT label c_i(s, t_k) = |W_i(s, t_k)| (norm over x, y, z) of trajectories.

    positions: (..., F, N, 3) unwrapped (sigma_AA) every ``interval`` (tau); scales in tau.
    Returns (..., S, F, N) in sigma_AA tau^(1/2), computed in ``dtype`` (the stage uses float32: positions
    are stored in single precision, and the matrix product runs several times faster; relative error ~1e-6).
    One matrix product per trajectory: W (S F, 3 N) = M^T (S F, F) @ X (F, 3 N).
    """
    positions = np.asarray(positions)
    *lead, n_frames, n, _ = positions.shape
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    n_scales = len(scales)
    matrices = np.concatenate([wavelet_matrix(n_frames, interval, s) for s in scales], axis=1)
    weights = np.ascontiguousarray(matrices.T, dtype=dtype)  # (S F, F)
    flat = positions.reshape(-1, n_frames, n, 3)
    out = np.empty((flat.shape[0], n_scales, n_frames, n), dtype=np.float64)
    # Buffers reused for every trajectory (fresh large arrays would be page-faulted in again each time).
    x = np.empty((n_frames, 3, n), dtype=dtype)
    coef = np.empty((n_scales * n_frames, 3 * n), dtype=dtype)
    for k, trajectory in enumerate(flat):
        # (F, 3, N): each coordinate's N trajectories contiguous; psi is odd, so the origin drops out.
        np.subtract(trajectory.transpose(0, 2, 1), trajectory[:1].transpose(0, 2, 1), out=x, casting="same_kind")
        np.matmul(weights, x.reshape(n_frames, -1), out=coef)
        np.square(coef, out=coef)  # in place: no temporaries of the coefficients' size
        squares = coef.reshape(n_scales, n_frames, 3, n)
        np.add(squares[:, :, 0], squares[:, :, 1], out=out[k])
        out[k] += squares[:, :, 2]
    np.sqrt(out, out=out)
    return out.reshape(*lead, n_scales, n_frames, n)


# --- registry --------------------------------------------------------------------------------------
from glasspipe.config import ConfigError, dense_windows, is_imported, label_time_scale  # noqa: E402
from glasspipe.labels.registry import DENSE_GRID, Context, LabelSpec, register  # noqa: E402

# The section labels.cwt; each default is declared here and nowhere else.
SETTINGS = {
    "enabled": {
        "type": "boolean",
        "default": False,
        "description": "continuous-wavelet-transform label on the isoconf dense window (needs isoconf.dense_window)",
    },
    "time_unit": {"enum": ["tau", "tau_alpha"], "default": "tau", "description": "unit of the scales"},
    "scales": {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "number", "exclusiveMinimum": 0},
        "default": [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0],
        "description": "wavelet scales (the thesis's values at T = 0.43, in tau); the dense interval must "
        "be <= min/2 and its length >= 2 max",
    },
}


def _check(config: dict) -> None:
    """The dense window must resolve the scales: interval <= smallest / 2, length >= 2 x the largest."""
    section = config.get("labels", {}).get("cwt", {})
    if not section.get("enabled") or is_imported(config):
        return
    for temperature, interval, length, where in dense_windows(config):
        unit = label_time_scale(config, "cwt", temperature)
        smallest, largest = min(section["scales"]) * unit, max(section["scales"]) * unit
        if interval > smallest / 2 * (1 + 1e-9):
            raise ConfigError(
                f"config key 'labels.cwt.scales': the smallest scale {smallest:g} tau needs a dense "
                f"interval <= {smallest / 2:g} tau {where}"
            )
        if length < 2 * largest * (1 - 1e-9):
            raise ConfigError(
                f"config key 'labels.cwt.scales': the largest scale {largest:g} tau needs a dense window of at "
                f"least {2 * largest:g} tau {where}"
            )


def column_name(scale: float) -> str:
    """'cwt_s5' for the configured scale 5 (in the label's time_unit)."""
    return f"cwt_s{float(scale):g}"


def _compute(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    values = cwt_label(positions, context.interval, settings["scales"], dtype=np.float32)
    return {name: values[..., k, :, :] for k, name in enumerate(settings["_columns"])}


register(
    LabelSpec(
        name="cwt",
        grid=DENSE_GRID,
        columns=lambda settings: [column_name(s) for s in settings["scales"]],
        compute=_compute,
        units="sigma_AA tau^(1/2)",
        description=(
            "norm over x, y, z of the continuous wavelet transform (psi = -C t exp(-t^2)) of each replica's "
            "dense-window trajectory, one column per scale (the multi-scale vector); replica mean and replica 0"
        ),
        time_keys=("scales",),
        settings=SETTINGS,
        check=_check,
    )
)
