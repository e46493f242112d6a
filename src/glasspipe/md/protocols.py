"""Simulation protocols, written once against the Engine interface.

- ``random_configuration``: a seeded start without overlaps.
- ``equilibrate``: minimise, melt at high T, cool linearly to T, NVT at T (canonical thermostat), with a
  thermodynamic log and resumable checkpoints.
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

from glasspipe.io.gsd_io import Snapshot, read_metadata, read_snapshot, read_trajectory, write_gsd
from glasspipe.io.tables import read_table, write_table
from glasspipe.md.engine import Engine, Thermo
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
    production_frames: list[Snapshot]  # configurations during production, for tau_alpha checks


def _fingerprint(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
    seed: seeds the melt velocities and the thermostat noise.
    minimize_steps: FIRE steps at most before the melt (0 for a start without close contacts).
    checkpoint_dir: if given, the state is saved there every ``checkpoint_every`` steps (and at phase
    ends) and a rerun with the same arguments continues from the last checkpoint. The checkpoint
    holds positions and velocities; thermostat variables restart from zero, a perturbation that the
    thermostat relaxes within a few thermostat_tau.
    """
    dt = engine.dt
    phases = equilibration_phases(temperature, settings, dt, time_scale)
    total = sum(p.n_steps for p in phases)
    log_every = max(1, int(round(settings["log_interval"] / dt)))
    fingerprint = _fingerprint(
        {
            "settings": settings,
            "T": temperature,
            "seed": seed,
            "dt": dt,
            "N": initial.n_particles,
            "potential": engine.potential.metadata(),
            "engine": engine.name,
        }
    )
    rows: list[dict] = []
    frames: list[Snapshot] = []
    progress = 0
    ckpt_state = ckpt_log = ckpt_frames = None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        ckpt_state = checkpoint_dir / "state.gsd"
        ckpt_log = checkpoint_dir / "log.parquet"
        ckpt_frames = checkpoint_dir / "frames.gsd"
        if ckpt_state.exists() and read_metadata(ckpt_state).get("fingerprint") == fingerprint:
            state = read_snapshot(ckpt_state)
            progress = state.step
            rows = read_table(ckpt_log).to_dict("records") if ckpt_log.exists() else []
            if ckpt_frames.exists():
                frames = read_trajectory(ckpt_frames)
            # A kill between the checkpoint's writes can leave log rows or frames past the state.
            rows = [row for row in rows if row["step"] <= progress]
            frames = [frame for frame in frames if frame.step <= progress]
            engine.load(state)
            log.info("resuming equilibration from checkpoint at step %d of %d", progress, total)
    if progress == 0:
        engine.load(initial)
        # A few hundred FIRE steps relieve the close contacts of the random start before the melt.
        if minimize_steps > 0:
            engine.minimize(force_tolerance=1e-2 * initial.n_particles**0.5, max_steps=minimize_steps)
        engine.set_step(0)
        rng = np.random.default_rng(seed)
        engine.set_velocities(maxwell_boltzmann_velocities(initial.n_particles, phases[0].t_start, rng))

    # Stop points: phase ends, checkpoints and production frames, all on the step grid.
    production_start = total - phases[-1].n_steps
    frame_every = max(log_every, (phases[-1].n_steps // n_production_frames) // log_every * log_every)
    checkpoint_every = max(log_every, checkpoint_every // log_every * log_every)
    frame_steps = set(range(production_start + frame_every, total + 1, frame_every))
    phase_ends = np.cumsum([p.n_steps for p in phases])
    stops = sorted({int(e) for e in phase_ends} | set(range(checkpoint_every, total, checkpoint_every)) | frame_steps)
    meter = Progress(f"equilibrate T={temperature:g}", total, "steps", start=progress)
    for stop in (s for s in stops if s > progress):
        index = int(np.searchsorted(phase_ends, progress, side="right"))
        phase = phases[index]
        phase_start = int(phase_ends[index]) - phase.n_steps
        stop = min(stop, int(phase_ends[index]))
        ramp = (phase.t_stop - phase.t_start) / max(phase.n_steps, 1)
        t0 = phase.t_start + (progress - phase_start) * ramp
        t1 = phase.t_start + (stop - phase_start) * ramp

        def record(thermo: Thermo, phase_name=phase.name):
            if phase_name in ("burn_in", "production") and rows and rows[-1]["phase"] == phase_name:
                check_energy_jump(rows[-1], thermo)
            rows.append({**thermo.as_row(), "phase": phase_name})
            meter.update(thermo.step)

        # A distinct thermostat seed per segment, so a resumed run does not replay the same noise.
        segment_seed = int(np.random.SeedSequence([seed, progress]).generate_state(1)[0] % (2**31 - 2)) + 1
        engine.run_nvt(
            stop - progress,
            t0,
            settings["thermostat"],
            settings["thermostat_tau"],
            segment_seed,
            temperature_stop=t1,
            log_every=log_every,
            on_log=record,
        )
        progress = stop
        if stop in frame_steps:
            frames.append(engine.snapshot())
        if checkpoint_dir is not None and progress < total and (progress % checkpoint_every == 0):
            # Frames and log first: the state file is what marks a checkpoint as usable.
            write_table(pd.DataFrame(rows), ckpt_log)
            if frames:
                write_gsd(ckpt_frames, frames)
            write_gsd(ckpt_state, [engine.snapshot()], metadata={"fingerprint": fingerprint})
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
    done = 0
    for step in all_steps:
        engine.run_nve(step - done)
        done = step
        frame = engine.snapshot()
        frame.log["label"] = float(step in label_set)
        frames.append(frame)
        if on_step is not None:
            on_step(step)
    return frames
