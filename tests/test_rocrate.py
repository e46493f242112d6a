"""The results directory as a Workflow Run RO-Crate: ro-crate-metadata.json, read back with rocrate's own reader.

The crate is written by :func:`glasspipe.artifact.write_manifest` (the report stage's last step) from the same
checksums as the manifest; `glasspipe verify` reads it back and checks the files it describes. Checksums are
checked here against hashlib on the files' bytes, not against glasspipe's own helper.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from rocrate.rocrate import ROCrate

from glasspipe import artifact
from glasspipe.io.tables import write_table
from glasspipe.report.versions import software_versions

CONFIG = {"results_dir": "results", "seed": 7, "temperatures": [0.8]}
PROVENANCE = {
    "format": "botan",
    "file": "T0.44_cfg1_tc07.npz",
    "sha256": "ab" * 32,
    "source": "https://github.com/h3-Open-BDEC/pyg_botan",
    "license": "Apache-2.0",
    "citation": "H. Shiba et al., J. Chem. Phys. 158, 084503 (2023)",
}
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5",
    "https://w3id.org/ro/wfrun/workflow/0.5",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glasspipe.cli", *args], capture_output=True, text=True, timeout=120)


def make_results(root: Path, imported: bool) -> Path:
    """A small results tree shaped like a real one (what the report stage writes, a replica, labels, a log),
    with CITATION.cff, ro-crate-metadata.json and the manifest written as the report stage writes them.
    ``imported``: the labels carry an imported dataset's provenance (as glasspipe.importers writes it)."""
    files = {
        "README.md": b"# results\n",
        "T0.8/equilibrate/cfg000.gsd": bytes(range(256)) * 8,
        "T0.8/isoconf/cfg000/replica00.gsd": b"replica 0" * 100,
        "T0.8/isoconf/cfg000/replica01.gsd": b"replica 1" * 100,
        "logs/equilibrate/T0.8_cfg000.log": b"done\n",
        "report/summary.json": b'{"pearson": 0.5}\n',
        "report/config.resolved.yaml": b"results_dir: results\nseed: 7\ntemperatures: [0.8]\n",
        "report/versions.json": json.dumps(software_versions(), indent=2, sort_keys=True).encode() + b"\n",
    }
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    labels = pd.DataFrame({"particle": [0, 1], "time": [1.0, 1.0], "propensity": [0.1, 0.2]})
    metadata = {"provenance": PROVENANCE} if imported else {"stage": "labels"}
    write_table(labels, root / "T0.8" / "labels" / "cfg000.parquet", metadata=metadata)
    (root / "logs" / "report.log").write_text("the report job's own log, still open\n")
    artifact.write_citation(root, CONFIG)
    artifact.write_manifest(root, CONFIG)
    return root


@pytest.fixture
def results(tmp_path) -> Path:
    """Results of a run on an imported dataset (BOTAN, Apache-2.0)."""
    return make_results(tmp_path / "results", imported=True)


@pytest.fixture
def simulated(tmp_path) -> Path:
    """Results of a simulated run: no external data inputs."""
    return make_results(tmp_path / "simulated", imported=False)


def types(entity) -> set[str]:
    return set(entity.type if isinstance(entity.type, list) else [entity.type])


def ids(value) -> set[str]:
    """The @ids of an entity property read back by rocrate (one entity or a list of them)."""
    return {entity.id for entity in (value if isinstance(value, list) else [value])}


def run_action(crate: ROCrate):
    actions = crate.get_by_type("CreateAction")
    assert len(actions) == 1, actions
    return actions[0]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_crate_reads_back_as_a_workflow_run_crate(results):
    """rocrate's reader finds the root, the profiles, the Snakemake workflow as main entity and the run."""
    crate = ROCrate(results)
    assert crate.version == "1.1"
    assert {profile["@id"] for profile in crate.metadata.properties()["conformsTo"]} == {
        "https://w3id.org/ro/crate/1.1",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
    }
    assert ids(crate.root_dataset["conformsTo"]) == PROFILES
    workflow = crate.mainEntity
    assert workflow.id == "#Snakefile"
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow"} <= types(workflow)
    assert workflow["programmingLanguage"].id == "https://w3id.org/workflowhub/workflow-ro-crate#snakemake"
    assert workflow["programmingLanguage"]["name"] == "Snakemake"
    # The Snakefile this checkout runs, by its checksum (it is described, not copied into the results).
    snakefile = Path(__file__).resolve().parents[1] / "Snakefile"
    assert workflow["sha256"] == sha256_of(snakefile)
    action = run_action(crate)
    assert action["instrument"] is workflow
    assert ids(crate.root_dataset["mentions"]) == {action.id}
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"


