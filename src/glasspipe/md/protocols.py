"""Simulation protocols, written once against the Engine interface.

- ``random_configuration``: a seeded start without overlaps.
- ``equilibrate``: minimise, melt at high T, cool linearly to T, NVT at T (canonical thermostat), each
  phase one continuous integration, with a thermodynamic log and checkpoints of the full state from which
  a killed run resumes as if never killed.
- ``isoconfigurational_replica``: one replica of an iso-configurational ensemble: the same positions,
  fresh Maxwell-Boltzmann velocities at T with zero momentum and kinetic temperature exactly T, NVE, frames
  at the label steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.engine import Engine, Thermo
from glasspipe.md.state import Dynamics, read_state, write_state
from glasspipe.progress import Progress

log = logging.getLogger(__name__)


def temperature_key(temperature: float) -> int:
    """An integer that identifies a temperature in seed derivations (T in micro-units)."""
    return int(round(float(temperature) * 1_000_000))


# --- initial configuration ----------------------------------------------------------------------
def random_configuration(
    n_particles: int, n_type_a: int, box_length: float, min_distance: float, rng: np.random.Generator
) -> Snapshot:
    """A random configuration with every pair distance >= min_distance (sigma_AA).

    Particles occupy a random subset of the sites of a simple cubic lattice of spacing a >= L / N^(1/3),
    each displaced uniformly by up to (a - min_distance) / 2 per coordinate, so no two particles come
    closer than min_distance; types are assigned at random. The melt at the start of equilibration
    erases the lattice (its memory decays in a few tau at T = 2).
    """
    sites_per_edge = int(np.ceil(n_particles ** (1.0 / 3.0)))
    spacing = box_length / sites_per_edge
    if spacing < min_distance:
        raise ValueError(
            f"config key 'init.min_distance' = {min_distance} exceeds the lattice spacing {spacing:.4f} "
            f"available at n_particles = {n_particles} in a box of length {box_length:.4f}"
        )
    grid = np.stack(np.meshgrid(*[np.arange(sites_per_edge)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    sites = grid[rng.choice(len(grid), size=n_particles, replace=False)]
    jitter = rng.uniform(-1.0, 1.0, size=(n_particles, 3)) * 0.5 * (spacing - min_distance)
    positions = (sites + 0.5) * spacing + jitter - 0.5 * box_length
    typeid = np.ones(n_particles, dtype=np.int32)
    typeid[rng.choice(n_particles, size=n_type_a, replace=False)] = 0
    return Snapshot(positions=positions, typeid=typeid, box_length=box_length).wrapped()


def maxwell_boltzmann_velocities(n_particles: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Velocities (N, 3) drawn from Maxwell-Boltzmann at ``temperature`` (masses 1).

    The total momentum is removed and the velocities rescaled so that the kinetic temperature, with
    3N - 3 degrees of freedom, is exactly ``temperature``.
    """
    velocities = rng.normal(0.0, np.sqrt(temperature), size=(n_particles, 3))
    velocities -= velocities.mean(axis=0)
    kinetic_temperature = (velocities**2).sum() / (3 * n_particles - 3)
    return velocities * np.sqrt(temperature / kinetic_temperature)


# --- equilibration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One stretch of NVT dynamics: ``n_steps`` steps, temperature ramped from t_start to t_stop."""

    name: str
    n_steps: int
    t_start: float
    t_stop: float


def equilibration_phases(temperature: float, settings: dict, dt: float, time_scale: float = 1.0) -> list[Phase]:
    """melt at melt_temperature, linear cooling to T, NVT burn-in at T (the aging after the quench is
    discarded), production NVT at T (analysed by the checks). Times in tau become steps; burn-in and
    production times are multiplied by ``time_scale`` (tau_alpha when they are given in its units)."""

    def steps(time: float) -> int:
        return int(round(time / dt))

    melt_t = settings["melt_temperature"]
    return [
        Phase("melt", steps(settings["melt_time"]), melt_t, melt_t),
        Phase("cool", steps(settings["cool_time"]), melt_t, temperature),
        Phase("burn_in", steps(settings["burn_in_time"] * time_scale), temperature, temperature),
        Phase("production", steps(settings["production_time"] * time_scale), temperature, temperature),
    ]


