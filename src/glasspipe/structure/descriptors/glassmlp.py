"""Descriptor set ``glassmlp``: the physics-inspired descriptors of GlassMLP, coarse-grained per neighbour type.

Jung, Biroli, Berthier, PRL 130, 238202 (2023), as implemented publicly in partycls'
``PhysicsInspiredDescriptor`` (``JungDescriptor``), which we match except where stated. Per particle i (lengths
in sigma_AA, energies in eps_AA):

- E_i = 1/2 sum_{j != i} V(r_ij): the particle's share of the KA pair energy, with the configured cutoff mode
  (``cutoff_mode``, default ``shift`` as in the rest of glasspipe), so that sum_i E_i is the total potential
  energy (partycls stores E_j = sum_k V(r_jk) without the 1/2; a constant factor, irrelevant after
  standardisation);
- v_i, a_i: volume and surface area of the Voronoi cell of i (freud.locality.Voronoi; the face areas are the
  Voronoi neighbour-list weights). partycls uses the surface in 3D; we keep both;
- n_i: the number of neighbours closer than ``r_shell`` (first minimum of g(r), 1.4) as a raw local density.

For each length L in ``lengths`` and each neighbour group beta in {A, B, all} (particle i itself included when
it belongs to beta), with w_ij = exp(-r_ij / L) over r_ij < r_cg:

    rho_i(L; beta)    = sum_{j in beta} w_ij                                  (column ``rho_<beta>_L<L>``)
    x̄_i(L; beta)      = sum_{j in beta} x_j w_ij / rho_i(L; beta),  x = E, v, a  (``E_``, ``vol_``, ``surf_``)
    Var E_i(L; beta)  = sum_{j in beta} (E_j - Ē_i(L; beta))^2 w_ij / rho_i(L; beta)   (``varE_``)

exactly partycls' four observables (its density is the unnormalised weight sum). ``r_cg`` null means
min(3 max(L), half the box length); for the defaults L = 0.5, 1, ..., 6.5 at N = 4096 that is 7.53, where the
largest weight dropped is exp(-7.53 / 6.5) = 0.31 (partycls' default cutoff is also half the box). With
``include_raw`` the raw E, v, a and n of each particle are added (``E``, ``vol``, ``surf``, ``n_shell``).
Descriptors are usually computed on inherent structures, as GlassMLP does.
"""

from __future__ import annotations

import freud
import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.potential import CUTOFF_MODES, KobAndersen
from glasspipe.structure.descriptors import DescriptorSet, register
from glasspipe.structure.descriptors.coarse_grain import coarse_grain, max_cutoff, neighbour_rows

DEFAULT_LENGTHS = [0.5 * k for k in range(1, 14)]  # 0.5, 1.0, ..., 6.5


def particle_energies(snapshot: Snapshot, potential: KobAndersen, rows=None) -> np.ndarray:
    """E_i = 1/2 sum_j V(r_ij) (eps_AA), from the pairs within the largest KA cutoff."""
    if rows is None or rows.r_max < potential.r_cut_max:
        rows = neighbour_rows(snapshot.positions, snapshot.box_length, potential.r_cut_max)
    i = rows.rows()
    ti, tj = snapshot.typeid[i], snapshot.typeid[rows.indices]
    inside = rows.distances < potential.r_cut_max
    v = potential.pair_energy(rows.distances[inside], ti[inside], tj[inside])
    return 0.5 * np.bincount(i[inside], weights=v, minlength=rows.n)


