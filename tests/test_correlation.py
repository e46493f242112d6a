"""glasspipe.correlation: the Pearson correlations agree with scipy's to round-off, with each other, and say
NaN where the correlation is undefined."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from glasspipe.correlation import pearson, pearson_along, pearson_torch
from glasspipe.labels.ceiling import pearson_rows
from glasspipe.learn.evaluate import pearson as evaluate_pearson


@pytest.fixture
def columns():
    rng = np.random.default_rng(17)
    a = rng.normal(size=(500, 4)) * [1.0, 10.0, 0.01, 3.0]
    b = 0.5 * a + rng.normal(size=a.shape) * a.std(axis=0)
    return a, b


def test_pearson_matches_scipy(columns):
    a, b = columns
    for t in range(a.shape[1]):
        assert pearson(a[:, t], b[:, t]) == pytest.approx(stats.pearsonr(a[:, t], b[:, t]).statistic, abs=1e-13)
    assert evaluate_pearson is pearson  # the reported correlation is this one


def test_pearson_ignores_non_finite_pairs_and_warns_when_undefined():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([2.0, 1.0, 3.0, np.inf, 7.0])
    assert pearson(x, y) == pytest.approx(stats.pearsonr([1.0, 2.0, 5.0], [2.0, 1.0, 7.0]).statistic, abs=1e-13)
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(pearson(np.ones(5), np.arange(5.0)))
    with pytest.warns(RuntimeWarning, match="1 value"):
        assert np.isnan(pearson([1.0], [2.0]))
    with pytest.raises(ValueError, match="equal length"):
        pearson([1.0, 2.0], [1.0, 2.0, 3.0])


def test_pearson_along_either_axis(columns):
    a, b = columns
    expected = [stats.pearsonr(a[:, t], b[:, t]).statistic for t in range(a.shape[1])]
    np.testing.assert_allclose(pearson_along(a, b, axis=0), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(pearson_along(a.T, b.T), expected, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(pearson_rows(a.T, b.T), pearson_along(a.T, b.T, axis=-1))
    with pytest.raises(ValueError, match="equal shape"):
        pearson_along(a, b[:-1], axis=0)


def test_pearson_along_nan_without_warning_for_a_constant_slice(columns, recwarn):
    a, b = columns
    a = a.copy()
    a[:, 1] = 2.5
    r = pearson_along(a, b, axis=0)
    assert np.isnan(r[1]) and np.isfinite(r[[0, 2, 3]]).all()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_pearson_torch_matches_numpy(columns):
    a, b = columns
    a = a.copy()
    a[:, 2] = -1.0
    r = pearson_torch(torch.tensor(a), torch.tensor(b)).numpy()
    expected = pearson_along(a, b, axis=0)
    np.testing.assert_array_equal(np.isnan(r), np.isnan(expected))
    np.testing.assert_allclose(r[~np.isnan(r)], expected[~np.isnan(expected)], rtol=0, atol=1e-13)
