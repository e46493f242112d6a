"""One trainer for the networks: the Bapst GN, se3 and the MLP (glasspipe.learn.models.bapst, .se3, .mlp).

A network's module describes its training as a :class:`Task` (the network, the batches of an epoch, the loss,
the validation score, the hyper-parameters it records); :func:`fit` does the rest, the same way for all:

- **seeding**: ``torch.manual_seed(seed)`` right before :meth:`Task.build` (the initial weights); the task's
  own generator (``Task.rng``, numpy or torch, seeded by the task) draws the batches and augmentations;
- **optimiser**: Adam at ``learning_rate`` (``weight_decay``), the learning rate of each step set from
  ``lr_schedule`` ('constant', or 'cosine': decayed to 0 over ``epochs`` x steps per epoch);
- **a step**: the task's loss, ``zero_grad``, backward, the gradient clipped to ``grad_clip`` (global norm)
  per independently trained network (:meth:`Task.networks`; not at all when ``grad_clip`` is None), Adam's
  step. The epoch's train loss is :meth:`Task.epoch_loss` of the float64 sum of the steps' contributions;
- **selection on validation**: after every epoch, :meth:`Task.validate` gives the validation Pearson per label
  time; each independent network keeps the state of its best epoch (one network: on the mean over times,
  NaN ignored; one network per label time: on its own time). A NaN score never counts as better; without
  validation configurations the last epoch is kept;
- **early stopping** (``patience``, None = never): before an epoch, training stops when no network has
  improved for more than ``patience`` epochs (validation configurations only; the test configurations are
  never read). The best epochs are kept as usual;
- **fingerprint and resume**: ``checkpoint.pt`` (:mod:`glasspipe.learn.training.checkpoint`) is written atomically
  after every epoch; a later call with the same fingerprint continues from it, drawing the same random
  numbers as an uninterrupted run, so it ends with the same weights. The fingerprint
  (:func:`checkpoint_fingerprint`) holds the model's settings that change the numbers, the seed, the label
  times, the configuration indices and a SHA-256 of the data the task reads (:func:`data_hash`); a
  checkpoint written with another fingerprint is ignored with a warning and training starts from scratch;
- **progress**: :class:`glasspipe.progress.Progress` in fractional epochs, and one log line per epoch;
- **write-out**: ``model.pt`` (a plain state dict: each network's best epoch), ``hparams.json``
  (:meth:`Task.hparams`) and, last, ``train_log.parquet`` (epoch, train_loss, validation_pearson, wall_s;
  metadata: the model's config section and ``Task.log_keys`` of the hparams), each atomically; then the
  checkpoint is deleted, so calling again after a finished run trains from scratch.

Numbers: the trainer performs the operations of the per-model loops it replaced in the same order (the same
random draws, the same float operations), so a model trains to the same bits as before.
"""

from __future__ import annotations

import hashlib
import logging
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from glasspipe.io.atomic import atomic_path, write_json
from glasspipe.io.tables import write_table
from glasspipe.learn.samples import Sample
from glasspipe.learn.training import checkpoint
from glasspipe.learn.training.weights import weighting_settings
from glasspipe.progress import Progress

logger = logging.getLogger(__name__)

LOG_COLUMNS = ["epoch", "train_loss", "validation_pearson", "wall_s"]
LR_SCHEDULES = ("constant", "cosine")
# Settings the trainer reads that do not change the numbers of an epoch: a checkpoint stays valid when they
# change (the number of epochs does change the cosine schedule: see checkpoint_fingerprint()).
TRAINER_KEYS = ("epochs", "patience", "device")
# Version of the checkpoint's layout; checkpoints of another version (those of the per-model loops before
# this trainer) are ignored like any other mismatch.
CHECKPOINT_FORMAT = 2


# ------------------------------------------------------------------------------------------ small helpers


def resolve_device(name: str = "auto", key: str = "models.bapst.device") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error naming the config ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config key '{key}' = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"config key '{key}' = {name!r}; choose one of auto, cpu, cuda")
    return torch.device(name)


def patience_setting(value, key: str) -> int | None:
    """The early-stopping patience of config key ``key``: None (never stop) or an integer >= 1 (epochs)."""
    if value is None:
        return None
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"config key '{key}' = {value!r}; use an integer >= 1 (epochs) or null (never stop)")
    return int(value)


def schedule_setting(value, key: str) -> str:
    """A learning-rate schedule of :data:`LR_SCHEDULES`; anything else is an error naming ``key``."""
    if value not in LR_SCHEDULES:
        raise ValueError(f"config key '{key}' = {value!r}; choose one of {LR_SCHEDULES}")
    return str(value)


