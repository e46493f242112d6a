"""Ridge regression on the per-particle descriptors (implementation: glasspipe.learn.models.ridge)."""

from __future__ import annotations

from pathlib import Path

from glasspipe.plugins import Lazy, ModelSpec, register_model

# The model's own settings; each default is declared here and nowhere else.
SETTINGS = {
    "alphas": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "number", "exclusiveMinimum": 0},
        "default": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0],
        "description": "ridge penalties tried; the one with the best validation correlation is kept",
    },
}


_train_ridge = Lazy("glasspipe.learn.models.ridge:train_ridge")


def train(train_samples, validation_samples, settings: dict, seed: int, out_dir: Path) -> None:
    _train_ridge(train_samples, validation_samples, settings["models"]["ridge"], out_dir)


SPEC = register_model(
    ModelSpec(
        "ridge",
        "descriptors",
        gpu=False,
        threads=1,
        train=train,
        predict="glasspipe.learn.models.ridge:predict_ridge",
        description="ridge regression on the descriptors, penalty chosen on the validation configurations",
        settings=SETTINGS,
        loss_weighting_after="alphas",
    )
)
