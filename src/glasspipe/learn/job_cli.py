"""Command-line plumbing shared by the model-run jobs of the transfer and learning-curve stages.

A job's settings come as JSON (``--settings``, what the Snakefile passes: a Snakemake param, so that editing
them reruns the job) or are built from a config file (``--config``, for running one job by hand).
"""

from __future__ import annotations

import json

from glasspipe import config as cfg


def settings_json(settings: dict) -> str:
    """Canonical JSON of a job's settings (the Snakemake param; the CLI reads it with settings_from_json)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def nested(settings: dict) -> dict:
    """Settings with dotted keys ('isoconf.times') expanded into sections, as the stages read them."""
    if any("." in key for key in settings):
        return cfg.settings_from_json(json.dumps(settings))
    return settings


def job_settings(args, build, runs_of, kind: str = "transfer") -> dict:
    """The settings of one job of the CLI: ``--settings`` JSON, or ``build(config, model)`` of ``--config``.

    ``runs_of(config)`` lists the model runs the config holds for this kind of job (e.g. the transfer runs);
    a model outside it is refused, naming the config file.
    """
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


def layout_from_args(args):
    """The results layout of a job: ``--results-dir``, else the config's results_dir, else 'results'."""
    from glasspipe.layout import Layout

    if args.results_dir is not None:
        return Layout(args.results_dir)
    return Layout(cfg.load_config(args.config)["results_dir"] if args.config else "results")


def add_job_parser(sub, name: str, func, text: str):
    """A CLI subcommand of one model-run job: --settings JSON or --config FILE, --results-dir, --model,
    --threads (read by :func:`job_settings` and :func:`layout_from_args`); returns the parser for more."""
    parser = sub.add_parser(name, help=text, description=text)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the job's settings as JSON (what the Snakefile passes)")
    source.add_argument("--config", help="a glasspipe config file to take the settings from")
    parser.add_argument("--results-dir", help="results directory (default: the config's results_dir)")
    parser.add_argument("--model", required=True, help="a model run ('ridge', 'ridge.bond_breaking')")
    parser.add_argument("--threads", type=int, help="CPU threads of torch")
    parser.set_defaults(func=func)
    return parser
