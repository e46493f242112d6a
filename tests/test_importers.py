"""Importers of public datasets (glasspipe.importers): BOTAN npz, GlassBench npz, DeepMind pickle.

Real samples come from the ``shared_data`` fixture (skipped where absent); GlassBench has no public sample
here, so its files are synthetic, written in the format documented in glasspipe/importers/glassbench.py.
Expected values are computed independently in the tests (brute-force loops that share no code with the
importers) or taken from REFERENCE.md with the tolerance its rounding implies.
"""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest
from conftest import shared_data_dir

from glasspipe import importers
from glasspipe.importers import DatasetError, labels_metadata, labels_table, list_files, load, write_imported
from glasspipe.importers.safe_pickle import UnsafePickleError, load_bytes

BOTAN_FILE = "botan_T0.44_cfg1_tc07.npz"
DEEPMIND_FILE = "deepmind_test_small.pickle"
BOTAN_BOX = 15.05658  # REFERENCE.md: (4096 / 1.2)^(1/3), not stored in the file
T044_GRID = [0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, 41200, 130000]  # REFERENCE.md, GlassBench T = 0.44


def _match(path, key: str | None = None) -> str:
    """Regex for an error message naming the file ``path`` and (if given) the key."""
    name = re.escape(os.path.basename(str(path)))
    return name if key is None else f"{name}(.|\n)*{re.escape(key)}"


# ---------------------------------------------------------------------------------------- synthetic files
def _ka_positions(n: int, box: float, rng) -> np.ndarray:
    return rng.uniform(0.0, box, (n, 3))


def _types(n: int) -> np.ndarray:
    return (np.arange(n) >= int(0.8 * n)).astype(np.int8)


def _write_botan(path, n=50, replicas=4, seed=0, **override):
    rng = np.random.default_rng(seed)
    box = (n / 1.2) ** (1 / 3)
    initial = _ka_positions(n, box, rng)
    data = {
        "types": _types(n),
        "initial_positions": initial,
        "positions": initial[None] + rng.normal(0, 0.3, (replicas, n, 3)),
    }
    data.update(override)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return data


def _write_glassbench(path, n=50, n_times=10, seed=0, **override):
    rng = np.random.default_rng(seed)
    box = (n / 1.2) ** (1 / 3)
    initial = rng.uniform(-box / 2, box / 2, (n, 3))  # GlassBench wraps into [-L/2, L/2)
    data = {
        "types": _types(n),
        "initial_positions": initial,
        "initial_positions_inherent": initial + rng.normal(0, 0.05, (n, 3)),
        "initial_positions_cage": initial + rng.normal(0, 0.05, (n, 3)),
        "md_prop": np.sort(rng.uniform(0, 3, (n_times, n)), axis=0),
        "bb_prop": np.sort(rng.uniform(0, 1, (n_times, n)), axis=0)[::-1],
    }
    data.update(override)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return data


def _deepmind_dict(n=12, replicas=5, seed=0):
    rng = np.random.default_rng(seed)
    box = 6.0
    positions = rng.uniform(0, box, (n, 3))
    time = np.round(np.geomspace(0.003, 100.0, 40), 3).tolist()
    return {
        "positions": positions,
        "types": (np.arange(n) >= 10).astype(np.int32),
        "box": np.full(3, box),
        "time": [0.0, *time],
        "time_indices": [5, 30, 20],
        "is_values": np.array([0.9, 0.1, np.exp(-1.0)]),
        "trajectory_start_velocities": [rng.normal(size=(n, 3)) for _ in range(replicas)],
        "trajectory_target_positions": [
            [positions + rng.normal(0, s, (n, 3)) for _ in range(replicas)] for s in (0.1, 2.0, 0.8)
        ],
        "metadata": {"temperature": 0.5, "pressure": 3.0, "fluid": "Kob Andersen"},
    }


def _write_pickle(path, obj):
    path.write_bytes(pickle.dumps(obj, protocol=3))  # dumping is safe; only loading runs code


# ------------------------------------------------------------------------------------------------ registry
def test_registry_has_the_three_formats():
    assert set(importers.FORMATS) == {"botan", "glassbench", "deepmind"}
    for name, importer in importers.FORMATS.items():
        assert importer.name == name and importer.pattern


def test_unknown_format_and_option_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    _write_botan(path)
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load("gromacs", path)
    with pytest.raises(DatasetError, match=_match(path, "tau_alpha")):
        load("botan", path, tau_alpha=1.0)


# ------------------------------------------------------------------------------------------- BOTAN, real
@pytest.fixture(scope="module")
def botan_sample(shared_data):
    path = shared_data / BOTAN_FILE
    return path, load("botan", path)


