"""The import stage: one configuration of an imported dataset as the pipeline's files (the module is not
named import, a keyword)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from glasspipe import config as cfg


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
