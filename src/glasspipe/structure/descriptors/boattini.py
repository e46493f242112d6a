"""Descriptor set ``boattini``: Gaussian radial shell densities and shell-weighted bond order, coarse-grained.

Definitions (Boattini et al., Nat. Commun. 11, 5479 (2020); Boattini, Smallenburg, Filion, PRL 127, 088007
(2021)), lengths in sigma_AA:

- radial shell density of neighbours of type b around i, on a grid of radii r (``r_min`` to ``r_max`` by
  ``dr``, both ends included), width delta:

      G_i^b(r, delta) = sum_{j != i, type b} exp(-(r_ij - r)^2 / (2 delta^2))

  (pairs further than 6 delta from r are dropped: relative weight < 1.6e-8);
- bond-order parameters with Gaussian shell weights (radii ``q_r_min`` to ``q_r_max`` by ``q_dr``, width
  ``q_delta``), over neighbours of either type:

      q_lm(i, r) = sum_j w_ij Y_lm(r_ij) / sum_j w_ij,   w_ij = exp(-(r_ij - r)^2 / (2 q_delta^2)),
      q_l(i, r)  = sqrt(4 pi / (2l + 1) sum_m |q_lm(i, r)|^2),

  for each l in ``l`` (default 1..8). freud.order.Steinhardt with ``weighted=True`` on a neighbour list that
  carries these weights computes exactly this (single precision, about 1e-6 absolute); neighbours further than
  5 q_delta from r are dropped (weight < 4e-6); a particle with no neighbour in that range gets q_l = 0;
- coarse-grained averages (PRL 2021): x̄_i(L) = sum_j x_j exp(-r_ij / L) / sum_j exp(-r_ij / L), j including
  i, r_ij < r_cg, for every raw descriptor x and each length L in ``lengths``
  (:mod:`glasspipe.structure.descriptors.coarse_grain`). The PRL iterates this average (higher generations);
  here one generation at several L is used. ``r_cg`` null means min(3 max(L), half the box length).

Columns: ``boattini:G_<b>(r=<r>)``, ``boattini:q<l>(r=<r>)`` (raw, when ``include_raw``) and the same names
suffixed ``_L<L>`` for the coarse-grained ones. Defaults: G on 0.8-3.0 by 0.1 with delta 0.1 (46 numbers),
q_1..q_8 on shells 0.9-2.1 by 0.3 with q_delta 0.1 (40 numbers), L = 1, 2, 3.
"""

from __future__ import annotations

import freud
import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.structure.descriptors import DescriptorSet, register
from glasspipe.structure.descriptors.coarse_grain import coarse_grain, max_cutoff, neighbour_rows
from glasspipe.structure.radial import _type_names

RADIAL_WINDOW = 6.0  # G: pairs within this many delta of the shell radius
ANGULAR_WINDOW = 5.0  # q_l: likewise, q_delta


def grid(start: float, stop: float, step: float) -> np.ndarray:
    """start, start + step, ... up to stop inclusive (round-off tolerant)."""
    if not step > 0 or stop < start:
        raise ValueError(f"grid {start}..{stop} by {step} is empty")
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return start + step * np.arange(count)


def shell_densities(rows, typeid: np.ndarray, radii: np.ndarray, delta: float, n_types: int) -> np.ndarray:
    """G_i^b(r, delta) for every particle, type b and radius: array (N, n_types, n_radii)."""
    i = rows.rows()
    d = rows.distances
    tj = typeid[rows.indices].astype(np.int64)
    out = np.zeros((rows.n, n_types, len(radii)))
    for k, r in enumerate(radii):
        near = np.abs(d - r) < RADIAL_WINDOW * delta
        w = np.exp(-((d[near] - r) ** 2) / (2 * delta * delta))
        out[:, :, k] = np.bincount(i[near] * n_types + tj[near], weights=w, minlength=rows.n * n_types).reshape(
            rows.n, n_types
        )
    return out


def shell_bond_order(positions: np.ndarray, box_length: float, rows, radii: np.ndarray, delta: float, ls) -> np.ndarray:
    """q_l(i, r) with Gaussian shell weights (module docstring): array (N, n_radii, n_l)."""
    ls = [int(v) for v in ls]
    box = freud.box.Box.cube(box_length)
    points = box.wrap(np.asarray(positions, dtype=np.float32))
    pos = np.asarray(positions, dtype=np.float64)
    i_all = rows.rows()
    out = np.zeros((rows.n, len(radii), len(ls)))
    steinhardt = freud.order.Steinhardt(l=ls, weighted=True)
    for k, r in enumerate(radii):
        near = np.abs(rows.distances - r) < ANGULAR_WINDOW * delta
        i, j, d = i_all[near], rows.indices[near].astype(np.int64), rows.distances[near]
        if len(i) == 0:
            continue
        vectors = pos[j] - pos[i]
        vectors -= box_length * np.round(vectors / box_length)
        w = np.exp(-((d - r) ** 2) / (2 * delta * delta))
        nlist = freud.locality.NeighborList.from_arrays(rows.n, rows.n, i, j, vectors.astype(np.float32), w)
        steinhardt.compute((box, points), neighbors=nlist)
        q = np.asarray(steinhardt.particle_order, dtype=np.float64).reshape(rows.n, len(ls))
        out[:, k, :] = np.nan_to_num(q, nan=0.0)
    return out


