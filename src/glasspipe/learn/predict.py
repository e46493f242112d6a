"""Predictions of a trained model on samples, as a LONG table (one row per configuration, particle and time).

Columns: configuration (int), particle (int), type ('A'/'B'), time (float, tau), prediction, target.
Rows are ordered by configuration, then time, then particle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from glasspipe.learn import registry
from glasspipe.learn.data import Sample, build_graph, prediction_backend
from glasspipe.learn.mlp import load_mlp, predict_mlp
from glasspipe.learn.models import build_bapst
from glasspipe.learn.registry import read_hparams
from glasspipe.learn.ridge import RidgeModel
from glasspipe.learn.train import check_r_cut, resolve_device


def _check_times(sample: Sample, times: np.ndarray, model_dir: Path) -> None:
    if len(sample.times) != len(times) or not np.allclose(sample.times, times, rtol=1e-9):
        raise ValueError(
            f"configuration {sample.configuration} has label times {sample.times.tolist()} but the model in "
            f"{model_dir} was trained on times {np.asarray(times).tolist()}"
        )


def _long_table(sample: Sample, times: np.ndarray, prediction: np.ndarray) -> pd.DataFrame:
    n, t = prediction.shape
    return pd.DataFrame(
        {
            "configuration": np.full(n * t, sample.configuration, dtype=np.int64),
            "particle": np.tile(np.arange(n, dtype=np.int64), t),
            "type": np.tile(sample.type_labels.astype(str), t),
            "time": np.repeat(np.asarray(times, dtype=np.float64), n),
            "prediction": prediction.T.reshape(-1).astype(np.float64),
            "target": sample.targets.T.reshape(-1),
        }
    )


def load_bapst(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained graph network (best epoch, eval mode, on ``device``) and its hparams.

    One :class:`~glasspipe.learn.models.BapstGNN` with one output per time (``multi_time_head``), or a
    :class:`~glasspipe.learn.models.PerTimeModels` holding one network per label time; both map a graph to
    (N, n_times). Models saved before the switches existed load with their settings of then.
    """
    model_dir = Path(model_dir)
    hparams = read_hparams(model_dir, "bapst")
    hparams_path, weights_path = model_dir / "hparams.json", model_dir / "model.pt"
    legacy = "self_edges" not in hparams  # written before the switches: multi-time head, mean-degree scaling
    mean_degree = float(hparams.get("mean_degree", 1.0))
    model = build_bapst(
        hparams["n_outputs"],
        bool(hparams.get("multi_time_head", legacy)),
        hidden=hparams["hidden"],
        n_message_passing=hparams["n_message_passing"],
        n_types=hparams.get("n_types", 2),
        self_edges=bool(hparams.get("self_edges", False)),
        aggregation=hparams.get("aggregation", "mean_degree" if legacy and mean_degree != 1.0 else "sum"),
        mean_degree=mean_degree,
        edge_features=hparams.get("edge_features", "vector"),
        layer_norm=bool(hparams.get("layer_norm", False)),
        graph_norm=bool(hparams.get("graph_norm", False)),
        vector_channels=int(hparams.get("vector_channels", 0)),
        graph_norm_eps=float(hparams.get("graph_norm_eps", 1e-5)),
        node_vector_inputs=int(hparams.get("node_vector_inputs", 0)),
    )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        raise ValueError(f"{weights_path} does not hold the weights described by {hparams_path} ({err})") from err
    return model.to(device).eval(), hparams


def predict(
    model_name: str,
    model_dir: str | Path,
    samples: list[Sample],
    r_cut: float | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """Predict every particle and label time of ``samples`` with the model saved in ``model_dir``.

    model_name: a registered model (glasspipe.learn.registry); its ``predict`` callable reads the model
    directory and returns (times, values (N, T)) per sample, e.g. 'ridge' (model.json, needs descriptors),
    'bapst' and 'se3' (model.pt and hparams.json), 'mlp' (model.pt and hparams.json, needs descriptors).
    r_cut: graph cutoff for 'bapst'; None takes the one the model was trained with, a different value is an
    error. device: 'auto' | 'cpu' | 'cuda' for 'bapst' (a model trained on a GPU loads on a CPU).
    """
    model_dir = Path(model_dir)
    spec = registry.get(model_name)
    if not samples:
        return pd.DataFrame(
            {
                "configuration": pd.Series(dtype="int64"),
                "particle": pd.Series(dtype="int64"),
                "type": pd.Series(dtype="object"),
                "time": pd.Series(dtype="float64"),
                "prediction": pd.Series(dtype="float64"),
                "target": pd.Series(dtype="float64"),
            }
        )
    tables = []
    predicted = spec.predict(model_dir, samples, r_cut=r_cut, device=device)
    for sample, (times, values) in zip(samples, predicted, strict=True):
        _check_times(sample, times, model_dir)
        tables.append(_long_table(sample, times, values))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- one predictor per model
# Each takes (model_dir, samples, r_cut, device) and returns [(times, values (N, T))] in sample order; the
# registry (glasspipe.learn.registry) names them, predict() checks the times and builds the table.


def predict_ridge(model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto") -> list:
    model = RidgeModel.load(Path(model_dir) / "model.json")
    out = []
    for sample in samples:
        _check_times(sample, model.times, model_dir)
        if sample.descriptors is None:
            raise ValueError(f"configuration {sample.configuration} has no descriptors; ridge needs them")
        if sample.descriptor_names != model.feature_names:
            raise ValueError(
                f"configuration {sample.configuration} has descriptor columns that differ from those "
                f"the ridge model in {model_dir} was trained on"
            )
        out.append((model.times, model.predict(sample.descriptors)))
    return out


def predict_baseline_samples(
    model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto"
) -> list:
    from glasspipe.learn.baseline import predict_baseline

    return [predict_baseline(model_dir, sample) for sample in samples]


def predict_mlp_samples(
    model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto"
) -> list:
    model, hparams = load_mlp(model_dir)
    times = np.asarray(hparams["times"], dtype=np.float64)
    out = []
    for sample in samples:
        _check_times(sample, times, model_dir)
        out.append((times, predict_mlp(model, hparams, sample)))
    return out


def predict_bapst(model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto") -> list:
    """r_cut: None takes the one the model was trained with; a different value is an error."""
    torch_device = resolve_device(device)
    model, hparams = load_bapst(model_dir, torch_device)
    trained_r_cut = check_r_cut(r_cut, hparams, model_dir)
    times = np.asarray(hparams["times"], dtype=np.float64)
    mean = np.asarray(hparams["target_mean"], dtype=np.float64)
    std = np.asarray(hparams["target_std"], dtype=np.float64)
    out = []
    with torch.no_grad():
        for sample in samples:
            _check_times(sample, times, model_dir)
            g = build_graph(
                sample, trained_r_cut, n_types=model.n_types, backend=prediction_backend(hparams), device=torch_device
            )
            output = model(g.node_features, g.edge_vectors, g.senders, g.receivers).double().cpu().numpy()
            out.append((times, output * std + mean))
    return out
