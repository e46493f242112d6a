"""Dynamical labels (p_hop, CWT, bond breaking, displacement vectors, cage-relative displacements) and their
noise ceilings, each against an independent brute-force implementation written here (Python loops over
particles, frames and windows; no code shared with glasspipe.labels), against PyWavelets, and on analytic
cases; the stage end to end on synthetic replica files; the config checks of the dense window and label
grid; bond breaking versus propensity on the public BOTAN sample.

Tolerances: 1e-10 absolute for the brute-force comparisons (float64 sums of O(10) numbers of O(1): round-off
is ~1e-14; the vectorised p_hop uses cumulative sums, whose cancellation costs at most ~1e-12 here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from glasspipe import config as cfg
from glasspipe.io.gsd_io import Snapshot, write_gsd
from glasspipe.labels.bond_breaking import bond_breaking
from glasspipe.labels.ceiling import reliability_from_halves
from glasspipe.labels.cwt import cwt_coefficients, cwt_label
from glasspipe.labels.displacement import cage_relative
from glasspipe.labels.neighbours import initial_neighbours
from glasspipe.labels.phop import phop_iterative, phop_window

TOL = 1e-10
SIGMA = [[1.0, 0.8], [0.8, 0.88]]  # Kob-Andersen sigma_ab, typed in again here


# ------------------------------------------------------------------------------- brute-force references


def _mean(vectors):
    n = len(vectors)
    return [sum(v[d] for v in vectors) / n for d in range(3)]


def _sq(a, b):
    return sum((a[d] - b[d]) ** 2 for d in range(3))


def _phop_brute(traj_a, traj_b):
    """sqrt(<|r - <r>_B|^2>_A <|r - <r>_A|^2>_B) for two lists of 3-vectors."""
    m_a, m_b = _mean(traj_a), _mean(traj_b)
    a_about_b = sum(_sq(r, m_b) for r in traj_a) / len(traj_a)
    b_about_a = sum(_sq(r, m_a) for r in traj_b) / len(traj_b)
    return math.sqrt(a_about_b * b_about_a)


def brute_phop_window(positions, h):
    n_frames, n = positions.shape[:2]
    out = np.full((n_frames, n), np.nan)
    for i in range(n):
        traj = [list(positions[f, i]) for f in range(n_frames)]
        for t in range(h, n_frames - h):
            out[t, i] = _phop_brute(traj[t - h : t + 1], traj[t : t + h + 1])
    return out


def brute_phop_iterative(positions, p_c, t_f_frames):
    n_frames, n = positions.shape[:2]
    out = np.zeros((n_frames, n))
    for i in range(n):
        traj = [list(positions[f, i]) for f in range(n_frames)]
        hops = []

        def split(a, b, traj=traj, hops=hops):
            best, best_t = -1.0, None
            for t in range(a + 1, b):
                p = _phop_brute(traj[a : t + 1], traj[t : b + 1])
                if p > best:
                    best, best_t = p, t
            if best_t is None or best < p_c:
                return
            hops.append((best_t, best))
            split(a, best_t - 1, traj, hops)  # the split frame belongs to neither part
            split(best_t + 1, b, traj, hops)

        split(0, n_frames - 1)
        for t_star, p_star in hops:
            for f in range(n_frames):
                if abs(f - t_star) <= t_f_frames:
                    out[f, i] = max(out[f, i], p_star)
    return out


def _psi(u):
    return -2.0 * (2.0 / math.pi) ** 0.25 * u * math.exp(-u * u)


def brute_cwt(signal, interval, scale, support=6.0):
    """(interval / sqrt(scale)) sum_j x_j psi((t_j - t_k) / scale), x extended by its end values."""
    n_frames = len(signal)
    reach = int(support * scale / interval) + 2
    out = []
    for k in range(n_frames):
        total = 0.0
        for j in range(k - reach, k + reach + 1):
            u = (j - k) * interval / scale
            if abs(u) > support:
                continue
            x = signal[min(max(j, 0), n_frames - 1)]
            total += x * _psi(u)
        out.append(total * interval / math.sqrt(scale))
    return np.array(out)


def _min_image_distance(a, b, box):
    total = 0.0
    for d in range(3):
        delta = b[d] - a[d]
        delta -= box * round(delta / box)
        total += delta * delta
    return math.sqrt(total)


def _brute_neighbours(origin, typeid, box, r_factor):
    n = len(origin)
    return [
        [
            j
            for j in range(n)
            if j != i and _min_image_distance(origin[i], origin[j], box) < r_factor * SIGMA[typeid[i]][typeid[j]]
        ]
        for i in range(n)
    ]


def _followed_distance(origin, positions, i, j, box):
    """|r_j(t) - r_i(t)| for the pair's images that were closest at t = 0: the minimum-image separation at
    t = 0 plus the change of the unwrapped separation."""
    total = 0.0
    for d in range(3):
        start = origin[j][d] - origin[i][d]
        start -= box * round(start / box)
        delta = start + (positions[j][d] - origin[j][d]) - (positions[i][d] - origin[i][d])
        total += delta * delta
    return math.sqrt(total)


def brute_bond_breaking(origin, positions, typeid, box, r_in, r_out):
    """positions (K, N, 3) -> (K, N); each initial pair followed from its minimum image at t = 0."""
    neighbours = _brute_neighbours(origin, typeid, box, r_in)
    out = np.zeros(positions.shape[:2])
    for k in range(positions.shape[0]):
        for i, near in enumerate(neighbours):
            kept = sum(
                1
                for j in near
                if _followed_distance(origin, positions[k], i, j, box) < r_out * SIGMA[typeid[i]][typeid[j]]
            )
            out[k, i] = kept / len(near) if near else math.nan
    return out


def brute_cage_relative(origin, positions, typeid, box, r_cage):
    neighbours = _brute_neighbours(origin, typeid, box, r_cage)
    out = np.zeros(positions.shape)
    for k in range(positions.shape[0]):
        for i, near in enumerate(neighbours):
            for d in range(3):
                own = positions[k, i, d] - origin[i][d]
                cage = sum(positions[k, j, d] - origin[j][d] for j in near) / len(near)
                out[k, i, d] = own - cage
    return out


# ------------------------------------------------------------------------------------------ fixtures


def _caged_trajectories(n_replicas=2, n_frames=40, n=12, seed=0, jump_probability=0.05):
    """Unwrapped trajectories (R, F, N, 3): vibrations of 0.05 around cage centres that jump by ~1 at random."""
    rng = np.random.default_rng(seed)
    jumps = rng.normal(0.0, 0.6, (n_replicas, n_frames, n, 3)) * (
        rng.random((n_replicas, n_frames, n, 1)) < jump_probability
    )
    centres = rng.uniform(-3, 3, (1, 1, n, 3)) + np.cumsum(jumps, axis=1)
    return centres + rng.normal(0.0, 0.05, (n_replicas, n_frames, n, 3))


def _liquid(n=40, box=4.0, seed=1):
    """Random non-overlapping-ish positions in a box (80:20 types)."""
    rng = np.random.default_rng(seed)
    origin = rng.uniform(-box / 2, box / 2, (n, 3))
    typeid = (np.arange(n) >= int(0.8 * n)).astype(np.int32)
    return origin, typeid, rng


# ---------------------------------------------------------------------------------------------- p_hop


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 particles, so that the block loops of glasspipe.labels.phop run several times."""
    from glasspipe.labels import phop

    monkeypatch.setattr(phop, "BLOCK_PARTICLES", 4)


