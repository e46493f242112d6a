"""Published numbers beside a run's own: correlation tables of the literature, reference thermodynamics, and
paired differences between the run's models.

The published numbers live in one data file, ``references.yaml`` next to this module, each table with its
source. Three tables come out of a run:

- :func:`published_comparison`: for every temperature and label time of the run that a published table
  covers (same system, same temperature, a grid time within :data:`TIME_TOLERANCE` of ours), the published
  models' mean and pooled Pearson correlations beside each of the run's models (mean +- s.e.m. over test
  configurations, pooled, n) and the run's noise ceiling. Long format, one row per (time, source, model).
- :func:`thermodynamics_comparison`: mean U/N and pressure over the equilibrated configurations (with the
  s.e.m. over configurations) against the reference value at that temperature and the Rosenfeld-Tarazona
  fit U/N = a + b T^(3/5) through two reference rows.
- :func:`paired_differences`: for each pair of models, the mean +- s.e.m. of the per-configuration
  difference of their Pearson correlations on the same test configurations. "A beats B" is a statement
  only where that mean exceeds its s.e.m. (the project's rule); the column ``z`` (mean over s.e.m.) lets a
  reader ask for more.

Units: times in LJ units (tau), energies per particle in eps_AA, pressures in eps_AA / sigma_AA^3.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from itertools import combinations

import numpy as np
import pandas as pd
import yaml

from glasspipe.statistics import mean_sem

# A published grid time matches one of ours when they differ by less than this fraction: GlassBench's
# 0.032 at T = 0.64 falls between MD steps of 0.005 and is sampled at 0.03 (6 %).
TIME_TOLERANCE = 0.1
# Two temperatures are the same state point when they agree to this (they are written with 2-3 digits).
TEMPERATURE_TOLERANCE = 1e-6


@cache
def load() -> dict:
    """The contents of references.yaml, checked: every model row as long as its table's time grid."""
    data = yaml.safe_load(resources.files("glasspipe.report").joinpath("references.yaml").read_text())
    for table in data["correlations"]["tables"]:
        n = len(table["times"])
        for model, values in table["models"].items():
            for key in ("mean", "pooled"):
                if len(values[key]) != n:
                    raise ValueError(
                        f"references.yaml: T = {table['temperature']} model {model!r} has {len(values[key])} "
                        f"{key} values for {n} times"
                    )
    return data


def _same_system(config: dict, system: dict) -> bool:
    """Does the run simulate (or import) the system a reference was measured on? Particle numbers may differ
    for thermodynamics (intensive), not for correlations (the caller passes n_particles when it matters)."""
    ours = config["system"]
    return all(
        (math.isclose(float(ours[k]), float(v)) if isinstance(v, int | float) else ours.get(k) == v)
        for k, v in system.items()
        if k in ("model", "density", "fraction_A", "cutoff_mode", "n_particles")
    )


def _matching_table(config: dict, temperature: float) -> dict | None:
    correlations = load()["correlations"]
    if not _same_system(config, correlations["system"]):
        return None
    for table in correlations["tables"]:
        if abs(float(table["temperature"]) - float(temperature)) < TEMPERATURE_TOLERANCE:
            return table
    return None


def _match_time(time: float, grid: list[float]) -> int | None:
    """Index of the grid time within TIME_TOLERANCE (relative) of ``time``, the nearest one; None if none."""
    grid_array = np.asarray(grid, dtype=float)
    relative = np.abs(grid_array - time) / grid_array
    best = int(np.argmin(relative))
    return best if relative[best] < TIME_TOLERANCE else None