def voronoi_cells(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Volumes and surface areas of the Voronoi cells (freud, periodic cubic box)."""
    box = freud.box.Box.cube(snapshot.box_length)
    points = box.wrap(np.asarray(snapshot.positions, dtype=np.float32))
    voronoi = freud.locality.Voronoi()
    voronoi.compute((box, points))
    nlist = voronoi.nlist
    areas = np.bincount(
        np.asarray(nlist.query_point_indices),
        weights=np.asarray(nlist.weights, dtype=np.float64),
        minlength=snapshot.n_particles,
    )
    return np.asarray(voronoi.volumes, dtype=np.float64), areas


@register
class GlassMLP(DescriptorSet):
    """GlassMLP physics-inspired descriptors (module docstring)."""

    name = "glassmlp"
    defaults = {
        "lengths": DEFAULT_LENGTHS,
        "r_cg": None,
        "r_shell": 1.4,
        "cutoff_mode": "shift",
        "include_raw": True,
    }
    schema = {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": "GlassMLP descriptors: density, energy, Voronoi volume/surface, energy variance, "
        "exp(-r/L) coarse-grained over A, B and all neighbours",
        "properties": {
            "lengths": {
                "type": "array",
                "items": {"type": "number", "exclusiveMinimum": 0},
                "minItems": 1,
                "default": DEFAULT_LENGTHS,
                "description": "coarse-graining lengths L of the weights exp(-r/L) (sigma_AA)",
            },
            "r_cg": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "default": None,
                "description": "coarse-graining cutoff (sigma_AA); null: min(3 max(lengths), half the box)",
            },
            "r_shell": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 1.4,
                "description": "radius of the raw neighbour count n_shell (sigma_AA)",
            },
            "cutoff_mode": {
                "enum": list(CUTOFF_MODES),
                "default": "shift",
                "description": "KA cutoff convention of the per-particle energy (see glasspipe.potential)",
            },
            "include_raw": {
                "type": "boolean",
                "default": True,
                "description": "add the raw per-particle E, Voronoi volume and surface, n_shell",
            },
        },
    }

    def compute(self, snapshot: Snapshot, settings: dict) -> pd.DataFrame:
        lengths = [float(v) for v in settings["lengths"]]
        r_cg = settings["r_cg"]
        r_cg = min(3.0 * max(lengths), max_cutoff(snapshot.box_length)) if r_cg is None else float(r_cg)
        potential = KobAndersen(cutoff_mode=settings["cutoff_mode"])
        rows = neighbour_rows(snapshot.positions, snapshot.box_length, max(r_cg, potential.r_cut_max))
        energy = particle_energies(snapshot, potential, rows)
        volume, surface = voronoi_cells(snapshot)
        n_shell = np.bincount(rows.rows()[rows.distances < settings["r_shell"]], minlength=rows.n).astype(float)
        if rows.r_max > r_cg:
            rows = neighbour_rows(snapshot.positions, snapshot.box_length, r_cg)
        values = np.column_stack([energy, energy * energy, volume, surface])
        masks = np.stack([snapshot.typeid == t for t in range(len(snapshot.type_names))])
        means, sums = coarse_grain(values, rows, lengths, masks=masks, return_weights=True)
        # the 'all' group from the per-type sums
        total = sums.sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean_all = np.nansum(means * sums[..., None], axis=0) / total[..., None]
        groups = list(snapshot.type_names) + ["all"]
        group_means = list(means) + [mean_all]
        group_sums = list(sums) + [total]
        columns = {}
        if settings["include_raw"]:
            columns.update({"glassmlp:E": energy, "glassmlp:vol": volume, "glassmlp:surf": surface})
            columns["glassmlp:n_shell"] = n_shell
        for k, length in enumerate(lengths):
            for name, mean, weight in zip(groups, group_means, group_sums, strict=True):
                suffix = f"{name}_L{length:g}"
                columns[f"glassmlp:rho_{suffix}"] = weight[:, k]
                columns[f"glassmlp:E_{suffix}"] = mean[:, k, 0]
                columns[f"glassmlp:vol_{suffix}"] = mean[:, k, 2]
                columns[f"glassmlp:surf_{suffix}"] = mean[:, k, 3]
                columns[f"glassmlp:varE_{suffix}"] = np.maximum(mean[:, k, 1] - mean[:, k, 0] ** 2, 0.0)
        return self.frame(snapshot, columns)
