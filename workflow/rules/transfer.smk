# Transfer across temperatures (config section 'transfer'; glasspipe.learn.transfer, stages: glasspipe.stages.transfer): one model per run
# trained on the pooled train/validation configurations of the transfer.train temperatures, then tested on
# the test configurations of each transfer.test temperature beside the model trained there itself.

import glasspipe.learn.transfer as gp_transfer
from glasspipe.stages.common import settings_json as gp_settings_json

TRANSFER_RUNS = gp_transfer.runs(config)


rule transfer_train:
    input:
        lambda w: transfer_inputs(w, config["transfer"]["train"], ("train", "validation")),
    output:
        L.transfer_train_log("{model}"),
    params:
        results=results_dir,
        settings=lambda w: gp_settings_json(gp_transfer.train_settings(config, w.model)),
    threads: model_threads
    resources:
        gpu=model_gpu,
    log:
        L.root / "logs" / "transfer_train" / "{model}.log",
    benchmark:
        L.root / "benchmarks" / "transfer_train" / "{model}.tsv"
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe transfer-train --model {wildcards.model} --settings {params.settings:q}"
        " --results-dir {params.results:q} --threads {threads} 2> {log:q}"


rule transfer_evaluate:
    input:
        model=L.transfer_train_log("{model}"),
        own=lambda w: [L.train_log(f"T{T:g}", w.model, 0) for T in config["transfer"]["test"]],
        test=lambda w: transfer_inputs(w, config["transfer"]["test"], ("test",)),
        ceilings=lambda w: [L.label_ceilings(f"T{T:g}", c) for T in config["transfer"]["test"] for c in PLAN[0]["test"]],
    output:
        predictions=L.transfer_predictions("{model}"),
        metrics=L.transfer_metrics("{model}"),
    params:
        results=results_dir,
        settings=lambda w: gp_settings_json(gp_transfer.evaluate_settings(config, w.model)),
    log:
        L.root / "logs" / "transfer_evaluate" / "{model}.log",
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe transfer-evaluate --model {wildcards.model} --settings {params.settings:q}"
        " --results-dir {params.results:q} > /dev/null 2> {log:q}"
