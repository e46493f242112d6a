"""The one definition of the Kob-Andersen potential: parameters and cutoff modes."""

from __future__ import annotations

import numpy as np
import pytest

from glasspipe.potential import KobAndersen

PAIRS = [(0, 0), (0, 1), (1, 1)]


def test_kob_andersen_parameters():
    ka = KobAndersen()
    np.testing.assert_allclose(ka.r_cut, [[2.5, 2.0], [2.0, 2.2]])
    np.testing.assert_allclose(ka.epsilon, [[1.0, 1.5], [1.5, 0.5]])
    # Minimum of V_AA at 2^(1/6) sigma with depth -eps (plain LJ, truncate mode).
    r_min = np.array([2 ** (1 / 6)])
    assert KobAndersen(cutoff_mode="truncate").pair_energy(r_min, np.array([0]), np.array([0]))[0] == pytest.approx(-1)


@pytest.mark.parametrize("mode", ["shift", "truncate", "xplor"])
@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_force_is_minus_energy_derivative(mode, a, b):
    """Central differences with h = 1e-6: truncation error ~h^2 V''' ~ 1e-10, well inside 1e-7."""
    ka = KobAndersen(cutoff_mode=mode)
    r = np.linspace(0.8 * ka.sigma[a, b], 0.999 * ka.r_cut[a, b], 400)
    ta, tb = np.full_like(r, a, dtype=int), np.full_like(r, b, dtype=int)
    h = 1e-6
    numeric = -(ka.pair_energy(r + h, ta, tb) - ka.pair_energy(r - h, ta, tb)) / (2 * h)
    np.testing.assert_allclose(ka.pair_force_over_r(r, ta, tb) * r, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_xplor_goes_smoothly_to_zero(a, b):
    """xplor: V S equals plain LJ below r_on; energy and force vanish continuously at r_cut."""
    xplor, plain = KobAndersen(cutoff_mode="xplor"), KobAndersen(cutoff_mode="truncate")
    ta, tb = np.array([a]), np.array([b])
    below = np.array([0.99 * xplor.r_on[a, b]])
    assert xplor.pair_energy(below, ta, tb)[0] == plain.pair_energy(below, ta, tb)[0]
    near_cut = np.array([xplor.r_cut[a, b] * (1 - 1e-6)])
    assert abs(xplor.pair_energy(near_cut, ta, tb)[0]) < 1e-10
    assert abs(xplor.pair_force_over_r(near_cut, ta, tb)[0]) < 1e-5
    # shift and truncate differ by the constant V(r_c); forces are identical.
    r = np.linspace(0.9, 0.99 * xplor.r_cut[a, b], 50)
    shift = KobAndersen(cutoff_mode="shift")
    ta, tb = np.full(50, a), np.full(50, b)
    offset = plain.pair_energy(r, ta, tb) - shift.pair_energy(r, ta, tb)
    np.testing.assert_allclose(offset, offset[0], rtol=1e-12)
    np.testing.assert_array_equal(plain.pair_force_over_r(r, ta, tb), shift.pair_force_over_r(r, ta, tb))
