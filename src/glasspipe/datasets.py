"""Public datasets that glasspipe's configs import: a registry of each file's URL and sha256, and the
download, verification and installation of those files into the user's cache.

A config names a dataset (``source: {format: botan, dataset: botan_T0.44_train}``) instead of a path into a
folder that a clone does not have; :func:`dataset_dir` resolves the name to the folder that
``glasspipe download`` installs into:

    glasspipe download botan                      # fetch over HTTPS (pooch), verify, install
    glasspipe download botan --from DIR           # offline: verify a local copy, then install it
    glasspipe download botan --dest DIR           # install under DIR instead of the cache

Install location: ``<root>/<dataset name>/<file>``, where the root is ``--dest`` (``source.cache`` in a
config) or, by default, ``$GLASSPIPE_CACHE/datasets``, else ``$XDG_CACHE_HOME/glasspipe/datasets``, else
``~/.cache/glasspipe/datasets`` (the cache that scripts/install-hoomd.sh and .ci/run use for their builds).

Every installed file has the registry's sha256: a download or a local copy whose checksum differs is
refused and nothing of it is installed. Files already installed with the right checksum are kept, and an
interrupted download continues from its partial file (``.<name>.part``) on the next run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset cannot be fetched, verified or found; the message names the file and the remedy.

    A ValueError, so that the command line reports it as an error message rather than a stack trace.
    """


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    name: the file name in the installed folder (the name upstream gives it).
    sha256: its checksum, hex.
    size: its size in bytes (a cheap check that an installed folder is complete, see missing_files).
    url: where it is published; None where no public URL is known (then only ``--from`` installs it).
    aliases: other names a local copy of the file may have (``--from`` looks for these too).
    """

    name: str
    sha256: str
    size: int
    url: str | None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A set of files that one config's ``source.dataset`` names.

    name: the config's name for it, and the folder it is installed into under the root.
    format: the importer format of its files (glasspipe.importers), which 'source.format' must match.
    group: the short name ``glasspipe download`` takes (several datasets may share one).
    files: its files, in configuration order (the order source_files returns them in).
    description, source, license: what it is and where it comes from, for messages and the CLI listing.
    """

    name: str
    format: str
    group: str
    files: tuple[DataFile, ...]
    description: str
    source: str
    license: str


# --- The registry ----------------------------------------------------------------------------------------
#
# sha256 and sizes were computed from the copies that glasspipe's tests use (shared/data), and checked
# against the upstream git blobs: the files at the commits named below have the same sha256.
# URLs pin a commit, so that a later upstream change cannot alter what a checksum was computed for;
# raw.githubusercontent.com serves git blobs as they are (these files are plain git objects, not LFS).
# The URLs' reachability over HTTP could not be tested from the machine that wrote this registry (no
# network beyond the package index); the content at those commits was confirmed by checksum.

# BOTAN (Shiba et al., J. Chem. Phys. 158, 084503 (2023)): the small sample that h3-Open-BDEC/pyg_botan
# ships in its repository, small_data/T0.44/train/, added in commit c9b8ce47 and unchanged since (checked at
# 6da560c4). KA 3D, N = 4096, T = 0.44, 32 iso-configurational replicas at time index 7 (tau_alpha).
# The full dataset (~58 GB, one tar.gz) is linked from that project's README and is not registered here.
_BOTAN_COMMIT = "c9b8ce4798920873c49ea2677521af47f0e9f177"
_BOTAN_URL = f"https://raw.githubusercontent.com/h3-Open-BDEC/pyg_botan/{_BOTAN_COMMIT}/small_data/T0.44/train/"
_BOTAN_T044_TRAIN = {  # configuration number -> sha256; every file is 3,248,908 bytes
    1: "818fe7a85a2d5fa15dbf6b4a32fe2244ccc6c95ab57375ddceccfbf3e15bcb03",
    2: "c434148509b09ae3582b5b12d2a1c866510bf6bcda1000cb7c84eaa3adc2c81e",
    3: "cbe36e3dda27f2c52d57b46322dd8b4e92a52d369f5a683c18469d035200d0f4",
    4: "5dc178a06be59d61cf90b69d7072e2dc8f4433e0edf21bed8a3971f4363d73f6",
    5: "ce15d17f380e28c36e512ac66454fc2b6b26a210db0a4bdd259029100e75bf19",
    6: "bdde2cd8e21c847c2359dd4532e530507246f876dbe51a94afdf90b420cbe0c5",
    7: "115c2dfa7cb7b93410407f14925ef061f2c0b495b8b6e938812120ba2f9fa964",
    8: "3886cd45c38d568c20641c7f0025d940251fa829902ed1e524fc105c0f005b9d",
    9: "fba28fffd9cac0d51c3ffed8cb4525c346a551d07449d5bcd0614306a0fd5704",
    10: "57f03825f3ef0f484fa6e8d7c7d317fc0a16f58f160302e56000d1e4ebe85f89",
}

