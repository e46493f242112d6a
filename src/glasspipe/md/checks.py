"""Equilibration checks: an equilibrated configuration has to prove itself.

Each check returns a JSON-able dict with at least ``name``, ``passed``, ``value``, ``threshold`` or
``tolerance`` and a human-readable ``message``; stages write them next to the configuration and the report
tabulates them. They take the thermodynamic log of the production window (a DataFrame with columns
``time``, ``potential_energy``, ``kinetic_temperature``, ``pressure``, one row per log interval) or the
final configuration.

Errors of time averages come from block averaging (Flyvbjerg and Petersen, J. Chem. Phys. 91, 461
(1989)): the series is repeatedly coarse-grained by averaging neighbouring pairs of values; the naive
standard error of the mean of the block means, sqrt(var / (n_blocks - 1)), grows with the block length
until the blocks are longer than the correlation time and then stays on a plateau. We take the largest
estimate over all block lengths that leave at least ``min_blocks`` (8) blocks: on the plateau when the
window is long enough, and a conservative (larger) error otherwise. Caveat: at the lowest temperatures the
potential energy has a slow component that relaxes with tau_alpha; a production window shorter than a few
tau_alpha cannot contain decorrelated blocks of it, and its error is then underestimated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot

Z_THRESHOLD = 3.0
MIN_BLOCKS = 8
CRYSTAL_FRACTION_THRESHOLD = 0.05


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def block_average(values, min_blocks: int = MIN_BLOCKS) -> dict:
    """Mean of a time series and its standard error by Flyvbjerg-Petersen blocking (see module docstring).

    Returns {'mean', 'error', 'block_size', 'n_blocks', 'n_samples'}; 'block_size' (in samples) is the
    block length whose estimate was taken. A series of one value has error NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        raise ValueError("block_average needs at least one finite value")
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "error": float("nan"), "block_size": 1, "n_blocks": 1, "n_samples": 1}
    best_error, best_size, best_blocks = -1.0, 1, n
    blocks, size = x, 1
    while len(blocks) >= 2:
        if len(blocks) >= min_blocks or size == 1:
            error = float(np.sqrt(blocks.var(ddof=1) / len(blocks)))
            if error > best_error:
                best_error, best_size, best_blocks = error, size, len(blocks)
        m = len(blocks) // 2
        blocks = 0.5 * (blocks[0 : 2 * m : 2] + blocks[1 : 2 * m : 2])
        size *= 2
    return {
        "mean": mean,
        "error": best_error,
        "block_size": best_size,
        "n_blocks": best_blocks,
        "n_samples": n,
    }


def _column(log: pd.DataFrame, column: str) -> np.ndarray:
    if column not in log.columns:
        raise ValueError(f"thermodynamic log has no column {column!r} (columns: {list(log.columns)})")
    if "time" in log.columns:
        log = log.sort_values("time")
    return log[column].to_numpy(dtype=np.float64)


def stationarity(
    log: pd.DataFrame,
    column: str = "potential_energy",
    z_threshold: float = Z_THRESHOLD,
    min_blocks: int = MIN_BLOCKS,
) -> dict:
    """Is ``column`` (potential energy per particle) stationary over the production window?

    The window is split into two halves of equal row count; the difference of their means is compared
    with its error sqrt(e1^2 + e2^2), each e from block averaging. Passed when |z| < z_threshold (3): a
    drift (ageing after the quench, crystallisation, a thermostat fault) shows up as a large |z|.
    """
    values = _column(log, column)
    values = values[np.isfinite(values)]
    result = {"name": "stationarity", "quantity": column, "threshold": z_threshold}
    if len(values) < 4:
        return {
            **result,
            "passed": False,
            "value": None,
            "message": f"only {len(values)} finite log rows of {column}; need at least 4 (two per half)",
        }
    half = len(values) // 2
    first = block_average(values[:half], min_blocks)
    second = block_average(values[len(values) - half :], min_blocks)
    difference = second["mean"] - first["mean"]
    error = math.hypot(first["error"], second["error"])
    if error > 0:
        z = difference / error
    else:
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    passed = bool(abs(z) < z_threshold)
    message = (
        f"{column}: first half {first['mean']:.5f} +- {first['error']:.5f}, second half "
        f"{second['mean']:.5f} +- {second['error']:.5f}; z = {z:.2f} "
        f"({'within' if passed else 'OUTSIDE'} +-{z_threshold:g}: {'stationary' if passed else 'drifting'})"
    )
    return {
        **result,
        "passed": passed,
        "value": _finite_or_none(z),
        "means": [first["mean"], second["mean"]],
        "errors": [first["error"], second["error"]],
        "block_sizes": [first["block_size"], second["block_size"]],
        "difference": difference,
        "message": message,
    }


