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
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glasspipe.io.gsd_io import Snapshot
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
    @abstractmethod
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
        """Canonical dynamics for n_steps; temperature ramps linearly to temperature_stop if given.

        thermostat: 'nose_hoover' (Nose-Hoover chain, MTTK) or 'bussi' (stochastic velocity rescaling),
        tau its time constant (tau units). on_log(thermo) is called every log_every steps.
        """

    @abstractmethod
    def run_nve(self, n_steps: int, log_every: int | None = None, on_log: LogCallback | None = None) -> None:
        """Microcanonical velocity-Verlet dynamics for n_steps."""

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
