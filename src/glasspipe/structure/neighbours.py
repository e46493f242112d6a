"""Periodic neighbour pairs from freud: minimum-image vectors, every pair within r_max, no cap."""

from __future__ import annotations

from dataclasses import dataclass

import freud
import numpy as np


@dataclass(frozen=True)
class Pairs:
    """Directed pairs (i, j), i != j, with |r_j - r_i| < r_max under the minimum image convention.

    Both directions of each pair are present. ``vectors[k] = r_j - r_i`` (minimum image, sigma_AA) and
    ``distances[k] = |vectors[k]|``; ``i`` is sorted ascending.
    """

    i: np.ndarray
    j: np.ndarray
    vectors: np.ndarray
    distances: np.ndarray


def periodic_pairs(positions: np.ndarray, box_length: float, r_max: float) -> Pairs:
    """All directed pairs closer than r_max in a cubic periodic box of edge box_length.

    r_max must be below box_length / 2 so that each pair appears once (minimum image).
    """
    if not r_max < 0.5 * box_length:
        raise ValueError(f"r_max = {r_max} must be below half the box length ({0.5 * box_length:.4f})")
    box = freud.box.Box.cube(box_length)
    points = box.wrap(np.asarray(positions, dtype=np.float32))
    query = freud.locality.AABBQuery(box, points)
    # freud works in single precision: search a little wider, then cut in double precision.
    r_search = min(r_max * (1.0 + 1e-5), np.nextafter(np.float32(0.5 * box_length), 0))
    nlist = query.query(points, {"r_max": r_search, "exclude_ii": True}).toNeighborList(sort_by_distance=False)
    i = np.asarray(nlist.query_point_indices, dtype=np.int64)
    j = np.asarray(nlist.point_indices, dtype=np.int64)
    pos = np.asarray(positions, dtype=np.float64)
    vectors = pos[j] - pos[i]
    vectors -= box_length * np.round(vectors / box_length)
    distances = np.linalg.norm(vectors, axis=1)
    keep = distances < r_max
    i, j, vectors, distances = i[keep], j[keep], vectors[keep], distances[keep]
    order = np.lexsort((j, i))
    return Pairs(i=i[order], j=j[order], vectors=vectors[order], distances=distances[order])
