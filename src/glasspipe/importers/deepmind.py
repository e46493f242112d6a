"""DeepMind glassy_dynamics pickles (Bapst et al., Nature Physics 16, 448 (2020)).

Source: google-deepmind/deepmind-research, ``glassy_dynamics/`` (code, ``testdata/test_small.pickle`` and
``testdata/test_large.pickle``, Apache-2.0); the full dataset is the GCP bucket
``deepmind-research-glassy-dynamics``. The file is read with the restricted unpickler of
:mod:`glasspipe.importers.safe_pickle`, never with ``pickle.load``.

Format (``glassy_dynamics/README.md``): a pickle (protocol 3) of a dict with ``positions`` (N, 3),
``types`` (N,) 0 = A / 1 = B, ``box`` (3,), ``time`` (all sampled times, tau), ``time_indices`` (K,) indices
into ``time`` of the label times, ``is_values`` (K,) the intermediate scattering function there (the value
1/e marks tau_alpha), ``trajectory_start_velocities``, and ``metadata`` (temperature, pressure, fluid), plus
the labels in one of these layouts (all accepted):

- ``trajectory_target_positions`` only, for all K times: (K, R, N, 3), as K lists of R = 30 arrays (N, 3)
  (``test_small.pickle``), each replica's absolute positions at time k;
- ``trajectory_target_positions`` for the first M < K times only, (M, R, N, 3): labels at those M times;
- ``targets`` only: precomputed propensities (K, N), one row per entry of ``time_indices``;
- both (``test_large.pickle``: ``targets`` (10, 4096) and ``trajectory_target_positions`` (1, 30, 4096, 3),
  time index 0 only; DeepMind's ``load_data`` reads ``trajectory_target_positions[time_index]``, so entry m
  belongs to ``time_indices[m]``). The labels are ``targets`` at all K times; where the positions overlap
  (the first M times) the propensity computed from them must equal ``targets`` within
  ``OVERLAP_RTOL`` (relative, or the stored dtype's precision when coarser; they agree to 1e-14 on
  test_large), else the file is refused. Replica distances (hence the noise ceiling) are kept when the
  positions cover all K times.

Propensity: ``get_targets`` in ``glassy_dynamics/train.py`` (and ``train_using_jax.py``) computes
``mean_r |trajectory_target_positions[k][r] - positions|`` with NO minimum image: positions are in absolute
(unwrapped) coordinates. The same is done here. The time_indices need not be ascending (the test file's
1/e point comes last); labels are sorted by time. ``tau_alpha`` is the time among all K ``time_indices``
whose ``is_values`` entry is 1/e (within 0.01), else None. The box must be cubic.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from glasspipe.importers import (
    DatasetError,
    Imported,
    Importer,
    check_box,
    checked_distances,
    float_array,
    positive_number,
    register,
    regular_array,
    require,
    snapshot_from,
    type_ids,
)
from glasspipe.importers.safe_pickle import load_bytes

SOURCE = {
    "source": "https://github.com/google-deepmind/deepmind-research/tree/master/glassy_dynamics",
    "license": "Apache-2.0",
    "citation": "V. Bapst et al., Nature Physics 16, 448 (2020)",
}
_TAU_ALPHA_IS_TOL = 0.01
# Where a file holds both targets and replica positions they must agree to this relative tolerance (they are
# the same float64 computation: 1e-14 on DeepMind's test_large.pickle; summation order alone moves ~1e-15).
OVERLAP_RTOL = 1e-9
# Relative deviations are taken against max(|target|, OVERLAP_FLOOR) (sigma): a particle that did not move.
OVERLAP_FLOOR = 1e-3
_MAX_FLUID_NAME = 200


def _unpickle(path: Path, raw: bytes) -> dict:
    """The file's dict, unpickled by the restricted loader (which raises only UnpicklingError naming the file)."""
    try:
        data = load_bytes(raw, name=str(path))
    except pickle.UnpicklingError as err:  # UnsafePickleError or CorruptPickleError: the message names the file
        raise DatasetError(str(err)) from err
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: holds a {type(data).__name__}, not the dict of a DeepMind glassy_dynamics file")
    return data


