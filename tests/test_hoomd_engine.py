"""The HOOMD-blue engine against the independent reference evaluation and basic thermodynamics.

HOOMD-blue is not on PyPI (scripts/install-hoomd.sh builds it; or conda-forge, envs/hoomd.yaml); every
test that needs it is marked ``hoomd`` and skipped where ``import hoomd`` fails. The tests without the
mark run everywhere: the module imports without HOOMD, ``require()`` then explains how to install it,
and the neighbour-list skin fits small boxes.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md import checks
from glasspipe.md.engine import EngineNotAvailable
from glasspipe.md.reference import evaluate
from glasspipe.potential import KobAndersen

N_PARTICLES = 500
DENSITY = 1.2


@pytest.fixture(scope="module")
def engine_class():
    pytest.importorskip("hoomd")
    from glasspipe.md.hoomd_engine import HoomdEngine, require

    require()
    return HoomdEngine


def random_start(seed: int = 0, n_particles: int = N_PARTICLES) -> Snapshot:
    """KA particles at rho = 1.2 on a jittered lattice (no pair closer than 0.85), some image flags."""
    rng = np.random.default_rng(seed)
    length = (n_particles / DENSITY) ** (1.0 / 3.0)
    per_edge = int(np.ceil(n_particles ** (1.0 / 3.0)))
    spacing = length / per_edge
    grid = np.stack(np.meshgrid(*[np.arange(per_edge)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    sites = grid[rng.choice(len(grid), n_particles, replace=False)]
    positions = (sites + 0.5) * spacing - 0.5 * length
    positions += rng.uniform(-1, 1, positions.shape) * 0.5 * (spacing - 0.85)
    typeid = np.zeros(n_particles, dtype=np.int32)
    typeid[rng.choice(n_particles, n_particles // 5, replace=False)] = 1
    images = rng.integers(-2, 3, size=(n_particles, 3)).astype(np.int32)
    return Snapshot(positions=positions, typeid=typeid, box_length=length, images=images, step=1234)


def maxwell_boltzmann(temperature: float, seed: int, n_particles: int = N_PARTICLES) -> np.ndarray:
    v = np.random.default_rng(seed).normal(0.0, np.sqrt(temperature), (n_particles, 3))
    v -= v.mean(axis=0)
    return v * np.sqrt(temperature / ((v**2).sum() / (3 * n_particles - 3)))


@pytest.mark.hoomd
@pytest.mark.parametrize("mode", ["shift", "truncate", "xplor"])
@pytest.mark.parametrize("n_particles", [N_PARTICLES, 200])
def test_energy_forces_pressure_match_reference(engine_class, mode, n_particles):
    """Same configuration, double precision on both sides: only the summation order differs, so energy,
    forces and pressure agree to ~1e-14 relative; 1e-10 leaves room for GPU reduction orders while any
    physics difference (a cutoff, a shift, the xplor switch, a parameter) is >= 1e-4. N = 200 at rho = 1.2
    is the tiny test config's box (L/2 = 2.75, r_cut = 2.5): it needs the thinner neighbour-list skin."""
    potential = KobAndersen(cutoff_mode=mode)
    start = random_start(n_particles=n_particles)
    start.velocities = maxwell_boltzmann(0.8, seed=1, n_particles=n_particles)
    reference = evaluate(start, potential)
    with engine_class(potential, dt=0.005, device="cpu") as engine:
        engine.load(start)
        thermo = engine.thermo()
        forces = engine.forces()
    assert thermo.potential_energy == pytest.approx(reference.potential_energy_per_particle, rel=1e-10)
    assert np.abs(forces - reference.forces).max() <= 1e-10 * np.abs(reference.forces).max()
    assert thermo.kinetic_temperature == pytest.approx(reference.kinetic_temperature, rel=1e-10)
    assert thermo.pressure == pytest.approx(reference.pressure, rel=1e-10)
    assert thermo.step == 1234


@pytest.mark.hoomd
def test_state_round_trip_keeps_order_images_and_step(engine_class):
    start = random_start()
    start.velocities = maxwell_boltzmann(0.5, seed=2)
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(start)
        snap = engine.snapshot()
        np.testing.assert_allclose(snap.unwrapped_positions(), start.unwrapped_positions(), atol=1e-12)
        np.testing.assert_array_equal(snap.typeid, start.typeid)
        np.testing.assert_allclose(snap.velocities, start.velocities, atol=1e-14)
        assert snap.step == 1234
        engine.set_step(0)
        new_velocities = maxwell_boltzmann(0.3, seed=3)
        engine.set_velocities(new_velocities)
        assert engine.thermo().step == 0
        np.testing.assert_allclose(engine.snapshot().velocities, new_velocities, atol=1e-14)
        engine.run_nve(10)
        assert engine.snapshot().step == 10


