"""The command line: `glasspipe energy`, `glasspipe validate`, and the stage commands' error handling."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from glasspipe.cli import main
from glasspipe.io.gsd_io import Snapshot, write_gsd


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glasspipe.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def botan_gsd(shared_data, tmp_path):
    """The BOTAN T = 0.44 equilibrated configuration (N = 4096, L = 15.05658) as a GSD file."""
    data = np.load(shared_data / "botan_T0.44_cfg1_tc07.npz")
    snapshot = Snapshot(positions=data["initial_positions"], typeid=data["types"], box_length=15.05658).wrapped()
    path = tmp_path / "botan.gsd"
    write_gsd(path, [snapshot])
    return path


@pytest.mark.parametrize("engine", ["reference", "lammps"])
def test_energy_of_botan_configuration(botan_gsd, engine):
    """REFERENCE.md: U/N (shift) = -7.035 +- 0.012 over the 15 BOTAN configurations at T = 0.44, virial
    pressure 2.367 (spread of P 0.077). One configuration: 4 standard deviations of the spread."""
    result = run_cli("energy", str(botan_gsd), "--engine", engine)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_particles"] == 4096
    assert report["potential_energy_per_particle"] == pytest.approx(-7.035, abs=4 * 0.012)
    assert report["virial_pressure"] == pytest.approx(2.367, abs=4 * 0.077)
    # The file stores no velocities (GSD would read them as zero): no temperature, no kinetic or total
    # pressure, and the virial is reported as what it is.
    assert report["has_velocities"] is False
    assert report["kinetic_temperature"] is None
    assert report["kinetic_pressure"] is None
    assert report["pressure"] is None
    assert "no velocities" in report["note"]


@pytest.mark.parametrize("engine", ["reference", "lammps"])
def test_energy_with_velocities_reports_kinetic_quantities(tmp_path, engine):
    """A frame with velocities: T_kin = sum m v^2 / (3N - 3) and P = (N - 1) T_kin / V + W / (3V), checked
    against a Python loop over particles (m = 1; velocities stored in single precision, hence rel 1e-6).
    A second frame without its own velocity chunk takes frame 0's (the GSD/HOOMD convention)."""
    from conftest import random_sequential_addition

    rng = np.random.default_rng(4)
    n, length = 200, (200 / 1.2) ** (1 / 3)
    positions = random_sequential_addition(n, length, 0.8, rng)
    typeid = (rng.random(n) < 0.2).astype(np.int32)
    velocities = rng.normal(0.0, np.sqrt(0.7), (n, 3)).astype(np.float32).astype(np.float64)
    path = tmp_path / "moving.gsd"
    write_gsd(
        path,
        [
            Snapshot(positions=positions, typeid=typeid, box_length=length, velocities=velocities),
            Snapshot(positions=positions, typeid=typeid, box_length=length),
        ],
    )
    kinetic = 0.0
    for v in velocities:
        kinetic += 0.5 * (v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    temperature = 2 * kinetic / (3 * n - 3)
    for frame in ("0", "1"):
        result = run_cli("energy", str(path), "--engine", engine, "--frame", frame)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["has_velocities"] is True and "note" not in report
        assert report["kinetic_temperature"] == pytest.approx(temperature, rel=1e-6)
        assert report["kinetic_pressure"] == pytest.approx((n - 1) * temperature / length**3, rel=1e-6)
        assert report["pressure"] == pytest.approx(report["kinetic_pressure"] + report["virial_pressure"], rel=1e-6)


def test_energy_engines_agree_and_cutoff_modes_differ(botan_gsd):
    reports = {
        (engine, mode): json.loads(run_cli("energy", str(botan_gsd), "--engine", engine, "--cutoff-mode", mode).stdout)
        for engine in ("reference", "lammps")
        for mode in ("shift", "truncate")
    }
    for mode in ("shift", "truncate"):
        lammps = reports[("lammps", mode)]["potential_energy_per_particle"]
        reference = reports[("reference", mode)]["potential_energy_per_particle"]
        assert lammps == pytest.approx(reference, rel=1e-10)
    # REFERENCE.md: unshifted U/N = -7.604 on the same configurations.
    assert reports[("reference", "truncate")]["potential_energy_per_particle"] == pytest.approx(-7.604, abs=0.05)


def test_validate_prints_derived_values(capsys):
    assert main(["validate", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "box length 9.41" in out and "T = 0.7: label times (tau) [0.1," in out


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "labels",
            "--config",
            str(REPO / "config.yaml"),
            "--results-dir",
            str(tmp_path),
            "--temperature",
            "0.7",
            "--configuration",
            "0",
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_truncated_gsd_is_a_clear_error(tmp_path):
    path = tmp_path / "config.gsd"
    write_gsd(
        path, [Snapshot(positions=np.zeros((4, 3)) + np.arange(4)[:, None], typeid=[0, 0, 0, 1], box_length=10.0)]
    )
    path.write_bytes(path.read_bytes()[:100])
    result = run_cli("energy", str(path), "--engine", "reference")
    assert result.returncode == 2
    assert "config.gsd" in result.stderr and "not readable" in result.stderr


# ----------------------------------------------------------------------------- glasspipe download


BOTAN_CONFIG = REPO / "configs" / "botan_T0.44.yaml"


def test_validate_names_the_download_command_for_missing_data(dataset_cache, capsys):
    """A fresh clone: the BOTAN config's data are not installed; validate says how to get them, no traceback."""
    assert main(["validate", str(BOTAN_CONFIG)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glasspipe validate: error: config key 'source.dataset' = 'botan_T0.44_train'")
    assert err.rstrip().endswith("run: glasspipe download botan")


def test_download_from_installs_and_refuses_a_changed_copy(dataset_cache, monkeypatch, tmp_path, capsys):
    """`glasspipe download NAME --from DIR` on a synthetic dataset (an injected registry entry): a copy with one
    byte changed is refused with exit 2 and nothing installed; the intact copy installs and says how to use it."""
    import dataclasses
    import hashlib

    from glasspipe import datasets

    copy = tmp_path / "copy"
    copy.mkdir()
    files = []
    for c in (1, 2):
        content = bytes(range(256)) * c
        (copy / f"isoconfig_N64T0.5_{c}_tc07.npz").write_bytes(content)
        files.append(
            datasets.DataFile(
                f"isoconfig_N64T0.5_{c}_tc07.npz", hashlib.sha256(content).hexdigest(), len(content), None
            )
        )
    item = dataclasses.replace(
        datasets.DATASETS["botan_T0.44_train"], name="toy_train", group="toy", files=tuple(files)
    )
    monkeypatch.setitem(datasets.DATASETS, "toy_train", item)
    good = (copy / files[1].name).read_bytes()
    (copy / files[1].name).write_bytes(good[:-1] + b"\x00")
    assert main(["download", "toy", "--from", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "refusing the local copy of dataset 'toy_train'; nothing was installed" in err and files[1].name in err
    assert datasets.missing_files(item) == [f.name for f in files]
    (copy / files[1].name).write_bytes(good)
    assert main(["download", "toy", "--from", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"toy_train: 2 file(s) copied from {copy}, sha256 verified, in {dataset_cache}/datasets/toy_train" in out
    assert "source: {format: botan, dataset: toy_train}" in out
    assert datasets.missing_files(item) == []


def test_download_botan_from_a_copy_then_validate(dataset_cache, shared_botan_train, tmp_path, capsys):
    """The real BOTAN files: `download botan --from` a copy with one byte changed is refused; from the intact
    copy it installs the 10 files, and the BOTAN config then validates from the cache."""
    import shutil

    copy = tmp_path / "botan_T0.44_train"
    shutil.copytree(shared_botan_train, copy)
    changed = copy / "isoconfig_N4096T0.44_3_tc07.npz"
    data = bytearray(changed.read_bytes())
    data[2_000_000] ^= 0x80
    changed.write_bytes(bytes(data))
    assert main(["download", "botan", "--from", str(copy)]) == 2
    assert "isoconfig_N4096T0.44_3_tc07.npz: sha256" in capsys.readouterr().err
    assert not (dataset_cache / "datasets" / "botan_T0.44_train").exists()
    assert main(["download", "botan", "--from", str(shared_botan_train)]) == 0
    assert "botan_T0.44_train: 10 file(s) copied" in capsys.readouterr().out
    assert main(["validate", str(BOTAN_CONFIG)]) == 0
    assert "10 botan files; 5 fold(s)" in capsys.readouterr().out


def test_download_rejects_an_unknown_name(capsys):
    with pytest.raises(SystemExit):
        main(["download", "glassbench"])
    assert "invalid choice: 'glassbench'" in capsys.readouterr().err
