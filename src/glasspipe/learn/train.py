"""The ridge baseline, the Bapst graph network's training task, and what the graph networks share.

Both entry points take lists of :class:`~glasspipe.learn.data.Sample` (training and validation
configurations), the model's settings (``config['models'][name]``) and an output directory, and write there:

ridge  ``model.json`` (see :mod:`glasspipe.learn.ridge`) and ``train_log.parquet`` (the penalty scan)
bapst  ``model.pt`` (plain ``state_dict`` of the best validation epoch, per network), ``hparams.json``
       (everything needed to rebuild the model and undo any target standardisation) and
       ``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s)

The graph network is trained by :mod:`glasspipe.learn.trainer` (seeding, Adam, schedule, clipping, selection
on validation, early stopping, checkpoints and resume, progress, write-out); this module holds its data
preparation and its loss. As in Bapst et al. (2020) by default: Adam at a constant learning rate, gradient
clipping by global norm, one configuration per step, mean squared error on the raw targets of the A
particles, a random cube symmetry applied to the edge vectors of each training step (``augment``), one
network per label time. After every epoch the mean over validation configurations of the Pearson
correlation on A particles is computed per label time; each network keeps its best epoch (one network per
time: on its own time; with ``multi_time_head``: on the mean over times). Without validation
configurations the last epoch is kept. ``patience`` (default None: never, as the original) stops training
after that many epochs without a better validation Pearson.

Departures, each a named setting (see :data:`BAPST_DEFAULTS` and the config schema): ``multi_time_head``
(one network, one output per time), ``standardise_targets`` (per-time mean and std of the training A
targets; predictions are de-standardised with the numbers stored in hparams.json), ``aggregation``,
``edge_features``, ``layer_norm``, ``graph_norm`` (see :mod:`glasspipe.learn.models`) and ``lr_schedule = 'cosine'``
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
schedule, which depends on it); see :mod:`glasspipe.learn.trainer`.

Shared by the graph networks (the Bapst GN and se3): :class:`PreparedGraph` (a configuration's graph and
targets on the device), :func:`weighted_mse` (their loss), :func:`validation_pearsons`, the data
preparation helpers and :class:`GraphTask` (one configuration per step in a random order).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

# pearson_torch: the graph networks' validation score stays in torch (why: glasspipe.correlation).
from glasspipe.correlation import pearson_torch
from glasspipe.io.atomic import write_json
from glasspipe.io.tables import write_table
from glasspipe.learn import trainer
from glasspipe.learn.data import Graph, Sample, build_graph, check_consistent
from glasspipe.learn.models import build_bapst, count_parameters, cube_symmetries
from glasspipe.learn.ridge import fit_ridge
from glasspipe.learn.trainer import (
    configuration_ids,
    mean_squared_error,
    nanmean_or_nan,
    none_if_nan,
    resolve_device,
)
from glasspipe.learn.weights import pooled_weights, weighting_settings
from glasspipe.learn.zoo.bapst import SPEC as BAPST_SPEC

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


def _a_rows(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    mask = sample.typeid == A_TYPEID
    return sample.descriptors[mask], sample.targets[mask]


# ----------------------------------------------------------------------------------------------- ridge


def train_ridge(train: list[Sample], validation: list[Sample], settings: dict, out_dir: str | Path) -> None:
    """Fit the ridge baseline on the descriptors of the A particles of ``train``; alpha chosen per time.

    settings: ``config['models']['ridge']`` (keys ``alphas``; ``enabled`` is not read here).
    Writes ``out_dir/model.json`` and ``out_dir/train_log.parquet``.
    """
    out_dir = Path(out_dir)
    if not train:
        raise ValueError("ridge training needs at least one training configuration")
    check_consistent(list(train) + list(validation), need_descriptors=True)
    started = time.perf_counter()
    alphas = settings.get("alphas", [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0])
    train_rows = [_a_rows(s) for s in train]
    validation_rows = [_a_rows(s) for s in validation]
    if sum(len(x) for x, _ in train_rows) == 0:
        raise ValueError("the training configurations hold no A particles")
    weighting = weighting_settings(settings, "models.ridge")  # importance-weighted loss (alpha 0: off)
    model, scan = fit_ridge(train_rows, validation_rows, alphas, train[0].descriptor_names, train[0].times, weighting)
    for t, (tau, alpha) in enumerate(zip(model.times, model.alpha, strict=True)):
        chosen = scan[(scan["time"] == tau) & scan["chosen"]]
        score = float(chosen["selection_pearson"].iloc[0]) if len(chosen) else float("nan")
        logger.info(
            "ridge: time %g (%d/%d): alpha %g, %s Pearson %.4f",
            tau,
            t + 1,
            len(model.times),
            alpha,
            model.selection,
            score,
        )
    data = model.to_dict()
    data["train_configurations"] = configuration_ids(train)
    data["validation_configurations"] = configuration_ids(validation)
    write_json(out_dir / "model.json", data)
    metadata = {
        "model": "ridge",
        "settings": dict(settings),
        "selection": model.selection,
        "train_configurations": configuration_ids(train),
        "validation_configurations": configuration_ids(validation),
        "wall_s": time.perf_counter() - started,
    }
    write_table(scan, out_dir / "train_log.parquet", metadata=metadata)


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
    """Give each training item its importance weights (``<key>.loss_weighting``, glasspipe.learn.weights): one
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


# ----------------------------------------------------------------------------------------------- bapst

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
    """The Bapst GN for :func:`glasspipe.learn.trainer.fit`: its graphs, its network and its loss."""

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

    graph_backend: how the edges are built (config key ``graph.backend``; glasspipe.learn.data.build_graph).

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
