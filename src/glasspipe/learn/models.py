"""The graph network of Bapst et al. (2020) in plain PyTorch, and the 48 symmetries of the cube.

Reproduces ``glassy_dynamics/graph_model.py`` and ``train.py`` of google-deepmind/deepmind-research
(Bapst et al., "Unveiling the predictive power of static structure in glassy systems", Nat. Phys. 16, 448):

- encoder (graph_nets ``GraphIndependent``): node MLP on the particle type, edge MLP on the 3D relative
  vector ``r_receiver - r_sender``; MLPs of sizes (hidden, hidden), ReLU after every layer;
- one core (graph_nets ``GraphNetwork`` without globals) applied ``n_message_passing`` times with shared
  weights; each step's input is the concatenation [previous output, encoded input] for nodes and edges
  (at the first step the previous output is the encoding itself);
  edge update: MLP([edge, receiver node, sender node]) (graph_nets' concatenation order);
  node update: MLP([sum of updated incoming edges, node]); both MLPs (hidden, hidden), ReLU after every layer;
- decoder: node MLP (hidden, hidden, n_outputs), ReLU between layers, linear output.
- initialisation as ``train.py``: weights variance-scaling (scale 1, fan-in, truncated normal), biases
  variance-scaling with scale 0.1; no layer norm, no dropout.

Differences from the original, none of which changes what the network computes:
- the node input is the one-hot type (``n_types`` numbers) rather than the type id as one float (for two
  types this adds ``hidden`` weights: 64 parameters at hidden = 64);
- the original's decoder also builds an edge MLP whose output is discarded (``decoded.nodes`` only);
  those 8,320 unused parameters are not created here;
- the first layers of the core MLPs act on concatenations; we apply them block by block (the same weight
  matrix, split into column blocks) so that the node terms are computed once per node rather than once per
  edge, and the encoded-input terms once per forward pass rather than once per step. ``forward_reference``
  is the literal concatenate-then-multiply version, kept for tests.
- the output has one column per label time (``n_outputs``) instead of a single time.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

# TF1's variance_scaling_initializer draws from a normal truncated at 2 sigma and divides the standard
# deviation by this constant (the std of a unit normal truncated to [-2, 2]) so the variance is as asked.
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def _variance_scaling_(tensor: torch.Tensor, scale: float, fan_in: int) -> torch.Tensor:
    std = math.sqrt(scale / fan_in) / _TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class MLP(nn.Module):
    """Stack of Linear layers with ReLU between them (and after the last if ``activate_final``)."""

    def __init__(self, n_in: int, sizes: tuple[int, ...], activate_final: bool):
        super().__init__()
        widths = (n_in, *sizes)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.activate_final = activate_final
        for layer in self.layers:
            _variance_scaling_(layer.weight, 1.0, layer.in_features)
            _variance_scaling_(layer.bias, 0.1, layer.out_features)

    def forward(self, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the MLP; ``first``, if given, replaces the output of the first Linear (pre-activation)."""
        n = len(self.layers)
        for k, layer in enumerate(self.layers):
            x = first if (k == 0 and first is not None) else layer(x)
            if k < n - 1 or self.activate_final:
                x = torch.relu(x)
        return x


