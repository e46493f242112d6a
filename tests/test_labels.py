"""Propensity and its noise ceiling: synthetic replicas with known displacements, unwrapping, validation,
GSD round trip, and the two public dataset formats (BOTAN npz, DeepMind pickle)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from glasspipe.io.gsd_io import Snapshot, write_gsd
from glasspipe.labels.propensity import (
    load_replicas,
    noise_ceiling,
    noise_ceiling_from_distances,
    propensity,
    propensity_from_files,
    replica_displacements,
)

BOTAN_FILE = "botan_T0.44_cfg1_tc07.npz"
BOTAN_BOX = 15.05658
BOTAN_TAU_ALPHA = 4120.0  # GlassBench tau_alpha at T = 0.44 (REFERENCE.md); the file stores no time
DEEPMIND_FILE = "deepmind_test_small.pickle"
DEEPMIND_DT = 0.003  # every time in the DeepMind file is a multiple of 0.003


# shared_data: the fixture in tests/conftest.py ($GLASSPIPE_SHARED_DATA or ../shared/data; skips if absent).


# ------------------------------------------------------------------------------------------- helpers


def _system(n=50, box=6.0, seed=0):
    rng = np.random.default_rng(seed)
    typeid = (np.arange(n) >= int(0.8 * n)).astype(np.int32)
    initial = Snapshot(positions=rng.uniform(-0.5 * box, 0.5 * box, (n, 3)), typeid=typeid, box_length=box)
    return initial, rng


def _frame(initial: Snapshot, unwrapped: np.ndarray, step: int, dt: float = 0.005) -> Snapshot:
    """A frame at unwrapped positions, stored the way the engines store it: wrapped + image flags."""
    return Snapshot(
        positions=unwrapped, typeid=initial.typeid, box_length=initial.box_length, step=step, dt=dt
    ).wrapped()


def _replicas(initial, displacements, steps):
    """displacements: (R, K, N, 3) -> trajectories[r][k]."""
    origin = initial.unwrapped_positions()
    return [
        [_frame(initial, origin + displacements[r, k], steps[k]) for k in range(len(steps))]
        for r in range(displacements.shape[0])
    ]


# ---------------------------------------------------------------------------------------- synthetic


def test_known_displacements_long_format():
    initial, rng = _system()
    steps = [20, 200, 2000]
    displacements = (
        rng.normal(0.0, 0.4, (6, 3, initial.n_particles, 3)) * np.array([0.2, 1.0, 3.0])[None, :, None, None]
    )
    table = propensity(initial, _replicas(initial, displacements, steps))
    assert list(table.columns) == ["particle", "type", "time", "propensity", "propensity_std"]
    n = initial.n_particles
    assert len(table) == 3 * n
    distances = np.linalg.norm(displacements, axis=-1)  # (R, K, N)
    for k, step in enumerate(steps):
        rows = table[np.isclose(table["time"], step * 0.005)]
        assert list(rows["particle"]) == list(range(n))
        assert list(rows["type"]) == ["A"] * 40 + ["B"] * 10
        np.testing.assert_allclose(rows["propensity"], distances[:, k].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(rows["propensity_std"], distances[:, k].std(axis=0, ddof=1), rtol=1e-10)
    assert table["particle"].dtype == np.int64


def test_unwrapping_across_the_boundary():
    """Crossing the boundary changes the image flags, not the distance travelled; a displacement longer
    than half the box (impossible under the minimum image) is kept."""
    box = 6.0
    initial = Snapshot(positions=np.array([[2.9, 0.0, 0.0], [0.0, -2.95, 0.0]]), typeid=[0, 0], box_length=box)
    moves = np.array([[0.3, 0.0, 0.0], [0.0, -0.8 * box, 0.0]])
    frame = _frame(initial, initial.unwrapped_positions() + moves, step=100)
    assert frame.images[0, 0] == 1 and frame.images[1, 1] == -1  # both crossed
    assert np.all(np.abs(frame.positions) <= 0.5 * box)
    table = propensity(initial, [[frame], [frame]])
    np.testing.assert_allclose(table["propensity"], [0.3, 0.8 * box], rtol=1e-12)
    np.testing.assert_allclose(table["propensity_std"], [0.0, 0.0], atol=1e-12)


def test_initial_with_image_flags_and_replica_t0_frames():
    """Replicas may carry their own t = 0 frame with image flags reset to zero (a fresh engine run) while
    the initial snapshot has nonzero image flags from equilibration: displacements are then measured from
    each replica's own t = 0 frame, and float32 rounding of the stored positions is tolerated."""
    initial, rng = _system(seed=3)
    initial.images = rng.integers(-3, 4, initial.positions.shape).astype(np.int32)
    displacements = rng.normal(0.0, 1.0, (4, 2, initial.n_particles, 3))
    steps = [10, 1000]
    trajectories = []
    for r in range(4):
        start = Snapshot(
            positions=initial.positions.astype(np.float32),
            typeid=initial.typeid,
            box_length=initial.box_length,
        )
        frames = [start] + [_frame(start, start.positions + displacements[r, k], steps[k]) for k in range(2)]
        trajectories.append(frames)
    table = propensity(initial, trajectories)
    expected = np.linalg.norm(displacements, axis=-1).mean(axis=0)
    np.testing.assert_allclose(table["propensity"].to_numpy().reshape(2, -1), expected, rtol=1e-9, atol=1e-9)
    assert sorted(table["time"].unique()) == pytest.approx([0.05, 5.0])


