"""Learning curves: the test correlation of each model against the number of training configurations.

Config section ``learning_curve`` (``sizes``, ``models``, ``time``). For every model run named (or every
enabled run), temperature, fold and n of ``sizes``, the stage ``train`` (glasspipe.stages.learning_curve)
fits the run on the *first n* training configurations of the fold (the split plan's order), choosing on the
fold's validation configurations as the full model does, through the model registry (the same trainer as the
``train`` rule). The stage ``evaluate`` predicts every fold's test configurations with each of those models
and with the full model of the ``train`` rule (the curve's last point, n = the fold's training set) and
writes one table of Pearson correlations with an ``n_train`` column.
The report draws r against n per model at one label time, with the noise ceiling.

Sizes must be smaller than every fold's training set: the full size is the per-temperature model itself,
which is not trained twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glasspipe import config as cfg
from glasspipe import plugins
from glasspipe.statistics import mean_sem


# ----------------------------------------------------------------------------- config
def section(config: dict) -> dict:
    return config.get("learning_curve") or {}


def sizes(config: dict) -> list[int]:
    """The numbers of training configurations of the curve (without the full training set), ascending."""
    return sorted(int(n) for n in section(config).get("sizes") or [])


def runs(config: dict) -> list[str]:
    """The model runs of the learning curve: ``learning_curve.models``, or every enabled run; empty when off."""
    if not sizes(config):
        return []
    named = section(config).get("models") or []
    return list(named) if named else cfg.model_runs(config)


@plugins.register_check  # run by glasspipe.config.validate_config
def check_config(config: dict) -> None:
    """Refuse a learning_curve section glasspipe cannot run, naming the key (called by validate_config):
    models must be enabled runs, and every size smaller than every fold's training set."""
    part = section(config)
    if not part.get("sizes"):
        if part.get("models"):
            raise cfg.ConfigError(
                "config key 'learning_curve.models' is set but 'learning_curve.sizes' is empty; give the numbers "
                "of training configurations, e.g. sizes: [1, 2]"
            )
        return
    enabled_runs = cfg.model_runs(config)
    if not enabled_runs:
        raise cfg.ConfigError("config section 'learning_curve' is set but no model is enabled under 'models'")
    for name in part.get("models") or []:
        if name not in enabled_runs:
            raise cfg.ConfigError(
                f"config key 'learning_curve.models' names {name!r}, which is not an enabled model run; enabled: "
                f"{enabled_runs}"
            )
    smallest = min(len(fold["train"]) for fold in cfg.split_plan(config))
    too_big = [n for n in sizes(config) if n >= smallest]
    if too_big:
        raise cfg.ConfigError(
            f"config key 'learning_curve.sizes' holds {too_big}, not smaller than the {smallest} training "
            "configurations of a fold; the full training set is the curve's last point already (the model of the "
            "'train' rule), so give only smaller sizes"
        )


def train_settings(config: dict, run: str) -> dict:
    """What a learning-curve training job reads: exactly the full model's training settings (n and the fold
    are in the job's wildcards), so it reruns when they change."""
    return cfg.stage_settings(config, f"train_{run}")


def evaluate_settings(config: dict, run: str) -> dict:
    settings = cfg.stage_settings(config, "evaluate")
    settings["learning_curve.sizes"] = sizes(config)
    return settings


# ----------------------------------------------------------------------------- stages
def first_configurations(plan: list[dict], fold: int, n_train: int) -> dict[str, list[int]]:
    """Fold ``fold`` of the plan with its training set cut to its first ``n_train`` configurations
    (validation and test unchanged). Raises ValueError for n_train < 1 or beyond the training set."""
    if not 0 <= fold < len(plan):
        raise ValueError(f"fold {fold} does not exist: the split plan has {len(plan)} fold(s)")
    split = plan[fold]
    if not 1 <= n_train <= len(split["train"]):
        raise ValueError(f"n_train = {n_train} is not between 1 and the {len(split['train'])} training configurations")
    return {
        "train": list(split["train"][:n_train]),
        "validation": list(split["validation"]),
        "test": list(split["test"]),
    }