def test_botan_sample_particles_box_and_time(botan_sample):
    path, imported = botan_sample
    raw = np.load(path)
    types = raw["types"]
    snap = imported.snapshot
    assert snap.n_particles == 4096 == len(types)
    # counts from the file itself; 3277 / 819 is the 80:20 KA split at N = 4096
    assert np.count_nonzero(snap.typeid == 0) == np.count_nonzero(types == 0) == 3277
    assert np.count_nonzero(snap.typeid == 1) == np.count_nonzero(types == 1) == 819
    assert snap.type_names == ("A", "B")
    assert snap.box_length == pytest.approx(BOTAN_BOX, abs=5e-6)  # REFERENCE gives 7 significant digits
    half = snap.box_length / 2
    assert np.all(snap.positions >= -half) and np.all(snap.positions < half)
    # images undo the wrapping exactly up to float64 rounding of x +- L (|x| < 16: ~4e-15)
    np.testing.assert_allclose(snap.unwrapped_positions(), raw["initial_positions"], rtol=0, atol=1e-12)
    assert imported.temperature == 0.44
    np.testing.assert_array_equal(imported.times, [4120.0])  # tc07 = 7th point of the T = 0.44 grid
    assert imported.tau_alpha == 4120.0
    assert imported.inherent is None
    assert imported.provenance["configuration"] == 1 and imported.provenance["time_index"] == 7
    assert imported.provenance["license"] == "Apache-2.0"
    assert len(imported.provenance["sha256"]) == 64


def test_botan_propensity_matches_brute_force(botan_sample):
    path, imported = botan_sample
    raw = np.load(path)
    initial, replicas, types = raw["initial_positions"], raw["positions"], raw["types"]
    total = np.zeros(len(types))
    for r in range(replicas.shape[0]):  # brute force, replica by replica, no shared code
        total += np.sqrt(((replicas[r] - initial) ** 2).sum(axis=1))
    expected = total / replicas.shape[0]
    np.testing.assert_allclose(imported.propensity[0], expected, rtol=1e-12)
    assert imported.replica_distances.shape == (32, 1, 4096)
    # REFERENCE.md: configuration 1 is the fastest of the 10 training configurations, mean A propensity 0.699
    assert imported.propensity[0, types == 0].mean() == pytest.approx(0.699, abs=5e-4)  # 3-digit rounding


def test_botan_sample_reproduces_reference_fs_and_half_split(botan_sample):
    """REFERENCE.md, configuration 1: F_s(7.25) of A = 0.117 and replica half-split correlation 0.527.

    Both are deterministic functions of the file (first 16 vs last 16 replicas for the split), so the
    tolerance is the rounding of the quoted 3 digits (5e-4); a random split would differ by its spread over
    splits (about 0.02 here), which is why the deterministic first/second-half split is the one compared.
    """
    _, imported = botan_sample
    meta = labels_metadata(imported)
    assert meta["self_isf"]["q"] == 7.25
    assert meta["self_isf"]["fs_A"][0] == pytest.approx(0.117, abs=5e-4)
    (row,) = meta["noise_ceiling"]
    assert row["half_half_pearson"] == pytest.approx(0.527, abs=5e-4)
    assert row["reliability"] == pytest.approx(2 * 0.527 / 1.527, abs=1e-3)  # Spearman-Brown
    assert row["n_replicas"] == 32 and row["n_particles"] == 3277


def test_list_files_natural_order(shared_data):
    files = list_files("botan", shared_data / "botan_T0.44_train")
    assert [f.name for f in files] == [f"isoconfig_N4096T0.44_{c}_tc07.npz" for c in range(1, 11)]


def test_botan_truncated_file_refused(shared_data, tmp_path):
    raw = (shared_data / BOTAN_FILE).read_bytes()
    path = tmp_path / "isoconfig_N4096T0.44_1_tc07.npz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=_match(path)):
        load("botan", path)


def test_botan_box_too_small_refused(shared_data):
    path = shared_data / BOTAN_FILE
    with pytest.raises(DatasetError, match=_match(path, "initial_positions")):
        load("botan", path, box_length=14.0)


