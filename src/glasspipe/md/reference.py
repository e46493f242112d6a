"""An independent numpy/freud evaluation of the Kob-Andersen potential, the yardstick for every engine.

``evaluate(snapshot, potential)`` computes, in double precision and without any MD code, the potential
energy, the force on every particle, the pair virial and (when a temperature is known) the pressure of a
configuration, with the conventions of ``glasspipe.md.engine``:

- the potential is ``KobAndersen.pair_energy`` / ``pair_force_over_r`` (the one definition), each pair
  cut at its own r_cut_ab (AA 2.5, AB 2.0, BB 2.2) in the potential's cutoff mode (shift or truncate);
- pairs come from ``glasspipe.structure.neighbours.periodic_pairs`` (freud cell search, minimum image
  vectors recomputed in float64) with r_max = ``potential.r_cut_max``; the per-pair cutoffs are applied
  here, so AB pairs between 2.0 and 2.5 contribute nothing;
- the virial is W = sum_{i<j} r_ij . f_ij, with r_ij = r_i - r_j and f_ij the force on i due to j
  (positive for repulsion);
- the kinetic temperature counts 3N - 3 degrees of freedom (momentum is conserved) and the pressure is
  P = (2K + W) / (3V) = (N - 1) T_kin / V + W / (3V), all masses 1.

The reduction over pairs is vectorised (np.bincount), so N = 4096 takes a few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glasspipe.io.gsd_io import Snapshot
from glasspipe.potential import KobAndersen
from glasspipe.structure.neighbours import periodic_pairs


@dataclass(frozen=True)
class ReferenceResult:
    """Energy, forces, virial and pressure of one configuration (LJ units of the AA pair).

    potential_energy_per_particle: U / N (eps_AA), in the potential's cutoff mode
    potential_energy: total U (eps_AA)
    particle_energies: (N,) half of the energy of every pair a particle belongs to; sums to U
    forces: (N, 3) force on each particle (eps_AA / sigma_AA), particle order
    virial: W = sum_{i<j} r_ij . f_ij (eps_AA)
    n_particles, volume: N and V = L^3
    n_pairs: (2, 2) number of pairs of each type pair inside its own cutoff (symmetric)
    kinetic_temperature: T_kin (3N - 3 degrees of freedom) or None when no temperature was given
        and the snapshot has no velocities
    pressure: (2K + W) / (3V) = (N - 1) T_kin / V + W / (3V), or None when kinetic_temperature is None
    """

    potential_energy_per_particle: float
    potential_energy: float
    particle_energies: np.ndarray
    forces: np.ndarray
    virial: float
    n_particles: int
    volume: float
    n_pairs: np.ndarray
    kinetic_temperature: float | None = None
    pressure: float | None = None

    @property
    def virial_pressure(self) -> float:
        """The configurational part of the pressure, W / (3V)."""
        return self.virial / (3.0 * self.volume)


def kinetic_temperature(velocities: np.ndarray, mass: float = 1.0) -> float:
    """T_kin = 2 K / (3N - 3), K = sum m v^2 / 2 (no centre-of-mass subtraction, as in the engines)."""
    return _kinetic_temperature(velocities, mass)


def _kinetic_temperature(velocities: np.ndarray, mass: float) -> float:
    v = np.asarray(velocities, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 2:
        raise ValueError(f"velocities must have shape (N, 3) with N >= 2, got {v.shape}")
    kinetic = 0.5 * mass * float(np.einsum("ij,ij->", v, v))
    return 2.0 * kinetic / (3.0 * len(v) - 3.0)


def pressure(n_particles: int, volume: float, kinetic_temperature: float, virial: float) -> float:
    """P = (2K + W) / (3V) = (N - 1) T_kin / V + W / (3V) (eps_AA / sigma_AA^3).

    The virial theorem with the kinetic energy K itself, 2K = (3N - 3) T_kin: what LAMMPS and HOOMD compute.
    """
    return (n_particles - 1) * kinetic_temperature / volume + virial / (3.0 * volume)


def evaluate(
    snapshot: Snapshot,
    potential: KobAndersen,
    kinetic_temperature: float | None = None,
) -> ReferenceResult:
    """Energy, forces, virial and pressure of ``snapshot`` under ``potential``.

    kinetic_temperature: the T_kin used for the pressure; when None it is computed from the snapshot's
    velocities, and when those are absent too, ``pressure`` is None (``virial_pressure`` is always set).
    """
    positions = np.asarray(snapshot.positions, dtype=np.float64)
    typeid = np.asarray(snapshot.typeid, dtype=np.int64)
    n = len(positions)
    n_types = potential.epsilon.shape[0]
    if positions.shape != (n, 3) or typeid.shape != (n,):
        raise ValueError(f"positions {positions.shape} and typeid {typeid.shape} do not describe N particles")
    if n and (typeid.min() < 0 or typeid.max() >= n_types):
        raise ValueError(f"type ids must lie in [0, {n_types}); got {typeid.min()}..{typeid.max()}")
    length = float(snapshot.box_length)
    volume = length**3

    pairs = periodic_pairs(positions, length, potential.r_cut_max)
    once = pairs.i < pairs.j  # each unordered pair once
    i, j = pairs.i[once], pairs.j[once]
    r = pairs.distances[once]
    ti, tj = typeid[i], typeid[j]
    inside = r < potential.r_cut[ti, tj]
    i, j, r, ti, tj = i[inside], j[inside], r[inside], ti[inside], tj[inside]
    r_ij = -pairs.vectors[once][inside]  # r_i - r_j (periodic_pairs stores r_j - r_i)

    pair_energy = potential.pair_energy(r, ti, tj)
    f_over_r = potential.pair_force_over_r(r, ti, tj)
    f_ij = f_over_r[:, None] * r_ij  # force on i due to j

    forces = np.empty((n, 3), dtype=np.float64)
    for k in range(3):
        forces[:, k] = np.bincount(i, weights=f_ij[:, k], minlength=n) - np.bincount(j, weights=f_ij[:, k], minlength=n)
    half = 0.5 * pair_energy
    particle_energies = np.bincount(i, weights=half, minlength=n) + np.bincount(j, weights=half, minlength=n)
    energy = float(pair_energy.sum())
    virial = float(np.sum(f_over_r * r * r))

    n_pairs = np.zeros((n_types, n_types), dtype=np.int64)
    np.add.at(n_pairs, (np.minimum(ti, tj), np.maximum(ti, tj)), 1)
    n_pairs = n_pairs + np.triu(n_pairs, 1).T

    temperature = kinetic_temperature
    if temperature is None and snapshot.velocities is not None:
        temperature = _kinetic_temperature(snapshot.velocities, potential.mass)
    total_pressure = None if temperature is None else pressure(n, volume, float(temperature), virial)

    return ReferenceResult(
        potential_energy_per_particle=energy / n,
        potential_energy=energy,
        particle_energies=particle_energies,
        forces=forces,
        virial=virial,
        n_particles=n,
        volume=volume,
        n_pairs=n_pairs,
        kinetic_temperature=None if temperature is None else float(temperature),
        pressure=total_pressure,
    )
