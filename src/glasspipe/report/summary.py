"""The headline numbers of a run, as the field reports them: ``results/report/summary.json``.

For each temperature, label, model and label time: the mean over test configurations of the
per-configuration Pearson correlation on A particles (the published convention), its standard error, the
correlation pooled over the test configurations, the mean per-configuration Spearman correlation, the number
of test configurations, and the noise ceiling of the labels beside it; the label time in tau and, where a
tau_alpha is known, in units of tau_alpha. Scripts and reviewers read this file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.tables import read_metadata
from glasspipe.statistics import mean_sem

CONVENTION = (
    "mean_pearson: mean over test configurations of the Pearson correlation between predicted and true label "
    "of A particles within each configuration; sem_pearson: its standard error (std ddof=1 / sqrt(n)); "
    "pooled_pearson: one correlation over all test configurations' A particles; noise_ceiling: mean over the "
    "test configurations of sqrt(Spearman-Brown reliability) of the replica-mean label, from equal replica "
    "halves (no predictor can exceed it on average)"
)


def noise_ceilings(labels_paths: list[Path], label: str = "propensity") -> pd.DataFrame:
    """Noise ceiling of the A particles' ``label`` per (temperature, configuration, time), from the labels'
    metadata ('noise_ceiling' for propensity, 'noise_ceilings'[label] for the other labels of
    glasspipe.labels).

    Columns: temperature, configuration, time, half_half_pearson, reliability, ceiling. Labels without a
    stored ceiling (a dataset that holds only replica means) contribute no rows.
    """
    rows = []
    for path in labels_paths:
        meta = read_metadata(path)
        ceiling = meta.get("noise_ceiling") if label == "propensity" else meta.get("noise_ceilings", {}).get(label)
        if not ceiling:
            continue
        table = pd.DataFrame(ceiling)
        table.insert(0, "configuration", int(meta["configuration"]))
        table.insert(0, "temperature", float(meta["temperature"]))
        rows.append(table[["temperature", "configuration", "time", "half_half_pearson", "reliability", "ceiling"]])
    if not rows:
        return pd.DataFrame(
            columns=["temperature", "configuration", "time", "half_half_pearson", "reliability", "ceiling"]
        )
    return pd.concat(rows, ignore_index=True)


def mean_ceiling(ceilings: pd.DataFrame, test_configurations: list[int]) -> pd.DataFrame:
    """Mean noise ceiling over the test configurations, per (temperature, time)."""
    test = ceilings[ceilings["configuration"].isin(test_configurations)]
    return test.groupby(["temperature", "time"], as_index=False)[["half_half_pearson", "ceiling"]].mean()


def with_ceiling(curve: pd.DataFrame, ceiling: pd.DataFrame) -> pd.DataFrame:
    """``curve`` (learning_curve.curve_table) with a ``ceiling`` column: the noise ceiling (columns
    temperature, time, label, ceiling) at each row's temperature, label time and label; NaN where none."""
    key = ceiling.assign(time_key=ceiling["time"].round(9), temperature_key=ceiling["temperature"].round(9))
    key = key.drop_duplicates(["temperature_key", "time_key", "label"])[
        ["temperature_key", "time_key", "label", "ceiling"]
    ]
    out = curve.assign(time_key=curve["time"].round(9), temperature_key=curve["temperature"].round(9))
    out = out.merge(key, on=["temperature_key", "time_key", "label"], how="left")
    return out.drop(columns=["time_key", "temperature_key"])


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def headline(
    metrics: pd.DataFrame,
    ceiling: pd.DataFrame,
    tau_alpha: dict[float, float | None],
    training_sizes: dict[str, int],
    label: str = "propensity",
) -> dict:
    """The summary.json document (see the module docstring) from the evaluation metrics of every model.

    ``label`` names the label the metrics and ``ceiling`` belong to; rows of a ``label`` column (the label
    each model learnt) that name another label are left out (see :func:`merge`)."""
    a = metrics[metrics["type"] == "A"]
    if "label" in a.columns:
        a = a[a["label"].fillna("propensity") == label]
    temperatures: dict[str, dict] = {}
    for (temperature, model, time), group in a.groupby(["temperature", "model", "time"], sort=True):
        per_config = group[group["scope"] == "configuration"]
        pooled = group[group["scope"] == "pooled"]
        values = per_config["pearson"].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        n = len(values)
        mean, sem = mean_sem(values)
        match = ceiling[(np.isclose(ceiling["temperature"], temperature)) & np.isclose(ceiling["time"], time)]
        ta = tau_alpha.get(float(temperature))
        entry = {
            "time": float(time),
            "time_tau_alpha": float(time) / ta if ta else None,
            "mean_pearson": _finite(mean),
            "sem_pearson": _finite(sem),
            "pooled_pearson": _finite(pooled["pearson"].iloc[0]) if len(pooled) else None,
            "mean_spearman": _finite(per_config["spearman"].mean()) if "spearman" in per_config and n else None,
            "n_test_configurations": n,
            "noise_ceiling": _finite(match["ceiling"].iloc[0]) if len(match) else None,
            # True where the model was trained without this label time (glasspipe.learn.evaluate.mark_held_out).
            "held_out": bool(group["held_out"].fillna(False).astype(bool).any()) if "held_out" in group else False,
        }
        node = temperatures.setdefault(f"{float(temperature):g}", {"tau_alpha": ta, "labels": {}})
        models = node["labels"].setdefault(label, {})
        models.setdefault(model, []).append(entry)
    return {
        "convention": CONVENTION,
        "particles": "A",
        "training_configurations": training_sizes,
        "temperatures": temperatures,
    }


def merge(documents: list[dict]) -> dict:
    """One summary.json document from headline() documents of different labels (same run)."""
    merged = documents[0]
    for document in documents[1:]:
        for temperature, node in document["temperatures"].items():
            target = merged["temperatures"].setdefault(temperature, {"tau_alpha": node["tau_alpha"], "labels": {}})
            target["labels"].update(node["labels"])
    return merged
