"""The results directory as an artifact: manifest, `glasspipe verify`, `glasspipe archive`, CITATION.cff.

Checksums are checked against hashlib run here on the files' bytes and against GNU `sha256sum -c` where it is
installed (an implementation sharing no code with glasspipe's).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake

from glasspipe import artifact
from glasspipe.io.tables import write_table

CONFIG = {"results_dir": "results", "seed": 7, "temperatures": [0.8]}
PROVENANCE = {
    "format": "botan",
    "file": "T0.44_cfg1_tc07.npz",
    "sha256": "ab" * 32,
    "source": "https://example.org/botan",
    "license": "Apache-2.0",
    "citation": "H. Shiba et al., J. Chem. Phys. 158, 084503 (2023)",
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glasspipe.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def results(tmp_path) -> Path:
    """A small results tree shaped like a real one (replicas, labels with provenance, logs, report), with its
    citation record and manifest written as the report stage writes them."""
    root = tmp_path / "results"
    files = {
        "README.md": b"# results\n",
        "T0.8/equilibrate/cfg000.gsd": bytes(range(256)) * 8,
        "T0.8/isoconf/cfg000/replica00.gsd": b"replica 0" * 100,
        "T0.8/isoconf/cfg000/replica01.gsd": b"replica 1" * 100,
        "logs/equilibrate/T0.8_cfg000.log": b"done\n",
        "report/summary.json": b'{"pearson": 0.5}\n',
        "report/report.log": b"",  # an empty file is a file too
    }
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    labels = pd.DataFrame({"particle": [0, 1], "time": [1.0, 1.0], "propensity": [0.1, 0.2]})
    write_table(labels, root / "T0.8" / "labels" / "cfg000.parquet", metadata={"provenance": PROVENANCE})
    (root / "logs" / "report.log").write_text("the report job's own log, still open\n")
    artifact.write_citation(root, CONFIG)
    artifact.write_manifest(root, CONFIG)
    return root


def manifest_lines(root: Path) -> dict[str, str]:
    lines = [line for line in (root / artifact.MANIFEST).read_text().splitlines() if not line.startswith("#")]
    return {line[66:]: line[:64] for line in lines}


def test_manifest_lists_every_file_with_its_sha256(results):
    """Every file but the manifest and the report job's log is listed, with the sha256 hashlib gives for its
    bytes (exact); the sidecar holds each size (exact), the config hash and the versions."""
    listed = manifest_lines(results)
    on_disk = {p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"MANIFEST.sha256", "logs/report.log"}
    for relative, digest in listed.items():
        assert digest == hashlib.sha256((results / relative).read_bytes()).hexdigest(), relative
    sidecar = json.loads((results / "MANIFEST.json").read_text())
    assert set(sidecar["files"]) == set(listed) - {"MANIFEST.json"}
    for relative, entry in sidecar["files"].items():
        assert entry["size"] == (results / relative).stat().st_size, relative
    from glasspipe.report.readme import config_hash

    assert sidecar["config_hash"] == config_hash(CONFIG)
    assert sidecar["versions"]["numpy"] == __import__("numpy").__version__
    assert "logs/report.log" in sidecar["not_covered"]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="GNU sha256sum not installed")
def test_manifest_checks_with_sha256sum(results):
    result = subprocess.run(["sha256sum", "-c", "--strict", artifact.MANIFEST], cwd=results, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_git_state_names_the_checkout_commit():
    """Run from this repository's source, the recorded commit is what git says HEAD is."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    state = artifact.git_state(REPO)
    assert state["commit"] == head.stdout.strip() and isinstance(state["dirty"], bool)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_state_does_not_count_the_runs_own_results_as_a_code_change(tmp_path, monkeypatch):
    """A checkout with a tracked results/README.md (the demo's placeholder), asked from a subdirectory as
    glasspipe asks from its source: the report replacing the README leaves the code clean (dirty False); a
    changed source file, or one in a directory whose name only starts like the results', makes it dirty."""
    monkeypatch.setenv("GIT_LITERAL_PATHSPECS", "1")  # must not change the answer
    repo = tmp_path / "checkout"
    for name in ("results/README.md", "src/code.py", "results2/data.txt", "res*/notes.txt"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("first\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    source = repo / "src"
    assert artifact.git_state(source)["dirty"] is False
    (repo / "results" / "README.md").write_text("the run's report\n")
    assert artifact.git_state(source)["dirty"] is True  # no results directory named: every tracked file counts
    assert artifact.git_state(source, outputs=repo / "results")["dirty"] is False
    assert artifact.git_state(source, outputs=tmp_path / "elsewhere")["dirty"] is True
    assert artifact.git_state(source, outputs=repo)["dirty"] is True  # the whole checkout is never "outputs"
    for name in ("results2/data.txt", "res*/notes.txt", "src/code.py"):
        subprocess.run([*git, "stash", "-q"], check=True, capture_output=True)
        (repo / name).write_text("changed\n")
        assert artifact.git_state(source, outputs=repo / "results")["dirty"] is True, name
        # "res*" names one directory, not a pattern: only its own file is the run's.
        assert artifact.git_state(source, outputs=repo / "res*")["dirty"] is (name != "res*/notes.txt"), name
    subprocess.run([*git, "checkout", "-q", "--", "."], check=True, capture_output=True)
    subprocess.run([*git, "mv", "src/code.py", "results/code.py"], check=True, capture_output=True)
    assert artifact.git_state(source, outputs=repo / "results")["dirty"] is True  # a rename out of the code


def test_verify_passes_on_a_fresh_manifest(results):
    result = artifact.verify(results)
    assert result.ok, result.lines()
    assert result.checked == len(manifest_lines(results))
    cli = run_cli("verify", str(results))
    assert cli.returncode == 0, cli.stderr
    assert "OK" in cli.stdout


def test_verify_names_a_file_with_one_byte_changed(results):
    """Same size, one byte flipped: the sha256 catches it, and the CLI exits non-zero naming the file."""
    target = results / "T0.8" / "equilibrate" / "cfg000.gsd"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0x01
    target.write_bytes(bytes(data))
    result = artifact.verify(results)
    assert not result.ok
    assert list(result.altered) == ["T0.8/equilibrate/cfg000.gsd"] and not result.missing and not result.extra
    cli = run_cli("verify", str(results))
    assert cli.returncode == 1
    assert "ALTERED  T0.8/equilibrate/cfg000.gsd" in cli.stderr


def test_verify_names_a_file_whose_size_changed(results):
    with open(results / "report" / "report.log", "ab") as handle:
        handle.write(b"x")
    assert artifact.verify(results).altered == {"report/report.log": "size 1 bytes, manifest says 0"}


def test_verify_names_a_deleted_file(results):
    (results / "T0.8" / "isoconf" / "cfg000" / "replica01.gsd").unlink()
    result = artifact.verify(results)
    assert result.missing == ["T0.8/isoconf/cfg000/replica01.gsd"] and not result.altered and not result.extra
    cli = run_cli("verify", str(results))
    assert cli.returncode == 1 and "MISSING  T0.8/isoconf/cfg000/replica01.gsd" in cli.stderr


def test_verify_names_an_added_file(results):
    (results / "T0.8" / "labels" / "cfg001.parquet").write_bytes(b"not in the manifest")
    result = artifact.verify(results)
    assert result.extra == ["T0.8/labels/cfg001.parquet"] and not result.missing and not result.altered
    cli = run_cli("verify", str(results))
    assert cli.returncode == 1 and "EXTRA    T0.8/labels/cfg001.parquet" in cli.stderr


def test_verify_ignores_what_the_manifest_does_not_cover(results):
    """Snakemake's report.html (made after the manifest), the report job's log, empty scratch directories."""
    (results / "report.html").write_text("<html></html>")
    (results / "logs" / "report.log").write_text("more log lines after the manifest\n")
    (results / "T0.8" / ".checkpoints" / "isoconf" / "cfg000").mkdir(parents=True)
    assert artifact.verify(results).ok


def test_verify_detects_an_edited_sidecar(results):
    """MANIFEST.json is itself checksummed: editing a size or the config hash there is caught."""
    sidecar = json.loads((results / "MANIFEST.json").read_text())
    sidecar["config_hash"] = "0" * 16
    (results / "MANIFEST.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    assert list(artifact.verify(results).altered) == ["MANIFEST.json"]


def test_verify_without_manifest_names_it(tmp_path):
    cli = run_cli("verify", str(tmp_path))
    assert cli.returncode == 2 and "MANIFEST.sha256" in cli.stderr and "no manifest" in cli.stderr


def test_malformed_manifest_line_is_named(results):
    with open(results / artifact.MANIFEST, "a") as handle:
        handle.write("not a checksum line\n")
    with pytest.raises(artifact.ManifestError, match="MANIFEST.sha256: line"):
        artifact.verify(results)


def test_citation_lists_the_imported_source_and_glasspipe(results):
    record = yaml.safe_load((results / "CITATION.cff").read_text())
    assert record["cff-version"] == "1.2.0"
    titles = [ref["title"] for ref in record["references"]]
    assert titles == ["glasspipe", "botan dataset"]
    dataset = record["references"][1]
    assert dataset["license"] == "Apache-2.0" and dataset["url"] == PROVENANCE["source"]
    assert PROVENANCE["citation"] in dataset["notes"] and PROVENANCE["sha256"] in dataset["notes"]


def extract(archive_path: Path, into: Path) -> Path:
    with tarfile.open(archive_path) as tar:
        tar.extractall(into, filter="data")
    return into / "results"


def test_archive_round_trip_verifies_and_is_reproducible(results, tmp_path):
    (results / "report.html").write_text("<html>the snakemake report</html>")
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    cli = run_cli("archive", str(results), str(first))
    assert cli.returncode == 0, cli.stderr
    artifact.archive(results, second)
    assert first.read_bytes() == second.read_bytes()  # same results, same bytes
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert len({m.mtime for m in members}) == 1 and {m.uid for m in members} == {0}
    assert "results/report.html" in names and "results/T0.8/isoconf/cfg000/replica00.gsd" in names
    unpacked = extract(first, tmp_path / "out")
    assert artifact.verify(unpacked).ok
    # The manifest travels unchanged when nothing is left out.
    assert (unpacked / "MANIFEST.sha256").read_bytes() == (results / "MANIFEST.sha256").read_bytes()
    for path in results.rglob("*"):
        if path.is_file() and path.name != "report.log":
            assert (unpacked / path.relative_to(results)).read_bytes() == path.read_bytes()


def test_archive_without_replicas_marks_them_excluded(results, tmp_path):
    out = tmp_path / "small.tar.gz"
    cli = run_cli("archive", str(results), str(out), "--without-replicas")
    assert cli.returncode == 0, cli.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert not [n for n in names if "replica" in n]
    unpacked = extract(out, tmp_path / "out")
    result = artifact.verify(unpacked)
    assert result.ok, result.lines()
    assert result.excluded == ["T0.8/isoconf/cfg000/replica00.gsd", "T0.8/isoconf/cfg000/replica01.gsd"]
    sidecar = json.loads((unpacked / "MANIFEST.json").read_text())
    replica = results / "T0.8" / "isoconf" / "cfg000" / "replica00.gsd"
    entry = sidecar["excluded"]["T0.8/isoconf/cfg000/replica00.gsd"]
    assert entry["sha256"] == hashlib.sha256(replica.read_bytes()).hexdigest()
    assert "without-replicas" in entry["reason"]
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.sha256"], cwd=unpacked, capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    # A replica put back must still match the checksum it was excluded with.
    (unpacked / "T0.8" / "isoconf" / "cfg000").mkdir(parents=True)
    (unpacked / "T0.8" / "isoconf" / "cfg000" / "replica00.gsd").write_bytes(b"something else")
    assert list(artifact.verify(unpacked).altered) == ["T0.8/isoconf/cfg000/replica00.gsd"]


def test_archive_refuses_an_altered_results_directory(results, tmp_path):
    (results / "README.md").write_text("# edited\n")
    out = tmp_path / "a.tar.gz"
    cli = run_cli("archive", str(results), str(out))
    assert cli.returncode == 2 and "ALTERED  README.md" in cli.stderr
    assert not out.exists()


def test_archive_adds_a_citation_when_the_results_have_none(results, tmp_path):
    (results / "CITATION.cff").unlink()
    artifact.write_manifest(results, CONFIG)
    artifact.archive(results, tmp_path / "a.tar.gz")
    unpacked = extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert "botan dataset" in (unpacked / "CITATION.cff").read_text()
    assert artifact.verify(unpacked).ok


# --- through the workflow: the report stage writes the manifest; `snakemake --report` shows our items ---------
REPORT_DIR = REPO / "workflow" / "report"
# category -> subcategory -> results items, as workflow/rules/report.smk declares them for the tiny config.
EXPECTED_CATEGORIES = {
    "Models": {"Correlation": ["results/report/correlation.png"], "Tables": ["results/report/metrics.html"]},
    "Equilibration": {"Checks": ["results/report/equilibration.html"], "T = 0.8": ["results/report/thermo_T0.8.png"]},
    "Relaxation": {"F_s(q, t)": ["results/report/relaxation.png"]},
    "Provenance": {
        "Settings": ["results/report/config.resolved.yaml", "results/report/versions.json"],
        "Artifact": ["results/CITATION.cff", "results/MANIFEST.sha256"],
    },
}
CAPTIONS = {  # item -> caption file; each caption opens with a bold title
    "correlation.png": "correlation.rst",
    "metrics.html": "metrics.rst",
    "thermo_T0.8.png": "thermo.rst",
    "equilibration.html": "equilibration.rst",
    "relaxation.png": "relaxation.rst",
}


def embedded_json(html: str, name: str) -> dict:
    """The JSON the Snakemake HTML report embeds as ``var <name> = {...};`` (results, categories)."""
    import re

    match = re.search(rf"^\s*var {name} = (\{{.*\}});\s*$", html, re.M)
    assert match, f"no 'var {name} = ...' in the report"
    return json.loads(match.group(1))


@pytest.mark.slow
def test_report_stage_writes_a_manifest_that_verifies(tiny_run, tmp_path):
    root = tiny_run / "results"
    result = artifact.verify(root)
    assert result.ok, result.lines()
    sidecar = json.loads((root / "MANIFEST.json").read_text())
    covered = set(artifact.list_files(root)) - {"MANIFEST.json"}
    assert set(sidecar["files"]) == covered and len(covered) > 50
    assert sidecar["config_hash"] in (root / "README.md").read_text()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert sidecar["git"]["commit"] == head.stdout.strip()
    assert [r["title"] for r in yaml.safe_load((root / "CITATION.cff").read_text())["references"]] == ["glasspipe"]
    # The report stage's RO-Crate, read back with rocrate's own reader (tests/test_rocrate.py: the details).
    from rocrate.rocrate import ROCrate

    crate = ROCrate(root)
    assert crate.mainEntity.id == "#Snakefile" and result.crate_checked and not result.crate
    (action,) = crate.get_by_type("CreateAction")
    inputs = action["object"] if isinstance(action["object"], list) else [action["object"]]
    assert [entity.id for entity in inputs] == ["report/config.resolved.yaml"]  # simulated: no external data
    assert "report/summary.json" in {entity.id for entity in action["result"]}
    # On a copy: one byte of the summary changed and one replica deleted are both named.
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    summary = copy / "report" / "summary.json"
    data = bytearray(summary.read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")
    summary.write_bytes(bytes(data))
    (copy / "T0.8" / "isoconf" / "cfg001" / "replica02.gsd").unlink()
    cli = run_cli("verify", str(copy))
    assert cli.returncode == 1
    assert "ALTERED  report/summary.json" in cli.stderr and "MISSING  T0.8/isoconf/cfg001/replica02.gsd" in cli.stderr


@pytest.mark.slow
def test_snakemake_report_embeds_our_figures_with_captions(tiny_run):
    result = snakemake(tiny_run, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (tiny_run / "results" / "report.html").read_text()
    assert embedded_json(html, "categories") == EXPECTED_CATEGORIES
    results = embedded_json(html, "results")
    for path, caption_file in CAPTIONS.items():
        item = results[f"results/report/{path}"]
        title = (REPORT_DIR / caption_file).read_text().split("**")[1]  # the caption's bold opening words
        assert title in item["caption"], path
        # The item is the file itself, embedded (base64 data URI), not a link to it.
        payload = item["data_uri"].split("base64,", 1)[1]
        assert base64.b64decode(payload) == (tiny_run / "results" / "report" / path).read_bytes(), path
    assert "from a Kob-Andersen glass former to graph networks" in html  # the global description
    # Made after the manifest, the report is not one of the files it covers: the results still verify.
    assert artifact.verify(tiny_run / "results").ok
