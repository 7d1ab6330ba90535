# Result tables: map.tsv (one row per method × seed) and the failures summary.


rule map_table:
    input:
        lambda wc: evaluation_targets(wc.dataset),
    output:
        "results/{dataset}/map.tsv",
    params:
        header=map_header,
    log:
        "logs/{dataset}/map_table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/map_table.py"


rule failures:
    input:
        lambda wc: failure_tables(wc.dataset),
    output:
        "results/{dataset}/failures.parquet",
    params:
        provenance=provenance("extraction"),
    log:
        "logs/{dataset}/failures.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../scripts/failures.py"
