"""Training of the ridge baseline and of the Bapst graph network, with resumable checkpoints.

Both trainers take lists of :class:`~glasspipe.learn.data.Sample` (training and validation configurations),
the model's settings (``config['models'][name]``) and an output directory, and write there:

ridge  ``model.json`` (see :mod:`glasspipe.learn.ridge`) and ``train_log.parquet`` (the penalty scan)
bapst  ``model.pt`` (plain ``state_dict`` of the epoch with the best validation correlation),
       ``hparams.json`` (everything needed to rebuild the model and undo the target standardisation) and
       ``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s)

The graph network is trained as in Bapst et al. (2020): Adam, gradient clipping by global norm, one
configuration per step, mean squared error on A particles only, a random cube symmetry applied to the edge
vectors of each training step when ``augment``. Targets are standardised per label time with the mean and
standard deviation over the A particles of the training configurations; predictions are de-standardised
with the same numbers (stored in hparams.json). After every epoch the mean over validation configurations
(and label times) of the Pearson correlation on A particles is logged, and the best epoch is kept. Without
validation configurations the last epoch is kept.

A checkpoint (``checkpoint.pt``: model, optimiser, epoch, random states, best state, log) is written
atomically after every epoch; calling ``train_bapst`` again with the same settings continues from it (the
number of epochs may differ; a checkpoint written with other settings or data is ignored). It is deleted
once the final files are written, so calling again after a finished run trains from scratch.
"""

from __future__ import annotations

import copy
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
from glasspipe.learn.data import Graph, Sample, build_graph, check_consistent
from glasspipe.learn.models import BapstGNN, count_parameters, cube_symmetries
from glasspipe.learn.ridge import fit_ridge

logger = logging.getLogger(__name__)

A_TYPEID = 0
CHECKPOINT = "checkpoint.pt"
LOG_COLUMNS = ["epoch", "train_loss", "validation_pearson", "wall_s"]


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error naming the key."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "config key 'models.bapst.device' = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'"
        )
    if name not in ("cpu", "cuda"):
        raise ValueError(f"config key 'models.bapst.device' = {name!r}; choose one of auto, cpu, cuda")
    return torch.device(name)


def _a_rows(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    mask = sample.typeid == A_TYPEID
    return sample.descriptors[mask], sample.targets[mask]


def _configurations(samples: list[Sample]) -> list[int]:
    return [int(s.configuration) for s in samples]


def _none_if_nan(value: float) -> float | None:
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
    model, scan = fit_ridge(train_rows, validation_rows, alphas, train[0].descriptor_names, train[0].times)
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
    data["train_configurations"] = _configurations(train)
    data["validation_configurations"] = _configurations(validation)
    write_json(out_dir / "model.json", data)
    metadata = {
        "model": "ridge",
        "settings": dict(settings),
        "selection": model.selection,
        "train_configurations": _configurations(train),
        "validation_configurations": _configurations(validation),
        "wall_s": time.perf_counter() - started,
    }
    write_table(scan, out_dir / "train_log.parquet", metadata=metadata)


# ----------------------------------------------------------------------------------------------- bapst


def target_standardisation(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Per-time mean and std of the targets over the A particles of ``samples`` (std 1 where it is 0)."""
    values = np.concatenate([s.targets[s.typeid == A_TYPEID] for s in samples])
    if len(values) == 0:
        raise ValueError("the training configurations hold no A particles")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


class _Prepared:
    """A graph with its standardised targets and A mask, on the training device."""

    def __init__(self, sample: Sample, r_cut: float, mean: np.ndarray, std: np.ndarray, device: torch.device):
        self.configuration = sample.configuration
        self.graph: Graph = build_graph(sample, r_cut).to(device)
        targets = (sample.targets - mean) / std
        self.targets = torch.as_tensor(targets, dtype=torch.float32, device=device)
        self.mask = torch.as_tensor(sample.typeid == A_TYPEID, device=device)


def pearson_torch(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson correlation of two (n, T) tensors, NaN where undefined."""
    p = prediction - prediction.mean(dim=0)
    t = target - target.mean(dim=0)
    denominator = torch.sqrt((p * p).sum(dim=0) * (t * t).sum(dim=0))
    r = (p * t).sum(dim=0) / denominator
    return torch.where(denominator > 0, r, torch.full_like(r, float("nan")))


@torch.no_grad()
def _validation_pearson(model: BapstGNN, data: list[_Prepared]) -> float:
    """Mean over configurations and label times of the Pearson correlation on A particles."""
    if not data:
        return float("nan")
    model.eval()
    values = []
    for item in data:
        g = item.graph
        prediction = model(g.node_features, g.edge_vectors, g.senders, g.receivers)
        values.append(pearson_torch(prediction[item.mask].double(), item.targets[item.mask].double()))
    model.train()
    stacked = torch.stack(values).cpu().numpy()
    if np.isnan(stacked).all():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(stacked))


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write the checkpoint atomically (a function of its own so tests can interrupt a run here)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, fingerprint: dict, device: torch.device) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: start again rather than stop
        logger.warning("checkpoint %s is not readable (%s); training starts from scratch", path, err)
        return None
    if state.get("fingerprint") != fingerprint:
        logger.warning("checkpoint %s was written with other settings or data; training starts from scratch", path)
        return None
    return state


