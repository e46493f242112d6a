"""A results directory as a verifiable artifact: checksum manifest, verification, reproducible archive.

Files (all below the results directory ``results/``):

``MANIFEST.sha256``
    One ``<sha256>  <path>`` line per file, paths relative to ``results/``, sorted: the format of GNU
    ``sha256sum``, so ``cd results && sha256sum -c MANIFEST.sha256`` checks it without glasspipe. A header of
    ``#`` comment lines (which ``sha256sum -c`` skips) names the config hash, the code's git commit and the
    sidecar. It is written last, atomically: its presence means every other file was complete.
``MANIFEST.json``
    The sidecar, itself listed in ``MANIFEST.sha256`` (so it cannot be edited unnoticed): format version,
    creation time (UTC), config hash, package versions, git commit and whether the tree was dirty, each
    file's size (bytes) and sha256, the files left out of an archive (``excluded``, with size, sha256 and
    why) and the path patterns the manifest does not cover (``not_covered``, with why).
``CITATION.cff``
    Citation File Format 1.2.0 record: glasspipe itself, and each imported dataset's source, license,
    citation and the sha256 of its original files (from the labels' Parquet metadata, written by the
    importers).
``ro-crate-metadata.json``
    The directory as a Workflow Run RO-Crate (RO-Crate 1.1; profiles Process Run Crate 0.5, Workflow Run
    Crate 0.5, Workflow RO-Crate 1.0), so that WorkflowHub, Zenodo and other RO-Crate readers understand it:
    the workflow (``#Snakefile``, programming language Snakemake), one CreateAction for the run (start and end
    time, instrument the workflow, object the resolved config and the imported dataset files with their sha256
    and license, result every other file), the software versions, and every file with its size and sha256.
    Written by :func:`write_manifest` just before the manifest pair, from the same checksums; the manifest
    lists it (so an edit is caught), it lists the manifest pair without checksums (written after it).

Not covered (see :data:`NOT_COVERED`): the manifest itself, the log of the report job that writes it (still
open while it is written), Snakemake's own ``report.html`` / ``report.zip`` (made afterwards from the finished
results by ``snakemake --report``), Snakemake's ``.snakemake_timestamp`` markers and the resumable stages'
scratch directories ``.checkpoints/`` (empty once their jobs finish). Every other file is covered,
including the other job logs and benchmarks: they are complete when the report stage runs.

Public API::

    build(config)                                         # the report stage: report, citation, manifest
    write_manifest(results_dir, config=None) -> Path      # the report stage's last step
    verify(results_dir) -> Verification                   # .ok, .missing, .altered, .extra, .excluded
    archive(results_dir, out_tar_gz, without_replicas=False) -> list[str]   # the member names
    write_citation(results_dir, config=None) -> Path
    write_crate(results_dir, files, ...) -> Path            # called by write_manifest
    check_crate(results_dir, ...) -> (checked, problems)   # called by verify
"""

from __future__ import annotations

import calendar
import fnmatch
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

import yaml

from glasspipe.io.atomic import atomic_path

MANIFEST = "MANIFEST.sha256"
SIDECAR = "MANIFEST.json"
CITATION = "CITATION.cff"
CRATE = "ro-crate-metadata.json"
FORMAT = "glasspipe-manifest/1"

# Path patterns (relative to results/, fnmatch with '/' in them) the manifest does not cover, and why. They
# are written into MANIFEST.json, so a results directory states its own rule.
NOT_COVERED: dict[str, str] = {
    MANIFEST: "the manifest itself",
    "logs/report.log": "the log of the report job that writes the manifest, still open while it is written",
    "report.html": "Snakemake's report, made from the finished results by `snakemake --report` afterwards",
    "report.zip": "Snakemake's report, made from the finished results by `snakemake --report` afterwards",
    "*.snakemake_timestamp": "Snakemake's marker of a directory output's time",
    "*/.checkpoints/*": "scratch space of the resumable stages (equilibrate, isoconf), removed when they finish",
}

# The iso-configurational replica trajectories: most of a simulated results directory's size, and
# reproducible from the equilibrated configurations and the seeds; `archive --without-replicas` leaves them.
REPLICA_PATTERN = "T*/isoconf/*/replica*.gsd"

# Not covered by the manifest, but packed into an archive when present.
UNCOVERED_KEPT = ("report.html", "report.zip", "logs/report.log")

