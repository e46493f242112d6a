"""se3 reading the thermal configuration and its inherent structure together (graph.input 'both'): each
particle's displacement d to its inherent position is an l = 1 node input. Checked: the network stays
equivariant when d turns with the positions, it learns a target that needs d and the structure together
(as does the Bapst GN, which reads d in its node encoder), and the displacement is read from the inherent
structure's file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_sequential_addition

pytest.importorskip("e3nn")

from glasspipe.io.gsd_io import Snapshot, write_gsd  # noqa: E402
from glasspipe.learn.graphs import build_graph  # noqa: E402
from glasspipe.learn.models import se3  # noqa: E402
from glasspipe.learn.models.bapst import train_bapst  # noqa: E402
from glasspipe.learn.predict import predict  # noqa: E402
from glasspipe.learn.samples import Sample, with_inherent_displacement

R_CUT = 2.0


@pytest.fixture(autouse=True, scope="module")
def _threads(one_torch_thread):
    yield


def cluster_with_vectors(n: int = 40, seed: int = 0) -> Sample:
    """An isolated ball of particles (box 40: no periodic image within r_cut) with a random vector each."""
    rng = np.random.default_rng(seed)
    positions = np.empty((0, 3))
    while len(positions) < n:
        trial = rng.uniform(-2.2, 2.2, 3)
        if np.linalg.norm(trial) < 2.2 and not np.any(np.linalg.norm(positions - trial, axis=1) < 0.8):
            positions = np.vstack([positions, trial])
    typeid = (rng.random(n) < 0.3).astype(int)
    sample = Sample(seed, typeid, positions, 40.0, np.array([1.0, 2.0]), np.zeros((n, 2)))
    sample.node_vectors = 0.2 * rng.normal(size=(n, 3))
    return sample


def network(node_vector_inputs: int = 1) -> se3.SE3GNN:
    torch.manual_seed(0)
    return se3.SE3GNN(
        n_outputs=2, channels=8, n_layers=3, l_max=2, mean_neighbours=10.0, n_vector_outputs=1,
        decoder_invariants="scalars_and_norms", node_vector_inputs=node_vector_inputs,
    ).eval()  # fmt: skip


def run(model: se3.SE3GNN, sample: Sample):
    g = build_graph(sample, R_CUT)
    with torch.no_grad():
        scalars, vectors = model.forward_all(g.node_features, g.edge_vectors, g.senders, g.receivers)
    return scalars.double().numpy(), vectors.double().numpy()


@pytest.mark.parametrize("reflect", [False, True])
def test_equivariant_when_the_displacement_turns_with_the_positions(reflect):
    """A random rotation (and, for reflect, an improper one) of the positions and of d: scalars unchanged and
    vectors rotated, to 1e-5 (float32 through three layers; a non-equivariant input gives O(0.1))."""
    rng = np.random.default_rng(4)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    q = -q if reflect else q
    sample = cluster_with_vectors()
    turned = cluster_with_vectors()
    turned.positions, turned.node_vectors = sample.positions @ q.T, sample.node_vectors @ q.T
    model = network()
    scalars, vectors = run(model, sample)
    scalars_turned, vectors_turned = run(model, turned)
    assert np.abs(scalars).max() > 1e-3
    assert np.allclose(scalars_turned, scalars, atol=1e-5)
    assert np.allclose(vectors_turned, vectors @ q.T, atol=1e-5)


def test_the_displacement_changes_the_output():
    """Turning d alone (positions fixed) changes the scalars: the input is read, not ignored."""
    sample = cluster_with_vectors()
    other = cluster_with_vectors()
    other.node_vectors = sample.node_vectors[:, [1, 2, 0]]
    assert np.abs(run(network(), sample)[0] - run(network(), other)[0]).max() > 1e-3


def periodic_with_target(seed: int, n: int = 150) -> Sample:
    """Target d_i . v_i, v_i = sum_j r_hat_ij over neighbours closer than 1.3 (softened): it needs both the
    vector input and the structure; d is random, so the structure alone predicts nothing of it."""
    rng = np.random.default_rng(seed)
    box = (n / 1.2) ** (1 / 3)
    positions = random_sequential_addition(n, box, 0.8, rng)
    d = positions[None, :, :] - positions[:, None, :]
    d -= box * np.round(d / box)
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    weight = 1.0 / (1.0 + np.exp((r - 1.3) / 0.03))
    v = np.einsum("ij,ijk->ik", weight, d / r[..., None])
    displacement = 0.1 * rng.normal(size=(n, 3))
    target = np.einsum("ik,ik->i", displacement, v)
    sample = Sample(seed, (rng.random(n) < 0.2).astype(int), positions, box, np.array([1.0]), target[:, None])
    sample.node_vectors = displacement
    return sample


def test_learns_a_target_that_needs_the_displacement_and_the_structure(tmp_path):
    """Trained on 4 configurations of 150 particles: Pearson > 0.8 on 2 unseen ones with the input; the same
    network without it cannot beat 0.3 in magnitude (the target is odd in d, which it never sees)."""
    train = [periodic_with_target(seed) for seed in range(30, 34)]
    test = [periodic_with_target(seed) for seed in (40, 41)]
    settings = {"channels": 8, "n_layers": 2, "l_max": 1, "radial_neurons": 16, "device": "cpu", "epochs": 40,
                "learning_rate": 2e-2, "n_basis": 16, "patience": None}  # fmt: skip
    se3.train_se3(train, test[:1], settings, R_CUT, seed=0, out_dir=tmp_path / "with")
    table = predict("se3", tmp_path / "with", test)
    for _, rows in table.groupby("configuration"):
        a = rows[rows["type"] == "A"]
        assert np.corrcoef(a["prediction"], a["target"])[0, 1] > 0.8
    for s in train + test:
        s.node_vectors = None
    se3.train_se3(train, test[:1], settings, R_CUT, seed=0, out_dir=tmp_path / "without")
    table = predict("se3", tmp_path / "without", test)
    for _, rows in table.groupby("configuration"):
        a = rows[rows["type"] == "A"]
        assert abs(np.corrcoef(a["prediction"], a["target"])[0, 1]) < 0.3


def test_bapst_learns_with_the_displacement_input(tmp_path):
    """The Bapst GN reads d in its node encoder (turned with the edges by the cube-symmetry augmentation). On
    a target of d alone, |d|^2 (which no structure predicts: d is random), it reaches Pearson > 0.8 on unseen
    configurations; without the input it cannot beat 0.3 in magnitude. A mix of configurations with and
    without the input is refused."""
    train = [periodic_with_target(seed) for seed in range(30, 34)]
    test = [periodic_with_target(seed) for seed in (40, 41)]
    for s in train + test:
        s.targets = (s.node_vectors**2).sum(axis=1, keepdims=True)
    settings = {"hidden": 16, "n_message_passing": 1, "epochs": 30, "learning_rate": 3e-3,
                "standardise_targets": True}  # fmt: skip
    train_bapst(train, test[:1], settings, R_CUT, seed=0, out_dir=tmp_path / "bapst")
    table = predict("bapst", tmp_path / "bapst", test)
    for _, rows in table.groupby("configuration"):
        a = rows[rows["type"] == "A"]
        assert np.corrcoef(a["prediction"], a["target"])[0, 1] > 0.8
    for s in train + test:
        s.node_vectors = None
    train_bapst(train, test[:1], settings, R_CUT, seed=0, out_dir=tmp_path / "without")
    table = predict("bapst", tmp_path / "without", test)
    for _, rows in table.groupby("configuration"):
        a = rows[rows["type"] == "A"]
        assert abs(np.corrcoef(a["prediction"], a["target"])[0, 1]) < 0.3
    mixed = [periodic_with_target(seed) for seed in (30, 31, 50)]
    mixed[-1].node_vectors = None
    with pytest.raises(ValueError, match="graph.input"):
        train_bapst(mixed, test[:1], {"epochs": 1}, R_CUT, seed=0, out_dir=tmp_path / "mixed")


def test_displacement_read_from_the_inherent_structure(tmp_path):
    """d = r_inherent - r_thermal by minimum image: a particle moved across the boundary counts its short way."""
    sample = periodic_with_target(60)
    sample.node_vectors = None
    moved = sample.positions.copy()
    moved[:, 0] += 0.05
    moved -= sample.box_length * np.round(moved / sample.box_length)
    path = tmp_path / "inherent.gsd"
    write_gsd(path, [Snapshot(positions=moved, typeid=sample.typeid, box_length=sample.box_length)])
    with_inherent_displacement(sample, path)
    assert sample.node_vectors == pytest.approx(np.tile([0.05, 0.0, 0.0], (len(moved), 1)), abs=1e-6)
    wrong = Snapshot(positions=moved[:-1], typeid=sample.typeid[:-1], box_length=sample.box_length)
    write_gsd(tmp_path / "wrong.gsd", [wrong])
    with pytest.raises(ValueError, match="wrong.gsd"):
        with_inherent_displacement(sample, tmp_path / "wrong.gsd")
