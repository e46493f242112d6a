"""Importers of public glassy-dynamics datasets into glasspipe's formats.

Each format lives in its own module and registers an :class:`Importer` with :func:`register` (a plugin
registry, like freud's compute classes): ``botan`` (BOTAN npz, Shiba et al. 2023), ``glassbench``
(GlassBench npz, Jung et al. 2023) and ``deepmind`` (DeepMind glassy_dynamics pickle, Bapst et al. 2020).

Public API::

    FORMATS                                   # name -> Importer
    list_files(fmt, directory) -> [Path]      # the dataset's configuration files, natural order
    load(fmt, path, **options) -> Imported    # validate everything, then convert (DatasetError if bad)
    labels_table(imported) -> DataFrame       # LONG labels, as the labels stage writes them
    labels_metadata(imported) -> dict         # provenance, noise ceiling, F_s(q = 7.25) of A particles
    write_imported(imported, configuration_out, labels_out, inherent_out=None)

The written GSD configuration and Parquet labels are read unchanged by downstream stages
(``glasspipe.learn.samples.load_sample``). Units are LJ: lengths sigma_AA, times tau.

Every problem with an input file (missing key, wrong shape, types other than 0/1, non-finite values, a
truncated or foreign file, a box the particles do not fit) raises :class:`DatasetError` (a ValueError) naming
the file and the key before any output is written.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from glasspipe import plugins
from glasspipe.io.gsd_io import Snapshot

DENSITY_KA = 1.2  # number density of the Kob-Andersen mixture in BOTAN / GlassBench (sigma_AA^-3)
# Initial positions may spread beyond the box edge by this fraction of L (single-precision rounding in
# GlassBench files puts particles up to 2e-5 beyond 15.05658); anything more means the box is wrong.
BOX_FIT_RTOL = 1e-4
# A coordinate may lie at most this many box lengths from the origin (image flags are int32 in GSD files).
BOX_MAX_IMAGES = 100
# Box lengths beyond this are refused: GSD stores the box and positions in single precision.
MAX_BOX_LENGTH = 1e6
# An .npz file's arrays may take at most this many times its own size plus NPZ_SLACK bytes once
# decompressed: real particle data compresses less than 2x; a zip bomb 1000x.
NPZ_MAX_EXPANSION = 64
NPZ_SLACK = 64 << 20


class DatasetError(ValueError):
    """A dataset file that cannot be imported: the message names the file and the key at fault."""


@dataclass
class Imported:
    """One configuration of a public dataset in glasspipe's terms (units: LJ sigma_AA, tau).

    snapshot: the configuration; positions wrapped into [-L/2, L/2), typeid 0 = A / 1 = B, type names
        ('A', 'B'), image flags such that ``snapshot.unwrapped_positions()`` equals the file's initial
        positions (up to float64 rounding).
    inherent: the dataset's inherent structure (GlassBench), same conventions, else None.
    temperature: T (eps_AA / k_B).
    times: (K,) label times (tau), ascending.
    tau_alpha: the dataset's own tau_alpha (tau) when known, else None (see each format for its definition).
    propensity: (K, N) replica mean of |r_i(t) - r_i(0)| (unwrapped positions, sigma_AA).
    replica_distances: (R, K, N) per-replica |dr| when the file holds replica positions, else None.
    extra_labels: name -> (K, N) further per-particle labels (e.g. 'bond_breaking').
    provenance: format, file name, sha256 of the original file, source, license, citation, and any
        format-specific facts (configuration index, time index, ...).
    """

    snapshot: Snapshot
    inherent: Snapshot | None
    temperature: float
    times: np.ndarray
    tau_alpha: float | None
    propensity: np.ndarray
    replica_distances: np.ndarray | None = None
    extra_labels: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def n_particles(self) -> int:
        return self.snapshot.n_particles

    @property
    def n_replicas(self) -> int | None:
        return None if self.replica_distances is None else int(self.replica_distances.shape[0])


class Importer:
    """Base class of a dataset format. Subclasses set the class attributes and implement :meth:`parse`.

    name: the format's key in :data:`FORMATS`.
    description: one line for ``glasspipe import --help``.
    pattern: glob of the dataset's configuration files inside a directory (for :func:`list_files`).
    options: the keyword options :meth:`parse` accepts.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    pattern: ClassVar[str] = "*"
    options: ClassVar[tuple[str, ...]] = ()

    def parse(self, path: Path, raw: bytes, **options) -> Imported:
        """Validate and convert the bytes ``raw`` of the file ``path``; raise DatasetError on bad input."""
        raise NotImplementedError


