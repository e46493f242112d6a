"""Bond-breaking label C_B,i(t) (Guiselin, Scalliet & Berthier, Nat. Phys. 18, 468 (2022); GlassMLP, Jung,
Biroli & Berthier, PRL 130, 238202 (2023); GlassBench 'bb_prop').

The initial neighbours of particle i are the particles j with |r_ij(0)| < r_in sigma_ij. In one replica,

    C_B,i(t) = (number of i's initial neighbours with |r_ij(t)| < r_out sigma_ij) / (number of initial ones),

the pair separations followed from their minimum image at t = 0; the label is its mean over the replicas.
C_B = 1 while i keeps its cage and falls towards 0 as the cage is lost. A particle without initial
neighbours has C_B = NaN.
Defaults r_in = 1.3, r_out = 1.7 (units of sigma_ij), as in GlassMLP.
"""

from __future__ import annotations

import numpy as np

from glasspipe.labels.neighbours import InitialNeighbours


def bond_breaking(positions: np.ndarray, neighbours: InitialNeighbours, r_out: float) -> np.ndarray:
    """Per-replica C_B: positions (..., K, N, 3) -> (..., K, N).

    positions are unwrapped continuations of the coordinates the neighbours were built from. The separation
    of a pair is followed from its minimum image at t = 0 through the unwrapped displacements,
    r_ij(t) = r_j(t) - r_i(t) + shift_ij, rather than re-imaged at t (the same numbers while |r_ij| < L / 2,
    and no spurious periodic image of j counted as a kept neighbour beyond that).
    """
    positions = np.asarray(positions, dtype=np.float64)
    lead, n = positions.shape[:-2], positions.shape[-2]
    planar = np.ascontiguousarray(np.moveaxis(positions.reshape(-1, n, 3), -1, 0))  # (3, frames, N)
    d2 = np.zeros((planar.shape[1], len(neighbours.i)))
    for d, coordinate in enumerate(planar):  # x, y, z: gathers along contiguous rows
        delta = coordinate[:, neighbours.j] - coordinate[:, neighbours.i]
        delta += neighbours.shift[:, d]
        d2 += delta * delta
    kept = d2 < (r_out * neighbours.sigma) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = (neighbours.incidence @ kept.T.astype(np.float64)).T / neighbours.count  # integer counts: exact
    fraction[:, neighbours.count == 0] = np.nan
    return fraction.reshape(*lead, n)


# --- registry --------------------------------------------------------------------------------------
from glasspipe.labels.registry import LABEL_GRID, Context, LabelSpec, register  # noqa: E402


def _compute(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    neighbours = context.neighbours(settings["r_in"])
    return {"bond_breaking": bond_breaking(positions, neighbours, settings["r_out"])}


register(
    LabelSpec(
        name="bond_breaking",
        grid=LABEL_GRID,
        columns=lambda settings: ["bond_breaking"],
        compute=_compute,
        units="dimensionless (fraction of initial neighbours kept)",
        description="replica mean of C_B,i(t): initial neighbours (r < r_in sigma_ij) still within r_out sigma_ij",
    )
)
