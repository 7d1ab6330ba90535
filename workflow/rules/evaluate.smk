# Result tables: map.tsv (one row per method × seed) and the failures summary.


rule map_table:
    input:
        lambda wc: evaluation_targets(wc.dataset),
    output:
        "results/{dataset}/map.tsv",
    log:
        "logs/{dataset}/map_table.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        header=map_header,
    script:
        "../scripts/map_table.py"


rule failures:
    input:
        lambda wc: failure_tables(wc.dataset),
    output:
        "results/{dataset}/failures.parquet",
    log:
        "logs/{dataset}/failures.log",
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        provenance=provenance("extraction"),
    script:
        "../scripts/failures.py"
