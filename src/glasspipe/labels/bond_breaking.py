"""Bond-breaking label C_B,i(t) (Guiselin, Scalliet & Berthier, Nat. Phys. 18, 468 (2022); GlassMLP, Jung,
Biroli & Berthier, PRL 130, 238202 (2023); GlassBench 'bb_prop').

The initial neighbours of particle i are the particles j with |r_ij(0)| < r_in sigma_ij. In one replica,

    C_B,i(t) = (number of i's initial neighbours with |r_ij(t)| < r_out sigma_ij) / (number of initial ones),

the pair separations followed from their minimum image at t = 0; the label is its mean over the replicas.
C_B = 1 while i keeps its cage and falls towards 0 as the cage is lost. A particle without initial
neighbours has C_B = NaN.
Defaults r_in = 1.45, r_out = 1.7 (units of sigma_ij): the values of G. Jung's analysis code for the 3D
Kob-Andersen mixture at T = 0.44 (github.com/GerhardJung/StructDynGlass, input.opt 'BB 1.45 1.7' in the commits
of 2022-02 to 2022-05, e.g. 0c2a9e8; dyn_bb.cpp counts neighbours with r^2 < r_in^2 sigma_ij^2 at t = 0 and those
still within r_out sigma_ij at t), the code behind GlassMLP and GlassBench's 3D bond breaking. Its 2D runs use
other values (1.3/1.7 early, 1.4/1.8 for the ternary 2D KA). r_in = 1.45 is near the first minimum of g_AA.
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

    Particle-major layout: each particle's coordinates over a chunk of frames form one contiguous row, so the
    pairs gather whole rows (r_j) and, the pairs being sorted by i, r_i is a plain repeat of the rows.
    """
    positions = np.asarray(positions, dtype=np.float64)
    lead, n = positions.shape[:-2], positions.shape[-2]
    frames = positions.reshape(-1, n, 3)
    n_frames, n_pairs = frames.shape[0], len(neighbours.i)
    fraction = np.empty((n_frames, n))
    ordered = bool(np.all(neighbours.i[1:] >= neighbours.i[:-1]))
    cut2 = ((r_out * neighbours.sigma) ** 2)[:, None]
    # Frames per chunk: the (pairs, frames, 3) temporaries stay near 16 MB.
    chunk = max(1, (1 << 21) // max(1, 3 * n_pairs))
    for start in range(0, n_frames, chunk):
        rows = np.ascontiguousarray(frames[start : start + chunk].transpose(1, 0, 2))  # (N, f, 3)
        own = np.repeat(rows, neighbours.count, axis=0) if ordered else rows[neighbours.i]
        delta = rows[neighbours.j]
        delta -= own
        delta += neighbours.shift[:, None, :]
        delta *= delta
        kept = (delta[..., 0] + delta[..., 1] + delta[..., 2]) < cut2  # (P, f); a sum over a short axis is slow
        with np.errstate(invalid="ignore", divide="ignore"):
            block = (neighbours.incidence @ kept.astype(np.float64)) / neighbours.count[:, None]  # integer counts
        fraction[start : start + chunk] = block.T
    fraction[:, neighbours.count == 0] = np.nan
    return fraction.reshape(*lead, n)


# --- registry --------------------------------------------------------------------------------------
from glasspipe.config import ConfigError  # noqa: E402
from glasspipe.labels.registry import LABEL_GRID, Context, LabelSpec, register  # noqa: E402

# The section labels.bond_breaking; each default is declared here and nowhere else.
SETTINGS = {
    "enabled": {
        "type": "boolean",
        "default": True,
        "description": "bond-breaking C_B,i(t) (Guiselin et al. 2022; GlassMLP)",
    },
    "r_in": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 1.45,
        "description": "initial neighbours: r_ij(0) < r_in sigma_ij (units of sigma_ij; 1.45 = Jung's "
        "GlassMLP/GlassBench code for the 3D KA at T = 0.44, StructDynGlass input.opt 'BB "
        "1.45 1.7'; about the first minimum of g_AA)",
    },
    "r_out": {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 1.7,
        "description": "a bond survives while r_ij(t) < r_out sigma_ij (units of sigma_ij; 1.7 as in Jung's code)",
    },
}


def _check(config: dict) -> None:
    bond = config.get("labels", {}).get("bond_breaking", {})
    if bond.get("enabled") and not bond["r_out"] >= bond["r_in"]:
        raise ConfigError(
            f"config key 'labels.bond_breaking.r_out' = {bond['r_out']} must be at least "
            f"'labels.bond_breaking.r_in' = {bond['r_in']}"
        )


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
        settings=SETTINGS,
        check=_check,
    )
)
