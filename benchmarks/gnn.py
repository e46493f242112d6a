"""Cost of one training step of the Bapst graph network on one N = 4096 KA configuration.

Usage:
    OMP_WAIT_POLICY=passive python benchmarks/gnn.py [--data ../shared/data/botan_T0.44_cfg1_tc07.npz]
        [--threads 2] [--repeat 5]

Builds the graph (every pair closer than r_cut = 2.0, minimum image, freud; no neighbour cap) of BOTAN's
T = 0.44 sample and times forward + backward + Adam step of one configuration, as in training, for the
faithful network (7 message-passing steps, vector edges) and for the departures of configs/botan_T0.44.yaml
(3 steps, graph_norm, radial-basis edges). Prints the median wall time over ``--repeat`` steps after one
warm-up step, the graph build time and the process's peak resident memory (MiB).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from glasspipe.learn.graphs import build_graph
from glasspipe.learn.models.bapst import BapstGNN
from glasspipe.learn.samples import Sample

BOX_LENGTH = 15.05658
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "botan_T0.44_cfg1_tc07.npz"
VARIANTS = {
    "faithful (7 steps, vector edges)": {"n_message_passing": 7},
    "botan config (3 steps, graph_norm, vector_rbf)": {
        "n_message_passing": 3,
        "graph_norm": True,
        "edge_features": "vector_rbf",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = np.load(args.data)
    positions = data["initial_positions"] - 0.5 * BOX_LENGTH
    n = len(positions)
    sample = Sample(0, data["types"], positions, BOX_LENGTH, np.array([1.0]), np.zeros((n, 1)))
    started = time.perf_counter()
    graph = build_graph(sample, 2.0)
    build_s = time.perf_counter() - started
    print(f"N = {n}, {graph.n_edges} edges ({graph.n_edges / n:.1f} per particle), graph built in {build_s:.2f} s")
    target = torch.randn(n, 1)
    for name, settings in VARIANTS.items():
        torch.manual_seed(0)
        model = BapstGNN(n_outputs=1, **settings)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        times = []
        for k in range(args.repeat + 1):
            started = time.perf_counter()
            output = model(graph.node_features, graph.edge_vectors, graph.senders, graph.receivers)
            loss = torch.mean((output - target) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if k > 0:  # the first step allocates
                times.append(time.perf_counter() - started)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name}: forward + backward + step {statistics.median(times):.2f} s "
            f"(median of {args.repeat}, {args.threads} threads); peak RSS so far {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
