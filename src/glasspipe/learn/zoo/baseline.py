"""Single-descriptor sanity row: one descriptor column alone predicts the label (implementation:
glasspipe.learn.models.baseline)."""

from __future__ import annotations

from pathlib import Path

from glasspipe.config import ConfigError
from glasspipe.plugins import Lazy, ModelSpec, register_model

# The model's own settings; each default is declared here and nowhere else.
SETTINGS = {
    "feature": {
        "type": "string",
        "minLength": 1,
        "default": "glassmlp:E",
        "description": "the descriptor column, '<set>:<feature>' (glassmlp:E is the potential energy per "
        "particle, of the inherent structure when structure.input is inherent; GlassBench "
        "quotes 0.507 pooled at T = 0.44)\n",
    },
}

DESCRIPTION = (
    "single-descriptor sanity row: the label predicted by one descriptor column alone (a "
    "least-squares line per label time; Pearson's r does not depend on the line)\n"
)


_train_baseline = Lazy("glasspipe.learn.models.baseline:train_baseline")


def train(train_samples, validation_samples, settings: dict, seed: int, out_dir: Path) -> None:
    _train_baseline(train_samples, validation_samples, settings["models"]["baseline"], out_dir)


def check(config: dict) -> None:
    """models.baseline.feature must name a column of a descriptor set the structure stage computes."""
    baseline = config["models"].get("baseline", {})
    if baseline.get("enabled"):
        set_name = baseline["feature"].split(":", 1)[0]
        if set_name not in config["structure"]["sets"]:
            raise ConfigError(
                f"config key 'models.baseline.feature' = {baseline['feature']!r} needs the descriptor set "
                f"{set_name!r} in 'structure.sets' (now {sorted(config['structure']['sets'])})"
            )


SPEC = register_model(
    ModelSpec(
        "baseline",
        "descriptors",
        gpu=False,
        threads=1,
        train=train,
        predict="glasspipe.learn.models.baseline:predict_baseline_samples",
        description="one descriptor column alone (e.g. the inherent-state energy): a sanity row",
        settings=SETTINGS,
        enabled=False,
        loss_weighting=False,
        section_description=DESCRIPTION,
        check=check,
    )
)
