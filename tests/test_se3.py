"""The E(3)-equivariant graph network (glasspipe.learn.se3): symmetries checked numerically, learning of a
known function of structure, checkpoint fingerprints, and a Snakemake run with the model switched on."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import random_sequential_addition

pytest.importorskip("e3nn")

from glasspipe.learn import se3  # noqa: E402
from glasspipe.learn.data import Sample, build_graph  # noqa: E402
from glasspipe.learn.models import cube_symmetries  # noqa: E402
from glasspipe.learn.predict import predict  # noqa: E402

R_CUT = 2.0
DENSITY = 1.2


@pytest.fixture(autouse=True, scope="module")
def _threads(one_torch_thread):
    yield


def periodic_sample(n: int, seed: int, times=(1.0, 2.0)) -> Sample:
    """n particles (20 % B) without overlaps (closer than 0.8) in a periodic cube at density 1.2."""
    rng = np.random.default_rng(seed)
    box = (n / DENSITY) ** (1 / 3)
    positions = random_sequential_addition(n, box, 0.8, rng)
    typeid = (rng.random(n) < 0.2).astype(int)
    return Sample(seed, typeid, positions, box, np.array(times), rng.normal(size=(n, len(times))))


def cluster_sample(n: int, seed: int) -> Sample:
    """n particles in a ball of radius 2.2 centred on the origin, alone in a box of edge 40: no periodic image
    is within r_cut, so any rotation about the origin is a symmetry of the graph."""
    rng = np.random.default_rng(seed)
    positions = np.empty((0, 3))
    while len(positions) < n:  # rejection sampling inside the ball, no pair closer than 0.8
        trial = rng.uniform(-2.2, 2.2, 3)
        if np.linalg.norm(trial) < 2.2 and not np.any(np.linalg.norm(positions - trial, axis=1) < 0.8):
            positions = np.vstack([positions, trial])
    typeid = (rng.random(n) < 0.3).astype(int)
    return Sample(seed, typeid, positions, 40.0, np.array([1.0, 2.0]), np.zeros((n, 2)))


def transformed(sample: Sample, positions: np.ndarray, order: np.ndarray | None = None) -> Sample:
    order = np.arange(sample.n_particles) if order is None else order
    return Sample(
        sample.configuration,
        sample.typeid[order],
        positions[order],
        sample.box_length,
        sample.times,
        sample.targets[order],
    )


def outputs(model: se3.SE3GNN, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    g = build_graph(sample, R_CUT)
    with torch.no_grad():
        scalars, vectors = model.forward_all(g.node_features, g.edge_vectors, g.senders, g.receivers)
    return scalars.double().numpy(), vectors.double().numpy()


def random_orthogonal(rng, reflect: bool) -> np.ndarray:
    """A random rotation (QR of a Gaussian matrix, signs fixed), times -1 (an improper rotation) if asked."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if reflect else q


@pytest.fixture(scope="module", params=["per_time", "film"])
def model(request):
    """A small network with every kind of irrep (l_max 2), three layers (residual updates), a vector head;
    outputs at initialisation vary from particle to particle (checked below), so equalities are not trivial."""
    torch.manual_seed(0)
    net = se3.SE3GNN(
        n_outputs=2,
        channels=8,
        n_layers=3,
        l_max=2,
        mean_neighbours=30.0,
        decoder=request.param,
        time_features=[-0.3, 0.4],
        n_vector_outputs=2,
    )
    return net.eval()


# Tolerances: float32 network, outputs O(0.1-1); round-off of ~1e-7 relative through three layers stays
# well below 1e-5. A broken equivariance (e.g. a non-equivariant edge feature) gives differences of O(0.1).
ATOL = 1e-5


def test_outputs_vary_and_a_moved_particle_changes_them(model):
    """Guards the symmetry tests against a constant network: outputs differ between particles, and moving
    one particle by 0.05 changes its neighbours' outputs by far more than the tolerance."""
    sample = periodic_sample(120, seed=1)
    scalars, vectors = outputs(model, sample)
    assert scalars.std(axis=0).min() > 1e-3 and np.abs(vectors).mean() > 1e-3
    moved = sample.positions.copy()
    moved[0] += [0.05, 0.0, 0.0]
    scalars_moved, _ = outputs(model, transformed(sample, moved))
    assert np.abs(scalars_moved - scalars).max() > 100 * ATOL


def test_cube_symmetries_of_the_periodic_box(model):
    """The 48 signed permutations map the periodic cube (centred on the origin) onto itself: scalars are
    unchanged and vectors v -> M v (true vectors, also under the reflections)."""
    sample = periodic_sample(120, seed=2)
    box = sample.box_length
    positions = sample.positions - box * np.round(sample.positions / box)  # in [-L/2, L/2]
    scalars, vectors = outputs(model, transformed(sample, positions))
    for m in cube_symmetries(torch.float64).numpy():
        s, v = outputs(model, transformed(sample, positions @ m.T))
        np.testing.assert_allclose(s, scalars, atol=ATOL, rtol=0)
        np.testing.assert_allclose(v, vectors @ m.T, atol=ATOL, rtol=0)