class BapstGNN(nn.Module):
    """Encode-process-decode graph network predicting one number per particle and label time.

    forward(node_features (N, n_types), edge_vectors (E, 3), senders (E,), receivers (E,)) -> (N, n_outputs)
    """

    def __init__(
        self, n_outputs: int, hidden: int = 64, n_message_passing: int = 7, n_types: int = 2, mean_degree: float = 1.0
    ):
        super().__init__()
        # Incoming edge messages are summed, as in Bapst et al., then divided by the mean number of
        # neighbours. Because the sum enters the node MLP only through its first (linear) layer, this is
        # the same model with those weights rescaled; without it, ~40 neighbours per particle multiply the
        # activations by ~4 per step at initialisation (outputs ~1e3 after 7 steps) and training collapses.
        self.mean_degree = float(mean_degree)
        self.n_outputs = int(n_outputs)
        self.hidden = int(hidden)
        self.n_message_passing = int(n_message_passing)
        self.n_types = int(n_types)
        h = self.hidden
        sizes = (h, h)
        self.encoder_node = MLP(self.n_types, sizes, activate_final=True)
        self.encoder_edge = MLP(3, sizes, activate_final=True)
        # Core edge input: [edge (2h), receiver node (2h), sender node (2h)], each [previous, encoded].
        self.core_edge = MLP(6 * h, sizes, activate_final=True)
        # Core node input: [summed incoming edges (h), node (2h)].
        self.core_node = MLP(3 * h, sizes, activate_final=True)
        self.decoder_node = MLP(h, (h, h, self.n_outputs), activate_final=False)

    def hparams(self) -> dict:
        return {
            "n_outputs": self.n_outputs,
            "hidden": self.hidden,
            "n_message_passing": self.n_message_passing,
            "n_types": self.n_types,
            "mean_degree": self.mean_degree,
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
        enc_n = self.encoder_node(node_features)
        enc_e = self.encoder_edge(edge_vectors)
        out_n, out_e = enc_n, enc_e

        w_e, b_e = self.core_edge.layers[0].weight, self.core_edge.layers[0].bias
        w_n, b_n = self.core_node.layers[0].weight, self.core_node.layers[0].bias
        # Column blocks of the first core layers (see the module docstring).
        w_e_prev, w_e_enc = w_e[:, :h], w_e[:, h : 2 * h]
        w_e_nodes = torch.cat([w_e[:, 2 * h : 4 * h], w_e[:, 4 * h : 6 * h]], dim=0)  # (2h', 2h): receiver; sender
        w_n_agg, w_n_prev, w_n_enc = w_n[:, :h], w_n[:, h : 2 * h], w_n[:, 2 * h : 3 * h]
        # Terms from the encoded inputs are the same at every step.
        edge_const = torch.addmm(b_e, enc_e, w_e_enc.t())
        node_const = torch.addmm(b_n, enc_n, w_n_enc.t())
        width = w_e.shape[0]

        for _ in range(self.n_message_passing):
            node_in = torch.cat([out_n, enc_n], dim=1)
            projected = node_in @ w_e_nodes.t()  # (N, 2 * width)
            to_receiver, to_sender = projected[:, :width], projected[:, width:]
            first = torch.addmm(edge_const, out_e, w_e_prev.t())
            first = first + to_receiver.index_select(0, receivers) + to_sender.index_select(0, senders)
            new_e = self.core_edge(None, first=first)
            received = new_e.new_zeros((n_nodes, new_e.shape[1])).index_add_(0, receivers, new_e) / self.mean_degree
            first_n = torch.addmm(node_const, received, w_n_agg.t()) + out_n @ w_n_prev.t()
            out_n = self.core_node(None, first=first_n)
            out_e = new_e
        return self.decoder_node(out_n)

    def forward_reference(
        self,
        node_features: torch.Tensor,
        edge_vectors: torch.Tensor,
        senders: torch.Tensor,
        receivers: torch.Tensor,
    ) -> torch.Tensor:
        """The literal graph_nets computation (concatenate, then apply the MLPs); slower, for tests."""
        n_nodes = node_features.shape[0]
        enc_n = self.encoder_node(node_features)
        enc_e = self.encoder_edge(edge_vectors)
        out_n, out_e = enc_n, enc_e
        for _ in range(self.n_message_passing):
            node_in = torch.cat([out_n, enc_n], dim=1)
            edge_in = torch.cat([out_e, enc_e], dim=1)
            out_e = self.core_edge(torch.cat([edge_in, node_in[receivers], node_in[senders]], dim=1))
            received = out_e.new_zeros((n_nodes, out_e.shape[1])).index_add_(0, receivers, out_e) / self.mean_degree
            out_n = self.core_node(torch.cat([received, node_in], dim=1))
        return self.decoder_node(out_n)


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
