"""Noise ceiling of any replica-averaged label: split-half reliability, Spearman-Brown for any two halves.

A label L_i = (1/R) sum_r X_ir is the mean over R iso-configurational replicas of a per-replica quantity
X_ir (a distance, a bond-breaking fraction, a p_hop value, ...). Under the classical test model
(X_ir = true_i + independent noise of the same variance for every replica), the reliability of a mean of
n replicas is rho_n = n rho_1 / (1 + (n - 1) rho_1), rho_1 being the reliability of a single replica.

The Pearson correlation of the means of two disjoint halves of n1 and n2 replicas is
r_hh = sqrt(rho_n1 rho_n2). With n1 = n2 = R / 2 this gives the usual Spearman-Brown step-up
rho_R = 2 r_hh / (1 + r_hh). With unequal halves (R odd), rho_1 is the positive root of

    [r_hh^2 (n1 - 1)(n2 - 1) - n1 n2] rho_1^2 + r_hh^2 (n1 + n2 - 2) rho_1 + r_hh^2 = 0

and rho_R follows from the step-up formula above. For equal halves both routes give the same number.
The ceiling sqrt(rho_R) is the largest Pearson correlation a predictor can reach against the measured
label on average. A non-positive r_hh carries no reliability: it falls back to 2 r_hh / (1 + r_hh)
(the equal-halves formula, negative), whose ceiling is clipped to 0.
"""

from __future__ import annotations

import numpy as np

from glasspipe.correlation import pearson_along


def reliability_from_halves(r_hh, n1: int, n2: int, n_total: int | None = None) -> np.ndarray:
    """Reliability of the mean of ``n_total`` (default n1 + n2) replicas from the correlation ``r_hh`` of the
    means of two disjoint halves of n1 and n2 replicas (array-like, any shape)."""
    r = np.asarray(r_hh, dtype=np.float64)
    n_total = n1 + n2 if n_total is None else n_total
    if n1 < 1 or n2 < 1:
        raise ValueError(f"replica halves of {n1} and {n2}: each half needs at least one replica")
    equal = 2.0 * r / (1.0 + r)
    if n1 == n2 and n_total == n1 + n2:
        return equal
    r2 = r * r
    a = r2 * (n1 - 1) * (n2 - 1) - n1 * n2
    b = r2 * (n1 + n2 - 2)
    c = r2
    with np.errstate(invalid="ignore", divide="ignore"):
        # a < 0 (r^2 <= 1 < n1 n2 / ((n1-1)(n2-1))) and c >= 0: exactly one non-negative root.
        rho1 = (-b - np.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
        stepped = n_total * rho1 / (1.0 + (n_total - 1) * rho1)
    return np.where(r > 0, stepped, equal)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of x[..., :] with y[..., :] along the last axis (NaN for a constant row): the shared
    :func:`glasspipe.correlation.pearson_along`, under the name labels.compute and labels.propensity import."""
    return pearson_along(x, y, axis=-1)


def ceiling_table(
    times: np.ndarray, half1: np.ndarray, half2: np.ndarray, n1: int, n2: int, mask: np.ndarray
) -> dict[str, list]:
    """Noise ceiling per time from the two half means ``half1``/``half2`` (K, N) over the particles of ``mask``.

    Returns a column dict: time, half_half_pearson, reliability, ceiling, n_half1, n_half2, n_particles.
    """
    mask = np.asarray(mask, dtype=bool)
    r_hh = pearson_rows(half1[:, mask], half2[:, mask])
    reliability = reliability_from_halves(r_hh, n1, n2)
    return {
        "time": [float(t) for t in times],
        "half_half_pearson": r_hh.tolist(),
        "reliability": reliability.tolist(),
        "ceiling": np.sqrt(np.clip(reliability, 0.0, None)).tolist(),
        "n_half1": n1,
        "n_half2": n2,
        "n_particles": int(mask.sum()),
    }
