"""Two runs' settings compared where the field allows it: on the validation configurations.

Each run's evaluate stage writes, per model, the Pearson correlation of the A particles' label on every
fold's validation configurations (``T<T>/validation/<model>.parquet``). Two results directories made with
different settings (an input, a penalty grid, a learning rate) but the same split are compared here by the
paired difference of those correlations, (fold, configuration) by (fold, configuration): the mean and its
s.e.m., so "A beats B" is a statement with an error bar. The test configurations never enter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.tables import read_table
from glasspipe.statistics import mean_sem

KEYS = ["run", "temperature", "time", "fold", "configuration"]


def run_names(table: pd.DataFrame) -> pd.Series:
    """The run of each row of a correlation table: its model, suffixed .<label> where the model learnt another
    label than propensity (the ``label`` column; propensity where absent), as in config model runs."""
    label = table["label"].fillna("propensity") if "label" in table.columns else "propensity"
    return table["model"].where(label == "propensity", table["model"] + "." + label)


def validation_correlations(results_dir: str | Path) -> pd.DataFrame:
    """The per-configuration Pearson of the A particles on the validation configurations of every model of
    ``results_dir``: columns run (model, or model.label for labels other than propensity), temperature,
    time (tau), fold, configuration, pearson. Raises FileNotFoundError naming the directory when it has none
    (results evaluated before glasspipe wrote validation metrics: rerun their evaluate stage)."""
    root = Path(results_dir)
    paths = sorted(root.glob("T*/validation/*.parquet"))
    if not paths:
        raise FileNotFoundError(
            f"{root}: no validation metrics (T<T>/validation/<model>.parquet); expected a results directory "
            "whose evaluate stage has run (snakemake --until evaluate, or the whole workflow)"
        )
    table = pd.concat([read_table(p) for p in paths], ignore_index=True)
    table = table[(table["scope"] == "configuration") & (table["type"] == "A")]
    table = table.assign(run=run_names(table))
    return table[[*KEYS, "pearson"]].reset_index(drop=True)


def paired_validation_differences(results_a: str | Path, results_b: str | Path, runs=None) -> pd.DataFrame:
    """Per run and label time, the validation Pearson of A, of B and the paired difference A - B.

    runs: the model runs to compare (None: every run both directories hold). Pairs are matched on (fold,
    configuration); only pairs present in both count. Columns: run, temperature, time, n, mean_a, mean_b,
    difference, sem_difference (std / sqrt(n), NaN for n < 2), resolved (|difference| > sem_difference).
    """
    a = validation_correlations(results_a)
    b = validation_correlations(results_b)
    common = sorted(set(a["run"]) & set(b["run"]))
    chosen = common if runs is None else list(runs)
    missing = [r for r in chosen if r not in common]
    if missing:
        raise ValueError(
            f"run(s) {missing} are not in both {results_a} ({sorted(set(a['run']))}) and {results_b} "
            f"({sorted(set(b['run']))})"
        )
    paired = a[a["run"].isin(chosen)].merge(b, on=KEYS, suffixes=("_a", "_b"))
    paired = paired[np.isfinite(paired["pearson_a"]) & np.isfinite(paired["pearson_b"])]
    if paired.empty:
        raise ValueError(
            f"{results_a} and {results_b} share no (fold, validation configuration): were they split alike?"
        )
    paired = paired.assign(difference=paired["pearson_a"] - paired["pearson_b"])
    rows = []
    for (run, temperature, time), group in paired.groupby(["run", "temperature", "time"], sort=True):
        n = len(group)
        mean, sem = mean_sem(group["difference"])
        rows.append(
            {
                "run": run,
                "temperature": float(temperature),
                "time": float(time),
                "n": n,
                "mean_a": float(group["pearson_a"].mean()),
                "mean_b": float(group["pearson_b"].mean()),
                "difference": mean,
                "sem_difference": sem,
                "resolved": bool(abs(mean) > sem) if sem == sem else False,
            }
        )
    return pd.DataFrame(rows)
