# A public dataset as the source: each file becomes a configuration, its inherent structure and its labels,
# in the same files the simulation stages write (init, equilibrate, isoconf and labels do not run).

SOURCE_FILES = [str(p) for p in gp.source_files(config)]


rule import_source:
    input:
        dataset=lambda w: SOURCE_FILES[int(w.c)],
    output:
        configuration=L.equilibrated(T_dir(), "{c}"),
        inherent=L.inherent(T_dir(), "{c}"),
        labels=L.labels(T_dir(), "{c}"),
    params:
        results=results_dir,
        settings=settings("import"),
    threads: config["engine"]["threads"]
    log:
        L.log("import", T_dir(), "{c}"),
    benchmark:
        L.benchmark("import", T_dir(), "{c}")
    conda:
        f"../../{SIM_ENV}"
    shell:
        "glasspipe import-source --settings {params.settings:q} --results-dir {params.results:q}"
        " --threads {threads} --temperature {wildcards.T} --configuration {wildcards.c}"
        " --file {input.dataset:q} 2> {log:q}"
