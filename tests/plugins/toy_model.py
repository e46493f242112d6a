"""A toy model, written as a user would add one: this file alone declares it (settings with defaults, a
cross-key check, train and predict) and registers it. Inside the package it would sit in glasspipe/learn/zoo/
with one import line in glasspipe/plugins_all.py; outside it, ``GLASSPIPE_PLUGINS=toy_model`` is that line.

The model: each label time is predicted by ``scale`` times one descriptor column (``column``, the first by
default), its sign fitted on the training configurations' A particles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.config import ConfigError
from glasspipe.io.atomic import write_json
from glasspipe.io.tables import write_table
from glasspipe.plugins import TRAIN_LOG, ModelSpec, register_model

SETTINGS = {
    "column": {"type": "integer", "minimum": 0, "default": 0, "description": "the descriptor column it reads"},
    "scale": {"type": "number", "default": 2.0, "description": "factor on the column (Pearson ignores it)"},
}


def check(config: dict) -> None:
    """Cross-key: the toy reads the radial descriptors, so 'structure.sets' must compute them."""
    if config["models"].get("toy", {}).get("enabled") and "radial" not in config["structure"]["sets"]:
        raise ConfigError("config key 'models.toy.enabled' needs the descriptor set 'radial' in 'structure.sets'")


def train(train_samples, validation_samples, settings: dict, seed: int, out_dir: Path) -> None:
    own = settings["models"]["toy"]
    x = np.concatenate([s.descriptors[s.typeid == 0, own["column"]] for s in train_samples])
    y = np.concatenate([s.targets[s.typeid == 0] for s in train_samples])
    signs = [1.0 if np.dot(x - x.mean(), y[:, t] - y[:, t].mean()) >= 0 else -1.0 for t in range(y.shape[1])]
    out_dir = Path(out_dir)
    times = [float(t) for t in train_samples[0].times]
    write_json(out_dir / "model.json", {"column": own["column"], "scale": own["scale"], "signs": signs, "times": times})
    write_table(pd.DataFrame({"time": times, "sign": signs}), out_dir / TRAIN_LOG, metadata={"model": "toy"})


def predict(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    model = json.loads((Path(model_dir) / "model.json").read_text())
    factors = model["scale"] * np.asarray(model["signs"])
    return [(np.asarray(model["times"]), np.outer(s.descriptors[:, model["column"]], factors)) for s in samples]


SPEC = register_model(
    ModelSpec(
        "toy",
        "descriptors",
        gpu=False,
        threads=1,
        train=train,
        predict=predict,
        description="toy: one descriptor column, signed",
        settings=SETTINGS,
        enabled=False,
        loss_weighting=False,
        check=check,
    )
)
