"""The full dynamical state of an engine, and a file format that keeps it bit for bit.

A run that resumes from a checkpoint must continue as if it had never been interrupted. That needs more
than a configuration file (the GSD schema stores positions and velocities in single precision): the
positions, velocities and image flags in double precision, the step, what integrates the equations of
motion (``Dynamics``: thermostat, target-temperature ramp, time constant, seed) and the thermostat's own
variables (a Nose-Hoover chain's positions and velocities). ``EngineState`` holds all of that;
``Engine.save_state`` / ``Engine.restore_state`` produce and consume it.

Engines may need data in their own format to restore themselves exactly (the LAMMPS engine keeps the
binary restart file of ``write_restart``, which carries fix nvt's chain and fix temp/csvr's random-number
state); it travels in ``EngineState.engine_data`` as bytes. The arrays (``positions``, ``thermostat``,
...) are the engine's own numbers, read back after the save, so tests can compare a restored state with
the saved one element by element.

File format (``write_state`` / ``read_state``): a zip of ``.npy`` arrays (numpy's ``.npz`` layout, read
with ``allow_pickle=False``, so a file cannot execute code), stored uncompressed with fixed member
timestamps, so that equal states give byte-identical files. The member ``header`` is UTF-8 JSON with the
format name and version, the scalar state (engine, step, box length, dynamics), the caller's metadata
(for example a fingerprint of the settings that produced the state) and the SHA-256 of every array, which
``read_state`` checks. Files are written through ``glasspipe.io.atomic``: a killed writer leaves either
the previous file or none, never a truncated one.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glasspipe.io.atomic import atomic_path, json_default

FORMAT = "glasspipe-engine-state"
FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: equal content, equal bytes
_STATE_ARRAYS = ("positions", "velocities", "images", "typeid")


@dataclass(frozen=True)
class Dynamics:
    """What integrates the equations of motion during a continuous run.

    thermostat: None for microcanonical (NVE) velocity Verlet, else 'nose_hoover' (Nose-Hoover chain,
        MTTK) or 'bussi' (stochastic velocity rescaling).
    temperature_start, temperature_stop: target temperature (eps_AA / k_B) at steps ramp_start and
        ramp_stop, linear in the step between them (equal for a constant target).
    ramp_start, ramp_stop: absolute steps that anchor the ramp; a run split into chunks (or interrupted
        and resumed) follows one straight line because the anchors do not move.
    tau: thermostat time constant (tau units).
    seed: the thermostat's noise seed (Bussi), as given; engines fold it into their own seed range.
    """

    thermostat: str | None = None
    temperature_start: float = 0.0
    temperature_stop: float = 0.0
    ramp_start: int = 0
    ramp_stop: int = 0
    tau: float = 0.0
    seed: int = 0

    @classmethod
    def nve(cls) -> Dynamics:
        return cls()

    @property
    def ramped(self) -> bool:
        return self.thermostat is not None and self.temperature_stop != self.temperature_start

    def temperature_at(self, step: int) -> float:
        """The target temperature at ``step`` (the ramp's end values outside [ramp_start, ramp_stop])."""
        if not self.ramped or self.ramp_stop <= self.ramp_start:
            return self.temperature_start
        fraction = min(max((step - self.ramp_start) / (self.ramp_stop - self.ramp_start), 0.0), 1.0)
        return self.temperature_start + fraction * (self.temperature_stop - self.temperature_start)

    def as_dict(self) -> dict:
        return {
            "thermostat": self.thermostat,
            "temperature_start": float(self.temperature_start),
            "temperature_stop": float(self.temperature_stop),
            "ramp_start": int(self.ramp_start),
            "ramp_stop": int(self.ramp_stop),
            "tau": float(self.tau),
            "seed": int(self.seed),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Dynamics:
        return cls(**data)  # floats survive JSON exactly (repr round trip)


@dataclass
class EngineState:
    """Everything an engine needs to continue a run exactly (see the module docstring).

    positions: (N, 3) float64 as the engine holds them (sigma_AA; inside the box or just outside it where
        the engine re-wraps lazily); images: (N, 3) int32; velocities: (N, 3) float64 (sigma_AA / tau);
        typeid: (N,) int32; all in particle order 0..N-1.
    step: the MD step; box_length: cubic box edge (sigma_AA).
    dynamics: the running integrator, None when none is set up (after load or minimize).
    thermostat: the thermostat's variables by name (float64 arrays; engine-specific names, e.g. the
        Nose-Hoover chain's 'eta' and 'eta_dot' in LAMMPS, 'xi' and 'eta' in HOOMD-blue).
    engine_data: the engine's own restart data (bytes), b"" when the arrays suffice.
    """

    engine: str
    positions: np.ndarray
    velocities: np.ndarray
    images: np.ndarray
    typeid: np.ndarray
    box_length: float
    step: int
    dynamics: Dynamics | None = None
    thermostat: dict[str, np.ndarray] = field(default_factory=dict)
    engine_data: bytes = b""

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.velocities = np.asarray(self.velocities, dtype=np.float64)
        self.images = np.asarray(self.images, dtype=np.int32)
        self.typeid = np.asarray(self.typeid, dtype=np.int32)
        self.thermostat = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in self.thermostat.items()}

    @property
    def n_particles(self) -> int:
        return len(self.positions)

    def differences(self, other: EngineState) -> list[str]:
        """What differs from ``other``, bit for bit (an empty list when the states are identical)."""
        found = []
        for name in ("engine", "box_length", "step", "dynamics"):
            if getattr(self, name) != getattr(other, name):
                found.append(f"{name}: {getattr(self, name)!r} != {getattr(other, name)!r}")
        for name in _STATE_ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if a.shape != b.shape or a.tobytes() != b.tobytes():
                found.append(f"{name} differ")
        if sorted(self.thermostat) != sorted(other.thermostat):
            found.append(f"thermostat variables {sorted(self.thermostat)} != {sorted(other.thermostat)}")
        else:
            for key, value in self.thermostat.items():
                if value.tobytes() != other.thermostat[key].tobytes():
                    found.append(f"thermostat variable {key}: {value.tolist()} != {other.thermostat[key].tolist()}")
        return found


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()).hexdigest()


