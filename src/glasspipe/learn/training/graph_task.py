"""What the graph networks (the Bapst GN, glasspipe.learn.models.bapst, and se3) share in training, for
:mod:`glasspipe.learn.training.trainer`.

:class:`PreparedGraph` (a configuration's graph and
targets on the device), :func:`weighted_mse` (their loss), :func:`validation_pearsons`, the data
preparation helpers and :class:`GraphTask` (one configuration per step in a random order).

Also the graph cutoff check of a saved model (:func:`check_r_cut`) and :func:`count_parameters`.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from torch import nn

# pearson_torch: the graph networks' validation score stays in torch (why: glasspipe.correlation).
from glasspipe.correlation import pearson_torch
from glasspipe.learn.graphs import Graph, build_graph
from glasspipe.learn.samples import Sample
from glasspipe.learn.training import trainer
from glasspipe.learn.training.trainer import mean_squared_error
from glasspipe.learn.training.weights import pooled_weights, weighting_settings

logger = logging.getLogger(__name__)

A_TYPEID = 0


def check_r_cut(r_cut: float | None, hparams: dict, model_dir) -> float:
    """The graph cutoff a saved model was trained with; ``r_cut`` None takes it, another value is an error."""
    trained = float(hparams["r_cut"])
    if r_cut is not None and not np.isclose(float(r_cut), trained, rtol=1e-12, atol=0.0):
        raise ValueError(
            f"r_cut = {r_cut} differs from the r_cut = {trained} the model in {model_dir} was trained with"
        )
    return trained


# --------------------------------------------------------------------- shared by the graph networks


def target_standardisation(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Per-time mean and std of the targets over the A particles of ``samples`` (std 1 where it is 0)."""
    values = np.concatenate([s.targets[s.typeid == A_TYPEID] for s in samples])
    if len(values) == 0:
        raise ValueError("the training configurations hold no A particles")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


def standardisation(samples: list[Sample], standardise: bool, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per label time the targets are trained in: :func:`target_standardisation` of ``samples``,
    or (0, 1) for the raw targets."""
    return target_standardisation(samples) if standardise else (np.zeros(n_outputs), np.ones(n_outputs))


def with_a_particles(name: str, samples: list[Sample]) -> list[Sample]:
    """The training configurations that hold A particles (the loss reads only those); the others are left
    out with a warning. Raises ValueError when none is left."""
    without_a = [s.configuration for s in samples if not np.any(s.typeid == A_TYPEID)]
    if without_a:
        logger.warning("%s: training configurations %s hold no A particles and are left out", name, without_a)
    kept = [s for s in samples if s.configuration not in without_a]
    if not kept:
        raise ValueError("the training configurations hold no A particles")
    return kept


class PreparedGraph:
    """A graph with its (possibly standardised) targets and A mask, on the training device."""

    def __init__(
        self,
        sample: Sample,
        r_cut: float,
        mean: np.ndarray,
        std: np.ndarray,
        device: torch.device,
        graph_backend: str = "freud",
    ):
        self.configuration = sample.configuration
        self.graph: Graph = build_graph(sample, r_cut, backend=graph_backend, device=device)
        targets = (sample.targets - mean) / std
        self.targets = torch.as_tensor(targets, dtype=torch.float32, device=device)
        self.mask = torch.as_tensor(sample.typeid == A_TYPEID, device=device)
        self.temperature = sample.temperature  # bath temperature, for temperature-conditioned decoders
        self.weights: torch.Tensor | None = None  # (N, T) importance weights of the loss (None: unweighted)


def mean_degree(data: list[PreparedGraph]) -> float:
    """Mean number of incoming edges per particle of the graphs ``data`` (self-edges not counted)."""
    return float(sum(d.graph.n_edges for d in data) / sum(d.graph.n_nodes for d in data))


def set_loss_weights(data: list[PreparedGraph], samples: list[Sample], settings: dict, key: str) -> None:
    """Give each training item its importance weights (``<key>.loss_weighting``, glasspipe.learn.training.weights): one
    histogram of the raw training labels of all A particles; left None when alpha = 0 (the plain loss)."""
    weighting = weighting_settings(settings, key)
    if weighting["alpha"] == 0:
        return
    masks = [s.typeid == A_TYPEID for s in samples]
    for item, w in zip(data, pooled_weights([s.targets for s in samples], masks, weighting), strict=True):
        item.weights = torch.as_tensor(w, dtype=torch.float32, device=item.targets.device)


def weighted_mse(prediction: torch.Tensor, item: PreparedGraph) -> torch.Tensor:
    """Mean squared error on A particles per label time, summed over times; each squared residual times its
    importance weight when ``item.weights`` is set (else exactly the plain loss)."""
    weights = None if item.weights is None else item.weights[item.mask]
    return mean_squared_error(prediction[item.mask], item.targets[item.mask], weights)


@torch.no_grad()
def validation_pearsons(model: torch.nn.Module, data: list[PreparedGraph], n_outputs: int, prepare=None) -> np.ndarray:
    """Per label time, the mean over validation configurations of the Pearson correlation on A particles.
    ``prepare(item)``, when given, is called before each configuration's forward (e.g. to set its temperature)."""
    if not data:
        return np.full(n_outputs, np.nan)
    model.eval()
    values = []
    for item in data:
        if prepare is not None:
            prepare(item)
        g = item.graph
        prediction = model(g.node_features, g.edge_vectors, g.senders, g.receivers)
        values.append(pearson_torch(prediction[item.mask].double(), item.targets[item.mask].double()))
    model.train()
    stacked = torch.stack(values).cpu().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


class GraphTask(trainer.Task):
    """What the graph networks' training tasks share: one configuration per step, in a random order drawn by
    a numpy Generator seeded with the training seed; the train loss of an epoch is the mean over its
    configurations of the loss per label time; validation by :func:`validation_pearsons`. Subclasses set
    ``train_data``, ``validation_data`` (:class:`PreparedGraph`) and ``n_outputs``."""

    train_data: list[PreparedGraph]
    validation_data: list[PreparedGraph]
    n_outputs: int

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(int(seed))

    def batches(self) -> np.ndarray:
        return self.rng.permutation(len(self.train_data))

    def epoch_loss(self, total: float) -> float:
        return total / len(self.train_data)

    def validate(self, model: torch.nn.Module) -> np.ndarray:
        return validation_pearsons(model, self.validation_data, self.n_outputs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
