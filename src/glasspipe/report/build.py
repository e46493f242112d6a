"""Assemble the report of a results directory: figures, tables, resolved config, versions, README."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from glasspipe.io.atomic import atomic_path, write_json
from glasspipe.io.tables import read_metadata, read_table, write_table
from glasspipe.statistics import format_mean_sem
from glasspipe.targets import report_outputs


def equilibration_table(checks_paths: list[Path]) -> pd.DataFrame:
    """One row per equilibrated configuration: mean thermodynamics, each check's verdict, cost."""
    rows = []
    for path in checks_paths:
        summary = json.loads(Path(path).read_text())
        row = {k: v for k, v in summary.items() if k != "checks"}
        for name, check in summary["checks"].items():
            row[f"{name}_passed"] = bool(check["passed"])
            row[f"{name}_value"] = check.get("value")
        rows.append(row)
    return pd.DataFrame(rows)


def _pearson_tables(metrics: pd.DataFrame, ceiling: pd.DataFrame, label: str) -> list[tuple[str, pd.DataFrame]]:
    """The two tables of one label: per-configuration mean ± s.e.m. with the ceiling, and pooled (A)."""
    per_config = metrics[(metrics["scope"] == "configuration") & (metrics["type"] == "A")]
    stats = per_config.groupby(["temperature", "time", "model"])["pearson"].agg(["mean", "sem"])
    sem = stats["sem"].map(lambda v: f" ± {v:.3f}" if v == v else "")  # no s.e.m. from one configuration
    cells = stats["mean"].map("{:.3f}".format) + sem
    if "held_out" in per_config.columns:  # a label time the model was trained without: marked, noted below
        held = per_config.groupby(["temperature", "time", "model"])["held_out"].any().reindex(cells.index)
        cells = cells.where(~held.fillna(False).astype(bool), cells + " (held out)")
    cells = cells.unstack("model")
    if not ceiling.empty:
        cells = cells.join(ceiling.set_index(["temperature", "time"])["ceiling"].map("{:.3f}".format))
    pooled = metrics[(metrics["scope"] == "pooled") & (metrics["type"] == "A")]
    table = pooled.pivot_table(index=["temperature", "time"], columns="model", values="pearson").reset_index()
    table = table.rename_axis(columns=None)  # no stray 'model' header row in the HTML table
    # The propensity tables keep their titles (scripts read them); other labels are named in theirs.
    name = "" if label == "propensity" else f" ({label})"
    return [
        (
            f"Pearson correlation{name}, A particles: mean ± s.e.m. over test configurations, and the noise ceiling",
            cells.reset_index(),
        ),
        (f"Pearson correlation{name}, test configurations pooled, A particles", table),
    ]


def read_validation(paths: list[Path]) -> pd.DataFrame:
    """Every model's correlations on its folds' validation configurations (stages.evaluate), one table with a
    ``run`` column: the model, suffixed .<label> where it learnt another label than propensity. Empty when
    there are none (results evaluated before validation metrics were written have no such files)."""
    tables = [read_table(p) for p in paths if Path(p).exists()]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame(columns=["run", "fold", "model", "temperature", "time", "type", "scope", "configuration"])
    from glasspipe.report.compare import run_names

    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "run", run_names(table))
    return table


def validation_table(validation: pd.DataFrame) -> pd.DataFrame:
    """Mean ± s.e.m. of the A particles' Pearson over (fold, configuration) per run and time, with n."""
    rows = validation[(validation["scope"] == "configuration") & (validation["type"] == "A")]
    stats = rows.groupby(["temperature", "time", "run"])["pearson"].agg(["mean", "sem", "count"])
    sem = stats["sem"].map(lambda v: f" ± {v:.3f}" if v == v else "")
    cells = (stats["mean"].map("{:.3f}".format) + sem).unstack("run")
    cells["n (fold, configuration)"] = stats["count"].groupby(["temperature", "time"]).max()
    return cells.rename_axis(columns=None).reset_index()


