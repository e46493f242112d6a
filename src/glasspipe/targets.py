"""The files a config asks for: the lists the Snakefile's target rules and the report stage need."""

from __future__ import annotations

from pathlib import Path

from glasspipe import config as cfg
from glasspipe.layout import Layout


def report_inputs(config: dict) -> dict[str, list[Path]]:
    """Paths the report reads: metrics per (T, model), thermo logs and checks per (T, configuration)."""
    layout = Layout(config["results_dir"])
    temperatures = config["temperatures"]
    configurations = range(config["n_configurations"])
    models = cfg.enabled_models(config)
    return {
        "metrics": [layout.metrics(T, m) for T in temperatures for m in models],
        "thermo": [layout.thermo(T, c) for T in temperatures for c in configurations],
        "checks": [layout.checks(T, c) for T in temperatures for c in configurations],
        "labels": [layout.labels(T, c) for T in temperatures for c in configurations],
        "benchmarks": [
            *(layout.benchmark("equilibrate", T, c) for T in temperatures for c in configurations),
            *(layout.benchmark("isoconf", T, c) for T in temperatures for c in configurations),
            *(layout.benchmark("train", T, model=m) for T in temperatures for m in models),
        ],
    }


def report_outputs(config: dict) -> dict[str, Path]:
    """The files the report stage writes."""
    layout = Layout(config["results_dir"])
    report = layout.report_dir
    return {
        "readme": layout.readme,
        "figure_png": report / "correlation.png",
        "figure_pdf": report / "correlation.pdf",
        "figure_data": report / "correlation.parquet",
        "metrics": report / "metrics.parquet",
        "metrics_md": report / "metrics.md",
        "equilibration": report / "equilibration.parquet",
        "relaxation": report / "relaxation.parquet",
        "thermo_png": report / "thermo.png",
        "thermo_pdf": report / "thermo.pdf",
        "config": report / "config.resolved.yaml",
        "versions": report / "versions.json",
    }
