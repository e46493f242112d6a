"""Time and peak memory of every dynamical label (glasspipe.labels) for one N = 4096 configuration.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/labels.py [--threads 2] [--replicas 32] [--label-times 20] [--dense-frames 200]
        [--interval 0.1] [--scales 0.5 1 2 5] [--chunk 4] [--repeat 1]

(OMP_NUM_THREADS=1: the label threads (--threads) already share the cores; BLAS threads on top of them
spin and compete, the CWT's matrix product then costs about 1.5 times the CPU.)

The initial configuration is BOTAN's T = 0.44 sample (``initial_positions``, ``types``, L = 15.05658; a
random one when the file is absent); the replica trajectories are synthetic (seeded): vibrations of 0.08
sigma around cage centres that jump by about 1 sigma with probability 0.002 per particle and frame, so that
p_hop's recursion and the bond breaking see both caged and hopping particles. The timed part is
glasspipe.labels.compute.compute_labels on in-memory positions: propensity, displacement vectors,
cage-relative displacements, bond breaking (20 label times), p_hop (sliding and iterative) and the CWT
(dense window), the replica means and the noise ceiling of every column; reading GSD files is not timed.
Printed: the wall time (best of ``--repeat``), each label's share (one extra pass per label), the peak
resident memory of the process and its increase over the baseline after the inputs were built.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

BOX_LENGTH = 15.05658
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "botan_T0.44_cfg1_tc07.npz"


def _rss_mib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _initial(data: Path, n: int):
    from glasspipe.io.gsd_io import Snapshot

    if data.exists():
        sample = np.load(data)
        positions, types, box = sample["initial_positions"], sample["types"], BOX_LENGTH
    else:
        rng = np.random.default_rng(0)
        box = (n / 1.2) ** (1 / 3)
        positions = rng.uniform(0, box, (n, 3))
        types = (np.arange(n) >= int(0.8 * n)).astype(np.int32)
    return Snapshot(positions=positions, typeid=types, box_length=box).wrapped()


def _trajectories(origin, n_replicas, n_label, n_dense, seed=1):
    """Label-time positions (R, K, N, 3) and dense-window positions (R, F, N, 3), float32 as read from GSD."""
    rng = np.random.default_rng(seed)
    n = len(origin)
    growth = np.geomspace(0.05, 1.5, n_label)[None, :, None, None]
    label = (origin + growth * rng.normal(size=(n_replicas, n_label, n, 3))).astype(np.float32)
    dense = np.empty((n_replicas, n_dense, n, 3), dtype=np.float32)
    for r in range(n_replicas):
        jumps = rng.normal(0.0, 0.6, (n_dense, n, 3)) * (rng.random((n_dense, n, 1)) < 0.002)
        dense[r] = origin + np.cumsum(jumps, axis=0) + rng.normal(0.0, 0.08, (n_dense, n, 3))
    return label, dense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--label-times", type=int, default=20)
    parser.add_argument("--dense-frames", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1, help="dense frame spacing (tau)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0], help="CWT scales (tau)")
    parser.add_argument("--window", type=float, default=2.0, help="p_hop window (tau)")
    parser.add_argument("--chunk", type=int, default=4, help="replicas per block")
    parser.add_argument("--threads", type=int, default=2, help="labels.threads (threads sharing a block)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import glasspipe.plugins_all  # noqa: F401  (the registries the config is validated against)
    from glasspipe import config as cfg
    from glasspipe.labels.compute import ReplicaFrames, compute_labels
    from glasspipe.labels.registry import DENSE_GRID, LABELS, Context, in_tau

    initial = _initial(args.data, 4096)
    origin = initial.unwrapped_positions()
    label, dense = _trajectories(origin, args.replicas, args.label_times, args.dense_frames)
    label_times = np.geomspace(0.1, 30.0, args.label_times)
    dense_times = np.arange(args.dense_frames) * args.interval
    settings = cfg.fill_defaults(
        {
            "isoconf": {"n_replicas": args.replicas},
            "labels": {
                "chunk_replicas": args.chunk,
                "threads": args.threads,
                "phop": {"enabled": True, "window": args.window, "p_c": 0.16, "t_f": 0.5},
                "cwt": {"enabled": True, "scales": args.scales},
            },
        }
    )

    def replicas():
        for r in range(args.replicas):
            yield ReplicaFrames(label_times, label[r], dense_times, dense[r], dt=0.005, source=f"replica {r}")

    baseline = _rss_mib()
    import os

    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"N = {initial.n_particles}, {args.replicas} replicas, {args.label_times} label times, "
        f"{args.dense_frames} dense frames every {args.interval} tau, CWT scales {args.scales} tau, "
        f"p_hop window {args.window} tau; OMP_NUM_THREADS={threads}, load {os.getloadavg()[0]:.1f}"
    )
    best, best_cpu = np.inf, np.inf
    for _ in range(args.repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = compute_labels(settings, initial, replicas(), args.replicas, None, args.chunk, args.threads)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
    peak = _peak_mib()
    print(
        f"all labels: {best:.2f} s wall, {best_cpu:.2f} s CPU (all threads); "
        f"{len(result.ceilings['label'].unique())} label columns with ceilings; "
        f"peak RSS {peak:.0f} MiB (inputs and baseline {baseline:.0f} MiB, +{peak - baseline:.0f} MiB)"
    )
    # One extra pass per label (the same blocks), for the breakdown.
    for name, spec in LABELS.items():
        section = dict(settings["labels"].get(name, {}))
        resolved = in_tau(spec, section, None)
        resolved["_columns"] = spec.columns(section)
        grid = dense if spec.grid == DENSE_GRID else label
        times = dense_times if spec.grid == DENSE_GRID else label_times
        context = Context(origin, initial.typeid, initial.box_length, times, args.interval)
        started, started_cpu = time.perf_counter(), time.process_time()
        for start in range(0, args.replicas, args.chunk):
            spec.compute(grid[start : start + args.chunk].astype(np.float64), resolved, context)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        print(f"  {name:14s} {wall:6.2f} s wall {cpu:6.2f} s CPU")


if __name__ == "__main__":
    main()