def test_validation_names_what_differs():
    initial, rng = _system()
    good = _replicas(initial, rng.normal(0, 0.1, (2, 2, initial.n_particles, 3)), [10, 100])
    with pytest.raises(ValueError, match="replica 1 has label times"):
        propensity(initial, [good[0], [good[1][0], _frame(initial, initial.positions, 50)]])
    fewer = Snapshot(
        positions=initial.positions[:-1], typeid=initial.typeid[:-1], box_length=initial.box_length, step=10
    )
    with pytest.raises(ValueError, match="replica 1, frame 0.*49 particles"):
        propensity(initial, [good[0], [fewer, good[1][1]]])
    swapped = good[1][0].copy()
    swapped.typeid = swapped.typeid[::-1].copy()
    with pytest.raises(ValueError, match="different particle types"):
        propensity(initial, [good[0], [swapped, good[1][1]]])
    moved = initial.copy()
    moved.positions[7] += 0.01
    with pytest.raises(ValueError, match=r"replica 0: positions at t = 0 differ.*particle 7"):
        propensity(initial, [[moved, *good[0]], good[1]])
    with pytest.raises(ValueError, match="no replicas"):
        propensity(initial, [])


def test_gsd_round_trip(tmp_path):
    """Files as the isoconf stage writes them: frame 0 at t = 0 (float32, images reset), then label times."""
    initial, rng = _system(n=40, seed=5)
    initial.images = rng.integers(-2, 3, initial.positions.shape).astype(np.int32)
    write_gsd(tmp_path / "initial.gsd", [initial])
    stored_initial = Snapshot(
        positions=initial.positions.astype(np.float32), typeid=initial.typeid, box_length=initial.box_length
    )
    steps = [20, 400]
    displacements = rng.normal(0.0, 0.7, (3, 2, initial.n_particles, 3))
    paths = []
    for r in range(3):
        frames = [stored_initial] + [
            _frame(stored_initial, stored_initial.positions + displacements[r, k], steps[k]) for k in range(2)
        ]
        paths.append(tmp_path / f"replica{r}.gsd")
        write_gsd(paths[-1], frames)
    loaded_initial, trajectories = load_replicas(tmp_path / "initial.gsd", paths)
    assert len(trajectories) == 3 and all(len(t) == 2 for t in trajectories)
    table = propensity_from_files(tmp_path / "initial.gsd", paths)
    expected = np.linalg.norm(displacements, axis=-1).mean(axis=0).reshape(-1)
    np.testing.assert_allclose(table["propensity"], expected, atol=2e-5)  # float32 positions
    assert table.equals(propensity(loaded_initial, trajectories))
    with pytest.raises(FileNotFoundError):
        load_replicas(tmp_path / "initial.gsd", [tmp_path / "missing.gsd"])
    other = Snapshot(positions=initial.positions + 0.5, typeid=initial.typeid, box_length=initial.box_length)
    write_gsd(tmp_path / "other.gsd", [other, _frame(other, other.positions, 20)])
    with pytest.raises(ValueError, match="other.gsd"):
        load_replicas(tmp_path / "initial.gsd", [tmp_path / "other.gsd"])