def scheduled_learning_rate(base: float, schedule: str, step: int, total_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total_steps``."""
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    return base


def configuration_ids(samples: list[Sample]) -> list[int]:
    return [int(s.configuration) for s in samples]


def nanmean_or_nan(values) -> float:
    """Mean of ``values`` ignoring NaN; NaN (and no warning) when there is none."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        return float("nan")
    return float(np.nanmean(values))


def none_if_nan(value: float | None) -> float | None:
    """``value`` as a float, None when it is None or not finite (for JSON)."""
    return None if value is None or not math.isfinite(value) else float(value)


def state_to_cpu(model: torch.nn.Module) -> dict:
    """A copy of the model's state dict on the CPU (the best epoch's weights, kept while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def mean_squared_error(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None):
    """The networks' regression loss: per label time (column) the mean over rows of the squared residual,
    each times its importance weight when ``weights`` is given (glasspipe.learn.training.weights), summed over times.
    (n, T) tensors; a scalar tensor."""
    squared = (prediction - target) ** 2
    if weights is not None:
        squared = squared * weights
    return torch.mean(squared, dim=0).sum()


def vector_targets(sample: Sample) -> np.ndarray | None:
    """The sample's displacement-vector target, (N, T, 3) at its label times, or None when it has none.

    Read from the attribute ``vector_targets`` (absent on samples of older loaders); (N, 3) is taken as one
    vector for every label time.
    """
    value = getattr(sample, "vector_targets", None)
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    n, t = sample.n_particles, len(sample.times)
    if value.shape == (n, 3):
        value = np.repeat(value[:, None, :], t, axis=1)
    if value.shape != (n, t, 3):
        raise ValueError(
            f"configuration {sample.configuration}: vector target of shape {value.shape}, expected ({n}, {t}, 3)"
        )
    return value


def data_hash(samples: list[Sample], descriptors: bool = False) -> str:
    """SHA-256 over what training reads of ``samples``: configuration index, box, types, positions, label
    times, targets and vector targets, and with ``descriptors`` the descriptor names and values. Part of the
    checkpoint fingerprint: new labels (or descriptors), new training."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(np.asarray([s.configuration, s.box_length], dtype=np.float64).tobytes())
        for array in (s.typeid, s.positions, s.times, s.targets):
            digest.update(np.ascontiguousarray(array).tobytes())
        vectors = vector_targets(s)
        if vectors is not None:
            digest.update(np.ascontiguousarray(vectors).tobytes())
        if descriptors and s.descriptors is not None:
            digest.update("\n".join(s.descriptor_names).encode())
            digest.update(np.ascontiguousarray(s.descriptors).tobytes())
    return digest.hexdigest()


def recorded_settings(opts: dict) -> dict:
    """``opts`` for hparams.json: ``patience`` only when set, so that a run without early stopping records
    what it recorded before the option existed (for the Bapst GN and the MLP, whose default is off)."""
    return {k: v for k, v in opts.items() if not (k == "patience" and v is None)}


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, groups: list[list], grad_clip) -> None:
    """One optimiser step on ``loss``: zero_grad, backward, each group's gradient clipped to ``grad_clip``
    (global norm over the group; None: no clipping), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        for params in groups:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


# ---------------------------------------------------------------------------------------------- the task


class Task:
    """What one network's module gives the trainer. Subclasses set the attributes and implement the methods.

    Attributes:
      name: the model ('bapst', 'se3', 'mlp'): log lines, the progress label, config keys ``models.<name>.*``.
      settings: the model's config section as given (``models.<name>``), recorded in the train log's metadata;
        its ``loss_weighting`` block enters the fingerprint when the weighting is on.
      fingerprint: the model's settings that change the numbers (epochs, patience and device are dropped).
      train, validation: the samples trained on and validated on (fingerprint, data hash).
      inputs: 'graph' or 'descriptors': what of the samples the data hash covers (descriptors only for the latter).
      device: where the model is trained.
      epochs, patience, learning_rate (Adam's, peak of the schedule), lr_schedule, weight_decay, grad_clip.
      rng: the generator the task draws its batches from (numpy or torch); saved in checkpoints.
      log_keys: hparams keys copied into the train log's metadata.
    """

    name: str
    settings: dict
    fingerprint: dict
    train: list[Sample]
    validation: list[Sample]
    inputs: str = "graph"
    device: torch.device = torch.device("cpu")
    epochs: int
    patience: int | None = None
    learning_rate: float
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    grad_clip: float | None = None
    rng: np.random.Generator | torch.Generator
    log_keys: tuple[str, ...] = ("best_epoch",)

    def build(self) -> torch.nn.Module:
        """The untrained network (called right after ``torch.manual_seed(seed)``; moved to ``device``)."""
        raise NotImplementedError

    def batches(self) -> Sequence:
        """One epoch's batches in training order, drawn from ``rng``; the same number every epoch."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to minimise on ``batch``, its contribution to the epoch's train-loss sum: a detached
        tensor, accumulated in float64 on the device)."""
        raise NotImplementedError

    def epoch_loss(self, total: float) -> float:
        """The epoch's train loss from the sum of the steps' contributions."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module) -> np.ndarray:
        """(T,) mean over validation configurations of the Pearson correlation per label time (NaN where
        undefined); leaves the model in training mode."""
        raise NotImplementedError

    def networks(self, model: torch.nn.Module) -> list[str]:
        """State-dict prefixes of the independently trained networks (one per label time, or [''] for one):
        each is clipped on its own and keeps its own best epoch."""
        return [""]

    def start(self, model: torch.nn.Module, resumed: dict | None) -> dict:
        """Called once before the first epoch: ``resumed`` is the extra state of the checkpoint resumed from,
        None on a fresh start (e.g. se3's pretraining runs then). Returns the extra state saved with every
        checkpoint and passed to :meth:`hparams` (``Result.extra``)."""
        return dict(resumed or {})

    def hparams(self, model: torch.nn.Module, result: Result) -> dict:
        """hparams.json: everything needed to rebuild the model and read its outputs."""
        raise NotImplementedError


