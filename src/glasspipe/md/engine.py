"""The engine interface: what a protocol may ask of an MD code.

Protocols (melt-cool-equilibrate, iso-configurational NVE runs) are written once against ``Engine``;
``lammps`` and ``hoomd`` implement it. An engine holds one system of the Kob-Andersen mixture in a cubic
periodic box, in LJ reduced units, with all masses 1.

Conventions every engine follows:
- ``thermo()`` returns intensive quantities: potential energy per particle (eps_AA, with the configured
  cutoff mode), kinetic temperature with 3N - 3 degrees of freedom (momentum is conserved), and the
  pressure P = (2K + W) / (3V) = (N - 1) k_B T_kin / V + W / (3V) (eps_AA / sigma_AA^3), K the kinetic
  energy and W the pair virial sum_{i<j} r_ij . f_ij (the convention of LAMMPS and HOOMD).
- ``snapshot()`` returns positions wrapped into [-L/2, L/2) with image flags, in particle order 0..N-1
  (the order of the snapshot given to ``load``), and the current step.
- Runs are deterministic for a given seed (thermostat noise) and thread count.
- ``save_state`` / ``restore_state`` hand over the full dynamical state in double precision, thermostat
  variables included (glasspipe.md.state), so a resumed run continues as if never interrupted.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.state import Dynamics, EngineState
from glasspipe.potential import KobAndersen

ENGINE_MODULES = {"lammps": "glasspipe.md.lammps_engine", "hoomd": "glasspipe.md.hoomd_engine"}
THERMOSTATS = ("nose_hoover", "bussi")


class EngineNotAvailable(RuntimeError):
    """The requested MD engine is not installed in this environment."""


@dataclass(frozen=True)
class Thermo:
    """Instantaneous thermodynamics of the system at ``step``."""

    step: int
    time: float
    potential_energy: float  # per particle, eps_AA
    kinetic_temperature: float  # eps_AA / k_B, 3N - 3 degrees of freedom
    pressure: float  # eps_AA / sigma_AA^3

    def as_row(self) -> dict:
        return {
            "step": self.step,
            "time": self.time,
            "potential_energy": self.potential_energy,
            "kinetic_temperature": self.kinetic_temperature,
            "pressure": self.pressure,
        }


LogCallback = Callable[[Thermo], None]


class Engine(ABC):
    """One MD system; see the module docstring for the conventions.

    Parameters
    ----------
    potential: the pair potential (parameters and cutoff mode).
    dt: time step (tau).
    threads: CPU threads the engine may use.
    device: 'auto', 'cpu' or 'gpu' (engines without GPU support accept 'auto' and 'cpu').
    """

    name: str = "abstract"

    def __init__(self, potential: KobAndersen, dt: float, threads: int = 1, device: str = "auto"):
        self.potential = potential
        self.dt = float(dt)
        self.threads = int(threads)
        self.device = device
        self._dynamics: Dynamics | None = None

    @property
    def dynamics(self) -> Dynamics | None:
        """The dynamics that advance() continues (None before start_dynamics or after a state change)."""
        return self._dynamics

    # --- state -----------------------------------------------------------------------------------
    @abstractmethod
    def load(self, snapshot: Snapshot) -> None:
        """Set box, types, positions, image flags, velocities (zero if None) and step from ``snapshot``."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """The current state (see module docstring)."""

    @abstractmethod
    def set_velocities(self, velocities: np.ndarray) -> None:
        """Replace the velocities, (N, 3) in particle order."""

    @abstractmethod
    def set_step(self, step: int) -> None:
        """Reset the step counter (the time origin of the next run)."""

    # --- observables -----------------------------------------------------------------------------
    @abstractmethod
    def thermo(self) -> Thermo:
        """Thermodynamics of the current state."""

    @abstractmethod
    def forces(self) -> np.ndarray:
        """Forces on each particle (N, 3), particle order, eps_AA / sigma_AA."""

    # --- dynamics --------------------------------------------------------------------------------
    # A continuous run: start_dynamics sets up the integrator (and a fresh thermostat) once, advance
    # integrates on with it as often as needed. Chunks of one run are one trajectory: the thermostat's
    # variables carry over, the temperature ramp is anchored to absolute steps, and nothing is rebuilt
    # between chunks, so frames and log rows can be taken along the way.
    @abstractmethod
    def start_dynamics(self, dynamics: Dynamics) -> None:
        """Set up ``dynamics`` (replacing the current integrator) with its thermostat variables at zero.

        The ramp's anchors (dynamics.ramp_start, ramp_stop) must bracket every step that advance() runs.
        load(), minimize(), set_velocities() and set_step() end the current dynamics.
        """

    @abstractmethod
    def advance(self, n_steps: int, log_every: int | None = None, on_log: LogCallback | None = None) -> None:
        """Integrate n_steps more with the current dynamics; on_log(thermo) after every log_every steps
        (and after the last, partial chunk). RuntimeError if no dynamics were started."""

    @abstractmethod
    def save_state(self) -> EngineState:
        """The full state (positions, velocities, images, step, dynamics, thermostat variables), exact.

        The engine may re-wrap positions into the box while saving (LAMMPS' write_restart does); the
        returned state is what it holds afterwards.
        """

    @abstractmethod
    def restore_state(self, state: EngineState) -> None:
        """Become ``state`` exactly: save_state() right after returns a state equal to it bit for bit, and
        advance() continues its dynamics with its thermostat variables. Restoring rebuilds the engine's
        internal structures (particle order, neighbour list) as a function of ``state`` alone, so two
        restores of one state integrate identically (see protocols.equilibrate). ValueError when
        ``state`` comes from another engine or does not fit the potential."""

    def run_nvt(
        self,
        n_steps: int,
        temperature: float,
        thermostat: str,
        tau: float,
        seed: int,
        temperature_stop: float | None = None,
        log_every: int | None = None,
        on_log: LogCallback | None = None,
    ) -> None:
        """Canonical dynamics for n_steps with a fresh thermostat; temperature ramps linearly to
        temperature_stop (if given) over these n_steps.

        thermostat: 'nose_hoover' (Nose-Hoover chain, MTTK) or 'bussi' (stochastic velocity rescaling),
        tau its time constant (tau units). on_log(thermo) is called every log_every steps. For a run in
        several pieces with one thermostat use start_dynamics and advance.
        """
        if thermostat not in THERMOSTATS:
            raise ValueError(f"thermostat {thermostat!r} is not one of {THERMOSTATS}")
        n_steps = int(n_steps)
        if n_steps <= 0:
            return
        step = self.step
        t_stop = temperature if temperature_stop is None else temperature_stop
        self.start_dynamics(
            Dynamics(thermostat, float(temperature), float(t_stop), step, step + n_steps, float(tau), int(seed))
        )
        self.advance(n_steps, log_every, on_log)

    def run_nve(self, n_steps: int, log_every: int | None = None, on_log: LogCallback | None = None) -> None:
        """Microcanonical velocity-Verlet dynamics for n_steps (a fresh NVE integrator)."""
        if int(n_steps) <= 0:
            return
        self.start_dynamics(Dynamics.nve())
        self.advance(n_steps, log_every, on_log)

    @property
    @abstractmethod
    def step(self) -> int:
        """The current MD step."""

    @abstractmethod
    def minimize(self, force_tolerance: float = 1e-8, max_steps: int = 100_000) -> None:
        """Relax positions to the nearest local potential-energy minimum (FIRE); velocities set to zero."""

    def close(self) -> None:
        """Release the engine's resources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def available_engines() -> list[str]:
    """Names of the engines importable in this environment."""
    names = []
    for name in ENGINE_MODULES:
        try:
            engine_class(name)
        except EngineNotAvailable:
            continue
        names.append(name)
    return names


def engine_class(name: str) -> type[Engine]:
    """The Engine subclass called ``name``; EngineNotAvailable if its MD code is not installed."""
    if name not in ENGINE_MODULES:
        raise ValueError(f"config key 'engine.name' = {name!r} is not one of {sorted(ENGINE_MODULES)}")
    module = importlib.import_module(ENGINE_MODULES[name])
    module.require()  # raises EngineNotAvailable with install instructions
    return module.ENGINE


def make_engine(config: dict) -> Engine:
    """An engine configured from config['engine'] and config['system']."""
    from glasspipe.potential import from_config

    settings = config["engine"]
    cls = engine_class(settings["name"])
    return cls(from_config(config), dt=settings["dt"], threads=settings["threads"], device=settings["device"])