# ----------------------------------------------------------------------------- report
def curve_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (run, temperature, time, n_train): mean ± s.e.m. over test configurations of the per-configuration
    Pearson (A particles), and the pooled Pearson. Columns: run, model, label, temperature, time, n_train,
    full, mean_pearson, sem_pearson, pooled_pearson, n_configurations."""
    a = metrics[metrics["type"] == "A"]
    keys = ["run", "model", "label", "temperature", "time", "n_train", "full"]
    per = a[a["scope"] == "configuration"].groupby(keys)["pearson"].agg(["mean", "sem", "count"])
    pooled = a[a["scope"] == "pooled"].set_index(keys)["pearson"]
    out = per.rename(columns={"mean": "mean_pearson", "sem": "sem_pearson", "count": "n_configurations"})
    out["pooled_pearson"] = pooled.reindex(out.index)
    return out.reset_index()


def doubling_gains(metrics: pd.DataFrame) -> pd.DataFrame:
    """How much the test correlation rises per doubling of the training set, between consecutive sizes.

    Input: the learning-curve metrics (the stage ``evaluate``'s table: one Pearson per model run, label,
    temperature, time, n_train, test configuration; A particles and scope 'configuration' are used). For each
    pair of consecutive sizes n_from < n_to of a (run, label, temperature, time), per test configuration,
    (r(n_to) - r(n_from)) / log2(n_to / n_from), then mean ± s.e.m. over the configurations
    (glasspipe.statistics.mean_sem): paired by configuration, so the configurations' own spread, which moves
    every point of the curve together, cancels. These are the curve's local slopes against log2 n, not a
    forecast; a small step between sizes (10 against 8 is a third of a doubling) gives a wide error.

    Output columns: run, label, temperature, time, n_from, n_to, gain_per_doubling, sem_gain,
    n_configurations. Empty when no curve has two sizes."""
    a = metrics[(metrics["type"] == "A") & (metrics["scope"] == "configuration")]
    rows = []
    for (run, label, T, t), group in a.groupby(["run", "label", "temperature", "time"], sort=True):
        by_n = group.pivot_table(index="configuration", columns="n_train", values="pearson", aggfunc="first")
        sizes = sorted(int(n) for n in by_n.columns)
        for n_from, n_to in zip(sizes[:-1], sizes[1:], strict=True):
            paired = by_n[[n_from, n_to]].dropna()
            gain, sem = mean_sem((paired[n_to] - paired[n_from]) / np.log2(n_to / n_from))
            rows.append(
                {
                    "run": run,
                    "label": label,
                    "temperature": float(T),
                    "time": float(t),
                    "n_from": n_from,
                    "n_to": n_to,
                    "gain_per_doubling": gain,
                    "sem_gain": sem,
                    "n_configurations": len(paired),
                }
            )
    columns = [
        "run",
        "label",
        "temperature",
        "time",
        "n_from",
        "n_to",
        "gain_per_doubling",
        "sem_gain",
        "n_configurations",
    ]
    return pd.DataFrame(rows, columns=columns)


def figure_times(table: pd.DataFrame, time: float | None, tau_alpha: dict[float, float] | None) -> dict[float, float]:
    """The label time drawn per temperature: the one nearest ``time`` (tau); with None, nearest that
    temperature's tau_alpha (``tau_alpha``), else the last label time."""
    chosen = {}
    for T, group in table.groupby("temperature"):
        times = np.unique(group["time"].to_numpy(dtype=np.float64))
        target = time if time is not None else (tau_alpha or {}).get(float(T))
        if target is None or not np.isfinite(target) or target <= 0:
            chosen[float(T)] = float(times[-1])
        else:
            chosen[float(T)] = float(times[np.argmin(np.abs(np.log(times) - np.log(target)))])
    return chosen


def at_figure_time(table: pd.DataFrame, times: dict[float, float]) -> pd.DataFrame:
    """Rows of ``table`` (curve_table) at each temperature's chosen time."""
    keep = np.zeros(len(table), dtype=bool)
    for T, t in times.items():
        keep |= np.isclose(table["temperature"], T) & np.isclose(table["time"], t, rtol=1e-9, atol=0)
    return table[keep].reset_index(drop=True)
