"""The SLURM profiles, exercised against stand-ins for the SLURM commands.

Stand-in ``sbatch``, ``srun``, ``sacct``, ``squeue``, ``scancel``, ``sinfo``, ``sacctmgr`` and ``scontrol``
go first on PATH. They record their arguments; ``sbatch`` runs the job script (the ``--wrap`` command) at
once, in the foreground, in the ``-D`` directory, and remembers its exit status, which ``sacct`` then
reports as COMPLETED or FAILED in the ``JobIdRaw|State`` format the plugin parses. The workflow runs through
``--profile profiles/slurm`` with snakemake-executor-plugin-slurm as on a cluster, up to the training jobs
of a graph model (GPU) and of a descriptor model (CPU), and the test reads the sbatch options every job was
submitted with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install 'glasspipe[test]' (the SLURM plugin)")

PROFILE = REPO / "profiles" / "slurm"
CONDA_PROFILE = REPO / "profiles" / "slurm-conda"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
ACCOUNT = "glass_lab"

# The tiny test config, cut to three configurations (one each for train, validation and test), with two MD
# threads so that the MD jobs' --cpus-per-task differs from the training jobs'.
CONFIG = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
CONFIG.update(n_configurations=3, split={"train": 1, "validation": 1, "test": 1})
CONFIG["engine"]["threads"] = 2
CONFIG["models"]["ridge"]["threads"] = 2  # the registry's default is 1: --cpus-per-task follows the config

# --- stand-ins -----------------------------------------------------------------------------------------
# Common prologue: the state directory and a lock, for sbatch calls arrive from two submission threads.
_PROLOGUE = f"""#!{sys.executable}
import fcntl, json, os, subprocess, sys
from pathlib import Path
STATE = Path(os.environ["FAKE_SLURM_STATE"])
def record(name, **extra):
    with open(STATE / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(STATE / "calls.jsonl", "a") as out:
            out.write(json.dumps({{"command": name, "argv": sys.argv[1:], **extra}}) + "\\n")
"""

# sbatch: options with a separate value, as the plugin writes them; every other option is --key=value or a flag.
_SBATCH = (
    _PROLOGUE
    + """
WITH_VALUE = {"--job-name", "--output", "--comment", "-A", "-p", "-t", "--mem", "--mem-per-cpu", "-D", "-C",
              "--clusters"}
argv, options, i = sys.argv[1:], {}, 0
while i < len(argv):
    arg = argv[i]
    if arg in WITH_VALUE:
        options[arg] = argv[i + 1]
        i += 2
        continue
    key, _, value = arg.partition("=")
    options[key] = value if _ else True
    i += 1
with open(STATE / "lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    counter = STATE / "next_jobid"
    jobid = int(counter.read_text()) if counter.exists() else 1000
    counter.write_text(str(jobid + 1))
record("sbatch", jobid=jobid, options=options)
env = dict(os.environ, SLURM_JOB_ID=str(jobid), SLURM_JOBID=str(jobid))
env["SLURM_CPUS_PER_TASK"] = options.get("--cpus-per-task", "1")
if "--gpus" in options:
    env["SLURM_GPUS"] = options["--gpus"]
log = Path(options["--output"].replace("%j", str(jobid)))
log.parent.mkdir(parents=True, exist_ok=True)
with open(log, "w") as out:
    rc = subprocess.run(["/bin/sh", "-c", options["--wrap"]], cwd=options.get("-D"), env=env, stdout=out,
                        stderr=subprocess.STDOUT).returncode
with open(STATE / "jobs.txt", "a") as out:
    out.write(f"{jobid}|{options['--job-name']}|{'COMPLETED' if rc == 0 else 'FAILED'}\\n")
print(jobid)
"""
)

# srun (called by the job step inside the allocation): drop its options, run the command.
_SRUN = (
    _PROLOGUE
    + """
record("srun")
argv = sys.argv[1:]
while argv and argv[0].startswith("-"):
    argv.pop(0)
sys.exit(subprocess.run(argv).returncode)
"""
)

# sacct / squeue: one line per job of the run named by --name, "<jobid>|<state>".
_STATUS = (
    _PROLOGUE
    + """
record(Path(sys.argv[0]).name)
argv = sys.argv[1:]
name = argv[argv.index("--name") + 1] if "--name" in argv else None
jobs = (STATE / "jobs.txt").read_text().splitlines() if (STATE / "jobs.txt").exists() else []
for line in jobs:
    jobid, job_name, state = line.split("|")
    if name is None or job_name == name:
        print(f"{jobid}|{state}")
"""
)

_SIMPLE = {
    "scancel": _PROLOGUE + 'record("scancel")\n',
    "sinfo": _PROLOGUE + 'record("sinfo")\nprint("PARTITION\\ncpu*\\ngpu")\n',
    "sacctmgr": _PROLOGUE + f'record("sacctmgr")\nprint("{ACCOUNT}")\n',
    "scontrol": _PROLOGUE + 'record("scontrol")\nprint("MaxArraySize = 1001\\nMinJobAge = 300 sec")\n',
}


def install_stand_ins(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, source in {"sbatch": _SBATCH, "srun": _SRUN, "sacct": _STATUS, "squeue": _STATUS, **_SIMPLE}.items():
        path = bin_dir / name
        path.write_text(source)
        path.chmod(0o755)


def profile_with_account(tmp_path: Path, source: Path) -> Path:
    """A copy of the profile ``source`` with slurm_account set, as a user edits it; the partitions file
    stays the repository's."""
    text = (source / "config.yaml").read_text()
    assert 'slurm_account: "YOUR_ACCOUNT"' in text
    text = text.replace('slurm_account: "YOUR_ACCOUNT"', f'slurm_account: "{ACCOUNT}"')
    text = text.replace(
        "slurm-partition-config: partitions.yaml", f"slurm-partition-config: {PROFILE / 'partitions.yaml'}"
    )
    profile = tmp_path / source.name
    profile.mkdir()
    (profile / "config.yaml").write_text(text)
    return profile


# --- the run ---------------------------------------------------------------------------------------------
TARGETS = ["results/T0.8/models/bapst/fold0/train_log.parquet", "results/T0.8/models/ridge/fold0/train_log.parquet"]


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm")
    state, workdir = tmp / "state", tmp / "work"
    state.mkdir()
    workdir.mkdir()
    install_stand_ins(tmp / "bin")
    configfile = tmp / "config.yaml"
    configfile.write_text(yaml.safe_dump(CONFIG))
    profile = profile_with_account(tmp, PROFILE)
    env = dict(os.environ, PATH=f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_STATE=str(state))
    # Progress lines every 0.05 s (glasspipe.progress), so that the seconds-long tiny jobs write some.
    env["GLASSPIPE_PROGRESS_INTERVAL_S"] = "0.05"
    env.pop("SLURM_JOB_ID", None)
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "--profile",
            str(profile),
            "--directory",
            str(workdir),
            "--configfile",
            str(configfile),
            "--retries",
            "0",
            "--latency-wait",
            "5",
            # The stand-ins finish a job before sbatch returns: poll at once, not after the default 40 s.
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--slurm-keep-successful-logs",
            *TARGETS,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    record = state / "calls.jsonl"
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return result, calls, workdir


def submissions(calls: list[dict], rule: str) -> list[dict]:
    """The sbatch options of every submitted job of ``rule`` (the plugin names the rule in --comment)."""
    return [
        c["options"] for c in calls if c["command"] == "sbatch" and c["options"]["--comment"].startswith(f"rule_{rule}")
    ]


@pytest.mark.slow
def test_workflow_runs_through_the_slurm_profile(slurm_run):
    result, calls, workdir = slurm_run
    assert result.returncode == 0, result.stderr[-4000:]
    for target in TARGETS:
        assert (workdir / target).stat().st_size > 0, target
    # One sbatch per job (init, equilibrate, isoconf, labels, structure for the train and validation
    # configurations, and the two training jobs), each run through srun inside its allocation.
    counts = {
        rule: len(submissions(calls, rule))
        for rule in ("init", "equilibrate", "isoconf", "labels", "structure", "train")
    }
    assert counts == {"init": 2, "equilibrate": 2, "isoconf": 2, "labels": 2, "structure": 2, "train": 2}
    n_sbatch = sum(c["command"] == "sbatch" for c in calls)
    assert n_sbatch == 12 and sum(c["command"] == "srun" for c in calls) == n_sbatch
    # Job status came from sacct, filtered by the run's job name.
    assert any(c["command"] == "sacct" and "--name" in c["argv"] for c in calls)


@pytest.mark.slow
def test_graph_model_training_asks_for_a_gpu_on_the_gpu_partition(slurm_run):
    _, calls, _ = slurm_run
    (bapst,) = [o for o in submissions(calls, "train") if "bapst" in o["--comment"]]
    # registry: bapst gpu=True, threads=2; profile: train runtime 720 min, 16000 MB; partitions.yaml: gpu.
    assert bapst["--gpus"] == "1"
    assert bapst["-p"] == "gpu"
    assert bapst["--cpus-per-task"] == "2"
    assert (bapst["-t"], bapst["--mem"], bapst["-A"]) == ("720", "16000", ACCOUNT)
    srun = [c["argv"] for c in calls if c["command"] == "srun" and any("bapst" in a for a in c["argv"])]
    assert srun and "--gpus=1" in srun[0]


@pytest.mark.slow
def test_cpu_jobs_go_to_the_cpu_partition_without_a_gpu(slurm_run):
    _, calls, _ = slurm_run
    (ridge,) = [o for o in submissions(calls, "train") if "ridge" in o["--comment"]]
    assert "--gpus" not in ridge and ridge["-p"] == "cpu" and ridge["--cpus-per-task"] == "2"  # models.ridge.threads
    for rule in ("init", "equilibrate", "isoconf", "labels", "structure"):
        for options in submissions(calls, rule):
            assert "--gpus" not in options and options["-p"] == "cpu" and options["-A"] == ACCOUNT, (rule, options)


@pytest.mark.slow
def test_md_jobs_get_the_configured_threads_memory_and_time(slurm_run):
    _, calls, _ = slurm_run
    # config engine.threads = 2 -> --cpus-per-task=2; profile: runtime 720 min and 4000 MB for MD,
    # defaults (60 min) and 8000 MB for labels.
    for rule in ("equilibrate", "isoconf"):
        for options in submissions(calls, rule):
            assert (options["--cpus-per-task"], options["-t"], options["--mem"]) == ("2", "720", "4000"), options
    for options in submissions(calls, "labels"):
        assert (options["--cpus-per-task"], options["-t"], options["--mem"]) == ("1", "60", "8000"), options


def job_block(result: subprocess.CompletedProcess, rule: str) -> str:
    """The one job of ``rule`` in a dry run's listing (its input, output, resources lines)."""
    blocks = re.split(r"^(?:local)?rule ", result.stdout + result.stderr, flags=re.M)
    (block,) = [b for b in blocks if b.startswith(f"{rule}:")]
    return block


@pytest.mark.slow
def test_progress_lines_land_in_the_stage_logs(slurm_run):
    """The long stages' progress (glasspipe.progress) reaches results/logs/ through the job's stderr."""
    _, _, workdir = slurm_run
    logs = workdir / "results" / "logs"
    equilibrate = (logs / "equilibrate" / "T0.8_cfg000.log").read_text()
    assert re.search(r"equilibrate T=0\.8: \d+\.\d% \(\d+/\d+ steps\), \S+ steps/s, elapsed \S+, ETA \S+", equilibrate)
    assert re.search(r"equilibrate T=0\.8: done, \d+ steps in", equilibrate)
    # 3 replicas x 400 steps (the last label time, 2 tau at dt = 0.005).
    assert "isoconf T=0.8 configuration 0: done, 1200 steps in" in (logs / "isoconf" / "T0.8_cfg000.log").read_text()
    assert "bapst training: done, 2 epochs in" in (logs / "train" / "T0.8_bapst_fold0.log").read_text()


def test_hoomd_on_a_gpu_sends_md_jobs_to_the_gpu_partition(tmp_path):
    """With engine hoomd on a GPU, equilibrate and isoconf ask for a GPU; with device cpu, they do not.
    Read from a dry run's job resources (no hoomd needed to plan the jobs)."""
    for device, gpu in (("gpu", 1), ("cpu", 0)):
        config = {**CONFIG, "engine": {**CONFIG["engine"], "name": "hoomd", "device": device}}
        configfile = tmp_path / f"{device}.yaml"
        configfile.write_text(yaml.safe_dump(config))
        result = subprocess.run(
            [
                *SNAKEMAKE,
                "-n",
                "results/T0.8/isoconf/cfg000/replica00.gsd",
                "--directory",
                str(tmp_path),
                "--configfile",
                str(configfile),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        for rule in ("equilibrate", "isoconf"):
            assert f"gpu={gpu}" in job_block(result, rule)


def test_bapst_pinned_to_cpu_asks_for_no_gpu(tmp_path):
    config = {**CONFIG, "models": {**CONFIG["models"], "bapst": {**CONFIG["models"]["bapst"], "device": "cpu"}}}
    configfile = tmp_path / "cpu.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*SNAKEMAKE, "-n", TARGETS[0], "--directory", str(tmp_path), "--configfile", str(configfile)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gpu=0" in job_block(result, "train")


# --- the two profiles --------------------------------------------------------------------------------------
def _profile_settings(profile: Path) -> dict:
    return yaml.safe_load((profile / "config.yaml").read_text())


def test_conda_profile_is_the_pip_profile_plus_conda():
    pip, conda = _profile_settings(PROFILE), _profile_settings(CONDA_PROFILE)
    assert "software-deployment-method" not in pip and "use-conda" not in pip
    assert conda.pop("software-deployment-method") == "conda"
    assert (CONDA_PROFILE / conda.pop("slurm-partition-config")).resolve() == (
        PROFILE / pip.pop("slurm-partition-config")
    ).resolve()
    assert conda == pip


def _no_slurm_no_conda_path(tmp_path: Path) -> str:
    """PATH with the venv's python/snakemake but neither SLURM commands nor conda (a login node of a pip
    cluster before anything is submitted)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3", "snakemake", "glasspipe"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    return f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"


def test_pip_profile_dry_run_needs_no_conda(tmp_path):
    env = dict(os.environ, PATH=_no_slurm_no_conda_path(tmp_path))
    assert shutil.which("conda", path=env["PATH"]) is None
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(CONFIG))
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--profile", str(PROFILE), "--directory", str(tmp_path), "--configfile", str(configfile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "conda" not in (result.stdout + result.stderr).lower()


def test_conda_profile_dry_run(tmp_path):
    """The conda profile plans the same jobs where conda is installed; without conda Snakemake stops at once
    (it checks conda's version even for -n), which is why the pip profile exists."""
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(CONFIG))
    command = [
        *SNAKEMAKE,
        "-n",
        "--profile",
        str(CONDA_PROFILE),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(configfile),
    ]
    if shutil.which("conda") is None:
        env = dict(os.environ, PATH=_no_slurm_no_conda_path(tmp_path))
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and "conda" in result.stderr.lower(), result.stderr[-3000:]
        pytest.skip("conda is not installed here: checked only that the conda profile asks for it")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
