"""The transfer stages: a model trained on the pooled configurations of the transfer.train temperatures
(:func:`train`) and tested at each transfer.test temperature beside the model trained there (:func:`evaluate`).
The config section, its checks, the label-time matching and the report's tables: glasspipe.learn.transfer."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe import config as cfg
from glasspipe.learn.transfer import IN_TEMPERATURE, TRANSFER, align, config_grid, time_basis, to_grid
from glasspipe.stages.common import nested


def train(settings: dict, run: str, layout) -> Path:
    """Fit ``run`` on the pooled train configurations of the transfer.train temperatures, choosing on their
    pooled validation configurations; the test configurations are not read. Returns the model directory
    ``layout.transfer_model_dir(run)`` (input.json, the model's files, train_log.parquet last)."""
    from glasspipe.io.atomic import write_json
    from glasspipe.learn.inputs import INPUT_FILE, load_samples, model_input
    from glasspipe.learn.registry import get
    from glasspipe.md.protocols import temperature_key
    from glasspipe.seeds import derive_seed

    config = cfg.fill_defaults(nested(settings))
    temperatures = [float(T) for T in config["transfer"]["train"]]
    plan = cfg.split_plan(config)[0]
    common = config_grid(config, temperatures)
    inputs = model_input(config, run)
    data: dict[str, list] = {"train": [], "validation": []}
    for T in temperatures:
        for split in data:
            data[split] += align(load_samples(layout, T, plan[split], inputs), T, config, common)
    out_dir = layout.transfer_model_dir(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        **inputs,
        "train_temperatures": temperatures,
        "time_basis": time_basis(config),
        "times": common.tolist(),
        **plan,
    }
    write_json(out_dir / INPUT_FILE, record)
    keys = [temperature_key(T) for T in sorted(temperatures)]
    seed = derive_seed(config["seed"], "transfer", zlib.crc32(run.encode()), *keys)
    get(cfg.run_model(run)).train(data["train"], data["validation"], config, seed, out_dir)
    return out_dir


def _ceiling(layout, temperature: float, configurations: list[int], label: str, times_tau, common) -> np.ndarray:
    """Mean noise ceiling of ``label`` over ``configurations`` at each label time, on the common grid (NaN
    where the labels store none)."""
    from glasspipe.report.summary import mean_ceiling, noise_ceilings

    paths = [layout.labels(temperature, c) for c in configurations]
    table = mean_ceiling(noise_ceilings(paths, label), configurations)
    out = np.full(len(common), np.nan)
    for k, t in enumerate(times_tau):
        match = table[np.isclose(table["time"], t, rtol=1e-9, atol=0)]
        if len(match):
            out[k] = float(match["ceiling"].iloc[0])
    return out


def evaluate(settings: dict, run: str, layout) -> pd.DataFrame:
    """Predict the test configurations of each transfer.test temperature with the transfer model and with
    the model trained at that temperature (fold 0), and correlate. Writes ``layout.transfer_predictions(run)``
    and ``layout.transfer_metrics(run)`` and returns the metrics.

    Metrics columns: those of glasspipe.learn.evaluate.correlations plus ``scheme`` ('transfer' or
    'in_temperature'), ``trained_at`` (the training temperatures, e.g. '0.7, 0.8'), ``temperature`` (the test
    temperature), ``time`` (the common grid, in ``time_unit``: tau or tau_alpha), ``time_tau`` (tau at the
    test temperature), ``label`` and ``noise_ceiling`` (mean over the test configurations)."""
    from glasspipe.io.tables import write_table
    from glasspipe.learn.evaluate import correlations
    from glasspipe.learn.inputs import INPUT_FILE, load_samples
    from glasspipe.learn.predict import predict

    config = cfg.fill_defaults(nested(settings))
    part = config["transfer"]
    train_temperatures = [float(T) for T in part["train"]]
    plan = cfg.split_plan(config)[0]
    model = cfg.run_model(run)
    model_dir = layout.transfer_model_dir(run)
    record = json.loads((model_dir / INPUT_FILE).read_text())
    common = np.asarray(record["times"], dtype=np.float64)
    if record["train_temperatures"] != train_temperatures:
        raise ValueError(
            f"{model_dir} was trained at T = {record['train_temperatures']} but 'transfer.train' is "
            f"{train_temperatures}; rerun the transfer training"
        )
    label = record.get("target", "propensity")
    trained_at = ", ".join(f"{T:g}" for T in train_temperatures)
    predictions, metrics = [], []
    for T in (float(t) for t in part["test"]):
        samples = load_samples(layout, T, plan["test"], record)
        aligned = align(samples, T, config, common)
        times_tau = samples[0].times
        own_dir = layout.model_dir(T, run, 0)
        own_record = json.loads((own_dir / INPUT_FILE).read_text())
        if own_record.get("target", "propensity") != label:
            raise ValueError(f"{own_dir} learnt {own_record.get('target')!r}, the transfer model {label!r}")
        schemes = {
            TRANSFER: (predict(model, model_dir, aligned), trained_at),
            IN_TEMPERATURE: (predict(model, own_dir, samples), f"{T:g}"),
        }
        ceiling = dict(zip(common.tolist(), _ceiling(layout, T, plan["test"], label, times_tau, common), strict=True))
        for scheme, (table, at) in schemes.items():
            if scheme == IN_TEMPERATURE:
                table["time"] = to_grid(table["time"], times_tau, common)
            table.insert(0, "scheme", scheme)
            table.insert(1, "temperature", T)
            predictions.append(table)
            rows = correlations(table, model)
            rows.insert(1, "scheme", scheme)
            rows.insert(2, "trained_at", at)
            rows.insert(3, "temperature", T)
            rows["time_tau"] = to_grid(rows["time"], common, times_tau)
            rows["time_unit"] = record.get("time_basis", time_basis(config))
            rows["label"] = label
            rows["run"] = run
            rows["noise_ceiling"] = rows["time"].map(ceiling)
            metrics.append(rows)
    metrics_table = pd.concat(metrics, ignore_index=True)
    meta = {"stage": "transfer", "run": run, "settings": config, "split": plan}
    write_table(pd.concat(predictions, ignore_index=True), layout.transfer_predictions(run), metadata=meta)
    write_table(metrics_table, layout.transfer_metrics(run), metadata=meta)
    return metrics_table
