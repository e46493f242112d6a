"""Runs that resume as if never killed (issue 8, part 4), on both engines.

One equilibration (N = 200, 1000 steps: melt 200, cool 200, burn-in 200, production 400; checkpoints every
300 steps, so at 300 (mid-cool, inside the temperature ramp), 600 and 900) runs in child processes:

- ``uninterrupted``: start to end without a checkpoint directory;
- ``killed``: with a checkpoint directory, SIGKILLed by itself (os.kill(getpid(), SIGKILL)) at its first
  progress report at or after step 400, i.e. 100 steps after its last checkpoint (step 300);
- ``resume_a`` and ``resume_b``: each from its own copy of the killed run's checkpoint directory;
- ``no_checkpoints``: start to end with no checkpoint step at all (checkpoint_every beyond the run).

Each child writes the final configuration (GSD), the log (Parquet) and the final engine state with the
production frames (glasspipe.md.state). The tests then check, per engine and thermostat:
(a) a state restored from the checkpoint equals the saved one bit for bit, thermostat variables included;
(b) the two resumes of one checkpoint give byte-identical files (outputs and later checkpoints);
(c) the resumed run equals the uninterrupted one exactly: final positions, velocities, image flags,
    thermostat variables, every log row and every production frame, bit for bit. Exact equality is
    expected on both engines because the protocol passes every run through the same save/restore at each
    checkpoint step (protocols.equilibrate's docstring); serial LAMMPS and single-threaded HOOMD-blue
    on the CPU are otherwise deterministic;
(d) the thermostat's variables at the resume equal the saved ones, are not zero, and continue: the
    resumed run ends with the uninterrupted run's variables; and, independently of the save/restore
    that both of those runs pass through, the resumed run stays within round-off growth of the run
    that never stopped at a checkpoint (a restore that lost the thermostat's state would not).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glasspipe.md import protocols
from glasspipe.md.engine import EngineNotAvailable, engine_class
from glasspipe.md.state import Dynamics, EngineState, read_state, write_state
from glasspipe.potential import KobAndersen

N_PARTICLES = 200
CHECKPOINT_EVERY = 300
KILL_AT = 400  # first progress report at or after this step; the last checkpoint before it is at 300
SETTINGS = {
    "melt_temperature": 2.0,
    "melt_time": 1.0,
    "cool_time": 1.0,
    "burn_in_time": 1.0,
    "production_time": 2.0,
    "thermostat_tau": 0.5,
    "log_interval": 0.1,
}

# The child process: one equilibration, optionally with checkpoints and a SIGKILL at a progress report.
CHILD = r"""
import json, os, signal, sys
from pathlib import Path
import numpy as np
from glasspipe.io.gsd_io import write_gsd
from glasspipe.io.tables import write_table
from glasspipe.md import protocols
from glasspipe.md.engine import engine_class
from glasspipe.md.state import write_state
from glasspipe.potential import KobAndersen

args = json.loads(sys.argv[1])
n = args["n"]
start = protocols.random_configuration(n, int(0.8 * n), (n / 1.2) ** (1 / 3), 0.8, np.random.default_rng(5))
out = Path(args["out"])
out.mkdir(parents=True, exist_ok=True)
seen = []