def relaxation_table(labels_paths: list[Path]) -> pd.DataFrame:
    """Self intermediate scattering function of A particles per temperature, mean over configurations,
    and tau_alpha where it crosses 1/e (from the labels' metadata)."""
    from glasspipe.dynamics.relaxation import tau_alpha

    rows = []
    for path in labels_paths:
        meta = read_metadata(path)
        isf = meta.get("self_isf")
        if not isf:
            continue
        for time, fs in zip(isf["times"], isf["fs_A"], strict=True):
            rows.append(
                {
                    "temperature": meta["temperature"],
                    "configuration": meta["configuration"],
                    "q": isf["q"],
                    "time": time,
                    "fs_A": fs,
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    mean = table.groupby(["temperature", "q", "time"], as_index=False)["fs_A"].mean()
    taus = {
        T: tau_alpha(group["time"].to_numpy(), group["fs_A"].to_numpy()) for T, group in mean.groupby("temperature")
    }
    mean["tau_alpha"] = mean["temperature"].map(taus)
    return mean


def dataset_tau_alpha(labels_paths: list[Path]) -> dict[float, float]:
    """tau_alpha (tau) per temperature as an imported dataset states it (labels metadata 'tau_alpha')."""
    found = {}
    for path in labels_paths:
        meta = read_metadata(path)
        if meta.get("tau_alpha") is not None:
            found[float(meta["temperature"])] = float(meta["tau_alpha"])
    return found


def dataset_sources(labels_paths: list[Path]) -> list[dict]:
    """Provenance of imported data (source, license, citation), once per distinct source, with the files'
    names and sha256 checksums."""
    sources: dict[str, dict] = {}
    for path in labels_paths:
        provenance = read_metadata(path).get("provenance")
        if not provenance:
            continue
        key = provenance.get("source", "unknown")
        entry = sources.setdefault(
            key,
            {k: provenance.get(k) for k in ("format", "source", "license", "citation")} | {"files": []},
        )
        entry["files"].append({"file": provenance.get("file"), "sha256": provenance.get("sha256")})
    return list(sources.values())


def _float_or_none(value) -> float | None:
    value = float(value)
    return value if value == value else None


def stage_costs(benchmark_paths: list[Path]) -> pd.DataFrame:
    """Wall time per stage from Snakemake benchmark files (results/benchmarks/<stage>/<item>.tsv)."""
    rows = []
    for path in benchmark_paths:
        path = Path(path)
        if not path.exists():
            continue
        bench = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "stage": path.parent.name,
                "item": path.stem,
                "wall_s": float(bench["s"].iloc[0]),
                "max_rss_mb": float(bench["max_rss"].iloc[0]) if "max_rss" in bench else None,
            }
        )
    return pd.DataFrame(rows)


