"""The HOOMD-blue engine (v4 or newer, double precision, CPU or GPU).

HOOMD-blue is not on PyPI: build it from source into the virtualenv with ``scripts/install-hoomd.sh``
(v4.8.2, cached after the first build), or install it from conda-forge with the environment file
``envs/hoomd.yaml`` (``snakemake --use-conda`` does this for the MD rules). This
module imports ``hoomd`` only inside functions, so it imports (and ``require()`` reports what to do) where
HOOMD is absent.

How the Engine conventions (glasspipe.md.engine) map onto HOOMD:
- Particles keep their tags, HOOMD's permanent identifiers: tag k is particle k of the snapshot given to
  ``load``, and ``State.get_snapshot`` and ``Force.forces`` return arrays in tag order.
- The KA mixture is ``md.pair.LJ`` with per-pair ``r_cut`` = potential.r_cut and mode 'shift' (cutoff_mode
  shift) or 'none' (truncate), on a ``md.nlist.Cell`` neighbour list (buffer 0.3, or less in a box too
  small for it: HOOMD needs r_cut + buffer < L/2; ``nlist_buffer``).
- ``thermo()`` reads ``md.compute.ThermodynamicQuantities`` over all particles: potential energy / N, and
  the translational kinetic energy K, from which T_kin = 2K / (3N - 3) is computed here (HOOMD counts
  3N - 3 only when it deems momentum conserved). HOOMD's pressure (2K + W) / 3V is the convention's
  and is returned as it is. ``Simulation.always_compute_pressure``
  is on so that the virial exists at every step (a moderate cost, documented by HOOMD).
- NVT: ``md.methods.ConstantVolume`` with ``thermostats.MTTK(kT, tau)`` (nose_hoover) or
  ``thermostats.Bussi(kT, tau)`` (bussi); a temperature ramp is ``hoomd.variant.Ramp`` anchored at the
  dynamics' absolute ramp steps. NVE: ``ConstantVolume(thermostat=None)``. ``start_dynamics`` creates
  the method and thermostat once; ``advance`` only calls ``Simulation.run``, so the thermostat's
  variables carry over between chunks. HOOMD's random numbers depend on (Simulation.seed, timestep,
  particle): the run's seed is folded into HOOMD's 16-bit seed range.
- Where the thermostats read the kinetic energy (HOOMD 4.8.2 source): MTTK updates its friction xi from
  the half-step velocities v(t + dt/2) = v(t) + F dt / 2m (``TwoStepConstantVolume::integrateStepOne``
  calls ``advanceThermostat`` after the first half kick and the drift, hoomd/md/TwoStepConstantVolume.cc
  lines 206-210; ``MTTKThermostat::advanceThermostat``, hoomd/md/Thermostat.h lines 162-177, computes the
  temperature there), with 3N - 3 degrees of freedom, as ``thermo()``. ``thermo()`` and LAMMPS' fix nvt use
  the full-step v(t) (LAMMPS thermostats those: fix_nh.cpp, FixNH::final_integrate); Bussi reads them too
  (``BussiThermostat::getRescalingFactorsOne``, Thermostat.h line 364, before the first kick). The two
  differ on average by 2K_half - 2K_full = dt^2 sum |F|^2 / 4m, i.e. T_half - T_full = dt^2 omega_E^2 T / 4
  with omega_E^2 = <|F|^2> / (3N m T) ~ 550 for KA at rho = 1.2, T = 0.7: 0.34 % at dt = 0.005. So with
  ``nose_hoover`` the mean full-step T_kin reported here lies 0.34 % below the set point (measured at
  N = 500, T = 0.7, 200 tau: T_kin 0.6975 +- 0.0003, T_half 0.6999 +- 0.0003; at dt = 0.0025 the deficit is
  0.08 %, as dt^2 predicts), while LAMMPS' and HOOMD's Bussi full-step T_kin equal it. This is HOOMD's
  discretisation, not a setup error (the momentum is zero to 1e-15, both computes count 3N - 3). It is the
  configuration that follows the half-step temperature (for a harmonic oscillator under velocity Verlet,
  omega^2 <q^2> = <p_half^2> / m exactly), so HOOMD's MTTK samples configurations at the set point and
  LAMMPS' fix nvt (and HOOMD's Bussi) 0.34 % above it: measured, the configurational temperature
  <|F|^2> / <lap U> of LAMMPS exceeds HOOMD-MTTK's by 0.0027 +- 0.0016, 0.0054 +- 0.0024 and 0.0019 +-
  0.0020 (three seeds; weighted 0.0030 +- 0.0011; expected 0.0024). Both are O(dt^2) discretisations of
  Nose-Hoover; neither is corrected (docs/engines.md, cross-engine agreement; benchmarks/kinetic_temperature.py
  measures; tests/test_hoomd_engine.py pins where MTTK reads K).
- ``save_state`` / ``restore_state``: the double-precision snapshot, the timestep, the dynamics and MTTK's
  ``translational_dof`` (xi, eta); restoring builds a fresh Simulation (particles in tag order).
- ``minimize()``: ``md.minimize.FIRE`` with ``ConstantVolume`` and no thermostat, starting at dt and growing
  to at most 4 dt (HOOMD's ``FIRE(dt=...)`` is the largest step and, as set at attach time, also the
  first; there is no displacement cap like LAMMPS' dmax, and KA from a random start blows up with LAMMPS'
  dtmax = 10 dt; a blow-up restarts with dt_max halved); force_tolerance is the
  2-norm of the global force vector (as LAMMPS' ftol): HOOMD stops when ||F|| / sqrt(3N) < force_tol,
  so force_tol = force_tolerance / sqrt(3N); the energy and angular-momentum criteria are disabled.
  The step counter is restored afterwards and velocities are zero.
- ``set_step``, ``set_velocities`` and ``minimize`` rebuild the HOOMD Simulation from a snapshot (the
  timestep of a HOOMD Simulation can only be set before its state exists, and a fresh Simulation leaves
  no cached force or thermodynamic value of the previous state behind). Rebuilds are lazy: consecutive
  state changes cost one rebuild, at the next run or observation. The Device is created once.
- Logging: ``on_log`` is called after every ``log_every`` steps of a run (not at its start), as in the
  LAMMPS engine.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.engine import THERMOSTATS, Engine, EngineNotAvailable, Thermo
from glasspipe.md.state import Dynamics, EngineState

_INSTALL_HINT = (
    "the 'hoomd' engine needs HOOMD-blue >= 4, which is not on PyPI: build it into this virtualenv with "
    "scripts/install-hoomd.sh (no conda; 20-40 min once, then seconds from its cache; docs/engines.md), "
    "or create the conda environment envs/hoomd.yaml (conda env create -f envs/hoomd.yaml), run the workflow "
    "with `snakemake --use-conda` so that the MD rules get that environment, or `conda install -c "
    "conda-forge hoomd` into this one"
)
NLIST_BUFFER = 0.3  # sigma_AA, the neighbour-list skin (as the LAMMPS engine's 'neighbor 0.3 bin')
MIN_NLIST_BUFFER = 0.05  # sigma_AA; a thinner skin rebuilds the neighbour list nearly every step
FIRE_DT_MAX_FACTOR = 4.0  # FIRE's largest step in units of the MD dt (see HoomdEngine.minimize)
MIN_HOOMD_MAJOR = 4


def _import_hoomd():
    """The hoomd module (with hoomd.md); EngineNotAvailable with install instructions if unusable."""
    try:
        import hoomd
        import hoomd.md  # noqa: F401  (the MD component may be left out of a build)
    except ImportError as err:
        raise EngineNotAvailable(f"{_INSTALL_HINT} (import failed: {err})") from err
    version = str(getattr(hoomd, "__version__", None) or getattr(hoomd.version, "version", "0"))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_HOOMD_MAJOR:
        raise EngineNotAvailable(f"HOOMD-blue {version} is installed but glasspipe needs >= 4; {_INSTALL_HINT}")
    precision = getattr(hoomd.version, "floating_point_precision", (64, 64))
    if int(precision[0]) != 64:
        raise EngineNotAvailable(
            f"this HOOMD-blue build computes in {precision[0]}-bit precision; glasspipe needs a double "
            f"precision build (the conda-forge packages are); {_INSTALL_HINT}"
        )
    return hoomd


def require() -> None:
    """Raise EngineNotAvailable, with install instructions, if HOOMD-blue cannot be used here."""
    _import_hoomd()


def nlist_buffer(box_length: float, r_cut_max: float) -> float:
    """The neighbour-list skin (sigma_AA) for a cubic box of edge ``box_length`` and largest cutoff ``r_cut_max``.

    HOOMD's neighbour list refuses boxes with L <= 2 (r_cut + buffer) (it searches one image only), so the
    skin is NLIST_BUFFER, or 90 % of the room L/2 - r_cut where that is less (N = 200 at rho = 1.2: L/2 =
    2.75, r_cut = 2.5, buffer 0.23). A thinner skin only costs more list rebuilds (HOOMD rebuilds once a
    particle moved buffer/2). ValueError when the room is below MIN_NLIST_BUFFER / 0.9.
    """
    room = 0.5 * float(box_length) - float(r_cut_max)
    buffer = min(NLIST_BUFFER, 0.9 * room)
    if buffer < MIN_NLIST_BUFFER:
        raise ValueError(
            f"box length {box_length:.4f} is too small for the cutoff {r_cut_max} on HOOMD-blue: its neighbour "
            f"list needs r_cut + buffer < L/2 with a buffer of at least {MIN_NLIST_BUFFER}, i.e. L > "
            f"{2 * (r_cut_max + MIN_NLIST_BUFFER / 0.9):.4f}; use more particles (or the lammps engine)"
        )
    return buffer


def _fold_seed(seed: int) -> int:
    """HOOMD seeds are 16-bit (Simulation.seed keeps the lowest 16 bits, with a warning): fold explicitly."""
    seed = int(seed)
    return (seed ^ (seed >> 16) ^ (seed >> 32)) & 0xFFFF


class HoomdEngine(Engine):
    """Engine on HOOMD-blue; see the module docstring and glasspipe.md.engine for the conventions."""

    name = "hoomd"

    def __init__(self, potential, dt, threads=1, device="auto"):
        super().__init__(potential, dt, threads, device)
        self._hoomd = _import_hoomd()
        self._device = self._make_device(device, self.threads)
        self._sim = None
        self._pair = None
        self._integrator = None
        self._thermo_compute = None
        self._pending: Snapshot | None = None  # state to rebuild from before the next use
        self._dynamics: Dynamics | None = None
        self._thermostat_object = None
        self._n = 0
        self._box_length = 0.0
        self._nlist_buffer = NLIST_BUFFER

    # --- construction ----------------------------------------------------------------------------
    def _make_device(self, device: str, threads: int):
        hoomd = self._hoomd
        if device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"config key 'engine.device' = {device!r} is not one of 'auto', 'cpu', 'gpu'")
        # Without TBB, HOOMD runs one thread and warns when asked for a count; with TBB, None would let
        # it take every core, so pass the configured number.
        threads = threads if getattr(hoomd.version, "tbb_enabled", False) else None
        gpu_available = bool(getattr(hoomd.version, "gpu_enabled", False)) and bool(
            hoomd.device.GPU.get_available_devices()
        )
        if device == "gpu" and not gpu_available:
            reasons = "; ".join(hoomd.device.GPU.get_unavailable_device_reasons()) or "no GPU build or device"
            raise EngineNotAvailable(
                f"config key 'engine.device' = 'gpu' but HOOMD-blue sees no usable GPU ({reasons}); install "
                "the GPU build (conda install -c conda-forge 'hoomd=*=*gpu*') or set engine.device to auto or cpu"
            )
        if device in ("gpu", "auto") and gpu_available:
            return hoomd.device.GPU(num_cpu_threads=threads, notice_level=1)
        return hoomd.device.CPU(num_cpu_threads=threads, notice_level=1)

    def _make_pair(self):
        """The KA pair force: LJ with per-pair r_cut and the potential's cutoff mode."""
        md = self._hoomd.md
        try:
            nlist = md.nlist.Cell(buffer=self._nlist_buffer, deterministic=True)
        except TypeError:  # HOOMD releases without the deterministic flag
            nlist = md.nlist.Cell(buffer=self._nlist_buffer)
        mode = {"shift": "shift", "truncate": "none", "xplor": "xplor"}[self.potential.cutoff_mode]
        pair = md.pair.LJ(nlist=nlist, default_r_cut=self.potential.r_cut_max, mode=mode)
        names = self.potential.type_names
        for a, b, epsilon, sigma, r_cut in self.potential.pairs():
            pair.params[(names[a], names[b])] = dict(epsilon=epsilon, sigma=sigma)
            pair.r_cut[(names[a], names[b])] = r_cut
            if mode == "xplor":
                pair.r_on[(names[a], names[b])] = float(self.potential.r_on[a, b])
        return pair

    def _hoomd_snapshot(self, snapshot: Snapshot):
        hoomd = self._hoomd
        frame = hoomd.Snapshot(self._device.communicator)
        if frame.communicator.rank == 0:
            n = snapshot.n_particles
            length = float(snapshot.box_length)
            frame.configuration.box = [length, length, length, 0.0, 0.0, 0.0]
            frame.particles.N = n
            frame.particles.types = list(self.potential.type_names)
            frame.particles.position[:] = snapshot.positions
            frame.particles.typeid[:] = snapshot.typeid
            frame.particles.image[:] = snapshot.images
            frame.particles.mass[:] = self.potential.mass
            velocities = snapshot.velocities if snapshot.velocities is not None else np.zeros((n, 3))
            frame.particles.velocity[:] = velocities
        return frame

    def _nve_method(self):
        return self._hoomd.md.methods.ConstantVolume(filter=self._hoomd.filter.All())

    def _build(self, snapshot: Snapshot) -> None:
        """A fresh Simulation holding ``snapshot``, with the pair force, an NVE method and the thermo compute."""
        hoomd = self._hoomd
        md = hoomd.md
        self._sim = None  # release the previous simulation first
        sim = hoomd.Simulation(device=self._device, seed=0)
        sim.timestep = int(snapshot.step)
        sim.create_state_from_snapshot(self._hoomd_snapshot(snapshot))
        pair = self._make_pair()
        integrator = md.Integrator(dt=self.dt, methods=[self._nve_method()], forces=[pair])
        sim.operations.integrator = integrator
        thermo = md.compute.ThermodynamicQuantities(filter=hoomd.filter.All())
        sim.operations.computes.append(thermo)
        sim.always_compute_pressure = True
        sim.run(0)  # attach everything: forces, energies and the virial of this state
        self._sim, self._pair, self._integrator, self._thermo_compute = sim, pair, integrator, thermo
        self._pending = None
        self._dynamics = None
        self._thermostat_object = None

    def _simulation(self):
        if self._pending is not None:
            self._build(self._pending)
        if self._sim is None:
            raise RuntimeError("no system loaded: call load(snapshot) first")
        return self._sim

    # --- state -----------------------------------------------------------------------------------
    def load(self, snapshot: Snapshot) -> None:
        n_types = len(self.potential.type_names)
        if snapshot.n_particles == 0:
            raise ValueError("cannot load an empty snapshot")
        if snapshot.typeid.min() < 0 or snapshot.typeid.max() >= n_types:
            raise ValueError(f"type ids must lie in [0, {n_types}) for types {self.potential.type_names}")
        buffer = nlist_buffer(snapshot.box_length, self.potential.r_cut_max)  # ValueError if L too small
        start = snapshot.wrapped()
        start.dt = self.dt
        self._n = start.n_particles
        self._box_length = float(start.box_length)
        self._nlist_buffer = buffer
        self._build(start)

    def snapshot(self) -> Snapshot:
        if self._pending is not None:
            return self._pending.copy()
        sim = self._simulation()
        frame = sim.state.get_snapshot()
        if frame.communicator.rank != 0:
            raise RuntimeError("glasspipe runs HOOMD-blue on a single MPI rank")
        box = frame.configuration.box
        snap = Snapshot(
            positions=np.array(frame.particles.position, dtype=np.float64),
            typeid=np.array(frame.particles.typeid, dtype=np.int32),
            box_length=float(box[0]),
            images=np.array(frame.particles.image, dtype=np.int32),
            velocities=np.array(frame.particles.velocity, dtype=np.float64),
            step=int(sim.timestep),
            dt=self.dt,
            type_names=tuple(self.potential.type_names),
        )
        return snap.wrapped()  # HOOMD keeps positions in [-L/2, L/2); fold round-off at the edge

    def set_velocities(self, velocities: np.ndarray) -> None:
        velocities = np.asarray(velocities, dtype=np.float64)
        if velocities.shape != (self._n, 3):
            raise ValueError(f"velocities have shape {velocities.shape}, expected ({self._n}, 3)")
        state = self.snapshot()
        state.velocities = velocities.copy()
        self._pending = state
        self._dynamics = None

    def set_step(self, step: int) -> None:
        if int(step) < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        state = self.snapshot()
        state.step = int(step)
        self._pending = state
        self._dynamics = None

    @property
    def step(self) -> int:
        return int(self._pending.step) if self._pending is not None else int(self._simulation().timestep)

    # --- observables -----------------------------------------------------------------------------
    def thermo(self) -> Thermo:
        sim = self._simulation()
        thermo = self._thermo_compute
        n = self._n
        kinetic = float(thermo.translational_kinetic_energy)
        kinetic_temperature = 2.0 * kinetic / (3.0 * n - 3.0)
        step = int(sim.timestep)
        result = Thermo(
            step=step,
            time=step * self.dt,
            potential_energy=float(thermo.potential_energy) / n,
            kinetic_temperature=kinetic_temperature,
            pressure=float(thermo.pressure),  # (2K + W) / 3V, the convention of glasspipe.md.engine
        )
        if not np.isfinite([result.potential_energy, result.kinetic_temperature, result.pressure]).all():
            raise FloatingPointError(f"HOOMD-blue run blew up at step {step}: {result}")
        return result

    def forces(self) -> np.ndarray:
        self._simulation()
        forces = self._pair.forces  # (N, 3), tag order, on rank 0
        if forces is None:
            raise RuntimeError("glasspipe runs HOOMD-blue on a single MPI rank")
        return np.array(forces, dtype=np.float64)

    # --- dynamics --------------------------------------------------------------------------------
    def _thermostat(self, dynamics: Dynamics):
        """The HOOMD thermostat of ``dynamics`` (None for NVE); a ramp is a Variant of the absolute step."""
        hoomd = self._hoomd
        if dynamics.thermostat is None:
            return None
        if dynamics.thermostat not in THERMOSTATS:
            raise ValueError(f"thermostat {dynamics.thermostat!r} is not one of {THERMOSTATS}")
        if dynamics.ramped:
            kT = hoomd.variant.Ramp(
                A=float(dynamics.temperature_start),
                B=float(dynamics.temperature_stop),
                t_start=int(dynamics.ramp_start),
                t_ramp=int(dynamics.ramp_stop - dynamics.ramp_start),
            )
        else:
            kT = float(dynamics.temperature_start)
        thermostats = hoomd.md.methods.thermostats
        if dynamics.thermostat == "nose_hoover":
            return thermostats.MTTK(kT=kT, tau=float(dynamics.tau))
        try:
            return thermostats.Bussi(kT=kT, tau=float(dynamics.tau))
        except TypeError:  # HOOMD 4.0: Bussi without a time constant (instantaneous rescaling)
            warnings.warn(
                "this HOOMD-blue version's Bussi thermostat has no time constant; it rescales every step "
                "(tau = 0). Update HOOMD-blue for thermostat_tau to take effect.",
                RuntimeWarning,
                stacklevel=3,
            )
            return thermostats.Bussi(kT=kT)

    def start_dynamics(self, dynamics: Dynamics) -> None:
        """A ConstantVolume method with the thermostat of ``dynamics`` replaces the integrator's method; the
        thermostat keeps its variables for as long as the method stays (advance only calls Simulation.run).
        The seed becomes Simulation.seed: HOOMD's Bussi noise is a function of (seed, step), no hidden state."""
        hoomd = self._hoomd
        sim = self._simulation()
        thermostat = self._thermostat(dynamics)
        self._integrator.methods = [hoomd.md.methods.ConstantVolume(filter=hoomd.filter.All(), thermostat=thermostat)]
        self._thermostat_object = thermostat
        sim.seed = _fold_seed(dynamics.seed)
        self._dynamics = dynamics

    def _stop_dynamics(self) -> None:
        if self._integrator is not None and self._dynamics is not None:
            self._integrator.methods = [self._nve_method()]
        self._dynamics = None
        self._thermostat_object = None

    def advance(self, n_steps, log_every=None, on_log=None) -> None:
        """Simulation.run in chunks of log_every, calling on_log after each chunk (a thermo read also stops
        a run that blew up)."""
        if self._dynamics is None or self._pending is not None:
            raise RuntimeError("no dynamics started: call start_dynamics (or run_nvt / run_nve) first")
        n_steps = int(n_steps)
        if n_steps <= 0:
            return
        dynamics = self._dynamics
        start = int(self._sim.timestep)
        if dynamics.ramped and not dynamics.ramp_start <= start <= start + n_steps <= dynamics.ramp_stop:
            raise ValueError(
                f"steps {start}..{start + n_steps} lie outside the temperature ramp's "
                f"{dynamics.ramp_start}..{dynamics.ramp_stop}"
            )
        chunk = n_steps if not log_every else int(log_every)
        done = 0
        while done < n_steps:
            n = min(chunk, n_steps - done)
            self._sim.run(n)
            done += n
            thermo = self.thermo()
            if on_log is not None and log_every:
                on_log(thermo)

    def save_state(self) -> EngineState:
        """Positions, velocities, image flags and types from State.get_snapshot (double precision, tag order),
        the timestep, and MTTK's translational degrees of freedom (xi, eta); the Bussi thermostat has no
        state of its own (its noise is a function of seed and step). No engine_data."""
        sim = self._simulation()
        frame = sim.state.get_snapshot()
        if frame.communicator.rank != 0:
            raise RuntimeError("glasspipe runs HOOMD-blue on a single MPI rank")
        thermostat = {}
        if self._dynamics is not None and self._dynamics.thermostat == "nose_hoover":
            xi, eta = self._thermostat_object.translational_dof
            thermostat = {"xi": np.array([xi]), "eta": np.array([eta])}
        return EngineState(
            engine=self.name,
            positions=np.array(frame.particles.position, dtype=np.float64),
            velocities=np.array(frame.particles.velocity, dtype=np.float64),
            images=np.array(frame.particles.image, dtype=np.int32),
            typeid=np.array(frame.particles.typeid, dtype=np.int32),
            box_length=float(frame.configuration.box[0]),
            step=int(sim.timestep),
            dynamics=self._dynamics,
            thermostat=thermostat,
        )

    def restore_state(self, state: EngineState) -> None:
        """A fresh Simulation from the state's arrays (particles in tag order, as in a freshly loaded state;
        HOOMD re-sorts them on its own schedule of the step), the dynamics started again and MTTK's
        (xi, eta) set to the saved values."""
        if state.engine != self.name:
            raise ValueError(f"cannot restore a {state.engine!r} engine state into the {self.name!r} engine")
        snapshot = Snapshot(
            positions=state.positions,
            typeid=state.typeid,
            box_length=state.box_length,
            images=state.images,
            velocities=state.velocities,
            step=state.step,
            dt=self.dt,
            type_names=tuple(self.potential.type_names),
        )
        self._n = snapshot.n_particles
        self._box_length = float(state.box_length)
        self._nlist_buffer = nlist_buffer(state.box_length, self.potential.r_cut_max)
        self._build(snapshot)  # positions as saved (no re-wrapping)
        if state.dynamics is not None:
            self.start_dynamics(state.dynamics)
            if state.dynamics.thermostat == "nose_hoover":
                self._thermostat_object.translational_dof = (
                    float(state.thermostat["xi"][0]),
                    float(state.thermostat["eta"][0]),
                )

    def _fire(self, start: Snapshot, dt_max: float, force_tolerance: float, max_steps: int):
        """FIRE from ``start`` with steps growing from dt to ``dt_max``: (relaxed positions, images,
        converged), or FloatingPointError when the minimiser blew up (HOOMD: particles out of the box)."""
        hoomd = self._hoomd
        md = hoomd.md
        # A separate Simulation holds the minimiser (the MD integrator owns the pair force of the main one).
        sim = hoomd.Simulation(device=self._device, seed=0)
        sim.timestep = int(start.step)
        sim.create_state_from_snapshot(self._hoomd_snapshot(start))
        # FIRE(dt) is the largest step (HOOMD's C++ m_deltaT_max, fixed when the minimiser attaches), and
        # the attach also makes it the first step. Start at the MD dt instead (set after attaching, which
        # leaves the maximum alone), as LAMMPS' FIRE does. The other parameters are HOOMD's (and LAMMPS')
        # defaults, spelled out.
        fire = md.minimize.FIRE(
            dt=float(dt_max),
            force_tol=float(force_tolerance) / math.sqrt(3 * self._n),
            angmom_tol=1e300,  # no rotational degrees of freedom
            energy_tol=1e300,  # converge on forces only, as LAMMPS does with etol = 0
            forces=[self._make_pair()],
            methods=[md.methods.ConstantVolume(filter=hoomd.filter.All())],
            min_steps_adapt=5,  # N_delaystep
            finc_dt=1.1,
            fdec_dt=0.5,
            alpha_start=0.1,
            fdec_alpha=0.99,
            min_steps_conv=10,
        )
        sim.operations.integrator = fire
        sim.run(0)  # attach: the C++ minimiser now holds dt_max
        fire.dt = min(self.dt, float(dt_max))  # the first step; FIRE grows it by finc_dt up to dt_max
        done = 0
        try:
            while done < max_steps and not fire.converged:
                n = min(100, int(max_steps) - done)
                sim.run(n)
                done += n
        except RuntimeError as err:  # "Particle with unique tag ... is no longer in the simulation box"
            raise FloatingPointError(
                f"FIRE with dt_max = {dt_max:g} blew up after <= {done + 100} steps: {err}"
            ) from err
        if not math.isfinite(float(fire.energy)):
            raise FloatingPointError(f"FIRE with dt_max = {dt_max:g} reached a non-finite energy")
        frame = sim.state.get_snapshot()
        positions = np.array(frame.particles.position, dtype=np.float64)
        images = np.array(frame.particles.image, dtype=np.int32)
        return positions, images, bool(fire.converged)

    def minimize(self, force_tolerance=1e-8, max_steps=100_000) -> None:
        start = self.snapshot()
        start.velocities = np.zeros((self._n, 3))
        self._sim = None
        # HOOMD's FIRE has no displacement cap (LAMMPS' dmax = 0.1): it relies on dt_max alone. At
        # FIRE_DT_MAX_FACTOR = 4 (0.02 for dt = 0.005) KA minimisations from random lattice starts converge
        # (10 dt blows up on the first hundred steps, 6 dt converges); should one still blow up, it
        # restarts from the same configuration with dt_max halved, down to dt.
        dt_max = FIRE_DT_MAX_FACTOR * self.dt
        while True:
            try:
                positions, images, converged = self._fire(start, dt_max, force_tolerance, int(max_steps))
                break
            except FloatingPointError as err:
                if dt_max <= self.dt:
                    self._build(start)
                    raise FloatingPointError(f"FIRE failed even with dt_max = dt = {self.dt:g}: {err}") from err
                warnings.warn(f"{err}; restarting with dt_max = {dt_max / 2:g}", RuntimeWarning, stacklevel=2)
                dt_max = max(dt_max / 2, self.dt)
        if not converged:
            warnings.warn(
                f"FIRE did not reach ||F|| < {force_tolerance:g} in {max_steps} steps",
                RuntimeWarning,
                stacklevel=2,
            )
        relaxed = start.copy()
        relaxed.positions = positions
        relaxed.images = images
        relaxed.velocities = np.zeros((self._n, 3))
        relaxed.step = start.step  # minimisation does not advance the MD clock
        self._build(relaxed.wrapped())

    def metadata(self) -> dict:
        """HOOMD-blue version and build facts for output metadata."""
        version = self._hoomd.version
        return {
            "engine": self.name,
            "hoomd_version": str(getattr(self._hoomd, "__version__", None) or getattr(version, "version", "?")),
            "floating_point_precision": list(getattr(version, "floating_point_precision", (64, 64))),
            "device": type(self._device).__name__,
            "threads": self.threads,
            "nlist_buffer": self._nlist_buffer,
        }

    def close(self) -> None:
        self._sim = self._pair = self._integrator = self._thermo_compute = None
        self._pending = None


ENGINE = HoomdEngine
