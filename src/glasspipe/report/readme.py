"""The README.md of a results directory: what it holds, how it was made, how to read it without glasspipe."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.atomic import atomic_path, json_default

# Published numbers for context (shared/REFERENCE.md section 3): GlassBench, KA 3D, N = 4096, T = 0.44,
# Pearson correlation of A-particle propensity, mean over 100 test configurations.
PUBLISHED_TAU_ALPHA = {
    "BOTAN": 0.752,
    "CAGE": 0.782,
    "GlassMLP": 0.756,
    "SE(3)-equivariant GNN": 0.791,
    "EIGNN": 0.817,
}


def _descriptor_positions(config: dict) -> str:
    """What the descriptors were computed from, in words (structure.input)."""
    how = _get(config, "structure.input", "thermal")
    if how == "both":
        return "thermal configuration and its inherent structure, with each particle's distance between them"
    return "inherent structure" if how == "inherent" else "thermal configuration"


def _get(config: dict, dotted: str, default=None):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def config_hash(config: dict) -> str:
    """SHA-256 (first 16 hex digits) of the config as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def _label_times(config: dict) -> str:
    try:
        from glasspipe.config import label_times

        times = label_times(config)
        return ", ".join(f"{t:g}" for t in times)
    except (KeyError, TypeError, ValueError):
        times = _get(config, "isoconf.times")
        if isinstance(times, dict):
            return f"{times.get('count')} log-spaced times from {times.get('start')} to {times.get('stop')}"
        return "n/a" if times is None else ", ".join(f"{float(t):g}" for t in times)


def _splits(config: dict) -> str:
    split = _get(config, "split", {}) or {}
    source = _get(config, "source", {}) or {}
    if source.get("format", "simulate") == "simulate":
        if "train" not in split and "test" not in split:
            return (
                f"{split.get('folds')}-fold cross-validation over the simulated configurations (validation "
                f"{split.get('validation')} per fold; every configuration tested once)"
            )
        return f"train {split.get('train')}, validation {split.get('validation')}, test {split.get('test')}"
    if source.get("test"):
        return (
            f"train and validation ({split.get('validation')}) from {source.get('train')}, test: {source.get('test')}"
        )
    return (
        f"{split.get('folds')}-fold cross-validation over {source.get('train') or source.get('dataset')} (validation "
        f"{split.get('validation')} per fold; every configuration tested once)"
    )


def _config_summary(config: dict) -> list[str]:
    temperatures = _get(config, "temperatures", [])
    source = _get(config, "source", {}) or {}
    imported = source.get("format", "simulate") != "simulate"
    rows = [
        ("data", f"imported: {source.get('format')} dataset" if imported else "simulated by glasspipe"),
        ("particles N", _get(config, "system.n_particles")),
        ("number density", _get(config, "system.density")),
        ("fraction of A particles", None if imported else _get(config, "system.fraction_A")),
        ("temperatures T", ", ".join(f"{t:g}" for t in temperatures) if temperatures else None),
        ("configurations per T", f"{_get(config, 'n_configurations')} ({_splits(config)})"),
        ("iso-configurational replicas", None if imported else _get(config, "isoconf.n_replicas")),
        ("label times (tau)", None if imported else _label_times(config)),
        (
            "descriptors",
            f"{', '.join(_get(config, 'structure.sets', {}))} of the {_descriptor_positions(config)}",
        ),
        ("MD engine", _get(config, "engine.name")),
        ("time step dt (tau)", None if imported else _get(config, "engine.dt")),
        ("cutoff mode", _get(config, "system.cutoff_mode")),
        ("master seed", _get(config, "seed")),
        ("config hash (sha256, 16 digits)", config_hash(config)),
    ]
    rows = [(name, value) for name, value in rows if value is not None]
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [
        f"| {name} | {value:g} |" if isinstance(value, float) else f"| {name} | {_fmt(value)} |" for name, value in rows
    ]
    return lines


