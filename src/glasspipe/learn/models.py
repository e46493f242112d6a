"""The graph network of Bapst et al. (2020) in plain PyTorch, and the 48 symmetries of the cube.

Reproduces ``glassy_dynamics/graph_model.py`` and ``train.py`` of google-deepmind/deepmind-research
(Bapst et al., "Unveiling the predictive power of static structure in glassy systems", Nat. Phys. 16, 448).
With the default arguments the network computes what the original computes:

- graph: one node per particle, one directed edge per ordered pair (i, j) closer than the cutoff, carrying
  ``r_receiver - r_sender``; the original builds its edges with ``tf.where(distances < threshold)`` on the
  full distance matrix, so every particle also has a **self-edge** (distance 0, vector 0). The graphs of
  :func:`glasspipe.learn.data.build_graph` have no self-edges; the model adds them (``self_edges``);
- encoder (graph_nets ``GraphIndependent``): node MLP on the particle type, edge MLP on the edge features;
  MLPs of sizes (hidden, hidden), ReLU after every layer;
- one core (graph_nets ``GraphNetwork`` without globals) applied ``n_message_passing`` times with shared
  weights; each step's input is the concatenation [previous output, encoded input] for nodes and edges
  (at the first step the previous output is the encoding itself);
  edge update: MLP([edge, receiver node, sender node]) (graph_nets' concatenation order);
  node update: MLP([**sum** of updated incoming edges, node]); both MLPs (hidden, hidden), ReLU after every
  layer;
- decoder: node MLP (hidden, hidden, n_outputs), ReLU between layers, linear output;
- initialisation as ``train.py``: weights variance-scaling (scale 1, fan-in, truncated normal), biases
  variance-scaling with scale 0.1; no layer norm, no dropout.

Differences from the original that do not change what the network can compute:

- the node input is the one-hot type (``n_types`` numbers) rather than the type id as one float (for two
  types this is the same affine map with ``hidden`` more weights: 64 parameters at hidden = 64);
- the original's decoder also builds an edge MLP whose output is discarded (``decoded.nodes`` only);
  those 8,320 unused parameters are not created here;
- the first layers of the core MLPs act on concatenations; we apply them block by block (the same weight
  matrix, split into column blocks) so that the node terms are computed once per node rather than once per
  edge, and the encoded-input terms once per forward pass rather than once per step. The tests compare this
  with an independent literal concatenate-then-multiply implementation.

Departures (off by default, named switches; each changes the model):

- ``n_outputs > 1``: one decoder output per label time (a multi-time head). The original trains one model
  per time; :class:`PerTimeModels` holds one single-output network per time for that;
- ``aggregation = 'mean_degree'``: the summed messages are divided by a constant, the mean number of
  incoming edges of the training graphs (a reparametrisation of the sum that changes how Adam trains it);
- ``edge_features = 'vector_distance'``: the edge input is (dx, dy, dz, |r|) instead of (dx, dy, dz);
  ``'distance'``: |r| only, which makes the network invariant under rotations (no augmentation needed) at
  the price of angular information beyond what several message-passing steps recover; ``'distance_rbf'``
  and ``'vector_rbf'`` expand |r| in 16 Gaussians (the latter also r_hat times each), so that radial pair
  functions, and pair forces f(r) r_hat, are linear in the input;
- ``layer_norm``: LayerNorm on the outputs of the encoder and core MLPs (as in later encode-process-decode
  models), which keeps the activations O(1) whatever the number of neighbours;
- ``graph_norm``: each feature of the summed messages and of the updated nodes standardised over the
  particles of the configuration (batch statistics of the one graph, at training and prediction alike, then
  a learned scale and shift). The sum of ~40 non-negative messages is dominated by a part common to all
  particles; this removes it so that the particle-to-particle differences, the signal, are O(1).
- ``vector_channels = C > 0``: equivariant vector messages beside the scalar ones (as in PaiNN, Schuett et
  al. 2021). At each step a linear map of every updated edge gives C weights w_c, the vector messages
  w_c r_hat (r_hat = unit edge vector) are summed at the receiver, V_ic = sum_j w_c(e_ij) r_hat_ij, and
  their lengths |V_ic| enter the node update. With w_c = f(r) this is the force on the particle, whose
  length drives its displacement over the first fraction of a tau (a ballistic particle moves
  |v t + F t^2 / 2|); the plain network has to approximate a sum of vectors and its length with ReLU
  layers and learns it only with far more data. Self-edges carry r_hat = 0 and add nothing. The lengths
  |V_ic| are rotation invariant only when the weights w_c are, that is when the edge latents see no raw
  direction (``edge_features`` 'distance' or 'distance_rbf'). With 'vector', 'vector_distance' or
  'vector_rbf' edges (the demo's and the BOTAN config's choice) w_c is read from latents that carry the
  edge vector, so the network, vector channels included, is no more invariant than the plain Bapst GN: it
  learns the symmetry from the 48-cube-symmetry augmentation (``augment``) and is not exact under other
  rotations.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

# TF1's variance_scaling_initializer draws from a normal truncated at 2 sigma and divides the standard
# deviation by this constant (the std of a unit normal truncated to [-2, 2]) so the variance is as asked.
_TRUNCATED_NORMAL_STD = 0.87962566103423978

AGGREGATIONS = ("sum", "mean_degree")
# Gaussian radial basis for the '*_rbf' edge features: centres from 0.7 to 2.0 sigma_AA (the closest KA
# approach to the usual graph cutoff), width the spacing of the centres.
RBF_CENTRES = torch.linspace(0.7, 2.0, 16)
RBF_WIDTH = float(RBF_CENTRES[1] - RBF_CENTRES[0])
EDGE_FEATURES = {"vector": 3, "vector_distance": 4, "distance": 1, "distance_rbf": 16, "vector_rbf": 64}


def _variance_scaling_(tensor: torch.Tensor, scale: float, fan_in: int) -> torch.Tensor:
    std = math.sqrt(scale / fan_in) / _TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class MLP(nn.Module):
    """Stack of Linear layers with ReLU between them (and after the last if ``activate_final``).

    layer_norm: LayerNorm on the output (a departure; used only when ``activate_final``).
    """

    def __init__(self, n_in: int, sizes: tuple[int, ...], activate_final: bool, layer_norm: bool = False):
        super().__init__()
        widths = (n_in, *sizes)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.activate_final = activate_final
        self.norm = nn.LayerNorm(widths[-1]) if layer_norm else None
        for layer in self.layers:
            _variance_scaling_(layer.weight, 1.0, layer.in_features)
            _variance_scaling_(layer.bias, 0.1, layer.out_features)

    def forward(self, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the MLP; ``first``, if given, replaces the output of the first Linear (pre-activation)."""
        n = len(self.layers)
        for k, layer in enumerate(self.layers):
            x = first if (k == 0 and first is not None) else layer(x)
            if k < n - 1 or self.activate_final:
                x = torch.relu_(x)  # in place: x is a fresh Linear output, and ReLU's backward needs only its output
        if self.norm is not None:
            x = self.norm(x)
        return x