CHUNK_BYTES = 1 << 20


class ManifestError(ValueError):
    """A manifest that cannot be read (missing, truncated, malformed): the message names the file."""


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of the file at ``path``, read in 1 MiB chunks (constant memory for large GSD files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(relative: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns)


def list_files(results_dir: str | Path, not_covered=None) -> list[str]:
    """Every regular file below ``results_dir`` as a sorted POSIX path relative to it, minus the patterns
    ``not_covered`` (default :data:`NOT_COVERED`). Symbolic links are listed as the files they point to."""
    root = Path(results_dir)
    patterns = list(NOT_COVERED if not_covered is None else not_covered)
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not _matches(relative, patterns):
                found.append(relative)
    return sorted(found)


def git_state(path: str | Path | None = None, outputs: str | Path | None = None) -> dict | None:
    """The git commit of the code at ``path`` (default: glasspipe's source, else $GLASSPIPE_ROOT) and whether
    tracked files differ from it (``dirty``; untracked files are not counted). None when the code is not a
    git checkout (a pip-installed glasspipe) or git is not installed.

    outputs: the run's results directory. Where it lies inside the checkout, its files are the run's own
    outputs, not a change of the code, and do not count: the demo's ``results/`` holds a tracked placeholder
    README that every report replaces."""
    candidates = [Path(path)] if path is not None else [Path(__file__).resolve().parent]
    if path is None and os.environ.get("GLASSPIPE_ROOT"):
        candidates.append(Path(os.environ["GLASSPIPE_ROOT"]))
    for candidate in candidates:
        git = ["git", "-C", str(candidate)]
        try:
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
            if commit.returncode != 0:
                continue
            # Porcelain paths are relative to the checkout's top whatever the current directory; they are
            # filtered here rather than with pathspecs, whose magic a path or GIT_LITERAL_PATHSPECS could change.
            status = subprocess.run(
                [*git, "status", "--porcelain=v1", "-z", "--untracked-files=no"], capture_output=True, timeout=60
            )
            top = None
            if outputs is not None:  # only a results directory needs the checkout's top
                top = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if status.returncode != 0 or (top is not None and top.returncode != 0):
            return {"commit": commit.stdout.strip(), "dirty": None}
        inside = None if top is None else _relative_inside(Path(top.stdout.strip()), outputs)
        changed = [p for p in _porcelain_paths(status.stdout) if inside is None or not _within(p, inside)]
        return {"commit": commit.stdout.strip(), "dirty": bool(changed)}
    return None


def _porcelain_paths(output: bytes) -> list[str]:
    """Every path of ``git status --porcelain=v1 -z`` output (both paths of a rename or copy)."""
    fields = output.decode("utf-8", "surrogateescape").split("\0")
    paths, i = [], 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC" and i < len(fields):  # "R  new\0old\0": the source follows as its own field
            paths.append(fields[i])
            i += 1
    return paths


def _relative_inside(top: Path, outputs: str | Path) -> PurePosixPath | None:
    """``outputs`` relative to the checkout's top, or None when it is the top or lies elsewhere."""
    root, outputs = top.resolve(), Path(outputs).resolve()
    if outputs == root or not outputs.is_relative_to(root):
        return None
    return PurePosixPath(outputs.relative_to(root).as_posix())


def _within(path: str, directory: PurePosixPath) -> bool:
    return PurePosixPath(path).is_relative_to(directory)


def _config_hash(config: dict | None) -> str | None:
    if config is None:
        return None
    from glasspipe.report.readme import config_hash

    return config_hash(config)


def _sha256_lines(files: dict[str, dict], header: list[str]) -> str:
    for relative in files:
        if "\n" in relative or "\\" in relative:
            # sha256sum escapes such names; refuse rather than write a line it would misread.
            raise ManifestError(f"cannot list {relative!r} in {MANIFEST}: its name holds a newline or backslash")
    lines = [f"# {line}" for line in header]
    lines += [f"{entry['sha256']}  {relative}" for relative, entry in sorted(files.items())]
    return "\n".join(lines) + "\n"


def _header(sidecar: dict) -> list[str]:
    git = sidecar.get("git") or {}
    commit = git.get("commit", "unknown (not a git checkout)")
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    return [
        f"{FORMAT}: sha256 of every file of this results directory; check with `sha256sum -c {MANIFEST}` here",
        f"or `glasspipe verify .`; sizes, versions and excluded files are in {SIDECAR} (listed below)",
        f"created: {sidecar['created']}",
        f"config hash: {sidecar.get('config_hash')}",
        f"glasspipe: {sidecar.get('versions', {}).get('glasspipe')}, code commit: {commit}",
        f"files: {len(sidecar['files'])}, excluded: {len(sidecar.get('excluded', {}))}",
    ]


def _write_pair(root: Path, sidecar: dict) -> Path:
    """Write MANIFEST.json, then MANIFEST.sha256 listing every file and the sidecar (last, atomically)."""
    sidecar_text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    with atomic_path(root / SIDECAR) as tmp:
        tmp.write_text(sidecar_text)
    entries = dict(sidecar["files"])
    entries[SIDECAR] = {"sha256": hashlib.sha256(sidecar_text.encode()).hexdigest()}
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(_sha256_lines(entries, _header(sidecar)))
    return root / MANIFEST


def write_manifest(
    results_dir: str | Path, config: dict | None = None, versions: dict | None = None, crate: bool = True
) -> Path:
    """Checksum every file of ``results_dir`` (but :data:`NOT_COVERED`) into MANIFEST.json and MANIFEST.sha256.

    ``config``: the resolved config (its hash goes into the header); ``versions``: package versions (default
    :func:`glasspipe.report.versions.software_versions`); ``crate``: also write ro-crate-metadata.json
    (:func:`write_crate`) before the manifest, which then lists it. Returns the path of MANIFEST.sha256,
    written last.
    """
    from glasspipe.report.versions import software_versions

    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    files = {}
    for relative in list_files(root):
        if relative in (SIDECAR, CRATE):  # rewritten below; listed in MANIFEST.sha256 by their new checksums
            continue
        path = root / relative
        files[relative] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    sidecar = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config_hash": _config_hash(config),
        "versions": versions if versions is not None else software_versions(),
        "git": git_state(outputs=root),
        "files": files,
        "excluded": {},
        "not_covered": dict(NOT_COVERED),
    }
    if crate:
        # The crate describes the files with the checksums just taken (no second pass over large GSD files),
        # then the manifest lists the crate: editing the crate is caught like editing any other file.
        crate_path = write_crate(root, files, sidecar)
        files[CRATE] = {"size": crate_path.stat().st_size, "sha256": file_sha256(crate_path)}
    return _write_pair(root, sidecar)