# Between two log rows at fixed T the potential energy per particle of a liquid of N >= 100 fluctuates by
# a few 0.01; a change of more than this is a blown-up run (overlapping particles, a bad time step).
MAX_ENERGY_JUMP = 0.5


def check_energy_jump(previous: dict, thermo: Thermo) -> None:
    """Stop a run whose potential energy per particle jumped between consecutive log rows at fixed T."""
    jump = thermo.potential_energy - previous["potential_energy"]
    if abs(jump) > MAX_ENERGY_JUMP:
        raise FloatingPointError(
            f"the run blew up: U/N jumped by {jump:+.3f} eps between steps {previous['step']} and {thermo.step} "
            f"(limit {MAX_ENERGY_JUMP}); check engine.dt and the input configuration"
        )


@dataclass
class EquilibrationResult:
    snapshot: Snapshot  # the final configuration, time origin reset to step 0
    log: pd.DataFrame  # time, phase, potential_energy, kinetic_temperature, pressure (all phases)
    production_frames: list[Snapshot]  # configurations during production (float64), for tau_alpha checks


def _fingerprint(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


CHECKPOINT_FILE = "checkpoint.npz"
_LOG_COLUMNS = ("step", "time", "potential_energy", "kinetic_temperature", "pressure")


def phase_dynamics(phases: list[Phase], index: int, thermostat: str, tau: float, seed: int) -> Dynamics:
    """The dynamics of phase ``index``: its thermostat with one seed for the whole phase, and the ramp
    from t_start to t_stop anchored at the phase's first and last step."""
    start = sum(p.n_steps for p in phases[:index])
    phase = phases[index]
    phase_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % (2**31 - 2)) + 1
    return Dynamics(thermostat, phase.t_start, phase.t_stop, start, start + phase.n_steps, float(tau), phase_seed)


def _frames_arrays(frames: list[Snapshot]) -> dict[str, np.ndarray]:
    if not frames:
        return {}
    return {
        "frame_steps": np.array([f.step for f in frames], dtype=np.int64),
        "frame_positions": np.stack([f.positions for f in frames]),
        "frame_images": np.stack([f.images for f in frames]),
        "frame_velocities": np.stack([f.velocities for f in frames]),
    }


def _frames_from_arrays(arrays: dict, typeid: np.ndarray, box_length: float, dt: float, names) -> list[Snapshot]:
    if "frame_steps" not in arrays:
        return []
    return [
        Snapshot(
            positions=arrays["frame_positions"][i],
            typeid=typeid.copy(),
            box_length=box_length,
            images=arrays["frame_images"][i],
            velocities=arrays["frame_velocities"][i],
            step=int(step),
            dt=dt,
            type_names=tuple(names),
        )
        for i, step in enumerate(arrays["frame_steps"])
    ]


def _log_arrays(rows: list[dict]) -> dict[str, np.ndarray]:
    arrays = {f"log_{key}": np.array([row[key] for row in rows], dtype=np.float64) for key in _LOG_COLUMNS}
    arrays["log_step"] = arrays["log_step"].astype(np.int64)
    arrays["log_phase"] = np.array([row["phase"] for row in rows], dtype="U16")
    return arrays


def _log_rows(arrays: dict) -> list[dict]:
    if "log_step" not in arrays:
        return []
    columns = {key: arrays[f"log_{key}"] for key in _LOG_COLUMNS}
    return [
        {"step": int(columns["step"][i]), **{k: float(columns[k][i]) for k in _LOG_COLUMNS[1:]}, "phase": str(phase)}
        for i, phase in enumerate(arrays["log_phase"])
    ]