@pytest.mark.parametrize("reflect", [False, True])
def test_random_rotations_of_an_isolated_cluster(model, reflect):
    """Random proper and improper rotations of a cluster about its centre (no periodic image in reach)."""
    rng = np.random.default_rng(3)
    sample = cluster_sample(40, seed=3)
    scalars, vectors = outputs(model, sample)
    assert scalars.std(axis=0).min() > 1e-3
    for _ in range(5):
        q = random_orthogonal(rng, reflect)
        s, v = outputs(model, transformed(sample, sample.positions @ q.T))
        np.testing.assert_allclose(s, scalars, atol=ATOL, rtol=0)
        np.testing.assert_allclose(v, vectors @ q.T, atol=ATOL, rtol=0)


def test_periodic_translations_and_permutations(model):
    """A translation (wrapped into the box) changes nothing; a permutation of the particles permutes the
    outputs."""
    rng = np.random.default_rng(4)
    sample = periodic_sample(120, seed=4)
    scalars, vectors = outputs(model, sample)
    for _ in range(3):
        shifted = sample.positions + rng.uniform(-sample.box_length, sample.box_length, 3)
        shifted -= sample.box_length * np.round(shifted / sample.box_length)
        s, v = outputs(model, transformed(sample, shifted))
        np.testing.assert_allclose(s, scalars, atol=ATOL, rtol=0)
        np.testing.assert_allclose(v, vectors, atol=ATOL, rtol=0)
    order = rng.permutation(sample.n_particles)
    s, v = outputs(model, transformed(sample, sample.positions, order))
    np.testing.assert_allclose(s, scalars[order], atol=ATOL, rtol=0)
    np.testing.assert_allclose(v, vectors[order], atol=ATOL, rtol=0)


def test_layer_checkpointing_gives_the_same_gradients():
    """checkpoint_layers recomputes activations in the backward pass: same loss and gradients (1e-6; float32
    round-off of identical operations is exactly reproducible, the tolerance is slack)."""
    sample = periodic_sample(100, seed=5)
    g = build_graph(sample, R_CUT)
    grads = []
    for checkpoint in (False, True):
        torch.manual_seed(0)
        net = se3.SE3GNN(n_outputs=1, channels=4, n_layers=2, mean_neighbours=30.0, checkpoint_layers=checkpoint)
        net(g.node_features, g.edge_vectors, g.senders, g.receivers).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-6)


def test_radial_envelope_vanishes_smoothly_at_the_cutoff():
    """NequIP's p = 6 envelope u(x) = 1 - 28 x^6 + 48 x^7 - 21 x^8 (x = r / r_c): u(0) = 1, u(1/2) =
    0.85546875 (exact, by hand), 0 at and beyond r_c; value, slope and curvature vanish at r_c, so near it
    u = 56 d^3 (d = 1 - x; 56 = minus the third derivative at x = 1, over 6): the ratio at d = 1e-3 within
    1 % (the next Taylor term is O(d))."""
    r_c = 2.5
    r = torch.tensor([0.0, 0.5 * r_c, r_c, r_c + 1e-3, 3.0], dtype=torch.float64)
    u = se3.polynomial_cutoff(r, r_c)
    np.testing.assert_allclose(u.numpy(), [1.0, 0.85546875, 0.0, 0.0, 0.0], atol=1e-12)
    d = 1e-3
    near = float(se3.polynomial_cutoff(torch.tensor([r_c * (1 - d)], dtype=torch.float64), r_c)[0])
    assert near / d**3 == pytest.approx(56.0, rel=0.01)


def neighbour_count(sample: Sample, radius: float, width: float) -> np.ndarray:
    """Number of other particles within ``radius`` (minimum image), each counted with the logistic weight
    1 / (1 + exp((r - radius) / width)), by brute force over all pairs (no freud, no torch)."""
    n, box = sample.n_particles, sample.box_length
    count = np.zeros(n)
    for i in range(n):
        d = sample.positions - sample.positions[i]
        d -= box * np.round(d / box)
        r = np.linalg.norm(d, axis=1)
        r = r[np.arange(n) != i]
        count[i] = np.sum(1.0 / (1.0 + np.exp((r - radius) / width)))
    return count


def synthetic(seed: int, n: int = 150) -> Sample:
    """Target: the neighbour count within 1.3 sigma (edges softened over 0.03 sigma, so that a smooth radial
    basis can represent it) at t = 1, and its square root at t = 4."""
    sample = periodic_sample(n, seed)
    count = neighbour_count(sample, 1.3, 0.03)
    sample.times = np.array([1.0, 4.0])
    sample.targets = np.stack([count, np.sqrt(count)], axis=1)
    return sample


