"""Where each stage's files live inside the results directory; the Snakefile and the CLI both use it.

results/
  T{T}/init/cfg{c}.gsd                      seeded random start
  T{T}/equilibrate/cfg{c}.gsd               equilibrated configuration (time origin of the labels)
  T{T}/equilibrate/cfg{c}.inherent.gsd      its inherent structure (FIRE energy minimum)
  T{T}/equilibrate/cfg{c}.thermo.parquet    thermodynamic log of all phases
  T{T}/equilibrate/cfg{c}.checks.json       equilibration checks (stationarity, temperature, crystal)
  T{T}/isoconf/cfg{c}/replica{r}.gsd        one NVE trajectory per replica: t = 0, then the label times
  T{T}/labels/cfg{c}.parquet                propensity and the label-time labels per particle and label time
  T{T}/labels/cfg{c}.dense.parquet          dense-window labels (p_hop, CWT) per particle and dense frame
  T{T}/labels/cfg{c}.ceilings.parquet       noise ceiling of every label column and time
  T{T}/structure/cfg{c}.parquet             radial descriptors per particle
  T{T}/models/{model}/fold{k}/...           trained model of fold k (state dict / JSON) and its training log
  T{T}/predictions/{model}.parquet          test-set predictions and targets (every fold's test set)
  T{T}/metrics/{model}.parquet              Pearson correlations per time, type, configuration
  T{T}/learning_curve/{model}/n{n}/fold{k}/ model trained on the first n training configurations (learning_curve)
  T{T}/learning_curve/{model}.parquet       its Pearson correlations per n (and the full model's)
  transfer/{model}/model/...                model trained on the pooled train temperatures (transfer)
  transfer/{model}/predictions.parquet      its test-temperature predictions, and the in-temperature model's
  transfer/{model}/metrics.parquet          Pearson correlations of both per test temperature and time
  report/                                   figures, tables, summary.json, resolved config, versions

Imported datasets (config section ``source``) write the same equilibrate/ and labels/ files (there is no
init/, isoconf/, thermodynamic log or checks: those belong to the dataset's own simulation).
  README.md                                 what the directory holds and the headline numbers
"""

from __future__ import annotations

import re
from pathlib import Path

from glasspipe.config import temperature_tag
from glasspipe.plugins import TRAIN_LOG

CHECKPOINTS = ".checkpoints"
TRANSFER = "transfer"  # results/transfer/<model>/: models trained at some temperatures, tested at others


def cfg_name(configuration: int | str) -> str:
    """'cfg003' for configuration 3; a string (a Snakemake wildcard pattern such as '{c}') is kept as is."""
    return f"cfg{configuration}" if isinstance(configuration, str) else f"cfg{int(configuration):03d}"


def replica_name(replica: int | str) -> str:
    return f"replica{replica}" if isinstance(replica, str) else f"replica{int(replica):02d}"


