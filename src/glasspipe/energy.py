"""``glasspipe energy``: the potential energy per particle and pressure of one GSD frame.

Anyone can check an input configuration (ours, or one imported from another dataset) against the
published numbers with one command, evaluated by an engine or by glasspipe's independent numpy/freud
reference implementation.
"""

from __future__ import annotations

from pathlib import Path

from glasspipe.io.gsd_io import read_snapshot
from glasspipe.potential import KobAndersen


def energy_report(path: str | Path, frame: int = -1, engine: str = "lammps", cutoff_mode: str = "shift") -> dict:
    """A JSON-able dict: potential energy per particle (eps_AA), pressure and its virial part, T_kin.

    The pressure uses the frame's velocities for the kinetic part (None when the frame has none).
    """
    snapshot = read_snapshot(path, frame)
    potential = KobAndersen(cutoff_mode=cutoff_mode)
    from glasspipe.md.reference import evaluate

    reference = evaluate(snapshot, potential)
    report = {
        "file": str(path),
        "frame": frame,
        "step": snapshot.step,
        "n_particles": snapshot.n_particles,
        "box_length": snapshot.box_length,
        "density": snapshot.n_particles / snapshot.volume,
        "cutoff_mode": cutoff_mode,
        "engine": engine,
        "kinetic_temperature": reference.kinetic_temperature,
        "virial_pressure": reference.virial_pressure,
    }
    if engine == "reference":
        report["potential_energy_per_particle"] = reference.potential_energy_per_particle
        report["pressure"] = reference.pressure
        return report

    from glasspipe.md.engine import engine_class

    with engine_class(engine)(potential, dt=snapshot.dt or 0.005) as md:
        if snapshot.velocities is None:
            snapshot.velocities = 0.0 * snapshot.positions
        md.load(snapshot)
        thermo = md.thermo()
    report["potential_energy_per_particle"] = thermo.potential_energy
    # Engines report P with the frame's kinetic temperature; without velocities only the virial part counts.
    report["pressure"] = thermo.pressure if reference.kinetic_temperature is not None else None
    return report
