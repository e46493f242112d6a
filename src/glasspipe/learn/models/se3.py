"""An E(3)-equivariant graph network (e3nn), NequIP / tensor-field style, and its trainer.

The network follows e3nn's ``gate_points`` networks and NequIP (Batzner et al., Nat. Commun. 13, 2453
(2022)), with the choices of EIGNN / Pezzicoli et al. (SciPost Phys. 16, 136 (2024)) as defaults:

- graph: the particle graph of :func:`glasspipe.learn.graphs.build_graph` (every ordered pair closer than
  ``graph.r_cut``, minimum image, freud, no neighbour cap, no self-edges); edge vector
  r = r_receiver - r_sender (sigma_AA);
- edge attributes: real spherical harmonics Y_l(r / |r|), l = 0..``l_max`` (component normalisation), and a
  radial basis of ``n_basis`` Bessel functions sqrt(2 / r_c) sin(n pi |r| / r_c) / |r| times NequIP's
  polynomial envelope u(|r| / r_c) (p = 6: u, u', u'' vanish at r_c), r_c = ``radial_cutoff`` (default
  ``graph.r_cut``). EIGNN's published choice is edges at r < 2.0 with a 2.5 cutoff of the radial basis
  (``graph.r_cut: 2.0``, ``radial_cutoff: 2.5``): the radial functions then do not vanish at the last edge;
- node attributes: the one-hot particle type; node features start as a learned type embedding
  (``channels`` scalars 0e);
- ``n_layers`` interaction layers, each: linear -> tensor product of the sender's features with Y(r_hat),
  one weight per path and channel ('uvu') given by a radial MLP of the basis (``radial_layers`` x
  ``radial_neurons``, SiLU, no biases, so the weights vanish with the envelope) -> sum over incoming edges /
  sqrt(mean number of neighbours of the training graphs) -> linear -> plus a self-connection
  (tensor product with the type one-hot) -> gated nonlinearity (SiLU on scalars, sigmoid gates on l > 0)
  -> residual update where input and output irreps agree (every layer but the first);
- hidden irreps ``channels`` x (0e + 1o + 2e + ...) up to l_max, the parities of the spherical harmonics
  ((-1)^l), so the network is equivariant under rotations **and** reflections (the 48 cube symmetries
  include reflections); pseudo-scalars and pseudo-vectors are not carried;
- decoder input (``decoder_invariants``): ``scalars_and_norms`` (default) reads the last layer's channels x 0e
  and, per channel and l = 1..l_max, the norm of that irrep over its 2l + 1 components / sqrt(2l + 1), so
  channels x (1 + l_max) invariants (:meth:`SE3GNN.invariants`); ``scalars`` reads the 0e block alone, and
  then the last layer's l >= 1 features, sums over neighbours such as sum_j R(r_ij) Y_1(r_hat_ij), never
  reach a scalar output (only a later tensor product would make scalars of them), although the length of
  such a sum is what a ballistic particle's propensity follows (|F_i| at t = 0.1 tau);
- outputs: one invariant scalar per particle and label time from those invariants (decoder ``per_time``: an
  MLP n_invariants -> channels -> n_times; ``film``: one MLP shared by all times whose hidden layer is scaled
  and shifted (FiLM) by an MLP of s = ln(t / t_ref), t_ref the geometric mean of the training label times
  (ln(t / tau_alpha) up to a constant), so it predicts at label times it was not trained on; with
  ``film_temperature``: the FiLM MLP reads also u = (T_ref / T - 1) / scale of the configuration's bath
  temperature T, T_ref the harmonic mean of the training temperatures and scale the spread of T_ref / T
  over them, :meth:`SE3GNN.set_temperature`), and optionally
  ``n_vector_outputs`` l = 1 vectors per particle (an equivariant linear map of the last layer's features;
  one per label time), trained against a displacement-vector target with the weight ``vector_loss_weight``.

:class:`SE3GNN` has the call signature of :class:`glasspipe.learn.models.bapst.BapstGNN`:
``forward(node_features (N, n_types), edge_vectors (E, 3), senders (E,), receivers (E,)) -> (N, T)``;
:meth:`SE3GNN.forward_all` also returns the vectors (N, V, 3) (x, y, z order).

Training (:func:`train_se3`, :class:`SE3Task`) goes through :mod:`glasspipe.learn.training.trainer` (Adam, the
learning-rate schedule, gradient clipping, the best validation epoch, early stopping, checkpoints and
resume, progress, write-out) with the graph networks' shared pieces of :mod:`glasspipe.learn.training.graph_task`
(graphs, validation Pearson): MSE on the standardised targets of the A particles (plus the weighted vector
MSE where a vector target exists), one configuration per step, cosine learning-rate decay, the best
validation epoch kept and early stopping after ``patience`` epochs without improvement of the validation
Pearson (validation configurations only; the test configurations are never read). Automatic device;
bfloat16 autocast on CUDA when ``mixed_precision`` (the radial MLPs and the decoder; e3nn's tensor
products, linears and gates do not autocast and stay float32), float32 on CPU. The checkpoint's fingerprint
covers the settings and a SHA-256 of the training and validation data (positions, types, box, times,
targets), so regenerated labels never resume old weights.

Options (config keys ``models.se3.*``; all off by default):

- ``held_out_times`` (tau, each one of the label times; decoder ``film`` only): those label-time columns are
  dropped from training and from the choice of epoch; hparams.json keeps ``label_times`` and
  ``held_out_times``, the FiLM decoder predicts at every label time, and evaluation marks the held-out ones
  (:func:`glasspipe.learn.evaluate.mark_held_out`). Per-time heads are refused: they cannot predict a time
  they never saw.
- ``aux_local_variance_weight``, ``aux_spatial_correlation_weight`` (with ``aux_correlation_shells``):
  the losses of :mod:`glasspipe.learn.training.aux_losses` on the standardised targets of the A particles (the
  local variance over the graph's neighbourhoods, and <dy_i dy_j> in shells of r_ij), added to the MSE.
- ``pretrain_denoise: {epochs, noise_sigma}``: before the supervised training, ``epochs`` passes in which
  Gaussian noise of std ``noise_sigma`` (sigma_AA) is added to the positions and an equivariant l = 1 head
  (``denoise_head``) learns noise / noise_sigma (:func:`pretrain_denoise`); then the whole network is
  fine-tuned on the labels (the denoising head is kept in the weights but unused).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from e3nn import o3
from e3nn.nn import BatchNorm, FullyConnectedNet, Gate
from torch import nn

from glasspipe.learn.graphs import build_graph, prediction_backend
from glasspipe.learn.samples import Sample, check_consistent
from glasspipe.learn.training import aux_losses, trainer
from glasspipe.learn.training.graph_task import (
    GraphTask,
    PreparedGraph,
    check_r_cut,
    count_parameters,
    mean_degree,
    set_loss_weights,
    standardisation,
    validation_pearsons,
    weighted_mse,
    with_a_particles,
)
from glasspipe.learn.training.trainer import none_if_nan, resolve_device, vector_targets
from glasspipe.learn.zoo.se3 import SPEC as SE3_SPEC

logger = logging.getLogger(__name__)

DECODERS = ("per_time", "film")
# What the decoder reads of the last layer's features (see SE3GNN.invariants).
DECODER_INVARIANTS = ("scalars", "scalars_and_norms")
# Smoothing of the irrep norms at 0 (feature units): sqrt(|v|^2 / (2l + 1) + eps^2) - eps keeps the gradient
# finite for a particle without neighbours (l > 0 features exactly 0) and differs from the rms by < eps.
NORM_EPS = 1e-4


# ------------------------------------------------------------------------------------------ radial basis


def bessel_basis(r: torch.Tensor, r_cut: float, n_basis: int) -> torch.Tensor:
    """(E,) distances -> (E, n_basis): sqrt(2 / r_cut) sin(n pi r / r_cut) / r, n = 1..n_basis (NequIP)."""
    n = torch.arange(1, n_basis + 1, device=r.device, dtype=r.dtype)
    return math.sqrt(2.0 / r_cut) * torch.sin(n * (math.pi / r_cut) * r[:, None]) / r[:, None]


def polynomial_cutoff(r: torch.Tensor, r_cut: float, p: int = 6) -> torch.Tensor:
    """NequIP's envelope of the radial basis, x = r / r_cut: 1 at x = 0; value, slope and curvature vanish at
    x = 1 (p = 6: 1 - 28 x^6 + 48 x^7 - 21 x^8); 0 beyond."""
    x = r / r_cut
    out = 1.0 - 0.5 * (p + 1) * (p + 2) * x**p + p * (p + 2) * x ** (p + 1) - 0.5 * p * (p + 1) * x ** (p + 2)
    return out * (x < 1.0)


def _path_exists(irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, ir_out: o3.Irrep) -> bool:
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


# ------------------------------------------------------------------------------------------- the network


def _float32(device: torch.device):
    """Autocast switched off (e3nn modules run in float32 inside a mixed-precision forward)."""
    return torch.autocast(device.type, enabled=False)


class Interaction(nn.Module):
    """One equivariant interaction layer (see the module docstring): features ``irreps_in`` -> gated output."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_hidden: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_type: o3.Irreps,
        n_basis: int,
        radial_layers: int,
        radial_neurons: int,
        graph_norm: bool = False,
    ):
        super().__init__()
        scalars = o3.Irreps(
            [(m, ir) for m, ir in irreps_hidden if ir.l == 0 and _path_exists(irreps_in, irreps_sh, ir)]
        )
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0 and _path_exists(irreps_in, irreps_sh, ir)])
        gates = o3.Irreps([(m, "0e") for m, _ in gated])
        self.gate = Gate(scalars, [nn.functional.silu] * len(scalars), gates, [torch.sigmoid] * len(gates), gated)
        irreps_out = self.gate.irreps_in
        self.linear_1 = o3.Linear(irreps_in, irreps_in)
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_edge) in enumerate(irreps_sh):
                for ir in ir_in * ir_edge:
                    if ir in irreps_out:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir))
        irreps_mid, permutation, _ = o3.Irreps(mid).sort()
        instructions = [(i, j, permutation[k], mode, train) for i, j, k, mode, train in instructions]
        self.tp = o3.TensorProduct(
            irreps_in, irreps_sh, irreps_mid, instructions, internal_weights=False, shared_weights=False
        )
        self.radial = FullyConnectedNet(
            [n_basis] + radial_layers * [radial_neurons] + [self.tp.weight_numel], nn.functional.silu
        )
        self.linear_2 = o3.Linear(irreps_mid.simplify(), irreps_out)
        self.self_connection = o3.FullyConnectedTensorProduct(irreps_in, irreps_type, irreps_out)
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), self.gate.irreps_out
        self.residual = self.irreps_in == self.irreps_out
        # Graph norm: e3nn's equivariant instance norm over the configuration's particles before the gate
        # (scalars: minus their mean, over their std; l >= 1: over their rms norm; then learnt scales).
        self.norm = BatchNorm(irreps_out, instance=True) if graph_norm else None

    def forward(self, x, type_attr, senders, receivers, edge_sh, edge_radial, inv_sqrt_neighbours: float):
        # Under mixed precision the radial MLPs (per-edge matrix products, most of the FLOPs) run in the
        # autocast dtype; e3nn's compiled tensordots do not autocast (they refuse mixed dtypes), so the tensor
        # products, linears and gates run in float32.
        weights = self.radial(edge_radial)
        with _float32(x.device):
            x, weights = x.float(), weights.float()
            messages = self.tp(self.linear_1(x)[senders], edge_sh.float(), weights)
            received = messages.new_zeros((x.shape[0], messages.shape[1])).index_add_(0, receivers, messages)
            out = self.linear_2(received * inv_sqrt_neighbours) + self.self_connection(x, type_attr.float())
            if self.norm is not None:
                out = self.norm(out[None])[0]
            out = self.gate(out)
            return x + out if self.residual else out


