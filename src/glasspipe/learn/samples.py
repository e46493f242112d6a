"""Samples: one equilibrated configuration with its labels and descriptors, as the models read it.

A :class:`Sample` joins three files written by earlier stages:

- the equilibrated configuration (GSD, read with :func:`glasspipe.io.gsd_io.read_snapshot`);
- the labels (Parquet, LONG format: one row per particle and time, columns ``particle``, ``type``,
  ``time``, ``propensity``);
- optionally the descriptors (Parquet, one row per particle: ``particle``, ``type``, then float columns,
  all of which are features, in file order).

Particle ``i`` is the i-th particle of the GSD frame; label and descriptor rows may come in any order and
are matched by their ``particle`` column. Any disagreement (count, ids, types, a missing time) stops with a
message naming the file.

The graphs built from samples: glasspipe.learn.graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import read_snapshot
from glasspipe.io.tables import read_table

LABEL_COLUMNS = ("particle", "type", "time")
ID_COLUMNS = ("particle", "type")


@dataclass
class Sample:
    """One configuration with its per-particle targets (and descriptors).

    configuration: index of the configuration (used to name rows of predictions)
    typeid: (N,) int, 0 = A, 1 = B (index into ``type_names``)
    positions: (N, 3) float64, wrapped into the box (sigma_AA)
    box_length: edge of the cubic periodic box (sigma_AA)
    times: (T,) float64, label times (tau), ascending
    targets: (N, T) float64, propensity of particle i at times[t]
    descriptors: (N, F) float64 or None
    descriptor_names: the F feature names (file order), empty without descriptors
    temperature: the bath temperature of the configuration (epsilon_AA / k_B), None when not known; models
        conditioned on temperature (se3's ``film_temperature``) read it
    node_vectors: (N, 3) float64 or None: a vector input per particle, the displacement from its thermal
        position to its inherent one (sigma_AA, minimum image) when ``graph.input`` is 'both'
        (:func:`with_inherent_displacement`); se3 reads it as an l = 1 node input
    """

    configuration: int
    typeid: np.ndarray
    positions: np.ndarray
    box_length: float
    times: np.ndarray
    targets: np.ndarray
    descriptors: np.ndarray | None = None
    descriptor_names: list[str] = field(default_factory=list)
    type_names: tuple[str, ...] = ("A", "B")
    temperature: float | None = None
    node_vectors: np.ndarray | None = None

    def __post_init__(self):
        self.typeid = np.asarray(self.typeid, dtype=np.int64)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.times = np.asarray(self.times, dtype=np.float64)
        self.targets = np.asarray(self.targets, dtype=np.float64)
        if self.descriptors is not None:
            self.descriptors = np.asarray(self.descriptors, dtype=np.float64)
        self.descriptor_names = list(self.descriptor_names)
        n = len(self.typeid)
        if self.positions.shape != (n, 3):
            raise ValueError(
                f"sample {self.configuration}: positions have shape {self.positions.shape}, expected ({n}, 3)"
            )
        if self.targets.shape != (n, len(self.times)):
            raise ValueError(
                f"sample {self.configuration}: targets have shape {self.targets.shape}, "
                f"expected ({n}, {len(self.times)})"
            )
        if self.descriptors is not None and self.descriptors.shape != (n, len(self.descriptor_names)):
            raise ValueError(
                f"sample {self.configuration}: descriptors have shape {self.descriptors.shape}, expected "
                f"({n}, {len(self.descriptor_names)})"
            )

    @property
    def n_particles(self) -> int:
        return len(self.typeid)

    @property
    def type_labels(self) -> np.ndarray:
        """(N,) array of type names ('A', 'B')."""
        return np.asarray(self.type_names, dtype=object)[self.typeid]


def _check_ids(df: pd.DataFrame, path: Path, n_particles: int, what: str) -> None:
    ids = df["particle"].to_numpy()
    unique = np.unique(ids)
    span = f"from {unique.min()} to {unique.max()}" if len(unique) else "none"
    if len(unique) != n_particles or unique[0] != 0 or unique[-1] != n_particles - 1:
        raise ValueError(
            f"{what} file {path} holds {len(unique)} distinct particle ids ({span}) but the "
            f"configuration has {n_particles} particles with ids 0..{n_particles - 1}; it belongs to another "
            "configuration or is incomplete: delete it and rerun its stage"
        )


def _check_types(types_by_particle: np.ndarray, expected: np.ndarray, path: Path, what: str) -> None:
    bad = np.flatnonzero(types_by_particle.astype(str) != expected.astype(str))
    if len(bad):
        i = bad[0]
        raise ValueError(
            f"{what} file {path}: particle {i} has type {types_by_particle[i]!r} but the configuration says "
            f"{expected[i]!r} ({len(bad)} particles disagree); the file belongs to another configuration"
        )


def _read_labels(path: Path, n_particles: int, type_labels: np.ndarray, target: str):
    labels = read_table(path)
    missing = [c for c in (*LABEL_COLUMNS, target) if c not in labels.columns]
    if missing:
        raise ValueError(
            f"labels file {path} lacks column(s) {missing}; expected LONG format with columns "
            f"{[*LABEL_COLUMNS, target]}"
        )
    _check_ids(labels, path, n_particles, "labels")
    duplicated = labels.duplicated(["particle", "time"])
    if duplicated.any():
        row = labels[duplicated].iloc[0]
        raise ValueError(
            f"labels file {path} holds more than one row for particle {row['particle']} at time {row['time']}"
        )
    table = labels.pivot(index="particle", columns="time", values=target).sort_index().sort_index(axis=1)
    if table.isna().to_numpy().any():
        n_missing = int(table.isna().to_numpy().sum())
        raise ValueError(
            f"labels file {path} is incomplete: {n_missing} (particle, time) pairs have no {target!r} value"
        )
    types = labels.drop_duplicates("particle").set_index("particle")["type"].sort_index().to_numpy()
    _check_types(types, type_labels, path, "labels")
    times = table.columns.to_numpy(dtype=np.float64)
    return times, table.to_numpy(dtype=np.float64)


def _read_descriptors(path: Path, n_particles: int, type_labels: np.ndarray):
    table = read_table(path)
    missing = [c for c in ID_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"descriptors file {path} lacks column(s) {missing}")
    _check_ids(table, path, n_particles, "descriptors")
    if len(table) != n_particles:
        raise ValueError(f"descriptors file {path} has {len(table)} rows for {n_particles} particles (duplicates)")
    table = table.sort_values("particle", kind="stable")
    _check_types(table["type"].to_numpy(), type_labels, path, "descriptors")
    names = [str(c) for c in table.columns if c not in ID_COLUMNS]
    if not names:
        raise ValueError(f"descriptors file {path} has no descriptor columns besides {list(ID_COLUMNS)}")
    try:
        values = table[[c for c in table.columns if c not in ID_COLUMNS]].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"descriptors file {path} has non-numeric descriptor columns ({err})") from err
    bad = ~np.isfinite(values)
    if bad.any():
        column = names[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise ValueError(f"descriptors file {path}: column {column!r} holds {int(bad.sum())} non-finite values")
    return names, values


def load_sample(
    configuration: int,
    snapshot_path: str | Path,
    labels_path: str | Path,
    descriptors_path: str | Path | None = None,
    target: str = "propensity",
    temperature: float | None = None,
) -> Sample:
    """Read one configuration, its labels (column ``target``) and optionally its descriptors.

    Raises ValueError naming the file when particle counts, ids or types disagree with the GSD frame.
    """
    snapshot_path, labels_path = Path(snapshot_path), Path(labels_path)
    snapshot = read_snapshot(snapshot_path)
    type_names = tuple(snapshot.type_names)
    if snapshot.typeid.size and snapshot.typeid.max() >= len(type_names):
        raise ValueError(f"GSD file {snapshot_path} has type ids beyond its type names {type_names}")
    type_labels = np.asarray(type_names, dtype=object)[snapshot.typeid]
    n = snapshot.n_particles
    times, targets = _read_labels(labels_path, n, type_labels, target)
    descriptors, names = None, []
    if descriptors_path is not None:
        names, descriptors = _read_descriptors(Path(descriptors_path), n, type_labels)
    return Sample(
        configuration=int(configuration),
        typeid=snapshot.typeid,
        positions=snapshot.positions,
        box_length=snapshot.box_length,
        times=times,
        targets=targets,
        descriptors=descriptors,
        descriptor_names=names,
        type_names=type_names,
        temperature=None if temperature is None else float(temperature),
    )


def with_inherent_displacement(sample: Sample, inherent_path: str | Path) -> Sample:
    """``sample`` with ``node_vectors`` = r_inherent - r_thermal per particle (minimum image, sigma_AA), read
    from the inherent structure of its configuration. Raises ValueError naming the file when the particles
    or the box differ."""
    from glasspipe.structure.descriptors import displacement_to_inherent

    inherent = read_snapshot(Path(inherent_path))
    name = f"inherent structure {inherent_path} (configuration {sample.configuration})"
    sample.node_vectors = displacement_to_inherent(sample.positions, sample.typeid, sample.box_length, inherent, name)
    return sample


def check_consistent(samples: list[Sample], need_descriptors: bool = False) -> None:
    """All samples share label times (and descriptor names); raise ValueError naming the first mismatch."""
    if not samples:
        raise ValueError("no samples given")
    first = samples[0]
    for sample in samples[1:]:
        if len(sample.times) != len(first.times) or not np.allclose(sample.times, first.times, rtol=1e-9):
            raise ValueError(
                f"configuration {sample.configuration} has label times {sample.times.tolist()} but "
                f"configuration {first.configuration} has {first.times.tolist()}"
            )
    if need_descriptors:
        for sample in samples:
            if sample.descriptors is None:
                raise ValueError(
                    f"configuration {sample.configuration} has no descriptors (descriptors_path not given)"
                )
            if sample.descriptor_names != first.descriptor_names:
                raise ValueError(
                    f"configuration {sample.configuration} has descriptor columns that differ from those of "
                    f"configuration {first.configuration}"
                )