@pytest.mark.parametrize("h", [1, 3])
def test_phop_window_equals_brute_force(h, small_blocks):
    traj = _caged_trajectories(n_replicas=2, n_frames=25, n=6)
    ours = phop_window(traj, h)
    for r in range(2):
        expected = brute_phop_window(traj[r], h)
        assert np.array_equal(np.isnan(ours[r]), np.isnan(expected))
        np.testing.assert_allclose(ours[r], expected, atol=TOL, rtol=0)


# p_c = 0.003 is below the vibrations' own p: every segment splits again, down to two-frame pieces (the deepest
# recursion, segment ends at the window's edges included).
@pytest.mark.parametrize("p_c,t_f", [(0.02, 2), (0.1, 0), (10.0, 3), (0.003, 1)])
def test_phop_iterative_equals_brute_force(p_c, t_f, small_blocks):
    traj = _caged_trajectories(n_replicas=2, n_frames=30, n=8, seed=3)
    ours = phop_iterative(traj, p_c, t_f)
    for r in range(2):
        np.testing.assert_allclose(ours[r], brute_phop_iterative(traj[r], p_c, t_f), atol=TOL, rtol=0)
    if p_c == 10.0:
        assert not ours.any()  # no split reaches p_c: every label is 0


def test_phop_single_jump_peaks_at_the_jump_with_the_expected_height():
    """A particle at rest at 0 that jumps to a = 1.2 between frames J-1 and J, with no vibration.

    Sliding window (h frames a side): at t = J, A holds h frames at 0 and one at a, B all at a:
    <|r - a|^2>_A = h a^2 / (h + 1), <|r - <r>_A|^2>_B = (h a / (h + 1))^2, so p = a^2 (h / (h + 1))^(3/2);
    t = J - 1 is the mirror image with the same value; frames J - h .. J + h - 1 see the jump in both windows
    with less weight (smaller p); frames farther than that see no jump: p = 0.
    Iterative: over the whole window [0, F - 1] the best split is at J (A: J
    frames at 0 and one at a; B: the F - J frames at a), p* = a^2 (J / (J + 1))^(3/2), or J - 1 with
    a^2 ((F - J) / (F - J + 1))^(3/2), whichever is larger; the two parts left of and right of t* are then
    constant (p = 0 < p_c): one hop.
    """
    a, n_frames, jump, h = 1.2, 40, 15, 4
    traj = np.zeros((n_frames, 1, 3))
    traj[jump:, 0, 0] = a
    p = phop_window(traj, h)[:, 0]
    peak = a**2 * (h / (h + 1)) ** 1.5
    assert p[jump] == pytest.approx(peak, abs=1e-12)
    assert p[jump - 1] == pytest.approx(peak, abs=1e-12)
    near = np.arange(jump - h, jump + h)
    assert np.all(p[np.setdiff1d(near, [jump - 1, jump])] < peak - 1e-3)
    far = np.setdiff1d(np.arange(h, n_frames - h), near)
    np.testing.assert_allclose(p[far], 0.0, atol=1e-12)
    left = a**2 * (jump / (jump + 1)) ** 1.5
    right = a**2 * ((n_frames - jump) / (n_frames - jump + 1)) ** 1.5
    t_star, p_star = (jump, left) if left >= right else (jump - 1, right)
    t_f = 3
    iterative = phop_iterative(traj, 0.16, t_f)[:, 0]
    expected = np.zeros(n_frames)
    expected[t_star - t_f : t_star + t_f + 1] = p_star
    np.testing.assert_allclose(iterative, expected, atol=1e-12)