def temperature_check(
    log: pd.DataFrame,
    temperature: float,
    tolerance: float | None = None,
    n_particles: int | None = None,
    z_threshold: float = Z_THRESHOLD,
    min_blocks: int = MIN_BLOCKS,
) -> dict:
    """Does the mean kinetic temperature of the window match the thermostat's set point T?

    Passed when |<T_kin> - T| < z_threshold (3) block-averaged errors, or when it is below ``tolerance``
    (a floor that keeps a sound run with an underestimated error from failing). The default tolerance is
    the size of one instantaneous fluctuation of T_kin, T sqrt(2 / (3N - 3)), when ``n_particles`` is
    given, else 1 % of T. A wrong set point, a wrong number of degrees of freedom or a thermostat that
    does not couple all fail it.
    """
    values = _column(log, "kinetic_temperature")
    values = values[np.isfinite(values)]
    if tolerance is None:
        tolerance = temperature * math.sqrt(2.0 / (3 * n_particles - 3)) if n_particles else 0.01 * temperature
    result = {"name": "temperature", "target": float(temperature), "tolerance": float(tolerance)}
    if len(values) < 2:
        return {
            **result,
            "passed": False,
            "value": None,
            "threshold": z_threshold,
            "message": f"only {len(values)} finite log rows of kinetic_temperature; need at least 2",
        }
    stats = block_average(values, min_blocks)
    deviation = stats["mean"] - temperature
    z = deviation / stats["error"] if stats["error"] > 0 else (0.0 if deviation == 0 else math.inf)
    passed = bool(abs(z) < z_threshold or abs(deviation) < tolerance)
    message = (
        f"mean kinetic temperature {stats['mean']:.5f} +- {stats['error']:.5f} vs target {temperature:g}: "
        f"deviation {deviation:+.5f} ({z:+.2f} errors; tolerance {tolerance:.5f}) -> "
        f"{'ok' if passed else 'MISMATCH'}"
    )
    return {
        **result,
        "passed": passed,
        "value": stats["mean"],
        "error": stats["error"],
        "deviation": deviation,
        "z": _finite_or_none(z),
        "threshold": z_threshold,
        "message": message,
    }


def crystal_check(
    snapshot: Snapshot,
    r_max: float = 1.4,
    q_threshold: float = 0.7,
    solid_threshold: int = 7,
    fraction_threshold: float = CRYSTAL_FRACTION_THRESHOLD,
) -> dict:
    """Has the supercooled liquid started to crystallise?

    Solid-like particles by the ten Wolde-Frenkel criterion on Steinhardt q6 (normalised q6(i).q6(j) >
    0.7 is a solid bond; at least 7 solid bonds make a particle solid-like; neighbours within 1.4 sigma_AA,
    the first minimum of g_AA at T = 0.44), computed by ``glasspipe.structure.order.solid_like``
    (freud.order.SolidLiquid). Passed when the solid-like fraction is below 5 %: a supercooled KA liquid
    has about 0 to 1 %, a KA crystal (or an fcc lattice) close to 100 %.
    """
    from glasspipe.structure.order import solid_like

    solid = solid_like(snapshot, r_max=r_max, q_threshold=q_threshold, solid_threshold=solid_threshold)
    fraction = float(np.mean(solid))
    passed = bool(fraction < fraction_threshold)
    return {
        "name": "crystal",
        "passed": passed,
        "value": fraction,
        "threshold": fraction_threshold,
        "n_solid_like": int(np.sum(solid)),
        "settings": {"r_max": r_max, "q_threshold": q_threshold, "solid_threshold": solid_threshold},
        "message": (
            f"{fraction:.2%} of particles solid-like (q6 bonds > {q_threshold}, >= {solid_threshold} bonds, "
            f"r < {r_max}); threshold {fraction_threshold:.0%} -> {'liquid' if passed else 'CRYSTALLISING'}"
        ),
    }