# --------------------------------------------------------------------------------------- BOTAN, synthetic
def test_botan_options_and_unknown_time(tmp_path):
    named = tmp_path / "isoconfig_N50T0.44_3_tc05.npz"
    data = _write_botan(named)
    imported = load("botan", named)
    np.testing.assert_array_equal(imported.times, [412.0])  # 5th point of the T = 0.44 grid
    assert imported.provenance["configuration"] == 3
    np.testing.assert_array_equal(load("botan", named, time=100.0).times, [100.0])
    np.testing.assert_array_equal(load("botan", named, times=[100.0]).times, [100.0])
    with pytest.raises(DatasetError, match=_match(named, "'times'")):
        load("botan", named, times=[1.0, 2.0])

    anonymous = tmp_path / "sample.npz"
    np.savez(anonymous, **data)
    with pytest.raises(DatasetError, match=_match(anonymous, "temperature")):
        load("botan", anonymous)
    with pytest.raises(DatasetError, match=_match(anonymous, "'time'")):
        load("botan", anonymous, temperature=0.5)  # no grid at T = 0.5: the time must be given
    imported = load("botan", anonymous, temperature=0.5, time=52.0)
    assert imported.tau_alpha is None and imported.temperature == 0.5


@pytest.mark.parametrize(
    "override, key",
    [
        ({"positions": None}, "positions"),
        ({"types": None}, "types"),
        ({"positions": np.zeros((4, 49, 3))}, "positions"),  # (R, N', 3) with N' != N
        ({"initial_positions": np.zeros((50, 2))}, "initial_positions"),
        ({"types": np.full(50, 2, dtype=np.int8)}, "types"),
        ({"initial_positions": np.full((50, 3), np.nan)}, "initial_positions"),
        ({"positions": np.full((4, 50, 3), np.inf)}, "positions"),
        # found by the importer fuzz (tests/test_importer_fuzz.py) or refused since issue 18:
        ({"positions": np.full((4, 50, 3), 1e160)}, "positions"),  # finite, but |dr|^2 overflows to inf
        ({"initial_positions": np.full((50, 3), 1e300)}, "initial_positions"),  # spread 0, far from any box
        ({"initial_positions": np.ones((50, 3)) * (1 + 1j)}, "initial_positions"),  # complex: was silently real
        ({"initial_positions": np.full((50, 3), "1.5")}, "initial_positions"),  # strings: were parsed
        ({"positions": np.ones((4, 50, 3), dtype=bool)}, "positions"),
        ({"positions": np.empty((0, 50, 3))}, "positions"),  # no replica
        ({"types": np.array([0, 1, None], dtype=object)}, "types"),  # object arrays are never unpickled
    ],
)
def test_botan_broken_files_refused(tmp_path, override, key):
    path = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    _write_botan(path, **override)
    with pytest.raises(DatasetError, match=_match(path, f"'{key}'")):
        load("botan", path)


def test_foreign_files_refused(tmp_path):
    text = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    text.write_text("positions, types\n1, 2, 3\n")
    with pytest.raises(DatasetError, match=_match(text)):
        load("botan", text)
    glassbench = tmp_path / "N50T0.44_1.npz"
    _write_glassbench(glassbench)
    with pytest.raises(DatasetError, match=_match(glassbench, "'positions'")):
        load("botan", glassbench)
    botan = tmp_path / "N50T0.44_2.npz"
    _write_botan(botan)
    with pytest.raises(DatasetError, match=_match(botan, "'initial_positions_inherent'")):
        load("glassbench", botan)
    with pytest.raises(DatasetError, match=_match(text)):
        load("deepmind", text)


# ----------------------------------------------------------------------------------------- the npz reader
def _npz_with_member(path, name: str, member: bytes, **arrays):
    """An .npz (stored, no compression) with the arrays of ``arrays`` and one raw member ``name``."""
    import io
    import zipfile

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(name, member)
    path.write_bytes(buffer.getvalue())


def _npy_header(shape, descr="<f8") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_npz_header_declaring_a_huge_shape_is_refused_before_allocating(tmp_path):
    """A member whose .npy header says (10**12, 3) float64 (24 TB) over 24 bytes of data. Expected:
    DatasetError naming the file and key and the mismatch; np.load would first allocate the declared array."""
    path = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    data = _write_botan(path)
    _npz_with_member(
        path,
        "initial_positions.npy",
        _npy_header((10**12, 3)) + bytes(24),
        **{k: v for k, v in data.items() if k != "initial_positions"},
    )
    with pytest.raises(DatasetError, match=_match(path, "'initial_positions' declares shape")):
        load("botan", path)


@pytest.mark.parametrize(
    "patch, message",
    [
        # the npy header's dict made unparsable (tokenize.TokenError escaped np.load)
        (lambda raw: raw.replace(b"{'descr'", b"{(descr", 1), "not a readable .npz"),
        # compression method 99 in the central directory (NotImplementedError escaped np.load)
        (lambda raw: _set_central(raw, 10, 2, 99), "not a readable .npz"),
        # a member declaring 4 GB once decompressed: refused before reading (a zip bomb)
        (lambda raw: _set_central(raw, 24, 4, 0xFFFFFFF0), "expand beyond"),
        (lambda raw: np.lib.format.MAGIC_PREFIX + raw[6:], "single .npy array"),  # raised TypeError before
    ],
)
def test_npz_corruption_found_by_the_fuzz(tmp_path, patch, message):
    """Expected: DatasetError naming the file (each of these escaped as another exception before)."""
    path = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    _write_botan(path)
    path.write_bytes(patch(path.read_bytes()))
    with pytest.raises(DatasetError, match=_match(path, message)):
        load("botan", path)


