"""One function per pipeline stage: read the stage's inputs, call the library, write its outputs.

Each function takes the stage's part of the config (see glasspipe.config.STAGE_SECTIONS), the item it
works on (temperature, configuration, model) and explicit paths, so that it runs the same from the CLI,
from a Snakemake rule or from a test. Every output is written atomically and carries metadata: the
settings it was made with, the potential, the seeds and the software versions.
"""

from __future__ import annotations

import logging
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe import __version__
from glasspipe import config as cfg
from glasspipe.io.atomic import write_json
from glasspipe.io.gsd_io import read_snapshot, write_gsd
from glasspipe.io.tables import write_table
from glasspipe.seeds import derive_seed

log = logging.getLogger(__name__)


def _metadata(stage: str, settings: dict, **extra) -> dict:
    meta = {"stage": stage, "glasspipe_version": __version__, "settings": settings, **extra}
    if "system" in settings:
        from glasspipe.potential import from_config

        meta["potential"] = from_config(settings).metadata()
    return meta


# --- simulation -----------------------------------------------------------------------------------
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
    meta = _metadata("init", settings, temperature=temperature, configuration=configuration, seed=seed)
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
    meta = _metadata("equilibrate", settings, temperature=temperature, configuration=configuration, seed=seed)
    if inherent is not None:
        summary["inherent_potential_energy"] = inherent_energy
        write_gsd(inherent_output, [inherent], metadata={**meta, "inherent_potential_energy": inherent_energy})
    write_table(result.log, thermo_output, metadata=meta)
    write_json(checks_output, summary)
    write_gsd(output, [result.snapshot], metadata={**meta, "checks": summary})
    if checkpoint_dir is not None:
        _remove_tree(Path(checkpoint_dir))
    return summary


def isoconf(
    settings: dict,
    temperature: float,
    configuration: int,
    equilibrated: Path,
    outputs: list[Path],
    checkpoint_dir: Path | None = None,
) -> None:
    """Run the iso-configurational replicas of one configuration: one GSD per replica.

    Replica r starts from the equilibrated positions with Maxwell-Boltzmann velocities seeded by
    (seed, T, configuration, r) and runs NVE; frames at t = 0 and at each label time. Finished replicas
    are kept in ``checkpoint_dir`` so a killed job resumes with the next replica.
    """
    from glasspipe.md.engine import make_engine
    from glasspipe.md.protocols import isoconfigurational_replica, temperature_key
    from glasspipe.progress import Progress

    config = cfg.fill_defaults(settings)
    n_replicas = config["isoconf"]["n_replicas"]
    if len(outputs) != n_replicas:
        raise ValueError(f"{len(outputs)} output paths given for 'isoconf.n_replicas' = {n_replicas}")
    steps = cfg.label_steps(config, temperature)
    dense = cfg.dense_steps(config, temperature)
    initial = read_snapshot(equilibrated)
    scratch = Path(checkpoint_dir) if checkpoint_dir is not None else None
    replica_steps = int(max(steps.max(initial=0), dense.max(initial=0)))  # every replica runs to its last frame
    meter = Progress(f"isoconf T={temperature:g} configuration {configuration}", n_replicas * replica_steps)
    with make_engine(config) as engine:
        for replica, output in enumerate(outputs):
            seed = derive_seed(
                config["seed"], "replica_velocities", temperature_key(temperature), configuration, replica
            )
            meta = _metadata(
                "isoconf",
                settings,
                temperature=temperature,
                configuration=configuration,
                replica=replica,
                seed=seed,
                label_steps=steps.tolist(),
                dense_steps=dense.tolist(),
                dt=config["engine"]["dt"],
            )
            done = scratch / Path(output).name if scratch is not None else None
            if done is not None and done.exists():
                from glasspipe.io.gsd_io import read_metadata

                if read_metadata(done) == _jsonable(meta):
                    log.info("replica %d of configuration %d already done; reusing it", replica, configuration)
                    meter.update((replica + 1) * replica_steps, resumed=True)
                    continue
            offset = replica * replica_steps  # steps of the earlier replicas, for the progress report
            frames = isoconfigurational_replica(
                engine, initial, temperature, steps, seed, dense, lambda s, o=offset: meter.update(o + s)
            )
            write_gsd(done if done is not None else output, frames, metadata=meta)
    if scratch is not None:
        for output in outputs:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            (scratch / Path(output).name).replace(output)
        _remove_tree(scratch)


def _jsonable(data: dict) -> dict:
    """``data`` as it reads back from JSON (numpy values as plain numbers and lists)."""
    import json

    from glasspipe.io.atomic import json_default

    return json.loads(json.dumps(data, sort_keys=True, default=json_default))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# --- imported datasets ----------------------------------------------------------------------------
