"""Self intermediate scattering function and tau_alpha (glasspipe.dynamics.relaxation)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from glasspipe.dynamics.relaxation import Q_PEAK_KA, self_isf, self_isf_multi_origin, tau_alpha


def random_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ballistic_motion_gives_sinc():
    """Every particle moves |v| t in its own direction: F_s(q, t) = sin(q |v| t) / (q |v| t) exactly."""
    rng = np.random.default_rng(0)
    n, speed, q = 500, 0.7, 7.25
    x0 = rng.uniform(0, 10, size=(n, 3))
    directions = random_directions(n, rng)
    times = np.linspace(0.0, 2.0, 21)
    trajectory = x0 + speed * times[:, None, None] * directions
    fs = self_isf(x0, trajectory, q)
    expected = np.sinc(q * speed * times / np.pi)
    np.testing.assert_allclose(fs, expected, rtol=1e-12, atol=1e-14)
    assert fs[0] == 1.0
    # A single frame is accepted.
    assert self_isf(x0, trajectory[5], q).shape == (1,)


def test_gaussian_displacements_give_gaussian_decay():
    """Isotropic Gaussian displacements of variance s^2 per axis: <sin(qr)/(qr)> = exp(-q^2 s^2 / 2).
    With 20000 particles the sample mean scatters by < 0.004 (std of sinc <= 0.5); 5 standard errors."""
    rng = np.random.default_rng(1)
    n, q = 20000, Q_PEAK_KA
    x0 = rng.uniform(0, 10, size=(n, 3))
    sigmas = np.array([0.05, 0.1, 0.15, 0.2])
    trajectory = x0 + sigmas[:, None, None] * rng.normal(size=(len(sigmas), n, 3))
    fs = self_isf(x0, trajectory, q)
    np.testing.assert_allclose(fs, np.exp(-(q**2) * sigmas**2 / 2), atol=5 * 0.5 / np.sqrt(n))


def test_mask_selects_particles():
    rng = np.random.default_rng(2)
    n = 100
    x0 = rng.uniform(0, 10, size=(n, 3))
    mask = np.arange(n) < 80
    trajectory = x0.copy()[None].repeat(2, axis=0)
    trajectory[1, ~mask] += 0.5  # only B particles move
    np.testing.assert_allclose(self_isf(x0, trajectory, 7.25, mask=mask), [1.0, 1.0])
    assert self_isf(x0, trajectory, 7.25)[1] < 1.0
    with pytest.raises(ValueError):
        self_isf(x0, trajectory, 7.25, mask=np.zeros(n, dtype=bool))


def test_multi_origin_average_of_ballistic_trajectory():
    """Constant velocities: the displacement over a lag is the same from every origin, so the
    multi-origin average equals the single-origin sinc; and origins are really averaged (checked on
    a trajectory whose first half is frozen)."""
    rng = np.random.default_rng(3)
    n, speed, dt = 300, 0.5, 0.1
    x0 = rng.uniform(0, 10, size=(n, 3))
    directions = random_directions(n, rng)
    times = np.arange(40) * dt
    positions = x0 + speed * times[:, None, None] * directions
    lags, fs = self_isf_multi_origin(times, positions, q=7.25, max_lag=20)
    np.testing.assert_allclose(lags, np.arange(21) * dt)
    np.testing.assert_allclose(fs, np.sinc(7.25 * speed * lags / np.pi), rtol=1e-12, atol=1e-14)

    # Frozen for frames 0..19, then moving at constant velocity.
    frozen = x0 + speed * np.maximum(times - 20 * dt, 0.0)[:, None, None] * directions
    lags, fs = self_isf_multi_origin(times, frozen, q=7.25, max_lag=5)
    # lag 1: origins 0..19 see no motion, origins 20..38 a step of speed * dt (19 of the 39 origins).
    expected_lag1 = (20 * 1.0 + 19 * np.sinc(7.25 * speed * dt / np.pi)) / 39
    assert fs[1] == pytest.approx(expected_lag1, rel=1e-12)
    with pytest.raises(ValueError):
        self_isf_multi_origin(np.r_[times[:-1], 10.0], positions, q=7.25)


def test_tau_alpha_of_exponentials_is_exact():
    """ln(-ln F) is linear in ln t for exp(-(t/tau)^beta), so the interpolation is exact on any grid."""
    tau = 123.4
    for times in (np.geomspace(0.1, 1e4, 17), np.linspace(1.0, 500.0, 7)):
        assert tau_alpha(times, np.exp(-times / tau)) == pytest.approx(tau, rel=1e-12)
        # Stretched exponential (KWW, beta = 0.6), as F_s of a supercooled liquid in the alpha regime.
        kww = np.exp(-((times / tau) ** 0.6))
        assert tau_alpha(times, kww) == pytest.approx(tau, rel=1e-12)
    # A grid with t = 0 first falls back to linear interpolation on the first interval.
    assert tau_alpha(np.array([0.0, 2.0]), np.array([1.0, 0.0])) == pytest.approx(2.0 * (1 - np.exp(-1)))


def test_tau_alpha_is_nan_when_not_reached():
    times = np.geomspace(1, 100, 10)
    with pytest.warns(RuntimeWarning, match="never falls"):
        assert np.isnan(tau_alpha(times, np.full(10, 0.9)))
    with pytest.warns(RuntimeWarning, match="already below"):
        assert np.isnan(tau_alpha(times, np.full(10, 0.1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau_alpha(times, np.exp(-times / 10))


def test_deepmind_replicas_reproduce_their_isf_and_tau_alpha(shared_data):
    """DeepMind's test file: 20 A particles x 30 replicas at 10 times, with the full-system F_s(q) there
    ('is_values': 0.9 ... 0.1, and 1/e at tau_alpha = 5375). Our F_s(7.25) from the 20-particle excerpt must
    match within 3 standard errors of its particle average (the per-particle replica means differ by the
    dynamic heterogeneity; SE ~ 0.02-0.04 here), and tau_alpha from the curves F_s -+ 3 SE must bracket
    the published time."""
    path = shared_data / "deepmind_test_small.pickle"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    x0 = np.asarray(data["positions"])
    times = np.asarray(data["time"])[np.asarray(data["time_indices"])]
    fs, errors = [], []
    for replicas in data["trajectory_target_positions"]:
        replicas = np.asarray(replicas)  # (30, 20, 3)
        fs.append(self_isf(x0, replicas, Q_PEAK_KA).mean())  # replicas as frames, then their mean
        per_particle = np.sinc(Q_PEAK_KA * np.linalg.norm(replicas - x0, axis=-1) / np.pi).mean(axis=0)
        errors.append(per_particle.std(ddof=1) / np.sqrt(len(per_particle)))
    fs, errors = np.array(fs), np.array(errors)
    assert np.all(np.abs(fs - data["is_values"]) < 3 * errors)

    order = np.argsort(times)
    t, f, e = times[order], fs[order], errors[order]
    published = times[int(np.argmin(np.abs(data["is_values"] - np.exp(-1))))]
    assert tau_alpha(t, f - 3 * e) <= published <= tau_alpha(t, f + 3 * e)


def test_botan_label_time_is_past_the_one_over_e_crossing(shared_data):
    """BOTAN's 'tc07' frames (T = 0.44), called the alpha-relaxation time in pyg_botan's README. Measured
    here: F_s(7.25) of the A particles there is 0.117, far below 1/e = 0.368, with a particle standard
    error of 0.0016 and a scatter of 0.033 between the 32 replicas (0.006 on their mean). So that time lies
    beyond tau_alpha as REFERENCE.md defines it (F_s = 1/e): for a stretched exponential with beta ~ 0.7
    it is about 3 tau_alpha. The test pins this finding, F_s more than 10 replica errors below 1/e, and
    keeps it within broad bounds (0.05-0.25) that still catch a wrong q or unit (F_s(q = 1) would be 0.9,
    F_s(q = 20) about 0.001)."""
    path = shared_data / "botan_T0.44_cfg1_tc07.npz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    data = np.load(path)
    mask = data["types"] == 0
    fs_replicas = self_isf(data["initial_positions"], data["positions"], Q_PEAK_KA, mask=mask)
    assert fs_replicas.shape == (32,)
    fs = fs_replicas.mean()
    replica_error = fs_replicas.std(ddof=1) / np.sqrt(len(fs_replicas))
    assert fs < np.exp(-1) - 10 * replica_error
    assert 0.05 < fs < 0.25