# DeepMind (Bapst et al., Nature Physics 16, 448 (2020)): the test file of their glassy_dynamics code,
# glassy_dynamics/testdata/test_small.pickle of google-deepmind/deepmind-research, last changed in commit
# f6395d70 (the same blob at f5de0ede). The full dataset (~100 GB) is in a Google Cloud bucket
# (deepmind-research-glassy-dynamics), fetched with gsutil, and is not registered here.
_DEEPMIND_COMMIT = "f6395d709eead3175995ecb48a9335530465454b"
_DEEPMIND_URL = f"https://raw.githubusercontent.com/google-deepmind/deepmind-research/{_DEEPMIND_COMMIT}/"

DATASETS: dict[str, Dataset] = {
    "botan_T0.44_train": Dataset(
        name="botan_T0.44_train",
        format="botan",
        group="botan",
        files=tuple(
            DataFile(
                name=f"isoconfig_N4096T0.44_{c}_tc07.npz",
                sha256=sha256,
                size=3_248_908,
                url=f"{_BOTAN_URL}isoconfig_N4096T0.44_{c}_tc07.npz",
            )
            for c, sha256 in _BOTAN_T044_TRAIN.items()
        ),
        description="BOTAN's 10 training configurations at T = 0.44 (KA 3D, N = 4096, 32 replicas), 32 MB",
        source="https://github.com/h3-Open-BDEC/pyg_botan (small_data/T0.44/train)",
        license="Apache-2.0",
    ),
    "deepmind_test_small": Dataset(
        name="deepmind_test_small",
        format="deepmind",
        group="deepmind",
        files=(
            DataFile(
                name="test_small.pickle",
                sha256="9effb7bc4239ca6547d5f27031ee8a9fac2cddad1001dc49e331acd0f6e91bb4",
                size=180_145,
                url=f"{_DEEPMIND_URL}glassy_dynamics/testdata/test_small.pickle",
                aliases=("deepmind_test_small.pickle",),  # its name in shared/data
            ),
        ),
        description="DeepMind's 20-particle test excerpt of their dataset format (30 replicas), 180 kB",
        source="https://github.com/google-deepmind/deepmind-research (glassy_dynamics/testdata)",
        license="Apache-2.0",
    ),
}


# --- Where datasets live -----------------------------------------------------------------------------------


