"""Fuzz of every importer (BOTAN npz, GlassBench npz, DeepMind pickle): seeded mutants of valid files.

Each format gets MUTANTS mutants of its seed files: flipped bytes (anywhere, and in headers and opcodes
where parsers make decisions), truncations, inserted / deleted / repeated chunks, and decoded-and-re-encoded
changes (keys swapped, dropped or renamed, wrong dtypes, NaN / inf / huge / negative values, zero-length and
reshaped arrays; for DeepMind also the label layouts, metadata and time indices). Each mutant must either
import, with every shape and value checked here, and be written by ``write_imported`` (complete files, no
temporaries), or be refused with DatasetError naming the file and leave no output at all. Any other
exception, a crash of the interpreter or a mutant running past MUTANT_TIMEOUT_S fails the test and names the
mutant (reproduce one with ``python tests/test_importer_fuzz.py FORMAT --only INDEX``).

Seeds: the shared samples (BOTAN's configuration 1, DeepMind's test_small.pickle; GlassBench has no public
sample here, so its seed is built from the BOTAN configuration in GlassBench's layout). One mutant in ten
is made from the full-size file; the rest from a reduced copy of the same data (64 particles for the npz
formats, 4 replicas for DeepMind, plus DeepMind's test_large layout: targets with positions at one time), so
that 1,000 mutants per format run in seconds. Without the samples (a fresh clone) synthetic files of the same
layout are used. The three formats run in parallel child interpreters (a crash kills a child, not pytest).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # conftest, when this file runs as a script in a child interpreter
    sys.path.insert(0, str(HERE))
from conftest import REPO, shared_data_dir  # noqa: E402

FORMATS = ("botan", "glassbench", "deepmind")
SEED = 18  # issue 18
MUTANTS = 1000
FULL_SHARE = 0.1  # the share of mutants made from the full-size seed
MUTANT_TIMEOUT_S = 10.0  # one mutant, importing and writing; a real one takes milliseconds
CHILD_TIMEOUT_S = 300
BOTAN_BOX = (4096 / 1.2) ** (1 / 3)  # 15.05658: BOTAN stores no box (REFERENCE.md)


@dataclass
class Seed:
    """A valid file of a format: its name (which carries T and the time index), bytes, decoded content,
    the importer options it needs, and whether it is the full-size sample."""

    name: str
    raw: bytes
    content: dict
    options: dict = field(default_factory=dict)
    full: bool = False


# ------------------------------------------------------------------------------------------------ seeds
def _npz_bytes(content: dict, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **content)
    return buffer.getvalue()


def _read_npz(raw: bytes) -> dict:
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _synthetic_botan(n: int, replicas: int, rng) -> dict:
    box = (n / 1.2) ** (1 / 3)
    initial = rng.uniform(0.0, box, (n, 3))
    return {
        "types": (np.arange(n) >= int(0.8 * n)).astype(np.int8),
        "initial_positions": initial,
        "positions": initial[None] + rng.normal(0, 0.5, (replicas, n, 3)),
    }


def botan_seeds(shared: Path | None) -> list[Seed]:
    rng = np.random.default_rng(SEED)
    if shared is not None:
        raw = (shared / "botan_T0.44_cfg1_tc07.npz").read_bytes()
        full = _read_npz(raw)
        every = slice(None, None, 64)  # 64 of the 4096 particles, A and B, in the full box
        reduced = {
            "types": full["types"][every],
            "initial_positions": full["initial_positions"][every],
            "positions": full["positions"][:4, every],
        }
        return [
            Seed("isoconfig_N4096T0.44_1_tc07.npz", raw, full, full=True),
            Seed("isoconfig_N64T0.44_1_tc07.npz", _npz_bytes(reduced), reduced, {"box_length": BOTAN_BOX}),
        ]
    full, reduced = _synthetic_botan(512, 8, rng), _synthetic_botan(64, 4, rng)
    return [
        Seed("isoconfig_N512T0.44_1_tc07.npz", _npz_bytes(full), full, full=True),
        Seed("isoconfig_N64T0.44_1_tc07.npz", _npz_bytes(reduced), reduced),
    ]


def _glassbench_from(types, initial, box: float, propensity, rng) -> dict:
    """GlassBench's layout (see glasspipe/importers/glassbench.py) around a configuration: positions wrapped
    into [-L/2, L/2), an inherent structure nearby, md_prop (10, N) growing with time through the given
    propensity at the 7th time (tau_alpha), bb_prop (10, N) falling from 1."""
    wrapped = initial - box * np.floor(initial / box + 0.5)
    scale = np.geomspace(0.05, 8.0, 10)[:, None] / scale_at(6)
    md_prop = np.maximum(propensity[None] * scale, 0.0)
    return {
        "types": types,
        "initial_positions": wrapped,
        "initial_positions_inherent": wrapped + rng.normal(0, 0.03, wrapped.shape),
        "initial_positions_cage": wrapped + rng.normal(0, 0.03, wrapped.shape),
        "md_prop": md_prop,
        "bb_prop": np.clip(1.0 - md_prop / (md_prop.max() + 1.0), 0.0, 1.0),
    }


def scale_at(index: int) -> float:
    return float(np.geomspace(0.05, 8.0, 10)[index])


def glassbench_seeds(shared: Path | None) -> list[Seed]:
    rng = np.random.default_rng(SEED + 1)
    if shared is not None:
        botan = _read_npz((shared / "botan_T0.44_cfg1_tc07.npz").read_bytes())
        types, initial = botan["types"], botan["initial_positions"]
        propensity = np.linalg.norm(botan["positions"] - initial, axis=-1).mean(axis=0)
        full = _glassbench_from(types, initial, BOTAN_BOX, propensity, rng)
        every = slice(None, None, 64)
        reduced = {key: value[:, every] if key.endswith("prop") else value[every] for key, value in full.items()}
        return [
            Seed("N4096T0.44_1.npz", _npz_bytes(full), full, full=True),
            Seed("N64T0.44_1.npz", _npz_bytes(reduced), reduced, {"box_length": BOTAN_BOX}),
        ]
    seeds = []
    for n, full in ((512, True), (64, False)):
        box = (n / 1.2) ** (1 / 3)
        initial = rng.uniform(0.0, box, (n, 3))
        content = _glassbench_from(
            (np.arange(n) >= int(0.8 * n)).astype(np.int8), initial, box, rng.uniform(0, 2, n), rng
        )
        seeds.append(Seed(f"N{n}T0.44_1.npz", _npz_bytes(content), content, full=full))
    return seeds


def _synthetic_deepmind(n: int, replicas: int, rng) -> dict:
    box = 15.0
    positions = rng.uniform(0, box, (n, 3))
    time_grid = [0.0, *np.round(np.geomspace(0.003, 3e4, 150), 3).tolist()]
    indices = [10, 30, 50, 70, 90, 100, 110, 120, 130, 125]  # the 1/e point last, as in DeepMind's files
    return {
        "positions": positions,
        "types": (np.arange(n) >= int(0.8 * n)).astype(np.int32),
        "box": np.full(3, box),
        "time": time_grid,
        "time_indices": indices,
        "is_values": np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, np.exp(-1.0)]),
        "trajectory_start_velocities": [rng.normal(size=(n, 3)) for _ in range(replicas)],
        "trajectory_target_positions": [
            [positions + rng.normal(0, 0.02 * (k + 1), (n, 3)) for _ in range(replicas)] for k in range(10)
        ],
        "metadata": {"temperature": 0.44, "pressure": 2.93, "fluid": "Kob Andersen"},
    }


def large_layout(content: dict, m: int = 1) -> dict:
    """DeepMind's test_large.pickle layout from a file with positions at all K times: 'targets' (K, N) as
    get_targets computes them (in float64), and 'trajectory_target_positions' (m, R, N, 3) for the first m."""
    initial = np.asarray(content["positions"], dtype=np.float64)
    per_time = [np.asarray(replicas, dtype=np.float64) for replicas in content["trajectory_target_positions"]]
    targets = np.stack(
        [np.mean([np.linalg.norm(r - initial, axis=-1) for r in replicas], axis=0) for replicas in per_time]
    )
    return {**content, "targets": targets, "trajectory_target_positions": np.stack(per_time[:m])}


def deepmind_seeds(shared: Path | None) -> list[Seed]:
    from glasspipe.importers.safe_pickle import load_bytes

    rng = np.random.default_rng(SEED + 2)
    if shared is not None:
        raw = (shared / "deepmind_test_small.pickle").read_bytes()
        full = load_bytes(raw, name="deepmind_test_small.pickle")
    else:
        full = _synthetic_deepmind(20, 30, rng)
        raw = pickle.dumps(full, protocol=3)
    reduced = {
        **full,
        "trajectory_start_velocities": list(full["trajectory_start_velocities"][:4]),
        "trajectory_target_positions": [list(replicas[:4]) for replicas in full["trajectory_target_positions"]],
    }
    large = large_layout(reduced)
    return [
        Seed("deepmind_T0.44.pickle", raw, full, full=True),
        Seed("deepmind_T0.44.pickle", pickle.dumps(reduced, protocol=3), reduced),
        Seed("deepmind_large_layout.pickle", pickle.dumps(large, protocol=3), large),
    ]


SEEDS = {"botan": botan_seeds, "glassbench": glassbench_seeds, "deepmind": deepmind_seeds}


# ---------------------------------------------------------------------------------------- byte mutations
def _structural_offsets(fmt: str, raw: bytes) -> np.ndarray:
    """Offsets where parsers decide things: zip headers, .npy headers and the central directory for npz;
    every opcode (not its payload) for a pickle."""
    if fmt == "deepmind":
        import pickletools

        offsets = []
        try:
            for _, _, position in pickletools.genops(raw):
                offsets.append(position)
        except Exception:  # noqa: BLE001 - a seed is valid; this only guards the helper
            pass
        return np.asarray(offsets or [0])
    import zipfile

    offsets = []
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for info in archive.infolist():
            start = info.header_offset
            offsets.extend(range(start, min(start + 30 + len(info.filename) + 128, len(raw))))
    directory = raw.find(b"PK\x01\x02")  # the central directory, to the end of the file
    offsets.extend(range(directory if directory >= 0 else max(0, len(raw) - 64), len(raw)))
    return np.asarray(sorted(set(offsets)))


def mutate_bytes(fmt: str, raw: bytes, rng, offsets: np.ndarray) -> tuple[bytes, str]:
    data = bytearray(raw)
    if not data:  # an earlier truncation left nothing
        return rng.bytes(int(rng.integers(1, 64))), "random bytes"
    op = rng.choice(["flip", "flip_structure", "truncate", "truncate_structure", "insert", "delete", "repeat", "zero"])
    where = int(rng.choice(offsets)) if op.endswith("structure") else int(rng.integers(0, len(data)))
    if op.startswith("flip"):
        for _ in range(int(rng.integers(1, 5))):
            at = min(where + int(rng.integers(0, 4)), len(data) - 1)
            data[at] ^= 1 << int(rng.integers(0, 8))
        return bytes(data), f"{op}@{where}"
    if op.startswith("truncate"):
        return bytes(data[:where]), f"{op}@{where}"
    size = int(rng.integers(1, 64))
    if op == "insert":
        return bytes(data[:where]) + rng.bytes(size) + bytes(data[where:]), f"insert {size}@{where}"
    if op == "delete":
        return bytes(data[:where]) + bytes(data[where + size :]), f"delete {size}@{where}"
    if op == "repeat":
        return bytes(data[: where + size]) + bytes(data[where:]), f"repeat {size}@{where}"
    data[where : where + size] = bytes(len(data[where : where + size]))
    return bytes(data), f"zero {size}@{where}"


# --------------------------------------------------------------------------------------- value mutations
BAD_VALUES = {
    "nan": np.nan,
    "inf": np.inf,
    "-inf": -np.inf,
    "huge": 1e308,
    "big": 1e160,  # finite, but squares overflow
    "negative": -3.0,
    "zero": 0.0,
}
DTYPES = ["int8", "int64", "uint8", "float16", "float32", "complex128", "bool", "<U6", "S4", "M8[s]", "object", "V8"]


def _as_array(value):
    try:
        array = np.asarray(value)
    except ValueError:
        return None
    return array if array.dtype.kind in "biufc" else None


def mutate_value(value, rng) -> tuple[object, str]:
    """One change of one value: bad numbers, a wrong dtype, zero length, a wrong shape, a non-array."""
    array = _as_array(value)
    op = rng.choice(["bad_value", "dtype", "zero_length", "reshape", "replace"] if array is not None else ["replace"])
    if op == "bad_value" and array.size:
        name = str(rng.choice(list(BAD_VALUES)))
        changed = array.astype(np.float64).copy()
        flat = changed.reshape(-1)
        count = int(rng.integers(1, min(flat.size, 4) + 1)) if rng.random() < 0.8 else flat.size
        flat[rng.choice(flat.size, count, replace=False)] = BAD_VALUES[name]
        return changed, f"{name} x{count}"
    if op == "dtype":
        dtype = str(rng.choice(DTYPES))
        try:
            if dtype == "V8":
                return np.zeros(array.shape, dtype=[("a", "<f8")]), "structured dtype"
            with np.errstate(invalid="ignore", over="ignore"):  # NaN or 1e308 cast to int: any value will do
                return array.astype(dtype), f"dtype {dtype}"
        except (TypeError, ValueError):
            return array.astype(object), "dtype object"
    if op == "zero_length" and array.ndim:
        axis = int(rng.integers(0, array.ndim))
        return np.take(array, [], axis=axis), f"zero length on axis {axis}"
    if op == "reshape" and array.ndim:
        choice = int(rng.integers(0, 5))
        if choice == 0:
            return array.T, "transposed"
        if choice == 1:
            return array[None], "extra axis"
        if choice == 2:
            return array.reshape(-1), "flattened"
        if choice == 3:
            return np.delete(array, -1, axis=0) if len(array) else array, "one row fewer"
        return np.concatenate([array, array[:1]]) if len(array) else array, "one row more"
    replacements = [None, "text", 3, 2.5, True, [], {}, [1, "a"], {"a": 1}, [[1, 2], [3]], 10**400]
    pick = replacements[int(rng.integers(0, len(replacements)))]
    return pick, f"replaced by {pick!r:.20}"


def mutate_content(fmt: str, content: dict, rng) -> tuple[dict, str]:
    """One change of the decoded file: a value, or the keys (swap, drop, rename, extra), or for DeepMind
    its layouts, metadata and time indices."""
    content = dict(content)
    keys = sorted(content)
    ops = ["value", "value", "swap", "drop", "rename", "extra"]
    if fmt == "deepmind":
        ops += ["layout", "layout", "metadata", "time_indices"]
    op = rng.choice(ops)
    key = str(rng.choice(keys))
    if op == "value":
        content[key], what = mutate_value(content[key], rng)
        return content, f"{key}: {what}"
    if op == "swap":
        other = str(rng.choice(keys))
        content[key], content[other] = content[other], content[key]
        return content, f"swap {key} <-> {other}"
    if op == "drop":
        del content[key]
        return content, f"drop {key}"
    if op == "rename":
        content[key.upper() if rng.random() < 0.5 else key + "_"] = content.pop(key)
        return content, f"rename {key}"
    if op == "extra":
        content["extra"] = rng.normal(size=(3, 3))
        return content, "extra key"
    if op == "metadata":
        metadata = dict(content.get("metadata") or {})
        field_name = str(rng.choice(["temperature", "pressure", "fluid"]))
        values = [np.nan, -0.44, 0.0, "0.44", "hot", 10**400, True, None, [0.44], 1e308, np.float32(0.44), "x" * 500]
        metadata[field_name] = values[int(rng.integers(0, len(values)))]
        content["metadata"] = metadata if rng.random() < 0.9 else [metadata]
        return content, f"metadata {field_name} = {metadata[field_name]!r:.20}"
    if op == "time_indices":
        indices = list(content["time_indices"])
        choices = [
            [*indices[:-1], len(content["time"])],
            [-1, *indices[1:]],
            [float(i) for i in indices],
            [bool(i % 2) for i in indices],
            [],
            [indices[0]] * len(indices),
            [2**70, *indices[1:]],
            indices[:3],
            [0, *indices[1:]],
        ]
        content["time_indices"] = choices[int(rng.integers(0, len(choices)))]
        return content, f"time_indices = {content['time_indices']!r:.40}"
    # layout: targets and trajectory_target_positions in DeepMind's layouts, consistent or not
    if "trajectory_target_positions" not in content or _as_array(content["trajectory_target_positions"]) is None:
        content.pop("trajectory_target_positions", None)
        return content, "layout: no replica positions"
    positions = np.asarray(content["trajectory_target_positions"], dtype=np.float64)
    k = len(content["time_indices"])
    choice = int(rng.integers(0, 6))
    if choice == 0:
        full = large_layout({**content, "trajectory_target_positions": positions})
        m = int(rng.integers(1, len(positions) + 1))
        full["trajectory_target_positions"] = positions[:m]
        return full, f"layout: targets + positions at {m} times"
    if choice == 1:
        full = large_layout({**content, "trajectory_target_positions": positions})
        full["targets"] = full["targets"] * (1 + 1e-6)
        return full, "layout: targets disagree with positions by 1e-6"
    if choice == 2:
        full = large_layout({**content, "trajectory_target_positions": positions})
        del full["trajectory_target_positions"]
        full["targets"] = full["targets"].astype(np.float32) if rng.random() < 0.5 else full["targets"].T
        return full, f"layout: targets only ({full['targets'].dtype}, {full['targets'].shape})"
    if choice == 3:
        m = int(rng.integers(1, len(positions) + 1))
        content["trajectory_target_positions"] = positions[:m]
        return content, f"layout: positions at the first {m} times only"
    if choice == 4:
        content["trajectory_target_positions"] = np.concatenate([positions, positions[:1]])
        return content, f"layout: positions at {len(positions) + 1} times for {k} indices"
    content["trajectory_target_positions"] = [list(replicas) for replicas in positions]
    return content, "layout: positions as lists"


def encode(fmt: str, content: dict, rng) -> bytes:
    if fmt == "deepmind":
        return pickle.dumps(content, protocol=int(rng.integers(0, pickle.HIGHEST_PROTOCOL + 1)))
    arrays = {
        key: value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
        for key, value in content.items()
    }
    return _npz_bytes(arrays, compressed=bool(rng.random() < 0.3))


def make_mutant(fmt: str, seeds: list[Seed], offsets: list, index: int) -> tuple[Seed, bytes, str]:
    """Mutant ``index`` of ``fmt`` (its own seeded generator, so any one can be rebuilt alone)."""
    rng = np.random.default_rng([SEED, FORMATS.index(fmt), index])
    full = [i for i, s in enumerate(seeds) if s.full]
    small = [i for i, s in enumerate(seeds) if not s.full]
    pick = int(rng.choice(full)) if rng.random() < FULL_SHARE else int(rng.choice(small))
    seed = seeds[pick]
    steps = []
    if rng.random() < 0.45:
        data = seed.raw
        for _ in range(int(rng.integers(1, 3))):
            data, what = mutate_bytes(fmt, data, rng, offsets[pick])
            steps.append(what)
    else:
        content = seed.content
        for _ in range(int(rng.integers(1, 3))):
            try:
                content, what = mutate_content(fmt, content, rng)
            except (KeyError, TypeError, ValueError, IndexError):  # a second change that the first made moot
                what = "(a change that did not apply)"
            steps.append(what)
        data = encode(fmt, content, rng)
        if rng.random() < 0.15:
            data, what = mutate_bytes(fmt, data, rng, np.arange(len(data)))
            steps.append(what)
    return seed, data, f"{'full' if seed.full else 'reduced'} {seed.name}: " + "; ".join(steps)


# ------------------------------------------------------------------------------------------ the checks
def check_imported(imported) -> list[str]:
    """What must hold for any import: shapes agree, values finite, times ascending, types 0/1."""
    problems = []
    snap = imported.snapshot
    n = snap.n_particles
    half = snap.box_length / 2
    k = len(imported.times)
    if not (np.isfinite(snap.box_length) and snap.box_length > 0):
        problems.append(f"box {snap.box_length}")
    if snap.positions.shape != (n, 3) or not np.all(np.isfinite(snap.positions)) or n < 1:
        problems.append(f"positions {snap.positions.shape}")
    elif np.any(snap.positions < -half) or np.any(snap.positions >= half * (1 + 1e-12)):
        problems.append("positions outside [-L/2, L/2)")
    if snap.typeid.shape != (n,) or not np.all((snap.typeid == 0) | (snap.typeid == 1)):
        problems.append("types")
    if k < 1 or imported.times.shape != (k,) or not np.all(np.isfinite(imported.times)):
        problems.append(f"times {imported.times!r:.60}")
    elif np.any(imported.times <= 0) or np.any(np.diff(imported.times) <= 0):
        problems.append("times not positive and ascending")
    if imported.propensity.shape != (k, n) or not np.all(np.isfinite(imported.propensity)):
        problems.append(f"propensity {imported.propensity.shape}")
    elif np.any(imported.propensity < 0):
        problems.append("negative propensity")
    distances = imported.replica_distances
    if distances is not None and (distances.ndim != 3 or distances.shape[1:] != (k, n) or distances.shape[0] < 1):
        problems.append(f"replica distances {distances.shape}")
    for name, values in imported.extra_labels.items():
        if np.shape(values) != (k, n) or not np.all(np.isfinite(values)):
            problems.append(f"label {name} {np.shape(values)}")
    if not (np.isfinite(imported.temperature) and imported.temperature > 0):
        problems.append(f"temperature {imported.temperature}")
    inherent = imported.inherent
    if inherent is not None and (inherent.positions.shape != (n, 3) or not np.all(np.isfinite(inherent.positions))):
        problems.append("inherent structure shape")
    elif inherent is not None and (
        np.any(inherent.positions < -half) or np.any(inherent.positions >= half * (1 + 1e-12))
    ):
        problems.append("inherent positions outside [-L/2, L/2)")
    return problems


class _Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no ``except Exception`` in the code under test eats it."""


