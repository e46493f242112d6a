"""Periodic radius graphs built with torch on the model's device (torch-cluster), equal to freud's pair set.

freud (``glasspipe.structure.neighbours.periodic_pairs``) builds the edges on the CPU and stays the
default. On a GPU the edges of a large configuration can be built where the model runs, with
``torch_cluster.radius``, which has two traps for a dense periodic liquid:

- it knows no periodic boundaries. We add *ghost* particles: every image, among the 26 neighbouring
  boxes, of a particle that lies within r_cut of the faces it is copied across. A query particle then
  finds all its neighbours among real and ghost points with a plain Euclidean search, and a ghost maps
  back to the particle it copies. With r_cut < L / 2 each pair appears once (minimum image).
- it keeps at most ``max_num_neighbors`` neighbours per query point (32 by default) and drops the rest
  without a word. We start from a bound on the neighbour count (the densest possible packing would be
  far above it, so it is a guess, not a guarantee) and, whenever a query point reaches the bound, where
  neighbours may have been dropped, search again with the bound doubled. The result holds every pair.

``radius_search`` is the search to use: ``torch_cluster.radius`` when torch-cluster is installed, else
:func:`brute_force_radius` (chunked ``torch.cdist``, the same signature and the same truncation rule, so
that the ghost and retry logic is exercised on every machine). Output: (i, j, r_j - r_i) for i != j and
|r_j - r_i| < r_cut, sorted by (i, j), as ``periodic_pairs`` gives them. Units: sigma_AA.
"""

from __future__ import annotations

import itertools
import math

import torch

# Neighbours within r of a particle at the liquid's number density rho: 4/3 pi r^3 rho. The first guess of
# max_num_neighbors is this times SAFETY (local density fluctuations; the first peak of g(r) is ~3).
SAFETY = 3.0


def torch_cluster_available() -> bool:
    try:
        import torch_cluster  # noqa: F401
    except ImportError:
        return False
    return True


def brute_force_radius(
    x: torch.Tensor, y: torch.Tensor, r: float, max_num_neighbors: int = 32, chunk: int = 1024
) -> torch.Tensor:
    """For each point of ``y``, the points of ``x`` closer than ``r``: edge_index (2, E) = (index in y,
    index in x), at most ``max_num_neighbors`` per point of y (the first ones in x's order), as
    ``torch_cluster.radius(x, y, r, max_num_neighbors=...)`` returns them. Chunked over y (memory
    chunk * len(x) distances)."""
    rows, cols = [], []
    for start in range(0, len(y), chunk):
        block = y[start : start + chunk]
        within = torch.cdist(block, x) < r
        # Keep the first max_num_neighbors hits of each row (rank of each hit within its row).
        rank = torch.cumsum(within.to(torch.int64), dim=1)
        within &= rank <= max_num_neighbors
        row, col = torch.nonzero(within, as_tuple=True)
        rows.append(row + start)
        cols.append(col)
    return torch.stack([torch.cat(rows), torch.cat(cols)])


def radius_search():
    """``torch_cluster.radius`` if torch-cluster is installed, else :func:`brute_force_radius`."""
    if torch_cluster_available():
        from torch_cluster import radius

        return radius
    return brute_force_radius


def ghost_images(positions: torch.Tensor, box_length: float, r_cut: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Real points followed by their ghost images across the faces of the box [-L/2, L/2)^3.

    Returns (points (N + G, 3), owner (N + G,)): ``owner[k]`` is the particle that point k copies (the
    identity for the first N). A particle is copied by a shift s in {-1, 0, 1}^3 \\ {0} when, along every
    axis with s_a != 0, it lies within r_cut of the face it is copied across.
    """
    half = 0.5 * box_length
    near_low = positions < -half + r_cut  # (N, 3): copies to the +L side
    near_high = positions >= half - r_cut  # copies to the -L side
    points, owner = [positions], [torch.arange(len(positions), device=positions.device)]
    for shift in itertools.product((-1, 0, 1), repeat=3):
        if shift == (0, 0, 0):
            continue
        mask = torch.ones(len(positions), dtype=torch.bool, device=positions.device)
        for axis, s in enumerate(shift):
            if s == 1:
                mask &= near_low[:, axis]
            elif s == -1:
                mask &= near_high[:, axis]
        index = torch.nonzero(mask, as_tuple=True)[0]
        offset = torch.tensor(shift, dtype=positions.dtype, device=positions.device) * box_length
        points.append(positions[index] + offset)
        owner.append(index)
    return torch.cat(points), torch.cat(owner)


def periodic_radius_graph(
    positions: torch.Tensor, box_length: float, r_cut: float, search=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All directed pairs closer than ``r_cut`` in a cubic periodic box, on ``positions.device``.

    positions: (N, 3) in sigma_AA (any image; wrapped here). Returns (i, j, vectors): int64 (E,), int64
    (E,), (E, 3) float64 vectors r_j - r_i (minimum image), sorted by (i, j). Raises ValueError when
    r_cut >= L / 2 (a pair would have two images within r_cut). ``search``: the radius search
    (default :func:`radius_search`).
    """
    if not r_cut < 0.5 * box_length:
        raise ValueError(f"r_cut = {r_cut} must be below half the box length ({0.5 * box_length:.4f})")
    search = radius_search() if search is None else search
    pos = positions.to(torch.float64)
    pos = pos - box_length * torch.floor(pos / box_length + 0.5)  # into [-L/2, L/2)
    points, owner = ghost_images(pos, box_length, r_cut)
    n = len(pos)
    density = n / box_length**3
    bound = max(16, int(SAFETY * 4.0 / 3.0 * math.pi * r_cut**3 * density) + 1)
    while True:
        # +1: the search also returns each point itself (distance 0), removed below.
        edge_index = search(points, pos, r_cut, max_num_neighbors=bound + 1)
        counts = torch.bincount(edge_index[0], minlength=n)
        if int(counts.max()) < bound + 1:  # no query point reached the cap: nothing was dropped
            break
        bound *= 2
    i, k = edge_index[0], edge_index[1]
    keep = k != i  # k < n is the real particle; k == i is the point itself
    i, k = i[keep], k[keep]
    vectors = points[k] - pos[i]
    # The search ran in float64 but may round at the edge: cut again exactly, as periodic_pairs does.
    keep = torch.linalg.vector_norm(vectors, dim=1) < r_cut
    i, j, vectors = i[keep], owner[k[keep]], vectors[keep]
    order = torch.argsort(i * n + j)
    return i[order], j[order], vectors[order]
