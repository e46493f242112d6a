"""Radial distribution functions: the system g_ab(r) and per-particle, type-resolved g_i^b(r) descriptors.

Per-particle descriptors follow Landes et al. (Phys. Rev. E 101, 010602 (2020)) and Boattini et al.
(radial structure functions): for particle i and neighbour type b,

    g_i^b(r_k) = n_i^b(k) / (rho_b * V_k),    rho_b = N_b / V,    V_k = 4 pi / 3 (r_{k+1}^3 - r_k^3),

where n_i^b(k) counts the b particles whose minimum-image distance from i lies in [r_k, r_{k+1}). Bins start
at r_min and have width dr; only whole bins are kept, so the last edge never exceeds r_max. Averaged over
the particles of type a, g_i^b gives g_ab(r) up to the factor (N_b - delta_ab) / N_b.

The system pair correlation ``pair_correlation`` is freud's RDF (freud.density.RDF), normalised by the
number of distinct partners, N_a (N_b - delta_ab) / V, so that an ideal gas gives 1 at every r; only tests
and analyses read it.

The per-particle descriptors stay hand-written: freud's RDF gives the system's g(r), not one histogram per
particle and neighbour type, and these descriptors are model inputs (the ``radial`` descriptor set feeds the
ridge and MLP models), binned in double precision from the pair list of
:func:`glasspipe.structure.neighbours.periodic_pairs` (freud, no cap on the number of neighbours) with
``np.bincount``.
"""

from __future__ import annotations

import freud
import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.structure.neighbours import periodic_pairs


def radial_bins(r_min: float, r_max: float, dr: float) -> np.ndarray:
    """Bin edges r_min, r_min + dr, ... up to the last whole bin that ends at or before r_max."""
    if not r_min >= 0:
        raise ValueError(f"r_min = {r_min} must be non-negative")
    if not dr > 0:
        raise ValueError(f"dr = {dr} must be positive")
    if not r_max > r_min:
        raise ValueError(f"r_max = {r_max} must exceed r_min = {r_min}")
    # The small tolerance keeps a bin whose edge equals r_max up to round-off (e.g. 0.7 + 40 * 0.1 = 4.7).
    n_bins = int(np.floor((r_max - r_min) / dr + 1e-9))
    if n_bins < 1:
        raise ValueError(f"dr = {dr} is wider than the radial range [{r_min}, {r_max}]")
    return r_min + dr * np.arange(n_bins + 1)


def _check_range(snapshot: Snapshot, r_max: float) -> None:
    half = 0.5 * snapshot.box_length
    if r_max >= half:
        raise ValueError(
            f"r_max = {r_max} must be below half the box length "
            f"({half:.4f} for L = {snapshot.box_length:.4f}); "
            "larger distances are not unique under the minimum image convention"
        )


def _type_names(snapshot: Snapshot) -> list[str]:
    n_types = max(len(snapshot.type_names), int(snapshot.typeid.max(initial=-1)) + 1)
    names = list(snapshot.type_names)[:n_types]
    if len(names) < n_types:
        raise ValueError(f"snapshot has type ids up to {n_types - 1} but only type names {list(snapshot.type_names)}")
    return names


def _binned_pairs(snapshot: Snapshot, edges: np.ndarray):
    """Pairs (i, j) with r_ij in [edges[0], edges[-1]) and the bin index of each."""
    pairs = periodic_pairs(snapshot.positions, snapshot.box_length, float(edges[-1]))
    dr = edges[1] - edges[0]
    keep = pairs.distances >= edges[0]
    i, j, d = pairs.i[keep], pairs.j[keep], pairs.distances[keep]
    k = np.floor((d - edges[0]) / dr).astype(np.int64)
    np.clip(k, 0, len(edges) - 2, out=k)  # round-off at the last edge
    return i, j, k


def _shell_volumes(edges: np.ndarray) -> np.ndarray:
    return 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)


def descriptor_columns(r_min: float, r_max: float, dr: float, type_names=("A", "B")) -> list[str]:
    """Names of the descriptor columns, e.g. 'g_A(r=0.750)': bin centres (3 decimals), type A then B."""
    edges = radial_bins(r_min, r_max, dr)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return [f"g_{name}(r={c:.3f})" for name in type_names for c in centres]