class SE3GNN(nn.Module):
    """E(3)-equivariant graph network: scalar per particle and label time (invariant), optional vectors.

    forward(node_features (N, n_types) one-hot, edge_vectors (E, 3), senders (E,), receivers (E,)) -> (N, T)
    T = ``n_outputs`` (per-time heads) or the number of entries of the ``time_features`` buffer (FiLM decoder,
    s = ln(t / t_ref) per label time; :meth:`set_time_features` changes the times predicted).
    """

    def __init__(
        self,
        n_outputs: int = 1,
        channels: int = 32,
        n_layers: int = 7,
        l_max: int = 2,
        n_basis: int = 8,
        radial_cutoff: float = 2.0,
        polynomial_p: int = 6,
        radial_layers: int = 2,
        radial_neurons: int = 64,
        n_types: int = 2,
        mean_neighbours: float = 1.0,
        decoder: str = "per_time",
        time_features: list[float] | None = None,
        n_vector_outputs: int = 0,
        checkpoint_layers: bool = False,
        denoise_head: bool = False,
        decoder_invariants: str = "scalars_and_norms",
        film_temperature: bool = False,
        reference_temperature: float = 1.0,
        temperature_scale: float = 1.0,
        graph_norm: bool = False,
        node_vector_inputs: int = 0,
    ):
        super().__init__()
        # Recompute each layer's activations in the backward pass instead of storing them (torch.utils.
        # checkpoint): the per-edge tensor-product buffers of all layers are what fills the memory.
        self.checkpoint_layers = bool(checkpoint_layers)
        if decoder not in DECODERS:
            raise ValueError(f"config key 'models.se3.decoder' = {decoder!r}; choose one of {DECODERS}")
        if decoder_invariants not in DECODER_INVARIANTS:
            raise ValueError(
                f"config key 'models.se3.decoder_invariants' = {decoder_invariants!r}; choose one of "
                f"{DECODER_INVARIANTS}"
            )
        self.decoder_invariants = decoder_invariants
        if n_vector_outputs and l_max < 1:
            raise ValueError("a vector output needs l_max >= 1 (config key 'models.se3.l_max')")
        if denoise_head and l_max < 1:
            raise ValueError(
                "denoising pretraining needs l_max >= 1 (config keys 'models.se3.l_max', 'pretrain_denoise')"
            )
        self.has_denoise_head = bool(denoise_head)
        self.graph_norm = bool(graph_norm)
        if film_temperature and decoder != "film":
            raise ValueError(
                "config key 'models.se3.film_temperature' needs 'models.se3.decoder' = 'film': per-time heads "
                "have no conditioning input"
            )
        self.film_temperature = bool(film_temperature)
        self.reference_temperature, self.temperature_scale = float(reference_temperature), float(temperature_scale)
        if not (self.reference_temperature > 0 and self.temperature_scale > 0):
            raise ValueError(f"reference temperature {reference_temperature} and scale {temperature_scale} must be > 0")
        self.n_outputs, self.channels, self.n_layers, self.l_max = (
            int(n_outputs),
            int(channels),
            int(n_layers),
            int(l_max),
        )
        self.n_basis, self.radial_cutoff, self.polynomial_p = int(n_basis), float(radial_cutoff), int(polynomial_p)
        self.radial_layers, self.radial_neurons, self.n_types = int(radial_layers), int(radial_neurons), int(n_types)
        self.mean_neighbours, self.decoder, self.n_vector_outputs = (
            float(mean_neighbours),
            decoder,
            int(n_vector_outputs),
        )
        self.irreps_sh = o3.Irreps.spherical_harmonics(self.l_max)  # 0e + 1o + 2e + ...
        irreps_hidden = o3.Irreps([(self.channels, (l, (-1) ** l)) for l in range(self.l_max + 1)])
        irreps_type = o3.Irreps(f"{self.n_types}x0e")
        # node_vector_inputs = 1 (graph.input 'both'): each particle's displacement d to its inherent position
        # enters the first layer as an l = 1 (polar vector, 1o) feature beside the scalars, and |d|, |d|^2
        # enter the scalar embedding: the network reads the thermal configuration and its inherent structure
        # together, and stays equivariant (d rotates and reflects with the positions).
        if node_vector_inputs not in (0, 1):
            raise ValueError(f"node_vector_inputs = {node_vector_inputs}; se3 takes 0 or 1 vector per particle")
        self.node_vector_inputs = int(node_vector_inputs)
        n_scalar_inputs = self.n_types + 2 * self.node_vector_inputs
        self.embedding = nn.Linear(n_scalar_inputs, self.channels, bias=False)  # type (and |d|) embedding
        irreps = o3.Irreps(f"{self.channels}x0e" + (" + 1x1o" if self.node_vector_inputs else ""))
        layers = []
        for _ in range(self.n_layers):
            layer = Interaction(
                irreps,
                irreps_hidden,
                self.irreps_sh,
                irreps_type,
                self.n_basis,
                self.radial_layers,
                self.radial_neurons,
                graph_norm=graph_norm,
            )
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        self.irreps_final = irreps
        # The scalars come first in a gate's output: channels x 0e; then channels x (1o, 2e, ...).
        c = self.channels
        d_in = self.n_invariants
        if decoder == "per_time":
            self.head = nn.Sequential(nn.Linear(d_in, c), nn.SiLU(), nn.Linear(c, self.n_outputs))
        else:
            self.film_in = nn.Linear(d_in, c)
            # Conditioning: s = ln(t / t_ref), and with film_temperature also u = (T_ref / T - 1) / scale
            # (dynamics are activated in 1 / T; u is standardised over the training temperatures).
            self.film = nn.Sequential(nn.Linear(1 + self.film_temperature, c), nn.SiLU(), nn.Linear(c, 2 * c))
            self.film_out = nn.Linear(c, 1)
            features = torch.zeros(self.n_outputs) if time_features is None else torch.as_tensor(time_features)
            if len(features) != self.n_outputs:
                raise ValueError(f"{len(features)} time features for {self.n_outputs} outputs")
            self.register_buffer("time_features", features.to(torch.float32))
            # Not saved with the weights: set per configuration by set_temperature before each forward.
            self.register_buffer("temperature_feature", torch.zeros(()), persistent=False)
        if self.n_vector_outputs:
            self.vector_head = o3.Linear(self.irreps_final, o3.Irreps(f"{self.n_vector_outputs}x1o"))
        if self.has_denoise_head:  # the l = 1 output of denoising pretraining (pretrain_denoise)
            self.denoise_head = o3.Linear(self.irreps_final, o3.Irreps("1x1o"))

    def hparams(self) -> dict:
        return {
            "n_outputs": self.n_outputs,
            "channels": self.channels,
            "n_layers": self.n_layers,
            "l_max": self.l_max,
            "n_basis": self.n_basis,
            "radial_cutoff": self.radial_cutoff,
            "polynomial_p": self.polynomial_p,
            "radial_layers": self.radial_layers,
            "radial_neurons": self.radial_neurons,
            "n_types": self.n_types,
            "mean_neighbours": self.mean_neighbours,
            "decoder": self.decoder,
            "time_features": self.time_features.tolist() if self.decoder == "film" else None,
            "n_vector_outputs": self.n_vector_outputs,
            "denoise_head": self.has_denoise_head,
            "decoder_invariants": self.decoder_invariants,
            "film_temperature": self.film_temperature,
            "reference_temperature": self.reference_temperature,
            "temperature_scale": self.temperature_scale,
            "graph_norm": self.graph_norm,
            # Only when used, so that the hparams.json of models without it stay as they were.
            **({"node_vector_inputs": self.node_vector_inputs} if self.node_vector_inputs else {}),
        }

    @property
    def n_invariants(self) -> int:
        """Width of the decoder's input: ``channels`` scalars, plus ``channels`` norms per l = 1..l_max of the
        last layer's features with ``decoder_invariants: scalars_and_norms``."""
        if self.decoder_invariants == "scalars":
            return self.channels
        return self.channels + sum(mul for mul, ir in self.irreps_final if ir.l > 0)

    def invariants(self, x: torch.Tensor) -> torch.Tensor:
        """(N, irreps_final.dim) last-layer features -> (N, n_invariants) rotation- and reflection-invariant
        decoder input.

        ``scalars``: the channels x 0e block. ``scalars_and_norms``: also, per channel and l >= 1, the norm of
        that irrep over its 2l + 1 components divided by sqrt(2l + 1) (the rms component, on the scale of the
        scalars under e3nn's component normalisation), smoothed at 0 by :data:`NORM_EPS`. Why: the last layer's
        l >= 1 features are sums over neighbours (e.g. sum_j R(r_ij) Y_1(r_hat_ij), a force-like vector), and
        without their norms they never reach a scalar output (only a later tensor product would turn them into
        scalars); a ballistic particle's propensity follows such a length |F_i| (the Bapst GN's vector
        channels feed the same kind of norm to its node update).
        """
        scalars = x[:, : self.channels]
        if self.decoder_invariants == "scalars":
            return scalars
        parts = [scalars]
        for (mul, ir), block in zip(self.irreps_final, self.irreps_final.slices(), strict=True):
            if ir.l == 0:
                continue
            v = x[:, block].reshape(x.shape[0], mul, ir.dim)
            parts.append(torch.sqrt(v.square().mean(dim=2) + NORM_EPS**2) - NORM_EPS)
        return torch.cat(parts, dim=1)

    def set_time_features(self, features) -> None:
        """FiLM decoder: predict at the times whose s = ln(t / t_ref) are ``features`` from now on."""
        if self.decoder != "film":
            raise ValueError("only the 'film' decoder predicts at other label times; this model has one head per time")
        self.time_features = torch.as_tensor(features, dtype=torch.float32, device=self.time_features.device)

    def set_temperature(self, temperature: float | None) -> None:
        """FiLM decoder with ``film_temperature``: the following forwards predict at bath temperature
        ``temperature`` (epsilon_AA / k_B). A model without film_temperature ignores it."""
        if not self.film_temperature:
            return
        if temperature is None or not float(temperature) > 0:
            raise ValueError(
                f"config key 'models.se3.film_temperature' is on but a configuration has temperature {temperature!r}; "
                "the decoder needs each configuration's bath temperature (> 0)"
            )
        value = (self.reference_temperature / float(temperature) - 1.0) / self.temperature_scale
        self.temperature_feature = torch.tensor(value, dtype=torch.float32, device=self.time_features.device)

    def features(self, node_features, edge_vectors, senders, receivers) -> torch.Tensor:
        """Features of the last layer, (N, irreps_final.dim)."""
        r = torch.linalg.vector_norm(edge_vectors, dim=1)
        # 'component' normalisation: each l block of unit mean square on the sphere. In e3nn >= 0.5 the l = 1
        # block is (x, y, z) itself (its Wigner D of a rotation R is R); the tests check the vector output.
        edge_sh = o3.spherical_harmonics(self.irreps_sh, edge_vectors, normalize=True, normalization="component")
        edge_radial = (
            bessel_basis(r, self.radial_cutoff, self.n_basis)
            * polynomial_cutoff(r, self.radial_cutoff, self.polynomial_p)[:, None]
        )
        if self.node_vector_inputs:
            types, d = node_features[:, : self.n_types], node_features[:, self.n_types : self.n_types + 3]
            norm_sq = (d * d).sum(dim=1, keepdim=True)
            x = torch.cat([self.embedding(torch.cat([types, norm_sq.sqrt(), norm_sq], dim=1)), d], dim=1)
        else:
            types = node_features
            x = self.embedding(node_features)
        inv = 1.0 / math.sqrt(self.mean_neighbours)
        for layer in self.layers:
            args = (x, types, senders, receivers, edge_sh, edge_radial, inv)
            if self.checkpoint_layers and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, *args, use_reentrant=False)
            else:
                x = layer(*args)
        return x

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        scalars = self.invariants(x)
        if self.decoder == "per_time":
            return self.head(scalars)
        condition = self.time_features[:, None]
        if self.film_temperature:
            condition = torch.cat([condition, self.temperature_feature.expand(len(condition), 1)], dim=1)
        gamma, beta = self.film(condition.to(scalars.dtype)).chunk(2, dim=1)  # (T, c) each
        hidden = self.film_in(scalars)[:, None, :] * (1.0 + gamma) + beta  # (N, T, c)
        return self.film_out(nn.functional.silu(hidden))[..., 0]

    def forward_all(self, node_features, edge_vectors, senders, receivers) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scalars (N, T), vectors (N, V, 3) in x, y, z order, or None without a vector head)."""
        x = self.features(node_features, edge_vectors, senders, receivers)
        vectors = None
        if self.n_vector_outputs:
            with _float32(x.device):
                vectors = self.vector_head(x.float()).reshape(x.shape[0], self.n_vector_outputs, 3)
        return self._decode(x), vectors

    def forward(self, node_features, edge_vectors, senders, receivers) -> torch.Tensor:
        return self.forward_all(node_features, edge_vectors, senders, receivers)[0]

    def denoise(self, node_features, edge_vectors, senders, receivers) -> torch.Tensor:
        """(N, 3) l = 1 output of the denoising head (x, y, z order): the predicted position noise / sigma."""
        if not self.has_denoise_head:
            raise ValueError("this model has no denoising head (models.se3.pretrain_denoise.epochs = 0)")
        x = self.features(node_features, edge_vectors, senders, receivers)
        with _float32(x.device):
            return self.denoise_head(x.float())


# ------------------------------------------------------------------------------------------- settings

# The settings and their defaults are declared once, by the model's registry module (glasspipe.learn.zoo.se3).
SE3_DEFAULTS = SE3_SPEC.defaults
PRETRAIN_DEFAULTS = SE3_DEFAULTS["pretrain_denoise"]


def se3_settings(settings: dict) -> dict:
    """``models.se3`` with every key filled from :data:`SE3_DEFAULTS`, typed and checked (errors name the key)."""
    # The registry's keys (enabled, threads, loss_weighting) are the workflow's; loss_weighting is read by
    # weights.py.
    unknown = sorted(set(settings) - set(SE3_DEFAULTS) - set(SE3_SPEC.registry_keys))
    if unknown:
        raise ValueError(
            f"config keys {['models.se3.' + k for k in unknown]} are unknown; known: {sorted(SE3_DEFAULTS)}"
        )
    m = {**SE3_DEFAULTS, **settings}
    out = {
        **{
            k: int(m[k])
            for k in (
                "channels",
                "n_layers",
                "l_max",
                "n_basis",
                "polynomial_p",
                "radial_layers",
                "radial_neurons",
                "epochs",
            )
        },
        "radial_cutoff": None if m["radial_cutoff"] is None else float(m["radial_cutoff"]),
        "decoder": str(m["decoder"]),
        "decoder_invariants": str(m["decoder_invariants"]),
        "learning_rate": float(m["learning_rate"]),
        "lr_schedule": trainer.schedule_setting(m["lr_schedule"], "models.se3.lr_schedule"),
        "grad_clip": float(m["grad_clip"]),
        "patience": trainer.patience_setting(m["patience"], "models.se3.patience"),
        "standardise_targets": bool(m["standardise_targets"]),
        "film_temperature": bool(m["film_temperature"]),
        "graph_norm": bool(m["graph_norm"]),
        "vector_loss_weight": float(m["vector_loss_weight"]),
        "mixed_precision": bool(m["mixed_precision"]),
        "checkpoint_layers": bool(m["checkpoint_layers"]),
        "device": str(m["device"]),
    }
    if out["decoder"] not in DECODERS:
        raise ValueError(f"config key 'models.se3.decoder' = {out['decoder']!r}; choose one of {DECODERS}")
    if out["decoder_invariants"] not in DECODER_INVARIANTS:
        raise ValueError(
            f"config key 'models.se3.decoder_invariants' = {out['decoder_invariants']!r}; choose one of "
            f"{DECODER_INVARIANTS}"
        )
    if out["film_temperature"] and out["decoder"] != "film":
        raise ValueError(
            "config key 'models.se3.film_temperature' = true needs 'models.se3.decoder' = 'film' (per-time heads "
            "have no conditioning input)"
        )
    if out["vector_loss_weight"] < 0:
        raise ValueError(f"config key 'models.se3.vector_loss_weight' = {out['vector_loss_weight']} must be >= 0")
    if out["device"] not in ("auto", "cpu", "cuda"):
        raise ValueError(f"config key 'models.se3.device' = {out['device']!r}; choose one of auto, cpu, cuda")
    held_out = m["held_out_times"] if m["held_out_times"] is not None else []
    if not isinstance(held_out, (list, tuple)) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in held_out
    ):
        raise ValueError(
            f"config key 'models.se3.held_out_times' = {held_out!r} must be a list of label times > 0 (tau)"
        )
    out["held_out_times"] = [float(t) for t in held_out]
    if out["held_out_times"] and out["decoder"] != "film":
        raise ValueError(
            f"config key 'models.se3.held_out_times' = {out['held_out_times']} needs 'models.se3.decoder' = 'film': "
            f"the {out['decoder']!r} decoder has one head per training time and cannot predict a time it never saw"
        )
    for key in ("aux_local_variance_weight", "aux_spatial_correlation_weight"):
        out[key] = float(m[key])
        if not out[key] >= 0:
            raise ValueError(f"config key 'models.se3.{key}' = {m[key]} must be >= 0 (0 = off)")
    out["aux_correlation_shells"] = [
        list(s) for s in aux_losses.check_shells(m["aux_correlation_shells"], "models.se3.aux_correlation_shells")
    ]
    pretrain = m["pretrain_denoise"] or {}
    unknown = sorted(set(pretrain) - set(PRETRAIN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"config keys {['models.se3.pretrain_denoise.' + k for k in unknown]} are unknown; known: "
            f"{sorted(PRETRAIN_DEFAULTS)}"
        )
    pretrain = {**PRETRAIN_DEFAULTS, **pretrain}
    out["pretrain_denoise"] = {"epochs": int(pretrain["epochs"]), "noise_sigma": float(pretrain["noise_sigma"])}
    if out["pretrain_denoise"]["epochs"] < 0 or not out["pretrain_denoise"]["noise_sigma"] > 0:
        raise ValueError(
            f"config key 'models.se3.pretrain_denoise' = {pretrain}: epochs must be >= 0 and noise_sigma > 0 (sigma_AA)"
        )
    if out["pretrain_denoise"]["epochs"] and out["l_max"] < 1:
        raise ValueError(
            "config key 'models.se3.pretrain_denoise.epochs' > 0 needs 'models.se3.l_max' >= 1 (a vector output)"
        )
    return out


def held_out_columns(times, held_out_times, key: str = "models.se3.held_out_times") -> np.ndarray:
    """Boolean (T,): which of the label ``times`` (tau) are held out. Each held-out time must match a label time
    to a relative 1e-3 (label times are rounded to the MD step grid); at least one time must stay in training."""
    times = np.asarray(times, dtype=np.float64)
    held = np.zeros(len(times), dtype=bool)
    for t in held_out_times:
        match = np.isclose(times, float(t), rtol=1e-3, atol=0.0)
        if not match.any():
            raise ValueError(
                f"config key '{key}' holds {t:g}, which is not one of the label times {np.round(times, 6).tolist()} "
                "(tau; isoconf.times, or the imported dataset's times)"
            )
        held |= match
    if held.all():
        raise ValueError(f"config key '{key}' = {list(held_out_times)} holds out every label time; keep at least one")
    return held


def select_times(sample: Sample, keep: np.ndarray) -> Sample:
    """A copy of ``sample`` with only the label-time columns ``keep`` (bool (T,)) of its targets (and vector
    targets)."""
    out = dataclasses.replace(sample, times=sample.times[keep], targets=sample.targets[:, keep])
    vectors = vector_targets(sample)
    if vectors is not None:
        out.vector_targets = vectors[:, keep]
    return out


def time_features(times, reference_time: float) -> list[float]:
    """s = ln(t / t_ref) for each label time t (tau)."""
    return [float(np.log(float(t) / reference_time)) for t in times]


def build_se3(
    opts: dict,
    n_outputs: int,
    r_cut: float,
    mean_neighbours: float,
    times,
    reference_time: float,
    n_vector_outputs: int,
    denoise_head: bool = False,
    temperature_reference: tuple[float, float] = (1.0, 1.0),
    node_vector_inputs: int = 0,
) -> SE3GNN:
    radial_cutoff = float(r_cut) if opts["radial_cutoff"] is None else opts["radial_cutoff"]
    if radial_cutoff < float(r_cut):
        raise ValueError(
            f"config key 'models.se3.radial_cutoff' = {radial_cutoff} is below graph.r_cut = {r_cut}: the radial "
            "basis would be cut inside the graph; use null (= graph.r_cut) or a larger value (EIGNN: 2.5)"
        )
    return SE3GNN(
        n_outputs=n_outputs,
        channels=opts["channels"],
        n_layers=opts["n_layers"],
        l_max=opts["l_max"],
        n_basis=opts["n_basis"],
        radial_cutoff=radial_cutoff,
        polynomial_p=opts["polynomial_p"],
        radial_layers=opts["radial_layers"],
        radial_neurons=opts["radial_neurons"],
        mean_neighbours=mean_neighbours,
        decoder=opts["decoder"],
        decoder_invariants=opts["decoder_invariants"],
        time_features=time_features(times, reference_time) if opts["decoder"] == "film" else None,
        n_vector_outputs=n_vector_outputs,
        checkpoint_layers=opts["checkpoint_layers"],
        denoise_head=denoise_head,
        film_temperature=opts["film_temperature"],
        graph_norm=opts["graph_norm"],
        reference_temperature=temperature_reference[0],
        temperature_scale=temperature_reference[1],
        node_vector_inputs=node_vector_inputs,
    )


def temperature_reference(samples: list[Sample], film_temperature: bool) -> tuple[float, float]:
    """(T_ref, scale) of the temperature input u = (T_ref / T - 1) / scale: T_ref the harmonic mean of the
    distinct bath temperatures of ``samples`` and scale the standard deviation of T_ref / T over them, so
    that u is standardised over the training temperatures (1 with a single temperature, where u = 0);
    (1, 1) when the conditioning is off. Raises ValueError when a sample's temperature is unknown."""
    if not film_temperature:
        return 1.0, 1.0
    missing = [s.configuration for s in samples if s.temperature is None]
    if missing:
        raise ValueError(
            f"config key 'models.se3.film_temperature' is on but configurations {missing} carry no temperature"
        )
    distinct = np.unique([float(s.temperature) for s in samples])
    reference = float(1.0 / np.mean(1.0 / distinct))
    scale = float(np.std(reference / distinct))
    return reference, (scale if scale > 1e-12 else 1.0)