TINY = {"channels": 8, "n_layers": 2, "l_max": 1, "radial_neurons": 16, "device": "cpu"}


def test_learns_the_neighbour_count(tmp_path):
    """A known function of structure: the (softened) number of neighbours within 1.3 sigma. Two layers of 8
    channels (16 Bessel functions to resolve the step) learn it on 4 configurations of 150 particles in
    about 10 s on one thread: Pearson > 0.95 on 2 unseen configurations, at both label times (measured 0.98;
    untrained, or with the hard step of a plain count, 0.84-0.94 after the same 40 epochs)."""
    train = [synthetic(seed) for seed in range(10, 14)]
    test = [synthetic(seed) for seed in (20, 21)]
    settings = {**TINY, "epochs": 40, "learning_rate": 2e-2, "n_basis": 16, "radial_neurons": 32, "patience": None}
    se3.train_se3(train, test[:1], settings, R_CUT, seed=0, out_dir=tmp_path)
    table = predict("se3", tmp_path, test)
    for (_, time), rows in table.groupby(["configuration", "time"]):
        a = rows[rows["type"] == "A"]
        r = np.corrcoef(a["prediction"], a["target"])[0, 1]
        assert r > 0.95, (time, r)


class Killed(Exception):
    pass


def test_checkpoint_fingerprint_covers_the_labels(tmp_path, monkeypatch, caplog):
    """A run killed after epoch 1 resumes with the same data, and starts over when the labels changed."""
    train = [synthetic(30, n=80)]
    settings = {**TINY, "epochs": 3}
    assert se3.data_hash(train) == se3.data_hash([synthetic(30, n=80)])
    changed = synthetic(30, n=80)
    changed.targets = changed.targets.copy()
    changed.targets[0, 0] += 1.0
    assert se3.data_hash([changed]) != se3.data_hash(train)

    original_save = se3._save_checkpoint

    def save_then_die(path, state):
        original_save(path, state)
        raise Killed

    def run(samples):
        monkeypatch.setattr(se3, "_save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            se3.train_se3(samples, [], settings, R_CUT, seed=0, out_dir=tmp_path)
        assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "train_log.parquet").exists()
        monkeypatch.setattr(se3, "_save_checkpoint", original_save)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            se3.train_se3(samples, [], settings, R_CUT, seed=0, out_dir=tmp_path)
        return caplog.text

    assert "resuming" in run(train)
    log = pd.read_parquet(tmp_path / "train_log.parquet")
    assert log["epoch"].tolist() == [1, 2, 3]
    # Kill a run on the original labels, then train on changed labels: the checkpoint is not used.
    monkeypatch.setattr(se3, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        se3.train_se3(train, [], settings, R_CUT, seed=0, out_dir=tmp_path)
    monkeypatch.setattr(se3, "_save_checkpoint", original_save)
    with caplog.at_level(logging.INFO):
        caplog.clear()
        se3.train_se3([changed], [], settings, R_CUT, seed=0, out_dir=tmp_path)
    assert "other settings or data" in caplog.text and "resuming" not in caplog.text


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="models.se3.decoder"):
        se3.se3_settings({"decoder": "laguerre"})
    with pytest.raises(ValueError, match="models.se3.bogus"):
        se3.se3_settings({"bogus": 1})
    with pytest.raises(ValueError, match="radial_cutoff"):
        se3.build_se3(se3.se3_settings({"radial_cutoff": 1.5}), 1, 2.0, 30.0, [1.0], 1.0, 0)
    with pytest.raises(ValueError, match="vector_loss_weight"):
        se3.train_se3([synthetic(40, n=80)], [], {**TINY, "vector_loss_weight": 1.0}, R_CUT, 0, "unused")


def test_vector_loss_trains_the_vector_head(tmp_path):
    """With a vector target (here the sum of unit vectors to neighbours within 1.3, an equivariant function
    of structure) and vector_loss_weight > 0 the model builds and trains its l = 1 head."""
    sample = synthetic(50, n=80)
    d = sample.positions[None, :, :] - sample.positions[:, None, :]
    d -= sample.box_length * np.round(d / sample.box_length)
    r = np.linalg.norm(d, axis=2)
    near = (r < 1.3) & (r > 0)
    sample.vector_targets = (d / np.where(r > 0, r, 1)[..., None] * near[..., None]).sum(axis=1)
    se3.train_se3([sample], [], {**TINY, "epochs": 2, "vector_loss_weight": 1.0}, R_CUT, 0, tmp_path)
    model, hparams = se3.load_se3(tmp_path)
    assert hparams["n_vector_outputs"] == 2 and model.n_vector_outputs == 2


