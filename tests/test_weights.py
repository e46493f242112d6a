"""Importance-weighted loss (issue 7, part 6; Pezzicoli's thesis eq. 2.20): glasspipe.learn.training.weights and its
use by the ridge model, checked against a brute-force histogram loop, an analytic two-valued label, numpy's
closed-form weighted least squares, and through the training stage driven by the config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glasspipe import config as cfg
from glasspipe.learn.models.ridge import fit_ridge
from glasspipe.learn.samples import Sample
from glasspipe.learn.training.weights import importance_weights, pooled_weights, weighting_settings


def _brute_force(y: np.ndarray, alpha: float, n_bins: int, max_weight: float) -> np.ndarray:
    """Python loops, sharing no code with the module: per column, equal-width bins over [min, max] of the
    finite values (a value on an inner edge goes to the upper bin, the maximum to the last bin), weight
    count_fraction^-alpha capped at max_weight times the most common bin's weight, mean 1 over finite rows."""
    n_rows, n_cols = y.shape
    out = np.zeros((n_rows, n_cols))
    for c in range(n_cols):
        values = [(i, float(y[i, c])) for i in range(n_rows) if np.isfinite(y[i, c])]
        if not values:
            continue
        low = min(v for _, v in values)
        high = max(v for _, v in values)
        if high == low:
            for i, _ in values:
                out[i, c] = 1.0
            continue
        width = (high - low) / n_bins
        bins = {}
        for i, v in values:
            k = n_bins - 1
            for b in range(n_bins):
                if v < low + (b + 1) * width:
                    k = b
                    break
            bins[i] = k
        counts = [0] * n_bins
        for k in bins.values():
            counts[k] += 1
        cap = max_weight * (max(counts) / len(values)) ** (-alpha)
        raw = {i: min((counts[k] / len(values)) ** (-alpha), cap) for i, k in bins.items()}
        mean = sum(raw.values()) / len(raw)
        for i, w in raw.items():
            out[i, c] = w / mean
    return out


def test_weights_equal_a_brute_force_histogram_loop():
    """Skewed (exponential, log-normal) columns with NaNs, a constant column and an all-NaN column: equal to the
    loop implementation to 1e-12 (the same arithmetic up to rounding of the bin edges; random continuous
    values sit on an edge with probability 0)."""
    rng = np.random.default_rng(3)
    n = 400
    y = np.column_stack(
        [rng.exponential(1.0, n), rng.lognormal(0.0, 1.0, n), np.full(n, 2.5), np.full(n, np.nan), rng.normal(size=n)]
    )
    y[rng.random(n) < 0.05, 0] = np.nan
    for alpha, n_bins, max_weight in ((1.0, 20, 100.0), (0.5, 50, 5.0), (2.0, 7, 1e6)):
        weights = importance_weights(y, alpha, n_bins, max_weight)
        np.testing.assert_allclose(weights, _brute_force(y, alpha, n_bins, max_weight), rtol=1e-12, atol=1e-12)
        finite = np.isfinite(y)
        for c in (0, 1, 4):
            assert weights[finite[:, c], c].mean() == pytest.approx(1.0, abs=1e-12)  # normalised to mean 1
        assert (weights[~finite] == 0).all() and (weights[:, 2] == 1).all()
    # The cap binds at max_weight 5: the rarest bins of the exponential column sit exactly at the cap.
    capped = importance_weights(y[:, :1], 1.0, 50, 5.0)[:, 0]
    bulk = capped[np.isfinite(y[:, 0])].min()
    assert capped.max() / bulk == pytest.approx(5.0, rel=1e-12)