# ------------------------------------------------------------------------------------------- training


def _autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA (no loss scaling needed); a no-op on CPU, which trains in float32."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _shell_pairs(item, sample: Sample, r_cut: float, shells, device, graph_backend: str = "freud"):
    """(senders, receivers, distances) of every ordered pair within the outermost shell: the graph's edges
    when the shells end inside graph.r_cut, else a pair list of its own (freud, same minimum-image rule)."""
    reach = max(hi for _, hi in shells)
    if not reach < 0.5 * sample.box_length:
        raise ValueError(
            f"config key 'models.se3.aux_correlation_shells' reaches r = {reach:g}, not below half the box length "
            f"({0.5 * sample.box_length:.4f}) of configuration {sample.configuration}; use smaller shells"
        )
    graph = item.graph if reach <= r_cut else build_graph(sample, reach, backend=graph_backend, device=device)
    return graph.senders, graph.receivers, torch.linalg.vector_norm(graph.edge_vectors, dim=1)


def auxiliary_loss(opts: dict, item, prediction: torch.Tensor, shells) -> torch.Tensor:
    """The weighted auxiliary losses of :mod:`glasspipe.learn.training.aux_losses` on the standardised targets of the
    A particles (the particles of the main loss): local variance over the graph's neighbourhoods and the shell
    correlations; 0 when both weights are 0."""
    total = prediction.new_zeros(())
    g = item.graph
    if opts["aux_local_variance_weight"] > 0:
        total = total + opts["aux_local_variance_weight"] * aux_losses.local_variance_loss(
            prediction, item.targets, g.senders, g.receivers, item.mask
        )
    if opts["aux_spatial_correlation_weight"] > 0:
        senders, receivers, distances = item.pairs
        total = total + opts["aux_spatial_correlation_weight"] * aux_losses.spatial_correlation_loss(
            prediction, item.targets, senders, receivers, distances, shells, item.mask
        )
    return total


