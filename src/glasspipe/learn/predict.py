"""Predictions of a trained model on samples, as a LONG table (one row per configuration, particle and time).

Columns: configuration (int), particle (int), type ('A'/'B'), time (float, tau), prediction, target.
Rows are ordered by configuration, then time, then particle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.learn import registry
from glasspipe.learn.samples import Sample


def check_times(sample: Sample, times: np.ndarray, model_dir: Path) -> None:
    if len(sample.times) != len(times) or not np.allclose(sample.times, times, rtol=1e-9):
        raise ValueError(
            f"configuration {sample.configuration} has label times {sample.times.tolist()} but the model in "
            f"{model_dir} was trained on times {np.asarray(times).tolist()}"
        )


def _long_table(sample: Sample, times: np.ndarray, prediction: np.ndarray) -> pd.DataFrame:
    n, t = prediction.shape
    return pd.DataFrame(
        {
            "configuration": np.full(n * t, sample.configuration, dtype=np.int64),
            "particle": np.tile(np.arange(n, dtype=np.int64), t),
            "type": np.tile(sample.type_labels.astype(str), t),
            "time": np.repeat(np.asarray(times, dtype=np.float64), n),
            "prediction": prediction.T.reshape(-1).astype(np.float64),
            "target": sample.targets.T.reshape(-1),
        }
    )


def predict(
    model_name: str,
    model_dir: str | Path,
    samples: list[Sample],
    r_cut: float | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """Predict every particle and label time of ``samples`` with the model saved in ``model_dir``.

    model_name: a registered model (glasspipe.learn.registry); its ``predict`` callable reads the model
    directory and returns (times, values (N, T)) per sample, e.g. 'ridge' (model.json, needs descriptors),
    'bapst' and 'se3' (model.pt and hparams.json), 'mlp' (model.pt and hparams.json, needs descriptors).
    r_cut: graph cutoff for 'bapst'; None takes the one the model was trained with, a different value is an
    error. device: 'auto' | 'cpu' | 'cuda' for 'bapst' (a model trained on a GPU loads on a CPU).
    """
    model_dir = Path(model_dir)
    spec = registry.get(model_name)
    if not samples:
        return pd.DataFrame(
            {
                "configuration": pd.Series(dtype="int64"),
                "particle": pd.Series(dtype="int64"),
                "type": pd.Series(dtype="object"),
                "time": pd.Series(dtype="float64"),
                "prediction": pd.Series(dtype="float64"),
                "target": pd.Series(dtype="float64"),
            }
        )
    tables = []
    predicted = spec.predict(model_dir, samples, r_cut=r_cut, device=device)
    for sample, (times, values) in zip(samples, predicted, strict=True):
        check_times(sample, times, model_dir)
        tables.append(_long_table(sample, times, values))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- one predictor per model
# Each takes (model_dir, samples, r_cut, device) and returns [(times, values (N, T))] in sample order; the
# registry (glasspipe.learn.registry) names them, predict() checks the times and builds the table.
