"""Pipeline overhead of the MD stages: glasspipe's protocols against the bare engine running the same steps.

For each N, the same liquid configuration at T = 0.8 (density 1.2) is run
  - bare:        one LAMMPS `run` of n_steps (fix nvt, and fix nve), no output, straight through the library;
  - equilibrate: glasspipe's equilibration protocol with phases adding up to n_steps (thermo log every
                 0.5 tau, production frames, checkpoints as in the pipeline);
  - isoconf:     one iso-configurational replica (NVE) with 8 log-spaced label frames up to n_steps.
and the throughput in particle-steps per second is reported with the overhead relative to bare.

    python benchmarks/md_overhead.py                  # N = 1000, 4096, 32768
    python benchmarks/md_overhead.py --sizes 1000 --steps 4000 --repeats 3

Run it on an otherwise idle machine: the numbers are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from glasspipe.md import protocols
from glasspipe.md.engine import engine_class
from glasspipe.potential import KobAndersen


def liquid(n: int, engine_cls) -> protocols.Snapshot:
    length = (n / 1.2) ** (1 / 3)
    rng = np.random.default_rng(0)
    start = protocols.random_configuration(n, int(0.8 * n), length, 0.8, rng)
    with engine_cls(KobAndersen(), dt=0.005) as engine:
        engine.load(start)
        engine.minimize(1e-2 * n**0.5, 1000)
        engine.set_velocities(protocols.maxwell_boltzmann_velocities(n, 0.8, rng))
        engine.run_nvt(500, 0.8, "nose_hoover", 0.5, 1)
        return engine.snapshot()


def bare(engine, snapshot, n_steps: int, fix: str) -> float:
    """One uninterrupted run of n_steps with ``fix`` ('nvt temp 0.8 0.8 0.5' or 'nve'): for LAMMPS a raw
    `run` command; for other engines one call of the engine's run method without logging."""
    engine.load(snapshot)
    if engine.name != "lammps":
        start = time.perf_counter()
        if fix == "nve":
            engine.run_nve(n_steps)
        else:
            engine.run_nvt(n_steps, 0.8, "nose_hoover", 0.5, 1)
        return time.perf_counter() - start
    engine._cmd(f"fix bench all {fix}", "run 0 post no")
    start = time.perf_counter()
    engine._cmd(f"run {n_steps} pre no post no")
    wall = time.perf_counter() - start
    engine._cmd("unfix bench")
    return wall


def equilibrate(engine, snapshot, n_steps: int, checkpoint_dir: Path) -> float:
    total_time = n_steps * engine.dt
    settings = {
        "melt_temperature": 0.8,
        "melt_time": 0.0,
        "cool_time": 0.0,
        "burn_in_time": 0.5 * total_time,
        "production_time": 0.5 * total_time,
        "thermostat": "nose_hoover",
        "thermostat_tau": 0.5,
        "log_interval": 0.5,
    }
    snapshot = snapshot.copy()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # a leftover checkpoint would be resumed
    start = time.perf_counter()
    # The input is already a liquid: no FIRE prologue (protocol work on a random start, not overhead).
    protocols.equilibrate(
        engine,
        snapshot,
        0.8,
        settings,
        seed=1,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=max(1, n_steps // 4),
        minimize_steps=0,
    )
    return time.perf_counter() - start


def isoconf(engine, snapshot, n_steps: int) -> float:
    steps = np.unique(np.geomspace(1, n_steps, 8).round().astype(int))
    start = time.perf_counter()
    protocols.isoconfigurational_replica(engine, snapshot, 0.8, steps, seed=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4096, 32768])
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: ~3e7 / N, >= 500)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--engine", default="lammps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    engine_cls = engine_class(args.engine)
    rows = []
    for n in args.sizes:
        n_steps = args.steps or max(500, int(3e7 / n) // 100 * 100)
        snapshot = liquid(n, engine_cls)
        with (
            engine_cls(KobAndersen(), dt=0.005, threads=args.threads) as engine,
            tempfile.TemporaryDirectory() as scratch,
        ):
            timings = {"bare_nvt": [], "bare_nve": [], "equilibrate": [], "isoconf": []}
            for _ in range(args.repeats):
                timings["bare_nvt"].append(bare(engine, snapshot, n_steps, "nvt temp 0.8 0.8 0.5"))
                timings["bare_nve"].append(bare(engine, snapshot, n_steps, "nve"))
                timings["equilibrate"].append(equilibrate(engine, snapshot, n_steps, Path(scratch) / "ckpt"))
                timings["isoconf"].append(isoconf(engine, snapshot, n_steps))
        best = {k: min(v) for k, v in timings.items()}
        row = {"N": n, "steps": n_steps, "threads": args.threads}
        for k, wall in best.items():
            row[f"{k}_Mpsps"] = round(n * n_steps / wall / 1e6, 3)
        # Equilibration is NVT (compared with a bare NVT run), the replicas are NVE (bare NVE run).
        row["equilibrate_overhead_pct"] = round(100 * (best["equilibrate"] / best["bare_nvt"] - 1), 1)
        row["isoconf_overhead_pct"] = round(100 * (best["isoconf"] / best["bare_nve"] - 1), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
