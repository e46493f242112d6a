"""se3 against the Bapst GN on an existing demo run (CPU, minutes): same folds, same test configurations.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/se3_demo.py --results /work/main/results [--temperature 0.7]
        [--set channels=16 --set n_layers=3 --set epochs=15] [--out /tmp/se3_demo]
        [--held-out 1.15 [--held-out ...]] [--film-all]
        [--variant NAME key=value [key=value ...]] [--skip-base] [--reuse] [--seed 0]

Reads the demo's configurations and labels with glasspipe's own loaders (a Layout on ``--results``, read
only), trains se3 on fold 0's train configurations (choosing its epoch on the validation ones), predicts the
test configurations and prints, per label time, the per-configuration mean Pearson on A particles of se3
beside that of every model already evaluated in ``--results`` (metrics/<model>.parquet).

With ``--held-out TIME`` (issue 9: "the time-conditioned decoder predicts a held-out label time within 0.05
of the per-time model's correlation") it trains two models with the same settings: ``se3`` (per-time heads,
every label time) and ``se3_film_heldout`` (decoder film, trained and epoch-chosen without TIME), and prints
both, the held-out times marked, and the difference at each held-out time; ``--film-all`` adds a film model
trained on every time (``se3_film``), which separates the cost of the decoder from that of holding out;
``--variant NAME key=value ...`` (repeatable) trains one more se3 beside the base one, with the base settings
plus those (e.g. ``--variant se3_norms decoder_invariants=scalars_and_norms``), in ``--out/NAME``;
``--skip-base`` leaves out the base ``se3`` (to train variants in parallel processes on one ``--out``).
``--reuse`` keeps a model already in ``--out`` when it was trained with exactly the same settings (the
script writes them to ``demo_settings.json`` beside the model), so a last call with ``--reuse`` and every
variant prints them side by side without training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def smoothing(predictions: pd.DataFrame, samples, r_cut: float) -> pd.DataFrame:
    """Over-smoothing of a model's predictions, per label time (mean over test configurations, A particles):
    std(prediction) / std(label) and <local variance of the prediction> / <that of the label> over each
    particle's graph neighbourhood (glasspipe.learn.training.aux_losses.local_variance; 1 = as rough as the label)."""
    import torch

    from glasspipe.learn.graphs import build_graph
    from glasspipe.learn.training.aux_losses import local_variance

    rows = []
    for sample in samples:
        table = predictions[predictions["configuration"] == sample.configuration]
        times = np.sort(table["time"].unique())
        wide = table.pivot(index="particle", columns="time", values="prediction").loc[:, times].to_numpy()
        a = torch.as_tensor(sample.typeid == 0)
        g = build_graph(sample, r_cut)
        p, t = torch.as_tensor(wide), torch.as_tensor(sample.targets)
        std = (p[a].std(0) / t[a].std(0)).numpy()
        lv_p = local_variance(p, g.senders, g.receivers, a)[a].mean(0)
        lv_t = local_variance(t, g.senders, g.receivers, a)[a].mean(0)
        rows += [
            {"time": tau, "std_ratio": x, "local_variance_ratio": y}
            for tau, x, y in zip(times, std, (lv_p / lv_t).numpy(), strict=True)
        ]
    return pd.DataFrame(rows).groupby("time").mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--set", action="append", default=[], help="models.se3 setting, key=value (YAML value)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/se3_demo"))
    parser.add_argument("--held-out", type=float, action="append", default=[], help="label time (tau) to hold out")
    parser.add_argument("--film-all", action="store_true", help="with --held-out: also a film model on all times")
    parser.add_argument("--reuse", action="store_true", help="keep a model already trained in --out (same settings)")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME key=value",
        help="one more se3 with the base settings plus these (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed of every se3 trained here")
    parser.add_argument("--skip-base", action="store_true", help="train and show only the variants")
    args = parser.parse_args()

    from glasspipe import stages
    from glasspipe.layout import Layout
    from glasspipe.learn.evaluate import correlations, held_out_times, mark_held_out
    from glasspipe.learn.models.se3 import train_se3
    from glasspipe.learn.predict import predict

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
    runs = {"se3": settings}
    if args.held_out:
        runs = {"se3": {**settings, "decoder": "per_time"}}
        if args.film_all:
            runs["se3_film"] = {**settings, "decoder": "film"}
        runs["se3_film_heldout"] = {**settings, "decoder": "film", "held_out_times": args.held_out}
    if args.skip_base:
        runs = {}
    for name, *items in args.variant:
        if name in runs or "=" in name:
            raise SystemExit(f"--variant {name}: give a new model name first, then key=value settings")
        runs[name] = {**settings, **{k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}}
    if not runs:
        raise SystemExit("nothing to train: --skip-base without --variant")
    metrics, lines, rough = [], [], {}
    for name, run_settings in runs.items():
        # The held-out model's folder names its times, so that runs holding out other times sit side by side.
        folder = name if name != "se3_film_heldout" else "se3_film_without_" + "_".join(f"{t:g}" for t in args.held_out)
        out = args.out / folder
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        stored_path = out / "demo_settings.json"
        stored = json.loads(stored_path.read_text()) if stored_path.is_file() else None
        wanted = json.loads(json.dumps({**run_settings, "seed": args.seed}))
        reused = args.reuse and (out / "train_log.parquet").is_file() and stored == wanted
        if not reused:
            stored_path.unlink(missing_ok=True)
            train_se3(samples["train"], samples["validation"], run_settings, float(inputs["r_cut"]), args.seed, out)
            stored_path.write_text(json.dumps(wanted, indent=1))
        wall = time.perf_counter() - started
        predictions = predict("se3", out, samples["test"])
        table = correlations(predictions, name)
        metrics.append(mark_held_out(table, held_out_times(out)))
        rough[name] = smoothing(predictions, samples["test"], float(inputs["r_cut"]))
        hparams = json.loads((out / "hparams.json").read_text())
        lines.append(
            f"{name} {run_settings}: {hparams['n_parameters']} parameters, {hparams['epochs']} epochs "
            f"(best {hparams['best_epoch']}) in {hparams['wall_s']:.0f} s of training"
            + (" (reused)" if reused else f", {wall:.0f} s with prediction")
        )
    for path in sorted((layout.tdir(args.temperature) / "metrics").glob("*.parquet")):
        metrics.append(pd.read_parquet(path))
    table = pd.concat(metrics, ignore_index=True)
    # Fold 0's test configurations only: the other models' metrics hold every fold's test configurations.
    table = table[(table["type"] == "A") & (table["scope"] == "configuration")]
    table = table[table["configuration"].isin(reference["test"])]
    # Runs on other labels (metrics/bapst.bond_breaking.parquet has model 'bapst' too) are not comparable.
    if "label" in table:
        table = table[table["label"].fillna("propensity") == "propensity"]
    mean = table.groupby(["time", "model"])["pearson"].mean().unstack("model")
    sem = table.groupby(["time", "model"])["pearson"].sem().unstack("model")
    print("\n".join(lines))
    print(f"test configurations {reference['test']}, train {reference['train']}, validation {reference['validation']}")
    print("per-configuration mean Pearson, A particles, test configurations:")
    shown = mean.round(3).astype(str) + " ± " + sem.round(3).astype(str)
    if args.held_out:
        held = np.isclose(mean.index.to_numpy()[:, None], np.asarray(args.held_out)[None, :], rtol=1e-3).any(axis=1)
        shown.index = [f"{t:g}{' (held out)' if h else ''}" for t, h in zip(mean.index, held, strict=True)]
    print(shown.to_string())
    print("mean over times:", mean.mean().round(3).to_dict())
    print("over-smoothing (1 = as rough as the label): std(prediction)/std(label), local variance ratio")
    print(pd.concat(rough, axis=1).round(3).to_string())
    for name in runs:
        print(name, "above bapst at", int(np.sum(mean[name] > mean.get("bapst", -np.inf))), "of", len(mean), "times")
    for t in args.held_out:
        row = mean.iloc[int(np.argmin(np.abs(np.log(mean.index.to_numpy() / t))))]
        print(
            f"held-out t = {t:g}: per-time se3 {row['se3']:.3f}, film se3 without it {row['se3_film_heldout']:.3f} "
            f"(difference {row['se3_film_heldout'] - row['se3']:+.3f}; issue 9 asks > -0.05)"
            + (f", film on all times {row['se3_film']:.3f}" if "se3_film" in row else "")
        )


if __name__ == "__main__":
    main()