@pytest.mark.hoomd
def test_minimize_reaches_a_minimum(engine_class):
    potential = KobAndersen()
    start = random_start()
    with engine_class(potential, dt=0.005, device="cpu") as engine:
        engine.load(start)
        before = engine.thermo().potential_energy
        engine.minimize(force_tolerance=1e-4, max_steps=20_000)
        after = engine.snapshot()
    assert after.step == start.step
    assert np.all(after.velocities == 0)
    result = evaluate(after, potential)
    assert result.potential_energy_per_particle < before
    assert np.linalg.norm(result.forces) < 1e-4 * 1.001


@pytest.fixture(scope="module")
def relaxed_start(engine_class):
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(random_start())
        engine.minimize(force_tolerance=1e-2 * np.sqrt(N_PARTICLES), max_steps=5000)
        return engine.snapshot()


@pytest.mark.hoomd
def test_nve_conserves_energy(engine_class, relaxed_start):
    """Velocity Verlet, dt = 0.005, T ~ 0.4-0.8, 10 tau, N = 500. Starting at an energy minimum with fresh
    velocities, the total energy jumps once by ~1.4e-3 per particle within the first steps (the shadow
    Hamiltonian that Verlet conserves differs from H by O(dt^2 |F|^2), and |F|^2 grows from 0 at the
    minimum to its thermal value), so conservation is measured from the first log row on: fluctuations
    are then ~1e-4 and the drift ~3e-6 per tau (REFERENCE.md, LAMMPS). A bound of 1e-3 is far above
    both and far below the O(0.1) that a wrong force or integrator gives."""
    rows = []
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(relaxed_start)
        engine.set_velocities(maxwell_boltzmann(0.8, seed=4))
        engine.run_nve(2000, log_every=50, on_log=rows.append)
    n = N_PARTICLES
    energy = np.array([r.potential_energy + 0.5 * (3 * n - 3) / n * r.kinetic_temperature for r in rows])
    assert len(rows) == 40
    assert [r.step for r in rows] == list(range(relaxed_start.step + 50, relaxed_start.step + 2001, 50))
    assert np.abs(energy - energy[0]).max() < 1e-3


