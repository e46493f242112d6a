"""Pearson correlations between predicted and true labels, per time, particle type and configuration.

``correlations`` turns a LONG prediction table (columns configuration, particle, type, time, prediction,
target; see :func:`glasspipe.learn.predict.predict`) into one row per (time, type, scope, configuration):
scope 'pooled' correlates all particles of that type over all configurations at once (configuration -1),
scope 'configuration' correlates within each configuration. Published numbers (REFERENCE.md section 3)
are means over configurations of the latter; ``summary`` gives both, with the standard error.
The correlation itself is :func:`glasspipe.correlation.pearson` (why it is not scipy's: that module).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from glasspipe.correlation import pearson
from glasspipe.statistics import mean_sem

PREDICTION_COLUMNS = ("configuration", "particle", "type", "time", "prediction", "target")
CORRELATION_COLUMNS = ("model", "time", "type", "scope", "configuration", "pearson", "spearman", "n_particles")


def spearman(x, y) -> float:
    """Spearman rank correlation: the Pearson correlation of the ranks (ties share their mean rank)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    finite = np.isfinite(x) & np.isfinite(y)
    return pearson(rankdata(x[finite]), rankdata(y[finite]))


def correlations(predictions: pd.DataFrame, model: str) -> pd.DataFrame:
    """Pearson correlation per time and type, pooled and per configuration (columns CORRELATION_COLUMNS)."""
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"prediction table lacks column(s) {missing}; expected {list(PREDICTION_COLUMNS)}")
    rows = []
    for (time, kind), group in predictions.groupby(["time", "type"], sort=True):
        rows.append(
            {
                "model": model,
                "time": float(time),
                "type": str(kind),
                "scope": "pooled",
                "configuration": -1,
                "pearson": pearson(group["prediction"], group["target"]),
                "spearman": spearman(group["prediction"], group["target"]),
                "n_particles": int(len(group)),
            }
        )
        for configuration, sub in group.groupby("configuration", sort=True):
            rows.append(
                {
                    "model": model,
                    "time": float(time),
                    "type": str(kind),
                    "scope": "configuration",
                    "configuration": int(configuration),
                    "pearson": pearson(sub["prediction"], sub["target"]),
                    "spearman": spearman(sub["prediction"], sub["target"]),
                    "n_particles": int(len(sub)),
                }
            )
    table = pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))
    return table.astype({"configuration": "int64", "n_particles": "int64", "pearson": "float64", "spearman": "float64"})


def summary(correlation_table: pd.DataFrame) -> pd.DataFrame:
    """Per model, time and type: pooled Pearson and mean +- standard error over configurations.

    Columns: model, time, type, pooled_pearson, mean_pearson, sem_pearson, n_configurations (configurations
    with a defined correlation; NaN ones are left out of the mean). sem is std (ddof=1) / sqrt(n), NaN for
    n < 2.
    """
    rows = []
    for (model, time, kind), group in correlation_table.groupby(["model", "time", "type"], sort=True):
        pooled = group.loc[group["scope"] == "pooled", "pearson"]
        values = group.loc[group["scope"] == "configuration", "pearson"].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        mean, sem = mean_sem(values)
        rows.append(
            {
                "model": model,
                "time": float(time),
                "type": kind,
                "pooled_pearson": float(pooled.iloc[0]) if len(pooled) else float("nan"),
                "mean_pearson": mean,
                "sem_pearson": sem,
                "n_configurations": len(values),
            }
        )
    columns = ["model", "time", "type", "pooled_pearson", "mean_pearson", "sem_pearson", "n_configurations"]
    return pd.DataFrame(rows, columns=columns)


def held_out_times(model_dir) -> list[float]:
    """Label times (tau) a saved model was trained without (hparams.json key ``held_out_times``, written by
    models with a time-conditioned decoder, e.g. se3 with ``held_out_times``); [] for every other model."""
    import json
    from pathlib import Path

    path = Path(model_dir) / "hparams.json"
    if not path.is_file():
        return []
    return [float(t) for t in json.loads(path.read_text()).get("held_out_times") or []]


def mark_held_out(metrics: pd.DataFrame, times) -> pd.DataFrame:
    """``metrics`` with a boolean column ``held_out``: True at label times (tau, relative 1e-6) the model was
    trained without, so tables and plots can tell interpolation in time from fitted times."""
    times = np.asarray(list(times), dtype=np.float64)
    values = metrics["time"].to_numpy(dtype=np.float64)
    held = np.isclose(values[:, None], times[None, :], rtol=1e-6, atol=0.0).any(axis=1) if len(times) else False
    return metrics.assign(held_out=np.zeros(len(metrics), dtype=bool) | held)
