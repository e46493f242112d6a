"""Descriptor sets (glasspipe.structure.descriptors) against brute-force loops and known values.

Small random systems (N of order 50) in periodic boxes; each test states the expected value and tolerance.
"""

from __future__ import annotations

import itertools

import jsonschema
import numpy as np
import pytest
from conftest import random_sequential_addition
from scipy.special import ndtr, sph_harm_y

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.reference import evaluate
from glasspipe.potential import KobAndersen
from glasspipe.structure.descriptors import DESCRIPTOR_SETS, compute_descriptors
from glasspipe.structure.descriptors.boattini import shell_bond_order, shell_densities
from glasspipe.structure.descriptors.coarse_grain import coarse_grain, neighbour_rows
from glasspipe.structure.descriptors.glassmlp import particle_energies, voronoi_cells
from glasspipe.structure.descriptors.radial import smoothed_counts
from glasspipe.structure.radial import _shell_volumes, radial_bins


def random_snapshot(n=50, box_length=5.0, seed=0, min_distance=0.7) -> Snapshot:
    rng = np.random.default_rng(seed)
    positions = random_sequential_addition(n, box_length, min_distance, rng)
    typeid = (rng.random(n) < 0.2).astype(np.int32)
    return Snapshot(positions=positions, typeid=typeid, box_length=box_length)


def fcc_snapshot(cells=3, density=1.2) -> Snapshot:
    a = (4.0 / density) ** (1.0 / 3.0)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cell = np.array(list(itertools.product(range(cells), repeat=3)), dtype=float)
    positions = ((cell[:, None, :] + basis[None]) * a).reshape(-1, 3) + 0.1 * a  # off the box faces
    length = cells * a
    positions -= length * np.floor(positions / length + 0.5)
    return Snapshot(positions=positions, typeid=np.zeros(len(positions), np.int32), box_length=length)


def min_image(snapshot: Snapshot, i: int, j: int) -> np.ndarray:
    d = snapshot.positions[j] - snapshot.positions[i]
    return d - snapshot.box_length * np.round(d / snapshot.box_length)


def all_distances(snapshot: Snapshot) -> np.ndarray:
    n = snapshot.n_particles
    return np.array([[np.linalg.norm(min_image(snapshot, i, j)) for j in range(n)] for i in range(n)])


# --- coarse-graining --------------------------------------------------------------------------------------


def test_coarse_grain_matches_double_loop():
    """x̄_i(L) = sum_{j: r_ij < r_cg} x_j e^{-r_ij/L} / sum_j e^{-r_ij/L} (j including i), per type mask too:
    equals a double Python loop to 1e-10 (relative), for 3 lengths and 2 features."""
    snap = random_snapshot(n=50, box_length=5.0, seed=1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 2))
    lengths = [0.5, 1.0, 2.0]
    r_cg = 2.2
    rows = neighbour_rows(snap.positions, snap.box_length, r_cg)
    masks = np.stack([snap.typeid == 0, snap.typeid == 1])
    fast, sums = coarse_grain(x, rows, lengths, masks=masks, return_weights=True)
    fast_all = coarse_grain(x, rows, lengths)
    dist = all_distances(snap)
    for k, length in enumerate(lengths):
        for i in range(50):
            num_all, den_all = np.zeros(2), 0.0
            num, den = np.zeros((2, 2)), np.zeros(2)
            for j in range(50):
                if dist[i, j] < r_cg:
                    w = np.exp(-dist[i, j] / length)
                    num_all += w * x[j]
                    den_all += w
                    num[snap.typeid[j]] += w * x[j]
                    den[snap.typeid[j]] += w
            np.testing.assert_allclose(fast_all[i, k], num_all / den_all, rtol=1e-10, atol=1e-12)
            for t in range(2):
                assert sums[t, i, k] == pytest.approx(den[t], rel=1e-10, abs=1e-300)
                if den[t] > 0:
                    np.testing.assert_allclose(fast[t, i, k], num[t] / den[t], rtol=1e-10, atol=1e-12)
                else:
                    assert np.all(np.isnan(fast[t, i, k]))


# --- radial -----------------------------------------------------------------------------------------------


