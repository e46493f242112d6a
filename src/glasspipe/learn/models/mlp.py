"""A GlassMLP-style multilayer perceptron with a bottleneck, on the per-particle descriptors.

After Jung, Biroli and Berthier, "Predicting dynamic heterogeneity in glass-forming liquids by
physics-inspired machine learning", Phys. Rev. Lett. 130, 238202 (2023): the inputs are the particle's
(coarse-grained) structural descriptors, standardised with the mean and std over the A particles of the
training configurations; a small MLP narrows to a **2-unit linear bottleneck** and widens again to one
output per label time (their network predicts all times at once; ``multi_time_head = false`` trains one
network per time instead). Hidden layers use ELU. The loss is the mean squared error on the standardised
targets (per time: mean and std over the training A particles) of the A particles, each squared residual
times its importance weight with ``loss_weighting.alpha`` > 0 (glasspipe.learn.training.weights). GlassMLP's extra
loss terms on the spatial correlations of the prediction are not reproduced.

The model reads :attr:`Sample.descriptors` (whatever the structure stage computed: radial g(r) bins, or
coarse-grained descriptors of the thermal or the inherent structure) and nothing else.

Training (:class:`MLPTask`, through :mod:`glasspipe.learn.training.trainer`): Adam on mini-batches of A particles
pooled over the training configurations (shuffled by a torch Generator seeded with the training seed), a
fixed number of epochs, or fewer with ``patience`` (early stopping; default None: never); after each epoch
the mean over validation configurations of the per-configuration Pearson correlation (A particles) is
computed per time and the best epoch is kept (per network). Files written to ``out_dir``: ``model.pt``
(state dict), ``hparams.json`` (sizes, feature names and both standardisations) and ``train_log.parquet``
(epoch, train_loss, validation_pearson, wall_s); ``checkpoint.pt`` after every epoch while training, so a
killed run resumes (see the trainer).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glasspipe.correlation import pearson_along
from glasspipe.learn.predict import check_times
from glasspipe.learn.registry import read_hparams
from glasspipe.learn.samples import Sample, check_consistent
from glasspipe.learn.training import trainer
from glasspipe.learn.training.weights import importance_weights, weighting_settings
from glasspipe.learn.zoo.mlp import SPEC as MLP_SPEC

logger = logging.getLogger(__name__)

A_TYPEID = 0
# The settings and their defaults are declared once, by the model's registry module (glasspipe.learn.zoo.mlp).
MLP_DEFAULTS = MLP_SPEC.defaults


def mlp_settings(settings: dict) -> dict:
    """``settings`` with every MLP key filled in from :data:`MLP_DEFAULTS`, typed."""
    merged = {**MLP_DEFAULTS, **{k: v for k, v in settings.items() if k in MLP_DEFAULTS}}
    return {
        "encoder_sizes": [int(x) for x in merged["encoder_sizes"]],
        "bottleneck": int(merged["bottleneck"]),
        "decoder_sizes": [int(x) for x in merged["decoder_sizes"]],
        "multi_time_head": bool(merged["multi_time_head"]),
        "learning_rate": float(merged["learning_rate"]),
        "weight_decay": float(merged["weight_decay"]),
        "batch_size": int(merged["batch_size"]),
        "epochs": int(merged["epochs"]),
        "patience": trainer.patience_setting(merged["patience"], "models.mlp.patience"),
    }


class BottleneckMLP(nn.Module):
    """descriptors (N, F) -> encoder (ELU) -> linear bottleneck -> decoder (ELU) -> (N, n_outputs).

    Without ``multi_time_head`` there is one such stack per output (the stacks share nothing).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        encoder_sizes=(10,),
        bottleneck: int = 2,
        decoder_sizes=(10,),
        multi_time_head: bool = True,
    ):
        super().__init__()
        self.n_features, self.n_outputs = int(n_features), int(n_outputs)
        self.encoder_sizes, self.decoder_sizes = [int(x) for x in encoder_sizes], [int(x) for x in decoder_sizes]
        self.bottleneck, self.multi_time_head = int(bottleneck), bool(multi_time_head)
        n_stacks, per_stack = (1, self.n_outputs) if self.multi_time_head else (self.n_outputs, 1)
        self.stacks = nn.ModuleList(self._stack(per_stack) for _ in range(n_stacks))

    def _stack(self, n_out: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = self.n_features
        for size in self.encoder_sizes:
            layers += [nn.Linear(width, size), nn.ELU()]
            width = size
        layers.append(nn.Linear(width, self.bottleneck))  # linear bottleneck
        width = self.bottleneck
        for size in self.decoder_sizes:
            layers += [nn.Linear(width, size), nn.ELU()]
            width = size
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def hparams(self) -> dict:
        return {
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "encoder_sizes": self.encoder_sizes,
            "bottleneck": self.bottleneck,
            "decoder_sizes": self.decoder_sizes,
            "multi_time_head": self.multi_time_head,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([stack(x) for stack in self.stacks], dim=1)

    def bottleneck_values(self, x: torch.Tensor) -> torch.Tensor:
        """(N, bottleneck) of the first stack: the two learned structural coordinates."""
        stack = self.stacks[0]
        n_encoder = 2 * len(self.encoder_sizes) + 1
        return stack[:n_encoder](x)


def _a_arrays(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([s.descriptors[s.typeid == A_TYPEID] for s in samples])
    y = np.concatenate([s.targets[s.typeid == A_TYPEID] for s in samples])
    return x, y


class MLPTask(trainer.Task):
    """The bottleneck MLP for :func:`glasspipe.learn.training.trainer.fit`: standardised descriptors and targets of the
    training A particles, mini-batches of them, the network and its loss."""

    name = "mlp"
    inputs = "descriptors"

    def __init__(self, train: list[Sample], validation: list[Sample], settings: dict, seed: int):
        opts = mlp_settings(settings)
        self.opts, self.settings, self.seed = opts, settings, int(seed)
        self.train, self.validation = train, validation
        self.times = train[0].times
        self.n_outputs = len(self.times)
        x_train, y_train = _a_arrays(train)
        if len(x_train) == 0:
            raise ValueError("the training configurations hold no A particles")
        feature_mean, feature_std = x_train.mean(axis=0), x_train.std(axis=0)
        self.feature_mean, self.feature_std = feature_mean, np.where(feature_std > 0, feature_std, 1.0)
        target_mean, target_std = y_train.mean(axis=0), y_train.std(axis=0)
        self.target_mean, self.target_std = target_mean, np.where(target_std > 0, target_std, 1.0)
        self.x = self.features(x_train)
        self.y = torch.as_tensor((y_train - self.target_mean) / self.target_std, dtype=torch.float32)
        # Importance weights of the loss (models.mlp.loss_weighting, glasspipe.learn.training.weights; None when
        # alpha = 0).
        weighting = weighting_settings(settings, "models.mlp")
        self.weights = None
        if weighting["alpha"] > 0:
            w = importance_weights(y_train, weighting["alpha"], weighting["n_bins"], weighting["max_weight"])
            self.weights = torch.as_tensor(w.reshape(len(y_train), -1), dtype=torch.float32)
        self.validation_sets = [
            (self.features(s.descriptors[s.typeid == A_TYPEID]), s.targets[s.typeid == A_TYPEID]) for s in validation
        ]
        self.rng = torch.Generator().manual_seed(self.seed)  # the order of the mini-batches
        self.epochs, self.patience = opts["epochs"], opts["patience"]
        self.learning_rate, self.weight_decay = opts["learning_rate"], opts["weight_decay"]
        self.fingerprint = opts

    def features(self, x: np.ndarray) -> torch.Tensor:
        """Descriptors standardised with the training A particles' mean and std, float32."""
        return torch.as_tensor((x - self.feature_mean) / self.feature_std, dtype=torch.float32)

    def build(self) -> BottleneckMLP:
        opts = self.opts
        return BottleneckMLP(
            self.x.shape[1],
            self.n_outputs,
            opts["encoder_sizes"],
            opts["bottleneck"],
            opts["decoder_sizes"],
            opts["multi_time_head"],
        )

    def networks(self, model: BottleneckMLP) -> list[str]:
        # Without multi_time_head one stack per label time, each keeping its own best epoch.
        return [""] if len(model.stacks) == 1 else [f"stacks.{t}." for t in range(len(model.stacks))]

    def batches(self):
        return torch.randperm(len(self.x), generator=self.rng).split(self.opts["batch_size"])

    def loss(self, model: BottleneckMLP, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = None if self.weights is None else self.weights[batch]
        loss = trainer.mean_squared_error(model(self.x[batch]), self.y[batch], weights)
        # Logged per A particle: the batch's mean loss times its size (summed in float64).
        return loss, loss.detach().double() * len(batch)

    def epoch_loss(self, total: float) -> float:
        return total / len(self.x) / self.n_outputs

    def validate(self, model: BottleneckMLP) -> np.ndarray:
        model.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scores = [pearson_along(model(xv).double().numpy(), yv, axis=0) for xv, yv in self.validation_sets]
            per_time = np.nanmean(np.stack(scores), axis=0) if scores else np.full(self.n_outputs, np.nan)
        model.train()
        return per_time

    def hparams(self, model: BottleneckMLP, result: trainer.Result) -> dict:
        return {
            "model": "mlp",
            "model_class": "glasspipe.learn.models.mlp.BottleneckMLP",
            **model.hparams(),
            "times": [float(t) for t in self.times],
            "feature_names": list(self.train[0].descriptor_names),
            "feature_mean": self.feature_mean.tolist(),
            "feature_std": self.feature_std.tolist(),
            "target_mean": np.asarray(self.target_mean).tolist(),
            "target_std": np.asarray(self.target_std).tolist(),
            "best_epoch": result.best_epochs,
            "best_validation_pearson": result.best_pearsons,
            "settings": trainer.recorded_settings(self.opts),
            **trainer.provenance(self.seed, self.train, self.validation, result),
        }


def train_mlp(
    train: list[Sample],
    validation: list[Sample],
    settings: dict,
    seed: int,
    out_dir: str | Path,
) -> None:
    """Train the bottleneck MLP on the descriptors of the A particles (see the module docstring); resumes from
    ``out_dir/checkpoint.pt``.

    settings: ``config['models']['mlp']`` (keys and defaults in :data:`MLP_DEFAULTS`).
    """
    if not train:
        raise ValueError("MLP training needs at least one training configuration")
    train, validation = list(train), list(validation)
    check_consistent(train + validation, need_descriptors=True)
    trainer.fit(MLPTask(train, validation, settings, seed), seed, out_dir)


def load_mlp(model_dir: str | Path) -> tuple[BottleneckMLP, dict]:
    """The trained MLP (eval mode, CPU) and its hparams."""
    model_dir = Path(model_dir)
    hparams = read_hparams(model_dir, "mlp")
    hparams_path, weights_path = model_dir / "hparams.json", model_dir / "model.pt"
    model = BottleneckMLP(
        hparams["n_features"],
        hparams["n_outputs"],
        hparams["encoder_sizes"],
        hparams["bottleneck"],
        hparams["decoder_sizes"],
        hparams["multi_time_head"],
    )
    try:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except Exception as err:
        raise ValueError(f"{weights_path} does not hold the weights described by {hparams_path} ({err})") from err
    return model.eval(), hparams


def predict_mlp(model: BottleneckMLP, hparams: dict, sample: Sample) -> np.ndarray:
    """(N, T) predictions (in target units) for every particle of ``sample``."""
    if sample.descriptors is None:
        raise ValueError(f"configuration {sample.configuration} has no descriptors; the mlp needs them")
    if list(sample.descriptor_names) != list(hparams["feature_names"]):
        raise ValueError(
            f"configuration {sample.configuration} has descriptor columns that differ from those the mlp was trained on"
        )
    x = (sample.descriptors - np.asarray(hparams["feature_mean"])) / np.asarray(hparams["feature_std"])
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    return out * np.asarray(hparams["target_std"]) + np.asarray(hparams["target_mean"])


# ----------------------------------------------------------------------------- prediction


def predict_mlp_samples(
    model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto"
) -> list:
    model, hparams = load_mlp(model_dir)
    times = np.asarray(hparams["times"], dtype=np.float64)
    out = []
    for sample in samples:
        check_times(sample, times, model_dir)
        out.append((times, predict_mlp(model, hparams, sample)))
    return out
