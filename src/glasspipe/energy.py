"""``glasspipe energy``: the potential energy per particle and pressure of one GSD frame.

Anyone can check an input configuration (ours, or one imported from another dataset) against the
published numbers with one command, evaluated by an engine or by glasspipe's independent numpy/freud
reference implementation.
"""

from __future__ import annotations

from pathlib import Path

import gsd.hoomd

from glasspipe.io.gsd_io import read_snapshot
from glasspipe.potential import KobAndersen


def has_velocities(path: str | Path, frame: int = -1) -> bool:
    """Does frame ``frame`` of the GSD file store particle velocities?

    The gsd reader fills a missing velocity chunk with zeros (or with frame 0's velocities), so a file
    written without them cannot be told apart from one at T = 0 by reading the frame; the chunk table can.
    """
    with gsd.hoomd.open(str(path), mode="r") as trajectory:
        index = frame % len(trajectory)
        return any(trajectory.file.chunk_exists(i, "particles/velocity") for i in {index, 0})


def energy_report(path: str | Path, frame: int = -1, engine: str = "lammps", cutoff_mode: str = "shift") -> dict:
    """A JSON-able dict describing one frame: potential energy per particle (eps_AA), the configurational
    (virial) pressure W / (3V), and, when the frame stores velocities, the kinetic temperature T_kin
    (3N - 3 degrees of freedom), the kinetic pressure (N - 1) T_kin / V and the total pressure (their sum;
    eps_AA / sigma_AA^3). Without velocities the three kinetic entries are None: a file of positions
    has no temperature, and its virial is not its pressure. 'has_velocities' says which case applies.
    """
    snapshot = read_snapshot(path, frame)
    velocities = has_velocities(path, frame)
    if not velocities:
        snapshot.velocities = None
    potential = KobAndersen(cutoff_mode=cutoff_mode)
    from glasspipe.md.reference import evaluate

    reference = evaluate(snapshot, potential)
    kinetic_temperature = reference.kinetic_temperature if velocities else None
    kinetic_pressure = (
        None if kinetic_temperature is None else (snapshot.n_particles - 1) * kinetic_temperature / snapshot.volume
    )
    report = {
        "file": str(path),
        "frame": frame,
        "step": snapshot.step,
        "n_particles": snapshot.n_particles,
        "box_length": snapshot.box_length,
        "density": snapshot.n_particles / snapshot.volume,
        "cutoff_mode": cutoff_mode,
        "engine": engine,
        "has_velocities": velocities,
        "kinetic_temperature": kinetic_temperature,
        "virial_pressure": reference.virial_pressure,
        "kinetic_pressure": kinetic_pressure,
    }
    if not velocities:
        report["note"] = (
            "the frame stores no velocities: kinetic_temperature, kinetic_pressure and pressure are null; "
            "virial_pressure is only the configurational part of the pressure"
        )
    if engine == "reference":
        report["potential_energy_per_particle"] = reference.potential_energy_per_particle
        report["pressure"] = reference.pressure if velocities else None
        return report

    from glasspipe.md.engine import engine_class

    with engine_class(engine)(potential, dt=snapshot.dt or 0.005) as md:
        if snapshot.velocities is None:
            # Engines need velocities to load a frame; zeros leave the potential energy and virial unchanged.
            snapshot.velocities = 0.0 * snapshot.positions
        md.load(snapshot)
        thermo = md.thermo()
    report["potential_energy_per_particle"] = thermo.potential_energy
    # Engines report P with the frame's kinetic temperature; without velocities there is no total pressure.
    report["pressure"] = thermo.pressure if velocities else None
    return report
