"""The graph network of Bapst et al. (2020) in plain PyTorch, the 48 symmetries of the cube, its training
task and its predictor.

Reproduces ``glassy_dynamics/graph_model.py`` and ``train.py`` of google-deepmind/deepmind-research
(Bapst et al., "Unveiling the predictive power of static structure in glassy systems", Nat. Phys. 16, 448).
With the default arguments the network computes what the original computes:

- graph: one node per particle, one directed edge per ordered pair (i, j) closer than the cutoff, carrying
  ``r_receiver - r_sender``; the original builds its edges with ``tf.where(distances < threshold)`` on the
  full distance matrix, so every particle also has a **self-edge** (distance 0, vector 0). The graphs of
  :func:`glasspipe.learn.graphs.build_graph` have no self-edges; the model adds them (``self_edges``);
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

Training (:func:`train_bapst`) and prediction (:func:`predict_bapst`) are here too.

:func:`train_bapst` takes lists of :class:`~glasspipe.learn.samples.Sample` (training and validation
configurations), the model's settings (``config['models']['bapst']``) and an output directory, and writes
there ``model.pt`` (plain ``state_dict`` of the best validation epoch, per network), ``hparams.json``
(everything needed to rebuild the model and undo any target standardisation) and
``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s)

The graph network is trained by :mod:`glasspipe.learn.training.trainer` (seeding, Adam, schedule,
clipping, selection on validation, early stopping, checkpoints and resume, progress, write-out); this module
holds its data preparation (:class:`BapstTask`), glasspipe.learn.training.graph_task its loss. As in Bapst
et al. (2020) by default: Adam at a constant learning rate, gradient clipping by global norm, one
configuration per step, mean squared error on the raw targets of the A
particles, a random cube symmetry applied to the edge vectors of each training step (``augment``), one
network per label time. After every epoch the mean over validation configurations of the Pearson
correlation on A particles is computed per label time; each network keeps its best epoch (one network per
time: on its own time; with ``multi_time_head``: on the mean over times). Without validation
configurations the last epoch is kept. ``patience`` (default None: never, as the original) stops training
after that many epochs without a better validation Pearson.

Departures, each a named setting (see :data:`BAPST_DEFAULTS` and the config schema): ``multi_time_head``
(one network, one output per time), ``standardise_targets`` (per-time mean and std of the training A
targets; predictions are de-standardised with the numbers stored in hparams.json), ``aggregation``,
``edge_features``, ``layer_norm``, ``graph_norm`` (see :class:`BapstGNN` above) and ``lr_schedule = 'cosine'``
(learning rate decayed to 0 over the ``epochs`` * configurations steps).

The positions are whatever :attr:`Sample.positions` holds: thermal (equilibrated) or inherent structures.

Why the original recipe does not learn on a CPU budget (measured on BOTAN T = 0.44, N = 4096): the
original trains for ~400,000 steps (400 configurations, 1000 epochs); a CPU workflow affords a few hundred.
With summed messages (~42 incoming edges, all non-negative after ReLU) the output at initialisation is
~1.6e3 +- 5e2 on targets of 0.8 +- 0.3 (7 steps); at lr 1e-4 the first hundreds of steps go to undoing
that scale (loss 6e5 -> 5e2 after 16 steps, validation Pearson ~0), and larger learning rates are
unstable. Dividing the sum by the mean degree (this module's former fix) makes the network structure-blind
at initialisation (output std 0.005 across particles) and, Adam's steps being scale-free, slows the
learning of the message weights by that factor; LayerNorm removes the per-particle magnitude that carries
the neighbour count and does not learn either. What works is ``graph_norm`` (standardising the summed
messages and node states over the particles of the configuration) with ``standardise_targets``.

Checkpoints (``checkpoint.pt``, written after every epoch): calling ``train_bapst`` again with the same
settings and data continues from it (the number of epochs may differ, except with a learning-rate
schedule, which depends on it); see :mod:`glasspipe.learn.training.trainer`.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glasspipe.learn.graphs import build_graph, prediction_backend
from glasspipe.learn.predict import check_times
from glasspipe.learn.registry import read_hparams
from glasspipe.learn.samples import Sample, check_consistent
from glasspipe.learn.training import trainer
from glasspipe.learn.training.graph_task import (
    GraphTask,
    PreparedGraph,
    check_r_cut,
    count_parameters,
    mean_degree,
    set_loss_weights,
    standardisation,
    weighted_mse,
    with_a_particles,
)
from glasspipe.learn.training.trainer import nanmean_or_nan, none_if_nan, resolve_device
from glasspipe.learn.zoo.bapst import SPEC as BAPST_SPEC

logger = logging.getLogger(__name__)

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


# ----------------------------------------------------------------------------- training


# Settings of the graph network and their defaults (the original's, Bapst et al. 2020), declared once by the
# model's registry module (glasspipe.learn.zoo.bapst).
BAPST_DEFAULTS = BAPST_SPEC.defaults


LR_SCHEDULES = trainer.LR_SCHEDULES


def bapst_settings(settings: dict) -> dict:
    """``settings`` with every graph-network key filled in from :data:`BAPST_DEFAULTS`, typed."""
    merged = {**BAPST_DEFAULTS, **{k: v for k, v in settings.items() if k in BAPST_DEFAULTS}}
    return {
        "hidden": int(merged["hidden"]),
        "n_message_passing": int(merged["n_message_passing"]),
        "learning_rate": float(merged["learning_rate"]),
        "grad_clip": float(merged["grad_clip"]),
        "epochs": int(merged["epochs"]),
        "augment": bool(merged["augment"]),
        "self_edges": bool(merged["self_edges"]),
        "patience": trainer.patience_setting(merged["patience"], "models.bapst.patience"),
        "multi_time_head": bool(merged["multi_time_head"]),
        "standardise_targets": bool(merged["standardise_targets"]),
        "aggregation": str(merged["aggregation"]),
        "edge_features": str(merged["edge_features"]),
        "layer_norm": bool(merged["layer_norm"]),
        "graph_norm": bool(merged["graph_norm"]),
        "vector_channels": int(merged["vector_channels"]),
        "graph_norm_eps": float(merged["graph_norm_eps"]),
        "lr_schedule": trainer.schedule_setting(merged["lr_schedule"], "models.bapst.lr_schedule"),
    }


class BapstTask(GraphTask):
    """The Bapst GN for :func:`glasspipe.learn.training.trainer.fit`: its graphs, its network and its loss."""

    name = "bapst"
    log_keys = ("best_epoch", "n_parameters", "r_cut", "seed", "device")

    def __init__(self, train, validation, settings, r_cut, seed, graph_backend):
        super().__init__(seed)
        # graph.input 'both': every configuration carries its displacement to the inherent structure.
        self.node_vector_inputs = int(train[0].node_vectors is not None)
        if any((s.node_vectors is not None) != bool(self.node_vector_inputs) for s in train + validation):
            raise ValueError("bapst: some configurations carry a displacement input (graph.input 'both') and some not")
        opts = bapst_settings(settings)
        self.opts, self.settings, self.seed = opts, settings, int(seed)
        self.r_cut, self.graph_backend = float(r_cut), graph_backend
        self.all_train, self.validation = train, validation  # hparams name every training configuration
        self.device = resolve_device(settings.get("device", "auto"))
        self.times = train[0].times
        self.n_outputs = len(self.times)
        self.epochs, self.patience, self.grad_clip = opts["epochs"], opts["patience"], opts["grad_clip"]
        self.learning_rate, self.lr_schedule = opts["learning_rate"], opts["lr_schedule"]
        self.mean, self.std = standardisation(train, opts["standardise_targets"], self.n_outputs)
        started = time.perf_counter()
        self.train = with_a_particles("bapst", train)
        self.train_data = [PreparedGraph(s, r_cut, self.mean, self.std, self.device, graph_backend) for s in self.train]
        self.validation_data = [
            PreparedGraph(s, r_cut, self.mean, self.std, self.device, graph_backend) for s in validation
        ]
        # Incoming edges per particle, self-edge included when the model adds one.
        self.mean_degree = mean_degree(self.train_data) + float(opts["self_edges"])
        logger.info(
            "bapst: %d training and %d validation graphs built in %.1f s (r_cut %g, %.1f incoming edges per "
            "particle), device %s",
            len(self.train_data), len(self.validation_data), time.perf_counter() - started, r_cut,
            self.mean_degree, self.device,
        )  # fmt: skip
        self.symmetries = cube_symmetries().to(self.device)
        set_loss_weights(self.train_data, self.train, settings, "models.bapst")
        self.fingerprint = {**opts, "r_cut": self.r_cut}
        if self.node_vector_inputs:
            self.fingerprint["node_vector_inputs"] = self.node_vector_inputs

    def build(self) -> torch.nn.Module:
        opts = self.opts
        return build_bapst(
            self.n_outputs,
            opts["multi_time_head"],
            hidden=opts["hidden"],
            n_message_passing=opts["n_message_passing"],
            self_edges=opts["self_edges"],
            aggregation=opts["aggregation"],
            mean_degree=self.mean_degree if opts["aggregation"] == "mean_degree" else 1.0,
            edge_features=opts["edge_features"],
            layer_norm=opts["layer_norm"],
            graph_norm=opts["graph_norm"],
            vector_channels=opts["vector_channels"],
            graph_norm_eps=opts["graph_norm_eps"],
            node_vector_inputs=self.node_vector_inputs,
        )

    def networks(self, model: torch.nn.Module) -> list[str]:
        # One network per label time (PerTimeModels.networks), each clipped and selected on its own.
        if hasattr(model, "networks"):
            return [f"networks.{t}." for t in range(len(model.networks))]
        return [""]

    def loss(self, model: torch.nn.Module, index) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.train_data[index]
        g = item.graph
        edges, nodes = g.edge_vectors, g.node_features
        if self.opts["augment"]:
            symmetry = self.symmetries[int(self.rng.integers(len(self.symmetries)))]
            edges = edges @ symmetry.T
            if self.node_vector_inputs:  # the displacement input turns with the edges
                n_types = nodes.shape[1] - 3
                nodes = torch.cat([nodes[:, :n_types], nodes[:, n_types:] @ symmetry.T], dim=1)
        prediction = model(nodes, edges, g.senders, g.receivers)
        # Mean squared error on A particles; per label time, summed over times (for one network per time, the
        # sum of independent losses: each network gets the gradient of its own). Logged per label time.
        loss = weighted_mse(prediction, item)
        return loss, loss.detach() / self.n_outputs

    def hparams(self, model: torch.nn.Module, result: trainer.Result) -> dict:
        opts, best = self.opts, result.best
        best_epochs, best_pearsons = result.best_epochs, result.best_pearsons
        return {
            "model": "bapst",
            "model_class": type(model).__module__ + "." + type(model).__qualname__,
            **model.hparams(),
            "multi_time_head": opts["multi_time_head"],
            "r_cut": self.r_cut,
            "graph_backend": self.graph_backend,
            "times": [float(t) for t in self.times],
            "standardise_targets": opts["standardise_targets"],
            "target_mean": np.asarray(self.mean, dtype=np.float64).tolist(),
            "target_std": np.asarray(self.std, dtype=np.float64).tolist(),
            "target_standardisation": (
                "per label time, mean and std over the A particles of the training configurations; "
                "prediction = output * target_std + target_mean"
                if opts["standardise_targets"]
                else "none (raw targets, as the original): target_mean 0, target_std 1"
            ),
            "edge_vectors": "r_receiver - r_sender, minimum image, every ordered pair closer than r_cut"
            + (", plus one self-edge (vector 0) per particle added by the model" if opts["self_edges"] else ""),
            "node_features": "one-hot particle type (0 = A, 1 = B)",
            # One network (multi-time head): its best epoch; one network per time: the best epoch of each.
            "best_epoch": best_epochs[0] if len(best) == 1 else best_epochs,
            "best_validation_pearson": none_if_nan(nanmean_or_nan([b["pearson"] for b in best])),
            "best_validation_pearson_per_time": best_pearsons if len(best) > 1 else None,
            "epochs": len(result.rows),
            "n_parameters": count_parameters(model),
            **{k: opts[k] for k in ("learning_rate", "lr_schedule", "grad_clip", "augment")},
            **trainer.recorded_settings({"patience": opts["patience"]}),
            **trainer.provenance(self.seed, self.all_train, self.validation, result),
            "device": str(result.device),
        }


def train_bapst(
    train: list[Sample],
    validation: list[Sample],
    settings: dict,
    r_cut: float,
    seed: int,
    out_dir: str | Path,
    graph_backend: str = "freud",
) -> None:
    """Train the Bapst graph network (see the module docstring); resumes from ``out_dir/checkpoint.pt``.

    graph_backend: how the edges are built (config key ``graph.backend``; glasspipe.learn.graphs.build_graph).

    settings: ``config['models']['bapst']``; keys and defaults in :data:`BAPST_DEFAULTS` (the original's
    choices; ``multi_time_head``, ``standardise_targets``, ``aggregation``, ``edge_features``,
    ``layer_norm``, ``graph_norm`` and ``lr_schedule`` switch on documented departures), plus device ('auto' | 'cpu' |
    'cuda'). Without ``multi_time_head`` one network per label time is trained (as the original), each
    keeping its own best epoch. r_cut: graph cutoff (sigma_AA).
    """
    if not train:
        raise ValueError("graph network training needs at least one training configuration")
    train, validation = list(train), list(validation)
    check_consistent(train + validation)
    trainer.fit(BapstTask(train, validation, settings, r_cut, seed, graph_backend), seed, out_dir)


# ----------------------------------------------------------------------------- prediction


def load_bapst(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained graph network (best epoch, eval mode, on ``device``) and its hparams.

    One :class:`~glasspipe.learn.models.bapst.BapstGNN` with one output per time (``multi_time_head``), or a
    :class:`~glasspipe.learn.models.bapst.PerTimeModels` holding one network per label time; both map a graph to
    (N, n_times). Models saved before the switches existed load with their settings of then.
    """
    model_dir = Path(model_dir)
    hparams = read_hparams(model_dir, "bapst")
    hparams_path, weights_path = model_dir / "hparams.json", model_dir / "model.pt"
    legacy = "self_edges" not in hparams  # written before the switches: multi-time head, mean-degree scaling
    mean_degree = float(hparams.get("mean_degree", 1.0))
    model = build_bapst(
        hparams["n_outputs"],
        bool(hparams.get("multi_time_head", legacy)),
        hidden=hparams["hidden"],
        n_message_passing=hparams["n_message_passing"],
        n_types=hparams.get("n_types", 2),
        self_edges=bool(hparams.get("self_edges", False)),
        aggregation=hparams.get("aggregation", "mean_degree" if legacy and mean_degree != 1.0 else "sum"),
        mean_degree=mean_degree,
        edge_features=hparams.get("edge_features", "vector"),
        layer_norm=bool(hparams.get("layer_norm", False)),
        graph_norm=bool(hparams.get("graph_norm", False)),
        vector_channels=int(hparams.get("vector_channels", 0)),
        graph_norm_eps=float(hparams.get("graph_norm_eps", 1e-5)),
        node_vector_inputs=int(hparams.get("node_vector_inputs", 0)),
    )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        raise ValueError(f"{weights_path} does not hold the weights described by {hparams_path} ({err})") from err
    return model.to(device).eval(), hparams


def predict_bapst(model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto") -> list:
    """r_cut: None takes the one the model was trained with; a different value is an error."""
    torch_device = resolve_device(device)
    model, hparams = load_bapst(model_dir, torch_device)
    trained_r_cut = check_r_cut(r_cut, hparams, model_dir)
    times = np.asarray(hparams["times"], dtype=np.float64)
    mean = np.asarray(hparams["target_mean"], dtype=np.float64)
    std = np.asarray(hparams["target_std"], dtype=np.float64)
    out = []
    with torch.no_grad():
        for sample in samples:
            check_times(sample, times, model_dir)
            g = build_graph(
                sample, trained_r_cut, n_types=model.n_types, backend=prediction_backend(hparams), device=torch_device
            )
            output = model(g.node_features, g.edge_vectors, g.senders, g.receivers).double().cpu().numpy()
            out.append((times, output * std + mean))
    return out
