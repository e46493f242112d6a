"""Figures of the results report, each saved as PNG and PDF with the data behind it beside it.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend state), so they work
on headless cluster nodes and inside Snakemake jobs. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from glasspipe.io.atomic import atomic_path
from glasspipe.io.tables import write_table

METRIC_COLUMNS = ("model", "time", "type", "scope", "configuration", "pearson", "n_particles")
THERMO_COLUMNS = ("time", "potential_energy", "kinetic_temperature", "pressure")


def _save(fig: Figure, out_png: str | Path, out_pdf: str | Path) -> None:
    FigureCanvasAgg(fig)
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def _require(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {missing}; found {list(df.columns)}")


def correlation_summary(metrics: pd.DataFrame, type_name: str = "A") -> pd.DataFrame:
    """The numbers behind :func:`plot_correlations`, one row per (model, time), particles of ``type_name``.

    Columns: ``model`` (and ``temperature`` where ``metrics`` has it), ``time``, ``type``, ``pearson``
    (pooled over the test configurations; NaN where ``metrics`` has no pooled row), ``n_particles``
    (pooled), ``n_configurations``, ``pearson_config_mean``,
    ``pearson_config_std`` (standard deviation over configurations, ddof = 1; the error bars),
    ``pearson_config_sem`` (std / sqrt(n_configurations)).
    """
    _require(metrics, ("model", "time", "type", "scope", "pearson"), "metrics")
    rows = metrics[metrics["type"] == type_name]
    if rows.empty:
        raise ValueError(
            f"metrics hold no rows for type {type_name!r} (types found: {sorted(metrics['type'].unique())})"
        )
    unknown = set(rows["scope"]) - {"pooled", "configuration"}
    if unknown:
        raise ValueError(f"metrics column 'scope' holds {sorted(unknown)}; expected 'pooled' or 'configuration'")
    # Metrics gathered over several temperatures carry a 'temperature' column: one line per (model, T).
    groups = ["model", "temperature"] if "temperature" in rows.columns else ["model"]
    keys = [*groups, "time"]
    pooled = rows[rows["scope"] == "pooled"]
    if pooled.duplicated(keys).any():
        raise ValueError(
            f"metrics hold more than one pooled row for the same {', '.join(keys)} and type; "
            "add a 'temperature' column when combining temperatures"
        )
    pooled = pooled[keys + ["pearson"] + (["n_particles"] if "n_particles" in pooled else [])]
    per_config = rows[rows["scope"] == "configuration"].groupby(keys)["pearson"]
    spread = pd.DataFrame(
        {
            "n_configurations": per_config.count(),
            "pearson_config_mean": per_config.mean(),
            "pearson_config_std": per_config.std(ddof=1),
        }
    ).reset_index()
    summary = pooled.merge(spread, on=keys, how="outer")
    if "n_particles" not in summary:
        summary["n_particles"] = np.nan
    summary["n_configurations"] = summary["n_configurations"].fillna(0).astype(np.int64)
    summary["pearson_config_sem"] = summary["pearson_config_std"] / np.sqrt(
        summary["n_configurations"].where(summary["n_configurations"] > 0)
    )
    summary["type"] = type_name
    columns = [
        *keys,
        "type",
        "pearson",
        "n_particles",
        "n_configurations",
        "pearson_config_mean",
        "pearson_config_std",
        "pearson_config_sem",
    ]
    return summary[columns].sort_values(keys).reset_index(drop=True)


def plot_correlations(
    metrics: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path,
    out_data: str | Path,
    type_name: str = "A",
    ceiling: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pearson correlation of predicted and true labels versus label time, one line per model and one panel
    per label the models learnt (the metrics' ``label`` column; propensity without one).

    As the field reports it: the line is the mean over test configurations of the per-configuration
    correlation (particles of ``type_name``), the error bars its standard error; the correlation pooled
    over configurations is drawn as open markers. ``ceiling`` (columns time, ceiling, and temperature where
    the metrics have it, and label where there are several), when given, is drawn as a dashed black line in
    its label's panel: the noise ceiling of the labels, the largest correlation any predictor can reach
    against finite-replica labels. The data behind the figure (:func:`correlation_summary` per label, plus
    the ceiling, with a label column) is written to ``out_data`` (Parquet) and returned.
    """
    label_of = metrics["label"].fillna("propensity") if "label" in metrics.columns else None
    labels = sorted(set(label_of)) if label_of is not None else ["propensity"]
    if "propensity" in labels:  # the headline label first
        labels.remove("propensity")
        labels.insert(0, "propensity")
    fig = Figure(figsize=(6.0 * len(labels), 4.0))
    axes = fig.subplots(1, len(labels), squeeze=False)[0]
    # One colour per model (and temperature) in every panel.
    cycle = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    if "temperature" in metrics.columns:
        series = sorted(set(zip(metrics["model"], metrics["temperature"], strict=True)))
    else:
        series = sorted(set(metrics["model"]))
    colours = {key: cycle[i % len(cycle)] for i, key in enumerate(series)}
    summaries = []
    for ax, label in zip(axes, labels, strict=True):
        rows = metrics if label_of is None else metrics[label_of == label]
        label_ceiling = ceiling
        if ceiling is not None and "label" in ceiling.columns:
            label_ceiling = ceiling[ceiling["label"] == label].drop(columns="label")
        summary = _correlation_panel(ax, rows, label, type_name, label_ceiling, colours)
        summary.insert(0, "label", label)
        summaries.append(summary)
    fig.text(
        0.01,
        -0.02,
        "filled: mean over test configurations +- s.e.m.; open: pooled; dashed: noise ceiling of the labels",
        fontsize=7,
        color="0.4",
    )
    _save(fig, out_png, out_pdf)
    summary = pd.concat(summaries, ignore_index=True)
    write_table(
        summary,
        out_data,
        metadata={
            "figure": Path(out_png).name,
            "type": type_name,
            "line": "pearson_config_mean: mean over test configurations of the per-configuration Pearson",
            "error_bars": "pearson_config_sem: standard error of that mean",
            "open_markers": "pearson: pooled over test configurations",
            "ceiling": "noise ceiling sqrt(Spearman-Brown reliability of the replica mean), mean over test "
            "configurations",
        },
    )
    return summary