def edge_inputs(edge_vectors: torch.Tensor, kind: str) -> torch.Tensor:
    """Edge features from the relative vectors (see :data:`EDGE_FEATURES` for the widths).

    'vector' r (original); 'vector_distance' (r, |r|); 'distance' |r|; 'distance_rbf' phi_k(|r|), 16 Gaussians;
    'vector_rbf' (phi_k(|r|), r_hat phi_k(|r|)): a linear layer on it can form any radial pair force f(r) r_hat.
    """
    if kind == "vector":
        return edge_vectors
    if kind == "vector_distance":
        return torch.cat([edge_vectors, torch.linalg.vector_norm(edge_vectors, dim=1, keepdim=True)], dim=1)
    if kind == "distance":
        return torch.linalg.vector_norm(edge_vectors, dim=1, keepdim=True)
    if kind in ("distance_rbf", "vector_rbf"):
        r = torch.linalg.vector_norm(edge_vectors, dim=1, keepdim=True)
        basis = torch.exp(-(((r - RBF_CENTRES.to(r)) / RBF_WIDTH) ** 2))  # (E, 16)
        if kind == "distance_rbf":
            return basis
        unit = edge_vectors / r.clamp_min(1e-12)  # self-edges (r = 0) give 0
        return torch.cat([basis, (unit[:, :, None] * basis[:, None, :]).flatten(1)], dim=1)
    raise ValueError(f"edge_features = {kind!r}; choose one of {sorted(EDGE_FEATURES)}")