# ------------------------------------------------------------------------------------------------ CWT


@pytest.mark.parametrize("scale", [0.25, 0.7, 2.0])
def test_cwt_coefficients_equal_brute_force(scale):
    rng = np.random.default_rng(5)
    signal = np.cumsum(rng.normal(size=(3, 30)), axis=1) * 0.2
    ours = cwt_coefficients(signal, 0.1, [scale])[:, 0]
    for row in range(3):
        np.testing.assert_allclose(ours[row], brute_cwt(list(signal[row]), 0.1, scale), atol=TOL, rtol=0)


def test_cwt_label_is_the_norm_over_xyz_of_the_brute_force_coefficients():
    traj = _caged_trajectories(n_replicas=2, n_frames=20, n=5)
    scales = [0.2, 0.5]
    ours = cwt_label(traj, 0.1, scales)  # (R, S, F, N)
    for r in range(2):
        for s, scale in enumerate(scales):
            for i in range(5):
                coefs = [brute_cwt(list(traj[r, :, i, d]), 0.1, scale) for d in range(3)]
                expected = np.sqrt(sum(c**2 for c in coefs))
                np.testing.assert_allclose(ours[r, s, :, i], expected, atol=TOL, rtol=0)


def test_cwt_matches_pywavelets_gaus1():
    """PyWavelets' cwt(x, s / Delta, 'gaus1') uses the same wavelet (-2 t exp(-t^2) / (pi/2)^(1/4), unit norm) and
    the same 1/sqrt(scale) normalisation with scales in samples, so W_ours(s) = sqrt(Delta) W_pywt(s / Delta).
    Its convolution of the integrated wavelet followed by a difference puts its coefficient n half a sample
    early: pywt[n] ~ W(t_n - Delta/2), compared with the mean of our W at frames n - 1 and n. Same sign.
    pywt zero-pads, we extend the ends: compare where the wavelet (|u| < 6) stays inside the signal.
    Tolerance 1e-3 of the largest coefficient: pywt samples the integrated wavelet on a grid (precision 16)
    and the half-sample midpoint rule errs by O((Delta / s)^2) ~ 1e-4.
    """
    pywt = pytest.importorskip("pywt")
    interval = 0.1
    t = np.arange(1200) * interval
    signal = np.sin(2 * np.pi * t / 15.0) + 0.5 * np.tanh((t - 60.0) / 2.0)
    for scale in (0.5, 1.0, 3.0):
        ours = cwt_coefficients(signal, interval, [scale])[0]
        midpoint = 0.5 * (ours[1:] + ours[:-1])  # W at t_n - Delta/2 for n >= 1
        reference = np.sqrt(interval) * pywt.cwt(signal, [scale / interval], "gaus1", precision=16)[0][0][1:]
        margin = int(6 * scale / interval) + 2
        inside = slice(margin, len(signal) - 1 - margin)
        error = np.abs(midpoint[inside] - reference[inside]).max() / np.abs(reference[inside]).max()
        assert error < 1e-3, f"scale {scale}: relative difference {error:.2e} from pywt.cwt"


