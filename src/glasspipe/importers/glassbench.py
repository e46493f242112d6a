"""GlassBench npz files (Jung et al., "Roadmap on machine learning glassy liquids", arXiv:2311.14752).

Source: Zenodo record 10.5281/zenodo.10118191 (GlassBench.zip, ``KA_models/T{T}.tar.gz``), CC-BY-4.0;
one file per configuration, ``T{T}/{train,test}/N4096T{T}_{i}.npz``. The configurations are BOTAN's
(Shiba et al. 2023), which must be cited as well.

Keys and shapes, as found in public code that reads these files (no sample is available here):
- ``types`` (N,), ``initial_positions`` (N, 3), ``initial_positions_inherent`` (N, 3), and
  ``initial_positions_cage`` (N, 3) which only some configurations carry (optional here; validated when
  present, not imported);
- ``md_prop`` and ``bb_prop``: (K, N) = (10, 4096), one ROW PER TIME of the grid. Evidence: GlassBench's own
  plotting script for ``KA_models`` (a copy is indexed by the code search) fills ``data_disp[T, :] =
  data['md_prop']`` into an array of shape (n_temperatures, NT = 10, N = 4096) and plots ``md_prop[6, :]``
  (the 7th time, tau_alpha) against positions; xjiang-hnu/EIGNN, "Training and Test with
  EIGNN_Cage.ipynb", turns them into per-node targets with ``torch.from_numpy(md_prop.T)`` (N, 10), and its
  ``results/pcc_mean_044.csv`` reports one correlation per grid time 0.13 ... 130000. A (N, K) array is
  refused with a message saying so rather than guessed.
- ``md_prop`` is the propensity (replica mean of |dr|, sigma_AA) and ``bb_prop`` the bond-breaking
  C_B (fraction of initial neighbours kept, in [0, 1]); the test split adds model predictions (``BOTAN``,
  ``GlassMLP``, ...) and descriptors, which are ignored. The box is not stored: L = (N / 1.2)^(1/3)
  (option ``box_length``); the positions are wrapped into [-L/2, L/2).

Time grids (tau), REFERENCE.md: "3 short times then tau_alpha x 10^(-1.5 ... 1.5) in half decades":
T = 0.44: 0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, 41200, 130000 (tau_alpha = 4120);
T = 0.64: 0.032, 0.1, 0.165, 0.52, 1.65, 5.2, 16.5, 52, 165, 520 (tau_alpha = 16.5).
At T = 0.50 and 0.56 REFERENCE.md gives tau_alpha (about 217 and 52) but not the three short times, so
the grid cannot be derived: pass option ``times`` (K values, tau) there (and ``tau_alpha`` if wanted).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glasspipe.importers import (
    DatasetError,
    Imported,
    Importer,
    check_box,
    check_images,
    check_shape,
    default_box_length,
    float_array,
    number_in_name,
    option_times,
    read_npz,
    register,
    regular_array,
    require,
    snapshot_from,
    temperature_option,
    type_ids,
)

TIME_GRIDS = {
    0.44: (0.13, 1.3, 13.0, 130.0, 412.0, 1300.0, 4120.0, 13000.0, 41200.0, 130000.0),
    0.64: (0.032, 0.1, 0.165, 0.52, 1.65, 5.2, 16.5, 52.0, 165.0, 520.0),
}
TAU_ALPHA = {0.44: 4120.0, 0.64: 16.5}
# C_B is a fraction; allow float32 rounding at the ends.
_FRACTION_TOL = 1e-6

SOURCE = {
    "source": "https://doi.org/10.5281/zenodo.10118191",
    "license": "CC-BY-4.0",
    "citation": (
        "G. Jung et al., Roadmap on machine learning glassy liquids, arXiv:2311.14752 (2023); configurations from "
        "H. Shiba et al., J. Chem. Phys. 158, 084503 (2023)"
    ),
}


def _lookup(table: dict, temperature: float):
    for key, value in table.items():
        if np.isclose(key, temperature, rtol=0.0, atol=1e-9):
            return value
    return None


def _label(data: dict, key: str, path: Path, n: int) -> np.ndarray:
    value = regular_array(require(data, key, path, "GlassBench"), key, path)
    if value.ndim == 2 and value.shape[0] == n and value.shape[1] != n:
        raise DatasetError(
            f"{path}: key '{key}' has shape {value.shape}, i.e. (N, K); GlassBench stores (K, N) with one row per "
            "label time: transpose it"
        )
    return float_array(value, key, path, (None, n))


def _configuration(path: Path) -> int | None:
    found = number_in_name(path, r"_(\d+)\.npz$")
    return None if found is None else int(found)


@register
class GlassBenchImporter(Importer):
    name = "glassbench"
    description = "GlassBench npz (types, initial_positions[_inherent], md_prop and bb_prop on the time grid)"
    pattern = "*.npz"
    options = ("temperature", "times", "tau_alpha", "box_length")

    def parse(self, path: Path, raw: bytes, **options) -> Imported:
        """Validate the GlassBench file ``path`` (bytes ``raw``) and convert it (see the module docstring).

        Options: temperature (default from ``T0.44`` in the name), times (K label times in tau; default: the
        grid of that temperature), tau_alpha (tau; default 4120 at 0.44, 16.5 at 0.64, else None),
        box_length (sigma_AA; default (N / 1.2)^(1/3)).
        """
        data = read_npz(path, raw)
        what = "GlassBench"
        typeid = type_ids(require(data, "types", path, what), "types", path)
        n = len(typeid)
        initial = float_array(require(data, "initial_positions", path, what), "initial_positions", path, (n, 3))
        inherent = float_array(
            require(data, "initial_positions_inherent", path, what), "initial_positions_inherent", path, (n, 3)
        )
        if "initial_positions_cage" in data:
            float_array(data["initial_positions_cage"], "initial_positions_cage", path, (n, 3))
        md_prop = _label(data, "md_prop", path, n)
        bb_prop = _label(data, "bb_prop", path, n)
        check_shape(bb_prop, "bb_prop", path, md_prop.shape)
        if np.any(md_prop < 0):
            raise DatasetError(f"{path}: key 'md_prop' holds negative propensities (a mean distance is >= 0)")
        if np.any(bb_prop < -_FRACTION_TOL) or np.any(bb_prop > 1 + _FRACTION_TOL):
            raise DatasetError(
                f"{path}: key 'bb_prop' holds values outside [0, 1] "
                f"(min {bb_prop.min():.4g}, max {bb_prop.max():.4g}); bond-breaking C_B is a fraction"
            )

        box_length = float(options.get("box_length", default_box_length(n)))
        check_box(initial, box_length, "initial_positions", path)
        # The inherent structure is not checked against the box's faces: an energy minimisation may move particles
        # near a face slightly outside it; it is wrapped with image flags that restore the file's values. It must
        # still lie near the box (image flags are int32).
        check_images(inherent, box_length, "initial_positions_inherent", path)

        temperature = temperature_option(path, options)

        n_times = md_prop.shape[0]
        if n_times == 0:
            raise DatasetError(f"{path}: key 'md_prop' has shape {md_prop.shape}: labels at no time")
        if "times" in options:
            times = option_times(options["times"], path, n_times)
        else:
            grid = _lookup(TIME_GRIDS, temperature)
            if grid is None:
                raise DatasetError(
                    f"{path}: no GlassBench time grid is known at T = {temperature:g} (known: "
                    f"{sorted(TIME_GRIDS)}); pass the 'times' option ({n_times} times in tau)"
                )
            if len(grid) != n_times:
                raise DatasetError(
                    f"{path}: key 'md_prop' has {n_times} rows but the T = {temperature:g} grid has {len(grid)} "
                    "times; pass the 'times' option"
                )
            times = np.asarray(grid, dtype=np.float64)
        tau_alpha = options.get("tau_alpha", _lookup(TAU_ALPHA, temperature))

        return Imported(
            snapshot=snapshot_from(initial, typeid, box_length),
            inherent=snapshot_from(inherent, typeid, box_length),
            temperature=temperature,
            times=times,
            tau_alpha=None if tau_alpha is None else float(tau_alpha),
            propensity=md_prop,
            replica_distances=None,
            extra_labels={"bond_breaking": bb_prop},
            provenance={
                **SOURCE,
                "configuration": _configuration(path),
                "box_length": box_length,
                "box_source": "option" if "box_length" in options else "density 1.2 (not stored in the file)",
                "has_cage_positions": "initial_positions_cage" in data,
            },
        )