def _with_series(rows: pd.DataFrame) -> pd.DataFrame:
    """Add the column label of each row: the model (and the label it learnt, other than propensity), with
    its temperature where metrics carry one."""
    rows = rows.copy()
    names = rows["model"].astype(str)
    if "label" in rows.columns:  # a model trained on another label than propensity: 'ridge [bond_breaking]'
        label = rows["label"].fillna("propensity")
        names = names.where(label == "propensity", names + " [" + label + "]")
    if "temperature" in rows.columns:
        rows["series"] = [f"{m} (T = {t:g})" for m, t in zip(names, rows["temperature"], strict=True)]
    else:
        rows["series"] = names
    return rows


def pooled_table(metrics: pd.DataFrame, type_name: str = "A") -> pd.DataFrame:
    """Pooled test Pearson correlations of ``type_name`` particles: rows label times, columns models
    (models x temperatures where ``metrics`` has a 'temperature' column)."""
    rows = metrics[(metrics["scope"] == "pooled") & (metrics["type"] == type_name)]
    if rows.empty:
        return pd.DataFrame()
    rows = _with_series(rows)
    return rows.pivot_table(index="time", columns="series", values="pearson", aggfunc="first").sort_index()


def _markdown_table(table: pd.DataFrame, index_name: str) -> list[str]:
    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join([index_name, *columns]) + " |", "|" + " --- |" * (len(columns) + 1)]
    for index, row in table.iterrows():
        cells = [_fmt(float(v)) for v in row.to_numpy()]
        lines.append("| " + " | ".join([f"{index:g}", *cells]) + " |")
    return lines


def _spread_table(metrics: pd.DataFrame, type_name: str = "A") -> pd.DataFrame:
    rows = metrics[(metrics["scope"] == "configuration") & (metrics["type"] == type_name)]
    if rows.empty:
        return pd.DataFrame()
    grouped = _with_series(rows).groupby(["time", "series"])["pearson"]
    text = (grouped.mean().map(lambda m: f"{m:.3f}") + " ± " + grouped.std(ddof=1).map(_fmt)).unstack("series")
    return text.sort_index()


def _text_table(table: pd.DataFrame, index_name: str) -> list[str]:
    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join([index_name, *columns]) + " |", "|" + " --- |" * (len(columns) + 1)]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([f"{index:g}", *("n/a" if pd.isna(v) else str(v) for v in row)]) + " |")
    return lines


READING_WITHOUT_GLASSPIPE = """\
```python
import json
import gsd.hoomd, pandas, torch

# Configurations and trajectories (HOOMD schema): positions are wrapped into the box, image flags
# give the unwrapped positions, the log holds the time and the metadata of the stage that wrote them.
with gsd.hoomd.open("path/to/file.gsd", mode="r") as trajectory:
    frame = trajectory[0]
    box_length = frame.configuration.box[0]
    unwrapped = frame.particles.position + frame.particles.image * box_length
    time = frame.log["glasspipe/time"][0]
    metadata = json.loads(bytes(frame.log["glasspipe/metadata"]).decode())

# Tables (descriptors, labels, predictions, metrics, thermodynamic logs); the writing stage's metadata
# is JSON under the schema metadata key b"glasspipe".
table = pandas.read_parquet("path/to/table.parquet")
import pyarrow.parquet as pq
table_metadata = json.loads(pq.read_schema("path/to/table.parquet").metadata[b"glasspipe"])

# Models: a plain PyTorch state dict plus a JSON file of hyper-parameters.
state = torch.load("path/to/model.pt", map_location="cpu", weights_only=True)
hyper = json.load(open("path/to/model.json"))
```"""


