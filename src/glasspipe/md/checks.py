"""Equilibration checks: an equilibrated configuration has to prove itself.

Each check returns a JSON-able dict with at least ``name``, ``passed``, ``value``, ``threshold`` or
``tolerance`` and a human-readable ``message``; stages write them next to the configuration and the report
tabulates them. They take the thermodynamic log of the production window (a DataFrame with columns
``time``, ``potential_energy``, ``kinetic_temperature``, ``pressure``, one row per log interval) or the
final configuration.

Stationarity errors come from the integrated autocorrelation time (Sokal's automatic windowing, as in
emcee; Madras and Sokal, J. Stat. Phys. 50, 109 (1988)): the autocorrelation function rho(t) of the series
is summed up to the first window W with W >= 5 g(W), where g = 1 + 2 sum_{t=1..W} rho(t) = 2 tau_int is the
statistical inefficiency, and the variance of a mean of n values is var g / n. The autocorrelation is
taken of the fluctuations about a parabola fitted to the window, so that a drift does not pass for a
slow fluctuation and hide itself; each fitted parameter biases g low by about (2W + 1) / n, which is
undone to first order (as Wolff, Comput. Phys. Commun. 156, 143 (2004), does for the mean).
That error is itself uncertain when the window holds few correlation times (relative variance about
2 (2W + 1) / n): the difference of the half means divided by it is treated as Student's t with the
Satterthwaite number of degrees of freedom n / (2W + 1), and turned into the normal z of the same tail
probability. So |z| < 3 fails a stationary series at about the rate it promises (0.27 %) when the window
holds a few tens of correlation times or more, where a plain normal threshold on block-averaged errors
failed several times more often (benchmarks/stationarity.py measures both, and the drifts caught).

The temperature check keeps block averaging (Flyvbjerg and Petersen, J. Chem. Phys. 91, 461 (1989)): the
series is repeatedly coarse-grained by averaging neighbouring pairs of values; the standard error of the
block means grows with the block length until the blocks outlast the correlation time. We take the largest
estimate over the block lengths that leave at least ``min_blocks`` (8) blocks. T_kin decorrelates within a
thermostat time, far inside that range, and the check has a tolerance floor.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtri_exp

from glasspipe.io.gsd_io import Snapshot

Z_THRESHOLD = 3.0
MIN_BLOCKS = 8
# Sokal's window factor c: the autocorrelation function is summed up to the first lag W >= c g(W). 5 is
# emcee's choice; larger c lowers the bias from the neglected tail and raises the variance.
WINDOW_FACTOR = 5.0
# Parameters of the trend (a parabola) removed before the correlation time of the stationarity check is
# estimated.
QUADRATIC_TREND = 3
# Fewest log rows the stationarity check judges: a parabola and a correlation time are fitted to them
# (with fewer, a white-noise log fails a quarter of the time).
MIN_ROWS_STATIONARITY = 20
# Fewest rows per half for which the standard deviation of a half is trusted in the correlation-free bound.
MIN_ROWS_BOUND = 20
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


def autocovariance(values) -> np.ndarray:
    """Autocovariance C(t), t = 0 .. n - 1, of a series about its own mean, by FFT (the biased 1/n
    estimator, which keeps the windowed sums below well behaved)."""
    x = np.asarray(values, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n)
    return np.fft.irfft(spectrum * np.conj(spectrum))[:n] / n


def integrated_autocorrelation(values, window_factor: float = WINDOW_FACTOR, n_fitted: int = 1) -> dict:
    """Integrated autocorrelation time of a series, by Sokal's automatic window.

    ``values``: 1-D series, equally spaced. ``n_fitted``: parameters already fitted to the series and
    removed from it (1: its mean, subtracted here; 3: a parabola, as stationarity() passes its
    residuals). The window is the smallest W >= 1 with W >= window_factor * g(W),
    g(W) = 1 + 2 sum_{t=1..W} rho(t) (the largest lag when none is). Each fitted parameter lowers the
    windowed sum by about (2W + 1) / n of itself (the fitted mean or line carries variance var g / n and
    shows at every lag); g is multiplied by (1 + n_fitted (2W + 1) / n) to undo that to first order (as
    Wolff 2004 does for the mean; benchmarks/stationarity.py shows the resulting check is slightly
    conservative rather than optimistic when the window is only a few correlation times long).

    Returns, in samples: 'statistical_inefficiency' g = 2 tau_int (variance of a mean of n values = var
    g / n; 1 for white noise, (1 + phi) / (1 - phi) for AR(1)), 'tau_int' = g / 2, 'window' W,
    'resolved' (False when no window satisfied the criterion: the series is too short for its correlation
    time, and g is a lower bound), 'variance' C(0), 'n_samples', 'dof' (Satterthwaite degrees of freedom of
    the variance of the mean, n / (2W + 1): its relative variance is about 2 (2W + 1) / n).
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 2:
        raise ValueError("integrated_autocorrelation needs at least 2 values")
    covariance = autocovariance(x)
    if covariance[0] <= 0:
        return {
            "statistical_inefficiency": 1.0,
            "tau_int": 0.5,
            "window": 0,
            "resolved": True,
            "variance": 0.0,
            "n_samples": n,
            "dof": float(n),
        }
    rho = covariance / covariance[0]
    g = 1.0 + 2.0 * np.cumsum(rho[1:])  # g[W - 1] = g(W)
    lags = np.arange(1, n)
    satisfied = lags >= window_factor * g
    resolved = bool(satisfied.any())
    window = int(lags[np.argmax(satisfied)]) if resolved else n - 1
    inefficiency = float(g[window - 1]) * (1.0 + n_fitted * (2 * window + 1) / n)
    return {
        "statistical_inefficiency": inefficiency,
        "tau_int": 0.5 * inefficiency,
        "window": window,
        "resolved": resolved,
        "variance": float(covariance[0]),
        "n_samples": n,
        "dof": max(n / (2 * window + 1), 1.0),
    }


