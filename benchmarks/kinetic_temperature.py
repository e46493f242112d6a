"""Kinetic temperatures at the full and the half step, and the configurational temperature, of one NVT run.

Why HOOMD-blue's Nose-Hoover T_kin lies below the set point (src/glasspipe/md/hoomd_engine.py docstring):
one engine, KA at rho = 1.2 from a jittered lattice (FIRE, 5 tau Bussi at T = 2, 20 tau burn-in at T),
then ``--production`` tau with a sample every 0.05 tau of
- T: the engine's thermo() (full-step velocities), and T_snap, the same from the snapshot's velocities,
- T_half = T + dt^2 sum |F|^2 / (4 m (3N - 3)): the mean of the kinetic temperatures of v(t -+ dt/2),
- T_conf = <sum |F|^2> / <sum lap U> (the force jump at r_cut of the shifted potential counted as a delta
  term from a 0.02 shell), the configuration's temperature,
- |v_com|, and omega_E^2 = <sum |F|^2> / (3 N m T), with the predicted (T_half - T) / T = dt^2 omega_E^2 / 4.
Means with errors from 10 blocks, printed as one JSON line. Units: sigma_AA, eps_AA, tau.

    OMP_NUM_THREADS=1 python benchmarks/kinetic_temperature.py hoomd --dt 0.005 --n 500 --production 200
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.spatial import cKDTree

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.engine import engine_class
from glasspipe.md.state import Dynamics
from glasspipe.potential import KobAndersen

DENSITY = 1.2


def lattice_start(n: int, seed: int) -> Snapshot:
    """KA particles on a jittered simple-cubic lattice (no pair closer than 0.85), 20 % B."""
    rng = np.random.default_rng(seed)
    length = (n / DENSITY) ** (1 / 3)
    per_edge = int(np.ceil(n ** (1 / 3)))
    spacing = length / per_edge
    grid = np.stack(np.meshgrid(*[np.arange(per_edge)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    positions = (grid[rng.choice(len(grid), n, replace=False)] + 0.5) * spacing - 0.5 * length
    positions += rng.uniform(-1, 1, positions.shape) * 0.5 * (spacing - 0.85)
    typeid = np.zeros(n, dtype=np.int32)
    typeid[rng.choice(n, n // 5, replace=False)] = 1
    return Snapshot(positions=positions, typeid=typeid, box_length=length, step=0)


def maxwell_boltzmann(temperature: float, n: int, seed: int) -> np.ndarray:
    """Velocities with zero momentum and 2K / (3N - 3) = temperature exactly (mass 1)."""
    v = np.random.default_rng(seed).normal(0.0, np.sqrt(temperature), (n, 3))
    v -= v.mean(axis=0)
    return v * np.sqrt(temperature / ((v**2).sum() / (3 * n - 3)))


def laplacian(snap: Snapshot, potential: KobAndersen, shell: float = 0.02) -> float:
    """sum_i lap_i U of the LJ pairs within r_cut, plus the delta term of the force jump at r_cut."""
    length = snap.box_length
    x = np.mod(snap.positions, length)
    pairs = cKDTree(x, boxsize=length).query_pairs(potential.r_cut.max(), output_type="ndarray")
    d = x[pairs[:, 0]] - x[pairs[:, 1]]
    d -= length * np.round(d / length)
    r = np.linalg.norm(d, axis=1)
    a, b = snap.typeid[pairs[:, 0]], snap.typeid[pairs[:, 1]]
    eps, sig, r_cut = potential.epsilon[a, b], potential.sigma[a, b], potential.r_cut[a, b]
    inside = r < r_cut
    at_cut = inside & (r > r_cut - shell)
    s6c = (sig[at_cut] / r_cut[at_cut]) ** 6
    du_cut = 4 * eps[at_cut] * (-12 * s6c * s6c + 6 * s6c) / r_cut[at_cut]
    r, eps, sig = r[inside], eps[inside], sig[inside]
    s6 = (sig / r) ** 6
    du = 4 * eps * (-12 * s6 * s6 + 6 * s6) / r
    d2u = 4 * eps * (156 * s6 * s6 - 42 * s6) / r**2
    return float(2 * np.sum(d2u + 2 * du / r) - 2 * np.sum(du_cut) / shell)


def block_mean(x, n_blocks: int = 10) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    m = len(x) // n_blocks
    blocks = x[: m * n_blocks].reshape(n_blocks, m).mean(axis=1)
    return float(x.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["hoomd", "lammps"])
    parser.add_argument("--dt", type=float, default=0.005)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--production", type=float, default=200.0, help="tau")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--tau-thermostat", type=float, default=0.5)
    parser.add_argument("--thermostat", choices=["nose_hoover", "bussi"], default="nose_hoover")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    dt, n, temperature, seed = args.dt, args.n, args.temperature, args.seed
    potential = KobAndersen()
    samples = {key: [] for key in ("U", "P", "T", "T_snap", "T_half", "F2", "lap", "v_com")}
    started = time.time()
    with engine_class(args.engine)(potential, dt=dt, device="cpu") as engine:
        engine.load(lattice_start(n, seed))
        engine.minimize(force_tolerance=1e-2 * np.sqrt(n), max_steps=5000)
        engine.set_velocities(maxwell_boltzmann(2.0, n, seed + 1))
        engine.run_nvt(int(5 / dt), 2.0, "bussi", 0.1, seed=seed + 3)
        engine.set_velocities(maxwell_boltzmann(temperature, n, seed + 2))
        burn, production = int(20 / dt), int(args.production / dt)
        step = engine.step
        dynamics = Dynamics(
            args.thermostat, temperature, temperature, step, step + burn + production, args.tau_thermostat, seed + 7
        )
        engine.start_dynamics(dynamics)
        engine.advance(burn)
        every = max(1, round(0.05 / dt))
        for _ in range(production // every):
            engine.advance(every)
            thermo, snap, forces = engine.thermo(), engine.snapshot(), engine.forces()
            f2 = float(np.sum(forces**2))
            t_snap = float(np.sum(potential.mass * snap.velocities**2) / (3 * n - 3))
            samples["U"].append(thermo.potential_energy)
            samples["P"].append(thermo.pressure)
            samples["T"].append(thermo.kinetic_temperature)
            samples["T_snap"].append(t_snap)
            samples["T_half"].append(t_snap + dt**2 * f2 / (4 * potential.mass * (3 * n - 3)))
            samples["F2"].append(f2)
            samples["lap"].append(laplacian(snap, potential))
            samples["v_com"].append(float(np.abs(snap.velocities.mean(axis=0)).max()))
    f2, lap = np.array(samples["F2"]), np.array(samples["lap"])
    omega2 = float(f2.mean() / (3 * n * potential.mass * np.mean(samples["T"])))
    result = dict(vars(args), wall_s=round(time.time() - started, 1))
    result.update({key: block_mean(samples[key]) for key in ("U", "P", "T", "T_snap", "T_half")})
    result["T_conf"] = (float(f2.mean() / lap.mean()), block_mean(f2 / lap)[1])
    result["v_com_max"] = float(np.max(samples["v_com"]))
    result["omega_E2"] = omega2
    result["predicted_dT_over_T"] = dt**2 * omega2 / 4
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
