"""The simulation stages init (a seeded random configuration) and equilibrate (melt, cool, equilibrate, check)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from glasspipe import config as cfg
from glasspipe.io.atomic import write_json
from glasspipe.io.gsd_io import read_snapshot, write_gsd
from glasspipe.io.tables import write_table
from glasspipe.seeds import derive_seed
from glasspipe.stages.common import metadata, remove_tree

log = logging.getLogger(__name__)


def init(settings: dict, temperature: float, configuration: int, output: Path) -> None:
    """Write a seeded random configuration without overlaps (GSD)."""
    from glasspipe.md.protocols import random_configuration, temperature_key

    config = cfg.fill_defaults(settings)
    seed = derive_seed(config["seed"], "init", temperature_key(temperature), configuration)
    snapshot = random_configuration(
        n_particles=config["system"]["n_particles"],
        n_type_a=cfg.n_type_a(config),
        box_length=cfg.box_length(config),
        min_distance=config["init"]["min_distance"],
        rng=np.random.default_rng(seed),
    )
    snapshot.dt = 0.0
    meta = metadata("init", settings, temperature=temperature, configuration=configuration, seed=seed)
    write_gsd(output, [snapshot], metadata=meta)


def equilibrate(
    settings: dict,
    temperature: float,
    configuration: int,
    initial: Path,
    output: Path,
    thermo_output: Path,
    checks_output: Path,
    inherent_output: Path | None = None,
    checkpoint_dir: Path | None = None,
) -> dict:
    """Melt, cool and equilibrate the initial configuration at ``temperature``; run the checks.

    Writes the final configuration (GSD, time origin 0), its inherent structure (GSD: FIRE minimisation
    to |F| < 1e-6, the global force-vector norm), the thermodynamic log (Parquet) and the checks (JSON).
    Returns the checks. A failed check is reported loudly (log warning, 'passed': false in the JSON and
    the report) but does not stop the pipeline. checkpoint_dir: where the run keeps its checkpoint (the
    full engine state, see glasspipe.md.protocols.equilibrate); a killed job rerun with the same settings
    continues from it exactly, and it is removed once the outputs are written.
    """
    from glasspipe.md import checks
    from glasspipe.md.ageing import ageing_check
    from glasspipe.md.engine import make_engine
    from glasspipe.md.protocols import equilibrate as run_equilibration
    from glasspipe.md.protocols import temperature_key

    config = cfg.fill_defaults(settings)
    seed = derive_seed(config["seed"], "equilibrate", temperature_key(temperature), configuration)
    initial_snapshot = read_snapshot(initial)
    if initial_snapshot.n_particles != config["system"]["n_particles"]:
        raise ValueError(
            f"{initial} holds {initial_snapshot.n_particles} particles but config key 'system.n_particles' "
            f"is {config['system']['n_particles']}; rerun the init stage"
        )
    wall = time.perf_counter()
    with make_engine(config) as engine:
        result = run_equilibration(
            engine,
            initial_snapshot,
            temperature,
            config["equilibrate"],
            seed,
            checkpoint_dir=checkpoint_dir,
            time_scale=cfg.time_scale(config, "equilibrate", temperature),
        )
        wall = time.perf_counter() - wall
        inherent = None
        if inherent_output is not None:
            engine.load(result.snapshot)
            engine.minimize(force_tolerance=1e-6, max_steps=100_000)
            inherent = engine.snapshot()
            inherent_energy = engine.thermo().potential_energy
    production = result.log[result.log["phase"] == "production"]
    report = {
        "stationarity": checks.stationarity(production),
        "temperature": checks.temperature_check(production, temperature),
        "crystal": checks.crystal_check(result.snapshot),
        "ageing": ageing_check(result.production_frames),
    }
    for name, check in report.items():
        if not check["passed"]:
            log.warning("equilibration check '%s' FAILED for %s: %s", name, initial, check["message"])
    n_steps = int(round(result.log["step"].max())) if len(result.log) else 0
    summary = {
        "temperature": temperature,
        "configuration": configuration,
        "engine": config["engine"]["name"],
        "all_passed": all(c["passed"] for c in report.values()),
        "potential_energy_mean": float(production["potential_energy"].mean()),
        "pressure_mean": float(production["pressure"].mean()),
        "kinetic_temperature_mean": float(production["kinetic_temperature"].mean()),
        "tau_alpha_production": report["ageing"]["tau_alpha"],
        "wall_s": wall,
        "particle_steps_per_s": n_steps * initial_snapshot.n_particles / wall if wall > 0 else None,
        "checks": report,
    }
    meta = metadata("equilibrate", settings, temperature=temperature, configuration=configuration, seed=seed)
    if inherent is not None:
        summary["inherent_potential_energy"] = inherent_energy
        write_gsd(inherent_output, [inherent], metadata={**meta, "inherent_potential_energy": inherent_energy})
    write_table(result.log, thermo_output, metadata=meta)
    write_json(checks_output, summary)
    write_gsd(output, [result.snapshot], metadata={**meta, "checks": summary})
    if checkpoint_dir is not None:
        remove_tree(Path(checkpoint_dir))
    return summary