def headline_lines(summary: dict) -> list[str]:
    """The summary.json numbers as a Markdown table: model x time, mean ± s.e.m., pooled, noise ceiling."""
    lines = [
        "| T | label | model | t (tau) | t / tau_alpha | Pearson, mean ± s.e.m. over test configurations | "
        "pooled | test configurations | noise ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for T, node in summary.get("temperatures", {}).items():
        for label, models in node["labels"].items():
            for model, entries in models.items():
                for e in entries:
                    sem = f" ± {e['sem_pearson']:.3f}" if e.get("sem_pearson") is not None else ""
                    ratio = _fmt(e.get("time_tau_alpha"), 2) if e.get("time_tau_alpha") is not None else "n/a"
                    lines.append(
                        f"| {T} | {label} | {model} | {e['time']:g} | {ratio} | {_fmt(e['mean_pearson'])}{sem} | "
                        f"{_fmt(e['pooled_pearson'])} | {e['n_test_configurations']} | {_fmt(e['noise_ceiling'])} |"
                    )
    return lines


def published_comparison(summary: dict) -> list[str]:
    """Our numbers at T = 0.44 and t = tau_alpha beside the published ones, with training-set sizes."""
    node = summary.get("temperatures", {}).get("0.44")
    if not node:
        return []
    sizes = summary.get("training_configurations", {})
    n_train = sorted({fold["train"] for fold in sizes.values()}) if sizes else []
    rows = []
    for model, entries in node["labels"].get("propensity", {}).items():
        for e in entries:
            if e.get("time_tau_alpha") is not None and abs(e["time_tau_alpha"] - 1.0) < 0.05:
                sem = f" ± {e['sem_pearson']:.3f}" if e.get("sem_pearson") is not None else ""
                train = "/".join(str(n) for n in n_train)
                rows.append(
                    f"| glasspipe {model} (this run) | {_fmt(e['mean_pearson'])}{sem} | {train} | "
                    f"{e['n_test_configurations']} |"
                )
    if not rows:
        return []
    return [
        "At T = 0.44 and t = tau_alpha, this run beside the published models (GlassBench, mean over test "
        "configurations of the per-configuration Pearson correlation of A particles):",
        "",
        "| model | Pearson at tau_alpha | training configurations | test configurations |",
        "| --- | --- | --- | --- |",
        *rows,
        *[f"| {name} (published) | {value:.3f} | 400 | 100 |" for name, value in PUBLISHED_TAU_ALPHA.items()],
        "",
    ]


def write_results_readme(
    out_path: str | Path,
    config: dict,
    metrics: pd.DataFrame,
    versions: dict,
    files: dict[str, str],
    timings: dict | None = None,
    summary: dict | None = None,
    sources: list[dict] | None = None,
    extra_sections: list[str] | None = None,
    published_matched: bool = False,
) -> str:
    """Write the Markdown README of a results directory to ``out_path`` (atomically) and return its text.

    ``config`` is the resolved configuration, ``metrics`` the evaluation table (columns model, time, type,
    scope, configuration, pearson, n_particles), ``versions`` the output of
    :func:`glasspipe.report.versions.software_versions`, ``files`` maps each path in the results directory
    (relative) to a one-line description, ``timings`` optionally maps stage names to wall-clock seconds,
    ``extra_sections`` Markdown lines placed after the results (the optional evaluations).
    ``published_matched``: the report found a published table at this run's state point (then the context
    section points to it instead of quoting GlassBench's T = 0.44 numbers).
    """
    lines: list[str] = [
        "# glasspipe results",
        "",
        "This directory was produced by glasspipe, a reproducible "
        "pipeline that simulates the Kob-Andersen 80:20 binary Lennard-Jones glass former, runs "
        "iso-configurational ensembles, computes structural descriptors and dynamical labels "
        "(propensity: the replica mean of the distance |r_i(t) - r_i(0)| each particle travels), trains "
        "models that predict the propensity from the initial structure, and evaluates them on held-out "
        "configurations. Units are Lennard-Jones reduced units (sigma_AA, epsilon_AA, tau).",
        "",
        "## How it was produced",
        "",
        "Summary of the resolved configuration:",
        "",
        *_config_summary(config),
        "",
        "Rerunning the workflow with the same configuration and software reproduces these results; every "
        "random choice takes a seed derived from the master seed and the configuration / replica index.",
        "",
    ]
    for source in sources or []:
        lines += [
            f"Data imported from {source['source']} ({source['format']} format), license {source['license']}; "
            f"cite: {source['citation']}. Files and their sha256 checksums:",
            "",
            *[f"- `{f['file']}` {f['sha256']}" for f in source["files"]],
            "",
        ]
    lines += [
        "## Results: test correlations",
        "",
    ]
    if summary:
        lines += [
            "As the field reports them (`report/summary.json`): the Pearson correlation between predicted and "
            "true propensity of A particles within each test configuration, averaged over configurations, "
            "with its standard error; the correlation pooled over configurations; and the noise ceiling of "
            "the labels (the largest correlation a predictor can reach against labels from a finite number "
            "of replicas):",
            "",
            *headline_lines(summary),
            "",
            *published_comparison(summary),
        ]
    lines += [
        "Pearson correlation between predicted and true propensity of A particles, pooled over the test "
        "configurations, per model (columns) and label time in tau (rows):",
        "",
    ]
    _needed = ("model", "time", "type", "scope", "pearson")
    missing = [c for c in _needed if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics lack the column(s) {missing}; found {list(metrics.columns)}")
    pooled = pooled_table(metrics)
    lines += _markdown_table(pooled, "t (tau)") if not pooled.empty else ["(no pooled metrics for A particles)"]
    spread = _spread_table(metrics)
    if not spread.empty:
        lines += [
            "",
            "Mean ± standard deviation of the per-configuration correlations (A particles):",
            "",
            *_text_table(spread, "t (tau)"),
        ]
    if extra_sections:  # transfer across temperatures, learning curves (glasspipe.report.build)
        lines += ["", *extra_sections]
    if published_matched:
        # The run's own state point has a published table (the section above): no other state point's numbers.
        lines += [
            "",
            'The published models at this state point stand beside ours in the section "Published models beside '
            "ours\" above (`report/published.parquet`; source in glasspipe's `report/references.yaml`). The "
            "measured propensity is itself noisy (a finite number of replicas), so no predictor reaches 1; the "
            "noise ceiling of the labels bounds what any model can reach.",
            "",
        ]
    else:
        lines += [
            "",
            "### Context: published numbers",
            "",
            "Published correlations are for the KA mixture with N = 4096 particles at T = 0.44 (density 1.2), "
            "models trained on 400 configurations and tested on 100 (GlassBench; see the project's "
            "REFERENCE.md). At t = tau_alpha (about 4120 tau) they are:",
            "",
            "| model | Pearson (A, t = tau_alpha) |",
            "| --- | --- |",
            *[f"| {name} | {value:.3f} |" for name, value in PUBLISHED_TAU_ALPHA.items()],
            "",
            "The measured propensity is itself noisy (a finite number of replicas), so no predictor reaches 1; "
            "the half-half noise ceiling of the labels bounds what any model can reach. Results "
            "from a different system size, temperature, number of configurations or replicas (the demo "
            "configuration uses a small, warm system and few configurations) are not comparable to these "
            "numbers: correlations depend strongly on temperature and label time, and fewer replicas make the "
            "measured propensity noisier and lower every correlation.",
            "",
        ]
    lines += [
        "## Files",
        "",
    ]
    if files:
        lines += ["| path | content |", "| --- | --- |"]
        lines += [f"| `{path}` | {description} |" for path, description in sorted(files.items())]
    else:
        lines.append("(no files listed)")
    lines += [
        "",
        "## Software versions",
        "",
        "| software | version |",
        "| --- | --- |",
        *[f"| {name} | {value} |" for name, value in versions.items()],
        "",
    ]
    if timings:
        lines += ["## Timings", "", "| stage | wall-clock time |", "| --- | --- |"]
        for stage, seconds in timings.items():
            text = f"{float(seconds):.1f} s" if isinstance(seconds, int | float | np.number) else str(seconds)
            lines.append(f"| {stage} | {text} |")
        lines.append("")
    lines += [
        "## Reading the files without glasspipe",
        "",
        "Everything here is in open formats: GSD (HOOMD schema; readable by gsd, HOOMD-blue, freud, OVITO), "
        "Parquet (pandas, pyarrow, polars, R arrow), PNG/PDF figures (each with the Parquet data behind it "
        "beside it), and PyTorch state dicts with JSON hyper-parameters.",
        "",
        READING_WITHOUT_GLASSPIPE,
        "",
    ]
    text = "\n".join(lines)
    with atomic_path(out_path) as tmp:
        tmp.write_text(text)
    return text