def published_comparison(config: dict, summary: dict, label: str = "propensity") -> pd.DataFrame:
    """The published rows beside the run's models at every label time a published table covers.

    Inputs: the resolved config and the run's summary.json document (glasspipe.report.summary.headline).
    Output columns: temperature, time (ours, tau), published_time, source ('published' or 'glasspipe'),
    model, mean_pearson, sem_pearson, pooled_pearson, n_test_configurations, training_configurations,
    noise_ceiling (the run's, the same on every row of a time). Empty when nothing matches.
    """
    correlations = load()["correlations"]
    rows = []
    for temperature, node in summary.get("temperatures", {}).items():
        table = _matching_table(config, float(temperature))
        models = node.get("labels", {}).get(label, {})
        if table is None or label != correlations["label"] or not models:
            continue
        ours_by_time: dict[float, dict[str, dict]] = {}
        for model, entries in models.items():
            for entry in entries:
                ours_by_time.setdefault(float(entry["time"]), {})[model] = entry
        for time, entries in sorted(ours_by_time.items()):
            index = _match_time(time, table["times"])
            if index is None:
                continue
            ceiling = next((e["noise_ceiling"] for e in entries.values() if e.get("noise_ceiling") is not None), None)
            common = {"temperature": float(temperature), "time": time, "published_time": float(table["times"][index])}
            for model, values in table["models"].items():
                rows.append(
                    {
                        **common,
                        "source": "published",
                        "model": model,
                        "mean_pearson": float(values["mean"][index]),
                        "sem_pearson": None,
                        "pooled_pearson": float(values["pooled"][index]),
                        "n_test_configurations": None,
                        "training_configurations": str(table["training_configurations"]),
                        "noise_ceiling": ceiling,
                    }
                )
            training = summary.get("training_configurations", {})
            sizes = sorted({fold.get("train", 0) for fold in training.values()}) if training else []
            for model, entry in sorted(entries.items()):
                rows.append(
                    {
                        **common,
                        "source": "glasspipe",
                        "model": model,
                        "mean_pearson": entry.get("mean_pearson"),
                        "sem_pearson": entry.get("sem_pearson"),
                        "pooled_pearson": entry.get("pooled_pearson"),
                        "n_test_configurations": entry.get("n_test_configurations"),
                        "training_configurations": "/".join(str(s) for s in sizes),
                        "noise_ceiling": ceiling,
                    }
                )
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)


PUBLISHED_COLUMNS = [
    "temperature",
    "time",
    "published_time",
    "source",
    "model",
    "mean_pearson",
    "sem_pearson",
    "pooled_pearson",
    "n_test_configurations",
    "training_configurations",
    "noise_ceiling",
]


def _cell(mean, sem=None, pooled=None) -> str:
    if mean is None or mean != mean:
        return ""
    text = f"{mean:.3f}"
    if sem is not None and sem == sem:
        text += f" ± {sem:.3f}"
    if pooled is not None and pooled == pooled:
        text += f" ({pooled:.3f})"
    return text


def published_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """One row per label time, one column per published model and per glasspipe model: 'mean ± s.e.m.
    (pooled)', then the noise ceiling; a last row gives each column's training-set size."""
    if table.empty:
        return pd.DataFrame()
    table = table.assign(
        column=[f"{m} [{s}]" if s == "glasspipe" else m for m, s in zip(table["model"], table["source"], strict=True)]
    )
    columns = list(dict.fromkeys(table["column"]))
    rows = []
    for (temperature, time, published_time), group in table.groupby(["temperature", "time", "published_time"]):
        row = {"T": f"{temperature:g}", "t (ours)": f"{time:g}", "t (published)": f"{published_time:g}"}
        for record in group.itertuples():
            row[record.column] = _cell(record.mean_pearson, record.sem_pearson, record.pooled_pearson)
        ceiling = group["noise_ceiling"].dropna()
        row["noise ceiling"] = f"{ceiling.iloc[0]:.3f}" if len(ceiling) else ""
        rows.append(row)
    sizes = table.drop_duplicates("column").set_index("column")["training_configurations"]
    rows.append({"T": "", "t (ours)": "training configurations", "t (published)": ""} | sizes.to_dict())
    return pd.DataFrame(rows, columns=["T", "t (ours)", "t (published)", *columns, "noise ceiling"]).fillna("")


def rosenfeld_tarazona(temperature: float) -> float | None:
    """U/N of the fit a + b T^(3/5) through the two reference rows named in references.yaml."""
    thermo = load()["thermodynamics"]
    by_t = {float(r["temperature"]): float(r["potential_energy"]) for r in thermo["rows"]}
    t1, t2 = (float(t) for t in thermo["rosenfeld_tarazona_through"])
    b = (by_t[t2] - by_t[t1]) / (t2**0.6 - t1**0.6)
    return by_t[t1] + b * (float(temperature) ** 0.6 - t1**0.6)