# The registry lives on the ground floor (glasspipe.plugins), where the config layer finds the formats' files.
FORMATS: dict[str, Importer] = plugins.FORMATS


def register(cls: type[Importer]) -> type[Importer]:
    """Class decorator: add an instance of ``cls`` to :data:`FORMATS` under ``cls.name``."""
    plugins.register_format(cls())
    return cls


def _importer(fmt: str) -> Importer:
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; choose one of {sorted(FORMATS)}")
    return FORMATS[fmt]


def list_files(fmt: str, directory: str | Path) -> list[Path]:
    """The configuration files of format ``fmt`` in ``directory``, in natural order (1, 2, ..., 10)."""
    _importer(fmt)
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory} is not a directory")
    return plugins.format_files(fmt, directory)


def load(fmt: str, path: str | Path, **options) -> Imported:
    """Read one configuration file of format ``fmt``: validate it fully, then convert it.

    ``options`` are format-specific (see each module; e.g. ``temperature``, ``time``, ``box_length``);
    options set to None are ignored. Raises DatasetError naming the file (and the key) on any problem.
    """
    importer = _importer(fmt)
    path = Path(path)
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(importer.options))
    if unknown:
        raise DatasetError(f"{path}: option(s) {unknown} do not apply to format {fmt!r}; it takes {importer.options}")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    raw = path.read_bytes()
    imported = importer.parse(path, raw, **options)
    imported.provenance = {
        "format": fmt,
        "file": path.name,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size_bytes": len(raw),
        **imported.provenance,
    }
    return imported


# --- validation helpers shared by the format modules ------------------------------------------------
def read_npz(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    """All arrays of an .npz archive (bytes ``raw`` of the file ``path``), by key ('types' for types.npy).

    Each member's .npy header is read and checked before any data: plain numeric dtype (bool, int, uint,
    float, complex; never objects, so nothing is unpickled), a shape whose size matches the member's length
    exactly, and all members together at most NPZ_MAX_EXPANSION times the file's size plus NPZ_SLACK bytes
    (a zip bomb, or a header declaring a huge shape, is refused before anything is allocated). Members that
    are not .npy files are ignored. Raises DatasetError naming the file (and the key) otherwise.
    """
    if raw.startswith(b"\x93NUMPY"):
        raise DatasetError(f"{path}: is a single .npy array, not an .npz archive of named arrays")
    arrays: dict[str, np.ndarray] = {}
    budget = NPZ_MAX_EXPANSION * len(raw) + NPZ_SLACK
    key = None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                if key in arrays:
                    raise DatasetError(f"{path}: key '{key}' appears twice in the archive")
                budget -= info.file_size
                if budget < 0:
                    raise DatasetError(
                        f"{path}: key '{key}': the archive's members would expand beyond {NPZ_MAX_EXPANSION} times "
                        "the file's size; refused (a real dataset file is not that compressible)"
                    )
                with archive.open(info) as member:
                    arrays[key] = _read_npy_member(member, info.file_size, key, path)
    except DatasetError:
        raise
    # zipfile, zlib, bz2, lzma and numpy's header parser raise many kinds on corrupt bytes (BadZipFile,
    # zlib.error, EOFError, ValueError, NotImplementedError for unknown methods, RuntimeError for encrypted
    # members, ...); for the caller they all mean one thing.
    except Exception as err:
        where = "" if key is None else f" (key '{key}')"
        raise DatasetError(
            f"{path}: not a readable .npz archive{where} ({type(err).__name__}: {str(err)[:200]}); the file is "
            "truncated, corrupt or of another kind"
        ) from err
    return arrays


def _read_npy_member(member, file_size: int, key: str, path: Path) -> np.ndarray:
    """One .npy member of an archive, its header checked against its length before the data is read."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise DatasetError(f"{path}: key '{key}' has .npy format version {version}; expected 1.0 or 2.0")
    if dtype.kind not in "biufc" or dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise DatasetError(f"{path}: key '{key}' has dtype {dtype}; a dataset array holds plain numbers")
    nbytes = math.prod(shape) * dtype.itemsize
    header = member.tell()
    if header + nbytes != file_size:
        raise DatasetError(
            f"{path}: key '{key}' declares shape {shape} of {dtype} ({nbytes} bytes) but the member holds "
            f"{file_size - header} bytes of data"
        )
    data = member.read(nbytes)
    # Reading past the end makes zipfile check the member's CRC; it must find nothing more.
    if len(data) != nbytes or member.read(1):
        raise DatasetError(f"{path}: key '{key}' is truncated or longer than its header says")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def require(data: Mapping, key: str, path: Path, what: str) -> object:
    """``data[key]``, or DatasetError naming the file, the missing key and the keys present."""
    if key not in data:
        raise DatasetError(
            f"{path}: key '{key}' is missing; a {what} file holds it (keys present: {sorted(map(str, data))})"
        )
    return data[key]


def regular_array(value, key: str, path: Path) -> np.ndarray:
    """``np.asarray(value)``, or DatasetError naming the file and key when ``value`` (nested lists from a
    pickle) is ragged and numpy refuses to make an array of it."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{path}: key '{key}' is not a regular array ({str(err)[:200]})") from err


