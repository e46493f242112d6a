"""Importance-weighted loss for skewed labels (Pezzicoli's thesis, seed 002, eq. 2.20).

A label such as p_hop or the CWT is mostly near zero with a thin tail of rare, large values (the hops); a
plain mean squared error is then dominated by the bulk and a model learns little about the tail. The thesis
weights each training row by the inverse of how common its label value is:

    w_i = 1 / p(y_i)^alpha,

p(y) the probability of the histogram bin holding y, estimated from the TRAINING labels only (separately for
every label time, i.e. every column of the target matrix). alpha = 0 gives w = 1 (the plain loss); alpha = 1
equalises the bins' total weights. The weights are then

- clipped: no weight exceeds ``max_weight`` times the weight of the most common bin (a bin holding a single
  outlier has p = 1/n and would otherwise get n^alpha times the bulk's weight, so that one row dominates);
- normalised to mean 1 over the training rows with a finite label, so that the loss keeps its scale and the
  relative penalties (ridge: alpha_ridge * n) mean the same as without weighting.

Bins: ``n_bins`` equal-width bins over [min, max] of the column's finite training values (the last bin
closed, as numpy.histogram). A column whose finite values are all equal (one bin) gets weight 1 everywhere;
a row whose label is NaN gets weight 0 (it carries no information and is left out of the mean).

Configuration: the block ``models.<name>.loss_weighting: {alpha, n_bins, max_weight}`` (one schema block
shared by every model that trains on a loss; alpha = 0, the default, turns it off and leaves the training
bit for bit as without the block).
"""

from __future__ import annotations

import warnings

import numpy as np

from glasspipe.plugins import LOSS_WEIGHTING_SCHEMA, defaults_of

# Declared once, with the block's schema, on the ground floor (shared by every model section).
WEIGHTING_DEFAULTS = defaults_of(LOSS_WEIGHTING_SCHEMA)


def importance_weights(y_train: np.ndarray, alpha: float, n_bins: int = 50, max_weight: float = 100.0) -> np.ndarray:
    """Weights w_i = p(y_i)^-alpha of the training rows, per column (label time); see the module docstring.

    y_train: (n,) or (n, T) training labels (any units: the histogram is over their own range).
    alpha >= 0: the exponent; n_bins >= 1: histogram bins per column; max_weight >= 1: the largest weight
    relative to the weight of the column's most common bin (before the normalisation).
    Returns an array of y_train's shape (dimensionless): mean 1 over each column's finite rows, 0 at NaN rows.
    """
    alpha, n_bins, max_weight = float(alpha), int(n_bins), float(max_weight)
    if not alpha >= 0:
        raise ValueError(f"loss weighting: alpha = {alpha} must be >= 0")
    if n_bins < 1:
        raise ValueError(f"loss weighting: n_bins = {n_bins} must be >= 1")
    if not max_weight >= 1:
        raise ValueError(f"loss weighting: max_weight = {max_weight} must be >= 1")
    y = np.asarray(y_train, dtype=np.float64)
    one_column = y.ndim == 1
    if one_column:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"loss weighting: the labels must be (rows,) or (rows, times), got shape {y.shape}")
    n_rows, n_columns = y.shape
    finite = np.isfinite(y)
    if alpha == 0.0:
        weights = finite.astype(np.float64)
        return weights[:, 0] if one_column else weights
    masked = np.where(finite, y, np.nan)
    with warnings.catch_warnings():  # an all-NaN column is handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(masked, axis=0), np.nanmax(masked, axis=0)  # (T,), NaN for an all-NaN column
    width = high - low
    spread = finite.any(axis=0) & (width > 0)
    # Bin of each value, as numpy.histogram: floor((y - low) / width * n_bins), the maximum in the last bin.
    scale = np.where(spread, n_bins / np.where(spread, width, 1.0), 0.0)
    index = np.floor((np.where(finite, y, low) - np.where(spread, low, 0.0)) * scale)
    index = np.clip(np.nan_to_num(index, nan=0.0), 0, n_bins - 1).astype(np.int64)
    index[~finite] = n_bins  # a spare bin per column for NaN rows (never counted)
    flat = index + np.arange(n_columns) * (n_bins + 1)
    counts = np.bincount(flat[finite], minlength=n_columns * (n_bins + 1)).reshape(n_columns, n_bins + 1)
    n_finite = finite.sum(axis=0)
    probability = counts / np.maximum(n_finite, 1)[:, None]  # (T, n_bins + 1), bin probabilities
    p_row = probability.reshape(-1)[flat]  # (n, T): p(y_i), 0 at NaN rows
    with np.errstate(divide="ignore"):
        raw = np.where(finite, np.power(np.where(finite, p_row, 1.0), -alpha), 0.0)
    # The most common bin has the smallest raw weight: cap every weight at max_weight times it.
    with np.errstate(divide="ignore"):  # an all-NaN column: inf, unused (its weights are all 0)
        smallest = np.power(probability[:, :n_bins].max(axis=1), -alpha)  # (T,)
    raw = np.minimum(raw, max_weight * smallest)
    raw[:, ~spread] = finite[:, ~spread]  # constant (or empty) columns: plain loss
    total = raw.sum(axis=0)
    weights = raw * np.where(total > 0, n_finite / np.where(total > 0, total, 1.0), 0.0)
    return weights[:, 0] if one_column else weights


