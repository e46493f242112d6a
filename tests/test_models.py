"""Tests of the models: the Bapst graph network against an independent graph_nets-style reference, its
switches, and that every model (graph network, multi-time head, GlassMLP-style MLP, ridge) learns a synthetic
target that is a known function of the structure.

The synthetic task: uniformly random configurations (two types); the targets of a particle are smooth radial
sums over its neighbours, sum_j exp(-(r_ij / 0.9)^2) at time 1 and sum over B neighbours of
exp(-(r_ij / 1.2)^2) at time 10, plus small noise.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from glasspipe.learn.evaluate import correlations, summary
from glasspipe.learn.graphs import build_graph
from glasspipe.learn.models.bapst import BapstGNN, PerTimeModels, build_bapst, load_bapst, train_bapst
from glasspipe.learn.models.mlp import BottleneckMLP, train_mlp
from glasspipe.learn.models.ridge import train_ridge
from glasspipe.learn.predict import predict
from glasspipe.learn.samples import Sample
from glasspipe.learn.training.graph_task import count_parameters
from glasspipe.structure.neighbours import periodic_pairs

TIMES = np.array([1.0, 10.0])
R_CUT = 1.5
SHELLS = np.round(np.arange(0.0, 1.51, 0.1), 2)


# One torch thread (conftest.one_torch_thread): the machine is shared, oversubscribed threads crawl.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic(configuration: int, n: int = 256, noise: float = 0.05) -> Sample:
    rng = np.random.default_rng([777, configuration])
    length = (n / 1.2) ** (1 / 3)
    positions = rng.uniform(-length / 2, length / 2, (n, 3))
    typeid = np.zeros(n, dtype=int)
    typeid[: n // 5] = 1
    rng.shuffle(typeid)
    pairs = periodic_pairs(positions, length, R_CUT)
    # Smooth radial sums: a Gaussian weight over all neighbours, a wider one over B neighbours only.
    first = np.bincount(pairs.i, weights=np.exp(-((pairs.distances / 0.9) ** 2)), minlength=n)
    b_weight = np.exp(-((pairs.distances / 1.2) ** 2)) * (typeid[pairs.j] == 1)
    second = np.bincount(pairs.i, weights=b_weight, minlength=n)
    targets = np.stack([first, second], axis=1) + noise * rng.normal(size=(n, 2))
    shell = np.digitize(pairs.distances, SHELLS) - 1
    counts = np.zeros((n, 2, len(SHELLS) - 1))
    np.add.at(counts, (pairs.i, typeid[pairs.j], shell), 1.0)
    names = [f"n_{t}_{k}" for t in "AB" for k in range(len(SHELLS) - 1)]
    return Sample(configuration, typeid, positions, length, TIMES, targets, counts.reshape(n, -1), names)


def _split():
    return [synthetic(c) for c in range(6)], [synthetic(c) for c in (100,)], [synthetic(c) for c in (200, 201)]


def _a_pearson_per_time(table) -> np.ndarray:
    result = summary(correlations(table, "m"))
    return result[result["type"] == "A"].sort_values("time")["mean_pearson"].to_numpy()


# ----------------------------------------------------------------------------- independent reference


def _mlp(x, linears, activate_final):
    """graph_nets / sonnet MLP: Linear layers, ReLU between them and after the last if activate_final."""
    for k, lin in enumerate(linears):
        x = x @ lin.weight.t() + lin.bias
        if k < len(linears) - 1 or activate_final:
            x = torch.relu(x)
    return x


def graph_nets_reference(model: BapstGNN, types, positions, box):
    """The original's computation written out literally, sharing no code with the model's forward.

    Graph as ``make_graph_from_static_structure``: the full minimum-image distance matrix, edges where the
    distance is below the threshold, **self-pairs included**; senders = row, receivers = column, edge =
    r_receiver - r_sender. Then encoder, ``n_message_passing`` GraphNetwork steps on [output, encoded]
    (edge model on [edge, receiver, sender], node model on [summed received edges, node]), node decoder.
    """
    cross = positions[None, :, :] - positions[:, None, :]  # cross[i, j] = r_j - r_i
    cross = cross - box * torch.round(cross / box)
    distances = torch.linalg.norm(cross, dim=-1)
    index = torch.nonzero(distances < R_CUT)
    senders, receivers = index[:, 0], index[:, 1]
    edges = cross[senders, receivers]
    nodes = torch.nn.functional.one_hot(types, 2).to(positions.dtype)

    enc_nodes = _mlp(nodes, model.encoder_node.layers, True)
    enc_edges = _mlp(edges, model.encoder_edge.layers, True)
    out_nodes, out_edges = enc_nodes, enc_edges
    for _ in range(model.n_message_passing):
        in_nodes = torch.cat([out_nodes, enc_nodes], dim=-1)
        in_edges = torch.cat([out_edges, enc_edges], dim=-1)
        edge_input = torch.cat([in_edges, in_nodes[receivers], in_nodes[senders]], dim=-1)
        out_edges = _mlp(edge_input, model.core_edge.layers, True)
        summed = torch.zeros(len(nodes), out_edges.shape[1], dtype=out_edges.dtype)
        for e in range(len(receivers)):  # unsorted_segment_sum, one edge at a time
            summed[receivers[e]] += out_edges[e]
        out_nodes = _mlp(torch.cat([summed, in_nodes], dim=-1), model.core_node.layers, True)
    return _mlp(out_nodes, model.decoder_node.layers, False), int(len(senders))


def test_forward_equals_graph_nets_computation_with_self_edges():
    torch.manual_seed(0)
    model = BapstGNN(n_outputs=2, hidden=16, n_message_passing=3).double()
    sample = synthetic(5, n=60)
    graph = build_graph(sample, R_CUT)
    fast = model(graph.node_features.double(), graph.edge_vectors.double(), graph.senders, graph.receivers)
    positions = torch.as_tensor(sample.positions)
    slow, n_edges = graph_nets_reference(model, torch.as_tensor(sample.typeid), positions, sample.box_length)
    assert n_edges == graph.n_edges + sample.n_particles  # the reference has one self-edge per particle
    assert fast.shape == (60, 2)
    # build_graph stores float32 vectors; the reference works from float64 positions.
    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-5)
    # Same gradients too (the fast forward works partly in place).
    fast_grads = torch.autograd.grad(fast.square().sum(), list(model.parameters()))
    slow_grads = torch.autograd.grad(slow.square().sum(), list(model.parameters()))
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    # Without self-edges the model computes something else.
    model.self_edges = False
    other = model(graph.node_features.double(), graph.edge_vectors.double(), graph.senders, graph.receivers)
    assert not torch.allclose(other, slow, rtol=1e-3, atol=1e-3)


def test_faithful_model_has_the_original_size_and_departures_are_switches():
    # 70,721 in the original: minus its unused edge decoder (8,320), plus 64 for the one-hot type input.
    assert count_parameters(BapstGNN()) == 62_465
    assert count_parameters(BapstGNN(layer_norm=True)) == 62_465 + 4 * 128
    assert count_parameters(BapstGNN(edge_features="vector_distance")) == 62_465 + 64
    assert count_parameters(BapstGNN(graph_norm=True)) == 62_465 + 4 * 64
    assert count_parameters(BapstGNN(edge_features="vector_rbf")) == 62_465 + 61 * 64
    per_time = build_bapst(3, multi_time_head=False, hidden=8, n_message_passing=1)
    assert isinstance(per_time, PerTimeModels) and count_parameters(per_time) == 3 * count_parameters(
        BapstGNN(1, hidden=8, n_message_passing=1)
    )
    with pytest.raises(ValueError, match="aggregation"):
        BapstGNN(aggregation="max")


def test_mean_degree_aggregation_is_a_rescaled_sum():
    torch.manual_seed(1)
    summed = BapstGNN(1, hidden=8, n_message_passing=2).double()
    scaled = BapstGNN(1, hidden=8, n_message_passing=2, aggregation="mean_degree", mean_degree=4.0).double()
    scaled.load_state_dict(summed.state_dict())
    with torch.no_grad():
        scaled.core_node.layers[0].weight[:, :8] *= 4.0
    graph = build_graph(synthetic(3, n=80), R_CUT)
    args = (graph.node_features.double(), graph.edge_vectors.double(), graph.senders, graph.receivers)
    assert torch.allclose(summed(*args), scaled(*args), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- learning


FAITHFUL_FAST = {"hidden": 32, "n_message_passing": 2, "learning_rate": 3e-3, "epochs": 40, "device": "cpu"}


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(FAITHFUL_FAST, id="faithful-one-network-per-time"),
        pytest.param(
            {
                **FAITHFUL_FAST,
                "multi_time_head": True,
                "standardise_targets": True,
                "graph_norm": True,
                "edge_features": "vector_distance",
            },
            id="departures",
        ),
    ],
)
def test_bapst_learns_a_known_function_of_structure(tmp_path, settings):
    train, validation, test = _split()
    train_bapst(train, validation, settings, R_CUT, seed=3, out_dir=tmp_path)
    r = _a_pearson_per_time(predict("bapst", tmp_path, test))
    assert np.all(r > 0.95), r
    hparams = json.loads((tmp_path / "hparams.json").read_text())
    model, _ = load_bapst(tmp_path)
    assert hparams["self_edges"] is True
    if settings.get("multi_time_head"):
        assert isinstance(model, BapstGNN) and isinstance(hparams["best_epoch"], int)
        assert hparams["target_std"] != [1.0, 1.0]
    else:
        assert isinstance(model, PerTimeModels) and len(hparams["best_epoch"]) == 2
        assert hparams["target_mean"] == [0.0, 0.0] and hparams["target_std"] == [1.0, 1.0]  # raw targets


def test_mlp_learns_a_known_function_of_structure(tmp_path):
    train, validation, test = _split()
    train_mlp(train, validation, {"epochs": 60, "encoder_sizes": [32], "decoder_sizes": [32]}, 1, tmp_path)
    r = _a_pearson_per_time(predict("mlp", tmp_path, test))
    assert np.all(r > 0.95), r
    hparams = json.loads((tmp_path / "hparams.json").read_text())
    assert hparams["bottleneck"] == 2 and hparams["feature_names"] == train[0].descriptor_names
    model = BottleneckMLP(hparams["n_features"], 2, [32], 2, [32])
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert model.bottleneck_values(torch.zeros(5, hparams["n_features"])).shape == (5, 2)


def test_mlp_one_network_per_time_and_shuffled_control(tmp_path):
    train, validation, test = _split()
    settings = {"epochs": 30, "multi_time_head": False}
    train_mlp(train, validation, settings, 2, tmp_path / "per_time")
    assert np.all(_a_pearson_per_time(predict("mlp", tmp_path / "per_time", test)) > 0.9)
    rng = np.random.default_rng(0)
    for s in train + validation:
        s.targets = s.targets[rng.permutation(s.n_particles)]
    train_mlp(train, validation, settings, 2, tmp_path / "shuffled")
    test = test + [synthetic(c) for c in (202, 203)]
    assert np.all(np.abs(_a_pearson_per_time(predict("mlp", tmp_path / "shuffled", test))) < 0.25)


def test_mlp_checkpoint_fingerprint_covers_the_descriptors(tmp_path, monkeypatch, caplog):
    """The MLP reads descriptors: a run killed after epoch 1 resumes on the same data, and starts over when
    a descriptor changed (its checkpoint's data hash covers them)."""
    from glasspipe.learn.training import checkpoint

    train, validation, _ = _split()
    settings = {"epochs": 2, "batch_size": 512}
    original = checkpoint.save

    def dying(path, state):
        original(path, state)
        raise KeyboardInterrupt("killed")

    def killed_then_again(samples):
        monkeypatch.setattr(checkpoint, "save", dying)
        with pytest.raises(KeyboardInterrupt):
            train_mlp(train, validation, settings, 1, tmp_path)
        monkeypatch.setattr(checkpoint, "save", original)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            train_mlp(samples, validation, settings, 1, tmp_path)
        return caplog.text

    assert "mlp: resuming from" in killed_then_again(train)
    changed = [synthetic(c) for c in range(6)]
    changed[0].descriptors = changed[0].descriptors.copy()
    changed[0].descriptors[0, 0] += 1.0
    text = killed_then_again(changed)
    assert "other settings or data" in text and "resuming" not in text


def test_ridge_learns_a_known_function_of_structure(tmp_path):
    train, validation, test = _split()
    train_ridge(train, validation, {"alphas": [0.01, 1.0, 100.0]}, tmp_path)
    assert np.all(_a_pearson_per_time(predict("ridge", tmp_path, test)) > 0.95)


def test_cosine_schedule_decays_to_zero():
    from glasspipe.learn.training.trainer import scheduled_learning_rate

    assert scheduled_learning_rate(1e-3, "constant", 50, 100) == 1e-3
    assert scheduled_learning_rate(1e-3, "cosine", 0, 100) == pytest.approx(1e-3)
    assert scheduled_learning_rate(1e-3, "cosine", 50, 100) == pytest.approx(5e-4)
    assert scheduled_learning_rate(1e-3, "cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_invariant_and_radial_basis_edge_features():
    from glasspipe.learn.models.bapst import edge_inputs

    vectors = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.3, 0.0]])
    assert torch.allclose(edge_inputs(vectors, "distance")[:, 0], torch.tensor([0.0, 1.0, 1.3]))
    rbf = edge_inputs(vectors, "vector_rbf")
    assert rbf.shape == (3, 64) and torch.all(rbf[0, 16:] == 0)  # a self-edge has no direction
    # A pair force f(r) r_hat is linear in the features: r_hat_x phi_k(r) summed with weights f_k.
    assert torch.allclose(rbf[1, 16:32], rbf[1, :16]) and torch.all(rbf[1, 32:] == 0)
    # With distances only the network is rotation invariant.
    torch.manual_seed(4)
    model = BapstGNN(1, hidden=8, n_message_passing=2, edge_features="distance")
    graph = build_graph(synthetic(6, n=80), R_CUT)
    rotation = torch.linalg.qr(torch.randn(3, 3))[0]
    args = (graph.node_features, graph.senders, graph.receivers)
    with torch.no_grad():
        base = model(args[0], graph.edge_vectors, *args[1:])
        rotated = model(args[0], graph.edge_vectors @ rotation.T, *args[1:])
    assert torch.allclose(base, rotated, atol=1e-5)


