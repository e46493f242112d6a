"""Single-descriptor baseline: the label predicted by one descriptor alone, as a sanity row beside the models.

The field quotes such rows to show what structure alone, without learning, already says: at T = 0.44 and
t = tau_alpha the inherent-state potential energy of a particle correlates with its propensity at 0.507
(pooled; GlassBench), its local density at -0.246. Pearson's r is invariant under a linear map, so the
baseline only fixes the map's sign and scale: for each label time, ``prediction = intercept + slope * x``
with ``x`` the descriptor column ``feature`` (``glassmlp:E``, the inherent-state energy per particle when
structure.input is inherent), fitted by least squares on the A particles of the training configurations.
The validation configurations are not needed (nothing is chosen); the test configurations are never read.

Files: ``model.json`` (feature, times, intercepts, slopes, the training Pearson per time) and, last,
``train_log.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.correlation import pearson_along
from glasspipe.io.atomic import write_json
from glasspipe.io.tables import write_table
from glasspipe.learn.samples import Sample

A_TYPEID = 0


def _column(sample: Sample, feature: str) -> np.ndarray:
    if feature not in sample.descriptor_names:
        raise ValueError(
            f"configuration {sample.configuration} has no descriptor column {feature!r} (config key "
            f"'models.baseline.feature'); its descriptors are {sample.descriptor_names[:8]}..."
        )
    return sample.descriptors[:, sample.descriptor_names.index(feature)]


def train_baseline(train: list[Sample], validation: list[Sample], settings: dict, out_dir: str | Path) -> None:
    """Fit intercept and slope of the label on descriptor ``settings['feature']`` per label time (A particles)."""
    if not train:
        raise ValueError("the baseline needs at least one training configuration")
    feature = settings["feature"]
    x = np.concatenate([_column(s, feature)[s.typeid == A_TYPEID] for s in train])
    y = np.concatenate([s.targets[s.typeid == A_TYPEID] for s in train])
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercepts, slopes), *_ = np.linalg.lstsq(design, y, rcond=None)
    prediction = intercepts + np.outer(x, slopes)
    train_pearson = [float(r) for r in pearson_along(prediction, y, axis=0)]
    out_dir = Path(out_dir)
    times = [float(t) for t in train[0].times]
    write_json(
        out_dir / "model.json",
        {
            "model": "baseline",
            "formula": "prediction[t] = intercepts[t] + slopes[t] * x, x = descriptor column 'feature'",
            "feature": feature,
            "times": times,
            "intercepts": np.atleast_1d(intercepts).tolist(),
            "slopes": np.atleast_1d(slopes).tolist(),
            "train_pearson": train_pearson,
            "train_configurations": [int(s.configuration) for s in train],
        },
    )
    log = pd.DataFrame({"time": times, "train_pearson": train_pearson})
    write_table(log, out_dir / "train_log.parquet", metadata={"model": "baseline", "settings": dict(settings)})


def predict_baseline(model_dir: str | Path, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(times (T,), predictions (N, T)) of the baseline saved in ``model_dir`` for one configuration."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; train the baseline first")
    model = json.loads(path.read_text())
    x = _column(sample, model["feature"])
    return np.asarray(model["times"]), np.asarray(model["intercepts"]) + np.outer(x, model["slopes"])


# ----------------------------------------------------------------------------- prediction


def predict_baseline_samples(
    model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto"
) -> list:
    from glasspipe.learn.models.baseline import predict_baseline

    return [predict_baseline(model_dir, sample) for sample in samples]
