"""The files a config asks for: the lists the Snakefile's target rules and the report stage need."""

from __future__ import annotations

from pathlib import Path

from glasspipe import config as cfg
from glasspipe.layout import Layout


def report_inputs(config: dict) -> dict[str, list[Path]]:
    """Paths the report reads: metrics per (T, model), labels per (T, configuration) and, for simulated
    data, thermodynamic logs and checks; the Snakemake benchmark files of the costly jobs."""
    layout = Layout(config["results_dir"])
    temperatures = config["temperatures"]
    configurations = range(config["n_configurations"])
    models = cfg.model_runs(config)
    folds = range(len(cfg.split_plan(config)))
    simulated = not cfg.is_imported(config)
    per_configuration = [(T, c) for T in temperatures for c in configurations]
    data_stages = ("equilibrate", "isoconf") if simulated else ("import",)
    return {
        "metrics": [layout.metrics(T, m) for T in temperatures for m in models],
        "validation": [layout.validation_metrics(T, m) for T in temperatures for m in models],
        "thermo": [layout.thermo(T, c) for T, c in per_configuration] if simulated else [],
        "checks": [layout.checks(T, c) for T, c in per_configuration] if simulated else [],
        "labels": [layout.labels(T, c) for T, c in per_configuration],
        "benchmarks": [
            *(layout.benchmark(stage, T, c) for stage in (*data_stages, "structure") for T, c in per_configuration),
            *(layout.benchmark("train", T, model=f"{m}_fold{k}") for T in temperatures for m in models for k in folds),
        ],
        **extra_report_inputs(config),
    }


def extra_report_inputs(config: dict) -> dict[str, list[Path]]:
    """The metrics of the optional evaluations the report tabulates: transfer across temperatures
    (glasspipe.learn.transfer) and learning curves (glasspipe.learn.learning_curve); empty lists when off."""
    from glasspipe.learn import learning_curve, transfer

    layout = Layout(config["results_dir"])
    curve_runs = learning_curve.runs(config)
    return {
        "transfer": [layout.transfer_metrics(m) for m in transfer.runs(config)],
        "learning_curve": [layout.learning_curve_metrics(T, m) for T in config["temperatures"] for m in curve_runs],
    }


def extra_report_outputs(config: dict) -> dict[str, Path]:
    """The report files of the optional evaluations, when the config asks for them."""
    from glasspipe.learn import learning_curve, transfer

    report = Layout(config["results_dir"]).report_dir
    outputs = {}
    if transfer.runs(config):
        outputs |= {"transfer": report / "transfer.parquet", "transfer_md": report / "transfer.md"}
    if learning_curve.runs(config):
        outputs |= {
            "learning_curve": report / "learning_curve.parquet",
            "learning_curve_png": report / "learning_curve.png",
            "learning_curve_pdf": report / "learning_curve.pdf",
        }
    return outputs


def report_outputs(config: dict) -> dict[str, Path]:
    """The files the report stage writes."""
    layout = Layout(config["results_dir"])
    report = layout.report_dir
    outputs = {
        "readme": layout.readme,
        "figure_png": report / "correlation.png",
        "figure_pdf": report / "correlation.pdf",
        "figure_data": report / "correlation.parquet",
        "summary": report / "summary.json",
        "metrics": report / "metrics.parquet",
        "metrics_md": report / "metrics.md",
        "metrics_html": report / "metrics.html",
        "validation": report / "validation.parquet",
        "equilibration_html": report / "equilibration.html",
        "equilibration": report / "equilibration.parquet",
        "relaxation": report / "relaxation.parquet",
        "relaxation_png": report / "relaxation.png",
        "relaxation_pdf": report / "relaxation.pdf",
        # The run beside the literature (glasspipe.report.references): published correlations at matching
        # label times, paired differences between the models, thermodynamics against the references.
        "published": report / "published.parquet",
        "paired": report / "paired_differences.parquet",
        "thermodynamics": report / "thermodynamics.parquet",
        "config": report / "config.resolved.yaml",
        "versions": report / "versions.json",
        # Written last by the report stage (glasspipe.artifact): the citation record, the Workflow Run RO-Crate,
        # then the manifest.
        "citation": layout.root / "CITATION.cff",
        "crate": layout.root / "ro-crate-metadata.json",
        "manifest_json": layout.root / "MANIFEST.json",
        "manifest": layout.root / "MANIFEST.sha256",
    }
    if not cfg.is_imported(config):  # imported data bring no thermodynamic log of ours to draw
        outputs |= thermo_figures(config)
    outputs |= extra_report_outputs(config)
    return outputs


def thermo_figures(config: dict) -> dict[str, Path]:
    """The thermodynamic-log figures, one per temperature (of its configuration 0): keys thermo_png_<i> and
    thermo_pdf_<i>, i the temperature's index in the config; files report/thermo_T<T>.png|pdf."""
    report = Layout(config["results_dir"]).report_dir
    figures = {}
    for i, T in enumerate(config["temperatures"]):
        tag = cfg.temperature_tag(T)
        figures[f"thermo_png_{i}"] = report / f"thermo_{tag}.png"
        figures[f"thermo_pdf_{i}"] = report / f"thermo_{tag}.pdf"
    return figures