def build_report(
    config: dict,
    metrics_paths: list[Path],
    thermo_paths: list[Path],
    checks_paths: list[Path],
    results_dir: Path,
    benchmark_paths: list[Path],
    labels_paths: list[Path] | None = None,
    validation_paths: list[Path] | None = None,
) -> None:
    from glasspipe import config as cfg
    from glasspipe.report import summary as headline
    from glasspipe.report.figures import plot_correlations, plot_relaxation, plot_thermo
    from glasspipe.report.readme import write_results_readme
    from glasspipe.report.versions import software_versions

    outputs = report_outputs(config)
    metrics = pd.concat([read_table(p) for p in metrics_paths], ignore_index=True)
    write_table(metrics, outputs["metrics"], metadata={"stage": "report"})
    plan = cfg.split_plan(config)
    test_configurations = sorted({c for fold in plan for c in fold["test"]})
    # One entry per label the models learnt (models.<name>.target), each with its own noise ceiling.
    labels = sorted(set(metrics["label"].fillna("propensity"))) if "label" in metrics.columns else ["propensity"]
    label_ceilings = {
        label: headline.mean_ceiling(headline.noise_ceilings(labels_paths or [], label), test_configurations)
        for label in {"propensity", *labels}
    }
    ceiling = label_ceilings["propensity"]
    plot_correlations(
        metrics,
        outputs["figure_png"],
        outputs["figure_pdf"],
        outputs["figure_data"],
        ceiling=pd.concat([c.assign(label=label) for label, c in label_ceilings.items()], ignore_index=True),
    )

    # Imported datasets bring no thermodynamic logs or checks of ours: those tables stay empty.
    equilibration = equilibration_table(checks_paths)
    write_table(equilibration, outputs["equilibration"], metadata={"stage": "report"})
    # One figure per temperature, of its first configuration (thermo_paths: per temperature, per configuration).
    per_temperature = len(thermo_paths) // len(config["temperatures"]) if thermo_paths else 0
    for i, T in enumerate(config["temperatures"] if thermo_paths else []):
        plot_thermo(
            read_table(thermo_paths[i * per_temperature]),
            outputs[f"thermo_png_{i}"],
            outputs[f"thermo_pdf_{i}"],
            title=f"T = {T:g}, configuration 0",
        )

    relaxation = relaxation_table(labels_paths or [])
    write_table(relaxation, outputs["relaxation"], metadata={"stage": "report"})
    tau_alpha = dataset_tau_alpha(labels_paths or [])
    # An imported dataset's own tau_alpha stands where its few label times cannot locate the 1/e crossing.
    plot_relaxation(relaxation, outputs["relaxation_png"], outputs["relaxation_pdf"], stated_tau_alpha=tau_alpha)
    if not relaxation.empty:
        for T, value in relaxation.groupby("temperature")["tau_alpha"].first().items():
            tau_alpha.setdefault(float(T), _float_or_none(value))
    sizes = {f"fold{k}": {s: len(v) for s, v in fold.items()} for k, fold in enumerate(plan)}
    documents = [headline.headline(metrics, ceiling, tau_alpha, sizes)] if "propensity" in labels else []
    for label in (name for name in labels if name != "propensity"):
        documents.append(headline.headline(metrics, label_ceilings[label], tau_alpha, sizes, label=label))
    summary = headline.merge(documents)
    write_json(outputs["summary"], summary)

    costs = stage_costs(benchmark_paths)
    versions = software_versions()
    write_json(outputs["versions"], versions)
    with atomic_path(outputs["config"]) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))

    extra_tables, extra_lines = optional_evaluations(config, outputs, tau_alpha, labels_paths or [])
    reference_tables, reference_lines = reference_comparisons(config, outputs, summary, metrics, equilibration)
    extra_tables = reference_tables + extra_tables
    extra_lines = reference_lines + extra_lines

    model_tables = []
    label_column = metrics["label"].fillna("propensity") if "label" in metrics.columns else None
    for label in ["propensity", *(name for name in labels if name != "propensity")]:
        rows = metrics if label_column is None else metrics[label_column == label]
        if rows.empty:
            continue
        model_tables += _pearson_tables(rows, label_ceilings[label], label)
    model_tables += extra_tables
    validation = read_validation(validation_paths or [])
    write_table(validation, outputs["validation"], metadata={"stage": "report"})
    if not validation.empty:
        model_tables.append(
            (
                "Pearson correlation on the validation configurations, A particles: mean ± s.e.m. over (fold, "
                "configuration); settings are compared here (`glasspipe compare-runs`), never on the test ones",
                validation_table(validation),
            )
        )
    equilibration_tables = []
    if not equilibration.empty:
        equilibration_tables.append(("Equilibration", equilibration))
    physics_tables, physics_lines = physics_checks(config, outputs, equilibration, relaxation)
    equilibration_tables += physics_tables
    extra_lines = physics_lines + extra_lines
    cost_tables = []
    if not costs.empty:
        per_stage = costs.groupby("stage")["wall_s"].agg(["count", "sum", "mean"]).reset_index()
        cost_tables.append(("Cost per stage (Snakemake benchmarks)", per_stage))
    lines = []
    for title, frame in model_tables + equilibration_tables + cost_tables:
        lines += ([""] if lines else []) + [f"# {title}", "", frame.to_markdown(index=False)]
    write_html_tables(
        outputs["metrics_html"], "Models: correlation of predicted and true labels", model_tables + cost_tables
    )
    write_html_tables(
        outputs["equilibration_html"],
        "Equilibration checks and relaxation times",
        equilibration_tables,
        empty_note="This dataset was imported: glasspipe ran no equilibration, and its labels carry no F_s(q, t).",
    )
    with atomic_path(outputs["metrics_md"]) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

    root = Path(results_dir)
    files = {
        str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else str(p): desc
        for p, desc in describe_outputs(config).items()
    }
    timings = costs.groupby("stage")["wall_s"].sum().to_dict() if not costs.empty else None
    sources = dataset_sources(labels_paths or [])
    matched = not read_table(outputs["published"]).empty  # a published table at this state point
    write_results_readme(
        outputs["readme"],
        config,
        metrics,
        versions,
        files,
        timings,
        summary,
        sources,
        extra_sections=extra_lines,
        published_matched=matched,
    )


