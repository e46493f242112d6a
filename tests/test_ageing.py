"""The no-ageing check on synthetic trajectories with known relaxation."""

from __future__ import annotations

import numpy as np
import pytest

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.ageing import ageing_check, window_tau_alpha


def random_walk(step_sizes: np.ndarray, n: int = 800, seed: int = 0) -> list[Snapshot]:
    """Frames of N Brownian particles; frame k's displacement has standard deviation step_sizes[k] per axis."""
    rng = np.random.default_rng(seed)
    positions = np.cumsum(rng.normal(size=(len(step_sizes), n, 3)) * step_sizes[:, None, None], axis=0)
    typeid = np.zeros(n, dtype=np.int32)
    return [
        Snapshot(positions=p, typeid=typeid, box_length=1000.0, step=200 * (k + 1), dt=0.005)
        for k, p in enumerate(positions)
    ]


def test_brownian_tau_alpha_is_exact():
    """Gaussian displacements of variance 2 D t per axis: F_s = exp(-q^2 D t), tau_alpha = 1 / (q^2 D)."""
    step = 0.05  # per frame and axis; frames 1 tau apart -> D = step^2 / 2
    frames = random_walk(np.full(120, step))
    tau, _, _ = window_tau_alpha(frames)
    expected = 1.0 / (7.25**2 * step**2 / 2)
    assert tau == pytest.approx(expected, rel=0.05)  # 800 particles x ~60 origins: ~1 % noise


def test_stationary_dynamics_pass_and_slowing_down_fails():
    steady = ageing_check(random_walk(np.full(120, 0.05)))
    assert steady["passed"] and steady["value"] == pytest.approx(1.0, abs=0.1)
    # Mobility halving over the run (ageing): tau_alpha grows by a factor ~2.5 between the halves.
    ageing = ageing_check(random_walk(np.linspace(0.07, 0.035, 120)))
    assert not ageing["passed"] and ageing["value"] > 1.5


def test_unresolved_tau_alpha_does_not_pass():
    frozen = ageing_check(random_walk(np.full(40, 0.001)))
    assert not frozen["passed"] and "not resolved" in frozen["message"]
