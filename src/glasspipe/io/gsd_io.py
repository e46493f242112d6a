"""Configurations and trajectories in GSD files (HOOMD schema), readable by HOOMD, freud and OVITO.

Per frame we store the box, type names, type ids, positions wrapped into the box, image flags (so that
``position + image * L`` is the unwrapped position), velocities and the step. The log chunks carry
``glasspipe/time`` (tau) and ``glasspipe/dt`` (tau) for every frame, and frame 0 carries
``glasspipe/metadata``: the JSON of the writing stage's metadata (potential, settings, versions) as uint8
bytes; ``bytes(frame.log['glasspipe/metadata']).decode()`` recovers it without glasspipe.

The HOOMD schema stores positions and velocities in single precision; every stage reads the same
rounded numbers, so replicas of one configuration start from identical positions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import gsd.hoomd
import numpy as np

from glasspipe.io.atomic import atomic_path, json_default
from glasspipe.potential import TYPE_NAMES


@dataclass
class Snapshot:
    """One configuration of N particles in a cubic periodic box of edge ``box_length``.

    positions: (N, 3) float64, wrapped into [-L/2, L/2) (sigma_AA)
    images: (N, 3) int32 periodic image flags; unwrapped = positions + images * L
    velocities: (N, 3) float64 (sigma_AA / tau) or None
    typeid: (N,) int32, 0 = A, 1 = B
    step, dt: MD step count and time step (tau); time = step * dt
    """

    positions: np.ndarray
    typeid: np.ndarray
    box_length: float
    images: np.ndarray | None = None
    velocities: np.ndarray | None = None
    step: int = 0
    dt: float = 0.005
    type_names: tuple[str, ...] = TYPE_NAMES
    log: dict = field(default_factory=dict)

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.typeid = np.asarray(self.typeid, dtype=np.int32)
        if self.images is None:
            self.images = np.zeros_like(self.positions, dtype=np.int32)
        self.images = np.asarray(self.images, dtype=np.int32)
        if self.velocities is not None:
            self.velocities = np.asarray(self.velocities, dtype=np.float64)

    @property
    def n_particles(self) -> int:
        return len(self.positions)

    @property
    def time(self) -> float:
        return self.step * self.dt

    @property
    def volume(self) -> float:
        return self.box_length**3

    def unwrapped_positions(self) -> np.ndarray:
        """Positions without periodic wrapping (sigma_AA)."""
        return self.positions + self.images * self.box_length

    def wrapped(self) -> Snapshot:
        """The same configuration with positions folded into [-L/2, L/2) and image flags updated."""
        shift = np.floor((self.positions + 0.5 * self.box_length) / self.box_length).astype(np.int32)
        return replace(
            self,
            positions=self.positions - shift * self.box_length,
            images=self.images + shift,
        )

    def copy(self) -> Snapshot:
        return replace(
            self,
            positions=self.positions.copy(),
            images=self.images.copy(),
            velocities=None if self.velocities is None else self.velocities.copy(),
            typeid=self.typeid.copy(),
            log=dict(self.log),
        )


def _to_frame(snapshot: Snapshot) -> gsd.hoomd.Frame:
    frame = gsd.hoomd.Frame()
    length = snapshot.box_length
    frame.configuration.box = [length, length, length, 0.0, 0.0, 0.0]
    frame.configuration.step = int(snapshot.step)
    frame.configuration.dimensions = 3
    frame.particles.N = snapshot.n_particles
    frame.particles.types = list(snapshot.type_names)
    frame.particles.typeid = snapshot.typeid.astype(np.uint32)
    frame.particles.position = snapshot.positions.astype(np.float32)
    frame.particles.image = snapshot.images.astype(np.int32)
    if snapshot.velocities is not None:
        frame.particles.velocity = snapshot.velocities.astype(np.float32)
    frame.log["glasspipe/time"] = np.array([snapshot.time], dtype=np.float64)
    frame.log["glasspipe/dt"] = np.array([snapshot.dt], dtype=np.float64)
    for key, value in snapshot.log.items():
        frame.log[f"glasspipe/{key}"] = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return frame


def write_gsd(path: str | Path, snapshots: list[Snapshot], metadata: dict | None = None) -> None:
    """Write ``snapshots`` as the frames of a new GSD file at ``path``, atomically."""
    if not snapshots:
        raise ValueError(f"no frames to write to {path}")
    with atomic_path(path) as tmp:
        with gsd.hoomd.open(tmp, mode="w") as trajectory:
            for index, snapshot in enumerate(snapshots):
                frame = _to_frame(snapshot)
                if index == 0 and metadata is not None:
                    payload = json.dumps(metadata, sort_keys=True, default=json_default).encode()
                    frame.log["glasspipe/metadata"] = np.frombuffer(payload, dtype=np.uint8)
                trajectory.append(frame)


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GSD file {path} does not exist; run the stage that writes it first")
    try:
        return gsd.hoomd.open(path, mode="r")
    except Exception as err:  # gsd raises RuntimeError / OSError on truncated or foreign files
        raise ValueError(f"GSD file {path} is not readable ({err}); delete it and rerun its stage") from err


def _from_frame(frame: gsd.hoomd.Frame, path: Path) -> Snapshot:
    box = np.asarray(frame.configuration.box, dtype=np.float64)
    if not (np.allclose(box[:3], box[0]) and np.allclose(box[3:], 0.0)):
        raise ValueError(f"GSD file {path} holds a non-cubic or tilted box {box.tolist()}; glasspipe needs a cube")
    dt = frame.log.get("glasspipe/dt")
    extra = {
        key.removeprefix("glasspipe/"): np.asarray(value)
        for key, value in frame.log.items()
        if key.startswith("glasspipe/") and key not in ("glasspipe/dt", "glasspipe/time", "glasspipe/metadata")
    }
    velocity = frame.particles.velocity
    return Snapshot(
        positions=np.asarray(frame.particles.position, dtype=np.float64),
        typeid=np.asarray(frame.particles.typeid, dtype=np.int32),
        box_length=float(box[0]),
        images=np.asarray(frame.particles.image, dtype=np.int32),
        velocities=None if velocity is None else np.asarray(velocity, dtype=np.float64),
        step=int(frame.configuration.step),
        dt=float(dt[0]) if dt is not None else 0.005,
        type_names=tuple(frame.particles.types),
        log=extra,
    )


def read_snapshot(path: str | Path, frame: int = -1) -> Snapshot:
    """Frame ``frame`` (default: the last) of the GSD file at ``path``."""
    path = Path(path)
    with _open(path) as trajectory:
        n_frames = len(trajectory)
        if n_frames == 0:
            raise ValueError(f"GSD file {path} holds no frames; delete it and rerun its stage")
        if not -n_frames <= frame < n_frames:
            raise IndexError(f"GSD file {path} has {n_frames} frames; frame {frame} does not exist")
        return _from_frame(trajectory[frame], path)


def read_trajectory(path: str | Path) -> list[Snapshot]:
    """All frames of the GSD file at ``path``."""
    path = Path(path)
    with _open(path) as trajectory:
        return [_from_frame(frame, path) for frame in trajectory]


def read_metadata(path: str | Path) -> dict:
    """The glasspipe metadata stored in frame 0 ({} if the file carries none)."""
    path = Path(path)
    with _open(path) as trajectory:
        data = trajectory[0].log.get("glasspipe/metadata")
    return {} if data is None else json.loads(bytes(np.asarray(data, dtype=np.uint8)).decode())
