# Learning: one training job per (model, temperature) on the train split, evaluation on the test split.


rule train_ridge:
    input:
        train=split_inputs("train"),
        validation=split_inputs("validation"),
    output:
        [L.model_dir(T_dir(), "ridge") / name for name in MODEL_FILES["ridge"]],
    params:
        results=results_dir,
        settings=settings("train_ridge"),
    log:
        L.log("train", T_dir(), model="ridge"),
    benchmark:
        L.benchmark("train", T_dir(), model="ridge")
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe train --model ridge --settings {params.settings:q} --results-dir {params.results:q}"
        " --temperature {wildcards.T} 2> {log:q}"


rule train_bapst:
    input:
        train=split_inputs("train"),
        validation=split_inputs("validation"),
    output:
        [L.model_dir(T_dir(), "bapst") / name for name in MODEL_FILES["bapst"]],
    params:
        results=results_dir,
        settings=settings("train_bapst"),
    threads: 2
    resources:
        gpu=1,
    log:
        L.log("train", T_dir(), model="bapst"),
    benchmark:
        L.benchmark("train", T_dir(), model="bapst")
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe train --model bapst --settings {params.settings:q} --results-dir {params.results:q} --threads {threads}"
        " --temperature {wildcards.T} 2> {log:q}"


rule evaluate:
    input:
        model=lambda w: [L.model_dir(T_dir(w), w.model) / name for name in MODEL_FILES[w.model]],
        test=split_inputs("test"),
    output:
        predictions=L.predictions(T_dir(), "{model}"),
        metrics=L.metrics(T_dir(), "{model}"),
    params:
        results=results_dir,
        settings=settings("evaluate"),
    log:
        L.log("evaluate", T_dir(), model="{model}"),
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe evaluate --model {wildcards.model} --settings {params.settings:q}"
        " --results-dir {params.results:q} --temperature {wildcards.T} > /dev/null 2> {log:q}"
