"""The learning-curve stages: a model retrained on the first n training configurations of a fold
(:func:`train`), and every size's models tested beside the full model (:func:`evaluate`). The config section,
its checks, the first-n split and the report's tables: glasspipe.learn.learning_curve."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pandas as pd

from glasspipe import config as cfg
from glasspipe.learn.learning_curve import first_configurations, sizes
from glasspipe.stages.common import nested


def train(settings: dict, run: str, temperature: float, n_train: int, fold: int, layout) -> Path:
    """Fit ``run`` on the first ``n_train`` training configurations of fold ``fold`` at ``temperature``
    (validation as for the full model) with the registry's trainer. Writes
    ``layout.learning_curve_model_dir(temperature, run, n_train, fold)`` (input.json, the model's files,
    train_log.parquet last) and returns it."""
    from glasspipe.io.atomic import write_json
    from glasspipe.learn.inputs import INPUT_FILE, load_samples, model_input
    from glasspipe.learn.registry import get
    from glasspipe.md.protocols import temperature_key
    from glasspipe.seeds import derive_seed

    config = cfg.fill_defaults(nested(settings))
    split = first_configurations(cfg.split_plan(config), fold, n_train)
    inputs = model_input(config, run)
    data = {name: load_samples(layout, temperature, split[name], inputs) for name in ("train", "validation")}
    out_dir = layout.learning_curve_model_dir(temperature, run, n_train, fold)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / INPUT_FILE, {**inputs, "fold": fold, "n_train": n_train, **split})
    seed = derive_seed(
        config["seed"], "learning_curve", zlib.crc32(run.encode()), temperature_key(temperature), fold, n_train
    )
    get(cfg.run_model(run)).train(data["train"], data["validation"], config, seed, out_dir)
    return out_dir


def evaluate(settings: dict, run: str, temperature: float, layout) -> pd.DataFrame:
    """Predict every fold's test configurations with the models of every n of learning_curve.sizes and with
    the full model, and correlate. Writes ``layout.learning_curve_metrics(temperature, run)`` and returns it:
    the columns of glasspipe.learn.evaluate.correlations plus ``n_train`` (training configurations per fold;
    the full model's is the smallest fold's), ``full`` (True for the full model), ``temperature``, ``label``
    and ``run``."""
    from glasspipe.io.tables import write_table
    from glasspipe.learn.evaluate import correlations
    from glasspipe.learn.inputs import INPUT_FILE, load_samples
    from glasspipe.learn.predict import predict

    config = cfg.fill_defaults(nested(settings))
    plan = cfg.split_plan(config)
    model = cfg.run_model(run)
    n_full = min(len(fold["train"]) for fold in plan)
    points = [(n, False) for n in sizes(config)] + [(n_full, True)]
    tables = []
    label = None
    for n_train, full in points:
        predictions = []
        for fold, split in enumerate(plan):
            if full:
                model_dir = layout.model_dir(temperature, run, fold)
            else:
                model_dir = layout.learning_curve_model_dir(temperature, run, n_train, fold)
            inputs = json.loads((model_dir / INPUT_FILE).read_text())
            label = inputs.get("target", "propensity")
            samples = load_samples(layout, temperature, split["test"], inputs)
            predictions.append(predict(model, model_dir, samples))
        rows = correlations(pd.concat(predictions, ignore_index=True), model)
        rows.insert(1, "n_train", n_train)
        rows.insert(2, "full", full)
        rows.insert(3, "temperature", float(temperature))
        tables.append(rows)
    metrics = pd.concat(tables, ignore_index=True)
    metrics["label"] = label
    metrics["run"] = run
    meta = {"stage": "learning_curve", "run": run, "settings": config, "folds": plan}
    write_table(metrics, layout.learning_curve_metrics(temperature, run), metadata=meta)
    return metrics
