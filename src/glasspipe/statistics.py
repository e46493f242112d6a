"""The mean over configurations and its standard error: the one place glasspipe computes them (the headline
correlations of evaluation and of ``report/summary.json``, the paired differences between models and
between runs, the thermodynamics against the references).

The s.e.m. is the sample standard deviation (ddof = 1) over sqrt(n): the configurations are independent
samples, and n is small (8 to 16), so the unbiased variance matters.
"""

from __future__ import annotations

import numpy as np


def mean_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean of ``values``.

    Input: a 1-D numpy array or pandas Series of finite numbers (the caller drops NaNs: what is left out is
    its decision). Output: (mean, std(ddof=1) / sqrt(n)); the mean is NaN for no values, the s.e.m. NaN for
    fewer than two. The values' own ``mean`` and ``std`` are called, so the numbers are bit for bit those the
    callers computed inline before (numpy and pandas sum in different orders).
    """
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    sem = float(values.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")
    return mean, sem


def format_mean_sem(mean: float, sem: float, signed: bool = False) -> str:
    """``mean ± sem`` as the report's tables print it: 3 decimals, a sign with ``signed`` (differences), and
    the s.e.m. left out when it is NaN (one configuration gives none)."""
    return f"{mean:{'+' if signed else ''}.3f}" + (f" ± {sem:.3f}" if sem == sem else "")