def equilibrate(
    engine: Engine,
    initial: Snapshot,
    temperature: float,
    settings: dict,
    seed: int,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 20_000,
    n_production_frames: int = 100,
    time_scale: float = 1.0,
    minimize_steps: int = 200,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> EquilibrationResult:
    """Minimise, melt, cool and equilibrate ``initial`` at ``temperature`` with ``engine``.

    settings: config['equilibrate'] (times in tau, thermostat, thermostat_tau, log_interval).
    seed: seeds the melt velocities and the thermostat noise (one seed per phase).
    minimize_steps: FIRE steps at most before the melt (0 for a start without close contacts).
    on_progress(phase, step, total): called at every stop (checkpoint, production frame, phase end).

    Each phase (melt, cool, burn-in, production) is one continuous integration: one thermostat, started at
    the phase's first step, whose ramp (the cooling) is anchored at the phase's first and last step. Log
    rows (every log_interval) and production frames (float64, in memory) are taken along the way.

    Checkpoints: every ``checkpoint_every`` steps the run passes a barrier: the engine's full state
    (Engine.save_state: float64 positions, velocities, image flags, step, the thermostat's variables) is
    taken and restored at once (Engine.restore_state), and, if ``checkpoint_dir`` is given, written with
    the log and the frames so far to ``checkpoint_dir/checkpoint.npz`` (glasspipe.md.state: one atomic
    file, so a kill leaves the previous checkpoint or the new one). A rerun with the same arguments
    continues from that file. The restore in the uninterrupted run is what makes a resumed run identical
    to it bit for bit: restoring rebuilds the engine's internal particle order and neighbour list from
    the state alone, and a process that resumes does exactly that, while an engine that simply ran on
    would keep its own. Measured at N = 200 (tests/test_resume.py's run): HOOMD-blue re-sorts its
    particles on its own schedule, and a restored simulation (tag order) sums forces in another order,
    so without the barrier U/N differed by 2e-15 at the first log row after the restore and positions by
    5e-10 sigma_AA 700 steps later (chaos grows that to O(1) over some thousands of steps: the same
    physics, another trajectory). LAMMPS restored from its restart data continued bit for bit even
    without the barrier; the barrier is kept for every engine. A checkpoint step itself (LAMMPS'
    write_restart re-wraps atoms, a restore builds a new neighbour list) moves the trajectory by
    round-off, so the trajectory is a function of the arguments, checkpoint_every included (it is in the
    checkpoint's fingerprint), and not of whether the run was killed and resumed or whether checkpoints
    are written. A checkpoint written with other arguments is ignored (logged) and the run starts afresh.
    Deterministic as far as the engine is: serial LAMMPS (and its OpenMP styles, which reduce per-thread
    forces in a fixed order), HOOMD-blue on one CPU thread; a GPU's atomic additions may not be.
    """
    dt = engine.dt
    phases = equilibration_phases(temperature, settings, dt, time_scale)
    total = sum(p.n_steps for p in phases)
    log_every = max(1, int(round(settings["log_interval"] / dt)))
    # Stop points: phase ends, checkpoints and production frames, all on the step grid.
    production_start = total - phases[-1].n_steps
    frame_every = max(log_every, (phases[-1].n_steps // n_production_frames) // log_every * log_every)
    checkpoint_every = max(log_every, checkpoint_every // log_every * log_every)
    frame_steps = set(range(production_start + frame_every, total + 1, frame_every))
    checkpoint_steps = set(range(checkpoint_every, total, checkpoint_every))
    phase_ends = [int(e) for e in np.cumsum([p.n_steps for p in phases])]
    fingerprint = _fingerprint(
        {
            "settings": settings,
            "T": temperature,
            "seed": seed,
            "dt": dt,
            "N": initial.n_particles,
            "potential": engine.potential.metadata(),
            "engine": engine.name,
            "checkpoint_every": checkpoint_every,
            "n_production_frames": n_production_frames,
            "time_scale": time_scale,
            "minimize_steps": minimize_steps,
        }
    )
    rows: list[dict] = []
    frames: list[Snapshot] = []
    progress = 0
    checkpoint = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    if checkpoint is not None and checkpoint.exists():
        state, metadata, arrays = read_state(checkpoint)  # ValueError naming the file if unreadable
        if metadata.get("fingerprint") != fingerprint:
            log.warning("ignoring checkpoint %s: written by a run with other settings; starting afresh", checkpoint)
        else:
            engine.restore_state(state)
            progress = state.step
            rows = _log_rows(arrays)
            names = engine.potential.type_names
            frames = _frames_from_arrays(arrays, state.typeid, state.box_length, dt, names)
            log.info("resuming equilibration from checkpoint %s at step %d of %d", checkpoint, progress, total)
    if progress == 0:
        engine.load(initial)
        # A few hundred FIRE steps relieve the close contacts of the random start before the melt.
        if minimize_steps > 0:
            engine.minimize(force_tolerance=1e-2 * initial.n_particles**0.5, max_steps=minimize_steps)
        engine.set_step(0)
        rng = np.random.default_rng(seed)
        engine.set_velocities(maxwell_boltzmann_velocities(initial.n_particles, phases[0].t_start, rng))

    stops = sorted(set(phase_ends) | checkpoint_steps | frame_steps)
    meter = Progress(f"equilibrate T={temperature:g}", total, "steps", start=progress)
    running = engine.dynamics  # the restored phase's dynamics when resuming, else None
    for stop in (s for s in stops if s > progress):
        index = int(np.searchsorted(phase_ends, progress, side="right"))
        phase = phases[index]
        dynamics = phase_dynamics(phases, index, settings["thermostat"], settings["thermostat_tau"], seed)
        if running != dynamics:  # a new phase (a resumed run continues the restored one)
            engine.start_dynamics(dynamics)
            running = dynamics

        def record(thermo: Thermo, phase_name=phase.name):
            if phase_name in ("burn_in", "production") and rows and rows[-1]["phase"] == phase_name:
                check_energy_jump(rows[-1], thermo)
            rows.append({**thermo.as_row(), "phase": phase_name})
            meter.update(thermo.step)

        engine.advance(stop - progress, log_every=log_every, on_log=record)
        progress = stop
        if stop in frame_steps:
            frames.append(engine.snapshot())
        if stop in checkpoint_steps:
            state = engine.save_state()
            if checkpoint is not None:
                arrays = {**_log_arrays(rows), **_frames_arrays(frames)}
                write_state(checkpoint, state, metadata={"fingerprint": fingerprint}, arrays=arrays)
            engine.restore_state(state)  # the barrier: see the docstring
        if on_progress is not None:
            on_progress(phase.name, progress, total)

    final = engine.snapshot()
    final.step = 0
    return EquilibrationResult(snapshot=final, log=pd.DataFrame(rows), production_frames=frames)


# --- iso-configurational replicas ---------------------------------------------------------------
def isoconfigurational_replica(
    engine: Engine,
    initial: Snapshot,
    temperature: float,
    label_steps: np.ndarray,
    seed: int,
    dense_steps: np.ndarray | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[Snapshot]:
    """Run one replica from ``initial``: fresh velocities (seeded), NVE, frames at t = 0 and each label step.

    Returns [frame at t=0, then one frame per step of label_steps and dense_steps in time order], positions
    with image flags counted from t = 0. Each frame's log has ``label`` = 1 at a label step, 0 at a step
    of the dense window only. on_step(step), if given, is called after each frame (for progress reports).
    """
    label_set = {int(s) for s in np.asarray(label_steps)}
    all_steps = sorted(label_set | {int(s) for s in np.asarray(dense_steps if dense_steps is not None else [])})
    start = initial.copy()
    start.step = 0
    start.images = np.zeros_like(start.images)
    start.velocities = maxwell_boltzmann_velocities(initial.n_particles, temperature, np.random.default_rng(seed))
    engine.load(start)
    frames = [engine.snapshot()]
    frames[0].log["label"] = 1.0
    # One continuous NVE integration, frames taken along the way (float64 in memory): where the frames
    # fall does not change the trajectory.
    engine.start_dynamics(Dynamics.nve())
    done = 0
    for step in all_steps:
        engine.advance(step - done)
        done = step
        frame = engine.snapshot()
        frame.log["label"] = float(step in label_set)
        frames.append(frame)
        if on_step is not None:
            on_step(step)
    return frames
