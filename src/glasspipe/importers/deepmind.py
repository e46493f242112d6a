"""DeepMind glassy_dynamics pickles (Bapst et al., Nature Physics 16, 448 (2020)).

Source: google-deepmind/deepmind-research, ``glassy_dynamics/`` (code and ``testdata/test_small.pickle``,
Apache-2.0); the full dataset is the GCP bucket ``deepmind-research-glassy-dynamics``.

Format (``glassy_dynamics/README.md``): a pickle (protocol 3) of a dict with ``positions`` (N, 3),
``types`` (N,) 0 = A / 1 = B, ``box`` (3,), ``time`` (all sampled times, tau), ``time_indices`` (K,) indices
into ``time`` of the label times, ``is_values`` (K,) the intermediate scattering function there (the value
1/e marks tau_alpha), ``trajectory_start_velocities``, ``trajectory_target_positions`` (K lists of R = 30
arrays (N, 3): each replica's absolute positions at time k), and ``metadata`` (temperature, pressure,
fluid). Full-size files carry ``targets`` (precomputed propensities, taken here as (K, N), one row per
label time) instead of the replica positions. The file is read with the restricted unpickler of
:mod:`glasspipe.importers.safe_pickle`, never with ``pickle.load``.

Propensity: ``get_targets`` in ``glassy_dynamics/train.py`` (and ``train_using_jax.py``) computes
``mean_r |trajectory_target_positions[k][r] - positions|`` with NO minimum image: positions are in absolute
(unwrapped) coordinates. The same is done here. The time_indices need not be ascending (the test file's
1/e point comes last); labels are sorted by time. ``tau_alpha`` is the label time whose ``is_values`` entry
is 1/e (within 0.01), else None. The box must be cubic.
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
    float_array,
    register,
    require,
    snapshot_from,
    type_ids,
)
from glasspipe.importers.safe_pickle import UnsafePickleError, load_bytes

SOURCE = {
    "source": "https://github.com/google-deepmind/deepmind-research/tree/master/glassy_dynamics",
    "license": "Apache-2.0",
    "citation": "V. Bapst et al., Nature Physics 16, 448 (2020)",
}
_TAU_ALPHA_IS_TOL = 0.01


def _unpickle(path: Path, raw: bytes) -> dict:
    try:
        data = load_bytes(raw, name=str(path))
    except UnsafePickleError as err:
        raise DatasetError(str(err)) from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DatasetError(
            f"{path}: not a readable pickle ({type(err).__name__}: {err}); the file is truncated, corrupt or of "
            "another kind"
        ) from err
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: holds a {type(data).__name__}, not the dict of a DeepMind glassy_dynamics file")
    return data


@register
class DeepMindImporter(Importer):
    name = "deepmind"
    description = "DeepMind glassy_dynamics pickle (positions, types, box, replica target positions or targets)"
    pattern = "*.pickle"
    options = ("temperature",)

    def parse(self, path: Path, raw: bytes, **options) -> Imported:
        """Validate the DeepMind file ``path`` (bytes ``raw``) and convert it (see the module docstring).

        Option: temperature (default: ``metadata['temperature']``).
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
        indices = np.asarray(require(data, "time_indices", path, what))
        if indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu":
            raise DatasetError(f"{path}: key 'time_indices' must be a non-empty list of integers, got {indices!r}")
        if indices.min() < 0 or indices.max() >= len(all_times):
            raise DatasetError(
                f"{path}: key 'time_indices' holds indices outside 0..{len(all_times) - 1} of key 'time'"
            )
        k = len(indices)
        times = all_times[indices]
        if np.any(times <= 0) or len(np.unique(times)) != k:
            raise DatasetError(
                f"{path}: key 'time_indices' selects times {times.tolist()}; they must be > 0 and distinct"
            )
        is_values = float_array(require(data, "is_values", path, what), "is_values", path, (k,))

        if "trajectory_target_positions" in data:
            try:
                targets = np.asarray(data["trajectory_target_positions"], dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise DatasetError(
                    f"{path}: key 'trajectory_target_positions' is not a regular (K, R, N, 3) array ({err})"
                ) from err
            targets = float_array(targets, "trajectory_target_positions", path, (k, None, n, 3))
            if targets.shape[1] < 1:
                raise DatasetError(f"{path}: key 'trajectory_target_positions' holds no replica")
            # (K, R, N) -> (R, K, N); absolute coordinates, no minimum image (as get_targets in train.py).
            distances = np.linalg.norm(targets - initial[None, None], axis=-1).transpose(1, 0, 2)
            propensity = distances.mean(axis=0)
        elif "targets" in data:
            distances = None
            propensity = float_array(data["targets"], "targets", path, (k, n))
            if np.any(propensity < 0):
                raise DatasetError(f"{path}: key 'targets' holds negative propensities")
        else:
            raise DatasetError(
                f"{path}: key 'trajectory_target_positions' (or 'targets') is missing; a {what} file holds one "
                f"(keys present: {sorted(map(str, data))})"
            )

        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            raise DatasetError(f"{path}: key 'metadata' is a {type(metadata).__name__}, expected a dict")
        temperature = options.get("temperature", metadata.get("temperature"))
        if temperature is None:
            raise DatasetError(f"{path}: key 'metadata' has no 'temperature'; pass the 'temperature' option")
        try:
            temperature = float(temperature)
        except (TypeError, ValueError) as err:
            raise DatasetError(f"{path}: key 'metadata' temperature {temperature!r} is not a number") from err

        order = np.argsort(times, kind="stable")
        times, is_values, propensity = times[order], is_values[order], propensity[order]
        if distances is not None:
            distances = distances[:, order]
        near = np.abs(is_values - np.exp(-1.0))
        tau_alpha = float(times[int(np.argmin(near))]) if near.min() <= _TAU_ALPHA_IS_TOL else None

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
                "is_values": is_values.tolist(),
                "pressure": metadata.get("pressure"),
                "fluid": metadata.get("fluid"),
                "tau_alpha_definition": "label time where the dataset's intermediate scattering function is 1/e",
            },
        )
