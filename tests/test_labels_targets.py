"""Any model trains on any label (issue 7, part 6): the 'target' setting of each model, checked by the config,
carried through training and evaluation, and named (with its own noise ceiling) in the report summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glasspipe import config as cfg
from glasspipe.io.gsd_io import Snapshot, write_gsd
from glasspipe.io.tables import write_table
from glasspipe.layout import Layout

MINIMAL = {"temperatures": [0.7], "n_configurations": 4, "split": {"train": 2, "validation": 1, "test": 1}}


def test_target_defaults_to_propensity_and_must_be_a_label_time_column():
    config = cfg.validate_config(MINIMAL)
    assert all(config["models"][m]["target"] == "propensity" for m in cfg.enabled_models(config))
    ok = cfg.validate_config({**MINIMAL, "models": {"ridge": {"target": "bond_breaking"}}})
    assert ok["models"]["ridge"]["target"] == "bond_breaking"
    with pytest.raises(cfg.ConfigError, match=r"models\.ridge\.target.*'cwt_s5'"):
        cfg.validate_config({**MINIMAL, "models": {"ridge": {"target": "cwt_s5"}}})  # a dense label: no
    with pytest.raises(cfg.ConfigError, match=r"models\.bapst\.target.*'bond_breaking'"):
        cfg.validate_config(
            {
                **MINIMAL,
                "labels": {"bond_breaking": {"enabled": False}},
                "models": {"bapst": {"target": "bond_breaking"}},
            }
        )


def _configuration(rng, n=200, density=1.2):
    box = (n / density) ** (1 / 3)
    typeid = (np.arange(n) >= int(0.8 * n)).astype(np.int32)
    return Snapshot(positions=rng.uniform(-box / 2, box / 2, (n, 3)), typeid=typeid, box_length=box).wrapped()


def test_ridge_trains_and_is_evaluated_on_bond_breaking(tmp_path):
    """Four synthetic configurations whose 'bond_breaking' column is a function of the local density (and the
    propensity is noise): a ridge model with target bond_breaking learns it (Pearson > 0.8 on the test
    configuration); its metrics carry label = 'bond_breaking' and its predictions' target is that column."""
    from glasspipe import stages

    rng = np.random.default_rng(0)
    layout = Layout(tmp_path / "results")
    config = cfg.validate_config(
        {
            **MINIMAL,
            "structure": {"sets": {"radial": {"r_min": 0.7, "r_max": 2.5, "dr": 0.1}}},
            "models": {"ridge": {"target": "bond_breaking", "alphas": [1e-3, 1e-1]}, "mlp": {"enabled": False}}
            | {"bapst": {"enabled": False}},
        }
    )
    T, times = 0.7, np.array([1.0, 2.0])
    truth = {}
    for c in range(4):
        snapshot = _configuration(rng)
        write_gsd(layout.equilibrated(T, c), [snapshot])
        stages.structure(cfg.stage_settings(config, "structure"), layout.equilibrated(T, c), layout.structure(T, c))
        delta = snapshot.positions[:, None] - snapshot.positions[None]
        delta -= snapshot.box_length * np.round(delta / snapshot.box_length)
        crowd = (np.linalg.norm(delta, axis=-1) < 1.5).sum(axis=1) - 1.0
        n = snapshot.n_particles
        bond = np.stack([np.exp(-0.05 * crowd * t) for t in times])  # (K, N)
        truth[c] = bond
        write_table(
            pd.DataFrame(
                {
                    "particle": np.tile(np.arange(n), len(times)),
                    "type": np.tile(np.where(snapshot.typeid == 0, "A", "B"), len(times)),
                    "time": np.repeat(times, n),
                    "propensity": rng.random(n * len(times)),
                    "propensity_std": 0.0,
                    "bond_breaking": bond.reshape(-1),
                }
            ),
            layout.labels(T, c),
        )
    stages.train(cfg.settings_from_json(cfg.stage_settings_json(config, "train_ridge")), "ridge", T, 0, layout)
    metrics = stages.evaluate(cfg.settings_from_json(cfg.stage_settings_json(config, "evaluate")), "ridge", T, layout)
    assert set(metrics["label"]) == {"bond_breaking"}
    a = metrics[(metrics["type"] == "A") & (metrics["scope"] == "configuration")]
    assert (a["pearson"] > 0.8).all(), a  # measured 0.91, 0.88; a model fitted to the noise propensity gives ~0
    predictions = pd.read_parquet(layout.predictions(T, "ridge"))
    expected = truth[3].T[predictions["particle"].to_numpy(), np.searchsorted(times, predictions["time"].to_numpy())]
    np.testing.assert_allclose(predictions["target"].to_numpy(), expected)


def test_summary_names_each_label_with_its_own_ceiling(tmp_path):
    from glasspipe.report import summary

    path = tmp_path / "cfg000.parquet"
    meta = {
        "temperature": 0.7,
        "configuration": 0,
        "noise_ceiling": {"time": [1.0], "half_half_pearson": [0.5], "reliability": [2 / 3], "ceiling": [0.8]},
        "noise_ceilings": {
            "bond_breaking": {"time": [1.0], "half_half_pearson": [0.8], "reliability": [0.9], "ceiling": [0.95]}
        },
    }
    write_table(pd.DataFrame({"particle": [0]}), path, metadata=meta)
    assert summary.noise_ceilings([path])["ceiling"].tolist() == [0.8]
    assert summary.noise_ceilings([path], "bond_breaking")["ceiling"].tolist() == [0.95]
    assert summary.noise_ceilings([path], "cage_propensity").empty
    rows = []
    for model, label, r in (("ridge", "propensity", 0.5), ("bapst", "bond_breaking", 0.7)):
        for scope in ("configuration", "pooled"):
            rows.append(
                {"model": model, "temperature": 0.7, "time": 1.0, "type": "A", "scope": scope}
                | {"configuration": 0 if scope == "configuration" else -1, "pearson": r, "spearman": r, "label": label}
            )
    metrics = pd.DataFrame(rows)
    documents = [
        summary.headline(metrics, summary.mean_ceiling(summary.noise_ceilings([path], label), [0]), {}, {}, label)
        for label in ("propensity", "bond_breaking")
    ]
    labels = summary.merge(documents)["temperatures"]["0.7"]["labels"]
    assert list(labels["propensity"]) == ["ridge"] and list(labels["bond_breaking"]) == ["bapst"]
    assert labels["propensity"]["ridge"][0]["noise_ceiling"] == 0.8
    assert labels["bond_breaking"]["bapst"][0]["noise_ceiling"] == 0.95
    assert labels["bond_breaking"]["bapst"][0]["mean_pearson"] == 0.7
