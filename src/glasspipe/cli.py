"""The ``glasspipe`` command line: one subcommand per pipeline stage, plus utilities.

Stage subcommands take the stage's settings either as the JSON the Snakefile passes (``--settings``) or
from a config file (``--config config.yaml``), and find their inputs and outputs in the results directory
through glasspipe.layout, exactly as the Snakefile declares them; each calls its stage in
glasspipe.stages. Examples:

    glasspipe validate config.yaml
    glasspipe download botan
    glasspipe equilibrate --config config.yaml --temperature 0.7 --configuration 0
    glasspipe energy results/T0.7/equilibrate/cfg000.gsd --engine lammps
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import glasspipe.plugins_all  # noqa: F401  (fills the registries every config is validated against)
from glasspipe import __version__
from glasspipe import config as cfg
from glasspipe.layout import Layout


def _settings(args, stage: str) -> dict:
    if args.settings is not None:
        settings = cfg.settings_from_json(args.settings)
    elif args.config is not None:
        config = cfg.load_config(args.config)
        settings = cfg.settings_from_json(cfg.stage_settings_json(config, stage, getattr(args, "temperature", None)))
    else:
        raise SystemExit(f"glasspipe {stage}: give --settings JSON or --config FILE")
    settings = cfg.fill_defaults(settings)
    threads = getattr(args, "threads", None)
    if threads:
        if "engine" in settings:
            settings["engine"]["threads"] = threads
        if stage.startswith("train"):
            import torch

            torch.set_num_threads(threads)
    return settings


def _layout(args) -> Layout:
    if args.results_dir is not None:
        return Layout(args.results_dir)
    if args.config is not None:
        return Layout(cfg.load_config(args.config)["results_dir"])
    return Layout("results")


def _stage_parser(sub, name: str, help_text: str, per_configuration: bool = True, model: bool = False):
    parser = sub.add_parser(name, help=help_text, description=help_text)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the stage's settings as JSON (what the Snakefile passes)")
    source.add_argument("--config", help="a glasspipe config file to take the settings from")
    parser.add_argument("--results-dir", help="results directory (default: the config's results_dir)")
    parser.add_argument("--temperature", type=float, required=True, help="temperature T (eps_AA / k_B)")
    if per_configuration:
        parser.add_argument("--configuration", type=int, required=True, help="configuration index")
    if model:
        parser.add_argument(
            "--model",
            required=True,
            type=_run_name,
            help=f"a model ({', '.join(cfg.model_names())}) or a run '<model>.<label>' (models.<model>.target)",
        )
    parser.add_argument("--threads", type=int, help="CPU threads (overrides engine.threads; Snakemake passes its own)")
    return parser


def _run_name(value: str) -> str:
    """A registered model, optionally '.<label>' for a further target of it (glasspipe.config.model_runs)."""
    model, dot, label = value.partition(".")
    if model not in cfg.model_names() or (dot and not label.replace("_", "").isalnum()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a model ({', '.join(cfg.model_names())}) or a run '<model>.<label>'"
        )
    return value


def _cmd_init(args):
    from glasspipe import stages

    layout = _layout(args)
    stages.init(
        _settings(args, "init"),
        args.temperature,
        args.configuration,
        layout.init(args.temperature, args.configuration),
    )


def _cmd_equilibrate(args):
    from glasspipe import stages

    layout = _layout(args)
    T, c = args.temperature, args.configuration
    summary = stages.equilibrate(
        _settings(args, "equilibrate"),
        T,
        c,
        layout.init(T, c),
        layout.equilibrated(T, c),
        layout.thermo(T, c),
        layout.checks(T, c),
        inherent_output=layout.inherent(T, c),
        checkpoint_dir=layout.checkpoint_dir("equilibrate", T, c),
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "checks"}, indent=2))


def _replica_paths(layout: Layout, settings: dict, T: float, c: int) -> list[Path]:
    """The GSD files of configuration c's replicas (settings as returned by _settings, defaults filled)."""
    return [layout.replica(T, c, r) for r in range(settings["isoconf"]["n_replicas"])]