class Result:
    """What training produced, for :meth:`Task.hparams`.

    best: one dict per independent network (state, epoch, pearson); rows: the training log (dicts of
    :data:`LOG_COLUMNS`); fingerprint: the checkpoint fingerprint; extra: :meth:`Task.start`'s state;
    stopped_early: whether early stopping ended training; device: where it trained.
    """

    def __init__(self, best, rows, fingerprint, extra, stopped_early, device):
        self.best, self.rows, self.fingerprint, self.extra = best, rows, fingerprint, extra
        self.stopped_early, self.device = stopped_early, device

    @property
    def best_epochs(self) -> list[int]:
        return [int(b["epoch"]) for b in self.best]

    @property
    def best_pearsons(self) -> list[float | None]:
        return [none_if_nan(b["pearson"]) for b in self.best]

    @property
    def wall_s(self) -> float:
        """Training wall time, summed over the epochs (of every resumed part)."""
        return float(sum(r["wall_s"] for r in self.rows))


def provenance(seed: int, train: list[Sample], validation: list[Sample], result: Result) -> dict:
    """The hparams entries every network records: seed, configurations, wall time and versions."""
    return {
        "seed": int(seed),
        "train_configurations": configuration_ids(train),
        "validation_configurations": configuration_ids(validation),
        "wall_s": result.wall_s,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def checkpoint_fingerprint(task: Task, seed: int) -> dict:
    """What a checkpoint must have been written with to be resumed: see the module docstring."""
    out = {
        "format": CHECKPOINT_FORMAT,
        "model": task.name,
        "settings": {k: v for k, v in task.fingerprint.items() if k not in TRAINER_KEYS},
        "learning_rate": float(task.learning_rate),
        "lr_schedule": task.lr_schedule,
        "weight_decay": float(task.weight_decay),
        "grad_clip": None if task.grad_clip is None else float(task.grad_clip),
        "seed": int(seed),
        "times": [float(t) for t in task.train[0].times],
        "train_configurations": configuration_ids(task.train),
        "validation_configurations": configuration_ids(task.validation),
        "data_sha256": data_hash(task.train + task.validation, descriptors=task.inputs == "descriptors"),
    }
    if task.lr_schedule != "constant":  # the schedule depends on the number of epochs
        out["epochs"] = int(task.epochs)
    weighting = weighting_settings(task.settings, f"models.{task.name}")
    if weighting["alpha"] > 0:  # alpha 0 is the plain loss, whatever the other weighting keys
        out["loss_weighting"] = weighting
    return out


# ----------------------------------------------------------------------------------------------- training


def _stale(best: list[dict], epoch: int, patience: int | None, validated: bool) -> bool:
    """Early stopping: before ``epoch``, has no network improved for more than ``patience`` epochs?"""
    return patience is not None and validated and epoch - max(b["epoch"] for b in best) > patience


def _assemble(best: list[dict], prefixes: list[str]) -> dict:
    """The state dict made of each independent network's best epoch."""
    if len(best) == 1:
        return best[0]["state"]
    state = {}
    for prefix, entry in zip(prefixes, best, strict=True):
        state.update({k: v for k, v in entry["state"].items() if k.startswith(prefix)})
    return state


def fit(task: Task, seed: int, out_dir: str | Path) -> None:
    """Train ``task``'s network and write ``out_dir`` (see the module docstring); resumes from
    ``out_dir/checkpoint.pt`` when its fingerprint matches. seed: the training seed (initial weights)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name, epochs, validated = task.name, task.epochs, bool(task.validation)
    fp = checkpoint_fingerprint(task, seed)

    torch.manual_seed(int(seed))
    model = task.build().to(task.device)
    prefixes = task.networks(model)
    # Each independent network's parameters, in the model's order: clipped on their own, as when trained alone.
    groups = [[p for key, p in model.named_parameters() if key.startswith(prefix)] for prefix in prefixes]
    optimizer = torch.optim.Adam(model.parameters(), lr=task.learning_rate, weight_decay=task.weight_decay)

    checkpoint_path = out_dir / checkpoint.FILENAME
    rows: list[dict] = []
    # One entry per independent network: its best epoch's state, epoch and validation Pearson.
    best: list[dict] = [{"state": None, "epoch": 0, "pearson": float("nan")} for _ in prefixes]
    start_epoch = 0
    state = checkpoint.load(checkpoint_path, fp, task.device)
    if state is None:
        extra = task.start(model, None)
    else:
        start_epoch, rows = checkpoint.restore(state, model, optimizer, task.rng)
        best = [
            {"state": checkpoint.state_on_cpu(b["state"]), "epoch": int(b["epoch"]), "pearson": float(b["pearson"])}
            for b in state["best"]
        ]
        extra = task.start(model, state["extra"])
        logger.info("%s: resuming from %s after epoch %d", name, checkpoint_path, start_epoch)
        if start_epoch > epochs:
            logger.warning(
                "%s: the checkpoint already holds %d epochs, more than the %d asked", name, start_epoch, epochs
            )

    model.train()
    meter = Progress(f"{name} training", epochs, "epochs", start=min(start_epoch, epochs))
    stopped_early = False
    for epoch in range(start_epoch + 1, epochs + 1):
        if _stale(best, epoch, task.patience, validated):
            stopped_early = True
            logger.info("%s: early stop, no validation improvement for %d epochs", name, task.patience)
            meter.stop(f"early stop after {task.patience} epochs without a better validation Pearson")
            break
        epoch_start = time.perf_counter()
        # float64 on the device: no host synchronisation per step; exact sums of float32 step losses.
        total = torch.zeros((), dtype=torch.float64, device=task.device)
        batches = task.batches()
        n_steps = len(batches)
        for k, batch in enumerate(batches):
            lr = scheduled_learning_rate(
                task.learning_rate, task.lr_schedule, (epoch - 1) * n_steps + k, epochs * n_steps
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, logged = task.loss(model, batch)
            optimiser_step(optimizer, loss, groups, task.grad_clip)
            total += logged
            meter.update(epoch - 1 + (k + 1) / n_steps)  # in fractional epochs: steady within long epochs
        train_loss = task.epoch_loss(float(total.item()))
        per_time = task.validate(model)
        scores = [nanmean_or_nan(per_time)] if len(best) == 1 else [float(v) for v in per_time]
        for entry, score in zip(best, scores, strict=True):
            # NaN is never better; without validation configurations every epoch replaces the last.
            if entry["state"] is None or not validated or (math.isfinite(score) and not score <= entry["pearson"]):
                entry.update(state=state_to_cpu(model), epoch=epoch, pearson=score)
        validation_pearson = nanmean_or_nan(per_time)
        wall = time.perf_counter() - epoch_start
        rows.append(
            {"epoch": epoch, "train_loss": train_loss, "validation_pearson": validation_pearson, "wall_s": wall}
        )
        logger.info(
            "%s: epoch %d/%d train loss %.4g validation Pearson %.4f (best %s at epoch %s) %.1f s",
            name, epoch, epochs, train_loss, validation_pearson,
            ", ".join(f"{b['pearson']:.4f}" for b in best), ", ".join(str(b["epoch"]) for b in best), wall,
        )  # fmt: skip
        checkpoint.save(
            checkpoint_path, checkpoint.training_state(fp, epoch, model, optimizer, task.rng, best, rows, extra)
        )
    meter.stop("nothing left to train")  # a no-op when the last epoch finished it

    for entry in best:  # no epoch trained (a checkpoint beyond the epochs asked): keep the current weights
        if entry["state"] is None:
            entry["state"] = state_to_cpu(model)
    result = Result(best, rows, fp, extra, stopped_early, task.device)
    hparams = task.hparams(model, result)
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(_assemble(best, prefixes), tmp)
    write_json(out_dir / "hparams.json", hparams)
    log = pd.DataFrame(rows, columns=LOG_COLUMNS).astype({"epoch": "int64"})
    metadata = {"model": name, "settings": dict(task.settings), **{k: hparams[k] for k in task.log_keys}}
    write_table(log, out_dir / "train_log.parquet", metadata=metadata)  # last: the sign of a finished job
    checkpoint_path.unlink(missing_ok=True)
    logger.info(
        "%s: wrote %s (best epoch %s, validation Pearson %s)",
        name, out_dir / "model.pt", result.best_epochs, result.best_pearsons,
    )  # fmt: skip