def on_progress(phase, step, total):
    seen.append(step)
    (out / "progress.json").write_text(json.dumps(seen))
    if args["kill_at"] is not None and step >= args["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)

with engine_class(args["engine"])(KobAndersen(), dt=0.005, device="cpu") as engine:
    result = protocols.equilibrate(
        engine, start, 0.8, args["settings"], seed=9, checkpoint_dir=args["checkpoint_dir"],
        checkpoint_every=args["checkpoint_every"], on_progress=on_progress,
    )
    final = engine.save_state()
frames = result.production_frames
write_state(out / "final.npz", final, arrays={
    "frame_steps": np.array([f.step for f in frames]),
    "frame_positions": np.stack([f.positions for f in frames]),
    "frame_velocities": np.stack([f.velocities for f in frames]),
    "frame_images": np.stack([f.images for f in frames]),
})
write_gsd(out / "final.gsd", [result.snapshot], metadata={"engine": args["engine"]})
write_table(result.log, out / "log.parquet")
"""


def run_child(
    engine: str,
    thermostat: str,
    out: Path,
    checkpoint_dir: Path | None,
    kill_at: int | None,
    checkpoint_every: int = CHECKPOINT_EVERY,
):
    args = {
        "engine": engine,
        "n": N_PARTICLES,
        "settings": {**SETTINGS, "thermostat": thermostat},
        "out": str(out),
        "checkpoint_dir": None if checkpoint_dir is None else str(checkpoint_dir),
        "checkpoint_every": checkpoint_every,
        "kill_at": kill_at,
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env, timeout=600
    )


ENGINES = [
    pytest.param("lammps", id="lammps"),
    pytest.param("hoomd", id="hoomd", marks=pytest.mark.hoomd),
]


def require_engine(name: str) -> None:
    if name == "hoomd":
        pytest.importorskip("hoomd")
    try:
        engine_class(name)
    except EngineNotAvailable as err:
        pytest.skip(f"{name} engine not installed: {err}")


RUNS = [
    pytest.param((engine.values[0], thermostat), id=f"{engine.id}-{thermostat}", marks=engine.marks)
    for engine in ENGINES
    for thermostat in ("nose_hoover", "bussi")
]


@pytest.fixture(scope="module", params=RUNS)
def runs(request, tmp_path_factory):
    """The four child runs of the module docstring for one (engine, thermostat); their folders."""
    engine, thermostat = request.param
    require_engine(engine)
    root = tmp_path_factory.mktemp(f"{engine}_{thermostat}")
    uninterrupted = run_child(engine, thermostat, root / "uninterrupted", None, None)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    killed = run_child(engine, thermostat, root / "killed", root / "checkpoint", KILL_AT)
    assert killed.returncode == -signal.SIGKILL, f"the run was not killed: {killed.returncode}\n{killed.stderr[-3000:]}"
    no_checkpoints = run_child(engine, thermostat, root / "no_checkpoints", None, None, checkpoint_every=10**6)
    assert no_checkpoints.returncode == 0, no_checkpoints.stderr[-3000:]
    for name in ("resume_a", "resume_b"):
        shutil.copytree(root / "checkpoint", root / f"checkpoint_{name}")
        resumed = run_child(engine, thermostat, root / name, root / f"checkpoint_{name}", None)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    return {"engine": engine, "thermostat": thermostat, "root": root}


def test_the_kill_came_after_a_checkpoint_and_the_resume_used_it(runs):
    """The killed run reported step 400 and died (SIGKILL) with the step-300 checkpoint on disk; the
    resumed runs started from it (first progress report 400, not a restart from 0) and were not killed."""
    root = runs["root"]
    killed_progress = json.loads((root / "killed" / "progress.json").read_text())
    assert killed_progress[-1] >= KILL_AT
    assert not (root / "killed" / "final.npz").exists()
    state, _, _ = read_state(root / "checkpoint" / protocols.CHECKPOINT_FILE)
    assert state.step == CHECKPOINT_EVERY
    assert state.dynamics.thermostat == runs["thermostat"]
    assert state.dynamics.ramped  # 300 lies inside the cooling ramp (steps 200..400, T 2.0 -> 0.8)
    resumed_progress = json.loads((root / "resume_a" / "progress.json").read_text())
    assert resumed_progress[0] == 400 and resumed_progress[-1] == 1000


def test_restored_state_equals_saved_bit_for_bit(runs):
    """(a) and (d): the checkpoint's state, restored into a fresh engine and saved again, is identical in
    every array (float64 positions and velocities, image flags, types), step, dynamics and thermostat
    variables; a Nose-Hoover chain's variables are not zero (they were not reset)."""
    saved, _, _ = read_state(runs["root"] / "checkpoint" / protocols.CHECKPOINT_FILE)
    with engine_class(runs["engine"])(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.restore_state(saved)
        again = engine.save_state()
        assert engine.dynamics == saved.dynamics
    assert saved.differences(again) == []
    assert saved.positions.dtype == np.float64 and saved.velocities.dtype == np.float64
    if runs["thermostat"] == "nose_hoover":
        names = {"lammps": {"eta", "eta_dot"}, "hoomd": {"xi", "eta"}}[runs["engine"]]
        assert set(saved.thermostat) == names
        for value in saved.thermostat.values():
            assert np.all(value != 0.0)
    elif runs["engine"] == "lammps":  # fix temp/csvr's cumulative energy change; its generator is in engine_data
        assert saved.thermostat["energy"][0] != 0.0
    else:  # HOOMD's Bussi noise is a function of (seed, step): the dynamics carry it
        assert saved.thermostat == {} and saved.dynamics.seed > 0


def test_two_resumes_of_one_checkpoint_give_identical_files(runs):
    """(b) The outputs (GSD, Parquet, state file) and the checkpoint written after the resume (step 900)
    of the two resumes are byte-identical."""
    root = runs["root"]
    for name in ("final.gsd", "log.parquet", "final.npz"):
        assert (root / "resume_a" / name).read_bytes() == (root / "resume_b" / name).read_bytes(), name
    checkpoint = protocols.CHECKPOINT_FILE
    a, b = (root / f"checkpoint_resume_{x}" / checkpoint for x in "ab")
    assert read_state(a)[0].step == 900
    assert a.read_bytes() == b.read_bytes()


def test_resumed_run_equals_uninterrupted_run(runs):
    """(c) and (d): the killed-and-resumed run ends in the uninterrupted run's state bit for bit (positions,
    velocities, images, thermostat variables: the thermostat continued across the resume), with the same
    log rows and production frames; its output files are byte-identical."""
    root = runs["root"]
    full, _, full_frames = read_state(root / "uninterrupted" / "final.npz")
    resumed, _, resumed_frames = read_state(root / "resume_a" / "final.npz")
    assert full.differences(resumed) == []
    assert sorted(full_frames) == sorted(resumed_frames)
    for key, value in full_frames.items():
        np.testing.assert_array_equal(resumed_frames[key], value, err_msg=key)
    # Production frames every log interval (20 steps) from 620 to 1000, float64.
    assert full_frames["frame_steps"].tolist() == list(range(620, 1001, 20))
    assert full_frames["frame_positions"].dtype == np.float64
    for name in ("final.gsd", "log.parquet"):
        assert (root / "uninterrupted" / name).read_bytes() == (root / "resume_a" / name).read_bytes(), name
    if runs["thermostat"] == "nose_hoover":
        assert all(np.all(v != 0.0) for v in resumed.thermostat.values())


def test_resumed_run_follows_a_run_without_checkpoints(runs):
    """(d) The uninterrupted run of (c) passes through the same save/restore as the resumed one, so a restore
    that lost state in both would go unnoticed there; this compares with a run that never stopped at a
    checkpoint. The trajectories differ only by the round-off of the checkpoint steps (a new neighbour list
    and particle order), grown chaotically over the 700 steps after the first one: measured 5e-10 to 2e-9
    sigma_AA in the final unwrapped positions. 1e-6 leaves a factor 500 (six Lyapunov e-foldings of
    margin), while a thermostat reset at step 300 moves the particles by ~1e-3 and more."""
    root = runs["root"]
    resumed, _, _ = read_state(root / "resume_a" / "final.npz")
    plain, _, _ = read_state(root / "no_checkpoints" / "final.npz")
    length = resumed.box_length
    shift = (resumed.positions + resumed.images * length) - (plain.positions + plain.images * length)
    assert np.abs(shift).max() < 1e-6


@pytest.mark.filterwarnings("ignore:FIRE did not reach")  # a partial relaxation suffices here
@pytest.mark.parametrize("engine_name", ENGINES)
def test_thermostat_chain_carries_over_between_chunks(engine_name):
    """Within one dynamics, advancing 60 + 40 steps equals advancing 100 steps bit for bit (nothing is rebuilt
    between chunks), while a fresh thermostat after 60 steps (the old per-segment behaviour) does not."""
    require_engine(engine_name)
    n = N_PARTICLES
    start = protocols.random_configuration(n, 160, (n / 1.2) ** (1 / 3), 0.8, np.random.default_rng(1))
    start.velocities = protocols.maxwell_boltzmann_velocities(n, 1.0, np.random.default_rng(2))
    dynamics = Dynamics("nose_hoover", 1.0, 0.8, 0, 100, 0.5, 3)
    cls = engine_class(engine_name)
    finals = []
    for pieces, fresh in (([100], False), ([60, 40], False), ([60, 40], True)):
        with cls(KobAndersen(), dt=0.002, device="cpu") as engine:
            engine.load(start)
            engine.minimize(1.0, 100)
            engine.set_velocities(start.velocities)
            engine.start_dynamics(dynamics)
            for index, piece in enumerate(pieces):
                if fresh and index > 0:
                    engine.start_dynamics(Dynamics("nose_hoover", 1.0, 0.8, 0, 100, 0.5, 3))
                engine.advance(piece)
            finals.append(engine.save_state())
    assert finals[0].differences(finals[1]) == []
    assert finals[0].differences(finals[2]) != []


@pytest.mark.filterwarnings("ignore:FIRE did not reach")
@pytest.mark.parametrize("engine_name", ENGINES)
def test_replica_frames_do_not_perturb_the_nve_run(engine_name):
    """An iso-configurational replica is one continuous NVE run: with frames at 10 and 100 steps, with a
    dense window of 11 more, or with the frame at 100 only, the frame at step 100 is the same bit for bit
    (float64 positions and velocities: no state lost between frames)."""
    require_engine(engine_name)
    n = N_PARTICLES
    start = protocols.random_configuration(n, 160, (n / 1.2) ** (1 / 3), 0.8, np.random.default_rng(5))
    with engine_class(engine_name)(KobAndersen(), dt=0.005, device="cpu") as engine:
        engine.load(start)
        engine.minimize(1.0, 300)
        engine.set_velocities(protocols.maxwell_boltzmann_velocities(n, 1.0, np.random.default_rng(1)))
        engine.run_nvt(200, 1.0, "bussi", 0.5, 3)
        liquid = engine.snapshot()
        runs = [
            protocols.isoconfigurational_replica(engine, liquid, 0.8, np.array([10, 100]), seed=1),
            protocols.isoconfigurational_replica(engine, liquid, 0.8, np.array([10, 100]), 1, np.arange(5, 60, 5)),
            protocols.isoconfigurational_replica(engine, liquid, 0.8, np.array([100]), seed=1),
        ]
    for frames in runs[1:]:
        assert frames[-1].step == 100
        assert frames[-1].positions.dtype == np.float64
        np.testing.assert_array_equal(frames[-1].positions, runs[0][-1].positions)
        np.testing.assert_array_equal(frames[-1].images, runs[0][-1].images)
        np.testing.assert_array_equal(frames[-1].velocities, runs[0][-1].velocities)


def test_state_file_round_trip_and_bad_files(tmp_path):
    """write_state/read_state keep every bit (and give identical bytes for equal states); a truncated,
    corrupted or foreign file raises ValueError naming it."""
    rng = np.random.default_rng(0)
    state = EngineState(
        engine="lammps",
        positions=rng.normal(size=(7, 3)),
        velocities=rng.normal(size=(7, 3)),
        images=rng.integers(-3, 3, size=(7, 3)),
        typeid=rng.integers(0, 2, size=7),
        box_length=np.pi,
        step=123,
        dynamics=Dynamics("nose_hoover", 2.0, 0.8 / 3, 100, 300, 0.5, 17),
        thermostat={"eta": rng.normal(size=3), "eta_dot": rng.normal(size=3)},
        engine_data=bytes(range(256)),
    )
    path = tmp_path / "state.npz"
    write_state(path, state, metadata={"fingerprint": "abc"}, arrays={"phase": np.array(["melt", "cool"])})
    back, metadata, arrays = read_state(path)
    assert state.differences(back) == [] and back.engine_data == state.engine_data
    assert metadata == {"fingerprint": "abc"} and arrays["phase"].tolist() == ["melt", "cool"]
    write_state(tmp_path / "again.npz", back, metadata=metadata, arrays=arrays)
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()
    data = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        read_state(tmp_path / "truncated.npz")
    (tmp_path / "foreign.npz").write_bytes(b"not a state file")
    with pytest.raises(ValueError, match="foreign.npz"):
        read_state(tmp_path / "foreign.npz")
    np.savez(tmp_path / "other.npz", header=np.frombuffer(b'{"format": "x"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a glasspipe engine state"):
        read_state(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_state(tmp_path / "missing.npz")


def test_checkpoint_of_other_settings_is_ignored(tmp_path, caplog):
    """A checkpoint written with other settings is not continued: the run starts afresh (warning logged) and
    equals a run without checkpoints."""
    require_engine("lammps")
    n = N_PARTICLES
    start = protocols.random_configuration(n, 160, (n / 1.2) ** (1 / 3), 0.8, np.random.default_rng(5))
    settings = {**SETTINGS, "thermostat": "nose_hoover", "production_time": 0.5}
    cls = engine_class("lammps")
    with cls(KobAndersen(), dt=0.005) as engine:
        protocols.equilibrate(engine, start, 0.8, {**settings, "thermostat_tau": 1.0}, 9, tmp_path, 300)
        assert (tmp_path / protocols.CHECKPOINT_FILE).exists()
        resumed = protocols.equilibrate(engine, start, 0.8, settings, 9, tmp_path, 300)
        fresh = protocols.equilibrate(engine, start, 0.8, settings, 9, None, 300)
    assert "ignoring checkpoint" in caplog.text
    np.testing.assert_array_equal(resumed.snapshot.positions, fresh.snapshot.positions)