def float_array(value, key: str, path: Path, shape: tuple) -> np.ndarray:
    """``value`` (real numbers: ints or floats, in an array or nested lists) as a finite float64 array of
    ``shape`` (None entries match any size). Strings, booleans, complex numbers and objects are refused
    rather than converted (np.asarray would turn '1.5' into 1.5 and drop imaginary parts)."""
    array = regular_array(value, key, path)
    if array.dtype.kind not in "iuf":
        raise DatasetError(f"{path}: key '{key}' has dtype {array.dtype}, expected real numbers (int or float)")
    check_shape(array, key, path, shape)
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        raise DatasetError(f"{path}: key '{key}' holds {int(bad.sum())} non-finite values (NaN or inf)")
    return array


def positive_number(value, what: str, path: Path) -> float:
    """``value`` as a finite float > 0 (a temperature, a time, a length); DatasetError naming ``what``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating | str):
        raise DatasetError(f"{path}: {what} is a {type(value).__name__}, expected a positive number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise DatasetError(f"{path}: {what} = {str(value)[:40]!r} is not a number") from err
    if not (np.isfinite(number) and number > 0):
        raise DatasetError(f"{path}: {what} = {number} must be a finite number > 0")
    return number


def check_shape(array: np.ndarray, key: str, path: Path, shape: tuple) -> None:
    """DatasetError naming the file and key unless ``array`` has ``shape`` (None entries match any size)."""
    ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape, strict=True))
    if not ok:
        expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise DatasetError(f"{path}: key '{key}' has shape {array.shape}, expected {expected}")


def type_ids(value, key: str, path: Path) -> np.ndarray:
    """Particle types as an (N,) int32 array of 0 (A) and 1 (B); DatasetError otherwise."""
    array = regular_array(value, key, path)
    if array.ndim != 1 or array.size == 0:
        raise DatasetError(f"{path}: key '{key}' has shape {array.shape}, expected (N,) particle types")
    if array.dtype.kind not in "iub" and not (
        array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        raise DatasetError(f"{path}: key '{key}' has dtype {array.dtype}, expected integer types 0 (A) and 1 (B)")
    bad = (array != 0) & (array != 1)
    if bad.any():
        raise DatasetError(
            f"{path}: key '{key}' holds types {sorted(np.unique(array[bad]).tolist())} besides 0 (A) and 1 (B); "
            "glasspipe imports binary Kob-Andersen mixtures only"
        )
    return array.astype(np.int32)


def default_box_length(n_particles: int, density: float = DENSITY_KA) -> float:
    """Edge (sigma_AA) of the cube holding ``n_particles`` at ``density``: (N / rho)^(1/3)."""
    return float((n_particles / density) ** (1.0 / 3.0))


def check_box(positions: np.ndarray, box_length: float, key: str, path: Path) -> None:
    """Refuse a box the particles do not fit: their spread along an axis may exceed L by BOX_FIT_RTOL only,
    and no coordinate may lie more than BOX_MAX_IMAGES box lengths from the origin (image flags are int32,
    and a far-off box image means the coordinates are wrong). L must be in (0, MAX_BOX_LENGTH]."""
    if not (np.isfinite(box_length) and 0 < box_length <= MAX_BOX_LENGTH):
        raise DatasetError(f"{path}: box length {box_length} is not a positive number up to {MAX_BOX_LENGTH:g}")
    spread = positions.max(axis=0) - positions.min(axis=0)
    worst = int(np.argmax(spread))
    if spread[worst] > box_length * (1.0 + BOX_FIT_RTOL):
        raise DatasetError(
            f"{path}: key '{key}': the particles spread over {spread[worst]:.6g} along axis {'xyz'[worst]}, more "
            f"than the box length {box_length:.6g}; the box is wrong for this file (density "
            f"{len(positions) / box_length**3:.4g} with this box)"
        )
    check_images(positions, box_length, key, path)


def check_images(positions: np.ndarray, box_length: float, key: str, path: Path) -> None:
    """Refuse coordinates more than BOX_MAX_IMAGES box lengths from the origin: wrapping them would need
    image flags beyond int32, and no dataset places a configuration that far from its box."""
    farthest = float(np.abs(positions).max())
    if farthest > BOX_MAX_IMAGES * box_length:
        raise DatasetError(
            f"{path}: key '{key}': a coordinate is {farthest:.6g} from the origin, more than {BOX_MAX_IMAGES} box "
            f"lengths ({box_length:.6g}); the positions or the box are wrong for this file"
        )


def checked_distances(targets: np.ndarray, initial: np.ndarray, key: str, path: Path) -> np.ndarray:
    """|targets - initial| over the last axis (no minimum image: the target positions are unwrapped), finite.

    targets: (..., N, 3) positions; initial: (N, 3). Returns (..., N). Coordinates that are finite but so far
    apart that the distance overflows are refused (DatasetError naming the file and key).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        distances = np.linalg.norm(targets - initial, axis=-1)
    if not np.all(np.isfinite(distances)):
        raise DatasetError(f"{path}: key '{key}': displacements overflow (positions of order 1e150 or more)")
    return distances