def _set_central(raw: bytes, offset: int, size: int, value: int) -> bytes:
    """Set a field of the first central-directory record (offset from its signature) and, for the
    compression method, of the first local header too."""
    data = bytearray(raw)
    record = data.find(b"PK\x01\x02")
    data[record + offset : record + offset + size] = value.to_bytes(size, "little")
    if offset == 10:
        data[8:10] = value.to_bytes(2, "little")
    return bytes(data)


def test_write_imported_leaves_nothing_when_a_later_file_fails(tmp_path, monkeypatch):
    """The Parquet write fails after the GSD was written. Expected: no output file and no temporary left
    (before, the configuration GSD stayed behind without its labels)."""
    import glasspipe.io.tables

    path = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    _write_botan(path)
    imported = load("botan", path)

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(glasspipe.io.tables, "write_table", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        write_imported(imported, out / "c.gsd", out / "c.parquet")
    assert list(out.iterdir()) == []


# ----------------------------------------------------------------------------------------------- GlassBench
def test_glassbench_round_trip(tmp_path):
    path = tmp_path / "N50T0.44_7.npz"
    data = _write_glassbench(path)
    imported = load("glassbench", path)
    np.testing.assert_array_equal(imported.propensity, data["md_prop"])
    np.testing.assert_array_equal(imported.extra_labels["bond_breaking"], data["bb_prop"])
    np.testing.assert_array_equal(imported.times, T044_GRID)
    assert imported.tau_alpha == 4120.0 and imported.temperature == 0.44
    np.testing.assert_allclose(imported.snapshot.unwrapped_positions(), data["initial_positions"], atol=1e-12)
    np.testing.assert_allclose(imported.inherent.unwrapped_positions(), data["initial_positions_inherent"], atol=1e-12)
    np.testing.assert_array_equal(imported.snapshot.typeid, data["types"])
    assert imported.replica_distances is None
    assert imported.provenance["configuration"] == 7 and imported.provenance["license"] == "CC-BY-4.0"

    table = labels_table(imported)
    assert list(table.columns) == ["particle", "type", "time", "propensity", "propensity_std", "bond_breaking"]
    assert len(table) == 10 * 50 and table["propensity_std"].isna().all()
    row = table[(table.particle == 3) & (table.time == 4120.0)].iloc[0]
    assert row.propensity == data["md_prop"][6, 3] and row.bond_breaking == data["bb_prop"][6, 3]
    assert "noise_ceiling" not in labels_metadata(imported)  # no replicas, no ceiling


def test_glassbench_times_per_temperature(tmp_path):
    hot = tmp_path / "N50T0.64_1.npz"
    _write_glassbench(hot)
    imported = load("glassbench", hot)
    assert imported.times[6] == 16.5 and imported.tau_alpha == 16.5
    unknown = tmp_path / "N50T0.50_1.npz"
    _write_glassbench(unknown)
    with pytest.raises(DatasetError, match=_match(unknown, "'times'")):
        load("glassbench", unknown)
    times = np.geomspace(0.1, 1e4, 10)
    np.testing.assert_array_equal(load("glassbench", unknown, times=times).times, times)
    with pytest.raises(DatasetError, match=_match(unknown, "'times'")):
        load("glassbench", unknown, times=times[:9])


@pytest.mark.parametrize(
    "override, key",
    [
        ({"md_prop": None}, "md_prop"),
        ({"bb_prop": None}, "bb_prop"),
        ({"initial_positions_inherent": None}, "initial_positions_inherent"),
        ({"md_prop": np.ones((50, 10))}, "md_prop"),  # (N, K): transposed
        ({"bb_prop": np.ones((9, 50))}, "bb_prop"),  # not the shape of md_prop
        ({"bb_prop": np.full((10, 50), 1.5)}, "bb_prop"),  # a fraction above 1
        ({"md_prop": -np.ones((10, 50))}, "md_prop"),
        ({"types": np.arange(50) % 3}, "types"),
        ({"initial_positions_inherent": np.full((50, 3), np.nan)}, "initial_positions_inherent"),
        ({"initial_positions_cage": np.zeros((49, 3))}, "initial_positions_cage"),
        ({"initial_positions": np.linspace(0, 20, 150).reshape(50, 3)}, "initial_positions"),  # box too small
        # found by the importer fuzz: an inherent structure far outside the box wrapped into garbage
        ({"initial_positions_inherent": np.full((50, 3), 1e300)}, "initial_positions_inherent"),
        ({"md_prop": np.empty((0, 50)), "bb_prop": np.empty((0, 50))}, "md_prop"),  # labels at no time
    ],
)
def test_glassbench_broken_files_refused(tmp_path, override, key):
    path = tmp_path / "N50T0.44_1.npz"
    _write_glassbench(path, **override)
    with pytest.raises(DatasetError, match=_match(path, f"'{key}'")):
        load("glassbench", path)


# ------------------------------------------------------------------------------------------------ DeepMind
def test_deepmind_sample(shared_data):
    path = shared_data / DEEPMIND_FILE
    imported = load("deepmind", path)
    raw = load_bytes(path.read_bytes(), name=str(path))  # the restricted unpickler; never plain pickle.load
    n = len(raw["types"])
    assert n == 20 and imported.snapshot.n_particles == 20
    assert imported.propensity.shape == (10, 20) and imported.replica_distances.shape == (30, 10, 20)
    assert imported.temperature == 0.44
    assert imported.snapshot.box_length == raw["box"][0]
    times = [raw["time"][i] for i in raw["time_indices"]]
    np.testing.assert_array_equal(imported.times, sorted(times))
    # the 1/e point (index 142) is tau_alpha: about 5400 (REFERENCE.md: 5400-5900 for this data)
    assert imported.tau_alpha == raw["time"][142] == pytest.approx(5375.112)
    for k, time in enumerate(times):  # brute force, in the file's own order
        expected = np.zeros(n)
        for replica in raw["trajectory_target_positions"][k]:
            for i in range(n):
                expected[i] += np.sqrt(sum((replica[i][d] - raw["positions"][i][d]) ** 2 for d in range(3)))
        expected /= len(raw["trajectory_target_positions"][k])
        row = int(np.flatnonzero(imported.times == time)[0])
        np.testing.assert_allclose(imported.propensity[row], expected, rtol=1e-12)
    np.testing.assert_allclose(imported.snapshot.unwrapped_positions(), raw["positions"], atol=1e-12)


def test_deepmind_targets_variant(tmp_path):
    data = _deepmind_dict()
    targets = np.random.default_rng(1).uniform(0, 2, (3, 12))
    del data["trajectory_target_positions"]
    data["targets"] = targets
    path = tmp_path / "full.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    order = np.argsort([data["time"][i] for i in data["time_indices"]])
    np.testing.assert_array_equal(imported.propensity, targets[order])
    assert imported.replica_distances is None
    assert imported.tau_alpha == data["time"][20]  # is_values 1/e belongs to time index 20
    assert labels_table(imported)["propensity_std"].isna().all()


# ------------------------------------------------------------------------------------- DeepMind's layouts
def _deepmind_k10(shared_data_or_none):
    """A DeepMind dict with K = 10 time indices and 30 replicas: the shared sample (N = 20) when present,
    else a synthetic one of the same shape, so the layout tests run on a fresh clone."""
    if shared_data_or_none is not None:
        path = shared_data_or_none / DEEPMIND_FILE
        return load_bytes(path.read_bytes(), name=str(path))
    rng = np.random.default_rng(7)
    n, box = 20, 15.0
    positions = rng.uniform(0, box, (n, 3))
    return {
        "positions": positions,
        "types": (np.arange(n) >= 16).astype(np.int32),
        "box": np.full(3, box),
        "time": [0.0, *np.round(np.geomspace(0.003, 3e4, 150), 3).tolist()],
        "time_indices": [10, 30, 50, 70, 90, 100, 110, 120, 130, 125],
        "is_values": np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, np.exp(-1.0)]),
        "trajectory_start_velocities": [rng.normal(size=(n, 3)) for _ in range(30)],
        "trajectory_target_positions": [
            [positions + rng.normal(0, 0.05 * (k + 1), (n, 3)) for _ in range(30)] for k in range(10)
        ],
        "metadata": {"temperature": 0.44, "pressure": 2.93, "fluid": "Kob Andersen"},
    }


