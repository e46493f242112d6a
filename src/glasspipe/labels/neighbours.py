"""Initial neighbours of each particle with a cutoff in units of sigma_ij, shared by the bond-breaking and
cage-relative labels, as a sparse averaging operator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from glasspipe.potential import KobAndersen
from glasspipe.structure.neighbours import periodic_pairs


@dataclass(frozen=True)
class InitialNeighbours:
    """Directed pairs (i, j) with |r_j(0) - r_i(0)| < r_factor sigma_{type_i type_j}.

    ``incidence`` is the sparse (N x P) operator that sums a per-pair quantity over each particle's pairs
    (divide by ``count`` for the mean; its row is zero for a particle without neighbours, ``count`` = 0).
    """

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray  # (P, 3): minimum-image r_j(0) - r_i(0) minus the plain difference (a multiple of L)
    sigma: np.ndarray  # sigma_ij of each pair (sigma_AA)
    count: np.ndarray  # neighbours per particle (N,)
    incidence: sp.csr_matrix
    adjacency: sp.csr_matrix | None = None  # (N x N) with A[i, j] = 1 per pair: sums a per-particle quantity over j


def initial_neighbours(
    positions: np.ndarray, typeid: np.ndarray, box_length: float, r_factor: float, sigma: np.ndarray | None = None
) -> InitialNeighbours:
    """Pairs closer than ``r_factor`` sigma_ij in the configuration ``positions`` (N, 3), minimum image.

    ``positions`` fixes the frame of ``shift``: later positions given to the labels must be unwrapped
    continuations of these same coordinates.

    sigma: (n_types, n_types) pair diameters (default Kob-Andersen: AA 1.0, AB 0.8, BB 0.88).
    """
    sigma = KobAndersen().sigma if sigma is None else np.asarray(sigma, dtype=np.float64)
    typeid = np.asarray(typeid, dtype=np.int64)
    n = len(typeid)
    pairs = periodic_pairs(positions, box_length, r_factor * float(sigma.max()))
    sigma_ij = sigma[typeid[pairs.i], typeid[pairs.j]]
    keep = pairs.distances < r_factor * sigma_ij
    i, j, sigma_ij = pairs.i[keep], pairs.j[keep], sigma_ij[keep]
    positions = np.asarray(positions, dtype=np.float64)
    shift = pairs.vectors[keep] - (positions[j] - positions[i])
    count = np.bincount(i, minlength=n)
    incidence = sp.csr_matrix((np.ones(len(i)), (i, np.arange(len(i)))), shape=(n, len(i)))
    adjacency = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return InitialNeighbours(
        i=i, j=j, shift=shift, sigma=sigma_ij, count=count, incidence=incidence, adjacency=adjacency
    )
