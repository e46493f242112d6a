"""se3 against the Bapst GN on an existing demo run (CPU, minutes): same folds, same test configurations.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/se3_demo.py --results /work/main/results [--temperature 0.7]
        [--set channels=16 --set n_layers=3 --set epochs=15] [--out /tmp/se3_demo]

Reads the demo's configurations and labels with glasspipe's own loaders (a Layout on ``--results``, read
only), trains se3 on fold 0's train configurations (choosing its epoch on the validation ones), predicts the
test configurations and prints, per label time, the per-configuration mean Pearson on A particles of se3
beside that of every model already evaluated in ``--results`` (metrics/<model>.parquet).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--set", action="append", default=[], help="models.se3 setting, key=value (YAML value)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/se3_demo"))
    args = parser.parse_args()

    from glasspipe import stages
    from glasspipe.layout import Layout
    from glasspipe.learn.evaluate import correlations
    from glasspipe.learn.predict import predict
    from glasspipe.learn.se3 import train_se3

    layout = Layout(args.results)
    reference = json.loads((layout.model_dir(args.temperature, "bapst", 0) / stages.INPUT_FILE).read_text())
    settings = {"channels": 16, "n_layers": 3, "epochs": 15, "learning_rate": 1e-2, "device": "cpu"}
    for item in args.set:
        key, value = item.split("=", 1)
        settings[key] = yaml.safe_load(value)
    inputs = {k: reference[k] for k in ("inputs", "positions", "r_cut")}
    samples = {
        split: stages.load_samples(layout, args.temperature, reference[split], inputs)
        for split in ("train", "validation", "test")
    }
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_se3(samples["train"], samples["validation"], settings, float(inputs["r_cut"]), 0, args.out)
    wall = time.perf_counter() - started
    metrics = [correlations(predict("se3", args.out, samples["test"]), "se3")]
    for path in sorted((layout.tdir(args.temperature) / "metrics").glob("*.parquet")):
        metrics.append(pd.read_parquet(path))
    table = pd.concat(metrics, ignore_index=True)
    table = table[(table["type"] == "A") & (table["scope"] == "configuration")]
    mean = table.groupby(["time", "model"])["pearson"].mean().unstack("model")
    hparams = json.loads((args.out / "hparams.json").read_text())
    print(
        f"se3 {settings}: {hparams['n_parameters']} parameters, {hparams['epochs']} epochs "
        f"(best {hparams['best_epoch']}) in {wall:.0f} s; test configurations {reference['test']}"
    )
    print("per-configuration mean Pearson, A particles, test configurations:")
    print(mean.round(3).to_string())
    print("mean over times:", mean.mean().round(3).to_dict())
    print("se3 above bapst at", int(np.sum(mean["se3"] > mean.get("bapst", -np.inf))), "of", len(mean), "times")


if __name__ == "__main__":
    main()