def _replica_positions(data: dict, path: Path, k: int, n: int) -> np.ndarray | None:
    """``trajectory_target_positions`` as (M, R, N, 3) float64 with 1 <= M <= K and R >= 1, or None if absent."""
    key = "trajectory_target_positions"
    if key not in data:
        return None
    positions = float_array(data[key], key, path, (None, None, n, 3))
    m, replicas = positions.shape[:2]
    if not 1 <= m <= k:
        raise DatasetError(
            f"{path}: key '{key}' has shape {positions.shape}, expected (M, R, {n}, 3) with 1 <= M <= {k} "
            f"(one entry per time index, the first M of the {k} in 'time_indices')"
        )
    if replicas < 1:
        raise DatasetError(f"{path}: key '{key}' has shape {positions.shape}: it holds no replica")
    return positions


def _targets(data: dict, path: Path, k: int, n: int) -> tuple[np.ndarray, np.dtype] | None:
    """``targets`` as (K, N) float64 propensities >= 0 and the dtype they were stored in, or None if absent."""
    if "targets" not in data:
        return None
    stored = regular_array(data["targets"], "targets", path)
    if stored.ndim == 2 and stored.shape == (n, k) and n != k:
        raise DatasetError(
            f"{path}: key 'targets' has shape {stored.shape}, i.e. (N, K); DeepMind stores (K, N) with one row "
            "per time index: transpose it"
        )
    targets = float_array(stored, "targets", path, (k, n))
    if np.any(targets < 0):
        raise DatasetError(f"{path}: key 'targets' holds negative propensities (a mean distance is >= 0)")
    return targets, stored.dtype


def _check_overlap(propensity: np.ndarray, targets: np.ndarray, stored: np.dtype, times, path: Path) -> float:
    """Refuse unless the propensity computed from the replica positions, (M, N), equals ``targets[:M]``.

    The tolerance is relative: OVERLAP_RTOL, or 4 ulps of the dtype ``targets`` was stored in when that is
    coarser (DeepMind's get_targets returns float32). Returns the largest relative deviation found.
    """
    rtol = OVERLAP_RTOL
    if stored.kind == "f":
        rtol = max(rtol, 4 * float(np.finfo(stored).eps))
    m = len(propensity)
    scale = np.maximum(np.abs(targets[:m]), OVERLAP_FLOOR)
    deviation = np.abs(propensity - targets[:m]) / scale
    worst = np.unravel_index(int(np.argmax(deviation)), deviation.shape)
    if deviation[worst] > rtol:
        index, particle = int(worst[0]), int(worst[1])
        raise DatasetError(
            f"{path}: keys 'targets' and 'trajectory_target_positions' disagree at time index {index} "
            f"(t = {times[index]:g}), particle {particle}: propensity {propensity[worst]:.17g} from the replica "
            f"positions, {targets[worst]:.17g} in 'targets' (relative deviation {deviation[worst]:.3g}, "
            f"tolerance {rtol:.3g}); the file's labels contradict each other"
        )
    return float(deviation.max())


def _metadata(data: dict, path: Path, options: dict) -> tuple[float, float | None, str | None]:
    """(temperature, pressure, fluid) from ``metadata`` (temperature: the option overrides it)."""
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise DatasetError(f"{path}: key 'metadata' is a {type(metadata).__name__}, expected a dict")
    temperature = options.get("temperature", metadata.get("temperature"))
    if temperature is None:
        raise DatasetError(f"{path}: key 'metadata' has no 'temperature'; pass the 'temperature' option")
    what = "option 'temperature'" if "temperature" in options else "key 'metadata' temperature"
    temperature = positive_number(temperature, what, path)
    pressure = metadata.get("pressure")
    if pressure is not None:
        if isinstance(pressure, bool) or not isinstance(pressure, int | float | np.integer | np.floating):
            raise DatasetError(f"{path}: key 'metadata' pressure is a {type(pressure).__name__}, expected a number")
        try:
            pressure = float(pressure)
        except OverflowError:  # an int beyond float range
            pressure = float("inf")
        if not np.isfinite(pressure):
            raise DatasetError(f"{path}: key 'metadata' pressure = {pressure} is not finite")
    fluid = metadata.get("fluid")
    if fluid is not None and (not isinstance(fluid, str) or len(fluid) > _MAX_FLUID_NAME):
        raise DatasetError(f"{path}: key 'metadata' fluid is not a name (a str of at most {_MAX_FLUID_NAME} chars)")
    return temperature, pressure, fluid