def noised_edges(graph, noise: torch.Tensor) -> torch.Tensor:
    """Edge vectors after displacing every particle by ``noise`` (N, 3): r_receiver - r_sender changes by
    noise_receiver - noise_sender. The edge set stays that of the clean configuration (a pair crossing r_cut
    by the noise keeps its edge; the radial envelope makes such edges nearly weightless)."""
    return graph.edge_vectors + noise[graph.receivers] - noise[graph.senders]


def denoise_loss(model: SE3GNN, graph, noise_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Mean squared error between the denoising head's output and the position noise / noise_sigma (unit
    variance per component: an untrained zero output scores 1), all particles, one Gaussian draw."""
    noise = torch.randn(graph.n_nodes, 3, generator=generator, device="cpu").to(graph.edge_vectors.device)
    predicted = model.denoise(
        graph.node_features, noised_edges(graph, noise_sigma * noise), graph.senders, graph.receivers
    )
    return torch.mean((predicted - noise) ** 2)


def pretrain_denoise(
    model: SE3GNN, train_data: list, epochs: int, noise_sigma: float, opts: dict, seed: int
) -> list[float]:
    """Self-supervised pretraining (seed 001): ``epochs`` passes over the training graphs, each step adding
    Gaussian noise (std ``noise_sigma``, sigma_AA, per component) to the positions and training the equivariant
    l = 1 denoising head to output noise / noise_sigma (:func:`denoise_loss`); Adam at the supervised learning
    rate, constant, gradient clipping as in training. Returns the mean loss of each epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=opts["learning_rate"])
    generator = torch.Generator().manual_seed(int(seed) + 1)
    order = np.random.default_rng(int(seed) + 1)
    log = []
    model.train()
    for epoch in range(1, epochs + 1):
        total = 0.0
        for index in order.permutation(len(train_data)):
            loss = denoise_loss(model, train_data[index].graph, noise_sigma, generator)
            trainer.optimiser_step(optimizer, loss, [list(model.parameters())], opts["grad_clip"])
            total += float(loss.detach())
        log.append(total / len(train_data))
        logger.info("se3: denoising pretraining epoch %d/%d loss %.4f", epoch, epochs, log[-1])
    return log


