"""Transfer across temperatures: train on the pooled configurations of some temperatures, test on another.

Config section ``transfer`` (schema: ``transfer.train``, ``transfer.test``, ``transfer.models``). For each
model run named (or every enabled run), the stages of glasspipe.stages.transfer:

- ``train``: the model is fitted on the *train* configurations of every ``transfer.train`` temperature
  pooled (the split plan's train set at each), its penalty / epoch chosen on their pooled *validation*
  configurations. Writes ``layout.transfer_model_dir(run)`` (input.json, the model's files, train_log last).
- ``evaluate``: the *test* configurations of each ``transfer.test`` temperature are predicted by that
  transfer model and, for comparison, by the model trained at the test temperature itself (the per-temperature
  model of the ``train`` rule, ``layout.model_dir(T, run, 0)``), on the same configurations. Writes the
  predictions and the Pearson correlations (Parquet) with the noise ceiling of the test labels beside them.

Label times. The temperatures' label grids differ when ``isoconf.time_unit`` is tau_alpha (one grid in
t / tau_alpha, scaled by each temperature's ``tau_alpha_estimates``): the k-th label time of every temperature
is then the same t / tau_alpha, and the models see that common grid (the nominal ``isoconf.times``). With
``time_unit: tau`` the grids are the same times in tau and are matched as they are. Either way a grid that
does not match (another length, a time more than one MD step away from the nominal one) is refused, naming
the temperatures and the times: a model with one output per label time would otherwise learn one physical
time at one temperature and another elsewhere. Time-conditioned models see the common grid too.

Only single-fold split plans (simulated data) are supported: the transfer's meaning depends on one test set.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from glasspipe import config as cfg
from glasspipe import plugins
from glasspipe.statistics import format_mean_sem

TIME_BASES = ("tau", "tau_alpha")
# Column 'scheme' of the metrics: the transfer model, or the model trained at the test temperature itself.
TRANSFER, IN_TEMPERATURE = "transfer", "in_temperature"


# ----------------------------------------------------------------------------- config
def section(config: dict) -> dict:
    return config.get("transfer") or {}


def is_enabled(config: dict) -> bool:
    """True when the config asks for a transfer (``transfer.train`` not empty)."""
    return bool(section(config).get("train"))


def runs(config: dict) -> list[str]:
    """The model runs of the transfer: ``transfer.models``, or every enabled run; empty when it is off."""
    if not is_enabled(config):
        return []
    named = section(config).get("models") or []
    return list(named) if named else cfg.model_runs(config)


def time_basis(config: dict) -> str:
    """'tau_alpha' when the label times are given in tau_alpha (isoconf.time_unit), else 'tau'."""
    return "tau_alpha" if config.get("isoconf", {}).get("time_unit", "tau") == "tau_alpha" else "tau"


def nominal_times(config: dict) -> np.ndarray:
    """The label times as the config gives them (sorted, unique), in the unit of isoconf.time_unit."""
    times = config["isoconf"]["times"]
    if isinstance(times, dict):
        times = np.geomspace(times["start"], times["stop"], times["count"])
    return np.unique(np.asarray(times, dtype=np.float64))


def _in(values, temperatures) -> list[float]:
    return [v for v in values if not any(np.isclose(float(v), float(t), rtol=0, atol=1e-9) for t in temperatures)]


@plugins.register_check  # run by glasspipe.config.validate_config
def check_config(config: dict) -> None:
    """Refuse a transfer section glasspipe cannot run, naming the key (called by validate_config).

    train and test must both be given, be temperatures of 'temperatures' and share none; the models named
    must be enabled runs; the split plan must have one fold; and the label grids of the temperatures must
    match (see the module docstring)."""
    part = section(config)
    train, test, models = part.get("train", []), part.get("test", []), part.get("models", [])
    if not (train or test or models):
        return
    if not train or not test:
        missing = "transfer.train" if not train else "transfer.test"
        raise cfg.ConfigError(
            f"config key '{missing}' is empty: a transfer needs temperatures to train on (transfer.train) and "
            "to test on (transfer.test); leave the whole 'transfer' section out to switch it off"
        )
    temperatures = config["temperatures"]
    for key, values in (("train", train), ("test", test)):
        unknown = _in(values, temperatures)
        if unknown:
            raise cfg.ConfigError(
                f"config key 'transfer.{key}' names temperature(s) {unknown} that are not in 'temperatures' "
                f"{list(temperatures)}; only simulated temperatures can be trained or tested on"
            )
    shared = [t for t in test if not _in([t], train)]
    if shared:
        raise cfg.ConfigError(
            f"config keys 'transfer.train' and 'transfer.test' share temperature(s) {shared}; a transfer tests "
            "on temperatures it did not train on (the in-temperature model is compared automatically)"
        )
    enabled_runs = cfg.model_runs(config)
    for name in models:
        if name not in enabled_runs:
            raise cfg.ConfigError(
                f"config key 'transfer.models' names {name!r}, which is not an enabled model run; enabled: "
                f"{enabled_runs} (enable it under 'models', or add the label to its 'target')"
            )
    if not enabled_runs:
        raise cfg.ConfigError("config section 'transfer' is set but no model is enabled under 'models'")
    if cfg.is_imported(config) or len(cfg.split_plan(config)) != 1:
        raise cfg.ConfigError(
            "config section 'transfer' needs simulated data with one test set (split.train / validation / test); "
            "imported datasets and cross-validation folds are not supported"
        )
    grids = {float(T): cfg.label_times(config, T) for T in [*train, *test]}
    estimates = {float(T): cfg.tau_alpha_estimate(config, T) for T in grids}
    try:
        common_grid(grids, time_basis(config), estimates, nominal_times(config), config["engine"]["dt"])
    except ValueError as err:
        raise cfg.ConfigError(f"config section 'transfer': {err}") from None


# ----------------------------------------------------------------------------- label-time matching
def common_grid(
    grids: dict[float, np.ndarray],
    basis: str,
    tau_alpha: dict[float, float | None] | None = None,
    nominal: np.ndarray | None = None,
    dt: float | None = None,
) -> np.ndarray:
    """The label-time grid that every temperature's samples are put on, or a ValueError saying why not.

    grids: temperature -> its label times in tau (ascending). basis 'tau': every grid must equal the first
    (relative 1e-9) and the common grid is that grid, in tau. basis 'tau_alpha': every grid must have the
    length of ``nominal`` (the config's times in tau_alpha) and each t_k / tau_alpha(T) must be within one
    MD step (``dt``, the rounding of times onto steps) of nominal_k * tau_alpha(T); the common grid is
    ``nominal``, in units of tau_alpha."""
    if basis not in TIME_BASES:
        raise ValueError(f"unknown time basis {basis!r}; expected one of {TIME_BASES}")
    if not grids:
        raise ValueError("no temperatures given")
    items = [(float(T), np.asarray(times, dtype=np.float64)) for T, times in grids.items()]
    first_T, first = items[0]
    if basis == "tau":
        for T, times in items[1:]:
            if len(times) != len(first) or not np.allclose(times, first, rtol=1e-9, atol=0):
                raise ValueError(
                    f"label times at T = {T:g} ({times.tolist()} tau) differ from those at T = {first_T:g} "
                    f"({first.tolist()} tau), and isoconf.time_unit is tau, so times are matched in tau; use "
                    "isoconf.time_unit: tau_alpha to match them by t / tau_alpha"
                )
        return first.copy()
    if nominal is None or dt is None or tau_alpha is None:
        raise ValueError("matching by t / tau_alpha needs the nominal grid, dt and tau_alpha per temperature")
    nominal = np.asarray(nominal, dtype=np.float64)
    for T, times in items:
        scale = tau_alpha.get(T)
        if scale is None:
            raise ValueError(f"T = {T:g} has no tau_alpha estimate (tau_alpha_estimates) to match label times by")
        if len(times) != len(nominal):
            raise ValueError(
                f"T = {T:g} has {len(times)} label times but the grid isoconf.times has {len(nominal)} (in "
                "tau_alpha): times collapsed onto one MD step, so the grids cannot be matched time by time"
            )
        off = np.abs(times - nominal * scale) > dt * (1 + 1e-6)
        if off.any():
            k = int(np.flatnonzero(off)[0])
            raise ValueError(
                f"label time {times[k]:g} tau at T = {T:g} is not {nominal[k]:g} tau_alpha = "
                f"{nominal[k] * scale:g} tau (tau_alpha estimate {scale:g}) within one MD step ({dt:g}); the "
                "labels were made with other isoconf.times or tau_alpha_estimates: rerun the isoconf and labels stages"
            )
    return nominal.copy()


def align(samples: list, temperature: float, config: dict, common: np.ndarray) -> list:
    """Copies of ``samples`` (one temperature) whose label times are the common grid (see common_grid).
    Raises ValueError when their times do not match it."""
    out = []
    for sample in samples:
        grid = common_grid(
            {float(temperature): sample.times},
            time_basis(config),
            {float(temperature): cfg.tau_alpha_estimate(config, temperature)},
            common,
            config["engine"]["dt"],
        )
        if time_basis(config) == "tau" and not (
            len(grid) == len(common) and np.allclose(grid, common, rtol=1e-9, atol=0)
        ):
            raise ValueError(
                f"configuration {sample.configuration} at T = {temperature:g} has label times {grid.tolist()} "
                f"tau but the transfer grid is {np.asarray(common).tolist()} tau"
            )
        out.append(dataclasses.replace(sample, times=np.asarray(common, dtype=np.float64).copy()))
    return out


# ----------------------------------------------------------------------------- settings
def _estimates(config: dict, temperatures: list[float]) -> list[float] | None:
    if config.get("tau_alpha_estimates") is None:
        return None
    return [cfg.tau_alpha_estimate(config, T) for T in temperatures]


def _settings(config: dict, run: str, temperatures: list[float], keys: tuple[str, ...]) -> dict:
    """A job's settings: the run's training sections, the transfer keys ``keys``, the label-time settings
    and 'temperatures' / 'tau_alpha_estimates' restricted to ``temperatures`` (adding another temperature to
    the config does not rerun the transfer)."""
    settings = cfg.stage_settings(config, f"train_{run}")
    for key in ("isoconf.times", "isoconf.time_unit", "engine.dt", *keys):
        settings[key] = cfg._get(config, key)
    settings["temperatures"] = [float(T) for T in temperatures]
    estimates = _estimates(config, temperatures)
    if estimates is not None:
        settings["tau_alpha_estimates"] = estimates
    return settings


def train_settings(config: dict, run: str) -> dict:
    """What the transfer training job of ``run`` reads (a Snakemake param: edits rerun it)."""
    return _settings(config, run, section(config)["train"], ("transfer.train",))


def evaluate_settings(config: dict, run: str) -> dict:
    """What the transfer evaluation job of ``run`` reads."""
    part = section(config)
    return _settings(config, run, [*part["train"], *part["test"]], ("transfer.train", "transfer.test"))


def to_grid(times, reference, grid) -> np.ndarray:
    """Each of ``times`` replaced by the ``grid`` value at the index of the nearest ``reference`` time (the
    same times read back from a model file need not be bit-identical)."""
    times = np.asarray(times, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    index = np.argmin(np.abs(times[:, None] - reference[None, :]), axis=1)
    return np.asarray(grid, dtype=np.float64)[index]


def config_grid(config: dict, temperatures: list[float]) -> np.ndarray:
    """The common label-time grid of ``temperatures`` (see common_grid), from the config alone."""
    grids = {float(T): cfg.label_times(config, T) for T in temperatures}
    estimates = {float(T): cfg.tau_alpha_estimate(config, T) for T in grids}
    return common_grid(grids, time_basis(config), estimates, nominal_times(config), config["engine"]["dt"])


# ----------------------------------------------------------------------------- report
def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, label, test temperature, time): the transfer model's and the in-temperature
    model's mean ± s.e.m. over test configurations of the per-configuration Pearson (A particles), and the
    noise ceiling. Columns: model, label, trained_at, temperature, time, time_unit, time_tau,
    transfer_mean, transfer_sem, in_temperature_mean, in_temperature_sem, noise_ceiling, n_configurations."""
    a = metrics[(metrics["type"] == "A") & (metrics["scope"] == "configuration")]
    keys = ["run", "model", "label", "temperature", "time"]
    stats = a.groupby([*keys, "scheme"])["pearson"].agg(["mean", "sem", "count"]).unstack("scheme")
    out = pd.DataFrame(index=stats.index)
    for scheme in (TRANSFER, IN_TEMPERATURE):
        out[f"{scheme}_mean"] = stats[("mean", scheme)]
        out[f"{scheme}_sem"] = stats[("sem", scheme)]
    out["n_configurations"] = stats[("count", TRANSFER)].astype(int)
    extra = a[a["scheme"] == TRANSFER].drop_duplicates(keys).set_index(keys)
    for column in ("trained_at", "time_unit", "time_tau", "noise_ceiling"):
        out[column] = extra[column]
    columns = ["trained_at", "time_unit", "time_tau", "transfer_mean", "transfer_sem", "in_temperature_mean"]
    columns += ["in_temperature_sem", "noise_ceiling", "n_configurations"]
    return out[columns].reset_index()


def _pm(mean, sem) -> str:
    if mean != mean:
        return "n/a"
    return format_mean_sem(mean, sem)


def headline_lines(table: pd.DataFrame, tau_alpha: dict[float, float] | None = None) -> list[str]:
    """One sentence per (run, test temperature), at the label time nearest tau_alpha: 1 tau_alpha on a
    tau_alpha grid; else the measured tau_alpha of the test temperature (``tau_alpha``), else the last time.
    'ridge: trained on 0.7, 0.8 -> tested on 0.6 at t = 1 tau_alpha (30 tau): r = ... vs in-temperature
    r = ... vs noise ceiling ...'."""
    lines = []
    for (run, T), group in table.groupby(["run", "temperature"], sort=True):
        group = group.sort_values("time")
        if group["time_unit"].iloc[0] == "tau_alpha":
            target = 1.0
        else:
            target = (tau_alpha or {}).get(float(T)) or float(group["time"].max())
        row = group.iloc[int(np.argmin(np.abs(np.log(group["time"].to_numpy()) - np.log(target))))]
        when = (
            f"t = {row['time']:g} tau_alpha ({row['time_tau']:.3g} tau)"
            if row["time_unit"] == "tau_alpha"
            else f"t = {row['time']:g} tau"
        )
        ceiling = f"{row['noise_ceiling']:.3f}" if row["noise_ceiling"] == row["noise_ceiling"] else "n/a"
        lines.append(
            f"- {run}: trained on {row['trained_at']} -> tested on {T:g} at {when}: "
            f"r = {_pm(row['transfer_mean'], row['transfer_sem'])} vs in-temperature "
            f"r = {_pm(row['in_temperature_mean'], row['in_temperature_sem'])} vs noise ceiling {ceiling} "
            f"({int(row['n_configurations'])} test configuration(s))"
        )
    return lines


def markdown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The report's transfer table: text cells (mean ± s.e.m.) per run, test temperature and time."""
    out = table[["run", "trained_at", "temperature", "time", "time_unit", "time_tau"]].copy()
    out = out.rename(columns={"temperature": "tested_at"})
    out["transfer r"] = [_pm(m, s) for m, s in zip(table["transfer_mean"], table["transfer_sem"], strict=True)]
    out["in-temperature r"] = [
        _pm(m, s) for m, s in zip(table["in_temperature_mean"], table["in_temperature_sem"], strict=True)
    ]
    out["noise ceiling"] = table["noise_ceiling"].map(lambda v: f"{v:.3f}" if v == v else "n/a")
    return out
