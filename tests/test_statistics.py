"""glasspipe.statistics.mean_sem against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glasspipe.statistics import mean_sem


def test_mean_sem_of_one_to_four():
    # mean 2.5; sample variance ((1.5^2 + 0.5^2) * 2) / 3 = 5/3; s.e.m. sqrt(5/3) / 2 = sqrt(5/12).
    for values in (np.array([1.0, 2.0, 3.0, 4.0]), pd.Series([1.0, 2.0, 3.0, 4.0])):
        mean, sem = mean_sem(values)
        assert mean == 2.5
        assert sem == pytest.approx(math.sqrt(5 / 12), rel=1e-15)


def test_mean_sem_of_too_few_values_is_nan():
    mean, sem = mean_sem(np.array([0.7]))
    assert mean == 0.7 and math.isnan(sem)
    mean, sem = mean_sem(np.array([]))
    assert math.isnan(mean) and math.isnan(sem)


def test_format_mean_sem_as_the_report_prints_it():
    """3 decimals; a sign for differences; no s.e.m. where there is none (NaN from one configuration)."""
    from glasspipe.statistics import format_mean_sem

    assert format_mean_sem(0.61949, 0.01123) == "0.619 ± 0.011"
    assert format_mean_sem(0.0184, 0.0012, signed=True) == "+0.018 ± 0.001"
    assert format_mean_sem(-0.0213, 0.0042, signed=True) == "-0.021 ± 0.004"
    assert format_mean_sem(0.5, float("nan")) == "0.500"