def import_configuration(settings: dict, path: Path, temperature: float, configuration: int, layout) -> None:
    """Convert the dataset file ``path`` (configuration ``configuration``) into the pipeline's files.

    Writes what the simulation stages would have: the configuration (GSD, equilibrate/), its inherent
    structure (the dataset's own, or FIRE to |F| < 1e-6 with the configured engine when the dataset has
    none) and the labels (Parquet at the dataset's times, with its provenance: file, checksum, license).
    The file is validated in full (keys, shapes, types, box, temperature, N) before any work.
    """
    from glasspipe import importers

    config = cfg.fill_defaults(settings)
    source = config["source"]
    options = {k: source[k] for k in ("box_length", "times") if source.get(k) is not None}
    imported = importers.load(source["format"], path, **options)
    if not np.isclose(imported.temperature, temperature, rtol=1e-6):
        raise ValueError(
            f"{path} holds a configuration at T = {imported.temperature:g}, but config key 'temperatures' "
            f"says {temperature:g}"
        )
    n = imported.snapshot.n_particles
    if n != config["system"]["n_particles"]:
        raise ValueError(
            f"{path} holds {n} particles but config key 'system.n_particles' is {config['system']['n_particles']}; "
            "set it to the dataset's N (the box, descriptors and graph checks use it)"
        )
    if imported.inherent is None:
        from glasspipe.md.engine import make_engine

        started = time.perf_counter()
        with make_engine(config) as engine:
            engine.load(imported.snapshot)
            engine.minimize(force_tolerance=1e-6, max_steps=100_000)
            imported.inherent = engine.snapshot()
            imported.inherent.velocities = None
            energy = engine.thermo().potential_energy
        imported.provenance["inherent_structure"] = {
            "method": f"FIRE, |F| < 1e-6, engine {config['engine']['name']}",
            "potential_energy_per_particle": energy,
            "wall_s": time.perf_counter() - started,
        }
    importers.write_imported(
        imported,
        layout.equilibrated(temperature, configuration),
        layout.labels(temperature, configuration),
        layout.inherent(temperature, configuration),
        metadata={"configuration": configuration, "settings": settings},
    )


# --- analysis -------------------------------------------------------------------------------------
def labels(
    settings: dict,
    temperature: float,
    configuration: int,
    equilibrated: Path,
    replicas: list[Path],
    output: Path,
    dense_output: Path | None = None,
    ceilings_output: Path | None = None,
) -> None:
    """Every enabled dynamical label of one configuration (glasspipe.labels.stage; Parquet, long format).

    ``output``: propensity (the columns the models read) and the label-time labels; ``dense_output``: the
    dense-window labels (p_hop, CWT), written when some are enabled; ``ceilings_output``: the noise ceiling
    of every label column and time. The labels table's metadata also carries the self intermediate
    scattering function F_s(q = 7.25, t) of the A particles averaged over replicas, from which the report
    reads tau_alpha, and the noise ceiling of the A propensity per label time (``noise_ceiling``, as before).
    """
    from glasspipe.dynamics.relaxation import Q_PEAK_KA, self_isf
    from glasspipe.labels.propensity import noise_ceiling_from_distances
    from glasspipe.labels.stage import compute_labels_from_files

    config = cfg.fill_defaults(settings)
    result = compute_labels_from_files(config, equilibrated, replicas, cfg.tau_alpha_estimate(config, temperature))
    table = result.table
    times = result.label_times
    positions = result.label_positions  # (replicas, times, N, 3), unwrapped from the common origin
    is_a = result.typeid == 0
    ceiling = noise_ceiling_from_distances(times, np.linalg.norm(positions - result.origin, axis=-1), is_a)
    fs = [float(self_isf(result.origin, positions[:, k], Q_PEAK_KA, mask=is_a).mean()) for k in range(len(times))]
    common = dict(temperature=temperature, configuration=configuration, equilibrated=str(equilibrated))
    meta = _metadata(
        "labels",
        settings,
        **common,
        n_replicas=len(replicas),
        self_isf={"q": Q_PEAK_KA, "times": times.tolist(), "fs_A": fs},
        noise_ceiling=ceiling.to_dict(orient="list"),
        noise_ceilings=_label_ceilings(result.ceilings),
        label_info=result.info,
    )
    write_table(table, output, metadata=meta)
    if dense_output is not None and result.dense is not None:
        write_table(
            result.dense, dense_output, metadata=_metadata("labels", settings, **common, label_info=result.info)
        )
    if ceilings_output is not None:
        write_table(result.ceilings, ceilings_output, metadata=_metadata("labels", settings, **common))