def _on_alarm(signum, frame):
    raise _Hang


def run_mutant(fmt: str, seed: Seed, data: bytes, folder: Path) -> tuple[str, str]:
    """Import one mutant file and write it; return (outcome, detail), outcome 'imported', 'refused' or
    'FAILED'."""
    from glasspipe.importers import DatasetError, load, write_imported

    path = folder / seed.name
    out = folder / "out"
    path.write_bytes(data)
    out.mkdir(exist_ok=True)
    try:
        imported = load(fmt, path, **seed.options)
    except DatasetError as err:
        message = str(err)
        if seed.name not in message:
            return "FAILED", f"the error does not name the file: {message[:300]}"
        if any(out.iterdir()):
            return "FAILED", f"refused but left output: {sorted(p.name for p in out.iterdir())}"
        return "refused", message
    except Exception as err:  # noqa: BLE001 - any other exception is the finding
        return "FAILED", f"{type(err).__name__} instead of DatasetError: {str(err)[:300]}"
    problems = check_imported(imported)
    if problems:
        return "FAILED", f"imported with {problems}"
    expected = {"c.gsd", "c.parquet"} | ({"c.inherent.gsd"} if imported.inherent is not None else set())
    try:
        write_imported(
            imported,
            out / "c.gsd",
            out / "c.parquet",
            out / "c.inherent.gsd" if imported.inherent is not None else None,
        )
    except Exception as err:  # noqa: BLE001
        left = sorted(p.name for p in out.iterdir())
        return "FAILED", f"imported, then writing failed ({type(err).__name__}: {str(err)[:200]}); left {left}"
    written = {p.name for p in out.iterdir()}
    shutil.rmtree(out)
    if written != expected:
        return "FAILED", f"wrote {sorted(written)}, expected {sorted(expected)}"
    return "imported", ""