# ----------------------------------------------------------------------------- vector channels


def _force_magnitude_sample(configuration: int, n: int = 200) -> Sample:
    """Random two-type configuration; target |sum_j f(r_ij) r_hat_ij| with a Kob-Andersen-like pair force
    f(r) = 24 (2 / r^13 - 1 / r^7) (plain LJ, all types alike) inside r < 1.5, computed with Python loops."""
    rng = np.random.default_rng([31, configuration])
    length = (n / 1.2) ** (1 / 3)
    positions = rng.uniform(0, length, (n, 3))
    # Push apart pairs closer than 0.85 so the r^-13 wall does not dominate (a few relaxation sweeps).
    for _ in range(30):
        pairs = periodic_pairs(positions, length, 0.85)
        if len(pairs.i) == 0:
            break
        push = np.zeros((n, 3))
        np.add.at(push, pairs.i, -0.1 * pairs.vectors / pairs.distances[:, None])
        positions = (positions + push) % length
    typeid = (rng.uniform(size=n) < 0.2).astype(int)
    force = np.zeros((n, 3))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = positions[i] - positions[j]
            d -= length * np.round(d / length)
            r = float(np.sqrt(d @ d))
            if r < R_CUT:
                force[i] += 24.0 * (2.0 / r**13 - 1.0 / r**7) * d / r
    target = np.linalg.norm(force, axis=1)[:, None]
    return Sample(configuration, typeid, positions, length, np.array([0.1]), target)