def weighting_settings(settings: dict | None, key: str) -> dict:
    """The ``loss_weighting`` block of a model section, filled from :data:`WEIGHTING_DEFAULTS` and checked.

    settings: ``config['models'][name]`` (its 'loss_weighting' entry may be absent); key: the section's name in
    messages ('models.ridge'). Raises ValueError naming the key for an unknown key or a bad value (the config
    schema refuses them first; this guards direct calls).
    """
    block = dict((settings or {}).get("loss_weighting") or {})
    unknown = sorted(set(block) - set(WEIGHTING_DEFAULTS))
    if unknown:
        raise ValueError(
            f"config keys {[f'{key}.loss_weighting.{k}' for k in unknown]} are unknown; "
            f"known: {sorted(WEIGHTING_DEFAULTS)}"
        )
    out = {**WEIGHTING_DEFAULTS, **block}
    try:
        out = {"alpha": float(out["alpha"]), "n_bins": int(out["n_bins"]), "max_weight": float(out["max_weight"])}
    except (TypeError, ValueError) as err:
        raise ValueError(f"config key '{key}.loss_weighting' = {block!r} holds a non-number ({err})") from err
    if not out["alpha"] >= 0:
        raise ValueError(f"config key '{key}.loss_weighting.alpha' = {out['alpha']} must be >= 0 (0 = off)")
    if out["n_bins"] < 1:
        raise ValueError(f"config key '{key}.loss_weighting.n_bins' = {out['n_bins']} must be >= 1")
    if not out["max_weight"] >= 1:
        raise ValueError(f"config key '{key}.loss_weighting.max_weight' = {out['max_weight']} must be >= 1")
    return out


def active(opts: dict | None) -> bool:
    """Whether ``opts`` (from :func:`weighting_settings`) asks for a weighted loss (alpha > 0)."""
    return bool(opts) and opts["alpha"] > 0


def pooled_weights(targets: list[np.ndarray], masks: list[np.ndarray], opts: dict) -> list[np.ndarray]:
    """Weights of several training configurations from ONE histogram of all their masked rows.

    targets: per configuration (N_c, T) labels; masks: (N_c,) booleans of the rows the loss uses (the A
    particles). Returns per configuration an (N_c, T) array: the importance weights at masked rows (mean 1
    over all masked rows of all configurations together), 0 elsewhere.
    """
    pooled = np.concatenate([np.asarray(t, dtype=np.float64)[m] for t, m in zip(targets, masks, strict=True)])
    weights = importance_weights(pooled, opts["alpha"], opts["n_bins"], opts["max_weight"])
    if weights.ndim == 1:
        weights = weights[:, None]
    out, start = [], 0
    for m in masks:
        full = np.zeros((len(m), weights.shape[1]))
        count = int(np.count_nonzero(m))
        full[m] = weights[start : start + count]
        start += count
        out.append(full)
    return out