def fuzz(fmt: str, count: int, folder: Path, progress: Path | None = None, only: int | None = None) -> dict:
    """Run ``count`` mutants of ``fmt`` (or just mutant ``only``) in ``folder``; return the summary."""
    shared = shared_data_dir()
    seeds = SEEDS[fmt](shared)
    offsets = [_structural_offsets(fmt, s.raw) for s in seeds]
    summary = {"format": fmt, "shared_samples": shared is not None, "counts": {}, "failures": [], "slowest_s": 0.0}
    for seed in seeds:  # every seed must import: else the mutants test nothing
        outcome, detail = run_mutant(fmt, seed, seed.raw, folder)
        if outcome != "imported":
            summary["failures"].append({"index": None, "mutant": f"seed {seed.name}", "detail": detail})
    signal.signal(signal.SIGALRM, _on_alarm)
    started = time.perf_counter()
    for index in range(count) if only is None else [only]:
        seed, data, description = make_mutant(fmt, seeds, offsets, index)
        if progress is not None:
            progress.write_text(f"{index}\t{description}")
        begun = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, MUTANT_TIMEOUT_S)
        try:
            outcome, detail = run_mutant(fmt, seed, data, folder)
        except _Hang:
            outcome, detail = "FAILED", f"still running after {MUTANT_TIMEOUT_S} s (a hang)"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        shutil.rmtree(folder / "out", ignore_errors=True)
        summary["slowest_s"] = max(summary["slowest_s"], time.perf_counter() - begun)
        summary["counts"][outcome] = summary["counts"].get(outcome, 0) + 1
        if outcome == "FAILED":
            summary["failures"].append({"index": index, "mutant": description, "detail": detail})
        elif only is not None:
            summary["detail"] = detail
    summary["elapsed_s"] = time.perf_counter() - started
    return summary