def test_noise_ceiling_synthetic():
    """Replica distances = true propensity + independent noise: the half-half correlation is
    var_true / (var_true + 2 var_noise / R), and Spearman-Brown recovers the full-ensemble reliability."""
    rng = np.random.default_rng(11)
    n, n_replicas = 20000, 16
    true = rng.gamma(4.0, 0.1, n)
    for noise in (0.1, 0.3):
        distances = (true[None, :] + rng.normal(0.0, noise, (n_replicas, n)))[:, None, :]
        table = noise_ceiling_from_distances(np.array([1.0]), distances, np.ones(n, bool))
        var_true = true.var()
        half = var_true / (var_true + noise**2 / (n_replicas // 2))
        full = var_true / (var_true + noise**2 / n_replicas)
        assert table["half_half_pearson"][0] == pytest.approx(half, abs=0.01)
        assert table["reliability"][0] == pytest.approx(full, abs=0.01)
        assert table["ceiling"][0] == pytest.approx(np.sqrt(table["reliability"][0]), rel=1e-12)
        # the ceiling is what the measured mean correlates with the truth
        measured = distances[:, 0].mean(axis=0)
        assert np.corrcoef(measured, true)[0, 1] == pytest.approx(table["ceiling"][0], abs=0.01)


def test_noise_ceiling_from_snapshots_uses_type_a():
    initial, rng = _system(n=400, seed=2)
    displacements = rng.normal(0.0, 1.0, (8, 1, initial.n_particles, 3))
    trajectories = _replicas(initial, displacements, [100])
    table = noise_ceiling(initial, trajectories)
    assert table["n_particles"][0] == 320 and table["n_replicas"][0] == 8
    distances = np.linalg.norm(displacements, axis=-1)[:, 0, :320]
    expected = np.corrcoef(distances[:4].mean(0), distances[4:].mean(0))[0, 1]
    assert table["half_half_pearson"][0] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="type 'C'"):
        noise_ceiling(initial, trajectories, type_name="C")


# -------------------------------------------------------------------------------------------- BOTAN


@pytest.fixture(scope="module")
def botan(shared_data):
    path = shared_data / BOTAN_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = np.load(path)
    step = int(round(BOTAN_TAU_ALPHA / 0.005))
    initial = Snapshot(positions=data["initial_positions"], typeid=data["types"], box_length=BOTAN_BOX).wrapped()
    trajectories = [
        [Snapshot(positions=p, typeid=data["types"], box_length=BOTAN_BOX, step=step, dt=0.005).wrapped()]
        for p in data["positions"]
    ]
    return data, initial, trajectories


def test_botan_matches_botan_definition(botan):
    """Our propensity from wrapped positions + image flags equals BOTAN's own label (load_data.py of
    pyg_botan: mean over replicas of norm(positions - initial_positions), unwrapped coordinates)."""
    data, initial, trajectories = botan
    table = propensity(initial, trajectories)
    direct = np.mean(np.linalg.norm(data["positions"] - data["initial_positions"][None], axis=-1), axis=0)
    np.testing.assert_allclose(table["propensity"], direct, rtol=1e-12, atol=1e-12)
    assert (table["type"] == "A").sum() == 3277
    assert table["time"].unique() == pytest.approx([BOTAN_TAU_ALPHA])


# REFERENCE.md quotes a mean A propensity of 0.511 and a half-half replica correlation of 0.733 at
# tau_alpha for the BOTAN data, but this sample (cfg1, tc07) gives 0.699 and 0.527, and its F_s(7.25) is
# 0.117, not 1/e: the sample lies beyond tau_alpha. Those two numbers are therefore not asserted here
# (see the issue note); the definition is checked against BOTAN's and DeepMind's own arrays instead.


def test_botan_spearman_brown_consistency(botan):
    """The physics behind the noise ceiling, on real replicas: Spearman-Brown predicts the correlation of
    two 8-replica means from that of two 16-replica means, r_8 = r_16 / (2 - r_16). Averaged over 40 random
    splits each, the measured r_8 must agree within 0.05 (split-to-split spread about 0.02 each)."""
    _, initial, trajectories = botan
    times, distances = replica_displacements(initial, trajectories)
    mask = initial.typeid == 0
    r16 = noise_ceiling_from_distances(times, distances, mask, n_splits=40, seed=1)["half_half_pearson"][0]
    r8 = noise_ceiling_from_distances(times, distances[:16], mask, n_splits=40, seed=2)["half_half_pearson"][0]
    assert r8 == pytest.approx(r16 / (2.0 - r16), abs=0.05)
    ceiling = noise_ceiling(initial, trajectories)
    assert ceiling["reliability"][0] == pytest.approx(
        2 * ceiling["half_half_pearson"][0] / (1 + ceiling["half_half_pearson"][0])
    )


# ----------------------------------------------------------------------------------------- DeepMind


def test_deepmind_pickle_interface(shared_data):
    """The DeepMind format: trajectory_target_positions[k] holds the 30 replicas at time[time_indices[k]];
    propensity at k is the mean replica distance from `positions`. Built into Snapshots (wrapped, image
    flags, a 3-vector cubic box), our function reproduces it for every k, in the file's order of k."""
    path = shared_data / DEEPMIND_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with path.open("rb") as fh:
        data = pickle.load(fh)
    box = np.asarray(data["box"], dtype=float)
    assert np.allclose(box, box[0])  # cubic
    box_length = float(box[0])
    positions = np.asarray(data["positions"])
    typeid = np.asarray(data["types"])
    times = [data["time"][i] for i in data["time_indices"]]
    targets = [np.asarray(t) for t in data["trajectory_target_positions"]]  # K x (R, N, 3)
    n_replicas = targets[0].shape[0]
    initial = Snapshot(positions=positions, typeid=typeid, box_length=box_length).wrapped()
    trajectories = [
        [
            Snapshot(
                positions=targets[k][r],
                typeid=typeid,
                box_length=box_length,
                step=int(round(times[k] / DEEPMIND_DT)),
                dt=DEEPMIND_DT,
            ).wrapped()
            for k in range(len(times))
        ]
        for r in range(n_replicas)
    ]
    table = propensity(initial, trajectories)
    n = len(positions)
    assert len(table) == len(times) * n
    for k, time in enumerate(times):
        rows = table.iloc[k * n : (k + 1) * n]
        assert rows["time"].iloc[0] == pytest.approx(time, rel=1e-9)
        direct = np.linalg.norm(targets[k] - positions[None], axis=-1)
        np.testing.assert_allclose(rows["propensity"], direct.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rows["propensity_std"], direct.std(axis=0, ddof=1), rtol=1e-10, atol=1e-12)
    # the tau_alpha entry (F_s = 1/e) is the last one: mobility grows with time in the sorted entries
    order = np.argsort(times)
    means = table.groupby("time", sort=True)["propensity"].mean().to_numpy()
    assert np.all(np.diff(means) > 0), pd.Series(means, index=np.asarray(times)[order])
