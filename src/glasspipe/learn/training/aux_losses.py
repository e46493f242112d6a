"""Auxiliary losses against over-smoothing (seed 001; GlassMLP, Jung, Biroli and Berthier, PRL 130, 238202 (2023)).

A network trained by mean squared error alone predicts a smoothed field: its predictions vary less from
particle to particle than the labels do, and are more correlated in space. These losses compare two
spatial statistics of the prediction with those of the label, per label time (column), on the particle
graph (ordered edges sender -> receiver, as :func:`glasspipe.learn.graphs.build_graph` gives them):

- **local variance**: for each particle i, the variance of the values over its neighbourhood
  N(i) = {i} + {senders of the edges into i}: v_i = mean_{j in N(i)} y_j^2 - (mean_{j in N(i)} y_j)^2.
  :func:`local_variance_loss` is the mean over the centre particles of (v_i[pred] - v_i[target])^2, summed
  over the columns.
- **spatial correlation**: for shells [r_lo, r_hi) (sigma_AA), the mean over the ordered pairs (i, j) with
  r_lo <= r_ij < r_hi of (y_i - ybar)(y_j - ybar), ybar the mean over the particles:
  C(shell) = <dy_i dy_j>_{r_ij in shell}. :func:`spatial_correlation_loss` is the sum over shells and columns
  of (C[pred] - C[target])^2. A shell with no pair contributes 0.

``mask`` (bool (N,), optional) restricts both to a subset of particles (e.g. the A particles the main loss
sees): only masked particles are centres, neighbours, pair members and enter ybar. Everything is vectorised
over edges with ``index_add_``; the losses are differentiable in the prediction. Values: (N, T) tensors
(or (N,), taken as one column).
"""

from __future__ import annotations

import torch


def _columns(values: torch.Tensor) -> torch.Tensor:
    return values[:, None] if values.dim() == 1 else values


def _mask(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones(values.shape[0], dtype=torch.bool, device=values.device)
    return mask.to(device=values.device, dtype=torch.bool)


def local_variance(
    values: torch.Tensor, senders: torch.Tensor, receivers: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, T) variance of ``values`` over each particle's neighbourhood (itself and the senders of its
    incoming edges; masked particles only). Rows of unmasked particles are 0."""
    values = _columns(values)
    keep = _mask(values, mask)
    weight = keep.to(values.dtype)
    edge_keep = (keep[senders] & keep[receivers]).to(values.dtype)[:, None]
    y, y2 = values * weight[:, None], values.square() * weight[:, None]
    count = weight.clone().index_add_(0, receivers, edge_keep[:, 0])
    total = y.clone().index_add_(0, receivers, values[senders] * edge_keep)
    total2 = y2.clone().index_add_(0, receivers, values[senders].square() * edge_keep)
    safe = count.clamp(min=1.0)[:, None]
    mean = total / safe
    return (total2 / safe - mean.square()) * weight[:, None]


def local_variance_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    senders: torch.Tensor,
    receivers: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over (masked) centre particles of the squared difference of the local variances, summed over
    columns (see the module docstring)."""
    keep = _mask(_columns(prediction), mask)
    difference = local_variance(prediction, senders, receivers, keep) - local_variance(target, senders, receivers, keep)
    n = keep.sum().clamp(min=1)
    return difference.square().sum() / n


def shell_correlation(
    values: torch.Tensor,
    senders: torch.Tensor,
    receivers: torch.Tensor,
    distances: torch.Tensor,
    shells: list[tuple[float, float]],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(S, T): per shell [r_lo, r_hi), the mean over ordered pairs (i, j) of (masked) particles with r_ij in the
    shell of (y_i - ybar)(y_j - ybar), ybar the column mean over masked particles; 0 for an empty shell.
    ``senders``, ``receivers``, ``distances``: the pair list (every ordered pair closer than the largest r_hi)."""
    values = _columns(values)
    keep = _mask(values, mask)
    mean = values[keep].mean(dim=0) if bool(keep.any()) else values.new_zeros(values.shape[1])
    centred = values - mean
    pair_keep = keep[senders] & keep[receivers]
    products = centred[senders] * centred[receivers]  # (E, T)
    lo = torch.as_tensor([s[0] for s in shells], dtype=distances.dtype, device=distances.device)
    hi = torch.as_tensor([s[1] for s in shells], dtype=distances.dtype, device=distances.device)
    member = (distances[:, None] >= lo) & (distances[:, None] < hi) & pair_keep[:, None]  # (E, S)
    member = member.to(values.dtype)
    sums = member.T @ products  # (S, T)
    counts = member.sum(dim=0)[:, None]
    return sums / counts.clamp(min=1.0)


def spatial_correlation_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    senders: torch.Tensor,
    receivers: torch.Tensor,
    distances: torch.Tensor,
    shells: list[tuple[float, float]],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sum over shells and columns of (C_pred(shell) - C_target(shell))^2 (see :func:`shell_correlation`)."""
    c_pred = shell_correlation(prediction, senders, receivers, distances, shells, mask)
    c_true = shell_correlation(target, senders, receivers, distances, shells, mask)
    return (c_pred - c_true).square().sum()


def check_shells(shells, key: str) -> list[tuple[float, float]]:
    """``shells`` as a list of (r_lo, r_hi) with 0 <= r_lo < r_hi; errors name the config ``key``."""
    out = []
    for shell in shells:
        if len(shell) != 2 or not 0.0 <= float(shell[0]) < float(shell[1]):
            raise ValueError(f"config key '{key}' holds {shell!r}; each shell is [r_lo, r_hi] with 0 <= r_lo < r_hi")
        out.append((float(shell[0]), float(shell[1])))
    if not out:
        raise ValueError(f"config key '{key}' is empty; give at least one shell [r_lo, r_hi] (sigma_AA)")
    return out
