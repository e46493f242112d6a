"""Tests of the learning half: samples and graphs, the Bapst network, ridge, training, prediction, evaluation.

The learning tests use a synthetic task whose answer is known: the target of each particle is its number of
neighbours within 1.2 (time 1) or 1.0 (time 10), plus noise, in uniformly random configurations. A graph
network and ridge on radial shell counts must both learn it; with targets shuffled between particles they
must not.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from glasspipe.io.gsd_io import Snapshot, write_gsd
from glasspipe.io.tables import read_table, write_table
from glasspipe.learn.evaluate import correlations, pearson, summary
from glasspipe.learn.graphs import build_graph
from glasspipe.learn.models.bapst import BapstGNN, cube_symmetries, train_bapst
from glasspipe.learn.models.ridge import train_ridge
from glasspipe.learn.predict import predict
from glasspipe.learn.samples import Sample, load_sample
from glasspipe.learn.training import checkpoint
from glasspipe.learn.training.graph_task import count_parameters
from glasspipe.structure.neighbours import periodic_pairs

SHELL_EDGES = np.round(np.arange(0.0, 1.51, 0.1), 2)
TIMES = np.array([1.0, 10.0])
R_CUT = 1.5
FAST_BAPST = {
    "hidden": 32,
    "n_message_passing": 2,
    "learning_rate": 3e-3,
    "grad_clip": 1.0,
    "epochs": 80,
    "augment": True,
    "device": "cpu",
    # One network for both times (a departure from the original's one network per time, tested in
    # test_models.py): these tests are about training, checkpoints and prediction, and run faster so.
    "multi_time_head": True,
}


# One torch thread (conftest.one_torch_thread): the machine is shared, oversubscribed threads crawl.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_sample(configuration: int, n: int = 256, density: float = 1.2, noise: float = 0.3, shuffle=False):
    """Uniform random configuration; targets = neighbour counts within 1.2 and 1.0 plus Gaussian noise.

    Descriptors: counts of A and B neighbours in radial shells of width 0.1 up to 1.5 (the targets are exact
    linear functions of them, up to the noise). shuffle: permute the targets between particles.
    """
    rng = np.random.default_rng([12345, configuration])
    length = (n / density) ** (1 / 3)
    positions = rng.uniform(-length / 2, length / 2, (n, 3))
    typeid = np.zeros(n, dtype=int)
    typeid[: n // 5] = 1
    rng.shuffle(typeid)
    pairs = periodic_pairs(positions, length, R_CUT)
    shell = np.digitize(pairs.distances, SHELL_EDGES) - 1
    counts = np.zeros((n, 2, len(SHELL_EDGES) - 1))
    np.add.at(counts, (pairs.i, typeid[pairs.j], shell), 1.0)
    within = [np.bincount(pairs.i[pairs.distances < r], minlength=n) for r in (1.2, 1.0)]
    targets = np.stack(within, axis=1) + noise * rng.normal(size=(n, 2))
    if shuffle:
        targets = targets[rng.permutation(n)]
    names = [f"n_{t}({a:.1f}-{b:.1f})" for t in "AB" for a, b in zip(SHELL_EDGES[:-1], SHELL_EDGES[1:], strict=True)]
    return Sample(configuration, typeid, positions, length, TIMES, targets, counts.reshape(n, -1), names)


def _split(shuffle=False):
    train = [synthetic_sample(c, shuffle=shuffle) for c in range(8)]
    validation = [synthetic_sample(c, shuffle=shuffle) for c in (100, 101)]
    test = [synthetic_sample(c, shuffle=shuffle) for c in (200, 201, 202, 203)]
    return train, validation, test


def _mean_a_pearson(table: pd.DataFrame, model: str) -> float:
    result = summary(correlations(table, model))
    return float(result.loc[result["type"] == "A", "mean_pearson"].mean())


def _graph_output(model, sample, r_cut=R_CUT):
    g = build_graph(sample, r_cut)
    with torch.no_grad():
        return model(g.node_features, g.edge_vectors, g.senders, g.receivers)


# ------------------------------------------------------------------------------------------------ models


def test_cube_symmetries_form_the_cube_group():
    m = cube_symmetries(torch.float64)
    assert m.shape == (48, 3, 3)
    assert torch.equal(m[0], torch.eye(3, dtype=torch.float64))
    assert torch.allclose(m @ m.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(48, 3, 3))
    keys = {tuple(x.flatten().tolist()) for x in m}
    assert len(keys) == 48
    products = {tuple((a @ b).flatten().tolist()) for a in m for b in m}
    assert products == keys  # closed under multiplication
    assert set(torch.linalg.det(m).round().tolist()) == {1.0, -1.0}


def test_parameter_count_matches_the_original():
    model = BapstGNN(n_outputs=1)
    n = count_parameters(model)
    # The DeepMind model has 70,721 parameters: 8,320 of them in an edge decoder whose output is discarded,
    # which we do not build, and a one-float type input where we take a two-float one-hot (+64).
    assert n == 70_721 - 8_320 + 64 == 62_465
    assert count_parameters(BapstGNN(n_outputs=10)) == n + 9 * 65


def test_permuting_particles_permutes_outputs():
    torch.manual_seed(1)
    model = BapstGNN(n_outputs=2, hidden=16, n_message_passing=3)
    sample = synthetic_sample(0, n=200)
    perm = np.random.default_rng(0).permutation(sample.n_particles)
    permuted = Sample(0, sample.typeid[perm], sample.positions[perm], sample.box_length, TIMES, sample.targets[perm])
    out = _graph_output(model, sample)
    out_permuted = _graph_output(model, permuted)
    assert torch.allclose(out_permuted, out[perm], atol=1e-5, rtol=1e-5)
    assert out.std() > 1e-3  # not trivially constant


def test_translating_positions_changes_nothing():
    torch.manual_seed(2)
    model = BapstGNN(n_outputs=2, hidden=16, n_message_passing=3)
    sample = synthetic_sample(1, n=200)
    shifted = sample.positions + np.array([0.37, -1.91, 2.6])
    shifted -= sample.box_length * np.floor(shifted / sample.box_length + 0.5)  # rewrap
    moved = Sample(1, sample.typeid, shifted, sample.box_length, TIMES, sample.targets)
    assert torch.allclose(_graph_output(model, moved), _graph_output(model, sample), atol=1e-5, rtol=1e-5)


def test_network_sees_orientation_so_augmentation_matters():
    torch.manual_seed(3)
    model = BapstGNN(n_outputs=1, hidden=16, n_message_passing=2)
    g = build_graph(synthetic_sample(2, n=200), R_CUT)
    with torch.no_grad():
        base = model(g.node_features, g.edge_vectors, g.senders, g.receivers)
        rotated = model(g.node_features, g.edge_vectors @ cube_symmetries()[7].T, g.senders, g.receivers)
    assert not torch.allclose(base, rotated, atol=1e-4)


# ------------------------------------------------------------------------------------------------ graphs


def test_graph_has_every_pair_no_neighbour_cap():
    rng = np.random.default_rng(7)
    n, density, r_cut = 500, 1.2, 2.0
    length = (n / density) ** (1 / 3)
    positions = rng.uniform(-length / 2, length / 2, (n, 3))
    sample = Sample(0, rng.integers(0, 2, n), positions, length, TIMES, np.zeros((n, 2)))
    g = build_graph(sample, r_cut)

    delta = positions[None, :, :] - positions[:, None, :]  # delta[i, j] = r_j - r_i
    delta -= length * np.round(delta / length)
    distance = np.linalg.norm(delta, axis=-1)
    np.fill_diagonal(distance, np.inf)
    i, j = np.nonzero(distance < r_cut)
    assert g.n_edges == len(i)
    # About 4/3 pi 2^3 1.2 = 40 neighbours each, many particles above the caps of common GNN libraries (32).
    degree = np.bincount(g.receivers.numpy(), minlength=n)
    assert degree.mean() > 35 and degree.max() > 50
    assert set(zip(g.senders.tolist(), g.receivers.tolist(), strict=True)) == set(
        zip(i.tolist(), j.tolist(), strict=True)
    )
    expected = delta[g.senders.numpy(), g.receivers.numpy()]  # r_receiver - r_sender
    assert np.allclose(g.edge_vectors.numpy(), expected, atol=1e-5)
    assert g.edge_vectors.dtype == torch.float32 and g.senders.dtype == torch.long
    assert torch.equal(g.node_features.argmax(dim=1), torch.as_tensor(sample.typeid))


# ------------------------------------------------------------------------------------------------ samples


def _write_inputs(tmp_path, sample: Sample):
    snapshot = Snapshot(positions=sample.positions, typeid=sample.typeid, box_length=sample.box_length)
    write_gsd(tmp_path / "conf.gsd", [snapshot])
    n = sample.n_particles
    labels = pd.DataFrame(
        {
            "particle": np.repeat(np.arange(n), len(TIMES)),
            "type": np.repeat(sample.type_labels.astype(str), len(TIMES)),
            "time": np.tile(TIMES, n),
            "propensity": sample.targets.reshape(-1),
        }
    ).sample(frac=1.0, random_state=0)  # any row order
    write_table(labels, tmp_path / "labels.parquet")
    descriptors = pd.DataFrame(sample.descriptors, columns=sample.descriptor_names)
    descriptors.insert(0, "type", sample.type_labels.astype(str))
    descriptors.insert(0, "particle", np.arange(n))
    write_table(descriptors.iloc[::-1], tmp_path / "descriptors.parquet")
    return labels, descriptors


def test_load_sample_matches_rows_by_particle(tmp_path):
    sample = synthetic_sample(3, n=100)
    _write_inputs(tmp_path, sample)
    loaded = load_sample(5, tmp_path / "conf.gsd", tmp_path / "labels.parquet", tmp_path / "descriptors.parquet")
    assert loaded.configuration == 5
    assert np.array_equal(loaded.times, TIMES)
    assert np.allclose(loaded.targets, sample.targets)
    assert np.array_equal(loaded.typeid, sample.typeid)
    assert np.allclose(loaded.positions, sample.positions, atol=1e-5)  # GSD stores float32
    assert loaded.descriptor_names == sample.descriptor_names
    assert np.allclose(loaded.descriptors, sample.descriptors)
    without = load_sample(5, tmp_path / "conf.gsd", tmp_path / "labels.parquet")
    assert without.descriptors is None and without.descriptor_names == []


def test_load_sample_names_the_file_on_mismatch(tmp_path):
    sample = synthetic_sample(4, n=100)
    labels, descriptors = _write_inputs(tmp_path, sample)
    bad = tmp_path / "bad_labels.parquet"
    write_table(labels[labels["particle"] < 99], bad)
    with pytest.raises(ValueError, match="bad_labels.parquet"):
        load_sample(0, tmp_path / "conf.gsd", bad)
    write_table(labels[~((labels["particle"] == 3) & (labels["time"] == 10.0))], bad)
    with pytest.raises(ValueError, match="bad_labels.parquet.*incomplete"):
        load_sample(0, tmp_path / "conf.gsd", bad)
    swapped = labels.assign(type=labels["type"].map({"A": "B", "B": "A"}))
    write_table(swapped, bad)
    with pytest.raises(ValueError, match="bad_labels.parquet.*type"):
        load_sample(0, tmp_path / "conf.gsd", bad)
    bad_descriptors = tmp_path / "bad_descriptors.parquet"
    write_table(descriptors.iloc[:50], bad_descriptors)
    with pytest.raises(ValueError, match="bad_descriptors.parquet"):
        load_sample(0, tmp_path / "conf.gsd", tmp_path / "labels.parquet", bad_descriptors)


# ------------------------------------------------------------------------------------------------ learning


def test_bapst_learns_local_structure_and_not_shuffled_targets(tmp_path):
    train, validation, test = _split()
    train_bapst(train, validation, FAST_BAPST, R_CUT, seed=11, out_dir=tmp_path / "real")
    real = _mean_a_pearson(predict("bapst", tmp_path / "real", test), "bapst")
    assert real > 0.9

    train, validation, test = _split(shuffle=True)
    train_bapst(train, validation, FAST_BAPST, R_CUT, seed=11, out_dir=tmp_path / "shuffled")
    control = _mean_a_pearson(predict("bapst", tmp_path / "shuffled", test), "bapst")
    assert abs(control) < 0.2

    hparams = json.loads((tmp_path / "real" / "hparams.json").read_text())
    assert hparams["n_outputs"] == 2 and hparams["times"] == TIMES.tolist()
    assert hparams["n_parameters"] == count_parameters(BapstGNN(2, hidden=32, n_message_passing=2))
    assert 1 <= hparams["best_epoch"] <= FAST_BAPST["epochs"]
    # The saved file is a plain state dict that rebuilds the class.
    state = torch.load(tmp_path / "real" / "model.pt", map_location="cpu", weights_only=True)
    BapstGNN(hparams["n_outputs"], hparams["hidden"], hparams["n_message_passing"]).load_state_dict(state)
    log = read_table(tmp_path / "real" / "train_log.parquet")
    assert list(log.columns) == ["epoch", "train_loss", "validation_pearson", "wall_s"]
    assert log["epoch"].tolist() == list(range(1, FAST_BAPST["epochs"] + 1))
    assert log["validation_pearson"].max() == pytest.approx(hparams["best_validation_pearson"])
    assert not (tmp_path / "real" / "checkpoint.pt").exists()


def test_ridge_learns_local_structure_and_not_shuffled_targets(tmp_path):
    train, validation, test = _split()
    train_ridge(train, validation, {"enabled": True, "alphas": [0.01, 1.0, 100.0]}, tmp_path / "real")
    assert _mean_a_pearson(predict("ridge", tmp_path / "real", test), "ridge") > 0.9

    train, validation, test = _split(shuffle=True)
    train_ridge(train, validation, {"enabled": True, "alphas": [0.01, 1.0, 100.0]}, tmp_path / "shuffled")
    assert abs(_mean_a_pearson(predict("ridge", tmp_path / "shuffled", test), "ridge")) < 0.2


def test_ridge_json_stands_alone_and_kfold_without_validation(tmp_path):
    train, _, test = _split()
    alphas = [0.1, 10.0, 1e6]
    train_ridge(train, [], {"enabled": True, "alphas": alphas}, tmp_path)
    data = json.loads((tmp_path / "model.json").read_text())  # plain JSON, no glasspipe needed
    assert data["selection"].startswith("k-fold")
    assert data["feature_names"] == train[0].descriptor_names and data["times"] == TIMES.tolist()
    assert all(a in alphas for a in data["alpha"]) and 1e6 not in data["alpha"]  # a huge penalty loses
    x = test[0].descriptors
    by_hand = (x - np.array(data["feature_mean"])) / np.array(data["feature_std"]) @ np.array(
        data["coefficients"]
    ).T + np.array(data["intercepts"])
    table = predict("ridge", tmp_path, test[:1])
    assert np.allclose(table["prediction"].to_numpy(), by_hand.T.reshape(-1))
    log = read_table(tmp_path / "train_log.parquet")
    assert len(log) == len(alphas) * len(TIMES) and log["chosen"].sum() == len(TIMES)


def test_training_resumes_from_checkpoint(tmp_path, monkeypatch):
    train, validation, _ = _split()
    train, validation = train[:3], validation[:1]
    settings = {**FAST_BAPST, "epochs": 4, "hidden": 16}

    # Reference: four epochs in one go.
    train_bapst(train, validation, settings, R_CUT, seed=5, out_dir=tmp_path / "straight")

    # Interrupted after epoch 2 (the checkpoint is written, then the job dies).
    original = checkpoint.save

    def dying_after_two(path, state):
        original(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(checkpoint, "save", dying_after_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_bapst(train, validation, {**settings, "epochs": 2}, R_CUT, seed=5, out_dir=out)
    assert (out / "checkpoint.pt").exists() and not (out / "model.pt").exists()
    monkeypatch.setattr(checkpoint, "save", original)

    train_bapst(train, validation, settings, R_CUT, seed=5, out_dir=out)
    log = read_table(out / "train_log.parquet")
    assert log["epoch"].tolist() == [1, 2, 3, 4]
    assert not (out / "checkpoint.pt").exists()
    assert (out / "model.pt").exists() and (out / "hparams.json").exists()
    straight = read_table(tmp_path / "straight" / "train_log.parquet")
    assert np.allclose(log["train_loss"], straight["train_loss"], rtol=1e-6)  # same random stream
    a = torch.load(out / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)
    assert not list(out.glob("*.partial"))


def test_checkpoint_with_other_settings_is_not_reused(tmp_path, monkeypatch):
    train, validation, _ = _split()
    train, validation = train[:2], validation[:1]
    settings = {**FAST_BAPST, "epochs": 2, "hidden": 8}
    original = checkpoint.save

    def dying(path, state):
        original(path, state)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(checkpoint, "save", dying)
    with pytest.raises(KeyboardInterrupt):
        train_bapst(train, validation, settings, R_CUT, seed=5, out_dir=tmp_path)
    monkeypatch.setattr(checkpoint, "save", original)
    train_bapst(train, validation, {**settings, "learning_rate": 1e-3}, R_CUT, seed=5, out_dir=tmp_path)
    assert read_table(tmp_path / "train_log.parquet")["epoch"].tolist() == [1, 2]


# ----------------------------------------------------------------------------- one trainer, three networks

# Small settings of each network that trains through glasspipe.learn.training.trainer: the Bapst GN and the MLP with
# one network per label time (two independently selected networks), se3 with one.
NETWORKS = {
    "bapst": {"hidden": 8, "n_message_passing": 1, "device": "cpu"},
    "se3": {"channels": 4, "n_layers": 1, "l_max": 1, "radial_neurons": 8, "device": "cpu"},
    "mlp": {"encoder_sizes": [8], "decoder_sizes": [8], "multi_time_head": False, "batch_size": 64},
}


def _train_network(model: str, train, validation, settings: dict, out_dir) -> None:
    """Train the Bapst GN, se3 or the MLP through its public entry point (seed 5)."""
    if model == "mlp":
        from glasspipe.learn.models.mlp import train_mlp

        train_mlp(train, validation, settings, 5, out_dir)
    elif model == "se3":
        se3 = pytest.importorskip("glasspipe.learn.models.se3")  # needs e3nn
        se3.train_se3(train, validation, settings, R_CUT, 5, out_dir)
    else:
        train_bapst(train, validation, settings, R_CUT, 5, out_dir)


def _small_split():
    return [synthetic_sample(c, n=64) for c in range(3)], [synthetic_sample(100, n=64)]


@pytest.mark.parametrize("model", list(NETWORKS))
def test_each_network_resumes_to_the_bits_of_an_uninterrupted_run(model, tmp_path, monkeypatch, caplog):
    """A run killed after epoch 2 of 4 (checkpoint written, then the job dies) and called again resumes from
    its checkpoint and ends with exactly the weights, training log and hparams of a run never killed: the
    same random numbers (numpy or torch generator, torch's global state) and the same float operations."""
    train, validation = _small_split()
    settings = {**NETWORKS[model], "epochs": 4}
    if model != "mlp":
        settings["lr_schedule"] = "cosine"  # the schedule must resume at the right step too
    _train_network(model, train, validation, settings, tmp_path / "straight")

    original = checkpoint.save

    def dying_after_two(path, state):
        original(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(checkpoint, "save", dying_after_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _train_network(model, train, validation, settings, out)
    assert (out / "checkpoint.pt").exists() and not (out / "train_log.parquet").exists()
    monkeypatch.setattr(checkpoint, "save", original)
    with caplog.at_level(logging.INFO):
        _train_network(model, train, validation, settings, out)
    assert (
        f"{model}: resuming from" in caplog.text and f"{model} training: 4 epochs to run, resuming at 2" in caplog.text
    )
    assert not (out / "checkpoint.pt").exists()

    resumed = torch.load(out / "model.pt", weights_only=True)
    straight = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    assert list(resumed) == list(straight) and all(torch.equal(resumed[k], straight[k]) for k in straight)
    columns = ["epoch", "train_loss", "validation_pearson"]  # wall_s differs
    pd.testing.assert_frame_equal(
        read_table(out / "train_log.parquet")[columns],
        read_table(tmp_path / "straight" / "train_log.parquet")[columns],
        check_exact=True,
    )
    hparams = [json.loads((d / "hparams.json").read_text()) for d in (out, tmp_path / "straight")]
    for h in hparams:
        h.pop("wall_s")
    assert hparams[0] == hparams[1]


@pytest.mark.parametrize("model", list(NETWORKS))
def test_each_network_stops_early_when_asked_and_reports_progress(model, tmp_path, caplog):
    """At a learning rate of 1e-30 the float32 weights never move, so the validation Pearson never improves
    after epoch 1. With patience 1 training stops before epoch 3 of 5, keeping epoch 1 (for each network of
    the Bapst GN and the MLP), and the progress meter says so. Without the key the Bapst GN and the MLP
    train every epoch (their default is no early stopping); so does se3, whose default patience is 20."""
    train, validation = _small_split()
    frozen = {**NETWORKS[model], "epochs": 5, "learning_rate": 1e-30}
    if model != "mlp":
        frozen["lr_schedule"] = "constant"
    caplog.set_level(logging.INFO)
    _train_network(model, train, validation, {**frozen, "patience": 1}, tmp_path / "stopped")
    log = read_table(tmp_path / "stopped" / "train_log.parquet")
    assert log["epoch"].tolist() == [1, 2] and log["validation_pearson"].nunique() == 1
    hparams = json.loads((tmp_path / "stopped" / "hparams.json").read_text())
    assert np.all(np.asarray(hparams["best_epoch"]) == 1)
    assert f"{model}: early stop, no validation improvement for 1 epochs" in caplog.text
    assert f"{model} training: 5 epochs to run" in caplog.text
    assert f"{model} training: stopped at 2/5 (early stop" in caplog.text

    caplog.clear()
    _train_network(model, train, validation, frozen, tmp_path / "default")
    assert read_table(tmp_path / "default" / "train_log.parquet")["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert f"{model} training: done, 5 epochs in" in caplog.text and "early stop" not in caplog.text
    # No patience asked: hparams record none (as before the option existed), except se3's own default.
    assert ("patience" in json.loads((tmp_path / "default" / "hparams.json").read_text())) == (model == "se3")


def test_patience_must_be_a_positive_integer_or_null(tmp_path):
    train, validation = _small_split()
    for model in ("bapst", "mlp"):
        with pytest.raises(ValueError, match=rf"models\.{model}\.patience"):
            _train_network(model, train, validation, {**NETWORKS[model], "patience": 0}, tmp_path)


def test_predict_checks_cutoff_and_times(tmp_path):
    train, validation, test = _split()
    train_bapst(train[:1], [], {**FAST_BAPST, "epochs": 1, "hidden": 8}, R_CUT, seed=1, out_dir=tmp_path)
    table = predict("bapst", tmp_path, test[:2], r_cut=R_CUT)
    assert list(table.columns) == ["configuration", "particle", "type", "time", "prediction", "target"]
    assert len(table) == 2 * 256 * len(TIMES)
    assert set(table["type"]) == {"A", "B"} and set(table["configuration"]) == {200, 201}
    first = table[(table["configuration"] == 200) & (table["time"] == 10.0)]
    assert np.allclose(first["target"], test[0].targets[:, 1])
    with pytest.raises(ValueError, match="r_cut"):
        predict("bapst", tmp_path, test[:1], r_cut=2.0)
    other = Sample(9, test[0].typeid, test[0].positions, test[0].box_length, [1.0, 5.0], test[0].targets)
    with pytest.raises(ValueError, match="times"):
        predict("bapst", tmp_path, [other])
    with pytest.raises(ValueError, match="unknown model"):
        predict("svm", tmp_path, test[:1])


# ------------------------------------------------------------------------------------------------ evaluate


def test_pearson_equals_numpy_and_is_nan_safe():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=100), rng.normal(size=100)
    y += 0.5 * x
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(pearson(np.full(10, 0.1), y[:10]))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(pearson([1.0], [2.0]))


def test_correlations_pooled_and_per_configuration():
    rng = np.random.default_rng(1)
    rows = []
    for configuration in range(3):
        for time in (1.0, 2.0):
            n = 50
            kind = np.where(np.arange(n) < 40, "A", "B")
            target = rng.normal(size=n) + configuration  # offsets between configurations
            prediction = target + rng.normal(size=n)
            rows.append(
                pd.DataFrame(
                    {
                        "configuration": configuration,
                        "particle": np.arange(n),
                        "type": kind,
                        "time": time,
                        "prediction": prediction,
                        "target": target,
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True)
    # One configuration with constant predictions for B at time 2: NaN there, no crash.
    constant = (table["configuration"] == 2) & (table["type"] == "B") & (table["time"] == 2.0)
    table.loc[constant, "prediction"] = 0.5
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = correlations(table, "toy")
    assert list(result.columns) == [
        "model",
        "time",
        "type",
        "scope",
        "configuration",
        "pearson",
        "spearman",
        "n_particles",
    ]
    assert len(result) == 2 * 2 * (1 + 3)
    for (time, kind, configuration), group in table.groupby(["time", "type", "configuration"]):
        row = result[(result["time"] == time) & (result["type"] == kind) & (result["configuration"] == configuration)]
        assert row["scope"].item() == "configuration" and row["n_particles"].item() == len(group)
        if time == 2.0 and kind == "B" and configuration == 2:
            assert np.isnan(row["pearson"].item())
        else:
            assert row["pearson"].item() == pytest.approx(np.corrcoef(group["prediction"], group["target"])[0, 1])
    pooled_group = table[(table["time"] == 1.0) & (table["type"] == "A")]
    pooled = result[(result["scope"] == "pooled") & (result["time"] == 1.0) & (result["type"] == "A")]
    assert pooled["configuration"].item() == -1 and pooled["n_particles"].item() == 120
    assert pooled["pearson"].item() == pytest.approx(
        np.corrcoef(pooled_group["prediction"], pooled_group["target"])[0, 1]
    )
    # Spearman against scipy's implementation (shares no code with ours: ranks, then Pearson).
    from scipy.stats import spearmanr

    expected = spearmanr(pooled_group["prediction"], pooled_group["target"]).statistic
    assert pooled["spearman"].item() == pytest.approx(expected, abs=1e-12)

    s = summary(result)
    per = result[(result["scope"] == "configuration") & (result["time"] == 1.0) & (result["type"] == "A")]["pearson"]
    row = s[(s["time"] == 1.0) & (s["type"] == "A")]
    assert row["mean_pearson"].item() == pytest.approx(per.mean())
    assert row["sem_pearson"].item() == pytest.approx(per.std(ddof=1) / np.sqrt(3))
    assert row["pooled_pearson"].item() == pytest.approx(pooled["pearson"].item())
    assert s[(s["time"] == 2.0) & (s["type"] == "B")]["n_configurations"].item() == 2
