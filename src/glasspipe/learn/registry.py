"""The models glasspipe can train: the names the learning code has always used, now kept by the ground-floor
registry (:mod:`glasspipe.plugins`).

Each model is one module of :mod:`glasspipe.learn.zoo` that declares its settings (schema and defaults), its
cross-key check and its train / predict callables, and registers itself; :mod:`glasspipe.plugins_all` imports
them. The workflow (one ``train`` rule with a ``{model}`` wildcard), the config (``models.<name>`` sections),
the CLI and the evaluation all take the list from :data:`MODELS`. Prediction goes through
:func:`glasspipe.learn.predict.predict`.

This module holds also :func:`read_hparams`, shared by the networks' loaders.
"""

from __future__ import annotations

import json
from pathlib import Path

from glasspipe.plugins import MODELS, TRAIN_LOG, ModelSpec, model, register_model

__all__ = ["MODELS", "TRAIN_LOG", "ModelSpec", "get", "read_hparams", "register"]

register = register_model
get = model


def read_hparams(model_dir: Path, name: str) -> dict:
    """hparams.json of a model saved as weights (model.pt) plus hyper-parameters; both must exist."""
    model_dir = Path(model_dir)
    hparams_path, weights_path = model_dir / "hparams.json", model_dir / "model.pt"
    for path in (hparams_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; train the {name} model first")
    return json.loads(hparams_path.read_text())