def _state_to_cpu(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_bapst(
    train: list[Sample],
    validation: list[Sample],
    settings: dict,
    r_cut: float,
    seed: int,
    out_dir: str | Path,
) -> None:
    """Train the Bapst graph network (see the module docstring); resumes from ``out_dir/checkpoint.pt``.

    settings: ``config['models']['bapst']``: hidden, n_message_passing, learning_rate, grad_clip, epochs,
    augment, device ('auto' | 'cpu' | 'cuda').
    """
    out_dir = Path(out_dir)
    if not train:
        raise ValueError("graph network training needs at least one training configuration")
    train, validation = list(train), list(validation)
    check_consistent(train + validation)
    hidden = int(settings.get("hidden", 64))
    n_message_passing = int(settings.get("n_message_passing", 7))
    learning_rate = float(settings.get("learning_rate", 1e-4))
    grad_clip = float(settings.get("grad_clip", 1.0))
    epochs = int(settings.get("epochs", 100))
    augment = bool(settings.get("augment", True))
    device = resolve_device(settings.get("device", "auto"))
    times = train[0].times
    n_outputs = len(times)

    mean, std = target_standardisation(train)
    started = time.perf_counter()
    without_a = [s.configuration for s in train if not np.any(s.typeid == A_TYPEID)]
    if without_a:
        logger.warning("bapst: training configurations %s hold no A particles and are left out", without_a)
    train_data = [_Prepared(s, r_cut, mean, std, device) for s in train if s.configuration not in without_a]
    validation_data = [_Prepared(s, r_cut, mean, std, device) for s in validation]
    n_edges = [d.graph.n_edges for d in train_data]
    logger.info(
        "bapst: %d training and %d validation graphs built in %.1f s "
        "(r_cut %g, mean %.1f edges per particle), device %s",
        len(train_data),
        len(validation_data),
        time.perf_counter() - started,
        r_cut,
        float(np.sum(n_edges) / max(1, sum(d.graph.n_nodes for d in train_data))),
        device,
    )

    torch.manual_seed(int(seed))
    mean_degree = float(np.sum(n_edges) / max(1, sum(d.graph.n_nodes for d in train_data)))
    model = BapstGNN(n_outputs, hidden=hidden, n_message_passing=n_message_passing, mean_degree=mean_degree).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    rng = np.random.default_rng(int(seed))
    symmetries = cube_symmetries().to(device)

    fingerprint = {
        "hidden": hidden,
        "n_message_passing": n_message_passing,
        "learning_rate": learning_rate,
        "grad_clip": grad_clip,
        "augment": augment,
        "r_cut": float(r_cut),
        "seed": int(seed),
        "times": [float(t) for t in times],
        "train_configurations": _configurations(train),
        "validation_configurations": _configurations(validation),
        "n_particles": [int(s.n_particles) for s in train + validation],
    }
    checkpoint_path = out_dir / CHECKPOINT
    rows: list[dict] = []
    best_state: dict | None = None
    best_epoch, best_pearson = 0, float("nan")
    start_epoch = 0
    state = _load_checkpoint(checkpoint_path, fingerprint, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch = int(state["epoch"])
        rows = list(state["log"])
        best_state = None if state["best_state"] is None else {k: v.cpu() for k, v in state["best_state"].items()}
        best_epoch, best_pearson = int(state["best_epoch"]), float(state["best_pearson"])
        logger.info("bapst: resuming from %s after epoch %d", checkpoint_path, start_epoch)
        if start_epoch > epochs:
            logger.warning("bapst: the checkpoint already holds %d epochs, more than the %d asked", start_epoch, epochs)

    model.train()
    for epoch in range(start_epoch + 1, epochs + 1):
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for index in rng.permutation(len(train_data)):
            item = train_data[index]
            g = item.graph
            edges = g.edge_vectors
            if augment:
                edges = edges @ symmetries[int(rng.integers(len(symmetries)))].T
            prediction = model(g.node_features, edges, g.senders, g.receivers)
            loss = torch.mean((prediction[item.mask] - item.targets[item.mask]) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            loss_sum += loss.detach()
        train_loss = float(loss_sum.item()) / len(train_data)
        validation_pearson = _validation_pearson(model, validation_data)
        improved = (
            best_state is None
            or not validation_data
            or (math.isfinite(validation_pearson) and not validation_pearson <= best_pearson)
        )
        if improved:
            best_state = _state_to_cpu(model)
            best_epoch, best_pearson = epoch, validation_pearson
        wall = time.perf_counter() - epoch_start
        rows.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "validation_pearson": validation_pearson,
                "wall_s": wall,
            }
        )
        logger.info(
            "bapst: epoch %d/%d train loss %.4f validation Pearson %.4f (best %.4f at epoch %d) %.1f s",
            epoch,
            epochs,
            train_loss,
            validation_pearson,
            best_pearson,
            best_epoch,
            wall,
        )
        _save_checkpoint(
            checkpoint_path,
            {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "numpy_rng": copy.deepcopy(rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(),
                "best_state": best_state,
                "best_epoch": best_epoch,
                "best_pearson": best_pearson,
                "log": rows,
            },
        )

    if best_state is None:  # epochs == 0 cannot happen with a valid config; keep the initial weights
        best_state = _state_to_cpu(model)
    hparams = {
        "model": "bapst",
        "model_class": "glasspipe.learn.models.BapstGNN",
        **model.hparams(),
        "r_cut": float(r_cut),
        "times": [float(t) for t in times],
        "target_mean": mean.tolist(),
        "target_std": std.tolist(),
        "target_standardisation": (
            "per label time, mean and std over the A particles of the training configurations; "
            "prediction = output * target_std + target_mean"
        ),
        "edge_vectors": "r_receiver - r_sender, minimum image, every ordered pair closer than r_cut",
        "node_features": "one-hot particle type (0 = A, 1 = B)",
        "best_epoch": best_epoch,
        "best_validation_pearson": _none_if_nan(best_pearson),
        "epochs": len(rows),
        "n_parameters": count_parameters(model),
        "learning_rate": learning_rate,
        "grad_clip": grad_clip,
        "augment": augment,
        "seed": int(seed),
        "device": str(device),
        "train_configurations": _configurations(train),
        "validation_configurations": _configurations(validation),
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
    logger.info("bapst: wrote %s (epoch %d, validation Pearson %.4f)", out_dir / "model.pt", best_epoch, best_pearson)
