"""The models glasspipe can train, in one place.

Each entry says what a model reads (per-particle descriptors or the particle graph), whether its training
job wants a GPU, and how to train it. The workflow (one ``train`` rule with a ``{model}`` wildcard), the
config (``models.<name>`` sections, ``enabled``), the CLI and the evaluation all take the list from here,
so adding a model means writing its module and one ``register`` call.

A trainer is called as ``train(train_samples, validation_samples, settings, seed, out_dir)``:
``settings`` is the job's part of the config (defaults filled: ``models.<name>``, ``graph`` for graph
models, ``split``, ``seed``), ``seed`` the model's training seed, ``out_dir`` the fold's model directory.
It must write ``train_log.parquet`` last (atomically): the workflow takes that file as the sign that the
model directory is complete. Prediction goes through :func:`glasspipe.learn.predict.predict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TRAIN_LOG = "train_log.parquet"


@dataclass(frozen=True)
class ModelSpec:
    """name: config section models.<name>; inputs: 'descriptors' or 'graph'; gpu: the training job asks
    for a GPU where the cluster profile gives one; threads: CPU threads of the training job.

    predict: ``predict(model_dir, samples, r_cut=None, device='auto')`` returning, per sample,
    (label times (T,), predictions (N, T)); :func:`glasspipe.learn.predict.predict` checks the times and
    builds the table."""

    name: str
    inputs: str
    gpu: bool
    threads: int
    train: Callable[..., None]
    description: str
    predict: Callable[..., list] | None = None


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.inputs not in ("descriptors", "graph"):
        raise ValueError(f"model {spec.name!r}: inputs must be 'descriptors' or 'graph', not {spec.inputs!r}")
    if spec.predict is None:
        raise ValueError(f"model {spec.name!r} has no predict callable")
    MODELS[spec.name] = spec
    return spec


def read_hparams(model_dir: Path, name: str) -> dict:
    """hparams.json of a model saved as weights (model.pt) plus hyper-parameters; both must exist."""
    import json

    model_dir = Path(model_dir)
    hparams_path, weights_path = model_dir / "hparams.json", model_dir / "model.pt"
    for path in (hparams_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; train the {name} model first")
    return json.loads(hparams_path.read_text())


def get(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; glasspipe knows {sorted(MODELS)}")
    return MODELS[name]


def _train_ridge(train, validation, settings: dict, seed: int, out_dir: Path) -> None:
    from glasspipe.learn.train import train_ridge

    train_ridge(train, validation, settings["models"]["ridge"], out_dir)


def _train_mlp(train, validation, settings: dict, seed: int, out_dir: Path) -> None:
    from glasspipe.learn.mlp import train_mlp

    train_mlp(train, validation, settings["models"]["mlp"], seed, out_dir)


def _train_baseline(train, validation, settings: dict, seed: int, out_dir: Path) -> None:
    from glasspipe.learn.baseline import train_baseline

    train_baseline(train, validation, settings["models"]["baseline"], out_dir)


def _train_bapst(train, validation, settings: dict, seed: int, out_dir: Path) -> None:
    from glasspipe.learn.train import train_bapst

    graph = settings["graph"]
    train_bapst(
        train, validation, settings["models"]["bapst"], graph["r_cut"], seed, out_dir, graph.get("backend", "freud")
    )


def _train_se3(train, validation, settings: dict, seed: int, out_dir: Path) -> None:
    from glasspipe.learn.se3 import train_se3

    graph = settings["graph"]
    backend = graph.get("backend", "freud")
    train_se3(train, validation, settings["models"]["se3"], graph["r_cut"], seed, out_dir, backend)


def _predict_ridge(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    from glasspipe.learn.predict import predict_ridge

    return predict_ridge(model_dir, samples, r_cut=r_cut, device=device)


def _predict_mlp(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    from glasspipe.learn.predict import predict_mlp_samples

    return predict_mlp_samples(model_dir, samples, r_cut=r_cut, device=device)


def _predict_bapst(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    from glasspipe.learn.predict import predict_bapst

    return predict_bapst(model_dir, samples, r_cut=r_cut, device=device)


def _predict_baseline(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    from glasspipe.learn.predict import predict_baseline_samples

    return predict_baseline_samples(model_dir, samples, r_cut=r_cut, device=device)


def _predict_se3(model_dir: Path, samples: list, r_cut: float | None = None, device: str = "auto") -> list:
    from glasspipe.learn.se3 import predict_se3

    return predict_se3(model_dir, samples, r_cut=r_cut, device=device)


register(
    ModelSpec(
        "ridge",
        "descriptors",
        gpu=False,
        threads=1,
        train=_train_ridge,
        predict=_predict_ridge,
        description="ridge regression on the descriptors, penalty chosen on the validation configurations",
    )
)
register(
    ModelSpec(
        "mlp",
        "descriptors",
        gpu=False,
        threads=2,
        train=_train_mlp,
        predict=_predict_mlp,
        description="GlassMLP-style multilayer perceptron with a bottleneck on the descriptors",
    )
)
register(
    ModelSpec(
        "bapst",
        "graph",
        gpu=True,
        threads=2,
        train=_train_bapst,
        predict=_predict_bapst,
        description="graph network of Bapst et al. (2020) on the particle graph",
    )
)
register(
    ModelSpec(
        "baseline",
        "descriptors",
        gpu=False,
        threads=1,
        train=_train_baseline,
        predict=_predict_baseline,
        description="one descriptor column alone (e.g. the inherent-state energy): a sanity row",
    )
)
register(
    ModelSpec(
        "se3",
        "graph",
        gpu=True,
        threads=2,
        train=_train_se3,
        description="E(3)-equivariant graph network (e3nn, NequIP-style) on the particle graph",
        predict=_predict_se3,
    )
)
