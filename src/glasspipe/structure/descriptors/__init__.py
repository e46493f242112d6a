"""Per-particle structural descriptor sets, registered by name.

Each set is a :class:`DescriptorSet` in its own module that registers itself with :func:`register`:

- ``radial``: Landes et al. type-resolved radial distribution descriptors, optionally Gaussian-smoothed
  (:mod:`.radial`);
- ``boattini``: Boattini et al. Gaussian radial shell densities and shell-weighted bond-order parameters q_l,
  with their exp(-r/L) coarse-grained averages (:mod:`.boattini`);
- ``glassmlp``: the physics-inspired descriptors of GlassMLP (Jung, Biroli, Berthier): coarse-grained density,
  potential energy, Voronoi volume and surface, and energy variance, per neighbour type (:mod:`.glassmlp`);
- ``mechanics``: the force on each particle and the eigenvalues of its Hessian block, the ballistic physics
  of short times (:mod:`.mechanics`).

``compute(snapshot, settings)`` returns one row per particle in particle order: ``particle`` (int), ``type``
(type name), then float columns named ``'<set>:<feature>'``. ``settings`` may omit keys: the set's ``defaults``
fill them in (unknown keys are an error). :func:`compute_descriptors` joins several sets column-wise.

Usage::

    from glasspipe.structure.descriptors import compute_descriptors
    table = compute_descriptors(snapshot, {"radial": {}, "glassmlp": {"lengths": [1.0, 2.0]}})
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from glasspipe.io.gsd_io import Snapshot
from glasspipe.plugins import DESCRIPTOR_SETS  # the registry, on the ground floor where glasspipe.config reads it


class DescriptorSet:
    """Base class of a descriptor set: a name, default settings, their JSON schema and ``compute``."""

    name: str = "abstract"
    defaults: dict = {}
    schema: dict = {}

    def settings(self, settings: dict | None) -> dict:
        """``settings`` completed with the defaults; unknown keys raise ValueError."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown setting(s) {unknown} for descriptor set {self.name!r}; allowed: {sorted(self.defaults)}"
            )
        full = copy.deepcopy(self.defaults)
        full.update(settings)
        return full

    def compute(self, snapshot: Snapshot, settings: dict) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def frame(snapshot: Snapshot, columns: dict) -> pd.DataFrame:
        """The output table: ``particle``, ``type``, then ``columns`` (name -> (N,) float array) in order."""
        names = np.asarray(list(snapshot.type_names), dtype=object)
        table = pd.DataFrame(
            {"particle": np.arange(snapshot.n_particles, dtype=np.int64), "type": names[snapshot.typeid]}
        )
        features = pd.DataFrame({k: v.astype("float64", copy=False) for k, v in columns.items()})
        return pd.concat([table, features], axis=1)


def register(cls):
    """Class decorator: instantiate a :class:`DescriptorSet` subclass and register it under its name."""
    instance = cls()
    if instance.name in DESCRIPTOR_SETS:
        raise ValueError(f"descriptor set {instance.name!r} is registered twice")
    missing = sorted(set(instance.defaults) ^ set(instance.schema.get("properties", {})))
    if missing:
        raise ValueError(f"descriptor set {instance.name!r}: defaults and schema disagree on {missing}")
    DESCRIPTOR_SETS[instance.name] = instance
    return cls


def compute_descriptors(snapshot: Snapshot, sets: dict[str, dict]) -> pd.DataFrame:
    """The chosen sets (name -> settings) computed on ``snapshot`` and joined column-wise (particle, type once)."""
    if not sets:
        raise ValueError("no descriptor set chosen")
    unknown = sorted(set(sets) - set(DESCRIPTOR_SETS))
    if unknown:
        raise ValueError(f"unknown descriptor set(s) {unknown}; registered: {sorted(DESCRIPTOR_SETS)}")
    tables = []
    for name, settings in sets.items():
        item = DESCRIPTOR_SETS[name]
        table = item.compute(snapshot, item.settings(settings))
        tables.append(table if not tables else table.drop(columns=["particle", "type"]))
    return pd.concat(tables, axis=1)


THERMAL_PREFIX = "thermal/"


def displacement_to_inherent(
    positions: np.ndarray,
    typeid: np.ndarray,
    box_length: float,
    inherent: Snapshot,
    name: str = "the inherent structure",
) -> np.ndarray:
    """(N, 3) r_inherent - r_thermal per particle (minimum image, sigma_AA) for thermal ``positions`` (with their
    ``typeid`` and ``box_length``) and their ``inherent`` structure, the FIRE minimum of the same particles in
    the same order and box; ValueError naming ``name`` otherwise."""
    if inherent.n_particles != len(typeid) or not np.array_equal(inherent.typeid, typeid):
        raise ValueError(f"{name} holds different particles than its thermal configuration")
    if not np.isclose(inherent.box_length, box_length):
        raise ValueError(f"{name} has box {inherent.box_length}, its thermal configuration {box_length}")
    d = np.asarray(inherent.positions, dtype=np.float64) - np.asarray(positions, dtype=np.float64)
    d -= box_length * np.round(d / box_length)
    return d


def compute_paired_descriptors(thermal: Snapshot, inherent: Snapshot, sets: dict[str, dict]) -> pd.DataFrame:
    """Descriptors that read a configuration and its inherent structure together (``structure.input: both``).

    Columns: the sets computed on the inherent structure under their usual names ('<set>:<feature>', as
    GlassMLP reads them), the same sets on the thermal configuration prefixed 'thermal/', and
    'thermal/displacement_to_inherent', |r_thermal - r_inherent| (minimum image, sigma_AA): how far the
    energy minimisation moved each particle. The two snapshots must be the same particles in the same order
    and box (the inherent structure is the FIRE minimum of the thermal one).
    """
    d = displacement_to_inherent(thermal.positions, thermal.typeid, thermal.box_length, inherent)
    table = compute_descriptors(inherent, sets)
    hot = compute_descriptors(thermal, sets).drop(columns=["particle", "type"])
    hot.columns = [THERMAL_PREFIX + name for name in hot.columns]
    hot[THERMAL_PREFIX + "displacement_to_inherent"] = np.sqrt(np.einsum("ij,ij->i", d, d))
    return pd.concat([table, hot], axis=1)


# Importing the modules registers the sets.
from glasspipe.structure.descriptors import boattini, glassmlp, mechanics, radial  # noqa: E402, F401