def _get_targets(data) -> np.ndarray:
    """(K, N) propensities as DeepMind's get_targets computes them, kept in float64 (as test_large.pickle)."""
    initial = np.asarray(data["positions"])
    return np.stack(
        [
            np.mean([np.linalg.norm(r - initial, axis=-1) for r in replicas], axis=0)
            for replicas in data["trajectory_target_positions"]
        ]
    )


def _large_layout(data, m=1):
    """test_large.pickle's layout: 'targets' (K, N) for all times, 'trajectory_target_positions' as an array
    (m, 30, N, 3) holding the first m times only (m = 1 there)."""
    return {
        **data,
        "targets": _get_targets(data),
        "trajectory_target_positions": np.asarray(data["trajectory_target_positions"][:m], dtype=np.float64),
    }


@pytest.fixture
def deepmind_k10():
    return _deepmind_k10(shared_data_dir())


def test_deepmind_large_layout_imports_all_times_from_targets(deepmind_k10, tmp_path):
    """test_large.pickle's layout: targets (10, N) and replica positions (1, 30, N, 3). Expected: all 10
    label times (sorted), propensity = targets exactly (they are the labels), no replica distances (they
    exist at one time only), and the overlap check ran: the positions' propensity at index 0 agrees with
    targets[0] to float64 rounding (< 1e-13 relative; the real test_large.pickle agrees to 1e-14)."""
    data = _large_layout(deepmind_k10)
    assert data["trajectory_target_positions"].shape == (1, 30, 20, 3) and data["targets"].shape == (10, 20)
    path = tmp_path / "test_large_layout.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    file_times = np.asarray(data["time"])[data["time_indices"]]
    order = np.argsort(file_times)
    np.testing.assert_array_equal(imported.times, file_times[order])
    assert len(imported.times) == 10
    np.testing.assert_array_equal(imported.propensity, data["targets"][order])
    assert imported.replica_distances is None
    assert imported.provenance["labels_from"] == "targets"
    assert imported.provenance["replica_positions_times"] == [file_times[0]]
    assert imported.provenance["targets_max_relative_deviation"] < 1e-13
    # tau_alpha: the 1/e point of is_values, the last time index (not covered by the positions)
    assert imported.tau_alpha == file_times[-1]