def _cmd_isoconf(args):
    from glasspipe import stages

    layout = _layout(args)
    settings = _settings(args, "isoconf")
    T, c = args.temperature, args.configuration
    outputs = _replica_paths(layout, settings, T, c)
    stages.isoconf(
        settings,
        T,
        c,
        layout.equilibrated(T, c),
        outputs,
        checkpoint_dir=layout.checkpoint_dir("isoconf", T, c),
    )


def _cmd_labels(args):
    from glasspipe import stages

    layout = _layout(args)
    settings = _settings(args, "labels")
    T, c = args.temperature, args.configuration
    replicas = _replica_paths(layout, settings, T, c)
    stages.labels(
        settings,
        T,
        c,
        layout.equilibrated(T, c),
        replicas,
        layout.labels(T, c),
        dense_output=layout.dense_labels(T, c),
        ceilings_output=layout.label_ceilings(T, c),
    )


def _cmd_import_source(args):
    from glasspipe import stages

    layout = _layout(args)
    settings = _settings(args, "import")
    if args.file is None:  # by hand: the config's own list of dataset files
        args.file = cfg.source_files(cfg.load_config(args.config))[args.configuration]
    stages.import_configuration(settings, Path(args.file), args.temperature, args.configuration, layout)


def _cmd_structure(args):
    from glasspipe import stages

    layout = _layout(args)
    T, c = args.temperature, args.configuration
    settings = _settings(args, "structure")
    kind = settings["structure"]["input"]
    source = layout.inherent(T, c) if kind == "inherent" else layout.equilibrated(T, c)
    stages.structure(
        settings, source, layout.structure(T, c), inherent=layout.inherent(T, c) if kind == "both" else None
    )


def _cmd_train(args):
    from glasspipe import stages

    settings = _settings(args, f"train_{args.model}")
    stages.train(settings, args.model, args.temperature, args.fold, _layout(args))


def _cmd_evaluate(args):
    from glasspipe import stages

    settings = _settings(args, "evaluate")
    metrics = stages.evaluate(settings, args.model, args.temperature, _layout(args))
    table = metrics[(metrics["scope"] == "configuration") & (metrics["type"] == "A")]
    print(table.groupby("time")["pearson"].agg(["mean", "sem", "count"]).to_string())


def _cmd_report(args):
    from glasspipe import stages

    config = cfg.load_config(args.config) if args.config else cfg.validate_config(json.loads(args.settings))
    stages.report(config)


# --- the model-run jobs of the transfer and learning-curve stages ----------------------------------------
# A job's settings come as JSON (``--settings``, what the Snakefile passes: a Snakemake param, so that editing
# them reruns the job) or are built from a config file (``--config``, for running one job by hand).
def _job_settings(args, build, runs_of, kind: str = "transfer") -> dict:
    """The settings of one job of the CLI: ``--settings`` JSON, or ``build(config, model)`` of ``--config``.

    ``runs_of(config)`` lists the model runs the config holds for this kind of job (e.g. the transfer runs);
    a model outside it is refused, naming the config file.
    """
    from glasspipe.stages.common import settings_json

    if args.settings is not None:
        settings = cfg.settings_from_json(args.settings)
    elif args.config is not None:
        config = cfg.load_config(args.config)
        if args.model not in runs_of(config):
            raise cfg.ConfigError(f"{args.model!r} is not a {kind} run of {args.config}: {runs_of(config)}")
        settings = cfg.settings_from_json(settings_json(build(config, args.model)))
    else:
        raise SystemExit("give --settings JSON or --config FILE")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return cfg.fill_defaults(settings)


def _job_parser(sub, name: str, func, text: str):
    """A CLI subcommand of one model-run job: --settings JSON or --config FILE, --results-dir, --model,
    --threads (read by :func:`_job_settings` and :func:`_layout`); returns the parser for more."""
    parser = sub.add_parser(name, help=text, description=text)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the job's settings as JSON (what the Snakefile passes)")
    source.add_argument("--config", help="a glasspipe config file to take the settings from")
    parser.add_argument("--results-dir", help="results directory (default: the config's results_dir)")
    parser.add_argument("--model", required=True, help="a model run ('ridge', 'ridge.bond_breaking')")
    parser.add_argument("--threads", type=int, help="CPU threads of torch")
    parser.set_defaults(func=func)
    return parser


def _cmd_transfer_train(args) -> None:
    from glasspipe.learn import transfer
    from glasspipe.stages import transfer as stage

    stage.train(_job_settings(args, transfer.train_settings, transfer.runs), args.model, _layout(args))