def _correlation_panel(
    ax, metrics: pd.DataFrame, label: str, type_name: str, ceiling, colours: dict[str, str]
) -> pd.DataFrame:
    """One panel of :func:`plot_correlations`: the models that learnt ``label``, and its ceiling."""
    summary = correlation_summary(metrics, type_name)
    if (summary["time"] <= 0).any():
        raise ValueError("label times must be positive for the logarithmic time axis")
    groups = ["model", "temperature"] if "temperature" in summary.columns else ["model"]
    if ceiling is not None and not ceiling.empty:
        keys = [k for k in ("temperature", "time") if k in ceiling.columns and k in summary.columns]
        summary = summary.merge(ceiling[[*keys, "ceiling"]], on=keys, how="left")
    elif "ceiling" not in summary:
        summary["ceiling"] = np.nan
    for key, group in summary.groupby(groups, sort=True):
        name = f"{key[0]}, T = {key[1]:g}" if len(groups) == 2 else str(key[0])
        y = group["pearson_config_mean"].where(group["pearson_config_mean"].notna(), group["pearson"])
        err = group["pearson_config_sem"].fillna(0.0).to_numpy()
        colour = colours.get(tuple(key) if len(groups) == 2 else (key if isinstance(key, str) else key[0]))
        line = ax.errorbar(group["time"], y, yerr=err, marker="o", capsize=3, label=name, color=colour)
        ax.plot(group["time"], group["pearson"], ls="none", marker="o", mfc="none", color=line[0].get_color())
    per_temperature = summary.drop_duplicates([*groups[1:], "time"]).sort_values("time")
    for _, group in per_temperature.groupby(groups[1:]) if len(groups) == 2 else [(None, per_temperature)]:
        if group["ceiling"].notna().any():
            ax.plot(group["time"], group["ceiling"], "k--", lw=1.2, marker="_", label="noise ceiling")
    ax.set_xscale("log")
    ax.set_xlabel(r"label time $t$ ($\tau$)")
    ax.set_ylabel(f"Pearson correlation ({type_name} particles)")
    ax.set_title(f"Predicted vs. true {label.replace('_', ' ')}, test configurations")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_ylim(top=1.0)
    ax.grid(True, which="both", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), title="model")
    return summary