# ------------------------------------------------------------------------------------------------- pytest
def _work_root() -> str | None:
    """A RAM-backed folder where there is one: each imported mutant writes a GSD and a Parquet file, and
    those writes cost ~80 ms each on a slow disk against ~3 ms in memory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory) -> dict:
    """Run the three formats' fuzz in parallel child interpreters; collect their summaries (or how they died)."""
    children = {}
    folders = []
    for fmt in FORMATS:
        folder = Path(tempfile.mkdtemp(prefix=f"glasspipe-fuzz-{fmt}-", dir=_work_root()))
        folders.append(folder)
        command = [sys.executable, str(Path(__file__).resolve()), fmt, "--count", str(MUTANTS), "--folder", str(folder)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        log = tmp_path_factory.mktemp(f"fuzz-{fmt}") / "stderr.txt"
        with log.open("w") as stderr:  # the child holds its own copy of the descriptor
            child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr)
        children[fmt] = (child, folder, log)
    results = {}
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        for fmt, (child, folder, log) in children.items():
            try:
                stdout, _ = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                stdout, _ = child.communicate()
            progress = folder / "progress.txt"
            last = progress.read_text() if progress.exists() else "before the first mutant"
            results[fmt] = {
                "returncode": child.returncode,
                "summary": json.loads(stdout) if child.returncode == 0 and stdout else None,
                "last_mutant": last,
                "stderr": log.read_text()[-3000:],
            }
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return results


