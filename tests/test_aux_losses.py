"""Auxiliary losses (glasspipe.learn.training.aux_losses) against brute-force Python loops sharing no code with them,
in float64 (agreement to 1e-10: only summation order differs, so round-off of ~1e-15 relative is expected)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glasspipe.learn.training import aux_losses

SHELLS = [(0.0, 0.9), (0.9, 1.4), (1.4, 2.0), (5.0, 6.0)]  # the last one holds no pair: must give 0


def random_graph(seed: int, n: int = 40, r_cut: float = 2.0):
    """n random points in a periodic cube of edge 4.5; every ordered pair closer than r_cut (minimum image),
    built by a double loop; values (n, 3) and a mask of ~70 % of the particles."""
    rng = np.random.default_rng(seed)
    box = 4.5
    x = rng.uniform(0, box, size=(n, 3))
    senders, receivers, distances = [], [], []
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = x[i] - x[j]
            d -= box * np.round(d / box)
            r = float(np.sqrt(d @ d))
            if r < r_cut:
                senders.append(j)
                receivers.append(i)
                distances.append(r)
    prediction = rng.normal(size=(n, 3))
    target = rng.normal(size=(n, 3))
    mask = rng.random(n) < 0.7
    return (
        torch.tensor(prediction, dtype=torch.float64),
        torch.tensor(target, dtype=torch.float64),
        torch.tensor(senders),
        torch.tensor(receivers),
        torch.tensor(distances, dtype=torch.float64),
        torch.tensor(mask),
    )


def brute_local_variance(values, senders, receivers, mask):
    n, t = values.shape
    out = np.zeros((n, t))
    for i in range(n):
        if not mask[i]:
            continue
        members = [i] + [int(s) for s, r in zip(senders, receivers, strict=True) if r == i and mask[s]]
        for c in range(t):
            v = [values[j, c] for j in members]
            m = sum(v) / len(v)
            out[i, c] = sum((a - m) ** 2 for a in v) / len(v)
    return out


def brute_shell_correlation(values, senders, receivers, distances, shells, mask):
    n, t = values.shape
    out = np.zeros((len(shells), t))
    for c in range(t):
        kept = [values[i, c] for i in range(n) if mask[i]]
        mean = sum(kept) / len(kept)
        for k, (lo, hi) in enumerate(shells):
            terms = [
                (values[s, c] - mean) * (values[r, c] - mean)
                for s, r, d in zip(senders, receivers, distances, strict=True)
                if mask[s] and mask[r] and lo <= d < hi
            ]
            out[k, c] = sum(terms) / len(terms) if terms else 0.0
    return out


@pytest.mark.parametrize("use_mask", [False, True])
def test_local_variance_matches_a_loop(use_mask):
    prediction, target, senders, receivers, _, mask = random_graph(1)
    mask = mask if use_mask else torch.ones(len(mask), dtype=torch.bool)
    args = (senders.tolist(), receivers.tolist(), mask.tolist())
    got = aux_losses.local_variance(prediction, senders, receivers, mask).numpy()
    np.testing.assert_allclose(got, brute_local_variance(prediction.numpy(), *args), rtol=0, atol=1e-10)
    loss = float(aux_losses.local_variance_loss(prediction, target, senders, receivers, mask))
    difference = brute_local_variance(prediction.numpy(), *args) - brute_local_variance(target.numpy(), *args)
    expected = sum(difference[i, c] ** 2 for i in range(len(mask)) for c in range(3) if mask[i]) / int(mask.sum())
    assert abs(loss - expected) < 1e-10


@pytest.mark.parametrize("use_mask", [False, True])
def test_shell_correlation_matches_a_loop(use_mask):
    prediction, target, senders, receivers, distances, mask = random_graph(2)
    mask = mask if use_mask else torch.ones(len(mask), dtype=torch.bool)
    args = (senders.tolist(), receivers.tolist(), distances.tolist(), SHELLS, mask.tolist())
    got = aux_losses.shell_correlation(prediction, senders, receivers, distances, SHELLS, mask).numpy()
    expected = brute_shell_correlation(prediction.numpy(), *args)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert np.all(expected[-1] == 0.0) and np.any(expected[:-1] != 0.0)
    loss = float(aux_losses.spatial_correlation_loss(prediction, target, senders, receivers, distances, SHELLS, mask))
    expected_loss = float(np.sum((expected - brute_shell_correlation(target.numpy(), *args)) ** 2))
    assert abs(loss - expected_loss) < 1e-10


def test_zero_when_prediction_equals_target_and_gradients_flow():
    prediction, target, senders, receivers, distances, mask = random_graph(3)
    assert float(aux_losses.local_variance_loss(target, target, senders, receivers, mask)) == 0.0
    assert float(aux_losses.spatial_correlation_loss(target, target, senders, receivers, distances, SHELLS, mask)) == 0
    prediction.requires_grad_(True)
    loss = aux_losses.local_variance_loss(prediction, target, senders, receivers, mask)
    loss = loss + aux_losses.spatial_correlation_loss(prediction, target, senders, receivers, distances, SHELLS, mask)
    loss.backward()
    grad = prediction.grad
    assert torch.isfinite(grad).all() and float(grad[mask].abs().sum()) > 0
    # Unmasked particles enter neither statistic: no gradient reaches them.
    assert float(grad[~mask].abs().sum()) == 0.0


def test_bad_shells_name_the_key():
    with pytest.raises(ValueError, match="models.se3.aux_correlation_shells"):
        aux_losses.check_shells([[1.0, 0.5]], "models.se3.aux_correlation_shells")
    with pytest.raises(ValueError, match="is empty"):
        aux_losses.check_shells([], "models.se3.aux_correlation_shells")