def plot_thermo(
    thermo_df: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path,
    out_data: str | Path | None = None,
    title: str | None = None,
) -> None:
    """Potential energy, kinetic temperature and pressure of an equilibration log versus time.

    ``thermo_df`` needs the columns time, potential_energy (per particle), kinetic_temperature, pressure.
    With ``out_data`` the plotted columns are also written there as Parquet.
    """
    _require(thermo_df, THERMO_COLUMNS, "thermodynamic log")
    if thermo_df.empty:
        raise ValueError("thermodynamic log holds no rows")
    fig = Figure(figsize=(6.0, 6.5))
    axes = fig.subplots(3, 1, sharex=True)
    labels = {
        "potential_energy": r"$U/N$ ($\epsilon$)",
        "kinetic_temperature": r"$T_\mathrm{kin}$ ($\epsilon/k_B$)",
        "pressure": r"$P$ ($\epsilon/\sigma^3$)",
    }
    for ax, (column, label) in zip(axes, labels.items(), strict=True):
        ax.plot(thermo_df["time"], thermo_df[column], lw=1.0)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(r"time ($\tau$)")
    if title:
        axes[0].set_title(title)
    fig.align_ylabels(axes)
    _save(fig, out_png, out_pdf)
    if out_data is not None:
        write_table(thermo_df[list(THERMO_COLUMNS)].reset_index(drop=True), out_data, {"figure": Path(out_png).name})


RELAXATION_COLUMNS = ("temperature", "time", "fs_A", "tau_alpha")


def plot_relaxation(
    relaxation: pd.DataFrame, out_png: str | Path, out_pdf: str | Path, stated_tau_alpha: dict | None = None
) -> list[str]:
    """Self intermediate scattering function F_s(q, t) of A particles versus time, one line per temperature.

    ``relaxation`` is :func:`glasspipe.report.build.relaxation_table` (columns temperature, time (tau), fs_A
    (mean over configurations), tau_alpha (tau, where F_s crosses 1/e; NaN if it does not within the label
    times)). The 1/e level is a dotted line; each tau_alpha a marker on it and a legend entry. An empty table
    (a dataset whose labels carry no F_s) gives a figure that says so rather than no figure.
    ``stated_tau_alpha`` ({temperature: tau_alpha (tau)}, an imported dataset's own values) is used, and said
    to be, for temperatures whose F_s does not cross 1/e within the table's times. Returns the legend entries.
    """
    labels = []
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    if relaxation.empty:
        ax.text(0.5, 0.5, "the labels carry no self-intermediate\nscattering function", ha="center", va="center")
        ax.set_axis_off()
    else:
        _require(relaxation, RELAXATION_COLUMNS, "relaxation table")
        if (relaxation["time"] <= 0).any():
            raise ValueError("relaxation times must be positive for the logarithmic time axis")
        for T, group in relaxation.sort_values("time").groupby("temperature", sort=True):
            tau, how = float(group["tau_alpha"].iloc[0]), ""
            if tau != tau and (stated_tau_alpha or {}).get(float(T)) is not None:
                tau, how = float(stated_tau_alpha[float(T)]), " (stated by the dataset)"
            label = f"T = {T:g}, " + (
                rf"$\tau_\alpha$ = {tau:.3g}{how}" if tau == tau else r"$\tau_\alpha$ beyond the times"
            )
            labels.append(label)
            (line,) = ax.plot(group["time"], group["fs_A"], marker="o", label=label)
            if tau == tau:
                ax.plot([tau], [np.exp(-1.0)], marker="x", ms=10, color=line.get_color())
        ax.axhline(np.exp(-1.0), color="0.5", ls=":", lw=1.0, label="1/e")
        ax.set_xscale("log")
        ax.set_xlabel(r"time $t$ ($\tau$)")
        ax.set_ylabel(r"$F_s(q, t)$, A particles")
        q = relaxation["q"].iloc[0] if "q" in relaxation else None
        ax.set_title("Self-intermediate scattering function" + (f", q = {q:.3g}" if q is not None else ""))
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    _save(fig, out_png, out_pdf)
    return labels