def write_state(
    path: str | Path,
    state: EngineState,
    metadata: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``state`` (with ``metadata``, JSON-able, and extra named ``arrays``) to ``path``, atomically.

    Equal arguments give byte-identical files (see the module docstring). Extra arrays must not hold
    Python objects (strings become fixed-width unicode arrays).
    """
    members: dict[str, np.ndarray] = {f"state.{name}": getattr(state, name) for name in _STATE_ARRAYS}
    members.update({f"thermostat.{key}": value for key, value in state.thermostat.items()})
    members["engine_data"] = np.frombuffer(state.engine_data, dtype=np.uint8)
    for key, value in (arrays or {}).items():
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"extra array {key!r} holds Python objects; store numbers or fixed-width strings")
        members[f"extra.{key}"] = value
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "engine": state.engine,
        "step": int(state.step),
        "box_length": float(state.box_length),
        "dynamics": None if state.dynamics is None else state.dynamics.as_dict(),
        "metadata": metadata or {},
        "sha256": {name: _digest(value) for name, value in members.items()},
    }
    header_bytes = json.dumps(header, sort_keys=True, default=json_default).encode()
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in [("header", np.frombuffer(header_bytes, dtype=np.uint8)), *members.items()]:
                archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE), _npy_bytes(value))


def read_state(path: str | Path) -> tuple[EngineState, dict, dict[str, np.ndarray]]:
    """(state, metadata, extra arrays) from a file of ``write_state``.

    A missing file raises FileNotFoundError; a truncated, corrupted or foreign one ValueError, both naming
    the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"engine state file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
        header = json.loads(bytes(members.pop("header")).decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise ValueError(f"engine state file {path} is not readable ({err}); delete it to start afresh") from err
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a glasspipe engine state file of version {FORMAT_VERSION} "
            f"(format {header.get('format')!r}, version {header.get('version')!r})"
        )
    digests = header.get("sha256", {})
    if sorted(digests) != sorted(members) or any(_digest(members[k]) != v for k, v in digests.items()):
        raise ValueError(f"engine state file {path} is corrupted (array checksums differ); delete it to start afresh")
    dynamics = header["dynamics"]
    state = EngineState(
        engine=header["engine"],
        **{name: members[f"state.{name}"] for name in _STATE_ARRAYS},
        box_length=float(header["box_length"]),
        step=int(header["step"]),
        dynamics=None if dynamics is None else Dynamics.from_dict(dynamics),
        thermostat={k.removeprefix("thermostat."): v for k, v in members.items() if k.startswith("thermostat.")},
        engine_data=members["engine_data"].tobytes(),
    )
    extra = {k.removeprefix("extra."): v for k, v in members.items() if k.startswith("extra.")}
    return state, header["metadata"], extra
