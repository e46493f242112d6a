"""Descriptor set ``mechanics``: the force on each particle and the curvature of its cage.

Over short times a particle that starts with a Maxwell-Boltzmann velocity v moves

    r_i(t) - r_i(0) = v t + F_i t^2 / 2 - H_ii v t^3 / 6 + ...      (m = 1)

so its propensity there is set by the force F_i = -dU/dr_i and, from about t = 0.1 at T = 0.64 on, by the
diagonal 3 x 3 block of the Hessian, H_ii = d^2 U / dr_i dr_i (the stiffness of the cage the other particles
hold i in; REFERENCE.md, section 3). Per particle i, from the Kob-Andersen pair potential V_ab(r) truncated at
r_c = 2.5 sigma_ab (forces and curvatures are the same for the 'shift' and 'truncate' conventions; 'xplor'
smoothing changes them near r_c and is not offered):

    F_i  = sum_j V'(r_ij) r_hat_ij                       (r_ij = r_j - r_i, minimum image)
    H_ii = sum_j [ V''(r_ij) r_hat r_hat^T + V'(r_ij) / r_ij (1 - r_hat r_hat^T) ]

Columns (eps_AA / sigma_AA for forces, eps_AA / sigma_AA^2 for curvatures): ``mechanics:force`` |F_i|,
``mechanics:force_sq`` |F_i|^2, ``mechanics:hessian_trace`` tr H_ii, and its eigenvalues in ascending order
``mechanics:hessian_eig0..2`` (rotation invariants, like every descriptor). Computed on the thermal
configuration they carry the ballistic physics; on an inherent structure F_i is zero and H_ii remains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.potential import KobAndersen
from glasspipe.structure.descriptors import DescriptorSet, register
from glasspipe.structure.descriptors.coarse_grain import neighbour_rows


def pair_derivatives(potential: KobAndersen, r: np.ndarray, ti: np.ndarray, tj: np.ndarray):
    """V'(r) and V''(r) of the truncated Lennard-Jones pair (eps_AA / sigma_AA, eps_AA / sigma_AA^2); zero
    beyond each pair's cutoff."""
    eps = potential.epsilon[ti, tj]
    sr6 = (potential.sigma[ti, tj] / r) ** 6
    first = 4.0 * eps * (-12.0 * sr6 * sr6 + 6.0 * sr6) / r
    second = 4.0 * eps * (156.0 * sr6 * sr6 - 42.0 * sr6) / (r * r)
    inside = r < potential.r_cut[ti, tj]
    return np.where(inside, first, 0.0), np.where(inside, second, 0.0)


def forces_and_hessian_blocks(snapshot: Snapshot, potential: KobAndersen | None = None):
    """F_i (N, 3) and H_ii (N, 3, 3) of a periodic cubic configuration (module docstring)."""
    potential = potential or KobAndersen()
    rows = neighbour_rows(snapshot.positions, snapshot.box_length, potential.r_cut_max)
    i = rows.rows()
    j = rows.indices.astype(np.int64)
    positions = np.asarray(snapshot.positions, dtype=np.float64)
    d = positions[j] - positions[i]
    d -= snapshot.box_length * np.round(d / snapshot.box_length)
    r = rows.distances
    unit = d / r[:, None]
    first, second = pair_derivatives(potential, r, snapshot.typeid[i], snapshot.typeid[j])
    n = snapshot.n_particles
    # dU/dr_i = -sum_j V'(r_ij) r_hat_ij, so F_i = +sum_j V' r_hat.
    force = np.zeros((n, 3))
    np.add.at(force, i, first[:, None] * unit)
    outer = unit[:, :, None] * unit[:, None, :]
    blocks = (second - first / r)[:, None, None] * outer + (first / r)[:, None, None] * np.eye(3)
    hessian = np.zeros((n, 3, 3))
    np.add.at(hessian, i, blocks)
    return force, hessian


@register
class Mechanics(DescriptorSet):
    """Force magnitude and cage curvature per particle (module docstring)."""

    name = "mechanics"
    defaults: dict = {}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": "force on each particle |F_i| and the eigenvalues of its Hessian block H_ii (the cage "
        "stiffness): the ballistic physics of the first tenths of a tau, on the thermal configuration",
        "properties": {},
    }

    def compute(self, snapshot: Snapshot, settings: dict) -> pd.DataFrame:
        force, hessian = forces_and_hessian_blocks(snapshot)
        magnitude = np.linalg.norm(force, axis=1)
        eigenvalues = np.linalg.eigvalsh(hessian)
        columns = {
            "mechanics:force": magnitude,
            "mechanics:force_sq": magnitude * magnitude,
            "mechanics:hessian_trace": np.trace(hessian, axis1=1, axis2=2),
            **{f"mechanics:hessian_eig{k}": eigenvalues[:, k] for k in range(3)},
        }
        return self.frame(snapshot, columns)
