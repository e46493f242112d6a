"""Descriptor set ``mechanics`` against independent numbers: forces from central differences of the energy,
and Hessian blocks from central differences of those forces, both from a brute-force all-pairs energy written
here (it shares no code with the module: it reads only the KA parameter tables)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_sequential_addition

from glasspipe.io.gsd_io import Snapshot
from glasspipe.potential import KobAndersen
from glasspipe.structure.descriptors import compute_descriptors
from glasspipe.structure.descriptors.mechanics import forces_and_hessian_blocks

PARTICLES = [0, 7, 50, 120, 200, 239, 240, 250, 260, 275, 290, 299]  # A below 240, B from 240


def _liquid_like(n: int = 300, density: float = 1.2, seed: int = 5) -> Snapshot:
    """A KA 80:20 configuration without overlaps (box 6.3 > 2 x 2.5, so the minimum image is unique)."""
    rng = np.random.default_rng(seed)
    box_length = (n / density) ** (1 / 3)
    positions = random_sequential_addition(n, box_length, 0.75, rng)  # far below RSA jamming at 1.2
    typeid = (np.arange(n) >= int(0.8 * n)).astype(np.int32)
    return Snapshot(positions=positions, typeid=typeid, box_length=box_length)


def _energy_of(positions: np.ndarray, typeid: np.ndarray, box_length: float, i: int) -> float:
    """The part of the KA energy (LJ truncated at 2.5 sigma_ab) that involves particle i: all pairs (i, j),
    minimum image. Its derivatives with respect to r_i are those of the total energy."""
    ka = KobAndersen()
    d = positions - positions[i]
    d -= box_length * np.round(d / box_length)
    r = np.sqrt((d * d).sum(axis=1))
    others = np.arange(len(positions)) != i
    r, tj = r[others], typeid[others]
    eps, sigma, r_cut = ka.epsilon[typeid[i], tj], ka.sigma[typeid[i], tj], ka.r_cut[typeid[i], tj]
    sr6 = (sigma / r) ** 6
    return float(np.sum(np.where(r < r_cut, 4 * eps * (sr6 * sr6 - sr6), 0.0)))


def _numeric_force(positions, typeid, box_length, i, h=1e-6) -> np.ndarray:
    force = np.zeros(3)
    for a in range(3):
        plus, minus = positions.copy(), positions.copy()
        plus[i, a] += h
        minus[i, a] -= h
        force[a] = -(_energy_of(plus, typeid, box_length, i) - _energy_of(minus, typeid, box_length, i)) / (2 * h)
    return force


def test_forces_match_finite_differences_of_the_energy():
    """Central differences with h = 1e-6: truncation ~h^2 and round-off ~1e-16 / h, about 1e-8 relative;
    the bound is 1e-6 of the largest force component."""
    snapshot = _liquid_like()
    force, _ = forces_and_hessian_blocks(snapshot)
    for i in PARTICLES:
        numeric = _numeric_force(snapshot.positions, snapshot.typeid, snapshot.box_length, i)
        assert np.max(np.abs(force[i] - numeric)) < 1e-6 * np.max(np.abs(force)), i


def test_hessian_blocks_match_finite_differences_of_the_forces():
    """H_ii[a, b] = -dF_i[a] / dr_i[b], differences of differences (h = 1e-4 outside, 1e-6 inside): error about
    1e-6 relative, so 1e-4 of the block's largest entry is a bound that a wrong sign or a missing term (errors
    of order 1) cannot meet. 12 particles of both types."""
    snapshot = _liquid_like()
    _, hessian = forces_and_hessian_blocks(snapshot)
    h = 1e-4
    for i in PARTICLES:
        numeric = np.zeros((3, 3))
        for b in range(3):
            plus, minus = snapshot.positions.copy(), snapshot.positions.copy()
            plus[i, b] += h
            minus[i, b] -= h
            f_plus = _numeric_force(plus, snapshot.typeid, snapshot.box_length, i)
            f_minus = _numeric_force(minus, snapshot.typeid, snapshot.box_length, i)
            numeric[:, b] = -(f_plus - f_minus) / (2 * h)
        assert np.max(np.abs(hessian[i] - numeric)) < 1e-4 * np.max(np.abs(hessian[i])), i


def test_descriptor_columns_are_invariants_of_the_blocks():
    snapshot = _liquid_like()
    table = compute_descriptors(snapshot, {"mechanics": {}})
    force, _ = forces_and_hessian_blocks(snapshot)
    assert table["mechanics:force"].to_numpy() == pytest.approx(np.linalg.norm(force, axis=1))
    eig = table[[f"mechanics:hessian_eig{k}" for k in range(3)]].to_numpy()
    assert np.all(np.diff(eig, axis=1) >= 0)
    assert eig.sum(axis=1) == pytest.approx(table["mechanics:hessian_trace"].to_numpy(), rel=1e-10)
    # A rotation by 90 degrees about z (a symmetry of the cubic box) leaves every column unchanged.
    rotated = snapshot.positions[:, [1, 0, 2]] * np.array([-1.0, 1.0, 1.0])
    turned = compute_descriptors(Snapshot(rotated, snapshot.typeid, snapshot.box_length), {"mechanics": {}})
    for column in table.columns[2:]:
        assert turned[column].to_numpy() == pytest.approx(table[column].to_numpy(), rel=1e-9, abs=1e-9)
