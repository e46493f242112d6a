# Helpers shared by the workflow files: stage settings, wildcard paths, split inputs. Functions live here (or
# in the package), not beside rules, so that the rule files stay thin and `snakemake --lint` stays clean.

from types import SimpleNamespace


def settings(stage):
    """The config sections `stage` reads, as canonical JSON; a param of each job, so edits trigger reruns.
    Simulation stages also get their temperature's tau_alpha estimate."""
    if stage in ("equilibrate", "isoconf", "labels"):
        return lambda w: gp.stage_settings_json(config, stage, float(w.T))
    return gp.stage_settings_json(config, stage)


def T_dir(w=None):
    return "T{T}" if w is None else f"T{w.T}"


def results_dir(wildcards, output):
    """The results directory, inferred from the job's first output (no shared-filesystem assumption)."""
    return str(Layout.root_of(output[0]))


def model_inputs(w, configurations):
    """The files a model of wildcard ``w.model`` reads for ``configurations``: labels, positions (thermal or
    inherent, as the graph section says) for graph models, descriptors for descriptor models."""
    graph = MODEL_SPECS[gp.run_model(w.model)].inputs == "graph"
    positions = L.inherent if graph and config["graph"]["input"] == "inherent" else L.equilibrated
    both = graph and config["graph"]["input"] == "both"  # the thermal positions and the inherent structure
    paths = []
    for c in configurations:
        paths += [positions(T_dir(w), c), L.labels(T_dir(w), c)]
        if both:
            paths.append(L.inherent(T_dir(w), c))
        if not graph:
            paths.append(L.structure(T_dir(w), c))
    return paths


def transfer_inputs(w, temperatures, splits):
    """Files the transfer jobs of run ``w.model`` read: every configuration of ``splits`` at ``temperatures``
    (the first fold's split: transfer trains one model per run, glasspipe.learn.transfer)."""
    configurations = [c for split in splits for c in PLAN[0][split]]
    paths = []
    for T in temperatures:
        paths += model_inputs(SimpleNamespace(T=f"{T:g}", model=w.model), configurations)
    return paths


def model_threads(w):
    """Threads of a training job of run ``w.model``: its model's setting ``models.<model>.threads`` (default
    from the registry)."""
    return int(config["models"][gp.run_model(w.model)]["threads"])


def model_gpu(w):
    """GPUs (0 or 1) of a training job of run ``w.model``: one for graph models (registry), unless the config
    pins the model to the CPU (device: cpu)."""
    model = gp.run_model(w.model)
    return int(MODEL_SPECS[model].gpu and config["models"][model].get("device", "auto") != "cpu")
