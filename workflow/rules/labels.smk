# Dynamical labels of simulated configurations, from their iso-configurational replicas
# (glasspipe.stages.labels, glasspipe.labels.compute: every label enabled in the config section 'labels').

DENSE_LABELS = bool(gp.dense_labels(config))  # labels on the dense window (the label registry says which)


rule labels:
    input:
        L.equilibrated(T_dir(), "{c}"),
        [L.replica(T_dir(), "{c}", r) for r in REPLICAS],
    output:
        labels=L.labels(T_dir(), "{c}"),
        ceilings=L.label_ceilings(T_dir(), "{c}"),
        # p_hop / CWT on the isoconf dense window, when a dense label is enabled.
        **({"dense": L.dense_labels(T_dir(), "{c}")} if DENSE_LABELS else {}),
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