def test_radial_hard_equals_existing_and_small_smoothing_equals_hard():
    """smoothing = 0 is radial_descriptors exactly; smoothing = 1e-7 gives the same g to 1e-9 (no neighbour of
    this configuration lies within 6e-7 of a bin edge, checked)."""
    snap = random_snapshot(n=60, box_length=6.0, seed=3)
    settings = {"r_min": 0.7, "r_max": 2.7, "dr": 0.1}
    hard = compute_descriptors(snap, {"radial": dict(settings, smoothing=0.0)})
    edges = radial_bins(0.7, 2.7, 0.1)
    dist = all_distances(snap)[~np.eye(60, dtype=bool)]
    assert np.min(np.abs(dist[:, None] - edges[None, :])) > 1e-5
    smooth = compute_descriptors(snap, {"radial": dict(settings, smoothing=1e-7)})
    assert list(hard.columns) == list(smooth.columns)
    assert hard.columns[2] == "radial:g_A(r=0.750)"
    np.testing.assert_allclose(smooth.iloc[:, 2:].to_numpy(), hard.iloc[:, 2:].to_numpy(), rtol=0, atol=1e-9)
    assert hard["radial:g_A(r=0.750)"].sum() > 0 or hard.iloc[:, 2:].to_numpy().sum() > 0


def test_radial_smoothing_preserves_counts():
    """Summed over bins, the smoothed counts of particle i are sum_j [Phi((r_max - r_ij)/s) - Phi((r_min - r_ij)/s)]
    (to 1e-9 per neighbour), i.e. the hard neighbour count in [r_min, r_max) up to the neighbours within 6 s of
    either end."""
    snap = random_snapshot(n=60, box_length=6.0, seed=4)
    r_min, r_max, dr, s = 0.7, 2.2, 0.05, 0.08
    counts = smoothed_counts(snap, r_min, r_max, dr, s)  # (N, types, bins)
    table = compute_descriptors(snap, {"radial": {"r_min": r_min, "r_max": r_max, "dr": dr, "smoothing": s}})
    # g -> counts: g * rho_b * V_k
    edges = radial_bins(r_min, r_max, dr)
    rho = np.bincount(snap.typeid, minlength=2) / snap.volume
    g = table.iloc[:, 2:].to_numpy().reshape(60, 2, -1)
    np.testing.assert_allclose(g * rho[None, :, None] * _shell_volumes(edges)[None, None, :], counts, atol=1e-12)
    dist = all_distances(snap)
    for i in range(60):
        others = np.delete(np.arange(60), i)
        d = dist[i, others]
        expected = np.sum(ndtr((r_max - d) / s) - ndtr((r_min - d) / s))
        # the Gaussian tails beyond 6 s (Phi(-6) = 1e-9 per neighbour) are dropped
        assert counts[i].sum() == pytest.approx(expected, abs=1e-9 * len(d))
        hard = np.sum((d >= r_min) & (d < r_max))
        near_ends = np.sum((np.abs(d - r_min) < 6 * s) | (np.abs(d - r_max) < 6 * s))
        assert abs(counts[i].sum() - hard) <= near_ends + 1e-9
        # and the integral of the smoothed density: sum_k (counts_k / dr) * dr
        assert np.sum(counts[i] / dr) * dr == pytest.approx(counts[i].sum(), rel=1e-12)


# --- bond order -------------------------------------------------------------------------------------------


def test_q_l_of_fcc():
    """Perfect fcc (12 neighbours, Gaussian shell centred on them): q_6 = 0.57452, q_4 = 0.19094 (to 1e-4)."""
    snap = fcc_snapshot()
    nn = (4.0 / 1.2) ** (1.0 / 3.0) / np.sqrt(2.0)
    rows = neighbour_rows(snap.positions, snap.box_length, nn + 0.3)
    q = shell_bond_order(snap.positions, snap.box_length, rows, np.array([nn]), 0.1, [4, 6])
    np.testing.assert_allclose(q[:, 0, 0], 0.19094, atol=1e-4)
    np.testing.assert_allclose(q[:, 0, 1], 0.57452, atol=1e-4)