def _label_ceilings(ceilings: pd.DataFrame) -> dict:
    """{label column: {time, half_half_pearson, reliability, ceiling}} of the label-time columns (the report
    reads the ceiling of the label a model learnt from here)."""
    label_grid = ceilings[ceilings["grid"] == "label"]
    columns = ["time", "half_half_pearson", "reliability", "ceiling"]
    return {name: group[columns].to_dict(orient="list") for name, group in label_grid.groupby("label", sort=False)}


def structure(settings: dict, configuration: Path, output: Path, inherent: Path | None = None) -> None:
    """Per-particle descriptors (the sets of 'structure.sets', joined) of one configuration (Parquet).

    ``configuration`` is the equilibrated configuration or its inherent structure ('structure.input'); with
    'structure.input: both' it is the equilibrated one and ``inherent`` its inherent structure
    (glasspipe.structure.descriptors.compute_paired_descriptors).
    """
    from glasspipe.structure.descriptors import compute_descriptors, compute_paired_descriptors

    section = cfg.fill_defaults(settings)["structure"]
    started = time.perf_counter()
    if inherent is not None:
        table = compute_paired_descriptors(read_snapshot(configuration), read_snapshot(inherent), section["sets"])
    else:
        table = compute_descriptors(read_snapshot(configuration), section["sets"])
    meta = _metadata("structure", settings, configuration=str(configuration), wall_s=time.perf_counter() - started)
    write_table(table, output, metadata=meta)


# --- learning -------------------------------------------------------------------------------------
# What a model reads, and how its samples are loaded, is the learning code's (glasspipe.learn.inputs): the
# transfer and learning-curve jobs load theirs the same way. Re-exported here for the stage's callers.
from glasspipe.learn.inputs import INPUT_FILE, load_samples, model_input  # noqa: E402, F401


def train(settings: dict, model: str, temperature: float, fold: int, layout) -> None:
    """Train ``model`` on fold ``fold`` of the split plan (glasspipe.config.split_plan): fit on its train
    configurations, choose on its validation configurations; the test configurations are not read.

    Writes the model directory ``layout.model_dir(temperature, model, fold)``: input.json (what the model
    reads), the model's own files and, last, train_log.parquet.
    """
    from glasspipe.learn.registry import get
    from glasspipe.md.protocols import temperature_key

    config = cfg.fill_defaults(settings)
    plan = cfg.split_plan(config)
    if not 0 <= fold < len(plan):
        raise ValueError(f"fold {fold} does not exist: the split plan has {len(plan)} fold(s)")
    spec = get(cfg.run_model(model))
    inputs = model_input(config, model)
    data = {split: load_samples(layout, temperature, plan[fold][split], inputs) for split in ("train", "validation")}
    out_dir = layout.model_dir(temperature, model, fold)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / INPUT_FILE, {**inputs, "fold": fold, **{k: v for k, v in plan[fold].items()}})
    # The model's name enters the seed through a stable hash: models never share a random stream.
    seed = derive_seed(config["seed"], "train", zlib.crc32(model.encode()), temperature_key(temperature), fold)
    spec.train(data["train"], data["validation"], config, seed, out_dir)


def evaluate(settings: dict, model: str, temperature: float, layout) -> pd.DataFrame:
    """Predict every fold's test configurations with that fold's model; write the predictions (with a
    ``fold`` column) and the Pearson correlations (Parquet) of ``model`` at ``temperature``."""
    import json

    from glasspipe.learn.evaluate import correlations, held_out_times, mark_held_out
    from glasspipe.learn.predict import predict

    config = cfg.fill_defaults(settings)
    plan = cfg.split_plan(config)
    tables = []
    for fold, split in enumerate(plan):
        model_dir = layout.model_dir(temperature, model, fold)
        inputs = json.loads((model_dir / INPUT_FILE).read_text())
        samples = load_samples(layout, temperature, split["test"], inputs)
        table = predict(cfg.run_model(model), model_dir, samples)
        table.insert(0, "fold", fold)
        tables.append(table)
    predictions = pd.concat(tables, ignore_index=True)
    # The model column names the model (ridge), the label column what it learnt: a run 'ridge.bond_breaking'
    # is the row (ridge, bond_breaking) of the report's tables.
    metrics = correlations(predictions, cfg.run_model(model))
    metrics.insert(1, "temperature", float(temperature))
    # Label times a fold's model was trained without (a time-conditioned decoder's held_out_times).
    held = {t for fold in range(len(plan)) for t in held_out_times(layout.model_dir(temperature, model, fold))}
    metrics = mark_held_out(metrics, sorted(held))
    metrics["label"] = inputs.get("target", "propensity")  # the label the model learnt (the last fold's: all agree)
    meta = _metadata("evaluate", settings, model=model, folds=plan)
    write_table(predictions, layout.predictions(temperature, model), metadata=meta)
    write_table(metrics, layout.metrics(temperature, model), metadata=meta)
    return metrics