def _cmd_transfer_evaluate(args) -> None:
    from glasspipe.learn import transfer
    from glasspipe.stages import transfer as stage

    metrics = stage.evaluate(_job_settings(args, transfer.evaluate_settings, transfer.runs), args.model, _layout(args))
    print(transfer.markdown_table(transfer.summary_table(metrics)).to_string(index=False))


def _cmd_learning_curve_train(args) -> None:
    from glasspipe.learn import learning_curve
    from glasspipe.stages import learning_curve as stage

    settings = _job_settings(args, learning_curve.train_settings, learning_curve.runs, "learning-curve")
    stage.train(settings, args.model, args.temperature, args.size, args.fold, _layout(args))


def _cmd_learning_curve_evaluate(args) -> None:
    from glasspipe.learn import learning_curve
    from glasspipe.stages import learning_curve as stage

    settings = _job_settings(args, learning_curve.evaluate_settings, learning_curve.runs, "learning-curve")
    metrics = stage.evaluate(settings, args.model, args.temperature, _layout(args))
    table = learning_curve.curve_table(metrics)
    print(table.pivot_table(index="time", columns="n_train", values="mean_pearson").to_string())


def _add_job_parsers(sub) -> None:
    """The subcommands transfer-train, transfer-evaluate, learning-curve-train and learning-curve-evaluate."""
    for name, func, text in (
        (
            "transfer-train",
            _cmd_transfer_train,
            "train a model on the pooled configurations of the transfer.train temperatures",
        ),
        (
            "transfer-evaluate",
            _cmd_transfer_evaluate,
            "test the transfer model and the in-temperature model at transfer.test",
        ),
    ):
        _job_parser(sub, name, func, text)
    for name, func, text in (
        (
            "learning-curve-train",
            _cmd_learning_curve_train,
            "train a model on the first n training configurations of a fold",
        ),
        ("learning-curve-evaluate", _cmd_learning_curve_evaluate, "test the learning-curve models and the full model"),
    ):
        parser = _job_parser(sub, name, func, text)
        parser.add_argument("--temperature", type=float, required=True, help="temperature T (eps_AA / k_B)")
        if name.endswith("train"):
            parser.add_argument("--size", type=int, required=True, help="number n of training configurations")
            parser.add_argument("--fold", type=int, default=0, help="cross-validation fold")


def _cmd_schema(args):
    import yaml

    print(yaml.safe_dump(cfg.schema(), sort_keys=False, width=110), end="")


def _cmd_validate(args):
    config = cfg.load_config(args.config_file)
    print(f"{args.config_file}: valid; box length {cfg.box_length(config):.5f}")
    if cfg.is_imported(config):
        plan = cfg.split_plan(config)
        print(f"  {config['n_configurations']} {config['source']['format']} files; {len(plan)} fold(s):")
        for k, fold in enumerate(plan):
            print(f"    fold {k}: " + "; ".join(f"{name} {ids}" for name, ids in fold.items()))
        return
    for T in config["temperatures"]:
        times = [float(f"{t:.6g}") for t in cfg.label_times(config, T)]
        print(f"  T = {T:g}: label times (tau) {times}")


def _cmd_energy(args):
    from glasspipe.energy import energy_report

    report = energy_report(args.file, frame=args.frame, engine=args.engine, cutoff_mode=args.cutoff_mode)
    print(json.dumps(report, indent=2))


def _cmd_import(args):
    from glasspipe import importers

    source = Path(args.path)
    files = importers.list_files(args.format, source) if source.is_dir() else [source]
    if not files:
        raise ValueError(f"no {args.format} files ({importers.FORMATS[args.format].pattern}) in {source}")
    options = {"temperature": args.temperature, "box_length": args.box_length}
    if args.time and args.format == "botan":
        if len(args.time) != 1:
            raise ValueError(f"a BOTAN file holds labels at one time; --time got {args.time}")
        options["time"] = args.time[0]
    elif args.time:
        options["times"] = args.time
    out = Path(args.out)
    for path in files:
        imported = importers.load(args.format, path, **options)
        stem = path.name.rsplit(".", 1)[0]
        importers.write_imported(
            imported,
            out / f"{stem}.gsd",
            out / f"{stem}.labels.parquet",
            out / f"{stem}.inherent.gsd" if imported.inherent is not None else None,
        )
        times = [float(t) for t in imported.times]
        print(f"{path} -> {out / stem}.gsd, {stem}.labels.parquet (T = {imported.temperature:g}, times {times})")