def test_q_l_matches_spherical_harmonics():
    """q_l(i, r) = sqrt(4 pi/(2l+1) sum_m |sum_j w_ij Y_lm / sum_j w_ij|^2), w Gaussian shell weights: freud
    (single precision) equals scipy's sph_harm_y brute force to 2e-5 for l = 1..8, two shells."""
    snap = random_snapshot(n=40, box_length=5.0, seed=5)
    radii, delta, ls = np.array([1.0, 1.6]), 0.15, list(range(1, 9))
    rows = neighbour_rows(snap.positions, snap.box_length, 1.6 + 5 * delta)
    q = shell_bond_order(snap.positions, snap.box_length, rows, radii, delta, ls)
    for i in range(snap.n_particles):
        vecs = np.array([min_image(snap, i, j) for j in range(snap.n_particles) if j != i])
        r = np.linalg.norm(vecs, axis=1)
        theta = np.arccos(np.clip(vecs[:, 2] / r, -1, 1))
        phi = np.arctan2(vecs[:, 1], vecs[:, 0])
        for k, shell in enumerate(radii):
            near = np.abs(r - shell) < 5 * delta
            w = np.exp(-((r[near] - shell) ** 2) / (2 * delta**2))
            for m_l, ell in enumerate(ls):
                qlm = [np.sum(w * sph_harm_y(ell, m, theta[near], phi[near])) / w.sum() for m in range(-ell, ell + 1)]
                expected = np.sqrt(4 * np.pi / (2 * ell + 1) * np.sum(np.abs(qlm) ** 2))
                assert q[i, k, m_l] == pytest.approx(expected, abs=2e-5)


def test_shell_densities_match_loop():
    """G_i^b(r, delta) = sum_{j != i of type b} exp(-(r_ij - r)^2 / (2 delta^2)) equals a loop over all pairs to
    1e-10 relative, or 1e-6 absolute: the tails beyond 6 delta (< 1.6e-8 per pair) are dropped."""
    snap = random_snapshot(n=50, box_length=5.0, seed=6)
    radii, delta = np.array([0.9, 1.3, 1.6]), 0.12
    rows = neighbour_rows(snap.positions, snap.box_length, 1.6 + 6 * delta)
    g = shell_densities(rows, snap.typeid, radii, delta, 2)
    dist = all_distances(snap)
    for i in range(50):
        for b in range(2):
            for k, r in enumerate(radii):
                expected = sum(
                    np.exp(-((dist[i, j] - r) ** 2) / (2 * delta**2))
                    for j in range(50)
                    if j != i and snap.typeid[j] == b
                )
                assert g[i, b, k] == pytest.approx(expected, abs=1e-6, rel=1e-10)


# --- Voronoi and energies ---------------------------------------------------------------------------------


def test_voronoi_volumes():
    """Voronoi volumes sum to the box volume (relative 1e-8); perfect fcc cells are 1/rho = 1/1.2 (relative 1e-5,
    single-precision positions) with surface 6 sqrt(2) a^2 / 2^(...)= rhombic dodecahedron area (relative 1e-4)."""
    snap = random_snapshot(n=50, box_length=5.0, seed=7)
    volumes, areas = voronoi_cells(snap)
    assert volumes.sum() == pytest.approx(snap.volume, rel=1e-8)
    assert np.all(areas > 0)
    fcc = fcc_snapshot(cells=3, density=1.2)
    volumes, areas = voronoi_cells(fcc)
    np.testing.assert_allclose(volumes, 1 / 1.2, rtol=1e-5)
    # rhombic dodecahedron of volume V: edge e = (3 sqrt(3) V / 16)^(1/3), area 8 sqrt(2) e^2
    edge = (3 * np.sqrt(3) / 16 / 1.2) ** (1 / 3)
    np.testing.assert_allclose(areas, 8 * np.sqrt(2) * edge**2, rtol=1e-4)


@pytest.mark.parametrize("mode", ["shift", "truncate"])
def test_particle_energies_sum_to_total(mode):
    """sum_i E_i (E_i = 1/2 sum_j V(r_ij)) equals glasspipe.md.reference.evaluate's total energy to 1e-10
    (relative), and each E_i equals evaluate's particle energy to 1e-10."""
    snap = random_snapshot(n=60, box_length=6.0, seed=8, min_distance=0.8)
    potential = KobAndersen(cutoff_mode=mode)
    energies = particle_energies(snap, potential)
    reference = evaluate(snap, potential)
    assert energies.sum() == pytest.approx(reference.potential_energy, rel=1e-10)
    np.testing.assert_allclose(energies, reference.particle_energies, rtol=1e-10, atol=1e-12)


