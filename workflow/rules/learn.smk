# Learning: one training job per (model, temperature, fold), one evaluation per (model, temperature) over
# the test configurations of every fold and, apart, its validation configurations (where settings are
# compared). Models and what they read come from glasspipe.learn.registry.


rule train:
    input:
        lambda w: model_inputs(w, PLAN[int(w.fold)]["train"] + PLAN[int(w.fold)]["validation"]),
    output:
        L.train_log(T_dir(), "{model}", "{fold}"),
    params:
        results=results_dir,
        settings=lambda w: gp.stage_settings_json(config, f"train_{w.model}"),
    threads: model_threads
    resources:
        gpu=model_gpu,
    log:
        L.log("train", T_dir(), model="{model}_fold{fold}"),
    benchmark:
        L.benchmark("train", T_dir(), model="{model}_fold{fold}")
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe train --model {wildcards.model} --fold {wildcards.fold} --settings {params.settings:q}"
        " --results-dir {params.results:q} --threads {threads} --temperature {wildcards.T} 2> {log:q}"


rule evaluate:
    input:
        models=lambda w: [L.train_log(T_dir(w), w.model, k) for k in FOLDS],
        test=lambda w: model_inputs(w, sorted({c for fold in PLAN for c in fold["test"] + fold["validation"]})),
    output:
        predictions=L.predictions(T_dir(), "{model}"),
        metrics=L.metrics(T_dir(), "{model}"),
        validation=L.validation_metrics(T_dir(), "{model}"),
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