@dataclass
class Manifest:
    """A manifest as read back: checksums from MANIFEST.sha256, the rest from its sidecar."""

    checksums: dict[str, str]
    sidecar: dict

    @property
    def files(self) -> dict[str, dict]:
        return self.sidecar["files"]

    @property
    def excluded(self) -> dict[str, dict]:
        return self.sidecar.get("excluded", {})

    @property
    def not_covered(self) -> list[str]:
        return list(self.sidecar.get("not_covered", NOT_COVERED))


def build(config: dict) -> None:
    """The report stage: figures, tables, the resolved config, software versions and the results README
    (glasspipe.report.build), then the citation record and, last, the checksum manifest of everything
    written before it."""
    from glasspipe.report.build import build_report
    from glasspipe.targets import report_inputs

    inputs = report_inputs(config)
    build_report(
        config,
        inputs["metrics"],
        inputs["thermo"],
        inputs["checks"],
        Path(config["results_dir"]),
        inputs["benchmarks"],
        inputs["labels"],
        validation_paths=inputs["validation"],
    )
    write_citation(config["results_dir"], config)
    write_manifest(config["results_dir"], config)


def parse_sha256_lines(text: str, path: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from sha256sum-format text; '#' lines are comments. ManifestError on a
    malformed line (naming the file and line number)."""
    checksums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, sep, name = line.partition(" *")  # sha256sum's binary-mode marker
        if not sep or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest.lower()) or not name:
            raise ManifestError(f"{path}: line {number} is not '<64 hex digits>  <path>': {line[:80]!r}")
        checksums[name] = digest.lower()
    return checksums


def read_manifest(results_dir: str | Path) -> Manifest:
    """Read MANIFEST.sha256 and its sidecar MANIFEST.json from ``results_dir``; ManifestError naming the file
    when either is missing or malformed."""
    root = Path(results_dir)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ManifestError(
            f"{manifest_path}: no manifest; the report stage writes it (snakemake ... or glasspipe report)"
        )
    checksums = parse_sha256_lines(manifest_path.read_text(), manifest_path)
    sidecar_path = root / SIDECAR
    if not sidecar_path.is_file():
        raise ManifestError(f"{sidecar_path}: missing; {MANIFEST} lists it and it holds the sizes and metadata")
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except json.JSONDecodeError as err:
        raise ManifestError(f"{sidecar_path}: not valid JSON ({err})") from err
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT or not isinstance(sidecar.get("files"), dict):
        raise ManifestError(f"{sidecar_path}: not a {FORMAT} sidecar (expected keys 'format' and 'files')")
    return Manifest(checksums=checksums, sidecar=sidecar)


@dataclass
class Verification:
    """The outcome of :func:`verify`: relative paths of missing, altered (with why) and extra files, and the
    problems of the RO-Crate (``crate``: path -> why; ``crate_checked``: files it describes that were checked,
    None when the results have no crate)."""

    results_dir: Path
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    altered: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    crate: dict[str, str] = field(default_factory=dict)
    crate_checked: int | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.extra or self.crate)

    def lines(self) -> list[str]:
        """One line per problem, then a summary line."""
        out = [f"MISSING  {p}" for p in self.missing]
        out += [f"ALTERED  {p} ({why})" for p, why in self.altered.items()]
        out += [f"EXTRA    {p} (not in {MANIFEST})" for p in self.extra]
        out += [f"CRATE    {p} ({why})" for p, why in self.crate.items()]
        verdict = "OK" if self.ok else "FAILED"
        if self.crate_checked is None:
            crate = f"no {CRATE}"
        else:
            crate = f"{CRATE}: {self.crate_checked} files checked, {len(self.crate)} problems"
        out.append(
            f"{self.results_dir}: {verdict}: {self.checked} files checked, {len(self.missing)} missing, "
            f"{len(self.altered)} altered, {len(self.extra)} extra, {len(self.excluded)} excluded by the archive; "
            + crate
        )
        return out


def verify(results_dir: str | Path) -> Verification:
    """Check every file of ``results_dir`` against its manifest.

    A file listed in MANIFEST.sha256 and absent is *missing*; one whose size (from MANIFEST.json) or sha256
    differs is *altered*; one present, not listed, not excluded and not matching a ``not_covered`` pattern
    is *extra*. Files marked ``excluded`` (left out of an archive) may be absent; when present they must
    match their recorded checksum. Then the RO-Crate, when there is one (:func:`check_crate`): it must read
    back, and the files it describes must exist (but excluded ones) and match the size and sha256 it records.
    Raises ManifestError when the manifest cannot be read.
    """
    root = Path(results_dir)
    manifest = read_manifest(root)
    result = Verification(results_dir=root)
    digests: dict[str, str] = {}  # sha256 computed here, reused by the crate check
    sizes = {relative: entry.get("size") for relative, entry in manifest.files.items()}
    expected = dict(manifest.checksums)
    for relative, entry in manifest.excluded.items():
        if (root / relative).is_file():
            expected[relative] = entry["sha256"]
            sizes[relative] = entry.get("size")
        else:
            result.excluded.append(relative)
    for relative, digest in sorted(expected.items()):
        path = root / relative
        if not path.is_file():
            result.missing.append(relative)
            continue
        result.checked += 1
        size = path.stat().st_size
        if sizes.get(relative) is not None and size != sizes[relative]:
            result.altered[relative] = f"size {size} bytes, manifest says {sizes[relative]}"
            continue
        digests[relative] = file_sha256(path)
        if digests[relative] != digest:
            result.altered[relative] = "sha256 differs from the manifest"
    listed = set(expected) | set(manifest.excluded)
    result.extra = [p for p in list_files(root, manifest.not_covered) if p not in listed]
    result.crate_checked, result.crate = check_crate(root, excluded=set(result.excluded), digests=digests)
    return result


# --- citation record ------------------------------------------------------------------------------------
def imported_sources(results_dir: str | Path) -> list[dict]:
    """Sources of imported data (format, source, license, citation, files with sha256), once per source, from
    the labels' Parquet metadata ('provenance', written by glasspipe.importers) under ``results_dir``."""
    from glasspipe.report.build import dataset_sources

    return dataset_sources(sorted(Path(results_dir).glob("T*/labels/*.parquet")))


def citation_record(sources: list[dict], config_hash: str | None, glasspipe_version: str) -> dict:
    """A Citation File Format 1.2.0 record of a results directory: glasspipe and each imported dataset."""
    references = [
        {
            "type": "software",
            "title": "glasspipe",
            "version": glasspipe_version,
            "license": "Apache-2.0",
            "authors": [{"name": "The glasspipe developers"}],
            "notes": "the pipeline that produced these results",
        }
    ]
    for source in sources:
        files = "; ".join(f"{f.get('file')} sha256 {f.get('sha256')}" for f in source.get("files", []))
        entry = {
            "type": "dataset",
            "title": f"{source.get('format')} dataset",
            "authors": [{"name": source.get("citation") or "unknown"}],
            "url": source.get("source"),
            "notes": f"cite as: {source.get('citation')}. Files imported: {files}",
        }
        if source.get("license"):
            entry["license"] = source["license"]
        references.append({k: v for k, v in entry.items() if v is not None})
    title = "glasspipe results" + (f", config {config_hash}" if config_hash else "")
    return {
        "cff-version": "1.2.0",
        "message": "If you use these results, cite the software and the data sets listed under references; "
        "each data set's license applies to what is derived from it.",
        "type": "dataset",
        "title": title,
        # Whoever publishes the results is their author and chooses their license; glasspipe cannot know either.
        "authors": [{"name": "The authors of these results"}],
        "references": references,
    }


def write_citation(results_dir: str | Path, config: dict | None = None) -> Path:
    """Write ``results_dir/CITATION.cff`` (see :func:`citation_record`), atomically; return its path."""
    from glasspipe import __version__

    record = citation_record(imported_sources(results_dir), _config_hash(config), __version__)
    path = Path(results_dir) / CITATION
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    return path


# --- RO-Crate ------------------------------------------------------------------------------------------
# RO-Crate 1.1: the version the Workflow Run Crate 0.5 profiles are written against (and Workflow RO-Crate 1.0).
CRATE_VERSION = "1.1"
# The root dataset's conformsTo: profile permalink -> (name, version).
CRATE_PROFILES: dict[str, tuple[str, str]] = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
WROC_PROFILE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
# The profiles' JSON-LD context, and schema.org's sha256, which the RO-Crate 1.1 context predates.
CRATE_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
CRATE_TERMS = {"sha256": "http://schema.org/sha256"}
# The Snakefile is in glasspipe's source tree, not in the results: a local identifier ('#...') names a file the
# crate describes but does not hold (RO-Crate readers, rocrate's included, do not look for it on disk).
WORKFLOW_ID = "#Snakefile"
SPDX = "https://spdx.org/licenses/"
# Written by the report stage (glasspipe.targets.report_outputs): the run's settings and software versions.
CONFIG_FILE = "report/config.resolved.yaml"
VERSIONS_FILE = "report/versions.json"
# Home pages of the software versions.json names that are not (only) PyPI distributions.
SOFTWARE_URLS = {
    "python": "https://www.python.org/",
    "snakemake": "https://snakemake.readthedocs.io",
    "hoomd": "https://glotzerlab.engin.umich.edu/hoomd-blue/",
    "lammps": "https://www.lammps.org/",
}
_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def _workflow_source() -> Path | None:
    """The Snakefile that ran: $GLASSPIPE_ROOT's (the Snakefile sets it to its own directory), else the one of
    the source checkout glasspipe is imported from; None when neither exists (a pip-installed glasspipe)."""
    candidates = []
    if os.environ.get("GLASSPIPE_ROOT"):
        candidates.append(Path(os.environ["GLASSPIPE_ROOT"]) / "Snakefile")
    candidates.append(Path(__file__).resolve().parents[2] / "Snakefile")
    return next((path for path in candidates if path.is_file()), None)


def _run_versions(root: Path, fallback: dict) -> dict:
    """The versions the report stage recorded (report/versions.json), else ``fallback`` (the manifest's)."""
    path = root / VERSIONS_FILE
    try:
        recorded = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        recorded = None  # the manifest still checks the file; the crate falls back to the same numbers
    return recorded if isinstance(recorded, dict) else dict(fallback or {})


def _software(crate, versions: dict, git: dict | None) -> list:
    """One SoftwareApplication per package versions.json names (not the platform, nor what is not installed)."""
    from rocrate.model.contextentity import ContextEntity

    from glasspipe.report.versions import DISTRIBUTIONS, NOT_INSTALLED

    apps = []
    for name, version in sorted(versions.items()):
        if name == "platform" or not isinstance(version, str) or version == NOT_INSTALLED:
            continue
        props = {"@type": "SoftwareApplication", "name": name, "softwareVersion": version}
        url = SOFTWARE_URLS.get(name)
        if url is None and name in DISTRIBUTIONS and name != "glasspipe":  # glasspipe is not on PyPI
            url = f"https://pypi.org/project/{DISTRIBUTIONS[name]}/"
        if url:
            props["url"] = url
        if name == "glasspipe" and git:
            dirty = " with uncommitted changes" if git.get("dirty") else ""
            props["description"] = f"code commit {git.get('commit')}{dirty}"
        apps.append(crate.add(ContextEntity(crate, f"#software/{name}", props)))
    return apps


def _license(crate, spdx_id: str | None):
    """The contextual entity of an SPDX license (by its SPDX page), or None when unknown."""
    from rocrate.model.contextentity import ContextEntity

    if not spdx_id:
        return None
    props = {"@type": "CreativeWork", "name": spdx_id, "identifier": spdx_id}
    return crate.add(ContextEntity(crate, SPDX + spdx_id, props))


def _imported_inputs(crate, root: Path) -> list:
    """The original files of imported datasets, as described by the labels' Parquet metadata: name, sha256,
    license, source and citation. They are not in the results (they stay where they were downloaded), so each
    has a local identifier '#input/<format>/<file>'. Simulated runs have none."""
    from rocrate.model.contextentity import ContextEntity

    inputs = []
    for source in imported_sources(root):
        license_entity = _license(crate, source.get("license"))
        for item in source.get("files", []):
            name = item.get("file") or "unknown"
            props = {
                "@type": "File",
                "name": name,
                "description": f"original file of the {source.get('format')} dataset, imported by glasspipe; "
                "not included in these results (see url)",
                "url": source.get("source"),
                "citation": source.get("citation"),
                "sha256": item.get("sha256"),
                "license": license_entity,
            }
            props = {key: value for key, value in props.items() if value is not None}
            identifier = f"#input/{source.get('format')}/{name}"
            inputs.append(crate.add(ContextEntity(crate, identifier, props)))
    return inputs


def crate_record(root: Path, files: dict[str, dict], sidecar: dict):
    """The Workflow Run RO-Crate of the results directory ``root`` as a ``rocrate.rocrate.ROCrate``.

    ``files``: relative path -> {"size", "sha256"} of every file the manifest covers (the crate's data
    entities, with those checksums); ``sidecar``: the manifest's metadata (creation time, config hash,
    versions, git state). Module docstring: what the crate holds.
    """
    from rocrate.model.computerlanguage import get_lang
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_contexts.append(CRATE_CONTEXT)
    crate.metadata.extra_terms = dict(CRATE_TERMS)
    # Workflow RO-Crate 1.0 puts its profile on the metadata descriptor, beside RO-Crate's own.
    crate.metadata["conformsTo"] = [{"@id": f"https://w3id.org/ro/crate/{CRATE_VERSION}"}, {"@id": WROC_PROFILE}]
    profiles = [
        crate.add(ContextEntity(crate, uri, {"@type": "CreativeWork", "name": name, "version": version}))
        for uri, (name, version) in CRATE_PROFILES.items()
    ]
    created = sidecar["created"]
    config_hash = sidecar.get("config_hash")
    git = sidecar.get("git") or {}
    versions = _run_versions(root, sidecar.get("versions") or {})

    root_entity = crate.root_dataset
    root_entity["conformsTo"] = profiles
    crate.name = "glasspipe results" + (f", config {config_hash}" if config_hash else "")
    crate.description = (
        "Results of a glasspipe run: Kob-Andersen molecular dynamics (or an imported public dataset) to graph "
        f"networks that predict glassy dynamics. Every file's sha256 is in {MANIFEST} (`sha256sum -c`) and "
        "below; README.md describes the files."
    )
    crate.datePublished = created

    # The workflow: the Snakefile of glasspipe's source, described (checksum, code commit) but not included.
    language = crate.add(get_lang(crate, "snakemake"))
    snakefile = _workflow_source()
    commit = git.get("commit")
    workflow_props = {
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
        "name": "glasspipe workflow (Snakefile)",
        "description": "The Snakefile at the root of glasspipe's source tree, with the rules it includes "
        "(workflow/rules/); not copied into these results"
        + (f"; code commit {commit}" + (" with uncommitted changes" if git.get("dirty") else "") if commit else ""),
        "programmingLanguage": language,
        "softwareRequirements": _software(crate, versions, git),
        "version": versions.get("glasspipe"),
    }
    if snakefile is not None:
        workflow_props["sha256"] = file_sha256(snakefile)
        workflow_props["contentSize"] = str(snakefile.stat().st_size)
    workflow = crate.add(ContextEntity(crate, WORKFLOW_ID, {k: v for k, v in workflow_props.items() if v}))
    crate.mainEntity = workflow

    # Every file the manifest covers, with its size and sha256; then the manifest pair, written after the crate.
    entities = {}
    for relative, entry in sorted(files.items()):
        props = {"contentSize": str(entry["size"]), "sha256": entry["sha256"]}
        if relative == CONFIG_FILE:
            props["description"] = f"the run's resolved configuration (config hash {config_hash})"
        entities[relative] = crate.add_file(dest_path=relative, properties=props)
    for relative, what in ((MANIFEST, "sha256 of every file (sha256sum -c)"), (SIDECAR, "sizes, versions")):
        props = {"description": f"{what}; written after this crate, so it records no checksum of them"}
        crate.add_file(dest_path=relative, properties=props)

    # The run. startTime: when its first output was written (the earliest modification time of the results'
    # files, an upper bound of the true start); endTime: now, the report stage writing the crate.
    mtimes = [(root / relative).stat().st_mtime for relative in files if (root / relative).exists()]
    start = time.strftime(_ISO_UTC, time.gmtime(min(mtimes))) if mtimes else created
    inputs = ([entities[CONFIG_FILE]] if CONFIG_FILE in entities else []) + _imported_inputs(crate, root)
    outputs = [entity for relative, entity in entities.items() if relative != CONFIG_FILE]
    platform = versions.get("platform")
    action = crate.add_action(
        workflow,
        identifier=f"#run-{uuid.uuid4()}",
        object=inputs,
        result=outputs,
        properties={
            "@type": "CreateAction",
            "name": "Run of the glasspipe workflow" + (f", config {config_hash}" if config_hash else ""),
            "description": "snakemake run of glasspipe's workflow"
            + (f" on {platform}" if platform else "")
            + "; startTime is the modification time of the first file it wrote, endTime when the report stage "
            "finished",
            "startTime": start,
            "endTime": created,
            "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
        },
    )
    root_entity["mentions"] = [action]
    return crate


def write_crate(results_dir: str | Path, files: dict[str, dict], sidecar: dict) -> Path:
    """Write ``results_dir/ro-crate-metadata.json`` (:func:`crate_record`), atomically; return its path.

    Only the metadata file is written: the files it describes are already in place (rocrate's own
    ``ROCrate.write`` would copy them onto themselves).
    """
    root = Path(results_dir)
    record = crate_record(root, files, sidecar).metadata.generate()
    path = root / CRATE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_crate(
    results_dir: str | Path, excluded: set[str] | frozenset[str] = frozenset(), digests: dict[str, str] | None = None
) -> tuple[int | None, dict[str, str]]:
    """Read ``results_dir``'s ro-crate-metadata.json back with rocrate's reader and check the files it describes.

    Returns (files checked, problems as relative path -> why); (None, {}) when there is no crate (results
    written before glasspipe wrote one). A crate that does not read, or reads with warnings, is a problem of
    ro-crate-metadata.json; a described file that is absent (but ``excluded`` ones, left out of an archive), or
    whose size or sha256 differs from the crate's, is a problem of that file. Web-based and '#' entities (the
    Snakefile, imported datasets' original files) are not on disk and not checked. ``digests``: sha256 already
    computed (by :func:`verify`), reused rather than read again.
    """
    from rocrate.rocrate import ROCrate
    from rocrate.utils import as_list, is_url

    root = Path(results_dir)
    if not (root / CRATE).is_file():
        return None, {}
    digests = digests or {}
    problems: dict[str, str] = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            crate = ROCrate(root)
    except Exception as err:  # the reader fails with whatever a broken file raises (JSON, KeyError, ValueError...)
        return 0, {CRATE: f"not a readable RO-Crate: {type(err).__name__}: {err}"}
    if caught:
        problems[CRATE] = "; ".join(str(warning.message) for warning in caught)
    checked = 0
    for entity in crate.data_entities:
        if is_url(entity.id):
            continue
        relative = unquote(entity.id)
        parts = PurePosixPath(relative).parts
        if PurePosixPath(relative).is_absolute() or ".." in parts:
            problems[relative] = f"{CRATE} names a path outside the results directory"
            continue
        path = root / relative
        if relative.rstrip("/") in excluded and not path.exists():
            continue
        if "Dataset" in as_list(entity.type):
            if not path.is_dir():
                problems[relative] = f"directory listed in {CRATE}, missing"
            continue
        if not path.is_file():
            problems[relative] = f"listed in {CRATE}, missing"
            continue
        checked += 1
        size, recorded = entity.get("contentSize"), entity.get("sha256")
        if size is not None and str(path.stat().st_size) != str(size):
            problems[relative] = f"size {path.stat().st_size} bytes, {CRATE} says {size}"
        elif recorded and (digests.get(relative) or file_sha256(path)) != str(recorded).lower():
            problems[relative] = f"sha256 differs from {CRATE}"
    return checked, problems


# --- archive --------------------------------------------------------------------------------------------
def _tar_info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive(
    results_dir: str | Path, out: str | Path, without_replicas: bool = False, prefix: str | None = None
) -> list[str]:
    """Pack ``results_dir`` into the gzipped tar ``out``, reproducibly, after verifying it.

    Members are ``<prefix>/<relative path>`` (prefix: the results directory's name), sorted, with mtime the
    manifest's creation time, owner 0 and mode 0644; the gzip header carries no name or time, so the same
    results give the same bytes. ``without_replicas`` leaves out the replica trajectories
    (:data:`REPLICA_PATTERN`): the archive's MANIFEST.json lists them under ``excluded`` (size, sha256, why)
    and its MANIFEST.sha256 omits them, so both checks pass after extraction. A CITATION.cff is added when
    the results have none. Raises ManifestError if the results do not verify. Returns the member names.
    """
    root = Path(results_dir)
    check = verify(root)
    if not check.ok:
        raise ManifestError(f"{root} does not match its manifest; not archiving:\n" + "\n".join(check.lines()))
    manifest = read_manifest(root)
    sidecar = json.loads(json.dumps(manifest.sidecar))
    files = sidecar["files"]
    added: dict[str, bytes] = {}
    if without_replicas:
        for relative in sorted(files):
            if fnmatch.fnmatchcase(relative, REPLICA_PATTERN):
                sidecar["excluded"][relative] = {
                    **files.pop(relative),
                    "reason": "replica trajectory left out by `glasspipe archive --without-replicas`",
                }
    if CITATION not in files and not (root / CITATION).is_file():
        from glasspipe import __version__

        record = citation_record(imported_sources(root), sidecar.get("config_hash"), __version__)
        added[CITATION] = yaml.safe_dump(record, sort_keys=False, allow_unicode=True).encode()
        files[CITATION] = {"size": len(added[CITATION]), "sha256": hashlib.sha256(added[CITATION]).hexdigest()}
    # The archive's own manifest pair: unchanged from the results' when nothing was left out or added.
    sidecar_text = (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode()
    entries = dict(files)
    entries[SIDECAR] = {"sha256": hashlib.sha256(sidecar_text).hexdigest()}
    added[SIDECAR] = sidecar_text
    added[MANIFEST] = _sha256_lines(entries, _header(sidecar)).encode()

    prefix = prefix or root.resolve().name
    mtime = calendar.timegm(time.strptime(sidecar["created"], "%Y-%m-%dT%H:%M:%SZ"))
    # Files the manifest does not cover but a reader of the archive wants: Snakemake's report, the report log.
    keep_uncovered = [p for p in UNCOVERED_KEPT if (root / p).is_file()]
    members = sorted(set(files) | set(added) | set(keep_uncovered))
    names = []
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for relative in members:
                    name = str(PurePosixPath(prefix) / relative)
                    if relative in added:
                        data = added[relative]
                        tar.addfile(_tar_info(name, len(data), mtime), io.BytesIO(data))
                    else:
                        path = root / relative
                        with open(path, "rb") as handle:
                            tar.addfile(_tar_info(name, path.stat().st_size, mtime), handle)
                    names.append(name)
    return names
