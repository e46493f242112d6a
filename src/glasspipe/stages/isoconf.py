"""The isoconf stage: the iso-configurational replicas of one configuration."""

from __future__ import annotations

import logging
from pathlib import Path

from glasspipe import config as cfg
from glasspipe.io.gsd_io import read_snapshot, write_gsd
from glasspipe.seeds import derive_seed
from glasspipe.stages.common import jsonable, metadata, remove_tree

log = logging.getLogger(__name__)


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
            meta = metadata(
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

                if read_metadata(done) == jsonable(meta):
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
        remove_tree(scratch)