# ------------------------------------------------------------------------- bond breaking and cages


def test_bond_breaking_and_cage_relative_equal_brute_force():
    origin, typeid, rng = _liquid(n=40, box=4.0)
    box = 4.0
    positions = origin + np.cumsum(rng.normal(0, 0.15, (3, 4, 40, 3)), axis=1)  # (R, K, N, 3) unwrapped
    neighbours = initial_neighbours(origin, typeid, box, 1.3)
    ours = bond_breaking(positions, neighbours, 1.7)
    cage = cage_relative(positions - origin, initial_neighbours(origin, typeid, box, 1.45))
    for r in range(3):
        expected = brute_bond_breaking(origin.tolist(), positions[r], typeid, box, 1.3, 1.7)
        assert np.array_equal(np.isnan(ours[r]), np.isnan(expected))
        np.testing.assert_allclose(ours[r], expected, atol=TOL, rtol=0)
        np.testing.assert_allclose(
            cage[r], brute_cage_relative(origin.tolist(), positions[r], typeid, box, 1.45), atol=TOL
        )
    assert 0.0 < np.nanmean(ours) < 1.0  # some bonds break, some survive: the test can tell them apart


def test_frozen_lattice_keeps_every_bond_and_never_hops():
    """A simple cubic lattice (spacing 1, 5^3 sites, A particles) at rest: 6 neighbours within 1.3 each, all kept
    (C_B = 1 exactly), p_hop = 0 (sliding and iterative), CWT = 0, cage-relative displacement 0."""
    grid = np.arange(5) - 2.0
    origin = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    typeid = np.zeros(len(origin), dtype=np.int32)
    neighbours = initial_neighbours(origin, typeid, 5.0, 1.3)
    assert np.all(neighbours.count == 6)
    frozen = np.broadcast_to(origin, (2, 12, len(origin), 3)).copy()
    assert np.all(bond_breaking(frozen, neighbours, 1.7) == 1.0)
    window = phop_window(frozen, 2)
    np.testing.assert_allclose(window[:, 2:-2], 0.0, atol=1e-14)
    assert np.all(phop_iterative(frozen, 1e-12, 2) == 0.0)
    np.testing.assert_allclose(cwt_label(frozen, 0.1, [0.2, 0.4]), 0.0, atol=1e-13)
    np.testing.assert_allclose(cage_relative(frozen - origin, neighbours), 0.0, atol=0)


