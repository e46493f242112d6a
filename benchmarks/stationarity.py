"""False-alarm rate of the stationarity check (glasspipe.md.checks.stationarity) on stationary series.

A check with |z| < 3 promises to fail a stationary series 0.27 % of the time (|z| < 2: 4.55 %). This
script counts how often it does, on
  - synthetic stationary AR(1) series x_t = phi x_{t-1} + e_t (exponential correlations, statistical
    inefficiency g = 2 tau_int = (1 + phi) / (1 - phi) rows), at the demo's length (400 log rows: a
    production window of 200 tau logged every 0.5 tau) and at ten times that, for correlation times from
    short to a tenth of the window; and sums of a fast and a slow AR(1) (a slow mode with 10 to 20 % of
    the variance and a correlation time of 10 to 20 tau, like the structural tail of the energy);
  - with --lammps, potential-energy logs of glasspipe's LAMMPS engine: Kob-Andersen N = 200 at T = 0.7
    (the demo temperature; N small so that it is cheap), several independent runs (own seed, melt at
    T = 2, cooling, 100 tau of burn-in) whose NVT production (Nose-Hoover, tau_T = 0.5, dt = 0.005, a log
    row every 0.5 tau) is cut into consecutive 200-tau segments of 400 rows, as many as asked for.
    Consecutive segments are nearly independent: tau_alpha at T = 0.7 is about 5 tau, the segments 200.
Each case is also run through the previous estimator (block-averaged errors, normal threshold), for
comparison. The rates come with 95 % Wilson intervals.

    python benchmarks/stationarity.py                           # synthetic only (about a minute)
    python benchmarks/stationarity.py --lammps 50 --runs 5 --cache lammps.npz   # + 50 LAMMPS segments
    python benchmarks/stationarity.py --segments 2000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from glasspipe.md.checks import Z_THRESHOLD, block_average, stationarity


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) series with unit innovations, started in its stationary distribution."""
    e = rng.normal(size=n)
    e[0] /= math.sqrt(1.0 - phi**2)
    return lfilter([1.0], [1.0, -phi], e)


def two_mode(n: int, phi_slow: float, slow_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance sum of a fast AR(1) (phi = 0.5) and a slow one (phi_slow) carrying ``slow_fraction`` of
    the variance: the shape of a supercooled liquid's energy autocorrelation (a fast vibrational decay and a
    small structural tail), which Sokal's window, set by the fast part, partly misses."""
    fast = ar1(n, 0.5, rng) * math.sqrt(1 - 0.5**2)
    slow = ar1(n, phi_slow, rng) * math.sqrt(1 - phi_slow**2)
    return math.sqrt(1 - slow_fraction) * fast + math.sqrt(slow_fraction) * slow


def as_log(values: np.ndarray, log_interval: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"time": log_interval * np.arange(len(values)), "potential_energy": values})


def previous_z(values: np.ndarray) -> float:
    """The z of the check before issue 10: half means compared with Flyvbjerg-Petersen block errors (the
    largest over block lengths leaving >= 8 blocks), normal threshold."""
    half = len(values) // 2
    first, second = block_average(values[:half]), block_average(values[len(values) - half :])
    return (second["mean"] - first["mean"]) / math.hypot(first["error"], second["error"])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial rate k / n."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def rates(segments: list[np.ndarray], log_interval: float = 0.5) -> dict:
    """False-alarm rates of the new and the previous check on stationary ``segments``."""
    z_new, tau_rows = [], []
    for values in segments:
        result = stationarity(as_log(values, log_interval))
        z_new.append(result["value"] if result["value"] is not None else math.inf)
        tau_rows.append(result["tau_int"])
    z_new = np.abs(np.array(z_new))
    z_old = np.abs(np.array([previous_z(v) for v in segments]))
    n = len(segments)
    out = {"segments": n, "rows": len(segments[0]), "median_tau_int_rows": float(np.median(tau_rows))}
    for name, z in (("new", z_new), ("previous", z_old)):
        for threshold in (2.0, Z_THRESHOLD):
            k = int(np.sum(z >= threshold))
            low, high = wilson(k, n)
            out[f"{name}_rate_z{threshold:g}"] = k / n
            out[f"{name}_ci95_z{threshold:g}"] = [low, high]
    return out


def promised(threshold: float) -> float:
    return math.erfc(threshold / math.sqrt(2.0))