def relaxation_times(config: dict, relaxation: pd.DataFrame) -> pd.DataFrame:
    """tau_alpha where F_s(q, t) of the A particles (mean over configurations) crosses 1/e, per temperature,
    beside the config's tau_alpha estimate and their ratio (a dataset's 'tau_alpha' is often not the 1/e
    time: REFERENCE.md finds GlassBench's grid value about 1.6-1.8 times it)."""
    from glasspipe import config as cfg

    taus = relaxation.groupby("temperature")["tau_alpha"].first().reset_index()
    estimates = [cfg.tau_alpha_estimate(config, float(T)) for T in taus["temperature"]]
    taus["tau_alpha_estimate"] = estimates
    taus["estimate_over_1/e"] = [
        e / t if e is not None and t == t and t > 0 else None for e, t in zip(estimates, taus["tau_alpha"], strict=True)
    ]
    return taus


def physics_checks(
    config: dict, outputs: dict, equilibration: pd.DataFrame, relaxation: pd.DataFrame
) -> tuple[list[tuple[str, pd.DataFrame]], list[str]]:
    """The physics of a simulated run against the references: U/N and P (report/thermodynamics.parquet),
    F_s(q, t) of the A particles at every label time, tau_alpha (1/e) beside the estimate, and every failed
    equilibration check with its message. Returns (tables for equilibration.html, lines for the README)."""
    from glasspipe.report import references

    thermodynamics = references.thermodynamics_comparison(config, equilibration)
    write_table(thermodynamics, outputs["thermodynamics"], metadata={"stage": "report"})
    tables: list[tuple[str, pd.DataFrame]] = []
    lines: list[str] = []
    if not thermodynamics.empty:
        title = "Thermodynamics against the references (mean over configurations ± s.e.m.)"
        tables.append((title, thermodynamics))
        lines += [f"## {title}", "", thermodynamics.drop(columns=["reference_source"]).to_markdown(index=False), ""]
        sources = "; ".join(sorted(set(thermodynamics["reference_source"].dropna())))
        if sources:
            lines += [f"References: {sources} (`report/thermodynamics.parquet`).", ""]
    if not relaxation.empty:
        taus = relaxation_times(config, relaxation)
        title = "Relaxation time (F_s(q, t) of A particles = 1/e)"
        tables.append((title, taus))
        fs = relaxation.pivot_table(index="time", columns="temperature", values="fs_A").reset_index()
        fs.columns = ["t"] + [f"F_s(q, t), T = {T:g}" for T in fs.columns[1:]]
        tables.append(("F_s(q, t) of A particles at the label times (mean over configurations)", fs))
        lines += [f"## {title}", "", taus.to_markdown(index=False), "", fs.to_markdown(index=False), ""]
    if not equilibration.empty and "all_passed" in equilibration:
        failed = []
        for row in equilibration.itertuples():
            for column in equilibration.columns:
                if column.endswith("_passed") and column != "all_passed" and not bool(getattr(row, column)):
                    failed.append(f"T = {row.temperature:g}, configuration {row.configuration}: {column[:-7]}")
        lines += ["## Equilibration checks", ""]
        if failed:
            lines += [
                f"{len(failed)} check(s) failed; each configuration's `T<T>/equilibrate/cfgNNN.checks.json` says why:",
                "",
                *(f"- {item}" for item in failed),
                "",
            ]
        else:
            lines += [
                f"Every check passed on all {len(equilibration)} configurations (`report/equilibration.html`).",
                "",
            ]
    return tables, lines


