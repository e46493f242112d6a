"""The evaluate stage: every fold's test configurations predicted by that fold's model, and correlated."""

from __future__ import annotations

import pandas as pd

from glasspipe import config as cfg
from glasspipe.io.tables import write_table
from glasspipe.learn.inputs import INPUT_FILE, load_samples
from glasspipe.stages.common import metadata


def evaluate(settings: dict, model: str, temperature: float, layout) -> pd.DataFrame:
    """Predict every fold's test configurations with that fold's model; write the predictions (with a
    ``fold`` column) and the Pearson correlations (Parquet) of ``model`` at ``temperature``. Also the
    correlations on every fold's validation configurations (layout.validation_metrics), where settings are
    compared; each (fold, configuration) there is one sample, since a configuration can validate several folds."""
    from glasspipe.learn.evaluate import correlations, held_out_times, mark_held_out

    config = cfg.fill_defaults(settings)
    plan = cfg.split_plan(config)
    tables, inputs = fold_predictions(plan, "test", model, temperature, layout)
    predictions = pd.concat(tables, ignore_index=True)
    # The model column names the model (ridge), the label column what it learnt: a run 'ridge.bond_breaking'
    # is the row (ridge, bond_breaking) of the report's tables.
    metrics = correlations(predictions, cfg.run_model(model))
    metrics.insert(1, "temperature", float(temperature))
    # Label times a fold's model was trained without (a time-conditioned decoder's held_out_times).
    held = {t for fold in range(len(plan)) for t in held_out_times(layout.model_dir(temperature, model, fold))}
    metrics = mark_held_out(metrics, sorted(held))
    metrics["label"] = inputs.get("target", "propensity")  # the label the model learnt (the last fold's: all agree)
    validation = validation_correlations(plan, model, temperature, layout)
    validation["label"] = inputs.get("target", "propensity")
    meta = metadata("evaluate", settings, model=model, folds=plan)
    write_table(predictions, layout.predictions(temperature, model), metadata=meta)
    write_table(validation, layout.validation_metrics(temperature, model), metadata=meta)
    write_table(metrics, layout.metrics(temperature, model), metadata=meta)
    return metrics


def fold_predictions(plan: list[dict], role: str, model: str, temperature: float, layout):
    """Each fold's model's predictions (learn.predict.predict) on that fold's ``role`` configurations ('test'
    or 'validation'), one table per fold with a leading ``fold`` column; and the last fold's model input
    (input.json: what the model reads, its label)."""
    import json

    from glasspipe.learn.predict import predict

    tables, inputs = [], {}
    for fold, split in enumerate(plan):
        model_dir = layout.model_dir(temperature, model, fold)
        inputs = json.loads((model_dir / INPUT_FILE).read_text())
        samples = load_samples(layout, temperature, split.get(role, []), inputs)
        table = predict(cfg.run_model(model), model_dir, samples)
        table.insert(0, "fold", fold)
        tables.append(table)
    return tables, inputs


def validation_correlations(plan: list[dict], model: str, temperature: float, layout) -> pd.DataFrame:
    """The correlations (learn.evaluate.correlations) of each fold's model on that fold's validation
    configurations, one block per fold with a leading ``fold`` column (empty when no fold has any)."""
    from glasspipe.learn.evaluate import CORRELATION_COLUMNS, correlations

    tables = []
    for table in fold_predictions(plan, "validation", model, temperature, layout)[0]:
        if table.empty:
            continue
        block = correlations(table, cfg.run_model(model))
        block.insert(0, "fold", int(table["fold"].iloc[0]))
        tables.append(block)
    if not tables:
        return pd.DataFrame(columns=["fold", *CORRELATION_COLUMNS]).astype({"fold": "int64"})
    validation = pd.concat(tables, ignore_index=True)
    validation.insert(2, "temperature", float(temperature))
    return validation
