# Learning: one training job per (model, temperature) on the train split, evaluation on the test split.


def split_inputs(split):
    """Configurations, labels and descriptors of one split, for the temperature wildcard."""

    def inputs(w):
        paths = []
        for c in SPLITS[split]:
            paths += [L.equilibrated(T_dir(w), c), L.labels(T_dir(w), c), L.structure(T_dir(w), c)]
        return paths

    return inputs


rule train_ridge:
    input:
        train=split_inputs("train"),
        validation=split_inputs("validation"),
    output:
        [L.model_dir(T_dir(), "ridge") / name for name in MODEL_FILES["ridge"]],
    params:
        settings=settings("train_ridge"),
    log:
        f"{RESULTS}/logs/train/T{{T}}_ridge.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/T{{T}}_ridge.tsv"
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe train --model ridge --settings {params.settings:q} --results-dir {RESULTS:q}"
        " --temperature {wildcards.T} 2> {log:q}"


rule train_bapst:
    input:
        train=split_inputs("train"),
        validation=split_inputs("validation"),
    output:
        [L.model_dir(T_dir(), "bapst") / name for name in MODEL_FILES["bapst"]],
    params:
        settings=settings("train_bapst"),
    threads: 2
    resources:
        gpu=1,
    log:
        f"{RESULTS}/logs/train/T{{T}}_bapst.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/T{{T}}_bapst.tsv"
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe train --model bapst --settings {params.settings:q} --results-dir {RESULTS:q}"
        " --temperature {wildcards.T} 2> {log:q}"


rule evaluate:
    input:
        model=lambda w: [L.model_dir(T_dir(w), w.model) / name for name in MODEL_FILES[w.model]],
        test=split_inputs("test"),
    output:
        predictions=L.predictions(T_dir(), "{model}"),
        metrics=L.metrics(T_dir(), "{model}"),
    params:
        settings=settings("evaluate"),
    log:
        f"{RESULTS}/logs/evaluate/T{{T}}_{{model}}.log",
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe evaluate --model {wildcards.model} --settings {params.settings:q}"
        " --results-dir {RESULTS:q} --temperature {wildcards.T} > /dev/null 2> {log:q}"