@register
class DeepMindImporter(Importer):
    name = "deepmind"
    description = "DeepMind glassy_dynamics pickle (positions, types, box, replica target positions and/or targets)"
    pattern = "*.pickle"
    options = ("temperature",)

    def parse(self, path: Path, raw: bytes, **options) -> Imported:
        """Validate the DeepMind file ``path`` (bytes ``raw``) and convert it (see the module docstring).

        Option: temperature (default: ``metadata['temperature']``). Returns the Imported configuration with
        labels at the K times of ``time_indices`` (or the first M when only M have replica positions and
        there are no ``targets``), sorted by time.
        """
        data = _unpickle(path, raw)
        what = "DeepMind glassy_dynamics"
        typeid = type_ids(require(data, "types", path, what), "types", path)
        n = len(typeid)
        initial = float_array(require(data, "positions", path, what), "positions", path, (n, 3))
        box = float_array(require(data, "box", path, what), "box", path, (3,))
        if not np.allclose(box, box[0], rtol=1e-9, atol=0.0):
            raise DatasetError(f"{path}: key 'box' = {box.tolist()} is not cubic; glasspipe needs a cubic box")
        box_length = float(box[0])
        check_box(initial, box_length, "positions", path)

        all_times = float_array(require(data, "time", path, what), "time", path, (None,))
        indices = regular_array(require(data, "time_indices", path, what), "time_indices", path)
        if indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu":
            raise DatasetError(
                f"{path}: key 'time_indices' must be a non-empty list of integers, got shape {indices.shape} of "
                f"{indices.dtype}"
            )
        if indices.min() < 0 or indices.max() >= len(all_times):
            raise DatasetError(
                f"{path}: key 'time_indices' holds indices outside 0..{len(all_times) - 1} of key 'time'"
            )
        k = len(indices)
        file_times = all_times[indices]
        if np.any(file_times <= 0) or len(np.unique(file_times)) != k:
            raise DatasetError(
                f"{path}: key 'time_indices' selects times {file_times.tolist()}; they must be > 0 and distinct"
            )
        file_is_values = float_array(require(data, "is_values", path, what), "is_values", path, (k,))

        positions = _replica_positions(data, path, k, n)
        found = _targets(data, path, k, n)
        if positions is None and found is None:
            raise DatasetError(
                f"{path}: key 'trajectory_target_positions' (or 'targets') is missing; a {what} file holds one "
                f"(keys present: {sorted(map(str, data))})"
            )
        distances = None
        provenance = {}
        if positions is not None:
            # (M, R, N) -> (R, M, N); absolute coordinates, no minimum image (as get_targets in train.py).
            distances = checked_distances(positions, initial, "trajectory_target_positions", path).transpose(1, 0, 2)
            provenance["replica_positions_times"] = file_times[: positions.shape[0]].tolist()
        if found is not None:
            targets, stored = found
            propensity = targets
            if distances is not None:
                provenance["targets_max_relative_deviation"] = _check_overlap(
                    distances.mean(axis=0), targets, stored, file_times, path
                )
                if distances.shape[1] < k:
                    distances = None  # replica positions at some times only: no (R, K, N) array to keep
            provenance["labels_from"] = "targets"
            label_index = np.arange(k)
        else:
            propensity = distances.mean(axis=0)
            label_index = np.arange(distances.shape[1])
            provenance["labels_from"] = "trajectory_target_positions"
        times, is_values = file_times[label_index], file_is_values[label_index]

        temperature, pressure, fluid = _metadata(data, path, options)

        order = np.argsort(times, kind="stable")
        times, propensity = times[order], propensity[order]
        if distances is not None:
            distances = distances[:, order]
        # tau_alpha is a property of the whole file: the 1/e point among all K time indices.
        near = np.abs(file_is_values - np.exp(-1.0))
        tau_alpha = float(file_times[int(np.argmin(near))]) if near.min() <= _TAU_ALPHA_IS_TOL else None

        return Imported(
            snapshot=snapshot_from(initial, typeid, box_length),
            inherent=None,
            temperature=temperature,
            times=times,
            tau_alpha=tau_alpha,
            propensity=propensity,
            replica_distances=distances,
            extra_labels={},
            provenance={
                **SOURCE,
                "box_length": box_length,
                "is_values": is_values[order].tolist(),
                "pressure": pressure,
                "fluid": fluid,
                "tau_alpha_definition": "label time where the dataset's intermediate scattering function is 1/e",
                **provenance,
            },
        )
