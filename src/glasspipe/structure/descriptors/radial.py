"""Descriptor set ``radial``: Landes et al. per-particle, type-resolved radial descriptors g_i^b(r_k).

With ``smoothing`` = 0 this is exactly :func:`glasspipe.structure.radial.radial_descriptors` (hard bins
[r_k, r_k + dr) from r_min to r_max). With ``smoothing`` = s > 0 each neighbour j of type b at distance r_ij
contributes, instead of a count of 1 in its bin, the integral over each bin of a normalised Gaussian of
width s centred at r_ij:

    n_i^b(k) = sum_{j of type b} [Phi((r_{k+1} - r_ij) / s) - Phi((r_k - r_ij) / s)],

Phi the standard normal CDF (neighbours up to r_max + 6 s are included; the Gaussian tails beyond 6 s, 1e-9,
are dropped). Summed over all bins this gives each neighbour's weight inside [r_min, r_max] (1 for neighbours
further than a few s from both ends), and as s -> 0 it becomes the hard count. Normalisation as in the hard
case: g_i^b(r_k) = n_i^b(k) / (rho_b V_k), rho_b = N_b / V, V_k the shell volume.

Settings (lengths in sigma_AA): r_min (0.7), r_max (4.7), dr (0.05), smoothing (0: hard bins). The defaults
are Landes et al.'s 0.70-4.70 by 0.05, 80 bins per type, 160 columns named ``radial:g_<b>(r=<bin centre>)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from glasspipe.io.gsd_io import Snapshot
from glasspipe.structure.descriptors import DescriptorSet, register
from glasspipe.structure.neighbours import periodic_pairs
from glasspipe.structure.radial import (
    _check_range,
    _shell_volumes,
    _type_names,
    descriptor_columns,
    radial_bins,
    radial_descriptors,
)

#: the smoothed contributions are evaluated within this many widths of each neighbour's distance
SMOOTHING_WINDOW = 6.0


def smoothed_counts(
    snapshot: Snapshot, r_min: float, r_max: float, dr: float, smoothing: float, chunk: int = 200_000
) -> np.ndarray:
    """Gaussian-smoothed neighbour counts n_i^b(k) (see the module docstring): array (N, n_types, n_bins)."""
    if not smoothing > 0:
        raise ValueError(f"smoothing = {smoothing} must be positive here (0 means hard bins)")
    edges = radial_bins(r_min, r_max, dr)
    names = _type_names(snapshot)
    n, n_types, n_bins = snapshot.n_particles, len(names), len(edges) - 1
    reach = float(edges[-1]) + SMOOTHING_WINDOW * smoothing
    _check_range(snapshot, reach)
    pairs = periodic_pairs(snapshot.positions, snapshot.box_length, reach)
    keep = pairs.distances > edges[0] - SMOOTHING_WINDOW * smoothing
    i, j, r = pairs.i[keep], pairs.j[keep], pairs.distances[keep]
    flat_rows = i * n_types + snapshot.typeid[j]
    n_window = int(np.ceil(2 * SMOOTHING_WINDOW * smoothing / dr)) + 2
    offsets = np.arange(n_window + 1)
    counts = np.zeros(n * n_types * n_bins)
    for start in range(0, len(r), chunk):
        rc = r[start : start + chunk]
        first = np.floor((rc - SMOOTHING_WINDOW * smoothing - edges[0]) / dr).astype(np.int64)
        kk = first[:, None] + offsets[None, :]  # edge indices
        cdf = ndtr((edges[np.clip(kk, 0, n_bins)] - rc[:, None]) / smoothing)
        weight = cdf[:, 1:] - cdf[:, :-1]  # mass in bin kk[:, :-1]
        bins = kk[:, :-1]
        valid = (bins >= 0) & (bins < n_bins)
        target = flat_rows[start : start + chunk, None] * n_bins + bins
        counts += np.bincount(target[valid], weights=weight[valid], minlength=len(counts))
    return counts.reshape(n, n_types, n_bins)


@register
class Radial(DescriptorSet):
    """Landes et al. radial descriptors, optionally Gaussian-smoothed (module docstring)."""

    name = "radial"
    defaults = {"r_min": 0.7, "r_max": 4.7, "dr": 0.05, "smoothing": 0.0}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": "Landes et al. per-particle type-resolved g_i^b(r) on bins [r_min, r_max) of width dr",
        "properties": {
            "r_min": {"type": "number", "minimum": 0, "default": 0.7, "description": "first bin edge (sigma_AA)"},
            "r_max": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 4.7,
                "description": "last bin edge (sigma_AA), below half the box length minus 6 smoothing",
            },
            "dr": {"type": "number", "exclusiveMinimum": 0, "default": 0.05, "description": "bin width (sigma_AA)"},
            "smoothing": {
                "type": "number",
                "minimum": 0,
                "default": 0.0,
                "description": "width of the Gaussian each neighbour is spread over (sigma_AA); 0 = hard bins",
            },
        },
    }

    def compute(self, snapshot: Snapshot, settings: dict) -> pd.DataFrame:
        r_min, r_max, dr = float(settings["r_min"]), float(settings["r_max"]), float(settings["dr"])
        smoothing = float(settings["smoothing"])
        if smoothing == 0:
            table = radial_descriptors(snapshot, r_min, r_max, dr)
            return table.rename(columns={c: f"radial:{c}" for c in table.columns[2:]})
        edges = radial_bins(r_min, r_max, dr)
        names = _type_names(snapshot)
        counts = smoothed_counts(snapshot, r_min, r_max, dr, smoothing)
        rho = np.bincount(snapshot.typeid, minlength=len(names)) / snapshot.volume
        norm = rho[:, None] * _shell_volumes(edges)[None, :]
        g = np.where(norm > 0, counts / np.where(norm > 0, norm, 1.0), 0.0)
        columns = [f"radial:{c}" for c in descriptor_columns(r_min, r_max, dr, names)]
        g = g.reshape(snapshot.n_particles, -1)
        return self.frame(snapshot, {c: g[:, k] for k, c in enumerate(columns)})
