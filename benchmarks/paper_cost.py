"""Cost of a config's simulations in particle-steps, and in hours at a given throughput.

    python benchmarks/paper_cost.py configs/glassbench.yaml --throughput 1.0e8

--throughput is particle-steps per second of one device (one GPU for HOOMD, one core for LAMMPS);
measure it with benchmarks/md_overhead.py on your hardware. Prints one row per temperature and the total.
"""

from __future__ import annotations

import argparse

import glasspipe.plugins_all  # noqa: F401  (the registries the config is validated against)
from glasspipe import config as cfg
from glasspipe.md.protocols import equilibration_phases


def simulation_cost(config: dict) -> list[dict]:
    """Particle-steps of equilibration and iso-configurational runs per temperature (all configurations)."""
    n = config["system"]["n_particles"]
    dt = config["engine"]["dt"]
    rows = []
    for T in config["temperatures"]:
        phases = equilibration_phases(T, config["equilibrate"], dt, cfg.time_scale(config, "equilibrate", T))
        equilibrate_steps = sum(p.n_steps for p in phases)
        isoconf_steps = config["isoconf"]["n_replicas"] * int(cfg.label_steps(config, T)[-1])
        rows.append(
            {
                "T": T,
                "equilibrate_particle_steps": n * equilibrate_steps * config["n_configurations"],
                "isoconf_particle_steps": n * isoconf_steps * config["n_configurations"],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--throughput", type=float, required=True, help="particle-steps per second per device")
    args = parser.parse_args()
    config = cfg.load_config(args.config)
    total = 0.0
    print(f"{'T':>6} {'equilibrate':>14} {'isoconf':>14} {'device-hours':>13}")
    for row in simulation_cost(config):
        steps = row["equilibrate_particle_steps"] + row["isoconf_particle_steps"]
        total += steps
        hours = steps / args.throughput / 3600
        print(
            f"{row['T']:>6g} {row['equilibrate_particle_steps']:>14.3e} {row['isoconf_particle_steps']:>14.3e} "
            f"{hours:>13.0f}"
        )
    print(
        f"total {total:.3e} particle-steps = {total / args.throughput / 3600:.0f} device-hours "
        f"at {args.throughput:.2e} particle-steps/s"
    )


if __name__ == "__main__":
    main()
