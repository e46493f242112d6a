# Static descriptors per configuration, from the thermal configuration, its inherent structure, or both.


rule structure:
    input:
        [L.inherent(T_dir(), "{c}")] if config["structure"]["input"] != "thermal" else [],
        [L.equilibrated(T_dir(), "{c}")] if config["structure"]["input"] != "inherent" else [],
    output:
        L.structure(T_dir(), "{c}"),
    params:
        results=results_dir,
        settings=settings("structure"),
    log:
        L.log("structure", T_dir(), "{c}"),
    benchmark:
        L.benchmark("structure", T_dir(), "{c}")
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe structure --settings {params.settings:q} --results-dir {params.results:q}"
        " --temperature {wildcards.T} --configuration {wildcards.c} 2> {log:q}"
