# The report: figures, tables, resolved config, versions, results/README.md, CITATION.cff and, last, the
# checksum manifest MANIFEST.sha256 (glasspipe.artifact).
#
# Outputs marked with report() appear in `snakemake --report results/report.html`, with the captions in
# workflow/report/ (paths relative to this file), grouped by stage.

REPORT_ITEMS = {
    "figure_png": dict(caption="../report/correlation.rst", category="Models", subcategory="Correlation"),
    "metrics_html": dict(caption="../report/metrics.rst", category="Models", subcategory="Tables"),
    "learning_curve_png": dict(caption="../report/learning_curve.rst", category="Models", subcategory="Learning curve"),
    "equilibration_html": dict(caption="../report/equilibration.rst", category="Equilibration", subcategory="Checks"),
    "relaxation_png": dict(caption="../report/relaxation.rst", category="Relaxation", subcategory="F_s(q, t)"),
    "config": dict(caption="../report/provenance.rst", category="Provenance", subcategory="Settings"),
    "versions": dict(caption="../report/provenance.rst", category="Provenance", subcategory="Settings"),
    "citation": dict(caption="../report/provenance.rst", category="Provenance", subcategory="Artifact"),
    "manifest": dict(caption="../report/provenance.rst", category="Provenance", subcategory="Artifact"),
}
# The thermodynamic log of each temperature in its own subcategory.
for _i, _T in enumerate(TEMPERATURES):
    REPORT_ITEMS[f"thermo_png_{_i}"] = dict(
        caption="../report/thermo.rst", category="Equilibration", subcategory=f"T = {_T}"
    )


rule report:
    input:
        **report_inputs(config),
    output:
        # Marked for Snakemake's report where REPORT_ITEMS names the output.
        **{
            k: report(str(v), **REPORT_ITEMS[k]) if k in REPORT_ITEMS else str(v)
            for k, v in report_outputs(config).items()
        },
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        L.root / "logs" / "report.log",
    conda:
        "../../envs/glasspipe.yaml"
    shell:
        "glasspipe report --settings {params.config:q} 2> {log:q}"