class SE3Task(GraphTask):
    """se3 for :func:`glasspipe.learn.training.trainer.fit`: its graphs (and vector targets, shell pairs), its network
    (after the optional denoising pretraining) and its loss."""

    name = "se3"
    log_keys = ("best_epoch", "n_parameters", "r_cut", "seed", "device")

    def __init__(self, train, validation, settings, r_cut, seed, graph_backend):
        super().__init__(seed)
        opts = se3_settings(settings)
        self.opts, self.settings, self.seed = opts, settings, int(seed)
        self.r_cut, self.graph_backend = float(r_cut), graph_backend
        self.device = resolve_device(opts["device"], "models.se3.device")
        self.label_times = np.asarray(train[0].times, dtype=np.float64)
        self.held = np.zeros(len(self.label_times), dtype=bool)
        if opts["held_out_times"]:
            # Train (and choose the epoch) without the held-out columns; the FiLM decoder predicts them later.
            self.held = held_out_columns(self.label_times, opts["held_out_times"])
            train = [select_times(s, ~self.held) for s in train]
            validation = [select_times(s, ~self.held) for s in validation]
            logger.info("se3: label times %s held out of training", self.label_times[self.held].tolist())
        self.times = train[0].times
        self.n_outputs = len(self.times)
        # graph.input 'both': every configuration carries its displacement to the inherent structure.
        self.node_vector_inputs = int(train[0].node_vectors is not None)
        if any((s.node_vectors is not None) != bool(self.node_vector_inputs) for s in train + validation):
            raise ValueError("se3: some configurations carry a displacement input (graph.input 'both') and some not")
        train = with_a_particles("se3", train)
        self.train, self.validation = train, validation
        self.vector_weight = opts["vector_loss_weight"]
        if self.vector_weight > 0:
            missing = [s.configuration for s in train + validation if vector_targets(s) is None]
            if missing:
                raise ValueError(
                    f"config key 'models.se3.vector_loss_weight' = {self.vector_weight} asks for a displacement-"
                    f"vector loss but configurations {missing} have no vector target; set it to 0 or build vector "
                    "labels"
                )
        self.mean, self.std = standardisation(train, opts["standardise_targets"], self.n_outputs)
        started = time.perf_counter()
        self.train_data = [PreparedGraph(s, r_cut, self.mean, self.std, self.device, graph_backend) for s in train]
        self.validation_data = [
            PreparedGraph(s, r_cut, self.mean, self.std, self.device, graph_backend) for s in validation
        ]
        self.temperature_ref = temperature_reference(train, opts["film_temperature"])
        if self.vector_weight > 0:
            for item, s in zip(self.train_data, train, strict=True):
                item.vectors = torch.as_tensor(vector_targets(s), dtype=torch.float32, device=self.device)
        self.shells = [tuple(x) for x in opts["aux_correlation_shells"]]
        if opts["aux_spatial_correlation_weight"] > 0:
            for item, s in zip(self.train_data, train, strict=True):
                item.pairs = _shell_pairs(item, s, r_cut, self.shells, self.device, graph_backend)
        self.mean_neighbours = mean_degree(self.train_data)
        self.reference_time = float(np.exp(np.mean(np.log(self.times))))
        logger.info(
            "se3: %d training and %d validation graphs built in %.1f s (r_cut %g, %.1f neighbours), device %s",
            len(self.train_data), len(self.validation_data), time.perf_counter() - started, r_cut,
            self.mean_neighbours, self.device,
        )  # fmt: skip
        set_loss_weights(self.train_data, train, settings, "models.se3")  # importance-weighted loss (alpha 0: off)
        self.epochs, self.patience, self.grad_clip = opts["epochs"], opts["patience"], opts["grad_clip"]
        self.learning_rate, self.lr_schedule = opts["learning_rate"], opts["lr_schedule"]
        # Layer checkpointing recomputes the same activations: a checkpoint stays valid when it changes.
        self.fingerprint = {**{k: v for k, v in opts.items() if k != "checkpoint_layers"}, "r_cut": self.r_cut}
        if self.node_vector_inputs:
            self.fingerprint["node_vector_inputs"] = self.node_vector_inputs
        if opts["film_temperature"]:
            self.fingerprint["temperatures"] = [float(s.temperature) for s in train + validation]

    def build(self) -> SE3GNN:
        return build_se3(
            self.opts,
            self.n_outputs,
            self.r_cut,
            self.mean_neighbours,
            self.times,
            self.reference_time,
            self.n_outputs if self.vector_weight > 0 else 0,
            denoise_head=self.opts["pretrain_denoise"]["epochs"] > 0,
            temperature_reference=self.temperature_ref,
            node_vector_inputs=self.node_vector_inputs,
        )

    def start(self, model: SE3GNN, resumed: dict | None) -> dict:
        """Denoising pretraining on a fresh start (its losses are kept with the checkpoints)."""
        if resumed is not None:
            return {"pretrain_log": list(resumed.get("pretrain_log", []))}
        pretrain = self.opts["pretrain_denoise"]
        log = []
        if pretrain["epochs"] > 0:
            log = pretrain_denoise(
                model, self.train_data, pretrain["epochs"], pretrain["noise_sigma"], self.opts, self.seed
            )
        return {"pretrain_log": log}

    def loss(self, model: SE3GNN, index) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.train_data[index]
        g = item.graph
        model.set_temperature(item.temperature)
        with _autocast(self.device, self.opts["mixed_precision"]):
            prediction, vectors = model.forward_all(g.node_features, g.edge_vectors, g.senders, g.receivers)
        prediction = prediction.float()
        loss = weighted_mse(prediction, item)
        if vectors is not None:
            loss = loss + self.vector_weight * torch.mean((vectors.float()[item.mask] - item.vectors[item.mask]) ** 2)
        loss = loss + auxiliary_loss(self.opts, item, prediction, self.shells)
        # Logged per label time, in float64 (the float32 loss converted before dividing).
        return loss, loss.detach().double() / self.n_outputs

    def validate(self, model: SE3GNN) -> np.ndarray:
        with _autocast(self.device, self.opts["mixed_precision"]):
            return validation_pearsons(
                model,
                self.validation_data,
                self.n_outputs,
                prepare=lambda item: model.set_temperature(item.temperature),
            )

    def hparams(self, model: SE3GNN, result: trainer.Result) -> dict:
        opts, (best,) = self.opts, result.best
        return {
            "model": "se3",
            "model_class": type(model).__module__ + "." + type(model).__qualname__,
            **model.hparams(),
            "r_cut": self.r_cut,
            "graph_backend": self.graph_backend,
            "times": [float(t) for t in self.times],
            "label_times": self.label_times.tolist(),
            "held_out_times": self.label_times[self.held].tolist(),
            "reference_time": self.reference_time,
            "standardise_targets": opts["standardise_targets"],
            "target_mean": np.asarray(self.mean, dtype=np.float64).tolist(),
            "target_std": np.asarray(self.std, dtype=np.float64).tolist(),
            "target_standardisation": "prediction = output * target_std + target_mean (per label time; the FiLM "
            "decoder interpolates them linearly in ln t between training times, constant beyond)",
            "edge_vectors": "r_receiver - r_sender, minimum image, every ordered pair closer than r_cut, no self-edges",
            "node_features": "one-hot particle type (0 = A, 1 = B)",
            "best_epoch": int(best["epoch"]),
            "best_validation_pearson": none_if_nan(best["pearson"]),
            "epochs": len(result.rows),
            "n_parameters": count_parameters(model),
            **{
                k: opts[k]
                for k in (
                    "learning_rate",
                    "lr_schedule",
                    "grad_clip",
                    "patience",
                    "vector_loss_weight",
                    "mixed_precision",
                    "aux_local_variance_weight",
                    "aux_spatial_correlation_weight",
                    "aux_correlation_shells",
                    "pretrain_denoise",
                )
            },
            "pretrain_denoise_loss": result.extra["pretrain_log"],
            "device": str(result.device),
            "data_sha256": result.fingerprint["data_sha256"],
            **trainer.provenance(self.seed, self.train, self.validation, result),
            "e3nn_version": __import__("e3nn").__version__,
        }