def cache_dir() -> Path:
    """glasspipe's cache: $GLASSPIPE_CACHE, else $XDG_CACHE_HOME/glasspipe, else ~/.cache/glasspipe.

    The same rule as scripts/install-hoomd.sh and .ci/run (an empty variable counts as unset, as the
    shell's ${VAR:-default} does).
    """
    explicit = os.environ.get("GLASSPIPE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "glasspipe"


def default_root() -> Path:
    """The folder that datasets are installed under by default: cache_dir()/datasets."""
    return cache_dir() / "datasets"


def dataset(name: str, registry: dict[str, Dataset] | None = None) -> Dataset:
    """The registered dataset ``name``; DatasetError listing the known names otherwise."""
    registry = DATASETS if registry is None else registry
    if name not in registry:
        raise DatasetError(f"no dataset named {name!r}; registered datasets are {sorted(registry)}")
    return registry[name]


def groups(registry: dict[str, Dataset] | None = None) -> dict[str, list[str]]:
    """Short name (``glasspipe download NAME``) -> the names of its datasets, registry order."""
    registry = DATASETS if registry is None else registry
    found: dict[str, list[str]] = {}
    for item in registry.values():
        found.setdefault(item.group, []).append(item.name)
    return found


def resolve(name: str, registry: dict[str, Dataset] | None = None) -> list[Dataset]:
    """The datasets a ``glasspipe download NAME`` means: a group's (``botan``) or one by its full name."""
    registry = DATASETS if registry is None else registry
    named = groups(registry)
    if name in named:
        return [registry[n] for n in named[name]]
    if name in registry:
        return [registry[name]]
    raise DatasetError(f"no dataset or group named {name!r}; choose one of {sorted(named) + sorted(registry)}")


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder dataset ``name`` is installed in: ``root/name``, root defaulting to default_root()."""
    return (Path(root) if root is not None else default_root()) / name


def download_command(item: Dataset, root: str | Path | None = None) -> str:
    """The command that installs ``item`` where a config with this ``root`` (its source.cache) looks."""
    command = f"glasspipe download {item.group}"
    return command if root is None else f"{command} --dest {root}"


def missing_files(item: Dataset, root: str | Path | None = None) -> list[str]:
    """Names of ``item``'s files that are absent from its installed folder or have the wrong size.

    A cheap completeness check for every config load (no checksums: those are checked when installing).
    """
    folder = dataset_dir(item.name, root)
    missing = []
    for entry in item.files:
        path = folder / entry.name
        if not path.is_file() or path.stat().st_size != entry.size:
            missing.append(entry.name)
    return missing


def missing_message(item: Dataset, root: str | Path | None = None) -> str | None:
    """What is wrong with ``item``'s installed folder and the command that fixes it, e.g. "is not installed
    in ~/.cache/glasspipe/datasets/botan_T0.44_train; run: glasspipe download botan"; None when complete."""
    missing = missing_files(item, root)
    if not missing:
        return None
    folder = dataset_dir(item.name, root)
    if len(missing) == len(item.files):
        what = f"is not installed in {folder}"
    else:
        what = (
            f"is incomplete in {folder}: {len(missing)} of its {len(item.files)} files missing or cut short "
            f"({missing[0]}, ...)"
        )
    return f"{what}; run: {download_command(item, root)}"


def installed_files(item: Dataset, root: str | Path | None = None) -> list[Path]:
    """The paths of ``item``'s installed files, in its configuration order.

    Raises DatasetError naming the dataset, its folder and the command that installs it (missing_message).
    """
    problem = missing_message(item, root)
    if problem:
        raise DatasetError(f"dataset {item.name!r} {problem}")
    return [dataset_dir(item.name, root) / entry.name for entry in item.files]


# --- Verifying and installing --------------------------------------------------------------------------------


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file's content, hex (read in 1 MiB blocks: datasets can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, entry: DataFile) -> bool:
    """True when ``path`` is a file with ``entry``'s size and sha256 (the size first: it is free)."""
    return path.is_file() and path.stat().st_size == entry.size and sha256sum(path) == entry.sha256


def _local_copy(source: Path, item: Dataset, entry: DataFile) -> Path | None:
    """Where ``--from source`` holds ``entry``: source/NAME or source/<dataset name>/NAME, NAME being the file's
    name or one of its aliases; None when it holds none of them."""
    for folder in (source, source / item.name):
        for name in (entry.name, *entry.aliases):
            if (folder / name).is_file():
                return folder / name
    return None


def _copy_into(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` through a temporary file in target's folder, so that an interrupted copy
    never leaves a truncated file under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600), and installed data should get the umask's mode.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def install_from(item: Dataset, source: str | Path, root: str | Path | None = None) -> list[Path]:
    """Verify a local copy of ``item`` in folder ``source`` against the registry, then install it.

    Inputs: the dataset, the folder holding its files (directly or in a subfolder named after the dataset;
    a file may carry one of its aliases), and the install root (default_root() when None).
    Output: the installed paths, in configuration order.
    Every file is checked before any is copied: one missing file or one checksum that differs refuses the
    whole copy (DatasetError naming each such file, and the expected and found sha256) and installs nothing.
    Files already installed with the right checksum are not copied again.
    """
    source = Path(source)
    if not source.is_dir():
        raise DatasetError(f"--from {source}: no such directory (it should hold the files of {item.name!r})")
    folder = dataset_dir(item.name, root)
    plan: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for entry in item.files:
        target = folder / entry.name
        if _verified(target, entry):
            continue
        local = _local_copy(source, item, entry)
        if local is None:
            problems.append(f"{entry.name}: not in {source} (nor in {source / item.name})")
            continue
        found = sha256sum(local)
        if found != entry.sha256:
            problems.append(f"{local}: sha256 {found}, expected {entry.sha256} (it differs from the published file)")
            continue
        plan.append((local, target))
    if problems:
        raise DatasetError(
            f"refusing the local copy of dataset {item.name!r}; nothing was installed:\n  " + "\n  ".join(problems)
        )
    for local, target in plan:
        _copy_into(local, target)
        log.debug("installed %s (sha256 verified) from %s", target, local)
    return [folder / entry.name for entry in item.files]


class ResumingDownloader:
    """A pooch downloader for HTTP(S) that continues an interrupted download.

    pooch hands it a fresh temporary file to fill, and then checks the sha256 before moving that file into
    place. This downloader streams instead into a stable partial file (``part``) that outlives a failed
    run, asks the server only for the bytes it lacks (an HTTP Range request), and moves the finished part
    into pooch's temporary file. A server that ignores Range gets the whole file again; a finished part
    whose checksum fails is deleted by pooch, so a corrupt download is never resumed.
    """

    def __init__(self, part: Path, timeout: float = 60.0, chunk_size: int = 1 << 20):
        self.part = Path(part)
        self.timeout = timeout
        self.chunk_size = chunk_size

    def __call__(self, url: str, output_file, pooch_obj=None, check_only: bool = False):
        import requests

        if check_only:  # pooch's Pooch.is_available asks only whether the URL answers
            response = requests.head(url, allow_redirects=True, timeout=self.timeout)
            return response.status_code == 200
        have = self.part.stat().st_size if self.part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            # 416: the part already holds the whole file (a run that stopped before pooch's check).
            if not (have and response.status_code == 416):
                response.raise_for_status()
                resumed = bool(have) and response.status_code == 206
                if have and not resumed:
                    log.info("%s: the server ignores Range requests; downloading the whole file again", url)
                with open(self.part, "ab" if resumed else "wb") as fh:
                    for block in response.iter_content(chunk_size=self.chunk_size):
                        fh.write(block)
        os.replace(self.part, output_file)


def fetch(
    item: Dataset, root: str | Path | None = None, retries: int = 2, downloader_factory=ResumingDownloader
) -> list[Path]:
    """Download ``item``'s files with pooch into its folder under ``root``, verifying each sha256.

    Inputs: the dataset, the install root (default_root() when None), how many times to retry a file whose
    download fails (each retry resumes from what arrived), and the downloader class (a callable taking the
    partial file's path; tests inject their own).
    Output: the installed paths, in configuration order. Files already there with the right checksum are
    kept (pooch checks them); a download whose checksum differs is deleted and refused (DatasetError).
    """
    import pooch
    import requests

    folder = dataset_dir(item.name, root)
    paths = []
    for entry in item.files:
        if entry.url is None:
            raise DatasetError(
                f"{entry.name} of dataset {item.name!r} has no known public URL; get it elsewhere ({item.source}) "
                f"and run: glasspipe download {item.group} --from DIR"
            )
        downloader = downloader_factory(folder / f".{entry.name}.part")
        for attempt in range(retries + 1):
            try:
                path = pooch.retrieve(
                    entry.url, known_hash=f"sha256:{entry.sha256}", fname=entry.name, path=folder, downloader=downloader
                )
                break
            except (requests.exceptions.RequestException, OSError) as err:
                if attempt == retries:
                    raise DatasetError(
                        f"could not download {entry.url}: {err}. Run the command again to resume; offline, get the "
                        f"files elsewhere ({item.source}) and run: glasspipe download {item.group} --from DIR"
                    ) from None
                log.info("download of %s failed (%s); resuming", entry.name, err)
                time.sleep(min(2.0**attempt, 10.0))  # a dropped connection often comes back within seconds
            except ValueError as err:  # pooch: the sha256 differs (the download was deleted)
                raise DatasetError(
                    f"{entry.url} does not have the registered sha256 {entry.sha256}; nothing was installed for "
                    f"{entry.name} ({err}). The download was deleted: run the command again to fetch it afresh; if "
                    "it fails again, the published file differs from the registered one"
                ) from None
        paths.append(Path(path))
    return paths


def download(
    name: str, dest: str | Path | None = None, from_dir: str | Path | None = None, registry=None
) -> dict[str, list[Path]]:
    """``glasspipe download NAME``: install the datasets that NAME means (a group or one dataset).

    Inputs: the name, the install root (``--dest``; default_root() when None), a local copy to verify and
    install instead of downloading (``--from``), and the registry (DATASETS when None; tests inject one).
    Output: dataset name -> its installed paths.
    """
    registry = DATASETS if registry is None else registry
    installed = {}
    for item in resolve(name, registry):
        installed[item.name] = fetch(item, dest) if from_dir is None else install_from(item, from_dir, dest)
    return installed