def reference_comparisons(
    config: dict, outputs: dict, summary: dict, metrics: pd.DataFrame, equilibration: pd.DataFrame
) -> tuple[list[tuple[str, pd.DataFrame]], list[str]]:
    """The run beside the literature and its models beside each other: the published table at matching label
    times (report/published.parquet) and the paired differences (report/paired_differences.parquet).
    Returns (tables for metrics.md / metrics.html, lines for results/README.md)."""
    from glasspipe.report import references

    published = references.published_comparison(config, summary)
    write_table(
        published,
        outputs["published"],
        metadata={"stage": "report", "source": references.load()["correlations"]["source"]},
    )
    paired = references.paired_differences(metrics)
    write_table(paired, outputs["paired"], metadata={"stage": "report"})
    tables: list[tuple[str, pd.DataFrame]] = []
    lines: list[str] = []
    if not published.empty:
        wide = references.published_markdown(published)
        title = "Published models beside ours: mean ± s.e.m. over test configurations (pooled), A particles"
        tables.append((title, wide))
        source = references.load()["correlations"]
        lines += [
            f"## {title}",
            "",
            f"Published rows: {' '.join(source['source'].split())} ({source['repository']}, commit "
            f"{source['commit'][:12]}); glasspipe's models are marked [glasspipe]. `report/published.parquet`.",
            "",
            wide.to_markdown(index=False),
            "",
        ]
    if not paired.empty:
        title = "Paired differences between models (per test configuration, A particles): mean ± s.e.m."
        text = paired.assign(
            difference=[
                f"{m:+.3f} ± {s:.3f}" for m, s in zip(paired["mean_difference"], paired["sem_difference"], strict=True)
            ]
        )[["temperature", "label", "time", "model_a", "model_b", "difference", "n", "a_beats_b"]]
        tables.append((title, text))
        lines += [
            f"## {title}",
            "",
            "a_beats_b: 'yes' where model_a - model_b exceeds its s.e.m., 'no' where it is below minus its s.e.m., "
            "'unresolved' otherwise (`report/paired_differences.parquet`, with z = mean / s.e.m.).",
            "",
            text.to_markdown(index=False),
            "",
        ]
    return tables, lines


