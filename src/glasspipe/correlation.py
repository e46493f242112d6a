"""Pearson correlation: the one place glasspipe computes it (evaluation, penalty and epoch selection, noise
ceilings, training diagnostics).

- :func:`pearson`: one correlation of two 1-D arrays, pairs with a non-finite member ignored, NaN with a
  RuntimeWarning where undefined. Every published number (metrics, ``report/summary.json``) is this one.
- :func:`pearson_along`: many correlations at once, along one axis of two arrays (per label time, per
  penalty, per replica split), NaN without a warning where undefined. Ridge and MLP selection scores, the
  baseline's training correlation and the labels' noise ceilings (half-half correlations) use it.
- :func:`pearson_torch`: :func:`pearson_along` (axis 0) on torch tensors, on the model's device, for the
  validation score of the graph networks between epochs (glasspipe.learn.training.graph_task.validation_pearsons).

Why three and not ``scipy.stats.pearsonr`` or ``torch.corrcoef``: the numbers must not move, and none of the
libraries reproduces them bit for bit. Measured on the demo baseline (results at commit ed506d6):

- scipy.stats.pearsonr equals :func:`pearson` on 58 of the 240 correlations of the demo's prediction tables
  (max difference 2.8e-16): it would change ``summary.json``. :func:`pearson` sums with a BLAS dot product.
- :func:`pearson_along` (numpy sums along an axis) equals :func:`pearson` on 77 of 240, so it cannot stand in
  for it either, nor the reverse: the noise ceilings in ``summary.json`` come from :func:`pearson_along`.
  Vectorised, it also does in one call what would otherwise be a Python loop over thousands of 1-D calls.
- On the 80 per-(configuration, time) columns of the demo's test predictions (A particles), torch (CPU,
  float64) equals :func:`pearson_along` on 8, scipy.stats.pearsonr(axis=0) on 2, torch.corrcoef equals
  :func:`pearson_torch` on 26 and np.corrcoef equals :func:`pearson` on 11: the graph networks' validation
  score, which chooses their epoch and is logged, stays in torch, where the network's output already is.

Each function keeps, operation for operation, the arithmetic of the copy it replaces (evaluate.pearson;
ridge.pearson_columns, mlp._pearson_columns, labels.ceiling.pearson_rows; train.pearson_torch), so every
stored number is unchanged. Only the baseline's diagnostic ``train_pearson`` (np.corrcoef before) may differ
in the last bit; it feeds no selection and no report.
"""

from __future__ import annotations

import warnings

import numpy as np


def pearson(x, y) -> float:
    """Pearson correlation of two 1-D arrays.

    Returns NaN, with a RuntimeWarning, when it is undefined (fewer than 2 finite pairs, or a constant input);
    pairs with a non-finite member are ignored.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"pearson needs arrays of equal length, got {x.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 2:
        warnings.warn(
            f"Pearson correlation undefined for {len(x)} value(s); returning NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    dx = x - x.mean()
    dy = y - y.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    # "Constant" relative to the data's magnitude: a sum of squares of round-off is not a variance.
    scale = max(1.0, float(np.abs(x).max())) ** 2 * len(x), max(1.0, float(np.abs(y).max())) ** 2 * len(y)
    if sxx <= 1e-24 * scale[0] or syy <= 1e-24 * scale[1]:
        warnings.warn("Pearson correlation undefined for a constant input; returning NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(np.clip((dx @ dy) / np.sqrt(sxx * syy), -1.0, 1.0))


def pearson_along(x, y, axis: int = -1) -> np.ndarray:
    """Pearson correlations of ``x`` with ``y`` (same shape) along ``axis``: one per position of the other axes.

    A 1-D pair along axis 0 gives an array of one correlation. NaN (no warning) where undefined (a constant
    slice). No filtering of non-finite values: a NaN in a slice gives NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pearson_along needs arrays of equal shape, got {x.shape} and {y.shape}")
    x = x - x.mean(axis=axis, keepdims=True)
    y = y - y.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=axis) * (y * y).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).sum(axis=axis) / denominator
    return np.where(denominator > 0, r, np.nan)


def pearson_torch(prediction, target):
    """Column-wise Pearson correlation of two (n, T) torch tensors, NaN where undefined; on their device.

    Tensor methods only, so that this module imports without torch (the labels stage does not need it)."""
    p = prediction - prediction.mean(dim=0)
    t = target - target.mean(dim=0)
    denominator = ((p * p).sum(dim=0) * (t * t).sum(dim=0)).sqrt()
    r = (p * t).sum(dim=0) / denominator
    return r.masked_fill(~(denominator > 0), float("nan"))
