"""LAMMPS and HOOMD-blue on the same Kob-Andersen protocol: thermodynamics, NVE drift, inherent structures,
throughput.

For each engine, from the same random start (N particles, 80:20, density 1.2, shift cutoffs, dt = 0.005):
  melt:        FIRE to ||F|| < 1e-2 sqrt(N), Maxwell-Boltzmann velocities, NVT at T = 2.0 for --melt tau;
  equilibrate: NVT (Nose-Hoover, tau_T = 0.5) at T for --equilibrate tau;
  production:  NVT at T for --production tau, thermo every 0.5 tau: U/N, P and T_kin with block errors
               (glasspipe.md.checks.block_average), and the production's throughput (particle-steps / s,
               one thread, logging included);
  relaxation:  the production's thermostat runs on for --relaxation tau with a frame every --frame-interval
               tau: F_s(q = 7.25, t) of the A particles, averaged over time origins
               (glasspipe.dynamics.relaxation.self_isf_multi_origin, lags up to --max-lag tau), and
               tau_alpha where it falls to 1/e (relaxation.tau_alpha); the error is the standard error of
               tau_alpha over --blocks contiguous blocks of the relaxation run (origins inside each block);
  NVE:         --nve tau from the relaxation run's end, thermo every 0.5 tau: the drift of the total energy
               per particle per tau (least-squares slope) and its standard deviation;
  inherent:    FIRE from the production's end to ||F|| < 1e-6: U/N of the inherent structure.
The engines differ in their thermostat noise-free dynamics only by round-off, which chaos amplifies, so the
trajectories differ and only the averages compare: "agree" means |difference| < 3 combined errors.

    python benchmarks/cross_engine.py                                   # N = 1000, T = 0.8
    python benchmarks/cross_engine.py --engines lammps hoomd --n 1000 --production 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from glasspipe.dynamics import relaxation
from glasspipe.md import checks, protocols
from glasspipe.md.engine import engine_class
from glasspipe.md.state import Dynamics
from glasspipe.potential import KobAndersen

DT = 0.005


def run_engine(name: str, args) -> dict:
    n = args.n
    steps = lambda tau: int(round(tau / DT))  # noqa: E731
    rng = np.random.default_rng(args.seed)
    start = protocols.random_configuration(n, int(0.8 * n), (n / 1.2) ** (1 / 3), 0.8, rng)
    velocities = protocols.maxwell_boltzmann_velocities(n, 2.0, np.random.default_rng(args.seed + 1))
    rows, nve_rows = [], []
    with engine_class(name)(KobAndersen(), dt=DT, threads=1, device="cpu") as engine:
        engine.load(start)
        engine.minimize(1e-2 * n**0.5, 5000)
        engine.set_velocities(velocities)
        engine.run_nvt(steps(args.melt), 2.0, "nose_hoover", 0.5, seed=args.seed)
        engine.run_nvt(steps(args.equilibrate), args.temperature, "nose_hoover", 0.5, seed=args.seed)
        # Production and relaxation run are one continuous Nose-Hoover run (one thermostat).
        step = engine.step
        total = steps(args.production) + steps(args.relaxation)
        engine.start_dynamics(Dynamics("nose_hoover", args.temperature, args.temperature, step, step + total, 0.5, 1))
        t0 = time.perf_counter()
        engine.advance(steps(args.production), log_every=steps(0.5), on_log=rows.append)
        production_seconds = time.perf_counter() - t0
        frame_every = steps(args.frame_interval)
        first = engine.snapshot()
        frames = [first.unwrapped_positions()]
        for _ in range(steps(args.relaxation) // frame_every):
            engine.advance(frame_every)
            frames.append(engine.snapshot().unwrapped_positions())
        end = engine.snapshot()
        engine.run_nve(steps(args.nve), log_every=steps(0.5), on_log=nve_rows.append)
        engine.load(end)
        engine.minimize(1e-6, 100_000)
        inherent = engine.thermo().potential_energy
        metadata = engine.metadata() if hasattr(engine, "metadata") else {}
    result = {"engine": name, "version": metadata.get("hoomd_version") or metadata.get("lammps_version")}
    for key in ("potential_energy", "pressure", "kinetic_temperature"):
        average = checks.block_average([getattr(r, key) for r in rows])
        result[key] = {"mean": average["mean"], "error": average["error"]}
    time_nve = np.array([r.time for r in nve_rows])
    energy = np.array([r.potential_energy + 0.5 * (3 * n - 3) / n * r.kinetic_temperature for r in nve_rows])
    result["nve_drift_per_particle_per_tau"] = float(np.polyfit(time_nve - time_nve[0], energy, 1)[0])
    result["nve_energy_std"] = float(energy.std())
    result["inherent_potential_energy"] = inherent
    result["tau_alpha"] = relaxation_time(np.stack(frames), first.typeid == 0, DT * frame_every, args)
    result["throughput_particle_steps_per_s"] = n * steps(args.production) / production_seconds
    return result


def relaxation_time(positions: np.ndarray, mask_a: np.ndarray, frame_interval: float, args) -> dict:
    """tau_alpha (tau) from F_s(7.25, t) of the A particles over all frames, and its standard error from
    --blocks contiguous blocks (each block's own multi-origin F_s and tau_alpha)."""
    n_frames = len(positions)
    max_lag = min(int(round(args.max_lag / frame_interval)), n_frames - 1)
    times = np.arange(n_frames) * frame_interval
    lag_times, fs = relaxation.self_isf_multi_origin(times, positions, mask=mask_a, max_lag=max_lag)
    whole = relaxation.tau_alpha(lag_times, fs)
    per_block = []
    for block in np.array_split(np.arange(n_frames), args.blocks):
        lags = min(max_lag, len(block) - 1)
        t, f = relaxation.self_isf_multi_origin(times[block], positions[block], mask=mask_a, max_lag=lags)
        per_block.append(relaxation.tau_alpha(t, f))
    per_block = np.array(per_block)
    return {
        "mean": float(whole),
        "error": float(np.nanstd(per_block, ddof=1) / np.sqrt(np.isfinite(per_block).sum())),
        "blocks": per_block.tolist(),
        "fs_at_lag": {f"{t:g}": float(v) for t, v in zip(lag_times[::10], fs[::10], strict=True)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", nargs="+", default=["lammps", "hoomd"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--melt", type=float, default=10.0, help="tau at T = 2")
    parser.add_argument("--equilibrate", type=float, default=50.0, help="tau")
    parser.add_argument("--production", type=float, default=100.0, help="tau")
    parser.add_argument("--relaxation", type=float, default=100.0, help="tau of NVT with frames, for tau_alpha")
    parser.add_argument("--frame-interval", type=float, default=0.1, help="tau between frames")
    parser.add_argument("--max-lag", type=float, default=10.0, help="longest F_s lag (tau)")
    parser.add_argument("--blocks", type=int, default=10, help="blocks of the relaxation run for the error")
    parser.add_argument("--nve", type=float, default=50.0, help="tau")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    results = [run_engine(name, args) for name in args.engines]
    header = (
        f"{'engine':8} {'U/N':>18} {'P':>18} {'T_kin':>18} {'tau_alpha':>16} {'NVE drift/N/tau':>16} "
        f"{'U_IS/N':>9} {'Mps/s':>6}"
    )
    print(f"N = {args.n}, T = {args.temperature}, rho = 1.2, dt = {DT}, production {args.production} tau")
    print(header)
    for r in results:
        cells = [
            f"{r[k]['mean']:9.4f} +- {r[k]['error']:.4f}"
            for k in ("potential_energy", "pressure", "kinetic_temperature", "tau_alpha")
        ]
        print(
            f"{r['engine']:8} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} {cells[3]:>16} "
            f"{r['nve_drift_per_particle_per_tau']:16.2e} {r['inherent_potential_energy']:9.4f} "
            f"{r['throughput_particle_steps_per_s'] / 1e6:6.2f}"
        )
    if len(results) == 2:
        a, b = results
        for key in ("potential_energy", "pressure", "kinetic_temperature", "tau_alpha"):
            diff = a[key]["mean"] - b[key]["mean"]
            sigma = float(np.hypot(a[key]["error"], b[key]["error"]))
            print(f"{key}: difference {diff:+.4f}, {abs(diff) / sigma:.1f} combined errors")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