@pytest.mark.parametrize("fmt", FORMATS)
def test_importer_fuzz(fuzz_results, fmt):
    """Expected: all MUTANTS mutants of the format either import (checked) or are refused with the file named;
    no failure, no crash, no hang; and the fuzz is not degenerate: at least 5% of mutants import and at least
    5% are refused (a broken seed or mutator would make one side vanish)."""
    result = fuzz_results[fmt]
    assert result["returncode"] == 0, (
        f"the {fmt} fuzz child exited with {result['returncode']} (negative: killed by a signal, a crash) during "
        f"mutant {result['last_mutant']!r}; stderr: {result['stderr']}"
    )
    summary = result["summary"]
    failures = "\n".join(f"#{f['index']} {f['mutant']}: {f['detail']}" for f in summary["failures"][:20])
    assert not summary["failures"], f"{len(summary['failures'])} {fmt} mutants failed:\n{failures}"
    counts = summary["counts"]
    assert sum(counts.values()) >= MUTANTS
    assert counts.get("imported", 0) >= 0.05 * MUTANTS and counts.get("refused", 0) >= 0.05 * MUTANTS, counts
    assert summary["slowest_s"] < MUTANT_TIMEOUT_S
    print(f"{fmt}: {counts} in {summary['elapsed_s']:.1f} s (slowest mutant {summary['slowest_s']:.2f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz one importer (run by test_importer_fuzz, or by hand).")
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("--count", type=int, default=MUTANTS)
    parser.add_argument("--only", type=int, help="run this one mutant and print its outcome")
    parser.add_argument("--folder", help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="glasspipe-fuzz-", dir=_work_root()))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        summary = fuzz(args.format, args.count, folder, progress=folder / "progress.txt", only=args.only)
        if args.only is not None:
            seeds = SEEDS[args.format](shared_data_dir())
            offsets = [_structural_offsets(args.format, s.raw) for s in seeds]
            summary["mutant"] = make_mutant(args.format, seeds, offsets, args.only)[2]
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