def test_deepmind_large_layout_as_nested_lists(deepmind_k10, tmp_path):
    """The same layout with trajectory_target_positions as a list holding one list of 30 (N, 3) arrays (how
    test_small.pickle stores them). Expected: the same import as the array form."""
    data = _large_layout(deepmind_k10)
    as_array, as_lists = tmp_path / "array.pickle", tmp_path / "lists.pickle"
    _write_pickle(as_array, data)
    _write_pickle(as_lists, {**data, "trajectory_target_positions": [list(data["trajectory_target_positions"][0])]})
    expected, imported = load("deepmind", as_array), load("deepmind", as_lists)
    np.testing.assert_array_equal(imported.propensity, expected.propensity)
    np.testing.assert_array_equal(imported.times, expected.times)
    assert imported.provenance["targets_max_relative_deviation"] < 1e-13


@pytest.mark.parametrize("index, delta", [(0, 1e-6), (0, -1e-8), (2, 1e-6)])
def test_deepmind_targets_disagreeing_with_positions_refused(deepmind_k10, tmp_path, index, delta):
    """One target off by a relative ``delta`` where the positions cover its time (m = 3 times here).
    Expected: DatasetError naming the file, both keys and the time index; 1e-8 is far above float64
    rounding (1e-15) and below any physical meaning, so the tolerance (1e-9) must catch it."""
    data = _large_layout(deepmind_k10, m=3)
    data["targets"][index, 5] *= 1 + delta
    path = tmp_path / "disagree.pickle"
    _write_pickle(path, data)
    with pytest.raises(DatasetError, match=_match(path, "'targets' and 'trajectory_target_positions' disagree")):
        load("deepmind", path)
    with pytest.raises(DatasetError, match=f"time index {index}"):
        load("deepmind", path)


def test_deepmind_targets_outside_the_overlap_are_not_compared(deepmind_k10, tmp_path):
    """A target changed at time index 5, where the positions (first 3 times) say nothing. Expected: imported,
    with the changed value as the label (nothing to check it against)."""
    data = _large_layout(deepmind_k10, m=3)
    data["targets"][5, 5] *= 2
    path = tmp_path / "outside.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    row = int(np.flatnonzero(imported.times == np.asarray(data["time"])[data["time_indices"][5]])[0])
    assert imported.propensity[row, 5] == data["targets"][5, 5]


def test_deepmind_float32_targets_checked_at_float32_precision(deepmind_k10, tmp_path):
    """DeepMind's get_targets returns float32. Expected: float32 targets agree with the float64 positions to
    float32 rounding (6e-8 relative), within the tolerance widened to 4 ulps of float32 (4.8e-7)."""
    data = _large_layout(deepmind_k10, m=10)
    data["targets"] = data["targets"].astype(np.float32)
    path = tmp_path / "f32.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    assert imported.provenance["targets_max_relative_deviation"] < 4 * np.finfo(np.float32).eps
    assert imported.replica_distances.shape == (30, 10, 20)  # positions at all times: replicas kept


