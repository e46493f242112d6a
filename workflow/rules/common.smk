# Helpers shared by the workflow files: stage settings, wildcard paths, split inputs.


def settings(stage):
    """The config sections `stage` reads, as canonical JSON; a param of each job, so edits trigger reruns.
    Simulation stages also get their temperature's tau_alpha estimate."""
    if stage in ("equilibrate", "isoconf"):
        return lambda w: gp.stage_settings_json(config, stage, float(w.T))
    return gp.stage_settings_json(config, stage)


def T_dir(w=None):
    return "T{T}" if w is None else f"T{w.T}"


def results_dir(wildcards, output):
    """The results directory, inferred from the job's first output (no shared-filesystem assumption)."""
    return str(Layout.root_of(output[0]))


def split_inputs(split):
    """Configurations, labels and descriptors of one split, for the temperature wildcard."""

    def inputs(w):
        paths = []
        for c in SPLITS[split]:
            paths += [L.equilibrated(T_dir(w), c), L.labels(T_dir(w), c), L.structure(T_dir(w), c)]
        return paths

    return inputs
