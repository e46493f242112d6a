# Learning curves (config section 'learning_curve'; glasspipe.learn.learning_curve, its jobs in
# glasspipe.stages.learning_curve): each run retrained on the first n training configurations of every
# fold, for each n of learning_curve.sizes; one evaluation per (run, temperature) over every fold's test configurations, the full model of the 'train' rule included.

import glasspipe.learn.learning_curve as gp_curve
from glasspipe.stages.common import settings_json as gp_settings_json

CURVE_SIZES = gp_curve.sizes(config)


rule learning_curve_train:
    input:
        lambda w: model_inputs(w, PLAN[int(w.fold)]["train"][: int(w.n)] + PLAN[int(w.fold)]["validation"]),
    output:
        L.learning_curve_train_log(T_dir(), "{model}", "{n}", "{fold}"),
    params:
        results=results_dir,
        settings=lambda w: gp.stage_settings_json(config, f"train_{w.model}"),
    wildcard_constraints:
        n=r"\d+",
    threads: model_threads
    resources:
        gpu=model_gpu,
    log:
        L.log("learning_curve_train", T_dir(), model="{model}_n{n}_fold{fold}"),
    benchmark:
        L.benchmark("learning_curve_train", T_dir(), model="{model}_n{n}_fold{fold}")
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe learning-curve-train --model {wildcards.model} --size {wildcards.n} --fold {wildcards.fold}"
        " --settings {params.settings:q} --results-dir {params.results:q} --threads {threads}"
        " --temperature {wildcards.T} 2> {log:q}"


rule learning_curve_evaluate:
    input:
        curve=lambda w: [L.learning_curve_train_log(T_dir(w), w.model, n, k) for n in CURVE_SIZES for k in FOLDS],
        full=lambda w: [L.train_log(T_dir(w), w.model, k) for k in FOLDS],
        test=lambda w: model_inputs(w, [c for fold in PLAN for c in fold["test"]]),
    output:
        L.learning_curve_metrics(T_dir(), "{model}"),
    params:
        results=results_dir,
        settings=lambda w: gp_settings_json(gp_curve.evaluate_settings(config, w.model)),
    log:
        L.log("learning_curve_evaluate", T_dir(), model="{model}"),
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe learning-curve-evaluate --model {wildcards.model} --settings {params.settings:q}"
        " --results-dir {params.results:q} --temperature {wildcards.T} > /dev/null 2> {log:q}"
