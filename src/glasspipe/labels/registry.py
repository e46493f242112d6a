"""The registry of dynamical labels: each label says on which time grid it lives, which columns it writes
and how to compute its per-replica values; the labels stage computes every enabled one.

Grids: 'label' labels live at the isoconf label times (the main labels table, one row per particle and
label time); 'dense' labels live on the frames of the isoconf dense window (the dense labels table).

A label's ``compute(positions, settings, context)`` receives unwrapped positions of a block of replicas,
(r, K, N, 3) on its grid, its own config section (``labels.<name>``) with every time already in tau, and the
:class:`Context` of the configuration; it returns ``{column: (r, K, N) per-replica values}``. The stage
averages them over replicas and derives the noise ceiling of every column from the two replica halves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from glasspipe.labels.neighbours import InitialNeighbours, initial_neighbours

# The registry itself lives on the ground floor (glasspipe.plugins), where the config layer reads it.
from glasspipe.plugins import DENSE_GRID, LABEL_GRID, LABELS
from glasspipe.plugins import enabled_labels as enabled
from glasspipe.plugins import register_label as register

__all__ = ["DENSE_GRID", "LABELS", "LABEL_GRID", "Context", "LabelSpec", "enabled", "in_tau", "register"]


@dataclass
class Context:
    """What every label may need about one configuration.

    origin: (N, 3) unwrapped initial positions (sigma_AA); typeid (N,); box_length (sigma_AA);
    times: (K,) times of the grid being computed (tau); interval: spacing of the dense frames (tau) or None.
    """

    origin: np.ndarray
    typeid: np.ndarray
    box_length: float
    times: np.ndarray
    interval: float | None = None
    _neighbours: dict = field(default_factory=dict)

    def neighbours(self, r_factor: float) -> InitialNeighbours:
        """Initial neighbours closer than r_factor sigma_ij (computed once per cutoff)."""
        key = float(r_factor)
        if key not in self._neighbours:
            self._neighbours[key] = initial_neighbours(self.origin, self.typeid, self.box_length, key)
        return self._neighbours[key]


@dataclass(frozen=True)
class LabelSpec:
    """One label. ``time_keys``: settings in the label's ``time_unit`` (scaled to tau by the stage);
    ``columns(settings)``: the column names it writes, with their units (``units``).

    ``settings``: the JSON-schema properties of its config section ``labels.<name>`` (``enabled`` included),
    each with its default, declared here once and merged into the config schema (glasspipe.config.schema);
    empty for a label without a section (propensity, always computed). ``check(config)``: its cross-key
    check on the validated config, raising glasspipe.config.ConfigError naming the key."""

    name: str
    grid: str
    columns: Callable[[dict], list[str]]
    compute: Callable[[np.ndarray, dict, Context], dict[str, np.ndarray]]
    units: str
    description: str
    time_keys: tuple[str, ...] = ()
    settings: dict = field(default_factory=dict)
    check: Callable[[dict], None] | None = None


def in_tau(spec: LabelSpec, section: dict, tau_alpha: float | None) -> dict:
    """The label's settings with its time settings converted to tau (time_unit tau or tau_alpha)."""
    section = dict(section)
    if section.get("time_unit", "tau") == "tau_alpha":
        if tau_alpha is None:
            raise ValueError(
                f"config key 'labels.{spec.name}.time_unit' = 'tau_alpha' needs 'tau_alpha_estimates' "
                "(one per temperature)"
            )
        for key in spec.time_keys:
            value = section[key]
            section[key] = [v * tau_alpha for v in value] if isinstance(value, list) else value * tau_alpha
    return section