# ------------------------------------------------------------------------------------- noise ceiling


def test_reliability_equal_halves_is_spearman_brown_and_unequal_halves_invert_exactly():
    r = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(reliability_from_halves(r, 8, 8), 2 * r / (1 + r), rtol=1e-14)
    # Unequal halves: build r_hh from a known single-replica reliability rho_1, then recover rho_R.
    for n1, n2 in [(1, 2), (3, 4), (15, 16)]:
        for rho1 in (0.05, 0.3, 0.8):

            def stepped(m, rho1=rho1):
                return m * rho1 / (1 + (m - 1) * rho1)

            r_hh = math.sqrt(stepped(n1) * stepped(n2))
            assert reliability_from_halves(r_hh, n1, n2) == pytest.approx(stepped(n1 + n2), rel=1e-12)


def test_noise_ceiling_of_simulated_labels_matches_its_construction():
    """Per-replica values X_ir = true_i + noise (variance ratio chosen): the ceiling computed by the stage's
    accumulator from the halves must match the reliability the construction implies within sampling error."""
    from glasspipe.labels.compute import _Accumulator

    rng = np.random.default_rng(0)
    n, n_replicas, noise = 20000, 9, 2.0
    true = rng.normal(size=(1, n))
    values = true[None] + noise * rng.normal(size=(n_replicas, 1, n))
    acc = _Accumulator(n_replicas)
    acc.add(values[:4])
    acc.add(values[4:])
    table = acc.ceiling(np.array([1.0]), np.ones(n, dtype=bool))
    rho1 = 1 / (1 + noise**2)
    expected = n_replicas * rho1 / (1 + (n_replicas - 1) * rho1)
    assert table["reliability"][0] == pytest.approx(expected, abs=0.02)
    assert table["n_half1"] == 4 and table["n_half2"] == 5


# -------------------------------------------------------------------------- the stage, end to end


def _write_replicas(tmp_path, initial, trajectories, label_steps, dense_steps, dt):
    """Replica GSD files as isoconf writes them: t = 0, then label and dense frames flagged by log 'label'."""
    paths = []
    all_steps = sorted(set(label_steps) | set(dense_steps))
    for r, traj in enumerate(trajectories):
        frames = []
        for k, step in enumerate([0, *all_steps]):
            frame = Snapshot(
                positions=traj[k], typeid=initial.typeid, box_length=initial.box_length, step=step, dt=dt
            ).wrapped()
            frame.log["label"] = 1.0 if step == 0 or step in label_steps else 0.0
            frames.append(frame)
        path = tmp_path / f"replica{r:02d}.gsd"
        write_gsd(path, frames, metadata={"label_steps": list(label_steps), "dense_steps": list(dense_steps)})
        paths.append(path)
    return paths


