"""Cost of one training step of the equivariant network (se3) beside the Bapst graph network, N = 4096.

Usage:
    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive python benchmarks/se3.py [--data ../shared/data/botan_T0.44_cfg1_tc07.npz]
        [--threads 2] [--repeat 2] [--variants bapst_faithful,bapst_botan,se3_default_checkpointed,se3_small]

Builds the graph (every pair closer than r_cut = 2.0, minimum image, freud; no neighbour cap) of BOTAN's
T = 0.44 sample and times forward + backward + Adam step of one configuration, as in training, for each
variant in a fresh process (so that each peak resident memory is its own): the Bapst GN faithful and as in
configs/botan_T0.44.yaml, the se3 defaults (EIGNN: 7 layers x 32 channels, l_max 2, 8 Bessel functions) with
``checkpoint_layers`` (``se3_default``, without it, needs ~15 GB and runs only when named), a small se3
(3 layers x 16 channels, l_max 2) and the se3 of configs/botan_T0.44.yaml (3 x 16, l_max 1, graph_norm,
radial basis cut at 2.5). Prints the median wall time over ``--repeat`` steps after one warm-up step, and
the peak resident memory (MiB); on a GPU (``--device cuda``) also the peak CUDA memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

BOX_LENGTH = 15.05658
R_CUT = 2.0
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "botan_T0.44_cfg1_tc07.npz"
VARIANTS = {
    "bapst_faithful": ("bapst", {"n_message_passing": 7}),
    "bapst_botan": ("bapst", {"n_message_passing": 3, "graph_norm": True, "edge_features": "vector_rbf"}),
    "se3_default": ("se3", {}),
    "se3_default_checkpointed": ("se3", {"checkpoint_layers": True}),
    "se3_small": ("se3", {"n_layers": 3, "channels": 16}),
    # as in configs/botan_T0.44.yaml
    "se3_botan": ("se3", {"n_layers": 3, "channels": 16, "l_max": 1, "graph_norm": True, "radial_cutoff": 2.5}),
}


def _make_model(kind: str, settings: dict, mean_neighbours: float) -> torch.nn.Module:
    if kind == "bapst":
        from glasspipe.learn.models.bapst import BapstGNN

        return BapstGNN(n_outputs=1, **settings)
    from glasspipe.learn.models.se3 import build_se3, se3_settings

    return build_se3(se3_settings(settings), 1, R_CUT, mean_neighbours, [1.0], 1.0, 0)


def _run(name: str, data_path: str, threads: int, repeat: int, device: str, queue) -> None:
    torch.set_num_threads(threads)
    from glasspipe.learn.graphs import build_graph
    from glasspipe.learn.samples import Sample
    from glasspipe.learn.training.graph_task import count_parameters

    data = np.load(data_path)
    positions = data["initial_positions"] - 0.5 * BOX_LENGTH
    n = len(positions)
    sample = Sample(0, data["types"], positions, BOX_LENGTH, np.array([1.0]), np.zeros((n, 1)))
    graph = build_graph(sample, R_CUT).to(device)
    kind, settings = VARIANTS[name]
    torch.manual_seed(0)
    model = _make_model(kind, settings, graph.n_edges / n).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    target = torch.randn(n, 1, device=device)
    times = []
    for k in range(repeat + 1):
        started = time.perf_counter()
        output = model(graph.node_features, graph.edge_vectors, graph.senders, graph.receivers)
        loss = torch.mean((output - target) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if k > 0:  # the first step allocates
            times.append(time.perf_counter() - started)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    queue.put((name, n, graph.n_edges, count_parameters(model), statistics.median(times), peak_rss, peak_cuda))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    # se3_default without checkpointing needs ~15 GB at N = 4096: not in the default list (shared machines).
    parser.add_argument("--variants", default=",".join(v for v in VARIANTS if v != "se3_default"))
    args = parser.parse_args()
    context = mp.get_context("spawn")
    for name in args.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"--variants: unknown {name!r}; choose from {sorted(VARIANTS)}")
        queue = context.Queue()
        process = context.Process(
            target=_run, args=(name, str(args.data), args.threads, args.repeat, args.device, queue)
        )
        process.start()
        process.join()
        if process.exitcode != 0:
            print(f"{name}: failed (exit code {process.exitcode}; out of memory?)")
            continue
        name, n, n_edges, n_params, step_s, peak_rss, peak_cuda = queue.get()
        cuda = f", peak CUDA {peak_cuda:.0f} MiB" if peak_cuda is not None else ""
        print(
            f"{name}: N = {n}, {n_edges} edges, {n_params} parameters: forward + backward + step "
            f"{step_s:.2f} s (median of {args.repeat}, {args.threads} threads, {args.device}); "
            f"peak RSS {peak_rss:.0f} MiB{cuda}",
            flush=True,
        )


if __name__ == "__main__":
    main()