def train_se3(
    train: list[Sample],
    validation: list[Sample],
    settings: dict,
    r_cut: float,
    seed: int,
    out_dir: str | Path,
    graph_backend: str = "freud",
) -> None:
    """Train :class:`SE3GNN` (see the module docstring); resumes from ``out_dir/checkpoint.pt``.

    settings: ``config['models']['se3']`` (keys and defaults in :data:`SE3_DEFAULTS`); r_cut: graph cutoff
    (sigma_AA); graph_backend: how the edges are built (config key ``graph.backend``). Writes ``model.pt``
    (state dict of the best validation epoch), ``hparams.json`` and, last,
    ``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s).
    """
    if not train:
        raise ValueError("se3 training needs at least one training configuration")
    train, validation = list(train), list(validation)
    check_consistent(train + validation)
    trainer.fit(SE3Task(train, validation, settings, r_cut, seed, graph_backend), seed, out_dir)


# ------------------------------------------------------------------------------------------- prediction


def load_se3(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[SE3GNN, dict]:
    """The trained network (best epoch, eval mode, on ``device``) and its hparams.json."""
    from glasspipe.learn.registry import read_hparams

    model_dir = Path(model_dir)
    hparams = read_hparams(model_dir, "se3")
    keys = ("n_outputs", "channels", "n_layers", "l_max", "n_basis", "radial_cutoff", "polynomial_p", "radial_layers",
            "radial_neurons", "n_types", "mean_neighbours", "decoder", "time_features", "n_vector_outputs")  # fmt: skip
    # Models saved before the option existed read the scalars only.
    model = SE3GNN(
        **{k: hparams[k] for k in keys},
        denoise_head=bool(hparams.get("denoise_head", False)),
        decoder_invariants=hparams.get("decoder_invariants", "scalars"),
        film_temperature=bool(hparams.get("film_temperature", False)),
        reference_temperature=float(hparams.get("reference_temperature", 1.0)),
        temperature_scale=float(hparams.get("temperature_scale", 1.0)),
        graph_norm=bool(hparams.get("graph_norm", False)),
        node_vector_inputs=int(hparams.get("node_vector_inputs", 0)),
    )
    try:
        model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True))
    except Exception as err:
        raise ValueError(
            f"{model_dir / 'model.pt'} does not hold the weights described by hparams.json ({err})"
        ) from err
    return model.to(device).eval(), hparams


