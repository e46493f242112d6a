"""Periodic radius graphs on the model's device (glasspipe.learn.graphs.device) against freud and loops.

Expected: exactly the directed pair set of freud's minimum-image neighbour list
(glasspipe.structure.neighbours.periodic_pairs) and of a Python double loop, with equal vectors to 1e-12
sigma (both are differences of the same float64 positions, up to one shift by L: round-off ~1e-15 L).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glasspipe.learn.graphs import device as device_graph
from glasspipe.learn.graphs.device import brute_force_radius, ghost_images, periodic_radius_graph
from glasspipe.structure.neighbours import periodic_pairs


def _liquid(n: int, density: float, seed: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    box = (n / density) ** (1 / 3)
    return rng.uniform(-box, box, (n, 3)), box  # positions in several images: the graph must wrap them


def _assert_same_pairs(i, j, vectors, reference):
    got = np.stack([i.numpy(), j.numpy()], axis=1)
    want = np.stack([reference.i, reference.j], axis=1)
    assert got.shape == want.shape, f"{len(got)} pairs, freud has {len(want)}"
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(vectors.numpy(), reference.vectors, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, density, r_cut", [(300, 1.2, 2.0), (1000, 1.2, 2.5), (200, 0.3, 1.5)])
def test_equals_freud_pair_set(n, density, r_cut):
    positions, box = _liquid(n, density, seed=n)
    i, j, vectors = periodic_radius_graph(torch.as_tensor(positions), box, r_cut, search=brute_force_radius)
    _assert_same_pairs(i, j, vectors, periodic_pairs(positions, box, r_cut))


def test_equals_python_double_loop():
    positions, box = _liquid(60, 1.2, seed=3)
    r_cut = 1.6
    expected = []
    for a in range(len(positions)):
        for b in range(len(positions)):
            if a == b:
                continue
            d = positions[b] - positions[a]
            d = d - box * np.round(d / box)
            if np.sqrt((d**2).sum()) < r_cut:
                expected.append((a, b))
    i, j, _ = periodic_radius_graph(torch.as_tensor(positions), box, r_cut, search=brute_force_radius)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == sorted(expected)


def test_nothing_dropped_when_the_first_bound_is_too_small(monkeypatch):
    """A dense liquid with a first max_num_neighbors guess of ~1 % of the true count: the truncated
    searches are detected and repeated until no point reaches the cap."""
    positions, box = _liquid(400, 1.2, seed=7)
    r_cut = 2.0
    reference = periodic_pairs(positions, box, r_cut)
    calls = []

    def counting_search(x, y, r, max_num_neighbors=32):
        calls.append(max_num_neighbors)
        return brute_force_radius(x, y, r, max_num_neighbors=max_num_neighbors)

    monkeypatch.setattr(device_graph, "SAFETY", 0.01)
    i, j, vectors = periodic_radius_graph(torch.as_tensor(positions), box, r_cut, search=counting_search)
    _assert_same_pairs(i, j, vectors, reference)
    assert len(calls) > 1 and calls[-1] > calls[0]  # the bound grew


def test_a_capped_search_drops_pairs_that_the_retry_recovers():
    """What the retry guards against: the default cap of 32 of torch_cluster.radius on a KA liquid at
    rho = 1.2 within r = 2.0 (about 40 neighbours each) silently loses pairs."""
    positions, box = _liquid(300, 1.2, seed=11)
    points, _ = ghost_images(torch.as_tensor(positions - box * np.round(positions / box)), box, 2.0)
    capped = brute_force_radius(points, points[:300], 2.0, max_num_neighbors=32)
    assert capped.shape[1] - 300 < len(periodic_pairs(positions, box, 2.0).i)


def test_ghosts_cover_every_image_within_r_cut():
    positions, box = _liquid(200, 1.2, seed=5)
    wrapped = positions - box * np.round(positions / box)
    points, owner = ghost_images(torch.as_tensor(wrapped), box, 1.0)
    # Every ghost is an exact lattice translate of its owner, and lies within r_cut of the box.
    shift = (points - torch.as_tensor(wrapped)[owner]) / box
    assert torch.allclose(shift, shift.round(), atol=1e-12)
    assert bool((points.abs() < 0.5 * box + 1.0).all())


def test_half_box_cutoff_is_refused():
    positions, box = _liquid(50, 1.2, seed=1)
    with pytest.raises(ValueError, match="below half the box length"):
        periodic_radius_graph(torch.as_tensor(positions), box, 0.5 * box, search=brute_force_radius)


@pytest.mark.skipif(not device_graph.torch_cluster_available(), reason="torch-cluster is not installed")
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_cluster_equals_freud(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    positions, box = _liquid(1000, 1.2, seed=2)
    i, j, vectors = periodic_radius_graph(torch.as_tensor(positions, device=device), box, 2.5)
    _assert_same_pairs(i.cpu(), j.cpu(), vectors.cpu(), periodic_pairs(positions, box, 2.5))


def test_build_graph_backends_give_the_same_graph(monkeypatch):
    """graph.backend: torch_cluster (its search replaced by the brute-force one where torch-cluster is
    absent) gives the freud graph: the same senders and receivers, vectors equal in float32 to 1 ulp."""
    from glasspipe.learn.graphs import build_graph
    from glasspipe.learn.samples import Sample

    positions, box = _liquid(500, 1.2, seed=9)
    typeid = (np.arange(500) >= 400).astype(np.int32)
    sample = Sample(
        configuration=0,
        positions=positions,
        typeid=typeid,
        box_length=box,
        times=np.array([1.0]),
        targets=np.zeros((500, 1)),
    )
    monkeypatch.setattr(device_graph, "torch_cluster_available", lambda: True)
    monkeypatch.setattr(device_graph, "radius_search", lambda: brute_force_radius)
    a = build_graph(sample, 2.0, backend="freud")
    b = build_graph(sample, 2.0, backend="torch_cluster")
    assert torch.equal(a.senders, b.senders) and torch.equal(a.receivers, b.receivers)
    torch.testing.assert_close(b.edge_vectors, a.edge_vectors, rtol=0, atol=1e-6)
    assert torch.equal(a.node_features, b.node_features)


def test_build_graph_without_torch_cluster_names_the_key(monkeypatch):
    from glasspipe.learn.graphs import build_graph
    from glasspipe.learn.samples import Sample

    positions, box = _liquid(50, 1.2, seed=4)
    sample = Sample(
        configuration=0,
        positions=positions,
        typeid=np.zeros(50, np.int32),
        box_length=box,
        times=np.array([1.0]),
        targets=np.zeros((50, 1)),
    )
    monkeypatch.setattr(device_graph, "torch_cluster_available", lambda: False)
    with pytest.raises(RuntimeError, match="graph.backend"):
        build_graph(sample, 1.5, backend="torch_cluster")
    with pytest.raises(ValueError, match="graph.backend"):
        build_graph(sample, 1.5, backend="scipy")


def test_bapst_trained_on_device_graphs_equals_freud_and_predicts_anywhere(tmp_path, monkeypatch):
    """train_bapst with graph_backend='torch_cluster' (brute-force search standing in) learns the same
    weights as with freud (same pairs; vectors equal to 1 float32 ulp: weights to 1e-5), records the backend
    in hparams.json, and predicts through freud where torch-cluster is not installed."""
    import json

    from glasspipe.learn.models.bapst import predict_bapst, train_bapst
    from glasspipe.learn.samples import Sample

    def sample(c):
        positions, box = _liquid(120, 1.2, seed=100 + c)
        typeid = (np.arange(120) >= 96).astype(np.int32)
        rng = np.random.default_rng(c)
        return Sample(
            configuration=c,
            positions=positions - box * np.round(positions / box),
            typeid=typeid,
            box_length=box,
            times=np.array([1.0, 2.0]),
            targets=rng.normal(size=(120, 2)),
        )

    train, validation = [sample(0), sample(1)], [sample(2)]
    settings = {"hidden": 8, "n_message_passing": 1, "epochs": 2, "device": "cpu", "multi_time_head": True}
    train_bapst(train, validation, settings, 1.5, seed=0, out_dir=tmp_path / "freud")
    monkeypatch.setattr(device_graph, "torch_cluster_available", lambda: True)
    monkeypatch.setattr(device_graph, "radius_search", lambda: brute_force_radius)
    train_bapst(train, validation, settings, 1.5, seed=0, out_dir=tmp_path / "tc", graph_backend="torch_cluster")
    assert json.loads((tmp_path / "tc" / "hparams.json").read_text())["graph_backend"] == "torch_cluster"
    a = torch.load(tmp_path / "freud" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "tc" / "model.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)
    monkeypatch.setattr(device_graph, "torch_cluster_available", lambda: False)
    ((_, from_tc),) = predict_bapst(tmp_path / "tc", [validation[0]], device="cpu")
    ((_, from_freud),) = predict_bapst(tmp_path / "freud", [validation[0]], device="cpu")
    np.testing.assert_allclose(from_tc, from_freud, rtol=1e-4, atol=1e-5)
