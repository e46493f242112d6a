"""Displacement vectors and cage-relative displacements (vector targets for equivariant models).

In one replica, the displacement of particle i is d_i(t) = r_i(t) - r_i(0) (unwrapped, sigma_AA). The
cage-relative displacement subtracts the mean displacement of i's initial neighbours N_i (|r_ij(0)| <
r_cage sigma_ij):  d^CR_i(t) = d_i(t) - (1/|N_i|) sum_{j in N_i} d_j(t)  (NaN without neighbours). It
removes the collective drift of the cage (long-wavelength vibrations, Mermin-Wagner-like fluctuations) and
keeps the particle's motion relative to its cage. Labels: the replica means of the vectors' components and
of the cage-relative distance |d^CR_i(t)| (a cage-relative propensity).
"""

from __future__ import annotations

import numpy as np

from glasspipe.labels.neighbours import InitialNeighbours


def displacements(positions: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """d_i(t): positions (..., K, N, 3) minus origin (N, 3)."""
    return np.asarray(positions, dtype=np.float64) - np.asarray(origin, dtype=np.float64)


def cage_relative(displacement: np.ndarray, neighbours: InitialNeighbours) -> np.ndarray:
    """d^CR (..., K, N, 3) from displacements (..., K, N, 3)."""
    shape = displacement.shape
    n = shape[-2]
    # (N, frames * 3): one sparse product averages every frame and component over the neighbours.
    columns = np.moveaxis(displacement.reshape(-1, n, 3), 1, 0).reshape(n, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # adjacency @ columns sums the rows of the neighbours j of each i (no (pairs x columns) gather)
        summed = (neighbours.adjacency @ columns) / neighbours.count[:, None]
    cage = np.moveaxis(summed.reshape(n, -1, 3), 0, 1).reshape(shape)
    out = displacement - cage
    out[..., neighbours.count == 0, :] = np.nan
    return out


# --- registry --------------------------------------------------------------------------------------
from glasspipe.labels.registry import LABEL_GRID, Context, LabelSpec, register  # noqa: E402

# The sections labels.displacement and labels.cage_relative; each default is declared here and nowhere else.
DISPLACEMENT_SETTINGS = {
    "enabled": {
        "type": "boolean",
        "default": True,
        "description": "replica-mean displacement vector disp_x/y/z (sigma_AA) at each label time",
    },
}
CAGE_SETTINGS = {
    "enabled": {
        "type": "boolean",
        "default": True,
        "description": "cage-relative displacement vector and its length (cage_propensity)",
    },
    "r_cage": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 1.45,
        "description": "the cage: initial neighbours closer than r_cage sigma_ij (units of sigma_ij; the "
        "bond-breaking first shell, as labels.bond_breaking.r_in)",
    },
}

_XYZ = ("x", "y", "z")


def _displacement(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    d = displacements(positions, context.origin)
    return {f"disp_{c}": d[..., k] for k, c in enumerate(_XYZ)}


def _cage_relative(positions: np.ndarray, settings: dict, context: Context) -> dict[str, np.ndarray]:
    d = cage_relative(displacements(positions, context.origin), context.neighbours(settings["r_cage"]))
    out = {f"cage_disp_{c}": d[..., k] for k, c in enumerate(_XYZ)}
    out["cage_propensity"] = np.sqrt(np.einsum("...i,...i->...", d, d))  # |d^CR|, one pass
    return out


register(
    LabelSpec(
        name="displacement",
        grid=LABEL_GRID,
        columns=lambda settings: [f"disp_{c}" for c in _XYZ],
        compute=_displacement,
        units="sigma_AA",
        description="replica mean of the displacement vector r_i(t) - r_i(0)",
        settings=DISPLACEMENT_SETTINGS,
    )
)
register(
    LabelSpec(
        name="cage_relative",
        grid=LABEL_GRID,
        columns=lambda settings: [*(f"cage_disp_{c}" for c in _XYZ), "cage_propensity"],
        compute=_cage_relative,
        units="sigma_AA",
        description=(
            "replica mean of the cage-relative displacement vector (minus the mean displacement of the initial "
            "neighbours within r_cage sigma_ij) and of its length (cage_propensity)"
        ),
        settings=CAGE_SETTINGS,
    )
)