def snapshot_from(positions: np.ndarray, typeid: np.ndarray, box_length: float) -> Snapshot:
    """A Snapshot wrapped into [-L/2, L/2) whose unwrapped positions are ``positions``; time 0."""
    return Snapshot(positions=positions, typeid=typeid, box_length=float(box_length), dt=0.0).wrapped()


def option_times(times, path: Path, n_times: int | None = None) -> np.ndarray:
    """Label times given as an option: positive, finite, strictly ascending, ``n_times`` of them if set."""
    array = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if (
        array.ndim != 1
        or array.size == 0
        or not np.all(np.isfinite(array))
        or np.any(array <= 0)
        or np.any(np.diff(array) <= 0)
    ):
        raise DatasetError(
            f"{path}: option 'times' = {array.tolist()} must be one or more positive, strictly ascending times"
        )
    if n_times is not None and len(array) != n_times:
        raise DatasetError(f"{path}: option 'times' gives {len(array)} times but the file holds labels at {n_times}")
    return array


def temperature_option(path: Path, options: dict) -> float:
    """The temperature: option 'temperature', else the number after 'T' in the file name (T0.44)."""
    temperature = options.get("temperature")
    if temperature is None:
        found = number_in_name(path, r"T(\d+(?:\.\d+)?)")
        if found is None:
            raise DatasetError(f"{path}: the name gives no temperature (T0.44); pass the 'temperature' option")
        temperature = found
    return positive_number(temperature, "the temperature", path)


def number_in_name(path: Path, pattern: str) -> str | None:
    match = re.search(pattern, path.name)
    return match.group(1) if match else None


# --- outputs ----------------------------------------------------------------------------------------
def labels_table(imported: Imported) -> pd.DataFrame:
    """LONG labels, one row per (time, particle), ordered by time then particle.

    Columns: ``particle`` (int64), ``type`` ('A'/'B'), ``time`` (tau), ``propensity`` (sigma_AA),
    ``propensity_std`` (sample std over replicas, ddof = 1; NaN without replica data or with one replica),
    then one column per extra label (e.g. ``bond_breaking``). Same layout as the labels stage writes.
    """
    k, n = imported.propensity.shape
    distances = imported.replica_distances
    if distances is not None and distances.shape[0] > 1:
        std = distances.std(axis=0, ddof=1)
    else:
        std = np.full((k, n), np.nan)
    names = np.asarray(imported.snapshot.type_names, dtype=object)[imported.snapshot.typeid]
    columns = {
        "particle": np.tile(np.arange(n, dtype=np.int64), k),
        "type": np.tile(names, k),
        "time": np.repeat(np.asarray(imported.times, dtype=np.float64), n),
        "propensity": np.asarray(imported.propensity, dtype=np.float64).reshape(-1),
        "propensity_std": std.reshape(-1),
    }
    for name, values in imported.extra_labels.items():
        columns[name] = np.asarray(values, dtype=np.float64).reshape(-1)
    return pd.DataFrame(columns)