def test_film_decoder_predicts_at_other_times(tmp_path):
    """The time-conditioned decoder is one network for all times: it predicts at a label time it was not
    trained on (the per-time model refuses)."""
    train = [synthetic(60, n=80)]
    se3.train_se3(train, [], {**TINY, "epochs": 1, "decoder": "film"}, R_CUT, 0, tmp_path / "film")
    other = synthetic(61, n=80)
    other.times = np.array([2.0])
    other.targets = other.targets[:, :1]
    table = predict("se3", tmp_path / "film", [other])
    assert table["time"].unique().tolist() == [2.0] and np.isfinite(table["prediction"]).all()
    se3.train_se3(train, [], {**TINY, "epochs": 1}, R_CUT, 0, tmp_path / "heads")
    with pytest.raises(ValueError, match="trained on times"):
        predict("se3", tmp_path / "heads", [other])


@pytest.mark.slow
def test_snakemake_trains_and_evaluates_se3(tmp_path):
    """models.se3 enabled in a tiny imported-data config: Snakemake trains it (2 folds), evaluates it, and
    its predictions and metrics appear; the other models are off, to keep the run short (~1-2 minutes)."""
    from test_import_workflow import TINY_IMPORT, write_botan_like
    from test_workflow import snakemake

    config = yaml.safe_load(TINY_IMPORT.read_text())
    config["split"] = {"validation": 1, "folds": 2}
    config["graph"]["input"] = "thermal"  # the model reads the imported positions as they are
    config["models"] = {
        "ridge": {"enabled": False},
        "mlp": {"enabled": False},
        "bapst": {"enabled": False},
        "se3": {"enabled": True, "channels": 8, "n_layers": 2, "l_max": 1, "epochs": 2, "device": "cpu"},
    }
    configfile = tmp_path / "se3.yaml"
    configfile.write_text(yaml.safe_dump(config))
    write_botan_like(tmp_path / "botan_tiny", 4)
    result = snakemake(tmp_path, "--cores", "2", configfile=configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    tdir = tmp_path / "results" / "T0.44"
    for k in range(2):
        assert (tdir / "models" / "se3" / f"fold{k}" / "train_log.parquet").is_file()
    predictions = pd.read_parquet(tdir / "predictions" / "se3.parquet")
    assert sorted(predictions["configuration"].unique()) == [0, 1, 2, 3]
    assert np.isfinite(predictions["prediction"]).all()
    metrics = pd.read_parquet(tdir / "metrics" / "se3.parquet")
    assert len(metrics) > 0 and metrics["pearson"].notna().all()
    summary = json.loads((tmp_path / "results" / "report" / "summary.json").read_text())
    (row,) = summary["temperatures"]["0.44"]["labels"]["propensity"]["se3"]
    assert row["n_test_configurations"] == 4 and -1 <= row["mean_pearson"] <= 1


def test_early_stopping_on_validation(tmp_path):
    """patience = 1: with a learning rate too small to change float32 weights (1e-30), the validation
    Pearson never improves after epoch 1, so training stops after epoch 2 of 5, keeping epoch 1."""
    train, validation = [synthetic(70, n=80)], [synthetic(71, n=80)]
    settings = {**TINY, "epochs": 5, "patience": 1, "learning_rate": 1e-30, "lr_schedule": "constant"}
    se3.train_se3(train, validation, settings, R_CUT, 0, tmp_path)
    log = pd.read_parquet(tmp_path / "train_log.parquet")
    assert log["epoch"].tolist() == [1, 2]
    assert log["validation_pearson"].nunique() == 1
    assert json.loads((tmp_path / "hparams.json").read_text())["best_epoch"] == 1


def test_mixed_precision_forward_and_backward():
    """Training on CUDA runs under bfloat16 autocast. CPU autocast applies the same rules to the same ops, so
    the path is checked here without a GPU: e3nn's modules (which refuse mixed dtypes) run in float32 inside
    it, outputs agree with float32 to a few bfloat16 roundings (8-bit mantissa, 0.4 %: tolerance 5 % of the
    output scale), and every parameter gets a finite gradient."""
    sample = periodic_sample(100, seed=6)
    g = build_graph(sample, R_CUT)
    torch.manual_seed(0)
    net = se3.SE3GNN(n_outputs=2, channels=8, n_layers=3, mean_neighbours=30.0, decoder="film", n_vector_outputs=1)
    reference = net(g.node_features, g.edge_vectors, g.senders, g.receivers).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scalars, vectors = net.forward_all(g.node_features, g.edge_vectors, g.senders, g.receivers)
    assert scalars.dtype == torch.bfloat16
    scale = float(reference.abs().max())
    assert float((scalars.detach().float() - reference).abs().max()) < 0.05 * scale
    (scalars.float().square().sum() + vectors.float().square().sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