def test_two_valued_label_gets_weights_in_proportion_to_frequency_power():
    """A label taking two values with frequencies f and 1 - f: weights (f^-alpha, (1-f)^-alpha) normalised to
    mean 1, i.e. exactly w_rare / w_common = ((1 - f) / f)^alpha (to rounding, 1e-13)."""
    f, n = 0.1, 1000
    y = np.zeros(n)
    y[: int(f * n)] = 3.0
    for alpha in (0.5, 1.0, 1.7):
        w = importance_weights(y, alpha, n_bins=10, max_weight=1e9)
        rare, common = w[0], w[-1]
        assert np.all(w[: int(f * n)] == rare) and np.all(w[int(f * n) :] == common)
        assert rare / common == pytest.approx(((1 - f) / f) ** alpha, rel=1e-13)
        norm = f * f**-alpha + (1 - f) * (1 - f) ** -alpha
        assert rare == pytest.approx(f**-alpha / norm, rel=1e-13)
    assert np.array_equal(importance_weights(y, 0.0), np.ones(n))  # alpha = 0: exactly the plain loss


def test_bad_settings_are_refused_naming_the_key():
    assert weighting_settings({}, "models.ridge") == {"alpha": 0.0, "n_bins": 50, "max_weight": 100.0}
    with pytest.raises(ValueError, match=r"models\.mlp\.loss_weighting\.alpha"):
        weighting_settings({"loss_weighting": {"alpha": -0.5}}, "models.mlp")
    with pytest.raises(ValueError, match=r"models\.se3\.loss_weighting\.bins"):
        weighting_settings({"loss_weighting": {"bins": 3}}, "models.se3")
    with pytest.raises(ValueError, match="max_weight"):
        importance_weights(np.arange(5.0), 1.0, 10, 0.5)


def test_pooled_weights_use_one_histogram_over_the_masked_rows():
    rng = np.random.default_rng(0)
    targets = [rng.exponential(size=(30, 2)), rng.exponential(size=(20, 2))]
    masks = [rng.random(30) < 0.8, rng.random(20) < 0.8]
    out = pooled_weights(targets, masks, {"alpha": 1.0, "n_bins": 8, "max_weight": 100.0})
    pooled = importance_weights(np.concatenate([t[m] for t, m in zip(targets, masks, strict=True)]), 1.0, 8, 100.0)
    np.testing.assert_array_equal(np.concatenate([o[m] for o, m in zip(out, masks, strict=True)]), pooled)
    assert all((o[~m] == 0).all() for o, m in zip(out, masks, strict=True))