@pytest.mark.parametrize("threads", [1, 2])
def test_stage_writes_every_label_and_its_ceiling(tmp_path, threads):
    from glasspipe import stages
    from glasspipe.io.tables import read_metadata, read_table

    box, dt = 4.0, 0.005
    origin, typeid, rng = _liquid(n=40, box=box)
    initial = Snapshot(positions=origin, typeid=typeid, box_length=box).wrapped()
    write_gsd(tmp_path / "initial.gsd", [initial])
    dense_steps = list(range(20, 420, 20))  # every 0.1 tau from 0.1 to 2.0 (+ t = 0): 21 dense frames
    label_steps = [40, 200, 400]  # 0.2, 1.0, 2.0: also dense frames
    all_steps = sorted(set(label_steps) | set(dense_steps))
    n_replicas = 3
    trajectories = origin + np.concatenate(
        [np.zeros((n_replicas, 1, 40, 3)), np.cumsum(rng.normal(0, 0.1, (n_replicas, len(all_steps), 40, 3)), axis=1)],
        axis=1,
    )
    paths = _write_replicas(tmp_path, initial, trajectories, label_steps, dense_steps, dt)
    settings = cfg.fill_defaults(
        {
            "isoconf": {"n_replicas": n_replicas, "dense_window": {"start": 0.0, "stop": 2.0, "interval": 0.1}},
            "labels": {
                "threads": threads,
                "chunk_replicas": 2,  # blocks of 2 and 1 replicas: the accumulators see several blocks
                "phop": {"enabled": True, "window": 0.6, "p_c": 0.01, "t_f": 0.2},
                "cwt": {"enabled": True, "scales": [0.2, 0.5]},
            },
        }
    )
    out = tmp_path / "labels.parquet"
    stages.labels(
        settings, 0.7, 0, tmp_path / "initial.gsd", paths, out, tmp_path / "dense.parquet", tmp_path / "ceil.parquet"
    )
    table, dense, ceil = read_table(out), read_table(tmp_path / "dense.parquet"), read_table(tmp_path / "ceil.parquet")
    # Label-time labels: replica means of the brute-force values.
    steps_index = [all_steps.index(s) + 1 for s in label_steps]
    at_labels = trajectories[:, steps_index]  # (R, K, N, 3)
    expected_bb = np.mean(
        [brute_bond_breaking(origin.tolist(), at_labels[r], typeid, box, 1.45, 1.7) for r in range(n_replicas)], axis=0
    )
    np.testing.assert_allclose(table["bond_breaking"].to_numpy().reshape(3, 40), expected_bb, atol=TOL)
    np.testing.assert_allclose(
        table["disp_x"].to_numpy().reshape(3, 40), (at_labels[..., 0] - origin[:, 0]).mean(axis=0), atol=1e-6
    )
    cage = np.mean(
        [brute_cage_relative(origin.tolist(), at_labels[r], typeid, box, 1.45) for r in range(n_replicas)], axis=0
    )
    np.testing.assert_allclose(table["cage_disp_z"].to_numpy().reshape(3, 40), cage[..., 2], atol=1e-6)
    assert list(table.columns[:5]) == ["particle", "type", "time", "propensity", "propensity_std"]
    # Dense labels: 21 frames (t = 0 included), replica mean and replica 0.
    dense_index = [0, *[all_steps.index(s) + 1 for s in dense_steps]]
    dense_traj = trajectories[:, dense_index]
    assert sorted(dense["time"].unique()) == pytest.approx(np.arange(21) * 0.1)
    single = brute_phop_window(dense_traj[0], 3)
    np.testing.assert_allclose(dense["phop_single"].to_numpy().reshape(21, 40), single, atol=1e-6, equal_nan=True)
    iterative = np.mean([brute_phop_iterative(dense_traj[r], 0.01, 2) for r in range(n_replicas)], axis=0)
    np.testing.assert_allclose(dense["phop_iterative"].to_numpy().reshape(21, 40), iterative, atol=1e-6)
    cwt0 = np.sqrt(sum(brute_cwt(list(dense_traj[0, :, 7, d]), 0.1, 0.5) ** 2 for d in range(3)))
    np.testing.assert_allclose(dense["cwt_s0.5_single"].to_numpy().reshape(21, 40)[:, 7], cwt0, atol=1e-6)
    # Ceilings: one row per label column and time.
    expected_columns = {"propensity", "disp_x", "disp_y", "disp_z", "cage_disp_x", "cage_disp_y", "cage_disp_z"}
    expected_columns |= {"cage_propensity", "bond_breaking", "phop", "phop_iterative", "cwt_s0.2", "cwt_s0.5"}
    assert set(ceil["label"]) == expected_columns
    assert len(ceil[ceil["label"] == "cwt_s0.2"]) == 21 and len(ceil[ceil["label"] == "bond_breaking"]) == 3
    assert set(ceil["n_half1"]) == {1} and set(ceil["n_half2"]) == {2}
    meta = read_metadata(out)
    assert meta["label_info"]["labels"]["bond_breaking"]["settings_tau"]["r_out"] == 1.7
    assert meta["label_info"]["labels"]["bond_breaking"]["settings_tau"]["r_in"] == 1.45  # the default (Jung's code)
    assert len(meta["noise_ceiling"]["ceiling"]) == 3 and len(meta["self_isf"]["fs_A"]) == 3


