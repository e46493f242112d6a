# glasspipe: from a Kob-Andersen glass former to graph networks that predict its dynamics.
#
#   init -> equilibrate -> isoconf -> labels --\
#                     \--> structure ----------+-> train (per model and fold) -> evaluate -> report
#
# With a public dataset as 'source', import_source replaces init, equilibrate, isoconf and labels.
#
# Rules are thin: each calls one `glasspipe` subcommand (src/glasspipe/cli.py -> src/glasspipe/stages/).
# A rule receives, as a parameter, exactly the config sections its numbers depend on
# (glasspipe.config.STAGE_SECTIONS), so changing a setting reruns only the stages downstream of it.

import json
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

import glasspipe.plugins_all  # fills the registries: models, labels, descriptor sets, dataset formats
import glasspipe.config as gp
from glasspipe.layout import Layout
from glasspipe.plugins import MODELS as MODEL_SPECS
from glasspipe.targets import report_inputs, report_outputs

min_version("8.0")

# The global description of `snakemake --report results/report.html`; each item's caption is in
# workflow/report/ too (see workflow/rules/report.smk).


report: "workflow/report/workflow.rst"


# The conda environments in envs/ pip-install glasspipe from here (see envs/hoomd.yaml).
os.environ.setdefault("GLASSPIPE_ROOT", workflow.basedir)


# The demo config, unless --configfile names another: a config given on the command line replaces it rather
# than extending it, so that e.g. the BOTAN config does not inherit the demo's n_configurations or models.
# Snakemake's own message for a broken YAML file does not say which file; this one does (a broken
# --configfile is read by Snakemake before this file runs: `glasspipe validate FILE` names its line).
if not workflow.overwrite_configfiles:
    try:

        configfile: "config.yaml"

    except WorkflowError as err:
        raise WorkflowError(f"config file {os.path.abspath('config.yaml')}: {err}") from None


# Refuse a bad config before any job runs, naming the key, and fill the schema's defaults
# (workflow/schemas/config.schema.yaml, with the descriptor sets' settings from their registry).
try:
    _resolved = gp.validate_config(config)
except gp.ConfigError as err:
    raise ValueError(str(err)) from None
config.update(_resolved)

RESULTS = config["results_dir"]
L = Layout(RESULTS)
TEMPERATURES = [f"{T:g}" for T in config["temperatures"]]
CONFIGURATIONS = [f"{c:03d}" for c in range(config["n_configurations"])]
REPLICAS = [f"{r:02d}" for r in range(config["isoconf"]["n_replicas"])]
MODELS = gp.model_runs(config)  # one per enabled model and label it learns: ridge, ridge.bond_breaking
PLAN = gp.split_plan(config)
FOLDS = [str(k) for k in range(len(PLAN))]
IMPORTED = gp.is_imported(config)
SIM_ENV = "envs/hoomd.yaml" if config["engine"]["name"] == "hoomd" else "envs/glasspipe.yaml"


wildcard_constraints:
    T=r"[0-9.]+(e-?[0-9]+)?",
    c=r"\d{3}",
    r=r"\d{2}",
    model="(?:" + "|".join(MODEL_SPECS) + r")(?:\.[A-Za-z0-9_]+)?",
    fold=r"\d+",


include: "workflow/rules/common.smk"
if IMPORTED:

    include: "workflow/rules/import.smk"

else:

    include: "workflow/rules/simulate.smk"
    include: "workflow/rules/labels.smk"


include: "workflow/rules/analyse.smk"
include: "workflow/rules/learn.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/learning_curve.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        list(report_outputs(config).values()),
    default_target: True