def test_glassmlp_columns_match_loop():
    """glassmlp's rho, E, vol and varE columns for L = 1 over A, B and all neighbours equal a double loop to 1e-9."""
    n = 70
    snap = random_snapshot(n=n, box_length=6.0, seed=9, min_distance=0.8)
    table = compute_descriptors(snap, {"glassmlp": {"lengths": [1.0], "r_cg": 2.3}})
    energies = evaluate(snap, KobAndersen()).particle_energies
    volumes, _ = voronoi_cells(snap)
    dist = all_distances(snap)
    for i in range(n):
        inside = dist[i] < 2.3
        for name, group in (("A", snap.typeid == 0), ("B", snap.typeid == 1), ("all", np.ones(n, bool))):
            sel = inside & group
            w = np.exp(-dist[i, sel])
            mean_e = np.sum(w * energies[sel]) / w.sum()
            assert table[f"glassmlp:rho_{name}_L1"][i] == pytest.approx(w.sum(), rel=1e-10)
            assert table[f"glassmlp:E_{name}_L1"][i] == pytest.approx(mean_e, rel=1e-9)
            assert table[f"glassmlp:vol_{name}_L1"][i] == pytest.approx(np.sum(w * volumes[sel]) / w.sum(), rel=1e-9)
            var = np.sum(w * (energies[sel] - mean_e) ** 2) / w.sum()
            assert table[f"glassmlp:varE_{name}_L1"][i] == pytest.approx(var, rel=1e-7, abs=1e-9)


# --- registry and API -------------------------------------------------------------------------------------


def test_registry_schema_and_join():
    """Every set's defaults validate against its JSON schema (draft 2020-12) and every property has a default
    and a description; compute_descriptors joins sets with particle/type once and '<set>:' column prefixes."""
    assert {"radial", "boattini", "glassmlp"} <= set(DESCRIPTOR_SETS)
    for item in DESCRIPTOR_SETS.values():
        jsonschema.Draft202012Validator.check_schema(item.schema)
        jsonschema.validate(item.defaults, item.schema, cls=jsonschema.Draft202012Validator)
        assert item.schema["additionalProperties"] is False
        for prop in item.schema["properties"].values():
            assert "default" in prop and "description" in prop
    snap = random_snapshot(n=50, box_length=6.5, seed=10)
    sets = {
        "radial": {"r_max": 2.7, "dr": 0.1},
        "boattini": {"lengths": [1.0], "r_cg": 2.0, "l": [4, 6], "r_max": 2.0},
        "glassmlp": {"lengths": [1.0, 2.0], "r_cg": 3.0},
    }
    table = compute_descriptors(snap, sets)
    assert list(table.columns[:2]) == ["particle", "type"]
    assert table["particle"].tolist() == list(range(50))
    assert table["type"].tolist() == ["AB"[t] for t in snap.typeid]
    features = table.columns[2:]
    assert all(c.split(":")[0] in sets for c in features) and len(set(features)) == len(features)
    assert np.isfinite(table[features].to_numpy(dtype=float)).all()
    with pytest.raises(ValueError, match="unknown setting"):
        compute_descriptors(snap, {"radial": {"bins": 3}})
    with pytest.raises(ValueError, match="unknown descriptor set"):
        compute_descriptors(snap, {"nope": {}})


def test_paired_descriptors_read_both_configurations():
    """structure.input 'both': the inherent structure's columns keep their names, the thermal ones are
    prefixed, and the displacement column is the minimum-image distance between the two position sets
    (a shift of 0.1 sigma along x for every particle gives exactly 0.1, across the periodic boundary too)."""
    from glasspipe.structure.descriptors import compute_descriptors, compute_paired_descriptors

    rng = np.random.default_rng(11)
    box_length = (300 / 1.2) ** (1 / 3)
    positions = random_sequential_addition(300, box_length, 0.75, rng)
    typeid = (np.arange(300) >= 240).astype(np.int32)
    inherent = Snapshot(positions=positions, typeid=typeid, box_length=box_length)
    shifted = positions + np.array([0.1, 0.0, 0.0])
    shifted -= box_length * np.round(shifted / box_length)
    thermal = Snapshot(positions=shifted, typeid=typeid, box_length=box_length)
    sets = {"radial": {"r_min": 0.7, "r_max": 2.5, "dr": 0.2}}
    table = compute_paired_descriptors(thermal, inherent, sets)
    alone = compute_descriptors(inherent, sets)
    for column in alone.columns[2:]:
        assert table[column].to_numpy() == pytest.approx(alone[column].to_numpy())
        # A uniform translation changes no descriptor: the thermal copy equals the inherent one.
        assert table["thermal/" + column].to_numpy() == pytest.approx(alone[column].to_numpy(), abs=1e-9)
    assert table["thermal/displacement_to_inherent"].to_numpy() == pytest.approx(np.full(300, 0.1), abs=1e-12)
    with pytest.raises(ValueError, match="different particles"):
        compute_paired_descriptors(Snapshot(shifted[:-1], typeid[:-1], box_length), inherent, sets)