def test_run_times_bracket_the_outputs(results):
    """startTime: the first output's modification time; endTime: the manifest's creation time, no earlier."""
    action = run_action(ROCrate(results))
    start = datetime.fromisoformat(action["startTime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(action["endTime"].replace("Z", "+00:00"))
    sidecar = json.loads((results / "MANIFEST.json").read_text())
    assert action["endTime"] == sidecar["created"]
    first = min((results / relative).stat().st_mtime for relative in sidecar["files"])
    assert abs(start.timestamp() - first) < 1.0 and start <= end


def test_inputs_are_the_config_and_the_imported_files_with_sha256_and_license(results):
    action = run_action(ROCrate(results))
    inputs = {entity.id: entity for entity in action["object"]}
    assert set(inputs) == {"report/config.resolved.yaml", "#input/botan/T0.44_cfg1_tc07.npz"}
    config = inputs["report/config.resolved.yaml"]
    assert config["sha256"] == sha256_of(results / "report" / "config.resolved.yaml")
    original = inputs["#input/botan/T0.44_cfg1_tc07.npz"]
    assert original["name"] == "T0.44_cfg1_tc07.npz" and original["sha256"] == PROVENANCE["sha256"]
    assert original["license"].id == "https://spdx.org/licenses/Apache-2.0"
    assert original["license"]["identifier"] == "Apache-2.0"
    assert original["url"] == PROVENANCE["source"] and original["citation"] == PROVENANCE["citation"]


def test_simulated_run_has_no_external_inputs(simulated):
    crate = ROCrate(simulated)
    action = run_action(crate)
    assert ids(action["object"]) == {"report/config.resolved.yaml"}
    assert not [entity for entity in crate.get_entities() if entity.id.startswith("#input/")]
    assert not [entity for entity in crate.get_entities() if entity.id.startswith("https://spdx.org/")]


def test_outputs_are_every_other_file_with_size_and_sha256(results):
    """The crate's files are the manifest's, with the same sha256 (checked here on the bytes); it lists the
    manifest pair (written after it, so without checksums) and never itself."""
    crate = ROCrate(results)
    sidecar = json.loads((results / "MANIFEST.json").read_text())
    described = {entity.id: entity for entity in crate.data_entities}
    assert set(described) == set(sidecar["files"]) - {"ro-crate-metadata.json"} | {"MANIFEST.sha256", "MANIFEST.json"}
    for relative in set(sidecar["files"]) - {"ro-crate-metadata.json"}:
        entity = described[relative]
        assert entity["sha256"] == sha256_of(results / relative), relative
        assert entity["contentSize"] == str((results / relative).stat().st_size), relative
    assert "sha256" not in described["MANIFEST.sha256"] and "sha256" not in described["MANIFEST.json"]
    action = run_action(crate)
    expected = set(sidecar["files"]) - {"ro-crate-metadata.json", "report/config.resolved.yaml"}
    assert ids(action["result"]) == expected


def test_software_versions_are_those_of_versions_json(results):
    crate = ROCrate(results)
    recorded = json.loads((results / "report" / "versions.json").read_text())
    apps = {app["name"]: app for app in crate.get_by_type("SoftwareApplication")}
    installed = {name for name, version in recorded.items() if name != "platform" and version != "not installed"}
    assert set(apps) == installed
    for name in installed:
        assert apps[name]["softwareVersion"] == recorded[name], name
    assert apps["numpy"]["url"] == "https://pypi.org/project/numpy/"
    assert ids(crate.mainEntity["softwareRequirements"]) == {app.id for app in apps.values()}


def test_manifest_lists_the_crate_and_only_adds_it(tmp_path):
    """The crate is one more file: the other files keep their bytes (summary.json included), the manifest
    lists the crate by its sha256, and nothing is left behind by the atomic write."""
    plain = make_results(tmp_path / "plain", imported=True)
    before = {p.relative_to(plain).as_posix(): p.read_bytes() for p in plain.rglob("*") if p.is_file()}
    artifact.write_manifest(plain, CONFIG)  # a rerun of the report stage's last step rewrites the crate
    after = {p.relative_to(plain).as_posix(): p.read_bytes() for p in plain.rglob("*") if p.is_file()}
    rewritten = {"MANIFEST.sha256", "MANIFEST.json", "ro-crate-metadata.json"}
    assert set(after) == set(before)
    assert {k: v for k, v in after.items() if k not in rewritten} == {
        k: v for k, v in before.items() if k not in rewritten
    }
    listed = artifact.parse_sha256_lines((plain / "MANIFEST.sha256").read_text(), plain / "MANIFEST.sha256")
    assert listed["ro-crate-metadata.json"] == sha256_of(plain / "ro-crate-metadata.json")
    assert not list(plain.rglob("*.partial"))


def test_failed_crate_write_leaves_no_crate_and_no_manifest(tmp_path, monkeypatch):
    root = tmp_path / "results"
    (root / "report").mkdir(parents=True)
    (root / "report" / "summary.json").write_text("{}\n")

    def broken(*args, **kwargs):
        raise RuntimeError("killed while building the crate")

    monkeypatch.setattr(artifact, "crate_record", broken)
    with pytest.raises(RuntimeError):
        artifact.write_manifest(root, CONFIG)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["report/summary.json"]


def test_verify_checks_the_crate(results):
    result = artifact.verify(results)
    assert result.ok, result.lines()
    assert result.crate_checked == len(list(ROCrate(results).data_entities)) and not result.crate
    cli = run_cli("verify", str(results))
    assert cli.returncode == 0, cli.stderr
    assert f"ro-crate-metadata.json: {result.crate_checked} files checked, 0 problems" in cli.stdout


def test_verify_names_a_file_that_differs_from_the_crate(results):
    """One byte of summary.json changed: the manifest and the crate both name it."""
    summary = results / "report" / "summary.json"
    data = bytearray(summary.read_bytes())
    data[3] ^= 0x01
    summary.write_bytes(bytes(data))
    result = artifact.verify(results)
    assert list(result.altered) == ["report/summary.json"]
    assert result.crate == {"report/summary.json": "sha256 differs from ro-crate-metadata.json"}


def reseal(root: Path) -> None:
    """Update the manifest pair to the crate's current checksum, as a forger would, so that only the crate's
    own check can catch what was edited in it."""
    sidecar = json.loads((root / "MANIFEST.json").read_text())
    crate = root / "ro-crate-metadata.json"
    sidecar["files"]["ro-crate-metadata.json"] = {"size": crate.stat().st_size, "sha256": sha256_of(crate)}
    artifact._write_pair(root, sidecar)


def test_verify_refuses_a_tampered_crate(results):
    """A checksum edited in the crate: the manifest names the crate as altered, and with the manifest resealed
    to the edited crate, the crate's own check still names the file whose checksum no longer matches."""
    path = results / "ro-crate-metadata.json"
    record = json.loads(path.read_text())
    for entity in record["@graph"]:
        if entity["@id"] == "T0.8/equilibrate/cfg000.gsd":
            entity["sha256"] = "0" * 64
    path.write_text(json.dumps(record, indent=2))
    result = artifact.verify(results)
    assert list(result.altered) == ["ro-crate-metadata.json"]
    assert result.crate == {"T0.8/equilibrate/cfg000.gsd": "sha256 differs from ro-crate-metadata.json"}
    reseal(results)
    result = artifact.verify(results)
    assert not result.altered and not result.ok
    cli = run_cli("verify", str(results))
    assert cli.returncode == 1
    assert "CRATE    T0.8/equilibrate/cfg000.gsd (sha256 differs from ro-crate-metadata.json)" in cli.stderr


def test_verify_names_a_file_the_crate_lists_and_that_is_gone(results):
    """A file added to the crate that does not exist (manifest resealed) is named; so is one deleted."""
    path = results / "ro-crate-metadata.json"
    record = json.loads(path.read_text())
    record["@graph"].append({"@id": "report/ghost.png", "@type": "File", "sha256": "1" * 64})
    root_entity = next(entity for entity in record["@graph"] if entity["@id"] == "./")
    root_entity["hasPart"].append({"@id": "report/ghost.png"})
    path.write_text(json.dumps(record, indent=2))
    reseal(results)
    (results / "logs" / "equilibrate" / "T0.8_cfg000.log").unlink()
    result = artifact.verify(results)
    assert result.missing == ["logs/equilibrate/T0.8_cfg000.log"]
    assert result.crate == {
        "report/ghost.png": "listed in ro-crate-metadata.json, missing",
        "logs/equilibrate/T0.8_cfg000.log": "listed in ro-crate-metadata.json, missing",
    }


def test_verify_names_a_crate_that_does_not_read(results):
    (results / "ro-crate-metadata.json").write_text('{"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": [')
    reseal(results)
    result = artifact.verify(results)
    assert list(result.crate) == ["ro-crate-metadata.json"]
    assert result.crate["ro-crate-metadata.json"].startswith("not a readable RO-Crate: JSONDecodeError")
    assert not result.ok


def test_results_without_a_crate_still_verify(tmp_path):
    """Results written before glasspipe wrote a crate (or with crate=False) verify on their manifest alone."""
    root = tmp_path / "results"
    (root / "report").mkdir(parents=True)
    (root / "report" / "summary.json").write_text("{}\n")
    artifact.write_manifest(root, CONFIG, crate=False)
    result = artifact.verify(root)
    assert result.ok and result.crate_checked is None
    assert result.lines()[-1].endswith("; no ro-crate-metadata.json")


def test_archive_without_replicas_keeps_a_crate_that_verifies(results, tmp_path):
    """The crate travels unchanged; the replicas it lists are excluded by the archive's manifest, so their
    absence is not a problem, and the crate still reads back with rocrate after extraction."""
    out = tmp_path / "small.tar.gz"
    artifact.archive(results, out, without_replicas=True)
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    unpacked = tmp_path / "out" / "results"
    assert (unpacked / "ro-crate-metadata.json").read_bytes() == (results / "ro-crate-metadata.json").read_bytes()
    result = artifact.verify(unpacked)
    assert result.ok, result.lines()
    assert "T0.8/isoconf/cfg000/replica00.gsd" in ids(run_action(ROCrate(unpacked))["result"])
