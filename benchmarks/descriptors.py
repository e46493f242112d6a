"""Time and memory of each descriptor set (default settings) on one N = 4096 KA configuration.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/descriptors.py [--data ../shared/data/botan_T0.44_cfg1_tc07.npz]
        [--sets radial boattini glassmlp] [--threads 1] [--repeat 1]

The configuration is BOTAN's T = 0.44 sample (``initial_positions``, ``types``, box L = 15.05658). Each set runs
in a fresh process (spawned) so that its peak resident memory is its own: printed are the wall time (best of
``--repeat``), the number of feature columns, the peak resident set size of the process and its increase over
the baseline after loading the data (numpy, freud and scipy allocations all count).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np

BOX_LENGTH = 15.05658
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "botan_T0.44_cfg1_tc07.npz"


def _rss_mib() -> float:
    """Current resident set size (MiB) from /proc, or the peak where /proc is absent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_set(name: str, data: str, threads: int, repeat: int, queue) -> None:
    import freud

    from glasspipe.io.gsd_io import Snapshot
    from glasspipe.structure.descriptors import compute_descriptors

    freud.parallel.set_num_threads(threads)
    sample = np.load(data)
    snapshot = Snapshot(positions=sample["initial_positions"], typeid=sample["types"], box_length=BOX_LENGTH).wrapped()
    baseline = _rss_mib()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        table = compute_descriptors(snapshot, {name: {}})
        best = min(best, time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    queue.put((name, best, table.shape[1] - 2, peak, peak - baseline))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--sets", nargs="*", default=None, help="descriptor sets (default: all registered)")
    parser.add_argument("--threads", type=int, default=1, help="freud threads")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    from glasspipe.structure.descriptors import DESCRIPTOR_SETS

    sets = args.sets or list(DESCRIPTOR_SETS)
    context = mp.get_context("spawn")
    print(f"{'set':10s} {'seconds':>8s} {'columns':>8s} {'peak RSS MiB':>13s} {'increase MiB':>13s}")
    for name in sets:
        queue = context.Queue()
        process = context.Process(target=_run_set, args=(name, args.data, args.threads, args.repeat, queue))
        process.start()
        result = queue.get()
        process.join()
        print(f"{result[0]:10s} {result[1]:8.2f} {result[2]:8d} {result[3]:13.0f} {result[4]:13.0f}", flush=True)


if __name__ == "__main__":
    main()
