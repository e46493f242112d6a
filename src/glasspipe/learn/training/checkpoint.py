"""Resumable training checkpoints of the networks (written by :mod:`glasspipe.learn.training.trainer` for the Bapst GN,
se3 and the MLP).

One file, ``checkpoint.pt`` in the model directory, written atomically after every epoch and deleted when
training ends. It holds the model and optimiser states, the epoch, the random states (the task's own
generator, numpy or torch, and torch's global one, so a resumed run draws the same mini-batches and
augmentations as an uninterrupted one), the best states so far, the training log and the task's extra
entries, plus a ``fingerprint``: the settings and a hash of the training data. A checkpoint
whose fingerprint differs from the run's (other settings, regenerated labels) or that cannot be read (a
truncated or foreign file) is ignored with a warning and training starts from scratch: a stale checkpoint
must never resume silently. Loading uses ``torch.load(weights_only=True)``, which unpickles tensors and
plain containers only.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch

from glasspipe.io.atomic import atomic_path

logger = logging.getLogger(__name__)

FILENAME = "checkpoint.pt"


def save(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (tests replace this function to kill a run right after it)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path, fingerprint: dict, device: torch.device) -> dict | None:
    """The checkpoint at ``path`` if it exists, is readable and was written with ``fingerprint``; else None."""
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


Generator = np.random.Generator | torch.Generator


def random_state(rng: Generator):
    """The state of a numpy Generator (a plain dict, copied) or of a torch Generator (a uint8 tensor)."""
    if isinstance(rng, torch.Generator):
        return rng.get_state()
    return copy.deepcopy(rng.bit_generator.state)


def set_random_state(rng: Generator, state) -> None:
    """Put ``rng`` back in the ``state`` that :func:`random_state` returned."""
    if isinstance(rng, torch.Generator):
        rng.set_state(state.cpu())
    else:
        rng.bit_generator.state = state


def training_state(
    fingerprint: dict,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: Generator,
    best: list[dict],
    log: list[dict],
    extra: dict | None = None,
) -> dict:
    """The dict :func:`save` writes after ``epoch``: ``best`` one dict (state, epoch, pearson) per independently
    selected network, ``log`` the rows of the training log so far, ``extra`` the task's own entries (plain
    containers and tensors only: the file is read with ``weights_only=True``)."""
    return {
        "fingerprint": fingerprint,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": random_state(rng),
        "torch_rng": torch.get_rng_state(),
        "best": best,
        "log": log,
        "extra": dict(extra or {}),
    }


def restore(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: Generator):
    """Load the model, optimiser and random states of ``state``; returns (epoch, log rows)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_random_state(rng, state["rng"])
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["epoch"]), list(state["log"])


def state_on_cpu(state: dict | None) -> dict | None:
    """A state dict's tensors moved to the CPU (None stays None)."""
    return None if state is None else {k: v.cpu() for k, v in state.items()}