def _regression_data(rng, n_conf=3, n=150, n_features=4):
    data = []
    for _ in range(n_conf):
        x = rng.normal(size=(n, n_features)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
        hop = rng.random(n) < 0.1  # a skewed label: mostly small, a rare large tail
        y = np.column_stack([np.abs(x[:, 0]) * 0.1 + 3.0 * hop, 0.3 * x[:, 1] + 2.0 * hop * x[:, 2] ** 2])
        data.append((x, y + rng.normal(0, 0.05, y.shape)))
    return data


def _numpy_weighted_ridge(x, y, w, penalty):
    """argmin sum_i w_i (y_i - b - x_i c)^2 + penalty |c|^2, b unpenalised: least squares on the rows scaled by
    sqrt(w), augmented with sqrt(penalty) I rows for the slopes only (numpy.linalg.lstsq)."""
    n, f = x.shape
    root = np.sqrt(w)[:, None]
    design = np.vstack([np.hstack([root, root * x]), np.hstack([np.zeros((f, 1)), np.sqrt(penalty) * np.eye(f)])])
    rhs = np.concatenate([np.sqrt(w) * y, np.zeros(f)])
    solution, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return solution[0], solution[1:]


def test_weighted_ridge_equals_numpy_weighted_least_squares():
    """The ridge fit with loss_weighting alpha = 1 predicts, for every label time, what numpy's closed-form
    weighted least squares on the standardised features gives with the same weights and penalty
    (alpha_ridge * n): equal to 1e-10 (two exact solutions of one well-conditioned problem)."""
    rng = np.random.default_rng(1)
    train = _regression_data(rng)
    validation = _regression_data(rng, n_conf=1)
    weighting = {"alpha": 1.0, "n_bins": 12, "max_weight": 50.0}
    model, _ = fit_ridge(train, validation, [0.01, 1.0], ["a", "b", "c", "d"], np.array([1.0, 2.0]), weighting)
    x = np.concatenate([x for x, _ in train])
    y = np.concatenate([y for _, y in train])
    w = importance_weights(y, 1.0, 12, 50.0)
    assert w.std() > 0.5  # the weights are far from uniform: the check below has teeth
    standardised = (x - x.mean(axis=0)) / x.std(axis=0)
    probe = rng.normal(size=(40, 4)) * 2.0
    for t in range(2):
        b, c = _numpy_weighted_ridge(standardised, y[:, t], w[:, t], model.alpha[t] * len(x))
        expected = b + ((probe - x.mean(axis=0)) / x.std(axis=0)) @ c
        np.testing.assert_allclose(model.predict(probe)[:, t], expected, rtol=0, atol=1e-10)
        unweighted_b, unweighted_c = _numpy_weighted_ridge(
            standardised, y[:, t], np.ones(len(y)), model.alpha[t] * len(x)
        )
        assert np.abs(c - unweighted_c).max() > 1e-3  # and the weighting changes the fit


def test_alpha_zero_reproduces_the_unweighted_fit_bit_for_bit():
    rng = np.random.default_rng(2)
    train = _regression_data(rng)
    for validation in ([], _regression_data(rng, n_conf=1)):  # validation and k-fold selection
        plain, plain_log = fit_ridge(train, validation, [0.1, 10.0], list("abcd"), np.array([1.0, 2.0]))
        off, off_log = fit_ridge(
            train,
            validation,
            [0.1, 10.0],
            list("abcd"),
            np.array([1.0, 2.0]),
            {"alpha": 0.0, "n_bins": 5, "max_weight": 2.0},
        )
        assert json.dumps(plain.to_dict()) == json.dumps(off.to_dict())
        pd.testing.assert_frame_equal(plain_log, off_log, check_exact=True)


MINIMAL = {"temperatures": [0.7], "n_configurations": 4, "split": {"train": 2, "validation": 1, "test": 1}}


def test_config_refuses_bad_loss_weighting_naming_the_key():
    config = cfg.validate_config(MINIMAL)
    for model in ("ridge", "mlp", "bapst", "se3"):
        assert config["models"][model]["loss_weighting"] == {"alpha": 0.0, "n_bins": 50, "max_weight": 100.0}
    with pytest.raises(cfg.ConfigError, match=r"models\.ridge\.loss_weighting\.alpha"):
        cfg.validate_config({**MINIMAL, "models": {"ridge": {"loss_weighting": {"alpha": -1}}}})
    with pytest.raises(cfg.ConfigError, match=r"\['power'\] in models\.bapst\.loss_weighting"):
        cfg.validate_config({**MINIMAL, "models": {"bapst": {"loss_weighting": {"power": 1}}}})
    with pytest.raises(cfg.ConfigError, match=r"models\.mlp\.loss_weighting\.max_weight"):
        cfg.validate_config({**MINIMAL, "models": {"mlp": {"loss_weighting": {"max_weight": 0.5}}}})


def test_ridge_stage_trains_with_the_weighted_loss_from_the_config(tmp_path):
    """models.ridge.loss_weighting.alpha = 1 in the config, through glasspipe.stages.train (no Snakemake):
    the saved model equals fit_ridge called directly with those weights, and differs from the alpha = 0 fit."""
    from glasspipe import stages
    from glasspipe.io.gsd_io import Snapshot, write_gsd
    from glasspipe.io.tables import write_table
    from glasspipe.layout import Layout
    from glasspipe.learn.samples import load_sample

    rng = np.random.default_rng(0)
    T, times = 0.7, np.array([1.0, 2.0])
    models = {"mlp": {"enabled": False}, "bapst": {"enabled": False}}
    structure = {"sets": {"radial": {"r_min": 0.7, "r_max": 2.5, "dr": 0.2}}}
    runs = {}
    for alpha in (0.0, 1.0):
        layout = Layout(tmp_path / f"alpha{alpha:g}" / "results")
        config = cfg.validate_config(
            {**MINIMAL, "structure": structure, "models": {"ridge": {"loss_weighting": {"alpha": alpha}}, **models}}
        )
        rng = np.random.default_rng(0)
        for c in range(4):
            n = 200
            box = (n / 1.2) ** (1 / 3)
            typeid = (np.arange(n) >= 160).astype(np.int32)
            snapshot = Snapshot(positions=rng.uniform(-box / 2, box / 2, (n, 3)), typeid=typeid, box_length=box)
            write_gsd(layout.equilibrated(T, c), [snapshot.wrapped()])
            stages.structure(cfg.stage_settings(config, "structure"), layout.equilibrated(T, c), layout.structure(T, c))
            hops = (rng.random((len(times), n)) < 0.1) * rng.exponential(2.0, (len(times), n))  # skewed label
            write_table(
                pd.DataFrame(
                    {
                        "particle": np.tile(np.arange(n), len(times)),
                        "type": np.tile(np.where(typeid == 0, "A", "B"), len(times)),
                        "time": np.repeat(times, n),
                        "propensity": (hops + rng.random((len(times), n))).reshape(-1),
                        "propensity_std": 0.0,
                    }
                ),
                layout.labels(T, c),
            )
        stages.train(cfg.settings_from_json(cfg.stage_settings_json(config, "train_ridge")), "ridge", T, 0, layout)
        saved = json.loads((layout.model_dir(T, "ridge", 0) / "model.json").read_text())
        plan = cfg.split_plan(config)[0]
        samples = {
            split: [
                load_sample(c, layout.equilibrated(T, c), layout.labels(T, c), layout.structure(T, c))
                for c in plan[split]
            ]
            for split in ("train", "validation")
        }
        rows = {k: [(s.descriptors[s.typeid == 0], s.targets[s.typeid == 0]) for s in v] for k, v in samples.items()}
        direct, _ = fit_ridge(
            rows["train"],
            rows["validation"],
            config["models"]["ridge"]["alphas"],
            samples["train"][0].descriptor_names,
            times,
            config["models"]["ridge"]["loss_weighting"],
        )
        np.testing.assert_array_equal(np.asarray(saved["coefficients"]), direct.coefficients)
        np.testing.assert_array_equal(np.asarray(saved["intercepts"]), direct.intercepts)
        runs[alpha] = saved
    assert not np.allclose(runs[0.0]["coefficients"], runs[1.0]["coefficients"])  # the option took effect


def test_graph_loss_weights_each_squared_residual():
    """weighted_mse (the Bapst and se3 training loss): sum over times of the mean over A particles of
    w * residual^2, equal to the explicit numpy sum to float32 rounding; without weights the plain MSE."""
    import types

    import torch

    from glasspipe.learn.training.graph_task import weighted_mse

    rng = np.random.default_rng(4)
    prediction, targets = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    mask, weights = rng.random(50) < 0.7, rng.exponential(size=(50, 3))
    item = types.SimpleNamespace(
        targets=torch.as_tensor(targets, dtype=torch.float32), mask=torch.as_tensor(mask), weights=None
    )
    p = torch.as_tensor(prediction, dtype=torch.float32)
    plain = ((prediction[mask] - targets[mask]) ** 2).mean(axis=0).sum()
    assert float(weighted_mse(p, item)) == pytest.approx(plain, rel=1e-6)
    item.weights = torch.as_tensor(weights, dtype=torch.float32)
    weighted = (weights[mask] * (prediction[mask] - targets[mask]) ** 2).mean(axis=0).sum()
    assert float(weighted_mse(p, item)) == pytest.approx(weighted, rel=1e-6)
    assert abs(weighted - plain) > 0.1 * plain


def test_mlp_trains_with_weights_and_alpha_zero_is_the_plain_run(tmp_path):
    """train_mlp with loss_weighting alpha = 0 writes exactly the weights of a run without the block; alpha = 1
    (a skewed target) trains to other weights."""
    import torch

    from glasspipe.learn.models.mlp import train_mlp
    from glasspipe.learn.samples import Sample

    rng = np.random.default_rng(5)

    def sample(c):
        n = 120
        x = rng.normal(size=(n, 3))
        y = np.column_stack([(rng.random(n) < 0.1) * 3.0 + 0.2 * x[:, 0]])
        return Sample(
            configuration=c,
            positions=rng.uniform(0, 5, (n, 3)),
            typeid=np.zeros(n, dtype=np.int32),
            box_length=5.0,
            times=np.array([1.0]),
            targets=y,
            descriptors=x,
            descriptor_names=["a", "b", "c"],
        )

    train, validation = [sample(0), sample(1)], [sample(2)]
    states = {}
    for name, block in (("none", {}), ("off", {"alpha": 0.0}), ("on", {"alpha": 1.0, "n_bins": 10})):
        train_mlp(train, validation, {"epochs": 3, "loss_weighting": block}, 7, tmp_path / name)
        states[name] = torch.load(tmp_path / name / "model.pt", weights_only=True)
    assert all(torch.equal(states["none"][k], states["off"][k]) for k in states["none"])
    assert not all(torch.equal(states["none"][k], states["on"][k]) for k in states["none"])


def _graph_sample(configuration: int, seed: int, n: int = 60) -> Sample:
    """A small periodic configuration (density 1.2) with a skewed two-time label: rare large 'hops'."""
    rng = np.random.default_rng(seed)
    box = (n / 1.2) ** (1 / 3)
    hops = (rng.random((n, 2)) < 0.1) * 3.0 + rng.random((n, 2)) * 0.1
    return Sample(
        configuration=configuration,
        typeid=(np.arange(n) >= 48).astype(np.int32),
        positions=rng.uniform(0, box, (n, 3)),
        box_length=box,
        times=np.array([1.0, 2.0]),
        targets=hops,
    )


@pytest.mark.parametrize("model", ["bapst", "se3"])
def test_graph_models_train_with_weights_and_alpha_zero_is_the_plain_run(model, tmp_path):
    """train_bapst / train_se3 with loss_weighting: alpha = 0 writes exactly the weights of a run without the
    block (and may resume its checkpoint); alpha = 1 trains to other weights."""
    import torch

    if model == "se3":
        pytest.importorskip("e3nn")
        from glasspipe.learn.models.se3 import train_se3 as trainer

        settings = {"channels": 4, "n_layers": 1, "l_max": 1, "radial_neurons": 8, "device": "cpu", "epochs": 2}
    else:
        from glasspipe.learn.models.bapst import train_bapst as trainer

        settings = {"hidden": 8, "n_message_passing": 1, "epochs": 2, "augment": False, "device": "cpu"}
    train, validation = [_graph_sample(0, 1), _graph_sample(1, 2)], [_graph_sample(2, 3)]
    torch.set_num_threads(1)
    states = {}
    for name, block in (("none", None), ("off", {"alpha": 0.0}), ("on", {"alpha": 1.0, "n_bins": 10})):
        run = dict(settings) if block is None else {**settings, "loss_weighting": block}
        trainer(train, validation, run, 1.5, 3, tmp_path / name)
        states[name] = torch.load(tmp_path / name / "model.pt", weights_only=True)
    assert all(torch.equal(states["none"][k], states["off"][k]) for k in states["none"])
    assert not all(torch.equal(states["none"][k], states["on"][k]) for k in states["none"])
    with pytest.raises(ValueError, match=rf"models\.{model}\.loss_weighting\.alpha"):
        trainer(train, validation, {**settings, "loss_weighting": {"alpha": -1}}, 1.5, 3, tmp_path / "bad")