def test_vector_channels_are_rotation_invariant_and_add_nothing_when_off():
    torch.manual_seed(5)
    graph = build_graph(synthetic(7, n=80), R_CUT)
    args = (graph.node_features, graph.senders, graph.receivers)
    model = BapstGNN(2, hidden=8, n_message_passing=2, edge_features="distance", graph_norm=True, vector_channels=4)
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    with torch.no_grad():
        base = model(args[0], graph.edge_vectors, *args[1:])
        rotated = model(args[0], graph.edge_vectors @ rotation.T, *args[1:])
    # Only lengths of vector sums enter: the output must not change (float32 rounding: 1e-5).
    assert torch.allclose(base, rotated, atol=1e-5)
    assert model.hparams()["vector_channels"] == 4
    plain = BapstGNN(2, hidden=8, n_message_passing=2, edge_features="distance", graph_norm=True)
    # weights (hidden -> C), lengths -> node update (C -> hidden), the lengths' scale and shift.
    assert count_parameters(model) - count_parameters(plain) == 8 * 4 + 4 * 8 + 2 * 4
    with pytest.raises(ValueError, match="vector_channels"):
        BapstGNN(1, vector_channels=-1)


def test_vector_channels_learn_the_force_magnitude(tmp_path):
    """|F_i| is a length of a vector sum; the vector channels represent it in one step. Measured held-out r:
    0.998 with 8 channels, 0.81 without (it must approximate a sum of vectors and its norm with ReLUs), so
    the bar of 0.95 fails when the vector path does not work."""
    train = [_force_magnitude_sample(c) for c in range(4)]
    validation, test = [_force_magnitude_sample(10)], [_force_magnitude_sample(c) for c in (20, 21)]
    settings = {
        "hidden": 32,
        "n_message_passing": 1,
        "learning_rate": 3e-3,
        "epochs": 60,
        "device": "cpu",
        "multi_time_head": True,
        "standardise_targets": True,
        "graph_norm": True,
        "graph_norm_eps": 1.0,
        "edge_features": "distance_rbf",
        "vector_channels": 8,
        "lr_schedule": "cosine",
    }
    train_bapst(train, validation, settings, R_CUT, seed=2, out_dir=tmp_path)
    r = _a_pearson_per_time(predict("bapst", tmp_path, test))
    assert r[0] > 0.95, r
    model, hparams = load_bapst(tmp_path)
    assert hparams["vector_channels"] == 8 and hparams["graph_norm_eps"] == 1.0
    assert model.norm_vector.eps == 1.0