@register
class Boattini(DescriptorSet):
    """Boattini et al. radial shell densities and shell-weighted q_l, raw and coarse-grained (module docstring)."""

    name = "boattini"
    defaults = {
        "r_min": 0.8,
        "r_max": 3.0,
        "dr": 0.1,
        "delta": 0.1,
        "l": [1, 2, 3, 4, 5, 6, 7, 8],
        "q_r_min": 0.9,
        "q_r_max": 2.1,
        "q_dr": 0.3,
        "q_delta": 0.1,
        "lengths": [1.0, 2.0, 3.0],
        "r_cg": None,
        "include_raw": True,
    }
    schema = {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": "Boattini et al. shell densities G_i^b(r, delta) and shell-weighted q_l, exp(-r/L) averaged",
        "properties": {
            "r_min": {"type": "number", "exclusiveMinimum": 0, "default": 0.8, "description": "first G radius"},
            "r_max": {"type": "number", "exclusiveMinimum": 0, "default": 3.0, "description": "last G radius"},
            "dr": {"type": "number", "exclusiveMinimum": 0, "default": 0.1, "description": "G radius step"},
            "delta": {"type": "number", "exclusiveMinimum": 0, "default": 0.1, "description": "G Gaussian width"},
            "l": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 12},
                "minItems": 0,
                "default": [1, 2, 3, 4, 5, 6, 7, 8],
                "description": "bond-order degrees l of q_l (dimensionless); empty for none",
            },
            "q_r_min": {"type": "number", "exclusiveMinimum": 0, "default": 0.9, "description": "first q_l shell"},
            "q_r_max": {"type": "number", "exclusiveMinimum": 0, "default": 2.1, "description": "last q_l shell"},
            "q_dr": {"type": "number", "exclusiveMinimum": 0, "default": 0.3, "description": "q_l shell step"},
            "q_delta": {"type": "number", "exclusiveMinimum": 0, "default": 0.1, "description": "q_l shell width"},
            "lengths": {
                "type": "array",
                "items": {"type": "number", "exclusiveMinimum": 0},
                "minItems": 0,
                "default": [1.0, 2.0, 3.0],
                "description": "coarse-graining lengths L of the weights exp(-r/L) (sigma_AA); empty for none",
            },
            "r_cg": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "default": None,
                "description": "coarse-graining cutoff (sigma_AA); null: min(3 max(lengths), half the box)",
            },
            "include_raw": {"type": "boolean", "default": True, "description": "keep the raw (L = 0) descriptors"},
        },
    }

    def compute(self, snapshot: Snapshot, settings: dict) -> pd.DataFrame:
        names = _type_names(snapshot)
        radii = grid(settings["r_min"], settings["r_max"], settings["dr"])
        q_radii = grid(settings["q_r_min"], settings["q_r_max"], settings["q_dr"])
        ls = list(settings["l"])
        delta, q_delta = float(settings["delta"]), float(settings["q_delta"])
        reach = max(radii[-1] + RADIAL_WINDOW * delta, q_radii[-1] + ANGULAR_WINDOW * q_delta if ls else 0.0)
        if reach >= max_cutoff(snapshot.box_length):
            raise ValueError(f"boattini: the descriptors reach r = {reach:.3f}, beyond half the box length")
        rows = neighbour_rows(snapshot.positions, snapshot.box_length, reach)
        g = shell_densities(rows, snapshot.typeid, radii, delta, len(names))
        columns = {}
        for b, name in enumerate(names):
            for k, r in enumerate(radii):
                columns[f"G_{name}(r={r:.2f})"] = g[:, b, k]
        if ls:
            q = shell_bond_order(snapshot.positions, snapshot.box_length, rows, q_radii, q_delta, ls)
            for k, r in enumerate(q_radii):
                for m, ell in enumerate(ls):
                    columns[f"q{ell}(r={r:.2f})"] = q[:, k, m]
        raw = np.column_stack(list(columns.values()))
        out = {f"boattini:{c}": raw[:, n] for n, c in enumerate(columns)} if settings["include_raw"] else {}
        lengths = [float(v) for v in settings["lengths"]]
        if lengths:
            r_cg = settings["r_cg"]
            r_cg = min(3.0 * max(lengths), max_cutoff(snapshot.box_length)) if r_cg is None else float(r_cg)
            cg_rows = neighbour_rows(snapshot.positions, snapshot.box_length, r_cg)
            cg = coarse_grain(raw, cg_rows, lengths)  # (N, n_L, F)
            for k, length in enumerate(lengths):
                for n, c in enumerate(columns):
                    out[f"boattini:{c}_L{length:g}"] = cg[:, k, n]
        if not out:
            raise ValueError("boattini: include_raw is false and no coarse-graining length is given")
        return self.frame(snapshot, out)
