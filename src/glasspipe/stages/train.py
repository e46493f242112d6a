"""The train stage: one model on one fold of the split plan at one temperature."""

from __future__ import annotations

import zlib

from glasspipe import config as cfg
from glasspipe.io.atomic import write_json
from glasspipe.learn.inputs import INPUT_FILE, load_samples, model_input
from glasspipe.seeds import derive_seed


def train(settings: dict, model: str, temperature: float, fold: int, layout) -> None:
    """Train ``model`` on fold ``fold`` of the split plan (glasspipe.config.split_plan): fit on its train
    configurations, choose on its validation configurations; the test configurations are not read.

    Writes the model directory ``layout.model_dir(temperature, model, fold)``: input.json (what the model
    reads), the model's own files and, last, train_log.parquet.
    """
    from glasspipe.learn.registry import get
    from glasspipe.md.protocols import temperature_key

    config = cfg.fill_defaults(settings)
    plan = cfg.split_plan(config)
    if not 0 <= fold < len(plan):
        raise ValueError(f"fold {fold} does not exist: the split plan has {len(plan)} fold(s)")
    spec = get(cfg.run_model(model))
    inputs = model_input(config, model)
    data = {split: load_samples(layout, temperature, plan[fold][split], inputs) for split in ("train", "validation")}
    out_dir = layout.model_dir(temperature, model, fold)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / INPUT_FILE, {**inputs, "fold": fold, **{k: v for k, v in plan[fold].items()}})
    # The model's name enters the seed through a stable hash: models never share a random stream.
    seed = derive_seed(config["seed"], "train", zlib.crc32(model.encode()), temperature_key(temperature), fold)
    spec.train(data["train"], data["validation"], config, seed, out_dir)
