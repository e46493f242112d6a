# Simulation: seeded start, equilibration with checks, iso-configurational NVE replicas.


rule init:
    output:
        L.init(T_dir(), "{c}"),
    params:
        results=results_dir,
        settings=settings("init"),
    log:
        L.log("init", T_dir(), "{c}"),
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe init --settings {params.settings:q} --results-dir {params.results:q}"
        " --temperature {wildcards.T} --configuration {wildcards.c} 2> {log:q}"


rule equilibrate:
    input:
        L.init(T_dir(), "{c}"),
    output:
        configuration=L.equilibrated(T_dir(), "{c}"),
        inherent=L.inherent(T_dir(), "{c}"),
        thermo=L.thermo(T_dir(), "{c}"),
        checks=L.checks(T_dir(), "{c}"),
    params:
        results=results_dir,
        settings=settings("equilibrate"),
    threads: config["engine"]["threads"]
    resources:
        gpu=1 if config["engine"]["name"] == "hoomd" and config["engine"]["device"] != "cpu" else 0,
    log:
        L.log("equilibrate", T_dir(), "{c}"),
    benchmark:
        L.benchmark("equilibrate", T_dir(), "{c}")
    conda:
        f"../../{SIM_ENV}"
    shell:
        "glasspipe equilibrate --settings {params.settings:q} --results-dir {params.results:q} --threads {threads}"
        " --temperature {wildcards.T} --configuration {wildcards.c} > /dev/null 2> {log:q}"


rule isoconf:
    input:
        L.equilibrated(T_dir(), "{c}"),
    output:
        [L.replica(T_dir(), "{c}", r) for r in REPLICAS],
    params:
        results=results_dir,
        settings=settings("isoconf"),
    threads: config["engine"]["threads"]
    resources:
        gpu=1 if config["engine"]["name"] == "hoomd" and config["engine"]["device"] != "cpu" else 0,
    log:
        L.log("isoconf", T_dir(), "{c}"),
    benchmark:
        L.benchmark("isoconf", T_dir(), "{c}")
    conda:
        f"../../{SIM_ENV}"
    shell:
        "glasspipe isoconf --settings {params.settings:q} --results-dir {params.results:q} --threads {threads}"
        " --temperature {wildcards.T} --configuration {wildcards.c} 2> {log:q}"
