"""Choose se3's settings on BOTAN without touching a test configuration: train on one fold's training
configurations and print the Pearson correlation on that fold's validation configurations, epoch by epoch.

Usage (after `snakemake --cores all --configfile configs/botan_T0.44.yaml`, which writes the inherent
structures and labels into results-botan/):
    OMP_NUM_THREADS=1 python benchmarks/se3_botan_validation.py [--results results-botan] [--fold 0]
        [--config configs/botan_T0.44.yaml] [--set graph_norm=false --set epochs=12 ...] [--seed 1]

The settings are the config's ``models.se3`` with each ``--set key=value`` (a YAML value) on top; the split
is the config's cross-validation plan (fold 0: train 1, 2, 3, 4, 8, 9; validation 6, 7; its test
configurations 0 and 5 are never read). The choices of configs/botan_T0.44.yaml were made this way (docs/models.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
import torch
import yaml

import glasspipe.plugins_all  # noqa: F401  (the registries the config is validated against)
from glasspipe import config as cfg
from glasspipe import stages
from glasspipe.layout import Layout
from glasspipe.learn.models import se3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results-botan", help="results directory of the BOTAN config")
    parser.add_argument("--config", default="configs/botan_T0.44.yaml")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="models.se3 setting, key=value (YAML value)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = cfg.load_config(args.config)
    temperature = float(config["temperatures"][0])
    plan = cfg.split_plan(config)[args.fold]
    settings = {k: v for k, v in config["models"]["se3"].items() if k != "enabled"}
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = yaml.safe_load(value)
    settings["patience"] = None
    inputs = stages.model_input(config, "se3")
    layout = Layout(args.results)
    train = stages.load_samples(layout, temperature, plan["train"], inputs)
    validation = stages.load_samples(layout, temperature, plan["validation"], inputs)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        se3.train_se3(train, validation, settings, inputs["r_cut"], seed=args.seed, out_dir=out)
        log = pd.read_parquet(f"{out}/train_log.parquet")
    print(f"fold {args.fold}: train {plan['train']}, validation {plan['validation']}; settings {settings}")
    print("validation Pearson per epoch:", np.round(log["validation_pearson"].to_numpy(), 3).tolist())
    print(f"best {log['validation_pearson'].max():.3f}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