def predict_se3(model_dir: str | Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto"):
    """Per sample, (label times (T,), predictions (N, T)) of the model saved in ``model_dir``.

    Per-time heads predict at their training times; the FiLM decoder predicts at each sample's own label
    times (de-standardised with the training mean / std interpolated in ln t). r_cut: None or the trained one.
    """
    torch_device = resolve_device(device, "models.se3.device")
    model, hparams = load_se3(model_dir, torch_device)
    trained_r_cut = check_r_cut(r_cut, hparams, model_dir)
    trained_times = np.asarray(hparams["times"], dtype=np.float64)
    mean, std = np.asarray(hparams["target_mean"]), np.asarray(hparams["target_std"])
    out = []
    with torch.no_grad():
        for sample in samples:
            times, m, s = trained_times, mean, std
            if hparams["decoder"] == "film":
                times = sample.times
                log_t, log_train = np.log(times), np.log(trained_times)
                m, s = np.interp(log_t, log_train, mean), np.interp(log_t, log_train, std)
                model.set_time_features(time_features(times, hparams["reference_time"]))
            g = build_graph(
                sample, trained_r_cut, n_types=model.n_types, backend=prediction_backend(hparams), device=torch_device
            )
            model.set_temperature(sample.temperature)
            output = model(g.node_features, g.edge_vectors, g.senders, g.receivers).double().cpu().numpy()
            out.append((np.asarray(times, dtype=np.float64), output * s + m))
    return out
