"""Bond-orientational order: detection of crystal-like local environments.

``crystal_fraction`` uses the solid-like bond criterion of ten Wolde, Ruiz-Montero and Frenkel
(J. Chem. Phys. 104, 9932 (1996)): with the normalised complex vectors q_6m(i) of each particle's
Steinhardt q_6 over its neighbours (all pairs closer than ``r_max``), a bond i-j is solid-like when
Re sum_m q_6m(i) q_6m(j)* > ``q_threshold`` (0.7), and a particle is solid-like when it has at least
``solid_threshold`` (7) solid-like bonds. freud.order.SolidLiquid implements exactly this.

The default neighbour radius 1.4 sigma_AA is the first minimum of g(r) of the KA liquid at T = 0.44
(1.395, REFERENCE.md) and lies between the first (0.707 a) and second (a) neighbour shells of an fcc
lattice of cube edge a = (4 / 1.2)^(1/3) = 1.49 at the KA density.
"""

from __future__ import annotations

import freud
import numpy as np

from glasspipe.io.gsd_io import Snapshot


def solid_like(
    snapshot: Snapshot, r_max: float = 1.4, q_threshold: float = 0.7, solid_threshold: int = 7
) -> np.ndarray:
    """Boolean (N,): True for particles with at least ``solid_threshold`` solid-like q6 bonds."""
    if not 0 < r_max < 0.5 * snapshot.box_length:
        raise ValueError(f"r_max = {r_max} must be positive and below half the box length")
    box = freud.box.Box.cube(snapshot.box_length)
    points = box.wrap(np.asarray(snapshot.positions, dtype=np.float32))
    solid_liquid = freud.order.SolidLiquid(
        l=6, q_threshold=q_threshold, solid_threshold=solid_threshold, normalize_q=True
    )
    solid_liquid.compute((box, points), neighbors={"r_max": r_max, "exclude_ii": True})
    return np.asarray(solid_liquid.num_connections) >= solid_threshold


def crystal_fraction(
    snapshot: Snapshot, r_max: float = 1.4, q_threshold: float = 0.7, solid_threshold: int = 7
) -> float:
    """Fraction of particles with a crystal-like local environment (see :func:`solid_like`)."""
    return float(np.mean(solid_like(snapshot, r_max, q_threshold, solid_threshold)))