@pytest.mark.hoomd
@pytest.mark.parametrize("thermostat", ["nose_hoover", "bussi"])
def test_nvt_holds_the_temperature(engine_class, relaxed_start, thermostat):
    """NVT at T = 0.8 for 30 tau (tau_thermostat = 0.5): the mean kinetic temperature of the second half
    must pass the equilibration check (3 block errors, or one instantaneous fluctuation
    T sqrt(2 / (3N - 3)) = 0.029 at N = 500)."""
    rows = []
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(relaxed_start)
        engine.set_velocities(maxwell_boltzmann(0.8, seed=5))
        engine.run_nvt(6000, 0.8, thermostat, 0.5, seed=11, log_every=50, on_log=lambda t: rows.append(t.as_row()))
    log = pd.DataFrame(rows)
    production = log.iloc[len(log) // 2 :]
    result = checks.temperature_check(production, 0.8, n_particles=N_PARTICLES)
    assert result["passed"], result["message"]


@pytest.mark.hoomd
def test_mttk_thermostats_the_half_step_kinetic_energy(engine_class, relaxed_start):
    """HOOMD-blue's MTTK updates its friction xi from the kinetic energy of the half-step velocities
    v(t + dt/2) = v(t) + F dt / 2m (TwoStepConstantVolume::integrateStepOne calls advanceThermostat after
    the first half kick; Thermostat.h, MTTKThermostat::advanceThermostat), not from the full-step v(t) that
    thermo() reports and LAMMPS' fix nvt thermostats. That is why HOOMD's mean full-step T_kin lies
    dt^2 <|F|^2> / (4 m (3N - 3)) = dt^2 omega_E^2 T / 4 (0.34 % at dt = 0.005) below the set point
    (hoomd_engine docstring). One step from xi = 0 gives xi = dt / tau^2 (T_half / T - 1) with T_half from
    2K / (3N - 3) of v(t) + F dt / 2m: expected to round-off (1e-9 relative). The same formula with the
    full-step T_kin differs by dt / tau^2 (T_half - T_full) / T (measured: xi = 1.4172e-3 = the half-step value to
    1e-14, the full-step value 1.2500e-3), far outside that tolerance;
    a change of HOOMD's scheme (or of the degrees of freedom it divides by) fails the test."""
    dt, tau, temperature = 0.005, 0.5, 0.8
    n = N_PARTICLES
    with engine_class(KobAndersen(), dt=dt, device="cpu") as engine:
        engine.load(relaxed_start)
        engine.set_velocities(maxwell_boltzmann(1.6, seed=7))
        engine.run_nve(200)  # 1 tau: thermal forces (|F|^2 ~ 3N omega_E^2 T), not the minimum's ~0
        engine.set_velocities(maxwell_boltzmann(0.85, seed=8))
        velocities = engine.snapshot().velocities
        forces = engine.forces()
        engine.run_nvt(1, temperature, "nose_hoover", tau, seed=13)
        xi = float(engine.save_state().thermostat["xi"][0])
    mass = KobAndersen().mass
    half = velocities + 0.5 * dt * forces / mass
    t_half = float(np.sum(mass * half**2) / (3 * n - 3))
    t_full = float(np.sum(mass * velocities**2) / (3 * n - 3))
    expected = dt / tau**2 * (t_half / temperature - 1.0)
    full_step = dt / tau**2 * (t_full / temperature - 1.0)
    assert xi == pytest.approx(expected, rel=1e-9, abs=1e-14)
    assert abs(full_step - expected) > 1e3 * 1e-9 * abs(expected)


@pytest.mark.hoomd
def test_temperature_ramp_reaches_its_end(engine_class, relaxed_start):
    rows = []
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(relaxed_start)
        engine.set_velocities(maxwell_boltzmann(1.2, seed=6))
        engine.run_nvt(4000, 1.2, "bussi", 0.1, seed=12, temperature_stop=0.6, log_every=100, on_log=rows.append)
    late = np.mean([r.kinetic_temperature for r in rows[-5:]])  # set points 0.63 ... 0.6
    assert late == pytest.approx(0.61, abs=0.06)
    assert rows[0].kinetic_temperature > 0.9


def test_module_imports_without_hoomd():
    code = "import sys, glasspipe.md.hoomd_engine as m; assert 'hoomd' not in sys.modules; print(m.ENGINE.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "hoomd"


def test_require_explains_how_to_install(monkeypatch):
    from glasspipe.md import hoomd_engine

    monkeypatch.setitem(sys.modules, "hoomd", None)  # makes `import hoomd` raise ImportError
    with pytest.raises(EngineNotAvailable, match="envs/hoomd.yaml"):
        hoomd_engine.require()
    with pytest.raises(EngineNotAvailable, match="conda-forge"):
        hoomd_engine.HoomdEngine(KobAndersen(), dt=0.005)
    with pytest.raises(EngineNotAvailable, match="scripts/install-hoomd.sh"):
        hoomd_engine.require()


def test_nlist_buffer_fits_the_box():
    """HOOMD refuses L <= 2 (r_cut + buffer). Expected: the full 0.3 skin where there is room (N = 1000 at
    rho = 1.2: L/2 = 4.71), 90 % of L/2 - r_cut in the tiny config's box (N = 200: L = 5.5032,
    0.9 * (2.7516 - 2.5) = 0.2264 to 1e-4), and an error naming the box where even 0.05 does not fit."""
    from glasspipe.md.hoomd_engine import NLIST_BUFFER, nlist_buffer

    assert nlist_buffer((1000 / 1.2) ** (1 / 3), 2.5) == NLIST_BUFFER
    tiny = (200 / 1.2) ** (1 / 3)
    buffer = nlist_buffer(tiny, 2.5)
    assert buffer == pytest.approx(0.2264, abs=1e-4)
    assert 2.5 + buffer < tiny / 2
    with pytest.raises(ValueError, match="box length 5.0500 is too small for the cutoff 2.5"):
        nlist_buffer(5.05, 2.5)


def _velocity_verlet_reference(start: Snapshot, potential, dt: float, n_steps: int) -> np.ndarray:
    """Unwrapped positions after n_steps of velocity Verlet with the reference forces (numpy, no MD code;
    positions are kept unwrapped, the forces see them wrapped by ``evaluate``'s minimum image)."""
    x = start.unwrapped_positions().astype(np.float64)
    v = start.velocities.astype(np.float64).copy()

    def force(positions):
        frame = Snapshot(
            positions=positions,
            typeid=start.typeid,
            box_length=start.box_length,
            images=np.zeros_like(start.images),
        ).wrapped()
        return evaluate(frame, potential).forces

    f = force(x)
    for _ in range(n_steps):
        v += 0.5 * dt * f
        x += dt * v
        f = force(x)
        v += 0.5 * dt * f
    return x


@pytest.mark.hoomd
def test_replica_crossing_the_boundary_keeps_image_flags(engine_class, relaxed_start):
    """An iso-configurational replica whose particles cross the box faces: 60 NVE steps (0.3 tau) from a
    start with non-zero image flags, every particle within 0.15 of a face given a speed of 1.5 outwards
    (0.45 in 0.3 tau; in this dense liquid a neighbour turns most back: with LAMMPS' relaxed start, 16 of
    52 crossed, so >= 10 crossings are asked for). The unwrapped trajectory must equal
    an independent velocity-Verlet integration with the reference forces: the two differ by summation
    order only, ~1e-15 amplified by chaos (~e^(0.3 tau * 5 / tau)) to ~1e-13 (LAMMPS: 1.8e-14); 1e-8
    catches any lost or doubled box length (7.5) and any wrong force."""
    potential = KobAndersen()
    start = relaxed_start.copy()
    half = 0.5 * start.box_length
    velocities = maxwell_boltzmann(0.6, seed=8)
    gap = half - np.abs(start.positions)  # (N, 3) distance to the nearest face along each axis
    axis = gap.argmin(axis=1)
    rows = np.arange(N_PARTICLES)
    movers = rows[gap[rows, axis] < 0.15]
    velocities[movers, axis[movers]] = 1.5 * np.sign(start.positions[movers, axis[movers]])
    start.velocities = velocities
    assert len(movers) > 20 and np.any(start.images != 0)
    expected = _velocity_verlet_reference(start, potential, dt=0.005, n_steps=60)
    with engine_class(potential, dt=0.005, device="cpu") as engine:
        engine.load(start)
        engine.run_nve(60)
        final = engine.snapshot()
    crossed = (final.images != start.images).any(axis=1)
    assert crossed.sum() >= 10
    np.testing.assert_allclose(final.unwrapped_positions(), expected, rtol=0, atol=1e-8)
    assert final.step == start.step + 60


@pytest.mark.hoomd
def test_fire_inherent_structure_is_a_minimum(engine_class, relaxed_start):
    """Inherent structure of a liquid configuration (NVT at T = 0.8 for 5 tau, then FIRE to ||F|| < 1e-6),
    judged by the reference alone: (1) ||F|| < 1e-6 (the tolerance, 0.1 % slack for summation order);
    (2) U/N of the liquid minus U/N of its inherent structure between 0.8 and 2.0: the harmonic share is
    3T/2 = 1.2 at T = 0.8, anharmonicity adds ~0.1-0.3, and a minimiser stopping early or escaping to a
    lower basin lands outside; (3) U rises along 20 random unit directions of the 3N space: the second
    difference (U(x + h d) + U(x - h d) - 2 U(x)) / h^2, h = 1e-2, is > 0 (round-off ~ 1e-16 |U| / h^2 ~
    1e-8; this rules out a stop on a slope or a maximum, not a saddle with a few negative modes)."""
    potential = KobAndersen()
    with engine_class(potential, dt=0.005, device="cpu") as engine:
        engine.load(relaxed_start)
        engine.set_velocities(maxwell_boltzmann(0.8, seed=9))
        engine.run_nvt(1000, 0.8, "bussi", 0.1, seed=13)
        liquid = engine.thermo().potential_energy
        engine.minimize(force_tolerance=1e-6, max_steps=50_000)
        inherent = engine.snapshot()
    result = evaluate(inherent, potential)
    assert np.linalg.norm(result.forces) < 1e-6 * 1.001
    assert 0.8 < liquid - result.potential_energy_per_particle < 2.0
    rng = np.random.default_rng(10)
    h = 1e-2
    for _ in range(20):
        d = rng.normal(size=inherent.positions.shape)
        d /= np.linalg.norm(d)
        plus, minus = inherent.copy(), inherent.copy()
        plus.positions = inherent.positions + h * d
        minus.positions = inherent.positions - h * d
        energies = [evaluate(x.wrapped(), potential).potential_energy for x in (plus, minus)]
        assert (sum(energies) - 2 * result.potential_energy) / h**2 > 0


@pytest.mark.hoomd
def test_minimize_from_a_random_start_stays_in_the_box(engine_class):
    """FIRE's first step is dt and its largest 4 dt (10 dt, the old setting, blows up here): from the random
    lattice start (pairs at 0.85, |F| up to ~400) it must converge (reference ||F|| < 1e-3, 0.1 % slack)
    without HOOMD stopping on particles out of the box, and the images must carry the displacement: FIRE
    moves particles by <= ~1.3 here, a lost or spurious image flag by about L = 7.47, so < L/2."""
    start = random_start(seed=3)
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(start)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # neither a restart with a smaller dt_max nor non-convergence
            engine.minimize(force_tolerance=1e-3, max_steps=20_000)
        after = engine.snapshot()
    assert np.linalg.norm(evaluate(after, KobAndersen()).forces) < 1e-3 * 1.001
    displacement = np.linalg.norm(after.unwrapped_positions() - start.unwrapped_positions(), axis=1)
    assert displacement.max() < 0.5 * start.box_length


@pytest.mark.hoomd
def test_versions_record_hoomd(engine_class):
    """versions.json (glasspipe.report.versions) names the HOOMD-blue that is importable here."""
    import hoomd

    from glasspipe.report.versions import software_versions

    assert software_versions()["hoomd"] == hoomd.version.version


@pytest.mark.hoomd
def test_fire_blow_up_restarts_with_a_smaller_step(engine_class, monkeypatch):
    """With dt_max = 20 dt (0.1) FIRE blows up on the random start (10 dt already does); minimize must
    warn, restart from the same configuration with dt_max halved until it converges (at 5 dt), and end
    at a minimum (reference ||F|| < 1e-3, 0.1 % slack)."""
    from glasspipe.md import hoomd_engine

    monkeypatch.setattr(hoomd_engine, "FIRE_DT_MAX_FACTOR", 20.0)
    start = random_start(seed=3)
    with engine_class(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(start)
        with pytest.warns(RuntimeWarning, match="restarting with dt_max") as record:
            engine.minimize(force_tolerance=1e-3, max_steps=20_000)
        after = engine.snapshot()
    assert 1 <= sum("restarting" in str(w.message) for w in record) <= 3
    assert np.linalg.norm(evaluate(after, KobAndersen()).forces) < 1e-3 * 1.001


@pytest.mark.hoomd
def test_botan_configuration_energy_equals_reference(engine_class, shared_data):
    """A BOTAN equilibrated configuration (N = 4096, T = 0.44; the paper's data): energy, virial and forces
    from HOOMD equal the reference to 1e-10 relative (measured 2e-15 on all 11 BOTAN samples: summation
    order only)."""
    from pathlib import Path

    from glasspipe.importers.botan import BotanImporter

    path = Path(shared_data) / "botan_T0.44_cfg1_tc07.npz"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    snapshot = BotanImporter().parse(path, path.read_bytes()).snapshot
    potential = KobAndersen()
    reference = evaluate(snapshot, potential)
    with engine_class(potential, dt=0.005, device="cpu") as engine:
        engine.load(snapshot)
        thermo = engine.thermo()
        forces = engine.forces()
    n, volume = snapshot.n_particles, snapshot.box_length**3
    virial = 3 * volume * (thermo.pressure - (n - 1) * thermo.kinetic_temperature / volume)
    assert thermo.potential_energy == pytest.approx(reference.potential_energy_per_particle, rel=1e-10)
    assert virial == pytest.approx(reference.virial, rel=1e-10)
    assert np.abs(forces - reference.forces).max() <= 1e-10 * np.abs(reference.forces).max()


@pytest.mark.hoomd
@pytest.mark.slow
def test_tiny_workflow_runs_on_hoomd(engine_class, tmp_path):
    """The tiny config end to end through Snakemake with engine.name: hoomd (~80 s on one core): every stage
    finishes, the MD outputs say hoomd, versions.json names the HOOMD-blue used, and the physics is KA's at
    T = 0.8: inherent structures in (-8.0, -7.2) as in test_workflow; the production U/N of each
    configuration within 0.1 of -6.35 (REFERENCE.md at N = 4096; N = 200 over 10 tau fluctuates by ~0.02)."""
    import json

    import hoomd
    from conftest import snakemake

    from glasspipe.io.gsd_io import read_metadata

    result = snakemake(tmp_path, "--cores", "2", "--config", "engine={name: hoomd, dt: 0.005, device: cpu}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results"
    assert json.loads((results / "report" / "versions.json").read_text())["hoomd"] == hoomd.version.version
    for c in range(4):
        metadata = read_metadata(results / "T0.8" / "equilibrate" / f"cfg{c:03d}.gsd")
        assert metadata["settings"]["engine"]["name"] == "hoomd"
        checks_file = json.loads((results / "T0.8" / "equilibrate" / f"cfg{c:03d}.checks.json").read_text())
        assert checks_file["engine"] == "hoomd"
        assert -8.0 < checks_file["inherent_potential_energy"] < -7.2
        thermo = pd.read_parquet(results / "T0.8" / "equilibrate" / f"cfg{c:03d}.thermo.parquet")
        production = thermo[thermo["phase"] == "production"]
        assert abs(production["potential_energy"].mean() + 6.35) < 0.1