def _cmd_download(args):
    from glasspipe import datasets

    installed = datasets.download(args.name, dest=args.dest, from_dir=args.from_dir)
    how = f"copied from {args.from_dir}" if args.from_dir else "downloaded"
    for name, paths in installed.items():
        item = datasets.DATASETS[name]
        print(f"{name}: {len(paths)} file(s) {how}, sha256 verified, in {datasets.dataset_dir(name, args.dest)}")
        # The config form that finds these files (source.cache only where --dest moved them).
        cache = f", cache: {Path(args.dest).resolve()}" if args.dest is not None else ""
        print(f"  use it in a config as  source: {{format: {item.format}, dataset: {name}{cache}}}")


def _cmd_verify(args):
    from glasspipe import artifact

    result = artifact.verify(args.results_dir)
    for line in result.lines():
        print(line, file=sys.stdout if result.ok else sys.stderr)
    if not result.ok:
        raise SystemExit(1)


def _cmd_archive(args):
    from glasspipe import artifact

    names = artifact.archive(args.results_dir, args.out, without_replicas=args.without_replicas)
    print(f"{args.out}: {len(names)} files" + (" (replica trajectories left out)" if args.without_replicas else ""))


def _cmd_compare_runs(args):
    from glasspipe.report.compare import paired_validation_differences

    table = paired_validation_differences(args.results_a, args.results_b, runs=args.runs or None)
    print(
        f"Validation Pearson (A particles), paired by (fold, configuration): A = {args.results_a}, "
        f"B = {args.results_b}; resolved: |A - B| > its s.e.m."
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


def _add_artifact_parsers(sub) -> None:
    """``glasspipe verify`` and ``glasspipe archive`` (glasspipe.artifact)."""
    text = (
        "compare two results directories made with different settings on their validation configurations: per "
        "model and label time, the paired difference (mean ± s.e.m.) of the A particles' Pearson, A - B"
    )
    p = sub.add_parser("compare-runs", help=text, description=text)
    p.add_argument("results_a")
    p.add_argument("results_b")
    p.add_argument("--runs", nargs="*", help="model runs to compare (default: every one both hold)")
    p.add_argument("--out", help="also write the table as CSV here")
    p.set_defaults(func=_cmd_compare_runs)

    p = sub.add_parser(
        "verify",
        help="check a results directory against its MANIFEST.sha256 and its RO-Crate (ro-crate-metadata.json): "
        "name every missing, altered or extra file",
    )
    p.add_argument("results_dir", help="the results directory (holding MANIFEST.sha256)")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser(
        "archive", help="pack a verified results directory into a reproducible .tar.gz with its manifest and citation"
    )
    p.add_argument("results_dir", help="the results directory (holding MANIFEST.sha256)")
    p.add_argument("out", help="the archive to write (.tar.gz)")
    p.add_argument(
        "--without-replicas",
        action="store_true",
        help="leave out the replica trajectories (T*/isoconf/*/replica*.gsd); the manifest marks them excluded",
    )
    p.set_defaults(func=_cmd_archive)


def _add_download_parser(sub) -> None:
    """``glasspipe download`` (glasspipe.datasets): fetch or copy a registered dataset, verified by sha256."""
    from glasspipe import datasets

    names = [*datasets.groups(), *datasets.DATASETS]
    listing = "; ".join(f"{item.name} ({item.group}): {item.description}" for item in datasets.DATASETS.values())
    p = sub.add_parser(
        "download",
        help="fetch a public dataset that configs name (source.dataset), verify each file's sha256 and install it",
        description=f"Datasets: {listing}. Installed into DEST/<dataset>/, DEST defaulting to "
        f"{datasets.default_root()} ($GLASSPIPE_CACHE/datasets, else $XDG_CACHE_HOME/glasspipe/datasets, else "
        "~/.cache/glasspipe/datasets).",
    )
    p.add_argument("name", choices=names, help="a group (botan, deepmind: all its datasets) or one dataset")
    p.add_argument(
        "--dest", metavar="DIR", help="install under DIR instead of the cache (then give the config source.cache: DIR)"
    )
    p.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="offline: install from a local copy in DIR (or DIR/<dataset>/) after verifying every file's sha256",
    )
    p.set_defaults(func=_cmd_download)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glasspipe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"glasspipe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a config file against the schema and print derived values")
    p.add_argument("config_file")
    p.set_defaults(func=_cmd_validate)

    text = (
        "print the whole config schema (YAML): the schema file with every plugin's section merged in (each "
        "model's models.<name>, each label's labels.<name>, each descriptor set, the dataset formats)"
    )
    p = sub.add_parser("schema", help=text, description=text)
    p.set_defaults(func=_cmd_schema)

    _stage_parser(sub, "init", "write a seeded random configuration").set_defaults(func=_cmd_init)
    _stage_parser(sub, "equilibrate", "melt, cool and equilibrate one configuration").set_defaults(
        func=_cmd_equilibrate
    )
    _stage_parser(sub, "isoconf", "run the iso-configurational replicas of one configuration").set_defaults(
        func=_cmd_isoconf
    )
    _stage_parser(sub, "labels", "dynamical labels of one configuration").set_defaults(func=_cmd_labels)
    p = _stage_parser(
        sub, "import-source", "convert one configuration of the config's 'source' dataset into pipeline files"
    )
    p.add_argument("--file", help="the dataset file of this configuration (default: from the config's source)")
    p.set_defaults(func=_cmd_import_source)
    _stage_parser(sub, "structure", "descriptors of one configuration").set_defaults(func=_cmd_structure)
    p = _stage_parser(sub, "train", "train a model on one fold at one temperature", per_configuration=False, model=True)
    p.add_argument("--fold", type=int, default=0, help="cross-validation fold (0 when there is one test set)")
    p.set_defaults(func=_cmd_train)
    _stage_parser(
        sub,
        "evaluate",
        "evaluate a trained model on the test configurations",
        per_configuration=False,
        model=True,
    ).set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("report", help="figures, tables and the results README")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="the config file")
    source.add_argument("--settings", help="the whole resolved config as JSON (what the Snakefile passes)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "energy",
        help="potential energy per particle and pressure of a GSD frame, as JSON (T_kin, kinetic and total "
        "pressure are null when the frame stores no velocities)",
    )
    p.add_argument("file", help="GSD file")
    p.add_argument("--frame", type=int, default=-1, help="frame index (default: last)")
    p.add_argument(
        "--engine",
        default="lammps",
        choices=["lammps", "hoomd", "reference"],
        help="engine that evaluates the energy ('reference': glasspipe's numpy/freud evaluation)",
    )
    p.add_argument("--cutoff-mode", default="shift", choices=["shift", "truncate", "xplor"])
    p.set_defaults(func=_cmd_energy)

    p = sub.add_parser(
        "import",
        help="convert a public dataset file (or a directory of them) into a GSD configuration and Parquet labels",
    )
    p.add_argument("format", choices=["botan", "glassbench", "deepmind"], help="dataset format")
    p.add_argument("path", help="a dataset file, or a directory of them")
    p.add_argument("--out", required=True, help="output directory: STEM.gsd, STEM.labels.parquet, STEM.inherent.gsd")
    p.add_argument("--temperature", type=float, help="temperature (default: from the file or its name)")
    p.add_argument("--time", type=float, nargs="+", help="label time(s) in tau (default: the dataset's time grid)")
    p.add_argument("--box-length", type=float, help="box edge in sigma_AA (npz formats; default (N / 1.2)^(1/3))")
    p.set_defaults(func=_cmd_import)
    _add_artifact_parsers(sub)
    _add_download_parser(sub)
    _add_job_parsers(sub)  # transfer across temperatures and learning curves
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # glasspipe's own progress at INFO; libraries (gsd, freud) only when something is wrong.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("glasspipe").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        args.func(args)
    except (cfg.ConfigError, FileNotFoundError, ValueError) as err:  # artifact.ManifestError is a ValueError
        print(f"glasspipe {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from glasspipe.md.engine import EngineNotAvailable

        if isinstance(err, EngineNotAvailable):
            print(f"glasspipe {args.command}: error: {err}", file=sys.stderr)
            return 3
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
