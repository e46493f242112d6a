# Dynamical labels of simulated configurations, from their iso-configurational replicas.


rule labels:
    input:
        L.equilibrated(T_dir(), "{c}"),
        [L.replica(T_dir(), "{c}", r) for r in REPLICAS],
    output:
        L.labels(T_dir(), "{c}"),
    params:
        results=results_dir,
        settings=settings("labels"),
    log:
        L.log("labels", T_dir(), "{c}"),
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe labels --settings {params.settings:q} --results-dir {params.results:q}"
        " --temperature {wildcards.T} --configuration {wildcards.c} 2> {log:q}"
