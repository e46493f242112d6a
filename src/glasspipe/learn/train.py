"""Training of the ridge baseline and of the Bapst graph network, with resumable checkpoints.

Both trainers take lists of :class:`~glasspipe.learn.data.Sample` (training and validation configurations),
the model's settings (``config['models'][name]``) and an output directory, and write there:

ridge  ``model.json`` (see :mod:`glasspipe.learn.ridge`) and ``train_log.parquet`` (the penalty scan)
bapst  ``model.pt`` (plain ``state_dict`` of the best validation epoch, per network), ``hparams.json``
       (everything needed to rebuild the model and undo any target standardisation) and
       ``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s)

The graph network is trained as in Bapst et al. (2020) by default: Adam at a constant learning rate,
gradient clipping by global norm, one configuration per step, mean squared error on the raw targets of the
A particles, a random cube symmetry applied to the edge vectors of each training step (``augment``), one
network per label time. After every epoch the mean over validation configurations of the Pearson
correlation on A particles is computed per label time; each network keeps its best epoch (one network per
time: on its own time; with ``multi_time_head``: on the mean over times). Without validation
configurations the last epoch is kept.

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

A checkpoint (``checkpoint.pt``: model, optimiser, epoch, random states, best states, log) is written
atomically after every epoch; calling ``train_bapst`` again with the same settings continues from it (the
number of epochs may differ, except with a learning-rate schedule, which depends on it; a checkpoint
written with other settings or data is ignored). It is deleted once the final files are written, so calling
again after a finished run trains from scratch.
"""

from __future__ import annotations

import logging
import math
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glasspipe.io.atomic import atomic_path, write_json
from glasspipe.io.tables import write_table
from glasspipe.learn import checkpoint
from glasspipe.learn.data import Graph, Sample, build_graph, check_consistent
from glasspipe.learn.models import build_bapst, count_parameters, cube_symmetries, parameter_groups
from glasspipe.learn.ridge import fit_ridge
from glasspipe.learn.weights import pooled_weights, weighting_settings

logger = logging.getLogger(__name__)

A_TYPEID = 0
CHECKPOINT = checkpoint.FILENAME
LOG_COLUMNS = ["epoch", "train_loss", "validation_pearson", "wall_s"]


def resolve_device(name: str = "auto", key: str = "models.bapst.device") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error naming the config ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config key '{key}' = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"config key '{key}' = {name!r}; choose one of auto, cpu, cuda")
    return torch.device(name)


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


def configuration_ids(samples: list[Sample]) -> list[int]:
    return [int(s.configuration) for s in samples]


def none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


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


# ----------------------------------------------------------------------------------------------- bapst

# Settings of the graph network and their defaults; the defaults are the original's (Bapst et al. 2020).
BAPST_DEFAULTS = {
    "hidden": 64,
    "n_message_passing": 7,
    "learning_rate": 1e-4,
    "grad_clip": 1.0,
    "epochs": 100,
    "augment": True,
    "self_edges": True,
    # Departures from the original (see glasspipe.learn.models and the config schema):
    "multi_time_head": False,
    "standardise_targets": False,
    "aggregation": "sum",
    "edge_features": "vector",
    "layer_norm": False,
    "graph_norm": False,
    "vector_channels": 0,
    "graph_norm_eps": 1e-5,
    "lr_schedule": "constant",
}
LR_SCHEDULES = ("constant", "cosine")


def bapst_settings(settings: dict) -> dict:
    """``settings`` with every graph-network key filled in from :data:`BAPST_DEFAULTS`, typed."""
    merged = {**BAPST_DEFAULTS, **{k: v for k, v in settings.items() if k in BAPST_DEFAULTS}}
    out = {
        "hidden": int(merged["hidden"]),
        "n_message_passing": int(merged["n_message_passing"]),
        "learning_rate": float(merged["learning_rate"]),
        "grad_clip": float(merged["grad_clip"]),
        "epochs": int(merged["epochs"]),
        "augment": bool(merged["augment"]),
        "self_edges": bool(merged["self_edges"]),
        "multi_time_head": bool(merged["multi_time_head"]),
        "standardise_targets": bool(merged["standardise_targets"]),
        "aggregation": str(merged["aggregation"]),
        "edge_features": str(merged["edge_features"]),
        "layer_norm": bool(merged["layer_norm"]),
        "graph_norm": bool(merged["graph_norm"]),
        "vector_channels": int(merged["vector_channels"]),
        "graph_norm_eps": float(merged["graph_norm_eps"]),
        "lr_schedule": str(merged["lr_schedule"]),
    }
    if out["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(
            f"config key 'models.bapst.lr_schedule' = {out['lr_schedule']!r}; choose one of {LR_SCHEDULES}"
        )
    return out