def test_deepmind_positions_for_fewer_times_without_targets(deepmind_k10, tmp_path):
    """Positions for the first 4 of 10 time indices and no targets. Expected: labels at those 4 times only
    (sorted), equal to the propensity computed from the positions, with the replica distances."""
    data = dict(deepmind_k10)
    data["trajectory_target_positions"] = data["trajectory_target_positions"][:4]
    path = tmp_path / "four.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    times = np.asarray(data["time"])[data["time_indices"][:4]]
    np.testing.assert_array_equal(imported.times, np.sort(times))
    np.testing.assert_allclose(imported.propensity, _get_targets(data)[np.argsort(times)], rtol=1e-12)
    assert imported.replica_distances.shape == (30, 4, 20)
    assert imported.provenance["labels_from"] == "trajectory_target_positions"


def test_deepmind_both_for_all_times_keeps_replicas(deepmind_k10, tmp_path):
    """Targets and positions at all 10 times. Expected: labels = targets, replica distances (30, 10, N)
    whose mean equals them, so the noise ceiling can be computed."""
    data = _large_layout(deepmind_k10, m=10)
    path = tmp_path / "both.pickle"
    _write_pickle(path, data)
    imported = load("deepmind", path)
    assert imported.replica_distances.shape == (30, 10, 20)
    np.testing.assert_allclose(imported.replica_distances.mean(axis=0), imported.propensity, rtol=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(targets=d["targets"].T.copy()), "transpose"),
        (lambda d: d.update(targets=d["targets"][:9]), "'targets' has shape"),
        (lambda d: d.update(trajectory_target_positions=np.zeros((11, 30, 20, 3))), "1 <= M <= 10"),
        (lambda d: d.update(trajectory_target_positions=np.zeros((1, 0, 20, 3))), "no replica"),
        (lambda d: d.update(targets=-d["targets"]), "negative"),
    ],
)
def test_deepmind_layout_errors(deepmind_k10, tmp_path, change, message):
    """Malformed layouts. Expected: DatasetError naming the file and what is wrong."""
    data = _large_layout(deepmind_k10)
    change(data)
    path = tmp_path / "layout.pickle"
    _write_pickle(path, data)
    with pytest.raises(DatasetError, match=_match(path, message)):
        load("deepmind", path)


def _reduce_to(target, argument):
    class Payload:
        def __reduce__(self):
            return target, (argument,)

    return Payload()


@pytest.mark.parametrize("target", [os.system, eval])
def test_malicious_pickle_refused_without_running(tmp_path, target):
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if target is os.system else f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "evil.pickle"
    _write_pickle(path, {"positions": _reduce_to(target, command)})
    with pytest.raises(DatasetError, match=_match(path, "system" if target is os.system else "eval")):
        load("deepmind", path)
    with pytest.raises(UnsafePickleError, match="refused"):
        load_bytes(path.read_bytes(), name=str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda d: d.pop("positions"), "positions"),
        (lambda d: d.pop("trajectory_target_positions"), "trajectory_target_positions"),
        (lambda d: d.update(box=np.array([6.0, 6.0, 7.0])), "box"),
        (lambda d: d.update(box=np.array([3.0, 3.0, 3.0])), "positions"),  # particles do not fit
        (lambda d: d.update(types=np.full(12, 3)), "types"),
        (lambda d: d.update(time_indices=[5, 30, 99]), "time_indices"),
        (lambda d: d.update(is_values=np.array([0.9, 0.1])), "is_values"),
        (lambda d: d["trajectory_target_positions"][1].pop(), "trajectory_target_positions"),  # ragged
        (lambda d: d.update(trajectory_target_positions=np.zeros((3, 5, 11, 3))), "trajectory_target_positions"),
        (lambda d: d.update(metadata={}), "temperature"),
        # found by the importer fuzz (tests/test_importer_fuzz.py):
        (lambda d: d["metadata"].update(temperature=float("nan")), "temperature"),  # was imported as T = nan
        (lambda d: d["metadata"].update(temperature=-0.5), "temperature"),
        (lambda d: d["metadata"].update(temperature="hot"), "temperature"),
        (lambda d: d["metadata"].update(temperature=10**400), "temperature"),  # OverflowError in float()
        (lambda d: d["metadata"].update(pressure=10**400), "pressure"),  # OverflowError in float()
        (lambda d: d["metadata"].update(pressure="high"), "pressure"),
        (lambda d: d.update(types=[[0, 1], [0]]), "types"),  # ragged: numpy's ValueError escaped
        (lambda d: d.update(time_indices=[[5, 30], [20]]), "time_indices"),
        (lambda d: d.update(time_indices=[5.0, 30.0, 20.0]), "time_indices"),
        (lambda d: d.update(is_values=np.array([0.9, 0.1, 1 + 1j])), "is_values"),
        # strings in lists (a str array is refused by the unpickler already): np.asarray would parse them
        (lambda d: d.update(positions=[[str(x) for x in row] for row in d["positions"]]), "positions"),
        (lambda d: d["trajectory_target_positions"][0].__setitem__(0, np.full((12, 3), 1e160)), "overflow"),
    ],
)
def test_deepmind_broken_files_refused(tmp_path, change, key):
    data = _deepmind_dict()
    change(data)
    path = tmp_path / "broken.pickle"
    _write_pickle(path, data)
    with pytest.raises(DatasetError, match=_match(path, key)):
        load("deepmind", path)


