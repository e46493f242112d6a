# Static descriptors per configuration, from the thermal configuration or its inherent structure.


rule structure:
    input:
        (L.inherent if config["structure"]["input"] == "inherent" else L.equilibrated)(T_dir(), "{c}"),
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