def lammps_segments(
    n_segments: int, n_runs: int, n_particles: int = 200, temperature: float = 0.7, seed: int = 1
) -> tuple[list[np.ndarray], float]:
    """Potential energy per particle, 400 rows of 0.5 tau each, from glasspipe's LAMMPS engine; returns
    the segments and the wall time."""
    from glasspipe.md import protocols
    from glasspipe.md.engine import engine_class
    from glasspipe.potential import KobAndersen

    dt, log_every, rows = 0.005, 100, 400  # a log row every 0.5 tau, 200 tau per segment
    length = (n_particles / 1.2) ** (1.0 / 3.0)
    per_run = [n_segments // n_runs + (r < n_segments % n_runs) for r in range(n_runs)]
    segments: list[np.ndarray] = []
    wall = time.perf_counter()
    for run, count in enumerate(per_run):
        rng = np.random.default_rng([seed, run])
        start = protocols.random_configuration(n_particles, int(0.8 * n_particles), length, 0.8, rng)
        energies: list[float] = []
        with engine_class("lammps")(KobAndersen(), dt=dt) as engine:
            engine.load(start)
            engine.minimize(1e-2 * n_particles**0.5, 1000)
            engine.set_velocities(protocols.maxwell_boltzmann_velocities(n_particles, 2.0, rng))
            engine.run_nvt(int(10 / dt), 2.0, "nose_hoover", 0.5, 1 + run)  # melt
            engine.run_nvt(int(20 / dt), 2.0, "nose_hoover", 0.5, 1 + run, temperature_stop=temperature)
            engine.run_nvt(int(100 / dt), temperature, "nose_hoover", 0.5, 1 + run)  # burn-in, discarded
            engine.run_nvt(
                count * rows * log_every,
                temperature,
                "nose_hoover",
                0.5,
                1 + run,
                log_every=log_every,
                on_log=lambda thermo, sink=energies: sink.append(thermo.potential_energy),
            )
        values = np.asarray(energies[: count * rows])
        segments += [values[k * rows : (k + 1) * rows] for k in range(count)]
        print(f"  LAMMPS run {run}: {count} segments, {time.perf_counter() - wall:.0f} s so far", flush=True)
    return segments, time.perf_counter() - wall


def report(name: str, result: dict) -> None:
    size = f"{result['segments']:>6} x {result['rows']:>4} rows"
    line = [f"{name:<34} {size}, tau_int ~ {result['median_tau_int_rows']:.3g} rows"]
    for threshold in (2.0, Z_THRESHOLD):
        for method in ("new", "previous"):
            low, high = result[f"{method}_ci95_z{threshold:g}"]
            line.append(
                f"    |z| >= {threshold:g} {method:<8}: {100 * result[f'{method}_rate_z{threshold:g}']:6.2f} % "
                f"[{100 * low:.2f}, {100 * high:.2f}]  (promised {100 * promised(threshold):.2f} %)"
            )
    print("\n".join(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=4000, help="synthetic segments per case (0: none)")
    parser.add_argument("--lammps", type=int, default=0, help="LAMMPS segments (0: none)")
    parser.add_argument("--runs", type=int, default=5, help="independent LAMMPS runs the segments come from")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--cache", help="an .npz file keeping the LAMMPS segments (read when it exists)")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    results = {}
    cases = [(400, 0.0), (400, 0.5), (400, 0.8), (400, 0.9), (400, 0.95), (4000, 0.9), (4000, 0.98)]
    if args.segments == 0:
        cases = []
    for rows, phi in cases:
        name = f"AR(1) phi={phi:g} (g={(1 + phi) / (1 - phi):.3g}) n={rows}"
        results[name] = rates([ar1(rows, phi, rng) for _ in range(args.segments)])
        report(name, results[name])
    for rows, phi_slow, fraction in [(400, 0.95, 0.2), (400, 0.975, 0.1), (400, 0.975, 0.2), (4000, 0.975, 0.2)]:
        if not args.segments:
            break
        g = (1 - fraction) * 3 + fraction * (1 + phi_slow) / (1 - phi_slow)
        name = f"fast+slow({phi_slow:g}, {fraction:.0%}) (g={g:.3g}) n={rows}"
        results[name] = rates([two_mode(rows, phi_slow, fraction, rng) for _ in range(args.segments)])
        report(name, results[name])
    # Power: the fraction of drifting series flagged (|z| >= 3), AR(1) phi = 0.8 noise at the demo length,
    # drift amplitudes in units of the noise's standard deviation.
    power = {}
    sd, steps = 1.0 / math.sqrt(1.0 - 0.8**2), np.arange(400)
    shapes = {
        "linear": steps / 399.0,
        "exponential relaxation, decay 100 rows": np.exp(-steps / 100.0),
        "exponential relaxation, decay 25 rows": np.exp(-steps / 25.0),
    }
    for shape, profile in shapes.items() if args.segments else ():
        for amplitude in (2, 5, 10, 30, 100):
            series = [ar1(400, 0.8, rng) + amplitude * sd * profile for _ in range(max(args.segments // 10, 50))]
            new = np.mean([abs(stationarity(as_log(x))["value"] or math.inf) >= Z_THRESHOLD for x in series])
            old = np.mean([abs(previous_z(x)) >= Z_THRESHOLD for x in series])
            power[f"{shape}, {amplitude} sd"] = {"new": float(new), "previous": float(old)}
            print(
                f"power: {shape}, amplitude {amplitude} sd: {100 * new:.0f} % flagged (previous {100 * old:.0f} %)",
                flush=True,
            )
    if power:
        results["power (AR(1) phi=0.8, n=400)"] = power
    if args.lammps:
        cache = Path(args.cache) if args.cache else None
        if cache is not None and cache.is_file():
            stored = np.load(cache)
            segments, wall = list(stored["segments"]), float(stored["wall_s"])
            print(f"  LAMMPS segments read from {cache}")
        else:
            segments, wall = lammps_segments(args.lammps, args.runs, seed=args.seed)
            if cache is not None:
                np.savez(cache, segments=np.array(segments), wall_s=wall)
        name = "LAMMPS KA N=200 T=0.7, 200 tau"
        results[name] = {**rates(segments), "wall_s": wall}
        report(name, results[name])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