def optional_evaluations(
    config: dict, outputs: dict, tau_alpha: dict[float, float | None], labels_paths: list[Path]
) -> tuple[list[tuple[str, pd.DataFrame]], list[str]]:
    """The report's part for the optional evaluations: the transfer table (report/transfer.parquet and .md)
    and the learning-curve figure (report/learning_curve.png|pdf, its data in learning_curve.parquet), when
    the config asks for them. Returns (tables for metrics.md / metrics.html, lines for results/README.md)."""
    from glasspipe import config as cfg
    from glasspipe.learn import learning_curve, transfer
    from glasspipe.report import summary as headline
    from glasspipe.report.figures import plot_learning_curve
    from glasspipe.targets import extra_report_inputs

    inputs = extra_report_inputs(config)
    known_tau = {T: v for T, v in tau_alpha.items() if v is not None}
    tables: list[tuple[str, pd.DataFrame]] = []
    lines: list[str] = []
    if inputs["transfer"]:
        table = transfer.summary_table(pd.concat([read_table(p) for p in inputs["transfer"]], ignore_index=True))
        write_table(table, outputs["transfer"], metadata={"stage": "report", "convention": headline.CONVENTION})
        text = transfer.markdown_table(table)
        sentences = transfer.headline_lines(table, known_tau)
        title = "Transfer across temperatures: mean ± s.e.m. of the per-configuration Pearson (A particles)"
        with atomic_path(outputs["transfer_md"]) as tmp:
            tmp.write_text("\n".join([f"# {title}", "", *sentences, "", text.to_markdown(index=False), ""]))
        tables.append((title, text))
        unit = "t / tau_alpha" if transfer.time_basis(config) == "tau_alpha" else "t in tau"
        lines += [
            "## Transfer across temperatures",
            "",
            "Each model was trained on the pooled training configurations of the temperatures "
            f"{', '.join(f'{T:g}' for T in config['transfer']['train'])} and tested on the test configurations of "
            f"{', '.join(f'{T:g}' for T in config['transfer']['test'])}, beside the model trained at the test "
            f"temperature itself (in-temperature) on the same configurations; label times matched by {unit} "
            "(`report/transfer.md`, `report/transfer.parquet`, `transfer/<model>/`):",
            "",
            *sentences,
            "",
            text.to_markdown(index=False),
            "",
        ]
    if inputs["learning_curve"]:
        curve_metrics = pd.concat([read_table(p) for p in inputs["learning_curve"]], ignore_index=True)
        curve = learning_curve.curve_table(curve_metrics)
        times = learning_curve.figure_times(curve, config["learning_curve"]["time"], known_tau)
        test_configurations = sorted({c for fold in cfg.split_plan(config) for c in fold["test"]})
        ceilings = [
            headline.mean_ceiling(headline.noise_ceilings(labels_paths, label), test_configurations).assign(label=label)
            for label in sorted(curve["label"].unique())
        ]
        # The table holds every label time (the figure draws one): the distance to a published number at
        # any time splits into data and method only with the curve at that time.
        data = headline.with_ceiling(curve, pd.concat(ceilings, ignore_index=True))
        plot_learning_curve(
            learning_curve.at_figure_time(data, times),
            outputs["learning_curve_png"],
            outputs["learning_curve_pdf"],
            outputs["learning_curve"],
        )
        cells = data.assign(
            r=[format_mean_sem(m, s) for m, s in zip(data["mean_pearson"], data["sem_pearson"], strict=True)]
        )
        pivot = cells.pivot_table(index=["temperature", "time", "n_train"], columns="run", values="r", aggfunc="first")
        pivot = pivot.rename_axis(columns=None).reset_index()
        ceiling_of = data.groupby(["temperature", "time"])["ceiling"].first()
        pivot["noise ceiling"] = [
            f"{ceiling_of.get((T, t), float('nan')):.3f}"
            for T, t in zip(pivot["temperature"], pivot["time"], strict=True)
        ]
        title = (
            "Learning curve: mean ± s.e.m. of the per-configuration Pearson (A particles) vs training configurations"
        )
        tables.append((title, pivot))
        lines += [
            "## Learning curves",
            "",
            "Each model retrained on the first n training configurations (same validation and test "
            "configurations); the largest n is the model above. Every label time below; the figure "
            "(`report/learning_curve.png`, its data in `report/learning_curve.parquet`) draws one per temperature; "
            "per configuration in `T<T>/learning_curve/<model>.parquet`:",
            "",
            pivot.to_markdown(index=False),
            "",
        ]
        gains = learning_curve.doubling_gains(curve_metrics)
        if not gains.empty:
            slope = gains.assign(
                **{
                    "gain per doubling": [
                        format_mean_sem(g, e, signed=True)
                        for g, e in zip(gains["gain_per_doubling"], gains["sem_gain"], strict=True)
                    ],
                    "sizes": [f"{a} to {b}" for a, b in zip(gains["n_from"], gains["n_to"], strict=True)],
                }
            )[["run", "label", "temperature", "time", "sizes", "gain per doubling", "n_configurations"]]
            title = (
                "Learning curve, slopes: rise of the per-configuration Pearson (A particles) per doubling of "
                "the training set between consecutive sizes, paired by test configuration (mean ± s.e.m.)"
            )
            tables.append((title, slope))
            lines += [
                "The curves as slopes, paired by test configuration: how much the correlation rose per doubling "
                "of the training set from one size to the next (mean ± s.e.m. over the test configurations). "
                "Local slopes, not a forecast: where they are near zero, more of the same data is not what a "
                "better published number at that time had; a short step (10 against 8) has a wide error.",
                "",
                slope.to_markdown(index=False),
                "",
            ]
    return tables, lines