def plot_learning_curve(
    curve: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path,
    out_data: str | Path,
) -> pd.DataFrame:
    """Pearson correlation against the number of training configurations, one panel per temperature, one
    line per model run, at one label time per temperature.

    ``curve``: rows at the drawn label time (glasspipe.learn.learning_curve.curve_table then at_figure_time):
    columns run, label, temperature, time, n_train, full, mean_pearson, sem_pearson, pooled_pearson, and
    optionally ceiling (glasspipe.report.summary.with_ceiling). The line is the mean over test
    configurations of the per-configuration Pearson (A particles), the error bars its s.e.m.; the full model
    (the ``train`` rule's) is the last point, drawn as a square. The ceiling, where given, is drawn as a
    dashed horizontal line per label: the noise ceiling of the test labels at that time. The data (``curve``
    with a ceiling column, NaN where none is given) is written to ``out_data`` and returned."""
    _require(curve, ("run", "label", "temperature", "time", "n_train", "full", "mean_pearson", "sem_pearson"), "curve")
    if curve.empty:
        raise ValueError("the learning curve has no rows at the chosen label time")
    data = curve.copy()
    if "ceiling" not in data:
        data["ceiling"] = np.nan
    temperatures = sorted(data["temperature"].unique())
    fig = Figure(figsize=(5.5 * len(temperatures), 4.0))
    axes = fig.subplots(1, len(temperatures), squeeze=False)[0]
    cycle = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    colours = {run: cycle[i % len(cycle)] for i, run in enumerate(sorted(data["run"].unique()))}
    for ax, T in zip(axes, temperatures, strict=True):
        rows = data[np.isclose(data["temperature"], T)].sort_values("n_train")
        for run, group in rows.groupby("run", sort=True):
            colour = colours[run]
            ax.errorbar(
                group["n_train"],
                group["mean_pearson"],
                yerr=group["sem_pearson"].fillna(0.0),
                marker="o",
                capsize=3,
                color=colour,
                label=run,
            )
            full = group[group["full"].astype(bool)]
            ax.plot(full["n_train"], full["mean_pearson"], ls="none", marker="s", ms=9, mfc="none", color=colour)
        for label, group in rows.groupby("label", sort=True):
            value = group["ceiling"].dropna()
            if len(value):
                ax.axhline(float(value.iloc[0]), color="k", ls="--", lw=1.2, label=f"noise ceiling ({label})")
        ax.set_xscale("log")
        ax.set_xticks(sorted(rows["n_train"].unique()))
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.set_xlabel("training configurations n")
        ax.set_ylabel("Pearson correlation (A particles)")
        ax.set_title(f"T = {T:g}, label time t = {rows['time'].iloc[0]:.3g} tau")
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.set_ylim(top=1.0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="model")
    fig.text(
        0.01,
        -0.02,
        "mean over test configurations +- s.e.m.; square: the full model; dashed: noise ceiling of the labels",
        fontsize=7,
        color="0.4",
    )
    _save(fig, out_png, out_pdf)
    write_table(
        data,
        out_data,
        metadata={
            "figure": Path(out_png).name,
            "line": "mean_pearson: mean over test configurations of the per-configuration Pearson, A particles",
            "error_bars": "sem_pearson",
            "ceiling": "noise ceiling of the test labels at the drawn time, mean over test configurations",
        },
    )
    return data
