"""BOTAN iso-configurational npz files (Shiba et al., J. Chem. Phys. 158, 084503 (2023)).

Source: the public repository h3-Open-BDEC/pyg_botan (``small_data/T0.44/{train,test}/``), Apache-2.0;
file names ``isoconfig_N{N}T{T}_{c}_tc{k}.npz`` (configuration c, time index k).

Keys (checked): ``types`` (N,) int 0 = A / 1 = B; ``initial_positions`` (N, 3), here in [0, L);
``positions`` (R, N, 3) the R = 32 replicas' unwrapped positions at the file's single label time.

Not in the file, so taken from its name or from options:
- the box: the KA density 1.2 gives L = (N / 1.2)^(1/3) = 15.05658 for N = 4096 (option ``box_length``);
  a box the initial positions do not fit is refused;
- the temperature (``T0.44`` in the name; option ``temperature``);
- the label time: ``tc{k}`` is a 1-based index into BOTAN/GlassBench's time grid at that temperature
  (REFERENCE.md: at T = 0.44 the grid is 0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, 41200, 130000 and
  index 7 = 4120 is their tau_alpha). Only the T = 0.44 grid is known here; elsewhere give option ``time``
  (tau), which always overrides the index.

Propensity: mean over replicas of |positions[r] - initial_positions| (no minimum image: the positions are
unwrapped). ``tau_alpha`` = 4120 at T = 0.44 (the dataset's definition, about 1.6-1.8 times the F_s = 1/e
time, see REFERENCE.md), else None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glasspipe.importers import (
    DatasetError,
    Imported,
    Importer,
    check_box,
    checked_distances,
    default_box_length,
    float_array,
    number_in_name,
    read_npz,
    register,
    require,
    snapshot_from,
    temperature_option,
    type_ids,
)

# BOTAN/GlassBench label times (tau) per temperature; tc{k} is 1-based into this grid.
TIME_GRIDS = {0.44: (0.13, 1.3, 13.0, 130.0, 412.0, 1300.0, 4120.0, 13000.0, 41200.0, 130000.0)}
TAU_ALPHA = {0.44: 4120.0}

SOURCE = {
    "source": "https://github.com/h3-Open-BDEC/pyg_botan",
    "license": "Apache-2.0",
    "citation": "H. Shiba, M. Hanai, T. Suzumura, T. Shimokawabe, J. Chem. Phys. 158, 084503 (2023)",
}


def _lookup(table: dict, temperature: float):
    for key, value in table.items():
        if np.isclose(key, temperature, rtol=0.0, atol=1e-9):
            return value
    return None


@register
class BotanImporter(Importer):
    name = "botan"
    description = "BOTAN iso-configurational npz (types, initial_positions, positions of 32 replicas)"
    pattern = "*.npz"
    options = ("temperature", "time", "times", "time_index", "box_length")

    def parse(self, path: Path, raw: bytes, **options) -> Imported:
        """Validate the BOTAN file ``path`` (bytes ``raw``) and convert it (see the module docstring).

        Options: temperature (T; default from the name ``T0.44``), time (label time in tau; default from
        ``tc{k}`` and the grid; ``times=[t]`` is accepted too), time_index (1-based index overriding
        ``tc{k}``), box_length (sigma_AA; default (N / 1.2)^(1/3)).
        """
        data = read_npz(path, raw)
        what = "BOTAN"
        typeid = type_ids(require(data, "types", path, what), "types", path)
        n = len(typeid)
        initial = float_array(require(data, "initial_positions", path, what), "initial_positions", path, (n, 3))
        replicas = float_array(require(data, "positions", path, what), "positions", path, (None, n, 3))
        if replicas.shape[0] < 1:
            raise DatasetError(f"{path}: key 'positions' holds no replica")

        box_length = float(options.get("box_length", default_box_length(n)))
        check_box(initial, box_length, "initial_positions", path)

        temperature = temperature_option(path, options)

        index = options.get("time_index")
        if index is None:
            found = number_in_name(path, r"tc(\d+)")
            index = None if found is None else int(found)
        if "times" in options:  # the uniform spelling of the other formats: one time for a BOTAN file
            if "time" in options:
                raise DatasetError(f"{path}: give option 'time' or 'times', not both")
            times = np.atleast_1d(np.asarray(options["times"], dtype=np.float64))
            if times.shape != (1,):
                raise DatasetError(f"{path}: option 'times' = {times.tolist()}: a BOTAN file holds labels at one time")
            options = {**options, "time": float(times[0])}
        if "time" in options:
            time = float(options["time"])
            if not (np.isfinite(time) and time > 0):
                raise DatasetError(f"{path}: option 'time' = {time} must be a positive time in tau")
        else:
            grid = _lookup(TIME_GRIDS, temperature)
            if index is None or grid is None or not 1 <= int(index) <= len(grid):
                known = {t: list(g) for t, g in TIME_GRIDS.items()}
                raise DatasetError(
                    f"{path}: cannot tell the label time: time index {index} at T = {temperature:g} is not in a "
                    f"known BOTAN time grid {known} (tc{{k}} is 1-based); pass the 'time' option (tau)"
                )
            time = float(grid[int(index) - 1])

        distances = checked_distances(replicas, initial, "positions", path)[:, None, :]  # (R, 1, N)
        configuration = number_in_name(path, r"_(\d+)_tc") or number_in_name(path, r"cfg(\d+)")
        return Imported(
            snapshot=snapshot_from(initial, typeid, box_length),
            inherent=None,
            temperature=temperature,
            times=np.array([time]),
            tau_alpha=_lookup(TAU_ALPHA, temperature),
            propensity=distances.mean(axis=0),
            replica_distances=distances,
            extra_labels={},
            provenance={
                **SOURCE,
                "configuration": None if configuration is None else int(configuration),
                "time_index": None if index is None else int(index),
                "box_length": box_length,
                "box_source": "option" if "box_length" in options else "density 1.2 (not stored in the file)",
            },
        )