HTML_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
"""


def write_html_tables(
    path: str | Path, title: str, tables: list[tuple[str, pd.DataFrame]], empty_note: str = ""
) -> None:
    """A self-contained HTML page of ``tables`` ((heading, DataFrame) pairs), for `snakemake --report`, which
    shows HTML inline; numbers with 4 significant digits. With no tables, ``empty_note`` says why."""
    import html

    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{HTML_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    for heading, frame in tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0))
    if not tables:
        parts.append(f"<p>{html.escape(empty_note)}</p>")
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n")


def optional_outputs(config: dict) -> dict[Path, str]:
    """Descriptions of the files of the optional evaluations (transfer, learning curves) the config asks for."""
    from glasspipe.learn import learning_curve, transfer

    root = Path(config["results_dir"])
    described = {}
    if transfer.runs(config):
        described |= {
            root / "transfer" / "<model>" / "model": "model trained on the pooled train temperatures (transfer.train)",
            root / "transfer" / "<model>" / "metrics.parquet": "Pearson of the transfer and in-temperature models "
            "at each transfer.test temperature, with the noise ceiling",
            root / "transfer" / "<model>" / "predictions.parquet": "their predictions on the test configurations",
        }
    if learning_curve.runs(config):
        described |= {
            root / "T<T>" / "learning_curve" / "<model>" / "n<n>": "models trained on the first n training "
            "configurations of each fold (learning_curve.sizes)",
            root / "T<T>" / "learning_curve" / "<model>.parquet": "their Pearson correlations per n, and the full "
            "model's",
        }
    return described


def describe_outputs(config: dict) -> dict[str, str]:
    """What each kind of file in the results directory holds."""
    from glasspipe import config as cfg

    root = Path(config["results_dir"])
    T = "T<T>"
    imported = cfg.is_imported(config)
    shared = {
        root / T / "structure" / "cfgNNN.parquet": "descriptors per particle (structure.sets)",
        root / T / "models" / "<model>" / "fold<k>": "trained model of each fold: weights / JSON, training log",
        root / T / "predictions" / "<model>.parquet": "test-set predictions and targets, with their fold",
        root / T / "metrics" / "<model>.parquet": "Pearson and Spearman per time, type, configuration, pooled",
        root / T / "validation" / "<model>.parquet": "the same on each fold's validation configurations, with the "
        "fold: where settings are compared (`glasspipe compare-runs`)",
        root / "report": "summary.json, figures (PNG/PDF, data beside them), metrics.md, resolved config, versions",
        root / "logs": "one log file per job",
        root / "MANIFEST.sha256": "sha256 of every file (`glasspipe verify`, or `sha256sum -c`); MANIFEST.json: "
        "sizes, config hash, versions, code commit",
        root / "CITATION.cff": "how to cite these results: glasspipe and the sources and licenses of imported data",
        root / "benchmarks": "Snakemake benchmark (wall time, memory) per "
        + ("import, descriptor and training job" if imported else "simulation and training job"),
    }
    shared |= optional_outputs(config)
    if imported:
        return {
            root / T / "equilibrate" / "cfgNNN.gsd": "imported configuration, time origin of the labels (GSD; "
            "provenance, license and the original file's sha256 in its metadata)",
            root / T / "equilibrate" / "cfgNNN.inherent.gsd": "its inherent structure (the dataset's, or FIRE)",
            root / T / "labels" / "cfgNNN.parquet": "the dataset's labels at its times (long format), noise ceiling",
            **shared,
        }
    return {
        root / T / "init" / "cfgNNN.gsd": "seeded random start (GSD)",
        root / T / "equilibrate" / "cfgNNN.gsd": "equilibrated configuration, time origin of the labels (GSD)",
        root / T / "equilibrate" / "cfgNNN.inherent.gsd": "its inherent structure (FIRE energy minimum, GSD)",
        root / T / "equilibrate" / "cfgNNN.thermo.parquet": "thermodynamic log: time, phase, U/N, T_kin, P",
        root / T / "equilibrate" / "cfgNNN.checks.json": "equilibration checks: stationarity, temperature, crystal",
        root / T / "isoconf" / "cfgNNN" / "replicaRR.gsd": "NVE replica: frames at t = 0 and the label times",
        root / T / "labels" / "cfgNNN.parquet": "propensity per particle and label time (long format), noise ceiling",
        **shared,
    }