def test_deepmind_truncated_and_foreign_refused(shared_data, tmp_path):
    raw = (shared_data / DEEPMIND_FILE).read_bytes()
    truncated = tmp_path / "half.pickle"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=_match(truncated)):
        load("deepmind", truncated)
    listing = tmp_path / "list.pickle"
    _write_pickle(listing, [1, 2, 3])
    with pytest.raises(DatasetError, match=_match(listing, "dict")):
        load("deepmind", listing)


# ----------------------------------------------------------------------------------- writing and reading back
def test_write_imported_reads_back_with_load_sample(botan_sample, tmp_path):
    from glasspipe.io.gsd_io import read_metadata
    from glasspipe.io.tables import read_metadata as read_table_metadata
    from glasspipe.learn.samples import load_sample

    _, imported = botan_sample
    gsd, labels = tmp_path / "cfg001.gsd", tmp_path / "cfg001.parquet"
    write_imported(imported, gsd, labels)
    sample = load_sample(1, gsd, labels)
    # GSD stores single precision: |x| <= L/2 = 7.5, so rounding is at most 7.5 * 2^-24 ~ 4.5e-7
    np.testing.assert_allclose(sample.positions, imported.snapshot.positions, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sample.typeid, imported.snapshot.typeid)
    assert sample.box_length == pytest.approx(imported.snapshot.box_length, rel=1e-7)
    np.testing.assert_array_equal(sample.times, imported.times)
    np.testing.assert_array_equal(sample.targets, imported.propensity.T)  # Parquet keeps float64
    meta = read_metadata(gsd)
    assert meta["provenance"]["sha256"] == imported.provenance["sha256"]
    assert meta["temperature"] == 0.44 and meta["times"] == [4120.0]
    table_meta = read_table_metadata(labels)
    assert table_meta["self_isf"]["fs_A"][0] == pytest.approx(0.117, abs=5e-4)
    assert table_meta["noise_ceiling"][0]["half_half_pearson"] == pytest.approx(0.527, abs=5e-4)


def test_write_glassbench_with_inherent_and_cli(tmp_path):
    from glasspipe.cli import main
    from glasspipe.io.gsd_io import read_snapshot
    from glasspipe.learn.samples import load_sample

    source = tmp_path / "src"
    source.mkdir()
    data = _write_glassbench(source / "N50T0.44_2.npz")
    _write_glassbench(source / "N50T0.44_10.npz", seed=1)
    out = tmp_path / "out"
    assert main(["import", "glassbench", str(source), "--out", str(out)]) == 0
    inherent = read_snapshot(out / "N50T0.44_2.inherent.gsd")
    np.testing.assert_allclose(inherent.unwrapped_positions(), data["initial_positions_inherent"], atol=1e-5)
    sample = load_sample(2, out / "N50T0.44_2.gsd", out / "N50T0.44_2.labels.parquet", target="bond_breaking")
    np.testing.assert_array_equal(sample.targets, data["bb_prop"].T)
    assert (out / "N50T0.44_10.gsd").is_file()
    # a bad file: error exit, nothing written for it
    (source / "N50T0.44_3.npz").write_text("not an archive")
    assert main(["import", "glassbench", str(source / "N50T0.44_3.npz"), "--out", str(out)]) == 2
    assert not (out / "N50T0.44_3.gsd").exists()


def test_write_imported_refuses_missing_inherent(tmp_path):
    path = tmp_path / "isoconfig_N50T0.44_1_tc07.npz"
    _write_botan(path)
    imported = load("botan", path)
    with pytest.raises(DatasetError, match="inherent"):
        write_imported(imported, tmp_path / "a.gsd", tmp_path / "a.parquet", inherent_out=tmp_path / "b.gsd")
    assert not (tmp_path / "a.gsd").exists()