def test_stage_refuses_dense_labels_without_dense_frames(tmp_path):
    from glasspipe.labels.compute import compute_labels, replicas_from_files

    origin, typeid, rng = _liquid(n=20, box=4.0)
    initial = Snapshot(positions=origin, typeid=typeid, box_length=4.0).wrapped()
    traj = origin + np.zeros((2, 3, 20, 3))
    paths = _write_replicas(tmp_path, initial, traj, [20, 40], [], 0.005)
    settings = cfg.fill_defaults({"isoconf": {"n_replicas": 2}, "labels": {"phop": {"enabled": True}}})
    with pytest.raises(ValueError, match="labels.phop.enabled"):
        compute_labels(settings, initial, replicas_from_files(settings, initial, paths, dense=True), 2)


# ---------------------------------------------------------------------------------------- config


def _config(**isoconf):
    return {
        "temperatures": [0.7],
        "n_configurations": 2,
        "split": {"train": 1, "validation": 0, "test": 1},
        "isoconf": {"times": [0.1, 1.0], **isoconf},
    }


def test_config_refuses_a_dense_window_that_cannot_resolve_the_labels():
    window = {"start": 0.0, "stop": 10.0, "interval": 0.1}
    good = _config(dense_window=window) | {"labels": {"cwt": {"enabled": True, "scales": [0.2, 5.0]}}}
    cfg.validate_config(good)
    with pytest.raises(cfg.ConfigError, match=r"labels\.cwt\.scales.*smallest scale 0\.1"):
        cfg.validate_config(_config(dense_window=window) | {"labels": {"cwt": {"enabled": True, "scales": [0.1]}}})
    with pytest.raises(cfg.ConfigError, match=r"labels\.cwt\.scales.*largest scale 6"):
        cfg.validate_config(_config(dense_window=window) | {"labels": {"cwt": {"enabled": True, "scales": [6.0]}}})
    with pytest.raises(cfg.ConfigError, match=r"labels\.phop\.window.*exceeds"):
        cfg.validate_config(_config(dense_window=window) | {"labels": {"phop": {"enabled": True, "window": 20.0}}})
    with pytest.raises(cfg.ConfigError, match=r"labels\.phop\.window.*shorter"):
        cfg.validate_config(_config(dense_window=window) | {"labels": {"phop": {"enabled": True, "window": 0.1}}})
    with pytest.raises(cfg.ConfigError, match=r"isoconf\.dense_window"):
        cfg.validate_config(_config() | {"labels": {"phop": {"enabled": True}}})
    # In units of tau_alpha: 0.05 tau_alpha = 0.25 tau at tau_alpha = 5 needs interval <= 0.125.
    scaled = _config(dense_window=window) | {
        "tau_alpha_estimates": [5.0],
        "labels": {"cwt": {"enabled": True, "time_unit": "tau_alpha", "scales": [0.05, 1.0]}},
    }
    cfg.validate_config(scaled)
    scaled["labels"]["cwt"]["scales"] = [0.03, 1.0]
    with pytest.raises(cfg.ConfigError, match="smallest scale 0.15 tau"):
        cfg.validate_config(scaled)