def thermodynamics_comparison(config: dict, equilibration: pd.DataFrame) -> pd.DataFrame:
    """Mean U/N and P of the run's equilibrated configurations against the references, per temperature.

    Input: the report's equilibration table (columns temperature, potential_energy_mean, pressure_mean, one
    row per configuration). Output columns: temperature, n_configurations, quantity ('U/N' or 'P'), ours,
    ours_sem (s.e.m. over configurations), reference, reference_error, reference_source, difference,
    z (difference over the combined error, where both errors are known), and for U/N the
    Rosenfeld-Tarazona value. Empty when the run's system is not the references' or nothing was simulated.
    """
    thermo = load()["thermodynamics"]
    if equilibration.empty or not _same_system(config, thermo["system"]):
        return pd.DataFrame()
    references = {float(r["temperature"]): r for r in thermo["rows"]}
    rows = []
    for temperature, group in equilibration.groupby("temperature"):
        reference = next(
            (r for t, r in references.items() if abs(t - float(temperature)) < TEMPERATURE_TOLERANCE), None
        )
        for quantity, column, key in (
            ("U/N", "potential_energy_mean", "potential_energy"),
            ("P", "pressure_mean", "pressure"),
        ):
            values = group[column].to_numpy(dtype=float)
            n = len(values)
            ours, sem = mean_sem(values)
            sem = sem if n >= 2 else None
            ref = float(reference[key]) if reference else None
            ref_error = reference.get(f"{key}_error") if reference else None
            difference = ours - ref if ref is not None else None
            errors = [e for e in (sem, ref_error) if e is not None]
            z = difference / math.hypot(*errors) if difference is not None and sem and ref_error else None
            rows.append(
                {
                    "temperature": float(temperature),
                    "n_configurations": n,
                    "quantity": quantity,
                    "ours": ours,
                    "ours_sem": sem,
                    "reference": ref,
                    "reference_error": ref_error,
                    "reference_source": reference["source"] if reference else None,
                    "difference": difference,
                    "z": z,
                    "rosenfeld_tarazona": rosenfeld_tarazona(float(temperature)) if quantity == "U/N" else None,
                }
            )
    return pd.DataFrame(rows)


def paired_differences(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per-configuration differences of Pearson correlations between every pair of models.

    Input: the run's metrics (columns model, temperature, time, type, scope, configuration, pearson, and
    optionally label). Only A particles, scope 'configuration', configurations both models were tested on.
    Output columns: temperature, label, time, model_a, model_b, mean_difference (a - b), sem_difference
    (std ddof=1 / sqrt(n)), z (mean / s.e.m.), n, a_beats_b ('yes' where the mean exceeds its s.e.m., 'no'
    where it is below minus its s.e.m., 'unresolved' otherwise).
    """
    a = metrics[(metrics["type"] == "A") & (metrics["scope"] == "configuration")].copy()
    if a.empty:
        return pd.DataFrame()
    a["label"] = a["label"].fillna("propensity") if "label" in a.columns else "propensity"
    # A run learning a second label is named '<model>.<label>': compare models on the same label only.
    rows = []
    for (temperature, label, time), group in a.groupby(["temperature", "label", "time"], sort=True):
        wide = group.pivot_table(index="configuration", columns="model", values="pearson")
        for model_a, model_b in combinations(sorted(wide.columns), 2):
            diff = (wide[model_a] - wide[model_b]).dropna().to_numpy(dtype=float)
            n = len(diff)
            if n == 0:
                continue
            mean, sem = mean_sem(diff)
            if sem == sem and mean > sem:
                verdict = "yes"
            elif sem == sem and mean < -sem:
                verdict = "no"
            else:
                verdict = "unresolved"
            rows.append(
                {
                    "temperature": float(temperature),
                    "label": label,
                    "time": float(time),
                    "model_a": model_a,
                    "model_b": model_b,
                    "mean_difference": mean,
                    "sem_difference": sem,
                    "z": mean / sem if sem == sem and sem > 0 else float("nan"),
                    "n": n,
                    "a_beats_b": verdict,
                }
            )
    return pd.DataFrame(rows)