def _calibrated_z(t: float, dof: float) -> float:
    """The standard normal z with the same two-sided tail probability as Student's t with ``dof``
    degrees of freedom (signed like t; computed in logs so that a huge t stays finite)."""
    if not math.isfinite(t):
        return t
    return math.copysign(float(-ndtri_exp(stats.t.logsf(abs(t), dof))), t)


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
    window_factor: float = WINDOW_FACTOR,
) -> dict:
    """Is ``column`` (potential energy per particle) stationary over the production window?

    The window is split into two halves of equal row count; the difference of their means is divided by
    its error sqrt(2 var g / n_half), with the variance and the statistical inefficiency g = 2 tau_int
    estimated from the fluctuations about a parabola fitted to the whole window (so that a drift or a
    relaxation does not inflate the error that should expose it), and turned into a calibrated z (see
    the module docstring). A second z needs no correlation time: the difference over twice the calmer
    half's standard deviation, a bound that no stationary series exceeds by more than its own tail (used
    when that half holds >= 5 correlation times, else None); it catches relaxations too large and fast
    for the parabola. 'value' is the larger of the two in magnitude.
    Passed when |z| < z_threshold (3): a drift (ageing after the quench, crystallisation, a thermostat
    fault) shows up as a large |z|; a stationary series fails about 0.27 % of the time
    (benchmarks/stationarity.py).

    Result keys: 'value' (z), 'z_autocorrelation', 'z_bound', 'threshold', 'passed', 'means' and 'errors'
    of the halves, 'difference', 't' (difference / error, before calibration), 'dof', 'p_value'
    (two-sided, of t), 'tau_int' (samples) and 'tau_int_time' (time units of the log's 'time' column, when
    present), 'statistical_inefficiency', 'window' (samples), 'tau_int_resolved',
    'correlation_times_per_half' (n_half / g), 'method', 'message'.
    """
    values = _column(log, column)
    finite = np.isfinite(values)
    times = log.sort_values("time")["time"].to_numpy(dtype=np.float64)[finite] if "time" in log.columns else None
    values = values[finite]
    result = {"name": "stationarity", "quantity": column, "threshold": z_threshold}
    if len(values) < MIN_ROWS_STATIONARITY:
        return {
            **result,
            "passed": False,
            "value": None,
            "message": (
                f"only {len(values)} finite log rows of {column}; need at least {MIN_ROWS_STATIONARITY} to "
                "estimate a correlation time (lengthen equilibrate.production_time or shorten log_interval)"
            ),
        }
    half = len(values) // 2
    first, second = values[:half], values[len(values) - half :]
    # The fluctuations about a parabola through the whole window: a drift or a relaxation between the
    # halves must not inflate the error that should expose it (about the mean alone, a ramp looks like a
    # long correlation time and is never flagged; about a straight line, an exponential relaxation still
    # is not), and the 3 fitted parameters are accounted for (n_fitted = 3). benchmarks/stationarity.py
    # measures the false alarms this leaves and the drifts it catches.
    steps = np.linspace(-1.0, 1.0, len(values))
    residuals = values - np.polyval(np.polyfit(steps, values, 2), steps)
    acf = integrated_autocorrelation(residuals, window_factor, n_fitted=QUADRATIC_TREND)
    window, dof = acf["window"], acf["dof"]
    # g < 1 would need anticorrelation, which the demo's potential-energy logs do not show (g from 1.3 to
    # 16 rows at T = 0.7); an estimate below 1 is mostly the scatter of a short window (residuals of a fit
    # are anticorrelated at short lags) and, taken at face value, fails ~5 % of 20-row white-noise logs.
    # Flooring at 1 makes the check slightly cautious for nearly uncorrelated series (the benchmark
    # measures it).
    inefficiency = max(acf["statistical_inefficiency"], 1.0)
    error_half = math.sqrt(acf["variance"] * inefficiency / half)
    difference = float(second.mean() - first.mean())
    error = math.sqrt(2.0) * error_half
    if error > 0:
        t = difference / error
    else:
        t = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    z_autocorrelation = _calibrated_z(t, dof)
    p_value = float(2 * stats.t.sf(abs(t), dof)) if math.isfinite(t) else 0.0
    # A bound that needs no correlation time: the mean of any stretch of a stationary series has a variance
    # of at most var (Cauchy-Schwarz), so the difference of the half means has a standard deviation of at
    # most 2 sigma. A larger relaxation than the parabola can follow (a fast drop at the start of the
    # window) passes for a long correlation time above, but not here. sigma: the standard deviation of the
    # calmer half (the drift does not inflate it), trusted only when that half holds
    # >= 5 of its own correlation times (else a slow fluctuation makes it too small and the bound cries
    # wolf; with 5, a stationary series needs a difference of ~4 of its standard deviations AND a sigma
    # estimate at half its value to trip it).
    # Each half's fluctuations are taken about its own straight line, so that the tail of a relaxation
    # inside the calm half inflates neither sigma nor its correlation time.
    line = np.linspace(-1.0, 1.0, half)
    detrended = [x - np.polyval(np.polyfit(line, x, 1), line) for x in (first, second)]
    calm = min(detrended, key=np.std)
    calm_acf = integrated_autocorrelation(calm, window_factor, n_fitted=2)
    sigma = float(calm.std())
    z_bound = None
    if calm_acf["resolved"] and half >= max(5 * calm_acf["statistical_inefficiency"], MIN_ROWS_BOUND):
        if sigma > 0:
            z_bound = difference / (2.0 * sigma)
        else:
            z_bound = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    z = z_autocorrelation if z_bound is None or abs(z_autocorrelation) >= abs(z_bound) else z_bound
    passed = bool(abs(z) < z_threshold)
    sample_interval = float(np.median(np.diff(times))) if times is not None and len(times) > 1 else None
    tau_int = 0.5 * inefficiency
    # Below ~10 statistical inefficiencies per half the parabola also removes part of the slow stationary
    # fluctuations and the check runs a few times more false alarms than it promises (the benchmark).
    short = acf["resolved"] and half < 10 * inefficiency
    unresolved = (
        f"; the halves are shorter than {window_factor:g} correlation times, so the error is a lower bound"
        if not acf["resolved"]
        else f"; the halves hold only {half / inefficiency:.1f} correlation times: approximate"
        if short
        else ""
    )
    message = (
        f"{column}: first half {first.mean():.5f} +- {error_half:.5f}, second half {second.mean():.5f} +- "
        f"{error_half:.5f} (tau_int {tau_int:.3g} rows{unresolved}); t = {t:.2f} with {dof:.1f} dof, z = "
        f"{z_autocorrelation:.2f}; difference / (2 sigma) = "
        f"{'not used (short half)' if z_bound is None else format(z_bound, '.2f')} "
        f"({'within' if passed else 'OUTSIDE'} +-{z_threshold:g}: {'stationary' if passed else 'drifting'})"
    )
    return {
        **result,
        "passed": passed,
        "value": _finite_or_none(z),
        "means": [float(first.mean()), float(second.mean())],
        "errors": [error_half, error_half],
        "difference": difference,
        "z_autocorrelation": _finite_or_none(z_autocorrelation),
        "z_bound": None if z_bound is None else _finite_or_none(z_bound),
        "t": _finite_or_none(t),
        "dof": dof,
        "p_value": p_value,
        "tau_int": tau_int,
        "tau_int_time": None if sample_interval is None else tau_int * sample_interval,
        "statistical_inefficiency": inefficiency,
        "window": window,
        "tau_int_resolved": acf["resolved"],
        "correlation_times_per_half": half / inefficiency,
        "method": f"integrated autocorrelation time, Sokal window c = {window_factor:g}, Student-t calibrated",
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
