"""E(3)-equivariant graph network (e3nn, NequIP-style) on the particle graph (implementation:
glasspipe.learn.models.se3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glasspipe.config import ConfigError, is_imported, label_times
from glasspipe.plugins import Lazy, ModelSpec, register_model

# The model's own settings; each default is declared here and nowhere else.
SETTINGS = {
    "channels": {
        "type": "integer",
        "minimum": 1,
        "default": 32,
        "description": "multiplicity of every irrep (l = 0..l_max) of the hidden features",
    },
    "n_layers": {"type": "integer", "minimum": 1, "default": 7, "description": "interaction layers"},
    "l_max": {
        "type": "integer",
        "minimum": 0,
        "maximum": 4,
        "default": 2,
        "description": "highest degree of the spherical harmonics and hidden irreps",
    },
    "n_basis": {"type": "integer", "minimum": 1, "default": 8, "description": "Bessel functions of the radial basis"},
    "radial_cutoff": {
        "type": ["number", "null"],
        "exclusiveMinimum": 0,
        "default": None,
        "description": "r_c of the radial basis and its envelope (sigma_AA); null = graph.r_cut; must be "
        ">= graph.r_cut. EIGNN: graph.r_cut 2.0 (edges) with radial_cutoff 2.5\n",
    },
    "polynomial_p": {
        "type": "integer",
        "minimum": 2,
        "default": 6,
        "description": "exponent p of NequIP's polynomial envelope",
    },
    "radial_layers": {"type": "integer", "minimum": 1, "default": 2, "description": "hidden layers of the radial MLPs"},
    "radial_neurons": {"type": "integer", "minimum": 1, "default": 64, "description": "width of the radial MLPs"},
    "decoder": {
        "enum": ["per_time", "film"],
        "default": "per_time",
        "description": "per_time: one output per label time from an MLP of the invariant features; film: "
        "one MLP for all times, its hidden layer scaled and shifted by an MLP of ln(t / "
        "t_ref) (t_ref the geometric mean of the training label times), so it predicts at "
        "label times it was not trained on\n",
    },
    "decoder_invariants": {
        "enum": ["scalars", "scalars_and_norms"],
        "default": "scalars_and_norms",
        "description": "what the decoder reads of the last layer's features: scalars, its channels x 0e "
        "only (then the last layer's l >= 1 sums over neighbours never reach the output); "
        "scalars_and_norms, also per channel and l = 1..l_max the norm of that irrep / "
        "sqrt(2l + 1), rotation and reflection invariant, channels x l_max more inputs "
        "(the length of a sum of vectors over neighbours, e.g. the force, which a "
        "ballistic particle's propensity follows; docs/models.md)\n",
    },
    "film_temperature": {
        "type": "boolean",
        "default": False,
        "description": "decoder film only: the FiLM MLP reads also u = (T_ref / T - 1) / scale of each "
        "configuration's bath temperature T (T_ref the harmonic mean of the training "
        "temperatures, scale the standard deviation of T_ref / T over them), so one "
        "decoder serves every time and temperature (the transfer section trains it on "
        "several temperatures); with one training temperature u is 0 throughout and the "
        "option changes nothing there\n",
    },
    "graph_norm": {
        "type": "boolean",
        "default": False,
        "description": "normalise each layer's features over the configuration's particles before its "
        "gate (e3nn's equivariant BatchNorm with instance=True: scalars to zero mean and "
        "unit variance, l >= 1 irreps to unit rms norm, then learnt scales), as the Bapst "
        "GN's graph_norm; predictions then depend on the whole configuration's "
        "statistics\n",
    },
    "learning_rate": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 0.003,
        "description": "Adam's peak learning rate",
    },
    "lr_schedule": {
        "enum": ["constant", "cosine"],
        "default": "cosine",
        "description": "cosine decays the learning rate to 0 over the epochs",
    },
    "grad_clip": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 10.0,
        "description": "clip of the global gradient norm",
    },
    "epochs": {
        "type": "integer",
        "minimum": 1,
        "default": 100,
        "description": "passes over the training configurations",
    },
    "patience": {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": 20,
        "description": "stop after this many epochs without a better validation Pearson (null = never); "
        "the best epoch is kept",
    },
    "standardise_targets": {
        "type": "boolean",
        "default": True,
        "description": "per-time mean and std of the training A targets (undone at prediction)",
    },
    "vector_loss_weight": {
        "type": "number",
        "minimum": 0,
        "default": 0.0,
        "description": "weight of the auxiliary loss on an l = 1 output per particle and label time "
        "against the displacement-vector target (needs vector labels; 0 builds no vector "
        "head)\n",
    },
    "mixed_precision": {
        "type": "boolean",
        "default": True,
        "description": "bfloat16 autocast on CUDA for the radial MLPs and the decoder (e3nn's tensor "
        "products stay float32); CPU always trains in float32",
    },
    "checkpoint_layers": {
        "type": "boolean",
        "default": False,
        "description": "recompute each layer's activations in the backward pass (torch.utils.checkpoint): "
        "about a seventh of the memory at the defaults for ~1.3x the time (N = 4096, "
        "defaults: ~15 GB -> ~3 GB)\n",
    },
    "device": {"enum": ["auto", "cpu", "cuda"], "default": "auto"},
    "held_out_times": {
        "type": "array",
        "items": {"type": "number", "exclusiveMinimum": 0},
        "default": [],
        "description": "label times (tau, each one of the label times) left out of training and of the "
        "choice of epoch; needs decoder film, which still predicts them (interpolation in "
        "ln t). Evaluation marks them (metrics column held_out, '(held out)' in the "
        "report's table, held_out in summary.json)\n",
    },
    "aux_local_variance_weight": {
        "type": "number",
        "minimum": 0,
        "default": 0.0,
        "description": "weight of the auxiliary loss on the local variance of the (standardised) target "
        "over each A particle's graph neighbourhood (itself and its neighbours within "
        "graph.r_cut), against over-smoothing (0 = off)\n",
    },
    "aux_spatial_correlation_weight": {
        "type": "number",
        "minimum": 0,
        "default": 0.0,
        "description": "weight of the auxiliary loss on the spatial correlation <dy_i dy_j> of the target "
        "over A-A pairs in the shells aux_correlation_shells, against over-smoothing (0 = "
        "off)\n",
    },
    "aux_correlation_shells": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2},
        "default": [[0.0, 1.4], [1.4, 2.0], [2.0, 2.6]],
        "description": "shells [r_lo, r_hi) (sigma_AA) of the spatial-correlation loss; pairs beyond "
        "graph.r_cut get a pair list of their own",
    },
    "pretrain_denoise": {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": "self-supervised pretraining before the supervised training: Gaussian noise added "
        "to the positions, an equivariant l = 1 head trained to predict it (needs l_max >= "
        "1); then fine-tuning on the labels\n",
        "properties": {
            "epochs": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "passes over the training configurations (0 = no pretraining)",
            },
            "noise_sigma": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 0.05,
                "description": "std of the noise per component (sigma_AA)",
            },
        },
    },
}

DESCRIPTION = (
    "E(3)-equivariant graph network in e3nn (glasspipe.learn.models.se3; NequIP / tensor-field style, the "
    "architecture of EIGNN / Pezzicoli et al. 2024): spherical harmonics of the edge vectors, Bessel "
    "radial basis with a polynomial envelope, tensor-product convolutions weighted by radial MLPs, "
    "gated nonlinearities, type embedding, residual updates. Needs the e3nn extra (pip install "
    "glasspipe[e3nn]). Trains on standardised targets of the A particles; edges are those of "
    "graph.r_cut\n"
)


_train_se3 = Lazy("glasspipe.learn.models.se3:train_se3")


def train(train_samples, validation_samples, settings: dict, seed: int, out_dir: Path) -> None:
    graph = settings["graph"]
    backend = graph.get("backend", "freud")
    _train_se3(train_samples, validation_samples, settings["models"]["se3"], graph["r_cut"], seed, out_dir, backend)


def check(config: dict) -> None:
    """models.se3.held_out_times: a time-conditioned decoder, and times that are label times at every temperature."""
    se3 = config["models"].get("se3", {})
    held = se3.get("held_out_times") or []
    if not se3.get("enabled") or not held:
        return
    if se3.get("decoder", "per_time") != "film":
        raise ConfigError(
            f"config key 'models.se3.held_out_times' = {held} needs 'models.se3.decoder' = 'film': per-time heads "
            "cannot predict a label time they were not trained on"
        )
    if is_imported(config):
        return  # the dataset's own times; checked against them when training starts
    for temperature in config["temperatures"]:
        times = label_times(config, temperature)
        missing = [t for t in held if not np.isclose(times, t, rtol=1e-3, atol=0.0).any()]
        if missing:
            raise ConfigError(
                f"config key 'models.se3.held_out_times' holds {missing}, not label times at T = {temperature:g} "
                f"(tau: {np.round(times, 6).tolist()}, from 'isoconf.times')"
            )
        if len(held) >= len(times):
            raise ConfigError("config key 'models.se3.held_out_times' holds out every label time; keep at least one")


SPEC = register_model(
    ModelSpec(
        "se3",
        "graph",
        gpu=True,
        threads=2,
        train=train,
        predict="glasspipe.learn.models.se3:predict_se3",
        description="E(3)-equivariant graph network (e3nn, NequIP-style) on the particle graph",
        settings=SETTINGS,
        enabled=False,
        targets=False,
        section_description=DESCRIPTION,
        check=check,
    )
)