def target_standardisation(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Per-time mean and std of the targets over the A particles of ``samples`` (std 1 where it is 0)."""
    values = np.concatenate([s.targets[s.typeid == A_TYPEID] for s in samples])
    if len(values) == 0:
        raise ValueError("the training configurations hold no A particles")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


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
    squared = (prediction[item.mask] - item.targets[item.mask]) ** 2
    if item.weights is not None:
        squared = squared * item.weights[item.mask]
    return torch.mean(squared, dim=0).sum()


def pearson_torch(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson correlation of two (n, T) tensors, NaN where undefined."""
    p = prediction - prediction.mean(dim=0)
    t = target - target.mean(dim=0)
    denominator = torch.sqrt((p * p).sum(dim=0) * (t * t).sum(dim=0))
    r = (p * t).sum(dim=0) / denominator
    return torch.where(denominator > 0, r, torch.full_like(r, float("nan")))


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


def nanmean_or_nan(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        return float("nan")
    return float(np.nanmean(values))


def state_to_cpu(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def scheduled_learning_rate(base: float, schedule: str, step: int, total_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total_steps``."""
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    return base


def _assemble_best(model: torch.nn.Module, best: list[dict]) -> dict:
    """The state dict made of each independent network's best epoch (one group, or one per label time)."""
    if len(best) == 1:
        return best[0]["state"]
    state = {}
    for t, entry in enumerate(best):
        prefix = f"networks.{t}."
        state.update({k: v for k, v in entry["state"].items() if k.startswith(prefix)})
    return state


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
    keeping its own best epoch.
    """
    out_dir = Path(out_dir)
    if not train:
        raise ValueError("graph network training needs at least one training configuration")
    train, validation = list(train), list(validation)
    check_consistent(train + validation)
    opts = bapst_settings(settings)
    device = resolve_device(settings.get("device", "auto"))
    times = train[0].times
    n_outputs = len(times)
    epochs, grad_clip, augment = opts["epochs"], opts["grad_clip"], opts["augment"]

    if opts["standardise_targets"]:
        mean, std = target_standardisation(train)
    else:  # raw targets, as the original
        mean, std = np.zeros(n_outputs), np.ones(n_outputs)
    started = time.perf_counter()
    without_a = [s.configuration for s in train if not np.any(s.typeid == A_TYPEID)]
    if without_a:
        logger.warning("bapst: training configurations %s hold no A particles and are left out", without_a)
    train_data = [
        PreparedGraph(s, r_cut, mean, std, device, graph_backend) for s in train if s.configuration not in without_a
    ]
    if not train_data:
        raise ValueError("the training configurations hold no A particles")
    validation_data = [PreparedGraph(s, r_cut, mean, std, device, graph_backend) for s in validation]
    n_edges = [d.graph.n_edges for d in train_data]
    # Incoming edges per particle, self-edge included when the model adds one.
    mean_degree = float(np.sum(n_edges) / sum(d.graph.n_nodes for d in train_data)) + float(opts["self_edges"])
    logger.info(
        "bapst: %d training and %d validation graphs built in %.1f s (r_cut %g, %.1f incoming edges per "
        "particle), device %s",
        len(train_data),
        len(validation_data),
        time.perf_counter() - started,
        r_cut,
        mean_degree,
        device,
    )

    torch.manual_seed(int(seed))
    model = build_bapst(
        n_outputs,
        opts["multi_time_head"],
        hidden=opts["hidden"],
        n_message_passing=opts["n_message_passing"],
        self_edges=opts["self_edges"],
        aggregation=opts["aggregation"],
        mean_degree=mean_degree if opts["aggregation"] == "mean_degree" else 1.0,
        edge_features=opts["edge_features"],
        layer_norm=opts["layer_norm"],
        graph_norm=opts["graph_norm"],
        vector_channels=opts["vector_channels"],
        graph_norm_eps=opts["graph_norm_eps"],
    ).to(device)
    groups = parameter_groups(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts["learning_rate"])
    rng = np.random.default_rng(int(seed))
    symmetries = cube_symmetries().to(device)
    total_steps = epochs * len(train_data)

    fingerprint = {
        **{k: v for k, v in opts.items() if k != "epochs"},
        "r_cut": float(r_cut),
        "seed": int(seed),
        "times": [float(t) for t in times],
        "train_configurations": configuration_ids(train),
        "validation_configurations": configuration_ids(validation),
        "n_particles": [int(s.n_particles) for s in train + validation],
    }
    if opts["lr_schedule"] != "constant":  # the schedule depends on the number of epochs
        fingerprint["epochs"] = epochs
    set_loss_weights(train_data, [s for s in train if s.configuration not in without_a], settings, "models.bapst")
    if train_data[0].weights is not None:  # (off: the fingerprint of older checkpoints is unchanged)
        fingerprint["loss_weighting"] = weighting_settings(settings, "models.bapst")
    checkpoint_path = out_dir / CHECKPOINT
    rows: list[dict] = []
    # One entry per independently trained network: its best epoch's state, epoch and validation Pearson.
    best: list[dict] = [{"state": None, "epoch": 0, "pearson": float("nan")} for _ in groups]
    start_epoch = 0
    state = checkpoint.load(checkpoint_path, fingerprint, device)
    if state is not None:
        start_epoch, rows = checkpoint.restore(state, model, optimizer, rng)
        best = [
            {
                "state": checkpoint.state_on_cpu(b["state"]),
                "epoch": int(b["epoch"]),
                "pearson": float(b["pearson"]),
            }
            for b in state["best"]
        ]
        logger.info("bapst: resuming from %s after epoch %d", checkpoint_path, start_epoch)
        if start_epoch > epochs:
            logger.warning("bapst: the checkpoint already holds %d epochs, more than the %d asked", start_epoch, epochs)

    model.train()
    from glasspipe.progress import Progress

    meter = Progress("bapst training", epochs, "epochs", start=min(start_epoch, epochs))
    for epoch in range(start_epoch + 1, epochs + 1):
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for k, index in enumerate(rng.permutation(len(train_data))):
            lr = scheduled_learning_rate(
                opts["learning_rate"], opts["lr_schedule"], (epoch - 1) * len(train_data) + k, total_steps
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            item = train_data[index]
            g = item.graph
            edges = g.edge_vectors
            if augment:
                edges = edges @ symmetries[int(rng.integers(len(symmetries)))].T
            prediction = model(g.node_features, edges, g.senders, g.receivers)
            # Mean squared error on A particles; per label time, summed over times (for one network per
            # time, the sum of independent losses: each network gets the gradient of its own).
            loss = weighted_mse(prediction, item)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for params in groups:  # clipped per network, as when training them one by one
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            loss_sum += loss.detach() / n_outputs
            meter.update(epoch - 1 + (k + 1) / len(train_data))  # in fractional epochs: steady within long epochs
        train_loss = float(loss_sum.item()) / len(train_data)
        per_time = validation_pearsons(model, validation_data, n_outputs)
        scores = [nanmean_or_nan(per_time)] if len(groups) == 1 else [float(v) for v in per_time]
        for entry, score in zip(best, scores, strict=True):
            improved = (
                entry["state"] is None
                or not validation_data
                or (math.isfinite(score) and not score <= entry["pearson"])
            )
            if improved:
                entry.update(state=state_to_cpu(model), epoch=epoch, pearson=score)
        validation_pearson = nanmean_or_nan(per_time)
        wall = time.perf_counter() - epoch_start
        rows.append(
            {"epoch": epoch, "train_loss": train_loss, "validation_pearson": validation_pearson, "wall_s": wall}
        )
        logger.info(
            "bapst: epoch %d/%d train loss %.4g validation Pearson %.4f (best %s at epoch %s) %.1f s",
            epoch,
            epochs,
            train_loss,
            validation_pearson,
            ", ".join(f"{b['pearson']:.4f}" for b in best),
            ", ".join(str(b["epoch"]) for b in best),
            wall,
        )
        checkpoint.save(
            checkpoint_path, checkpoint.training_state(fingerprint, epoch, model, optimizer, rng, best, rows)
        )

    for entry in best:  # epochs == 0 cannot happen with a valid config; keep the current weights
        if entry["state"] is None:
            entry["state"] = state_to_cpu(model)
    best_state = _assemble_best(model, best)
    best_epochs = [int(b["epoch"]) for b in best]
    best_pearsons = [none_if_nan(b["pearson"]) for b in best]
    hparams = {
        "model": "bapst",
        "model_class": type(model).__module__ + "." + type(model).__qualname__,
        **model.hparams(),
        "multi_time_head": opts["multi_time_head"],
        "r_cut": float(r_cut),
        "graph_backend": graph_backend,
        "times": [float(t) for t in times],
        "standardise_targets": opts["standardise_targets"],
        "target_mean": np.asarray(mean, dtype=np.float64).tolist(),
        "target_std": np.asarray(std, dtype=np.float64).tolist(),
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
        "epochs": len(rows),
        "n_parameters": count_parameters(model),
        "learning_rate": opts["learning_rate"],
        "lr_schedule": opts["lr_schedule"],
        "grad_clip": grad_clip,
        "augment": augment,
        "seed": int(seed),
        "device": str(device),
        "train_configurations": configuration_ids(train),
        "validation_configurations": configuration_ids(validation),
        "wall_s": float(sum(r["wall_s"] for r in rows)),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(best_state, tmp)
    write_json(out_dir / "hparams.json", hparams)
    log = pd.DataFrame(rows, columns=LOG_COLUMNS).astype({"epoch": "int64"})
    write_table(
        log,
        out_dir / "train_log.parquet",
        metadata={
            "model": "bapst",
            "settings": dict(settings),
            **{k: hparams[k] for k in ("best_epoch", "n_parameters", "r_cut", "seed", "device")},
        },
    )
    checkpoint_path.unlink(missing_ok=True)
    logger.info(
        "bapst: wrote %s (best epoch %s, validation Pearson %s)", out_dir / "model.pt", best_epochs, best_pearsons
    )