def add_self_edges(
    edge_vectors: torch.Tensor, senders: torch.Tensor, receivers: torch.Tensor, n_nodes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append one edge i -> i with vector 0 per node (what ``distances < threshold`` gives in the original)."""
    loops = torch.arange(n_nodes, device=senders.device, dtype=senders.dtype)
    vectors = torch.cat([edge_vectors, edge_vectors.new_zeros((n_nodes, edge_vectors.shape[1]))])
    return vectors, torch.cat([senders, loops]), torch.cat([receivers, loops])


class BapstGNN(nn.Module):
    """Encode-process-decode graph network predicting one number per particle (and label time).

    forward(node_features (N, n_types), edge_vectors (E, 3), senders (E,), receivers (E,)) -> (N, n_outputs)
    The edges given are the pairs i != j; self-edges are added inside when ``self_edges``.
    """

    def __init__(
        self,
        n_outputs: int = 1,
        hidden: int = 64,
        n_message_passing: int = 7,
        n_types: int = 2,
        self_edges: bool = True,
        aggregation: str = "sum",
        mean_degree: float = 1.0,
        edge_features: str = "vector",
        layer_norm: bool = False,
        graph_norm: bool = False,
        vector_channels: int = 0,
        graph_norm_eps: float = 1e-5,
        node_vector_inputs: int = 0,
    ):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation = {aggregation!r}; choose one of {AGGREGATIONS}")
        if edge_features not in EDGE_FEATURES:
            raise ValueError(f"edge_features = {edge_features!r}; choose one of {sorted(EDGE_FEATURES)}")
        self.n_outputs = int(n_outputs)
        self.hidden = int(hidden)
        self.n_message_passing = int(n_message_passing)
        self.n_types = int(n_types)
        self.self_edges = bool(self_edges)
        self.aggregation = aggregation
        self.mean_degree = float(mean_degree)
        self.edge_features = edge_features
        self.layer_norm = bool(layer_norm)
        self.graph_norm = bool(graph_norm)
        self.vector_channels = int(vector_channels)
        self.graph_norm_eps = float(graph_norm_eps)
        if self.vector_channels < 0:
            raise ValueError(f"vector_channels = {vector_channels}; it must be >= 0")
        h = self.hidden
        sizes = (h, h)
        ln = self.layer_norm
        # node_vector_inputs = 1 (graph.input 'both'): the node encoder also reads each particle's displacement
        # to its inherent position (3 components, turned with the edges by the augmentation).
        self.node_vector_inputs = int(node_vector_inputs)
        self.encoder_node = MLP(self.n_types + 3 * self.node_vector_inputs, sizes, activate_final=True, layer_norm=ln)
        self.encoder_edge = MLP(EDGE_FEATURES[edge_features], sizes, activate_final=True, layer_norm=ln)
        # Core edge input: [edge (2h), receiver node (2h), sender node (2h)], each [previous, encoded].
        self.core_edge = MLP(6 * h, sizes, activate_final=True, layer_norm=ln)
        # Core node input: [summed incoming edges (h), node (2h)].
        self.core_node = MLP(3 * h, sizes, activate_final=True, layer_norm=ln)
        self.decoder_node = MLP(h, (h, h, self.n_outputs), activate_final=False)
        if self.graph_norm:
            # Batch statistics of the graph itself, in training and evaluation alike (no running averages).
            eps = self.graph_norm_eps
            self.norm_received = nn.BatchNorm1d(h, eps=eps, track_running_stats=False)
            self.norm_node = nn.BatchNorm1d(h, eps=eps, track_running_stats=False)
        if self.vector_channels:
            c = self.vector_channels
            # No bias: a constant weight would add sum_j r_hat_ij, a pure geometry term, to every channel.
            self.vector_weights = nn.Linear(h, c, bias=False)
            self.vector_to_node = nn.Linear(c, h, bias=False)
            # The lengths' scale grows with the number of neighbours; standardise them per configuration.
            self.norm_vector = nn.BatchNorm1d(c, eps=self.graph_norm_eps, track_running_stats=False)

    def hparams(self) -> dict:
        return {
            "n_outputs": self.n_outputs,
            "hidden": self.hidden,
            "n_message_passing": self.n_message_passing,
            "n_types": self.n_types,
            "self_edges": self.self_edges,
            "aggregation": self.aggregation,
            "mean_degree": self.mean_degree,
            "edge_features": self.edge_features,
            "layer_norm": self.layer_norm,
            "graph_norm": self.graph_norm,
            "vector_channels": self.vector_channels,
            "graph_norm_eps": self.graph_norm_eps,
            # Only when used, so that the hparams.json of models without it stay as they were.
            **({"node_vector_inputs": self.node_vector_inputs} if self.node_vector_inputs else {}),
        }

    def forward(
        self,
        node_features: torch.Tensor,
        edge_vectors: torch.Tensor,
        senders: torch.Tensor,
        receivers: torch.Tensor,
    ) -> torch.Tensor:
        h = self.hidden
        n_nodes = node_features.shape[0]
        if self.self_edges:
            edge_vectors, senders, receivers = add_self_edges(edge_vectors, senders, receivers, n_nodes)
        scale = 1.0 / self.mean_degree if self.aggregation == "mean_degree" else 1.0
        enc_n = self.encoder_node(node_features)
        enc_e = self.encoder_edge(edge_inputs(edge_vectors, self.edge_features))
        out_n, out_e = enc_n, enc_e

        w_e, b_e = self.core_edge.layers[0].weight, self.core_edge.layers[0].bias
        w_n, b_n = self.core_node.layers[0].weight, self.core_node.layers[0].bias
        # Column blocks of the first core layers (see the module docstring).
        w_e_prev, w_e_enc = w_e[:, :h], w_e[:, h : 2 * h]
        w_e_receiver, w_e_sender = w_e[:, 2 * h : 4 * h], w_e[:, 4 * h : 6 * h]
        w_n_agg, w_n_prev, w_n_enc = w_n[:, :h], w_n[:, h : 2 * h], w_n[:, 2 * h : 3 * h]
        # Terms from the encoded inputs are the same at every step.
        edge_const = torch.addmm(b_e, enc_e, w_e_enc.t())
        node_const = torch.addmm(b_n, enc_n, w_n_enc.t())
        if self.vector_channels:
            unit = edge_vectors / torch.linalg.vector_norm(edge_vectors, dim=1, keepdim=True).clamp_min(1e-12)

        for _ in range(self.n_message_passing):
            node_in = torch.cat([out_n, enc_n], dim=1)
            to_receiver = node_in @ w_e_receiver.t()  # (N, width), contiguous for the gathers below
            to_sender = node_in @ w_e_sender.t()
            first = torch.addmm(edge_const, out_e, w_e_prev.t())
            first = first.add_(to_receiver.index_select(0, receivers)).add_(to_sender.index_select(0, senders))
            new_e = self.core_edge(None, first=first)
            received = new_e.new_zeros((n_nodes, new_e.shape[1])).index_add_(0, receivers, new_e)
            if scale != 1.0:
                received = received * scale
            if self.graph_norm:
                received = self.norm_received(received)
            first_n = torch.addmm(node_const, received, w_n_agg.t()).addmm_(out_n, w_n_prev.t())
            if self.vector_channels:
                first_n = first_n + self.vector_to_node(self._vector_lengths(new_e, unit, receivers, n_nodes))
            out_n = self.core_node(None, first=first_n)
            if self.graph_norm:
                out_n = self.norm_node(out_n)
            out_e = new_e
        return self.decoder_node(out_n)

    def _vector_lengths(
        self, edges: torch.Tensor, unit: torch.Tensor, receivers: torch.Tensor, n_nodes: int
    ) -> torch.Tensor:
        """|sum_j w_c(e_ij) r_hat_ij| per node and channel, standardised over the configuration: (N, C)."""
        weights = self.vector_weights(edges)  # (E, C)
        messages = weights[:, :, None] * unit[:, None, :]  # (E, C, 3)
        summed = messages.new_zeros((n_nodes, self.vector_channels, 3)).index_add_(0, receivers, messages)
        # sqrt(|V|^2 + eps): the gradient of |V| is undefined at V = 0.
        lengths = torch.sqrt(summed.square().sum(dim=2) + 1e-8)
        return self.norm_vector(lengths)


class PerTimeModels(nn.Module):
    """One single-output :class:`BapstGNN` per label time, as the original (one model per time index).

    forward(...) -> (N, n_times), column t from network t. The networks share nothing; training them
    together (summed losses, gradients clipped per network) is training them separately.
    """

    def __init__(self, n_outputs: int, **kwargs):
        super().__init__()
        self.n_outputs = int(n_outputs)
        self.networks = nn.ModuleList(BapstGNN(n_outputs=1, **kwargs) for _ in range(self.n_outputs))

    @property
    def n_types(self) -> int:
        return self.networks[0].n_types

    def hparams(self) -> dict:
        return {**self.networks[0].hparams(), "n_outputs": self.n_outputs}

    def forward(self, node_features, edge_vectors, senders, receivers) -> torch.Tensor:
        return torch.cat([net(node_features, edge_vectors, senders, receivers) for net in self.networks], dim=1)


def build_bapst(n_outputs: int, multi_time_head: bool, **kwargs) -> nn.Module:
    """A multi-output network (departure) or one network per label time (the original)."""
    if multi_time_head or n_outputs == 1:
        return BapstGNN(n_outputs=n_outputs, **kwargs)
    return PerTimeModels(n_outputs, **kwargs)


def parameter_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameters of each independent network (one group per label time for :class:`PerTimeModels`)."""
    if isinstance(model, PerTimeModels):
        return [list(net.parameters()) for net in model.networks]
    return [list(model.parameters())]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def cube_symmetries(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 48 signed permutation matrices (the point group O_h of the cube), shape (48, 3, 3).

    Element k maps a vector v to ``matrices[k] @ v``; element 0 is the identity.
    """
    matrices = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.zeros(3, 3, dtype=dtype)
            for row in range(3):
                m[row, perm[row]] = signs[row]
            matrices.append(m)
    return torch.stack(matrices)
