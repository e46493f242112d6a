"""Learning curves (glasspipe.learn.learning_curve), without Snakemake: config checks, the first-n split,
training through the model registry and evaluation on a synthetic results directory, and the report figure."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from test_transfer import base_config, train_in_temperature, write_synthetic_results

from glasspipe import config as cfg
from glasspipe.learn import learning_curve as lc
from glasspipe.learn import registry
from glasspipe.stages import learning_curve as lc_stage


def curve_config(**section) -> dict:
    """6 configurations at T = 0.7 (4 train, 1 validation, 1 test), ridge, learning curve sizes [1, 2]."""
    config = base_config(temperatures=[0.7], tau_alpha_estimates=[5.0], transfer={})
    config["n_configurations"] = 6
    config["split"] = {"train": 4, "validation": 1, "test": 1}
    config["learning_curve"] = section or {"sizes": [1, 2]}
    return config


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"sizes": [1, 4]}, "'learning_curve.sizes' holds [4], not smaller than the 4 training configurations"),
        ({"sizes": [1], "models": ["mlp"]}, "'learning_curve.models' names 'mlp', which is not an enabled model run"),
        ({"models": ["ridge"]}, "'learning_curve.models' is set but 'learning_curve.sizes' is empty"),
    ],
)
def test_bad_learning_curve_section_is_refused_naming_the_key(section, message):
    with pytest.raises(cfg.ConfigError, match=re.escape(message)):
        cfg.validate_config(curve_config(**section))


def test_schema_refuses_sizes_below_one():
    with pytest.raises(cfg.ConfigError, match="learning_curve.sizes"):
        cfg.validate_config(curve_config(sizes=[0, 1]))


def test_runs_and_sizes():
    config = cfg.validate_config(curve_config(sizes=[2, 1]))
    assert lc.sizes(config) == [1, 2] and lc.runs(config) == ["ridge"]
    assert lc.runs(cfg.validate_config(curve_config(sizes=[]))) == []


def test_first_configurations_cut_only_the_training_set():
    plan = [{"train": [5, 6, 7, 8], "validation": [1], "test": [2, 3]}]
    assert lc.first_configurations(plan, 0, 2) == {"train": [5, 6], "validation": [1], "test": [2, 3]}
    with pytest.raises(ValueError, match="n_train = 5 is not between 1 and the 4"):
        lc.first_configurations(plan, 0, 5)
    with pytest.raises(ValueError, match="fold 1 does not exist"):
        lc.first_configurations(plan, 1, 1)


def test_learning_curve_trains_on_the_first_n_and_ends_with_the_full_model(tmp_path):
    """Ridge on 6 descriptors with labels = linear function + noise 1.0 (per-time label std ~1.6, signal
    variance ~1.5-2.5): with 1 configuration (160 A rows for 7 numbers) the fit is already good, so every
    point must lie within the test configuration's sampling spread of the full model (|dr| < 0.05), and all
    well above 0.5. The n = 1 model must have seen configuration 0 only, the n = 2 model 0 and 1."""
    config = cfg.validate_config(curve_config())
    layout = write_synthetic_results(tmp_path / "results", config, noise=1.0)
    train_in_temperature(config, layout)
    settings = cfg.settings_from_json(cfg.stage_settings_json(config, "train_ridge"))
    assert lc.train_settings(config, "ridge") == cfg.stage_settings(config, "train_ridge")
    for n in lc.sizes(config):
        out = lc_stage.train(settings, "ridge", 0.7, n, 0, layout)
        assert out == layout.learning_curve_model_dir(0.7, "ridge", n, 0)
        assert (out / registry.TRAIN_LOG).is_file()
        model = json.loads((out / "model.json").read_text())
        assert model["train_configurations"] == list(range(n)) and model["validation_configurations"] == [4]
    metrics = lc_stage.evaluate(lc.evaluate_settings(config, "ridge"), "ridge", 0.7, layout)
    assert layout.learning_curve_metrics(0.7, "ridge").is_file()
    assert sorted(set(metrics["n_train"])) == [1, 2, 4]
    assert metrics.loc[metrics["n_train"] == 4, "full"].all() and not metrics.loc[metrics["n_train"] < 4, "full"].any()
    curve = lc.curve_table(metrics)
    assert set(curve["n_configurations"]) == {1}  # one test configuration per point
    pivot = curve.pivot_table(index="time", columns="n_train", values="mean_pearson")
    assert (pivot > 0.5).all().all(), pivot
    assert (pivot.sub(pivot[4], axis=0).abs() < 0.05).all().all(), pivot
    # The full model's point is exactly the 'evaluate' stage's number on the same test configuration.
    from glasspipe import stages

    own = stages.evaluate(cfg.settings_from_json(cfg.stage_settings_json(config, "evaluate")), "ridge", 0.7, layout)
    own_a = own[(own["scope"] == "configuration") & (own["type"] == "A")].set_index("time")["pearson"]
    np.testing.assert_allclose(pivot[4].to_numpy(), own_a.sort_index().to_numpy(), rtol=0, atol=1e-12)


def test_unlearnable_labels_give_a_curve_near_zero(tmp_path):
    """The same pipeline on labels shuffled between particles (no structure predicts them): every point of
    the curve must be near zero (|r| < 0.3; for 160 test A particles the null spread is 1/sqrt(159) = 0.08,
    so 0.3 is 3.8 sigma). Together with the test above, the curve measures learning, not a constant."""
    config = cfg.validate_config(curve_config())
    layout = write_synthetic_results(tmp_path / "results", config, noise=1.0)
    # Shuffle the labels between particles in every file: no structure predicts them any more.
    from glasspipe.io.tables import read_metadata, read_table, write_table

    for c in range(config["n_configurations"]):
        path = layout.labels(0.7, c)
        table, meta = read_table(path), read_metadata(path)
        rng = np.random.default_rng(c)
        for _, rows in table.groupby("time"):
            table.loc[rows.index, "propensity"] = rng.permutation(rows["propensity"].to_numpy())
        write_table(table, path, metadata=meta)
    train_in_temperature(config, layout)
    settings = cfg.settings_from_json(cfg.stage_settings_json(config, "train_ridge"))
    for n in lc.sizes(config):
        lc_stage.train(settings, "ridge", 0.7, n, 0, layout)
    curve = lc.curve_table(lc_stage.evaluate(lc.evaluate_settings(config, "ridge"), "ridge", 0.7, layout))
    assert (curve["mean_pearson"].abs() < 0.3).all(), curve


def test_figure_time_and_report_figure(tmp_path):
    from glasspipe.report.figures import plot_learning_curve

    rows = []
    for n, r in ((1, 0.5), (2, 0.6), (4, 0.7)):
        for t in (0.5, 5.0, 50.0):
            rows.append(
                {
                    "run": "ridge",
                    "model": "ridge",
                    "label": "propensity",
                    "temperature": 0.7,
                    "time": t,
                    "n_train": n,
                    "full": n == 4,
                    "mean_pearson": r - 0.1 * (t == 50.0),
                    "sem_pearson": 0.02,
                    "pooled_pearson": r,
                    "n_configurations": 2,
                }
            )
    curve = pd.DataFrame(rows)
    assert lc.figure_times(curve, None, {0.7: 4.6}) == {0.7: 5.0}  # nearest tau_alpha on a log scale
    assert lc.figure_times(curve, None, {}) == {0.7: 50.0}  # no tau_alpha: the last time
    assert lc.figure_times(curve, 30.0, {0.7: 4.6}) == {0.7: 50.0}  # the config's time wins
    chosen = lc.at_figure_time(curve, {0.7: 5.0})
    assert chosen["n_train"].tolist() == [1, 2, 4] and set(chosen["time"]) == {5.0}
    ceiling = pd.DataFrame(
        {"temperature": [0.7, 0.7], "time": [5.0, 50.0], "label": "propensity", "ceiling": [0.8, 0.9]}
    )
    # The report's table holds every label time with its own ceiling (NaN where the labels give none); the
    # figure draws the rows of its time from that same table.
    from glasspipe.report.summary import with_ceiling

    table = with_ceiling(curve, ceiling)
    assert len(table) == len(curve)
    by_time = table.groupby("time")["ceiling"].first()
    assert by_time[5.0] == 0.8 and by_time[50.0] == 0.9 and np.isnan(by_time[0.5])
    data = plot_learning_curve(
        lc.at_figure_time(table, {0.7: 5.0}), tmp_path / "lc.png", tmp_path / "lc.pdf", tmp_path / "lc.parquet"
    )
    assert data["ceiling"].tolist() == [0.8, 0.8, 0.8]
    assert (tmp_path / "lc.png").stat().st_size > 0 and (tmp_path / "lc.pdf").stat().st_size > 0
    assert pd.read_parquet(tmp_path / "lc.parquet")["mean_pearson"].tolist() == [0.5, 0.6, 0.7]
    # Without a ceiling column the figure has none to draw.
    assert (
        plot_learning_curve(chosen, tmp_path / "b.png", tmp_path / "b.pdf", tmp_path / "b.parquet")["ceiling"]
        .isna()
        .all()
    )


def _curve_metrics(pearson_of):
    """A learning-curve metrics table: run 'm', label propensity, T = 0.64, two times, n = 2, 4, 8, test
    configurations 0..3; ``pearson_of(n, configuration, time)`` gives each A-particle Pearson. B rows and
    pooled rows carry values that must be ignored."""
    rows = []
    for n in (2, 4, 8):
        for t in (0.1, 16.5):
            for c in range(4):
                base = {"run": "m", "model": "m", "label": "propensity", "temperature": 0.64, "time": t}
                rows.append(
                    {
                        **base,
                        "n_train": n,
                        "type": "A",
                        "scope": "configuration",
                        "configuration": c,
                        "pearson": pearson_of(n, c, t),
                    }
                )
                rows.append(
                    {**base, "n_train": n, "type": "B", "scope": "configuration", "configuration": c, "pearson": -9.0}
                )
            rows.append({**base, "n_train": n, "type": "A", "scope": "pooled", "configuration": -1, "pearson": -9.0})
    return pd.DataFrame(rows)


def test_doubling_gains_pair_consecutive_sizes_by_configuration():
    """r = 0.5 + 0.01 * c + g(t) * log2 n, with a configuration offset that cancels in the pairing: the gain
    per doubling from n = 2 to 4 and from 4 to 8 is exactly g (0.02 at t = 0.1, 0.05 at 16.5) with s.e.m. 0.
    Then one configuration gains 0.04 more from 4 to 8 at t = 0.1: those gains are 0.02, 0.02, 0.02, 0.06,
    mean 0.03, s.e.m. std([0, 0, 0, 0.04], ddof=1) / 2 = 0.01; the step from 2 to 4 is unchanged."""
    g = {0.1: 0.02, 16.5: 0.05}
    gains = lc.doubling_gains(_curve_metrics(lambda n, c, t: 0.5 + 0.01 * c + g[t] * np.log2(n)))
    assert list(gains[["time", "n_from", "n_to"]].itertuples(index=False, name=None)) == [
        (0.1, 2, 4),
        (0.1, 4, 8),
        (16.5, 2, 4),
        (16.5, 4, 8),
    ]
    np.testing.assert_allclose(gains["gain_per_doubling"], [0.02, 0.02, 0.05, 0.05], rtol=0, atol=1e-12)
    np.testing.assert_allclose(gains["sem_gain"], 0.0, rtol=0, atol=1e-12)
    assert set(gains["n_configurations"]) == {4}

    def bumped(n, c, t):
        return 0.5 + 0.01 * c + g[t] * np.log2(n) + (0.04 if (n == 8 and c == 3 and t == 0.1) else 0.0)

    step = lc.doubling_gains(_curve_metrics(bumped)).set_index(["time", "n_from"])
    assert abs(step.loc[(0.1, 4), "gain_per_doubling"] - 0.03) < 1e-12
    assert abs(step.loc[(0.1, 4), "sem_gain"] - 0.01) < 1e-12
    assert abs(step.loc[(0.1, 2), "gain_per_doubling"] - 0.02) < 1e-12
    # One size only: no slope to give.
    one = _curve_metrics(bumped)
    assert lc.doubling_gains(one[one["n_train"] == 8]).empty
