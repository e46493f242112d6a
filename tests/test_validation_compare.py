"""Validation metrics and the comparison of two runs on them (stages.evaluate, glasspipe.report.compare),
without Snakemake, on synthetic results directories (tests/test_transfer.py writes them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_transfer import base_config, write_synthetic_results

from glasspipe import config as cfg
from glasspipe import stages
from glasspipe.report.build import validation_table
from glasspipe.report.compare import paired_validation_differences, validation_correlations


def folds_config() -> dict:
    """8 configurations at T = 0.7, 4-fold cross-validation with 1 validation configuration per fold, ridge."""
    config = base_config(temperatures=[0.7], tau_alpha_estimates=[5.0], transfer={})
    config["n_configurations"] = 8
    config["split"] = {"validation": 1, "folds": 4}
    return cfg.validate_config(config)


def trained(root, noise: float):
    """A synthetic results directory with label noise ``noise``, its 4 ridge folds trained and evaluated."""
    config = folds_config()
    config["results_dir"] = str(root)
    layout = write_synthetic_results(root, config, noise=noise)
    settings = cfg.settings_from_json(cfg.stage_settings_json(config, "train_ridge"))
    for fold in range(len(cfg.split_plan(config))):
        stages.train(settings, "ridge", 0.7, fold, layout)
    stages.evaluate(cfg.settings_from_json(cfg.stage_settings_json(config, "evaluate")), "ridge", 0.7, layout)
    return config, layout


def test_validation_metrics_are_each_folds_own_validation_configuration(tmp_path):
    """One row per (fold, validation configuration, time) of A; each Pearson is the number ridge's penalty
    search scored for the chosen penalty on the same configuration (its train_log.parquet, computed by the
    fit's own code, not by predict/correlations): equal to 1e-9. The test configurations never appear."""
    config, layout = trained(tmp_path / "run", noise=1.0)
    plan = cfg.split_plan(config)
    table = pd.read_parquet(layout.validation_metrics(0.7, "ridge"))
    rows = table[(table["scope"] == "configuration") & (table["type"] == "A")]
    assert sorted(zip(rows["fold"].unique(), rows.groupby("fold")["configuration"].first(), strict=True)) == [
        (k, fold["validation"][0]) for k, fold in enumerate(plan)
    ]
    for k, fold in enumerate(plan):
        log = pd.read_parquet(layout.model_dir(0.7, "ridge", k) / "train_log.parquet")
        chosen = log[log["chosen"]].set_index("time")["selection_pearson"].sort_index()
        ours = rows[rows["fold"] == k].set_index("time")["pearson"].sort_index()
        np.testing.assert_allclose(ours.to_numpy(), chosen.to_numpy(), rtol=0, atol=1e-9)
        assert not set(rows.loc[rows["fold"] == k, "configuration"]) & set(fold["test"])
    cells = validation_table(rows.assign(run="ridge"))
    assert list(cells["n (fold, configuration)"]) == [4, 4]


def test_compare_runs_resolves_a_real_difference_and_none_between_a_run_and_itself(tmp_path):
    """Labels = signal + noise, with the same signal and noise draws: noise 0.5 against 3.0 (signal std about
    1.1 to 1.6 per time) must give a higher validation Pearson in every (fold, configuration): difference
    > 0.2 and larger than 5 s.e.m. A run against itself gives exactly 0."""
    _, clean = trained(tmp_path / "clean", noise=0.5)
    _, noisy = trained(tmp_path / "noisy", noise=3.0)
    table = paired_validation_differences(clean.root, noisy.root)
    assert list(table["run"].unique()) == ["ridge"] and (table["n"] == 4).all()
    assert (table["difference"] > 0.2).all() and (table["difference"] > 5 * table["sem_difference"]).all(), table
    assert table["resolved"].all()
    same = paired_validation_differences(clean.root, clean.root)
    assert (same["difference"] == 0).all() and not same["resolved"].any()
    out = tmp_path / "compare.csv"
    done = subprocess.run(
        [sys.executable, "-m", "glasspipe.cli", "compare-runs", str(clean.root), str(noisy.root), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out), table, check_dtype=False)


def test_compare_runs_names_what_is_missing(tmp_path):
    _, clean = trained(tmp_path / "clean", noise=0.5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'empty'}: no validation metrics")):
        validation_correlations(tmp_path / "empty")
    with pytest.raises(ValueError, match=re.escape("run(s) ['bapst'] are not in both")):
        paired_validation_differences(clean.root, clean.root, runs=["bapst"])
    assert json.loads((clean.model_dir(0.7, "ridge", 0) / "input.json").read_text())["validation"]
