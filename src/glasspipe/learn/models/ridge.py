"""Ridge regression on per-particle descriptors: the linear baseline (as Landes et al. 2020 with g(r) bins).

Model, for each label time t separately::

    prediction_t(x) = intercept_t + sum_f coefficient_{t,f} * (x_f - mean_f) / std_f

fitted in closed form on the A particles of the training configurations, minimising
``sum_i (y_i - prediction(x_i))^2 + alpha_t * n * |coefficient_t|^2`` over the n training rows: alpha is
relative to the data's scale (the Gram matrix of standardised features has n on its diagonal), so one grid
of penalties means the same regularisation for 5 demo configurations and for 400 at paper scale, where an
absolute grid would fade into ordinary least squares. Feature means and standard deviations are those of the
training rows; a constant feature gets std 1 (and so contributes nothing). The intercept is the training mean
of the target.

The penalty alpha_t is chosen from a list by the mean over validation configurations of the Pearson
correlation on A particles. Without validation configurations it is chosen by K-fold cross-validation over
the training configurations (K = min(5, number of training configurations); folds hold whole
configurations, so particles of one configuration never sit on both sides); with a single training
configuration the folds are interleaved particle subsets of it.

With ``models.ridge.loss_weighting.alpha`` > 0 the squared residuals are importance-weighted (Pezzicoli's
thesis eq. 2.20, glasspipe.learn.training.weights; a weighted least-squares fit per time, see :func:`_weighted_path`).

The model is saved as plain JSON (see :meth:`RidgeModel.to_dict`), readable without glasspipe.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glasspipe.correlation import pearson_along
from glasspipe.io.atomic import write_json
from glasspipe.io.tables import write_table
from glasspipe.learn.predict import check_times
from glasspipe.learn.samples import Sample, check_consistent
from glasspipe.learn.training.graph_task import A_TYPEID
from glasspipe.learn.training.trainer import configuration_ids
from glasspipe.learn.training.weights import weighting_settings

logger = logging.getLogger(__name__)

FORMULA = "prediction[t] = intercepts[t] + sum_f coefficients[t][f] * (x[f] - feature_mean[f]) / feature_std[f]"


@dataclass
class RidgeModel:
    feature_names: list[str]
    times: np.ndarray  # (T,)
    feature_mean: np.ndarray  # (F,)
    feature_std: np.ndarray  # (F,)
    coefficients: np.ndarray  # (T, F), on standardised features
    intercepts: np.ndarray  # (T,)
    alpha: np.ndarray  # (T,) chosen penalty per time
    alphas_tried: list[float]
    selection: str  # 'validation' or 'k-fold (K=...)'
    fit_particles: str = "A"

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N, F) descriptors -> (N, T) predictions."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"ridge model takes {len(self.feature_names)} descriptors per particle, got shape {features.shape}"
            )
        standardised = (features - self.feature_mean) / self.feature_std
        return standardised @ self.coefficients.T + self.intercepts

    def to_dict(self) -> dict:
        return {
            "model": "ridge",
            "formula": FORMULA,
            "penalty": "sum of squared residuals + alpha * n_rows * |coefficients|^2 (alpha relative to the data)",
            "fit_particles": self.fit_particles,
            "feature_names": list(self.feature_names),
            "times": [float(t) for t in self.times],
            "feature_mean": self.feature_mean.tolist(),
            "feature_std": self.feature_std.tolist(),
            "coefficients": self.coefficients.tolist(),
            "intercepts": self.intercepts.tolist(),
            "alpha": self.alpha.tolist(),
            "alphas_tried": [float(a) for a in self.alphas_tried],
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RidgeModel:
        return cls(
            feature_names=list(data["feature_names"]),
            times=np.asarray(data["times"], dtype=np.float64),
            feature_mean=np.asarray(data["feature_mean"], dtype=np.float64),
            feature_std=np.asarray(data["feature_std"], dtype=np.float64),
            coefficients=np.asarray(data["coefficients"], dtype=np.float64).reshape(len(data["times"]), -1),
            intercepts=np.asarray(data["intercepts"], dtype=np.float64),
            alpha=np.asarray(data["alpha"], dtype=np.float64),
            alphas_tried=list(data["alphas_tried"]),
            selection=data["selection"],
            fit_particles=data.get("fit_particles", "A"),
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RidgeModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ridge model {path} does not exist; run the ridge training first")
        try:
            data = json.loads(path.read_text())
            return cls.from_dict(data)
        except (json.JSONDecodeError, KeyError, ValueError) as err:
            raise ValueError(
                f"ridge model {path} is not a readable ridge model ({err}); delete it and retrain"
            ) from err


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, std


def fit_path(
    features: np.ndarray, targets: np.ndarray, alphas: list[float], weighting: dict | None = None
) -> tuple[np.ndarray, ...]:
    """Closed-form ridge fits for every relative penalty alpha (penalty alpha * n on n rows).

    features (n, F), targets (n, T). Returns feature mean (F,), std (F,), coefficients (n_alpha, T, F) on the
    standardised features and intercepts (n_alpha, T) (unweighted: the training mean of the targets, the same
    for every alpha).
    weighting: the ``loss_weighting`` settings (glasspipe.learn.training.weights); with alpha > 0 each time is a
    weighted least-squares fit (see :func:`_weighted_path`), otherwise the plain fit below, unchanged.
    """
    mean, std = standardisation(features)
    x = (features - mean) / std
    if weighting is not None and weighting["alpha"] > 0:
        return (mean, std, *_weighted_path(x, targets, alphas, weighting))
    y_mean = targets.mean(axis=0)
    gram = x.T @ x
    rhs = x.T @ (targets - y_mean)
    eye = np.eye(gram.shape[0])
    n_rows = len(features)
    coefficients = np.stack([_solve(gram + alpha * n_rows * eye, rhs).T for alpha in alphas])
    return mean, std, coefficients, np.tile(y_mean, (len(alphas), 1))


def _weighted_path(x: np.ndarray, targets: np.ndarray, alphas: list[float], weighting: dict) -> tuple[np.ndarray, ...]:
    """Importance-weighted ridge on standardised features x (n, F): per time t, with w the weights of
    glasspipe.learn.training.weights.importance_weights (mean 1 over the rows, from this fit's own targets),

        minimise sum_i w_it (y_it - b_t - x_i . c_t)^2 + alpha * n * |c_t|^2   (intercept b_t not penalised),

    solved as c_t = (Xc^T W Xc + alpha n I)^-1 Xc^T W (y - ybar_w), Xc = x - xbar_w (weighted means), and
    b_t = ybar_w - xbar_w . c_t. Returns coefficients (n_alpha, T, F) and intercepts (n_alpha, T) in the model's
    form (prediction = intercept + x . c, x standardised with the unweighted training mean and std).
    """
    from glasspipe.learn.training.weights import importance_weights

    weights = importance_weights(targets, weighting["alpha"], weighting["n_bins"], weighting["max_weight"])
    n_rows, n_features = x.shape
    eye = np.eye(n_features)
    coefficients = np.empty((len(alphas), targets.shape[1], n_features))
    intercepts = np.empty((len(alphas), targets.shape[1]))
    for t in range(targets.shape[1]):  # one weighted Gram matrix per label time (a loop over times)
        w = weights[:, t]
        x_mean = w @ x / w.sum()
        y_mean = w @ targets[:, t] / w.sum()
        centred = x - x_mean
        weighted = centred * w[:, None]
        gram = weighted.T @ centred
        rhs = weighted.T @ (targets[:, t] - y_mean)
        for k, alpha in enumerate(alphas):
            coefficients[k, t] = _solve(gram + alpha * n_rows * eye, rhs)
            intercepts[k, t] = y_mean - x_mean @ coefficients[k, t]
    return coefficients, intercepts


def _solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def _mean_group_pearson(
    features: list[np.ndarray], targets: list[np.ndarray], mean, std, coefficients, intercepts
) -> np.ndarray:
    """Mean over groups of the Pearson correlation per (alpha, time): shape (n_alpha, T)."""
    scores = []
    for x, y in zip(features, targets, strict=True):
        standardised = (x - mean) / std
        per_alpha = [
            pearson_along(standardised @ c.T + b, y, axis=0) for c, b in zip(coefficients, intercepts, strict=True)
        ]
        scores.append(np.stack(per_alpha))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(scores), axis=0)


def fit_ridge(
    train: list[tuple[np.ndarray, np.ndarray]],
    validation: list[tuple[np.ndarray, np.ndarray]],
    alphas: list[float],
    feature_names: list[str],
    times: np.ndarray,
    weighting: dict | None = None,
) -> tuple[RidgeModel, pd.DataFrame]:
    """Fit the ridge baseline and choose alpha per time.

    train, validation: lists of (features (n_i, F), targets (n_i, T)) per configuration, A particles only.
    Returns the model and the penalty scan: one row per (time, alpha) with the selection score
    (mean Pearson over held-out configurations), the train Pearson of the fit on all training rows and
    whether that alpha was chosen.
    weighting: ``models.ridge.loss_weighting`` (glasspipe.learn.training.weights): with alpha > 0 every fit (and every
    K-fold fit) is importance-weighted with weights from its own training targets; the selection score stays
    the unweighted Pearson correlation.
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("no ridge penalties (models.ridge.alphas) given")
    x_all = np.concatenate([x for x, _ in train])
    y_all = np.concatenate([y for _, y in train])
    mean, std, coefficients, intercepts = fit_path(x_all, y_all, alphas, weighting)

    if validation:
        selection = "validation"
        scores = _mean_group_pearson(
            [x for x, _ in validation], [y for _, y in validation], mean, std, coefficients, intercepts
        )
    else:
        folds = _folds(train)
        selection = f"k-fold (K={len(folds)})"
        fold_scores = []
        for held_out in folds:
            fit_x = np.concatenate([x[~mask] for (x, _), mask in zip(train, held_out, strict=True)])
            fit_y = np.concatenate([y[~mask] for (_, y), mask in zip(train, held_out, strict=True)])
            f_mean, f_std, f_coef, f_int = fit_path(fit_x, fit_y, alphas, weighting)
            test_x = [x[mask] for (x, _), mask in zip(train, held_out, strict=True) if mask.any()]
            test_y = [y[mask] for (_, y), mask in zip(train, held_out, strict=True) if mask.any()]
            fold_scores.append(_mean_group_pearson(test_x, test_y, f_mean, f_std, f_coef, f_int))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scores = np.nanmean(np.stack(fold_scores), axis=0)

    # Best alpha per time; NaN scores lose; all NaN -> the largest alpha (the most conservative fit).
    filled = np.where(np.isnan(scores), -np.inf, scores)
    chosen = np.argmax(filled, axis=0)
    all_nan = np.isnan(scores).all(axis=0)
    chosen[all_nan] = int(np.argmax(alphas))
    n_times = y_all.shape[1]
    model = RidgeModel(
        feature_names=list(feature_names),
        times=np.asarray(times, dtype=np.float64),
        feature_mean=mean,
        feature_std=std,
        coefficients=np.stack([coefficients[chosen[t], t] for t in range(n_times)]),
        intercepts=np.array([intercepts[chosen[t], t] for t in range(n_times)]),
        alpha=np.asarray([alphas[k] for k in chosen]),
        alphas_tried=alphas,
        selection=selection,
    )
    standardised = (x_all - mean) / std
    rows = []
    for k, alpha in enumerate(alphas):
        train_r = pearson_along(standardised @ coefficients[k].T + intercepts[k], y_all, axis=0)
        for t in range(n_times):
            rows.append(
                {
                    "time": float(times[t]),
                    "alpha": alpha,
                    "selection_pearson": float(scores[k, t]),
                    "train_pearson": float(train_r[t]),
                    "chosen": bool(chosen[t] == k),
                }
            )
    log = pd.DataFrame(rows).sort_values(["time", "alpha"], kind="stable").reset_index(drop=True)
    return model, log


def _folds(train: list[tuple[np.ndarray, np.ndarray]]) -> list[list[np.ndarray]]:
    """Held-out masks per fold, one boolean array per training configuration."""
    sizes = [len(x) for x, _ in train]
    if len(train) >= 2:
        k = min(5, len(train))
        return [[np.full(n, c % k == f) for c, n in enumerate(sizes)] for f in range(k)]
    n = sizes[0]
    k = min(5, n)
    if k < 2:
        raise ValueError("ridge needs validation configurations or at least 2 training rows to choose alpha")
    return [[np.arange(n) % k == f] for f in range(k)]


# ----------------------------------------------------------------------------- training and prediction


def _a_rows(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    mask = sample.typeid == A_TYPEID
    return sample.descriptors[mask], sample.targets[mask]


def train_ridge(train: list[Sample], validation: list[Sample], settings: dict, out_dir: str | Path) -> None:
    """Fit the ridge baseline on the descriptors of the A particles of ``train``; alpha chosen per time.

    settings: ``config['models']['ridge']`` (keys ``alphas``; ``enabled`` is not read here).
    Writes ``out_dir/model.json`` and ``out_dir/train_log.parquet``.
    """
    out_dir = Path(out_dir)
    if not train:
        raise ValueError("ridge training needs at least one training configuration")
    check_consistent(list(train) + list(validation), need_descriptors=True)
    started = time.perf_counter()
    alphas = settings.get("alphas", [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0])
    train_rows = [_a_rows(s) for s in train]
    validation_rows = [_a_rows(s) for s in validation]
    if sum(len(x) for x, _ in train_rows) == 0:
        raise ValueError("the training configurations hold no A particles")
    weighting = weighting_settings(settings, "models.ridge")  # importance-weighted loss (alpha 0: off)
    model, scan = fit_ridge(train_rows, validation_rows, alphas, train[0].descriptor_names, train[0].times, weighting)
    for t, (tau, alpha) in enumerate(zip(model.times, model.alpha, strict=True)):
        chosen = scan[(scan["time"] == tau) & scan["chosen"]]
        score = float(chosen["selection_pearson"].iloc[0]) if len(chosen) else float("nan")
        logger.info(
            "ridge: time %g (%d/%d): alpha %g, %s Pearson %.4f",
            tau,
            t + 1,
            len(model.times),
            alpha,
            model.selection,
            score,
        )
    data = model.to_dict()
    data["train_configurations"] = configuration_ids(train)
    data["validation_configurations"] = configuration_ids(validation)
    write_json(out_dir / "model.json", data)
    metadata = {
        "model": "ridge",
        "settings": dict(settings),
        "selection": model.selection,
        "train_configurations": configuration_ids(train),
        "validation_configurations": configuration_ids(validation),
        "wall_s": time.perf_counter() - started,
    }
    write_table(scan, out_dir / "train_log.parquet", metadata=metadata)


def predict_ridge(model_dir: Path, samples: list[Sample], r_cut: float | None = None, device: str = "auto") -> list:
    model = RidgeModel.load(Path(model_dir) / "model.json")
    out = []
    for sample in samples:
        check_times(sample, model.times, model_dir)
        if sample.descriptors is None:
            raise ValueError(f"configuration {sample.configuration} has no descriptors; ridge needs them")
        if sample.descriptor_names != model.feature_names:
            raise ValueError(
                f"configuration {sample.configuration} has descriptor columns that differ from those "
                f"the ridge model in {model_dir} was trained on"
            )
        out.append((model.times, model.predict(sample.descriptors)))
    return out
