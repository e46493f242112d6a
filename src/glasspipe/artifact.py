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

Not covered (see :data:`NOT_COVERED`): the manifest itself, the log of the report job that writes it (still
open while it is written), Snakemake's own ``report.html`` / ``report.zip`` (made afterwards from the finished
results by ``snakemake --report``), Snakemake's ``.snakemake_timestamp`` markers and the resumable stages'
scratch directories ``.checkpoints/`` (empty once their jobs finish). Every other file is covered,
including the other job logs and benchmarks: they are complete when the report stage runs.

Public API::

    write_manifest(results_dir, config=None) -> Path      # the report stage's last step
    verify(results_dir) -> Verification                   # .ok, .missing, .altered, .extra, .excluded
    archive(results_dir, out_tar_gz, without_replicas=False) -> list[str]   # the member names
    write_citation(results_dir, config=None) -> Path
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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from glasspipe.io.atomic import atomic_path

MANIFEST = "MANIFEST.sha256"
SIDECAR = "MANIFEST.json"
CITATION = "CITATION.cff"
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


def git_state(path: str | Path | None = None) -> dict | None:
    """The git commit of the code at ``path`` (default: glasspipe's source, else $GLASSPIPE_ROOT) and whether
    tracked files differ from it (``dirty``; untracked files are not counted). None when the code is not a
    git checkout (a pip-installed glasspipe) or git is not installed."""
    candidates = [Path(path)] if path is not None else [Path(__file__).resolve().parent]
    if path is None and os.environ.get("GLASSPIPE_ROOT"):
        candidates.append(Path(os.environ["GLASSPIPE_ROOT"]))
    for candidate in candidates:
        try:
            commit = subprocess.run(
                ["git", "-C", str(candidate), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
            )
            if commit.returncode != 0:
                continue
            status = subprocess.run(
                ["git", "-C", str(candidate), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return {
            "commit": commit.stdout.strip(),
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
        }
    return None


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


def write_manifest(results_dir: str | Path, config: dict | None = None, versions: dict | None = None) -> Path:
    """Checksum every file of ``results_dir`` (but :data:`NOT_COVERED`) into MANIFEST.json and MANIFEST.sha256.

    ``config``: the resolved config (its hash goes into the header); ``versions``: package versions (default
    :func:`glasspipe.report.versions.software_versions`). Returns the path of MANIFEST.sha256, written last.
    """
    from glasspipe.report.versions import software_versions

    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    files = {}
    for relative in list_files(root):
        if relative == SIDECAR:  # rewritten below; listed in MANIFEST.sha256 by its new checksum
            continue
        path = root / relative
        files[relative] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    sidecar = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config_hash": _config_hash(config),
        "versions": versions if versions is not None else software_versions(),
        "git": git_state(),
        "files": files,
        "excluded": {},
        "not_covered": dict(NOT_COVERED),
    }
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
    """The outcome of :func:`verify`: relative paths of missing, altered (with why) and extra files."""

    results_dir: Path
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    altered: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.extra)

    def lines(self) -> list[str]:
        """One line per problem, then a summary line."""
        out = [f"MISSING  {p}" for p in self.missing]
        out += [f"ALTERED  {p} ({why})" for p, why in self.altered.items()]
        out += [f"EXTRA    {p} (not in {MANIFEST})" for p in self.extra]
        verdict = "OK" if self.ok else "FAILED"
        out.append(
            f"{self.results_dir}: {verdict}: {self.checked} files checked, {len(self.missing)} missing, "
            f"{len(self.altered)} altered, {len(self.extra)} extra, {len(self.excluded)} excluded by the archive"
        )
        return out


def verify(results_dir: str | Path) -> Verification:
    """Check every file of ``results_dir`` against its manifest.

    A file listed in MANIFEST.sha256 and absent is *missing*; one whose size (from MANIFEST.json) or sha256
    differs is *altered*; one present, not listed, not excluded and not matching a ``not_covered`` pattern
    is *extra*. Files marked ``excluded`` (left out of an archive) may be absent; when present they must
    match their recorded checksum. Raises ManifestError when the manifest cannot be read.
    """
    root = Path(results_dir)
    manifest = read_manifest(root)
    result = Verification(results_dir=root)
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
        elif file_sha256(path) != digest:
            result.altered[relative] = "sha256 differs from the manifest"
    listed = set(expected) | set(manifest.excluded)
    result.extra = [p for p in list_files(root, manifest.not_covered) if p not in listed]
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
