"""GlassMLP-style bottleneck MLP on the per-particle descriptors (implementation: glasspipe.learn.models.mlp)."""

from __future__ import annotations

from pathlib import Path

from glasspipe.plugins import PATIENCE_OFF_SCHEMA, Lazy, ModelSpec, register_model

# The model's own settings; each default is declared here and nowhere else.
SETTINGS = {
    "encoder_sizes": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "default": [10],
        "description": "widths of the ELU layers before the bottleneck",
    },
    "bottleneck": {
        "type": "integer",
        "minimum": 1,
        "default": 2,
        "description": "width of the linear bottleneck layer",
    },
    "decoder_sizes": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "default": [10],
        "description": "widths of the ELU layers after the bottleneck",
    },
    "multi_time_head": {
        "type": "boolean",
        "default": True,
        "description": "one network with one output per label time (as GlassMLP); false trains one per time",
    },
    "learning_rate": {"type": "number", "exclusiveMinimum": 0, "default": 0.001},
    "weight_decay": {"type": "number", "minimum": 0, "default": 0.0},
    "batch_size": {"type": "integer", "minimum": 1, "default": 256, "description": "A particles per Adam step"},
    "epochs": {
        "type": "integer",
        "minimum": 1,
        "default": 100,
        "description": "passes over the training A particles; the best validation epoch is kept",
    },
    "patience": PATIENCE_OFF_SCHEMA,
}

DESCRIPTION = (
    "GlassMLP-style bottleneck MLP (Jung, Biroli, Berthier, PRL 130, 238202 (2023)) on the "
    "per-particle descriptors (standardised), MSE on standardised targets of the A particles\n"
)


_train_mlp = Lazy("glasspipe.learn.models.mlp:train_mlp")


def train(train_samples, validation_samples, settings: dict, seed: int, out_dir: Path) -> None:
    _train_mlp(train_samples, validation_samples, settings["models"]["mlp"], seed, out_dir)


SPEC = register_model(
    ModelSpec(
        "mlp",
        "descriptors",
        gpu=False,
        threads=2,
        train=train,
        predict="glasspipe.learn.models.mlp:predict_mlp_samples",
        description="GlassMLP-style multilayer perceptron with a bottleneck on the descriptors",
        settings=SETTINGS,
        # Early stopping came later: None (never) is the default, kept out of the schema (see PATIENCE_OFF_SCHEMA).
        extra_defaults={"patience": None},
        section_description=DESCRIPTION,
    )
)