class Layout:
    """Paths of every stage output below ``root`` (the results directory)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def root_of(path: str | Path) -> Path:
        """The results directory that holds ``path`` (any file this layout names)."""
        path = Path(path)
        for parent in path.parents:
            if re.fullmatch(r"T[0-9.eE+-]+", parent.name) or parent.name in ("report", TRANSFER):
                return parent.parent
        return path.parent

    def tdir(self, temperature: float | str) -> Path:
        """The directory of one temperature: 'T0.7' for 0.7; a string is used as the tag itself."""
        tag = temperature if isinstance(temperature, str) else temperature_tag(temperature)
        return self.root / tag

    def init(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "init" / f"{cfg_name(configuration)}.gsd"

    def equilibrated(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "equilibrate" / f"{cfg_name(configuration)}.gsd"

    def inherent(self, temperature, configuration) -> Path:
        """The inherent structure (local energy minimum, FIRE) of the equilibrated configuration."""
        return self.tdir(temperature) / "equilibrate" / f"{cfg_name(configuration)}.inherent.gsd"

    def thermo(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "equilibrate" / f"{cfg_name(configuration)}.thermo.parquet"

    def checks(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "equilibrate" / f"{cfg_name(configuration)}.checks.json"

    def replica(self, temperature, configuration, replica) -> Path:
        return self.tdir(temperature) / "isoconf" / cfg_name(configuration) / f"{replica_name(replica)}.gsd"

    def labels(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "labels" / f"{cfg_name(configuration)}.parquet"

    def dense_labels(self, temperature, configuration) -> Path:
        """Dense-window labels (glasspipe.stages.labels): written when a dense label is enabled."""
        return self.tdir(temperature) / "labels" / f"{cfg_name(configuration)}.dense.parquet"

    def label_ceilings(self, temperature, configuration) -> Path:
        """Noise ceiling of every label column and time (glasspipe.stages.labels)."""
        return self.tdir(temperature) / "labels" / f"{cfg_name(configuration)}.ceilings.parquet"

    def structure(self, temperature, configuration) -> Path:
        return self.tdir(temperature) / "structure" / f"{cfg_name(configuration)}.parquet"

    def model_dir(self, temperature, model, fold=0) -> Path:
        """The trained model of one cross-validation fold (fold 0 when there is a single test set)."""
        fold_name = f"fold{fold}"
        return self.tdir(temperature) / "models" / model / fold_name

    def train_log(self, temperature, model, fold=0) -> Path:
        """Written last by every trainer: the sign that a model directory is complete."""
        return self.model_dir(temperature, model, fold) / TRAIN_LOG

    def predictions(self, temperature, model) -> Path:
        return self.tdir(temperature) / "predictions" / f"{model}.parquet"

    def metrics(self, temperature, model) -> Path:
        return self.tdir(temperature) / "metrics" / f"{model}.parquet"

    def validation_metrics(self, temperature, model) -> Path:
        """Pearson correlations of ``model`` on each fold's validation configurations, with a ``fold`` column:
        where settings and inputs are compared (glasspipe compare-runs), never on the test configurations."""
        return self.tdir(temperature) / "validation" / f"{model}.parquet"

    # --- learning curves (glasspipe.learn.learning_curve) and transfer (glasspipe.learn.transfer) ---------------
    def learning_curve_model_dir(self, temperature, model, n_train, fold=0) -> Path:
        """The model of fold ``fold`` trained on the first ``n_train`` of its training configurations."""
        return self.tdir(temperature) / "learning_curve" / model / f"n{n_train}" / f"fold{fold}"

    def learning_curve_train_log(self, temperature, model, n_train, fold=0) -> Path:
        return self.learning_curve_model_dir(temperature, model, n_train, fold) / TRAIN_LOG

    def learning_curve_metrics(self, temperature, model) -> Path:
        """Pearson correlations of ``model`` per number of training configurations (every fold's test set)."""
        return self.tdir(temperature) / "learning_curve" / f"{model}.parquet"

    def transfer_dir(self, model) -> Path:
        return self.root / TRANSFER / model

    def transfer_model_dir(self, model) -> Path:
        """The model trained on the pooled training configurations of the transfer.train temperatures."""
        return self.transfer_dir(model) / "model"

    def transfer_train_log(self, model) -> Path:
        return self.transfer_model_dir(model) / TRAIN_LOG

    def transfer_predictions(self, model) -> Path:
        return self.transfer_dir(model) / "predictions.parquet"

    def transfer_metrics(self, model) -> Path:
        return self.transfer_dir(model) / "metrics.parquet"

    def checkpoint_dir(self, stage: str, temperature, configuration) -> Path:
        """Scratch space of a resumable stage; outside the declared outputs, so Snakemake keeps it."""
        return self.tdir(temperature) / CHECKPOINTS / stage / cfg_name(configuration)

    def _job_name(self, temperature, configuration=None, model=None) -> str:
        item = cfg_name(configuration) if configuration is not None else model
        return f"{self.tdir(temperature).name}_{item}"

    def log(self, stage: str, temperature, configuration=None, model=None) -> Path:
        """Log file of one job (per configuration, or per model)."""
        return self.root / "logs" / stage / f"{self._job_name(temperature, configuration, model)}.log"

    def benchmark(self, stage: str, temperature, configuration=None, model=None) -> Path:
        """Snakemake benchmark file (wall time, memory) of one job."""
        return self.root / "benchmarks" / stage / f"{self._job_name(temperature, configuration, model)}.tsv"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"
