"""Copy a finished run's generated report into docs/reference-runs/<name>/, with the commit and machine.

    python scripts/reference_run.py results demo
    python scripts/reference_run.py results-glassbench-T0.64 glassbench_T0.64

A reference run is what the README and docs point to instead of retyping numbers: the results README, the
report's tables (summary.json, metrics.md, the small Parquet tables behind them), figures (PNG), the
resolved config, software versions, CITATION.cff, the RO-Crate and the MANIFEST of the whole results
directory (so a reader can check the copied files against it). No trajectory, label or model file is
copied. RUN.md records the code commit of the run (from MANIFEST.json), the machine this script runs on
(which should be the one the run ran on), and the wall time per stage from the Snakemake benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("README.md", "CITATION.cff", "MANIFEST.sha256", "MANIFEST.json", "ro-crate-metadata.json")
REPORT_SUFFIXES = (".md", ".json", ".png", ".yaml", ".parquet")
# Per-particle tables are large and belong to the run, not to the docs.
REPORT_SKIP = ("metrics.parquet",)


def machine() -> str:
    """One line: OS, CPU model, cores, memory."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{memory}"


def stage_times(results: Path) -> pd.DataFrame:
    """Wall and CPU seconds per stage, summed over its jobs (Snakemake benchmark files)."""
    rows = []
    for path in sorted((results / "benchmarks").glob("*/*.tsv")):
        bench = pd.read_csv(path, sep="\t")
        rows.append(
            {"stage": path.parent.name, "wall_s": float(bench["s"].iloc[0]), "cpu_s": float(bench["cpu_time"].iloc[0])}
        )
    if not rows:
        return pd.DataFrame()
    table = (
        pd.DataFrame(rows)
        .groupby("stage")
        .agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    )
    return table.reset_index()


def publish(results: Path, name: str, wall_clock: str | None) -> Path:
    """Copy the report of ``results`` to docs/reference-runs/<name>/ and write RUN.md; returns that folder."""
    if not (results / "report" / "summary.json").exists():
        raise SystemExit(f"{results}: no report/summary.json; is the run finished?")
    target = REPO / "docs" / "reference-runs" / name
    # Replace what this script writes; keep anything else a person added beside it (e.g. input-comparison/).
    if (target / "report").exists():
        shutil.rmtree(target / "report")
    for item in (*TOP_LEVEL, "RUN.md"):
        (target / item).unlink(missing_ok=True)
    (target / "report").mkdir(parents=True)
    for item in TOP_LEVEL:
        if (results / item).exists():
            shutil.copy2(results / item, target / item)
    for path in sorted((results / "report").iterdir()):
        if path.suffix in REPORT_SUFFIXES and path.name not in REPORT_SKIP:
            shutil.copy2(path, target / "report" / path.name)
    manifest = json.loads((results / "MANIFEST.json").read_text()) if (results / "MANIFEST.json").exists() else {}
    git = manifest.get("git", {})
    commit = git.get("commit", "unknown") + (" (with uncommitted changes)" if git.get("dirty") else "")
    times = stage_times(results)
    here = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# Reference run: {name}",
        "",
        f"- results directory: `{results}`",
        f"- code of the run (MANIFEST.json): `{commit}`",
        f"- copied at commit `{here}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
    ]
    if wall_clock:
        lines.append(f"- wall clock of `snakemake` from start to report (measured by whoever ran it): {wall_clock}")
    lines += [
        "",
        "The files here are copies of the run's generated report; `MANIFEST.sha256` lists the sha256 of every",
        "file of the whole results directory, these included (`sha256sum -c` from a copy of the run).",
    ]
    if not times.empty:
        lines += [
            "",
            "## Cost per stage (sums over jobs; Snakemake benchmark files)",
            "",
            times.to_markdown(index=False),
        ]
    (target / "RUN.md").write_text("\n".join(lines) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the results directory of a finished run")
    parser.add_argument("name", help="folder name under docs/reference-runs/")
    parser.add_argument("--wall-clock", help="the run's measured wall clock, e.g. '14 min 3 s'")
    args = parser.parse_args()
    print(publish(args.results.resolve(), args.name, args.wall_clock))


if __name__ == "__main__":
    main()