def radial_descriptors(snapshot: Snapshot, r_min: float, r_max: float, dr: float) -> pd.DataFrame:
    """Per-particle, type-resolved radial distribution descriptors g_i^b(r_k) (see the module docstring).

    Returns one row per particle, in particle order: ``particle`` (int), ``type`` (the type name), then one
    column per (neighbour type b, bin k) named ``g_<b>(r=<bin centre>)``, all bins of the first type first.
    Where the system holds no particle of type b the g_i^b columns are 0.
    """
    _check_range(snapshot, r_max)
    edges = radial_bins(r_min, r_max, dr)
    names = _type_names(snapshot)
    n, n_types, n_bins = snapshot.n_particles, len(names), len(edges) - 1
    i, j, k = _binned_pairs(snapshot, edges)
    flat = (i * n_types + snapshot.typeid[j]) * n_bins + k
    counts = np.bincount(flat, minlength=n * n_types * n_bins).reshape(n, n_types, n_bins)
    n_of_type = np.bincount(snapshot.typeid, minlength=n_types)
    rho = n_of_type / snapshot.volume
    norm = rho[:, None] * _shell_volumes(edges)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(norm > 0, counts / np.where(norm > 0, norm, 1.0), 0.0)
    columns = descriptor_columns(r_min, r_max, dr, names)
    frame = pd.DataFrame(g.reshape(n, n_types * n_bins), columns=columns)
    frame.insert(0, "type", np.asarray(names, dtype=object)[snapshot.typeid])
    frame.insert(0, "particle", np.arange(n, dtype=np.int64))
    return frame


def pair_correlation(snapshot: Snapshot, r_max: float, dr: float) -> pd.DataFrame:
    """The system's partial and total radial distribution functions on bins [0, dr), [dr, 2 dr), ... < r_max,
    from freud.density.RDF.

    g_ab(r_k) = (ordered pairs i in a, j in b at distance in bin k) / (N_a (N_b - delta_ab) / V * V_k), so
    that an ideal gas gives 1 at every r (freud's 'finite_size' normalisation for a = b and the total, its
    'exact' one between disjoint types). Columns: ``r`` (bin centre, as :func:`radial_bins`), ``g_AA``,
    ``g_AB``, ``g_BB`` (named by the snapshot's type names; for more than two types every pair a <= b),
    ``g_all``. A partial whose normalisation vanishes (a type with no particles, or a single particle of it)
    is NaN. freud bins distances in single precision: a pair within ~1e-7 sigma of a bin edge may fall in
    the neighbouring bin (:func:`radial_descriptors` bins in double precision).
    """
    _check_range(snapshot, r_max)
    edges = radial_bins(0.0, r_max, dr)
    names = _type_names(snapshot)
    n_types, n_bins = len(names), len(edges) - 1
    box = freud.box.Box.cube(snapshot.box_length)
    points = box.wrap(np.asarray(snapshot.positions, dtype=np.float32))

    def rdf(of: np.ndarray, around: np.ndarray | None) -> np.ndarray:
        """g of ``of`` around ``around`` (None: ``of`` around itself, self-pairs excluded)."""
        same = around is None
        if len(of) < 2 if same else (len(of) == 0 or len(around) == 0):
            return np.full(n_bins, np.nan)
        calc = freud.density.RDF(
            bins=n_bins, r_max=float(edges[-1]), normalization_mode="finite_size" if same else "exact"
        )
        calc.compute((box, of), query_points=around)
        return np.asarray(calc.rdf, dtype=np.float64)

    data = {"r": 0.5 * (edges[1:] + edges[:-1])}
    for a in range(n_types):
        for b in range(a, n_types):
            of_type = points[snapshot.typeid == b]
            data[f"g_{names[a]}{names[b]}"] = rdf(of_type, None if a == b else points[snapshot.typeid == a])
    data["g_all"] = rdf(points, None)
    return pd.DataFrame(data)
