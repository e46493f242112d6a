"""The particle graph of a sample: one node per particle (one-hot type) and one directed edge per ordered pair
closer than ``r_cut`` under the minimum image convention (both directions, no neighbour cap), carrying
``r_receiver - r_sender`` as in Bapst et al. (2020). Two backends build the same pair set: 'freud'
(glasspipe.structure.neighbours.periodic_pairs, on the CPU) and 'torch_cluster' (glasspipe.learn.graphs.device,
on the model's device)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glasspipe.learn.samples import Sample
from glasspipe.structure.neighbours import periodic_pairs


@dataclass
class Graph:
    """Input of the graph network for one configuration.

    node_features: (N, n_types) float32 one-hot particle type, followed by 3 columns of the sample's vector
        input (``Sample.node_vectors``) when it has one
    typeid: (N,) long
    senders, receivers: (E,) long; every ordered pair closer than r_cut, both directions
    edge_vectors: (E, 3) float32, r_receiver - r_sender (minimum image)
    """

    node_features: torch.Tensor
    typeid: torch.Tensor
    senders: torch.Tensor
    receivers: torch.Tensor
    edge_vectors: torch.Tensor
    r_cut: float

    @property
    def n_nodes(self) -> int:
        return int(self.node_features.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.senders.shape[0])

    def to(self, device: torch.device | str) -> Graph:
        return Graph(
            node_features=self.node_features.to(device),
            typeid=self.typeid.to(device),
            senders=self.senders.to(device),
            receivers=self.receivers.to(device),
            edge_vectors=self.edge_vectors.to(device),
            r_cut=self.r_cut,
        )


GRAPH_BACKENDS = ("freud", "torch_cluster")


def build_graph(
    sample: Sample, r_cut: float, n_types: int = 2, backend: str = "freud", device: torch.device | str | None = None
) -> Graph:
    """Graph of ``sample``: edges between all pairs closer than ``r_cut`` (minimum image, no cap).

    backend (config key ``graph.backend``): 'freud' builds the pairs on the CPU
    (glasspipe.structure.neighbours.periodic_pairs); 'torch_cluster' builds them on ``device`` with
    torch-cluster and ghost images (glasspipe.learn.graphs.device), the same pairs in the same order.
    The graph's tensors are on ``device`` (default: the CPU).
    """
    if sample.typeid.size and (sample.typeid.min() < 0 or sample.typeid.max() >= n_types):
        raise ValueError(
            f"sample {sample.configuration} has type ids {np.unique(sample.typeid).tolist()}, "
            f"the model takes {n_types} types"
        )
    device = torch.device("cpu") if device is None else torch.device(device)
    if backend == "freud":
        pairs = periodic_pairs(sample.positions, sample.box_length, r_cut)
        senders, receivers, vectors = (torch.as_tensor(a) for a in (pairs.i, pairs.j, pairs.vectors))
    elif backend == "torch_cluster":
        from glasspipe.learn.graphs.device import periodic_radius_graph, torch_cluster_available

        if not torch_cluster_available():
            raise RuntimeError(
                "config key 'graph.backend' = 'torch_cluster' but torch-cluster is not installed "
                "(see docs/models.md, graphs on the GPU); use 'freud'"
            )
        positions = torch.as_tensor(sample.positions, dtype=torch.float64, device=device)
        senders, receivers, vectors = periodic_radius_graph(positions, sample.box_length, r_cut)
    else:
        raise ValueError(f"config key 'graph.backend' = {backend!r}; choose one of {list(GRAPH_BACKENDS)}")
    typeid = torch.as_tensor(sample.typeid, dtype=torch.long)
    node_features = torch.nn.functional.one_hot(typeid, n_types).to(torch.float32)
    if sample.node_vectors is not None:  # (N, n_types + 3): one-hot type, then the vector input
        node_features = torch.cat([node_features, torch.as_tensor(sample.node_vectors, dtype=torch.float32)], dim=1)
    return Graph(
        node_features=node_features,
        typeid=typeid,
        senders=senders.to(torch.long),
        receivers=receivers.to(torch.long),
        edge_vectors=vectors.to(torch.float32),
        r_cut=float(r_cut),
    ).to(device)


def prediction_backend(hparams: dict) -> str:
    """The graph backend a saved model was trained with, or freud where torch-cluster is not installed here
    (the two give the same pairs, so a model trained on a GPU node predicts anywhere)."""
    backend = hparams.get("graph_backend", "freud")
    if backend == "torch_cluster":
        from glasspipe.learn.graphs.device import torch_cluster_available

        if not torch_cluster_available():
            return "freud"
    return backend