def _self_isf_from_distances(distances: np.ndarray, mask: np.ndarray) -> list[float]:
    """F_s(q = 7.25, t_k) of the masked particles, averaged over replicas, as the labels stage computes it.

    self_isf depends on the displacements only through |dr|, so each replica's distances are passed as
    displacements (|dr|, 0, 0) from a zero reference: the same numbers as from the full vectors.
    """
    from glasspipe.dynamics.relaxation import Q_PEAK_KA, self_isf

    n_replicas, n_times, n = distances.shape
    zero = np.zeros((n, 3))
    values = []
    for k in range(n_times):
        displaced = np.zeros((n_replicas, n, 3))
        displaced[..., 0] = distances[:, k]
        values.append(float(self_isf(zero, displaced, Q_PEAK_KA, mask=mask).mean()))
    return values


def labels_metadata(imported: Imported) -> dict:
    """Metadata stored with the labels table: provenance, times, and when replica distances exist the noise
    ceiling (half-half split of the replicas over A particles, Spearman-Brown; one row per time) and
    ``self_isf`` = {'q': 7.25, 'times': [...], 'fs_A': [...]} (F_s of A particles, replica mean)."""
    from glasspipe import __version__
    from glasspipe.dynamics.relaxation import Q_PEAK_KA
    from glasspipe.labels.propensity import noise_ceiling_from_distances

    times = [float(t) for t in imported.times]
    meta = {
        "stage": "import",
        "glasspipe_version": __version__,
        "provenance": dict(imported.provenance),
        "temperature": float(imported.temperature),
        "times": times,
        "tau_alpha": None if imported.tau_alpha is None else float(imported.tau_alpha),
        "n_particles": imported.n_particles,
        "n_replicas": imported.n_replicas,
        "labels": ["propensity", *imported.extra_labels],
    }
    distances = imported.replica_distances
    is_a = imported.snapshot.typeid == 0
    if distances is not None and distances.shape[0] >= 2 and is_a.sum() >= 3:
        ceiling = noise_ceiling_from_distances(imported.times, distances, is_a)
        meta["noise_ceiling"] = ceiling.to_dict(orient="records")
    if distances is not None and is_a.any():
        meta["self_isf"] = {"q": Q_PEAK_KA, "times": times, "fs_A": _self_isf_from_distances(distances, is_a)}
    return meta


def gsd_metadata(imported: Imported) -> dict:
    """Metadata stored in frame 0 of the imported GSD configuration."""
    from glasspipe import __version__

    return {
        "stage": "import",
        "glasspipe_version": __version__,
        "provenance": dict(imported.provenance),
        "temperature": float(imported.temperature),
        "times": [float(t) for t in imported.times],
        "tau_alpha": None if imported.tau_alpha is None else float(imported.tau_alpha),
        "n_replicas": imported.n_replicas,
    }


def write_imported(
    imported: Imported,
    configuration_out: str | Path,
    labels_out: str | Path,
    inherent_out: str | Path | None = None,
    metadata: dict | None = None,
) -> None:
    """Write the configuration (GSD), the labels (Parquet) and optionally the inherent structure (GSD).

    ``metadata`` (e.g. the pipeline's configuration index and settings) is added to every file's metadata.

    Everything is computed before the first file is written, and the files appear together or not at all:
    each is written to a temporary name beside its destination, and only when all are complete are they
    renamed into place; a failure removes the temporary files, so it leaves no partial output.
    """
    from glasspipe.io.gsd_io import write_gsd
    from glasspipe.io.tables import write_table

    if inherent_out is not None and imported.inherent is None:
        raise DatasetError(
            f"{imported.provenance.get('file', 'this dataset')}: no inherent structure to write to {inherent_out}"
        )
    table = labels_table(imported)
    table_meta = {**labels_metadata(imported), **(metadata or {})}
    meta = {**gsd_metadata(imported), **(metadata or {})}
    writers = [
        (configuration_out, lambda tmp: write_gsd(tmp, [imported.snapshot], metadata=meta)),
        (labels_out, lambda tmp: write_table(table, tmp, metadata=table_meta)),
    ]
    if inherent_out is not None:
        inherent_meta = {**meta, "structure": "inherent"}
        writers.append((inherent_out, lambda tmp: write_gsd(tmp, [imported.inherent], metadata=inherent_meta)))
    staged: list[tuple[Path, Path]] = []
    try:
        for final, write in writers:
            final = Path(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{os.getpid()}.importing")
            staged.append((tmp, final))
            write(tmp)
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


# The format modules register themselves on import (they need the names above).
from glasspipe.importers import botan, deepmind, glassbench  # noqa: E402, F401

__all__ = [
    "FORMATS",
    "DatasetError",
    "Imported",
    "Importer",
    "labels_metadata",
    "labels_table",
    "list_files",
    "load",
    "register",
    "write_imported",
]