def test_config_refuses_label_times_that_collapse_onto_one_step():
    """GlassBench's grid (3e-5 to 30 tau_alpha, 12 times) at T = 0.64 (tau_alpha 16.5): the first times fall below
    dt = 0.005 and collapse onto step 1; at T = 0.44 (tau_alpha 4120) they stay distinct."""
    times = {"start": 3.0e-5, "stop": 30.0, "count": 12}
    base = _config() | {"isoconf": {"time_unit": "tau_alpha", "times": times}}
    cfg.validate_config(base | {"temperatures": [0.44], "tau_alpha_estimates": [4120.0]})
    with pytest.raises(cfg.ConfigError, match=r"isoconf\.times.*T = 0\.64"):
        cfg.validate_config(base | {"temperatures": [0.44, 0.64], "tau_alpha_estimates": [4120.0, 16.5]})


# ------------------------------------------------------------------------------------------- BOTAN


def test_botan_bond_breaking_versus_propensity_at_tau_alpha(shared_data):
    """Bond breaking (r_in 1.45, r_out 1.7: the defaults) and propensity of the 32 BOTAN replicas at tau_alpha
    (time index 7), configuration 1 of the training sample: the particles that move far are those that lose their
    neighbours, so the two labels must be strongly anti-correlated over the A particles."""
    from glasspipe import importers

    path = shared_data / "botan_T0.44_train" / "isoconfig_N4096T0.44_1_tc07.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    imported = importers.load("botan", path)
    data = np.load(path)
    box = imported.snapshot.box_length
    origin = np.asarray(data["initial_positions"], dtype=np.float64)
    replicas = np.asarray(data["positions"], dtype=np.float64)[:, None]  # (32, 1, N, 3) unwrapped
    typeid = np.asarray(data["types"], dtype=np.int32)
    c_b = bond_breaking(replicas, initial_neighbours(origin, typeid, box, 1.45), 1.7).mean(axis=0)[0]
    propensity = imported.propensity[0]  # the importer's propensity at the file's single time (tau_alpha)
    is_a = typeid == 0
    r = np.corrcoef(c_b[is_a], propensity[is_a])[0, 1]
    print(f"BOTAN cfg 1, tau_alpha: Pearson(C_B, propensity) over A particles = {r:.4f}; mean C_B = {c_b.mean():.4f}")
    assert r < -0.7
    assert 0.2 < c_b[is_a].mean() < 0.95


# ------------------------------------------------------------------------------------------ Snakemake


def test_snakemake_plans_the_dense_and_ceiling_tables(tmp_path):
    """The tiny config enables p_hop and the CWT: the labels jobs must declare the dense labels and the
    ceilings tables (a dry run; the end-to-end run is tests/test_workflow.py)."""
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
        + ["--configfile", str(REPO / "tests" / "configs" / "tiny.yaml"), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout + result.stderr
    for c in range(4):
        assert f"T0.8/labels/cfg{c:03d}.dense.parquet" in text
        assert f"T0.8/labels/cfg{c:03d}.ceilings.parquet" in text


def test_label_settings_in_tau_alpha_are_scaled_to_tau():
    """time_unit tau_alpha multiplies exactly the label's time settings (CWT scales; p_hop window and t_f, not
    p_c, a length squared); column names keep the configured values."""
    from glasspipe.labels.registry import LABELS, in_tau

    cwt = in_tau(LABELS["cwt"], {"time_unit": "tau_alpha", "scales": [0.1, 2.0]}, 5.0)
    assert cwt["scales"] == pytest.approx([0.5, 10.0])
    assert LABELS["cwt"].columns({"scales": [0.1, 2.0]}) == ["cwt_s0.1", "cwt_s2"]
    phop = in_tau(LABELS["phop"], {"time_unit": "tau_alpha", "window": 0.4, "t_f": 1.0, "p_c": 0.16}, 5.0)
    assert (phop["window"], phop["t_f"], phop["p_c"]) == pytest.approx((2.0, 5.0, 0.16))
    assert in_tau(LABELS["phop"], {"time_unit": "tau", "window": 0.4}, None)["window"] == 0.4
    with pytest.raises(ValueError, match=r"labels\.cwt\.time_unit"):
        in_tau(LABELS["cwt"], {"time_unit": "tau_alpha", "scales": [1.0]}, None)
