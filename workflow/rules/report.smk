# The report: figures, tables, resolved config, versions and results/README.md.


rule report:
    input:
        **{k: v for k, v in report_inputs(config).items()},
    output:
        **{k: str(v) for k, v in report_outputs(config).items()},
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        L.root / "logs" / "report.log",
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe report --settings {params.config:q} 2> {log:q}"
