# Result tables: map.tsv (one row per method × seed) and the failures summary.


rule map_table:
    input:
        lambda wc: evaluation_targets(wc.dataset),
    output:
        "results/{dataset}/map.tsv",
    log:
        "logs/{dataset}/map_table.log",
    # Memory: from the test count and the runs (avcmr.resources.table_mem_mb): the job's libraries
    # and the per-query AP of every (method, seed).
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("table"),
        runtime=lambda wc, attempt: attempt * 10,
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
    # Memory: 1500 MB, fixed: the job's Snakemake (~0.7 GB on a cluster node, sacct) and the failure rows (a few per shard).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 10,
    params:
        provenance=provenance("extraction"),
    script:
        "../scripts/failures.py"


rule table2:
    # Table 2: every configured method except the ablation-only variants, with the paired test.
    input:
        lambda wc: evaluation_targets(wc.dataset, exclude=ABLATION_ONLY),
    output:
        tsv=report(
            "results/{dataset}/table2.tsv",
            caption="../report/tables_tsv.rst",
            category="Tables",
            subcategory="{dataset}, TSV",
            labels={"table": "Table 2 (TSV)", "dataset": "{dataset}"},
        ),
        md="results/{dataset}/table2.md",
    log:
        "logs/{dataset}/table2.log",
    conda:
        "../../envs/report.yaml"
    # Memory: from the test count and the runs (avcmr.resources.table_mem_mb): the job's libraries and
    # the per-query AP of every method × seed (2 × n_test rows each) for the paired test.
    threads: 1
    resources:
        mem_mb=mem_mb("table"),
        runtime=lambda wc, attempt: attempt * 10,
    params:
        header=map_header,
        paper_reference=paper_reference_of,
    script:
        "../scripts/table2.py"


rule table3:
    input:
        lambda wc: evaluation_targets(wc.dataset),
    output:
        tsv=report(
            "results/{dataset}/table3.tsv",
            caption="../report/tables_tsv.rst",
            category="Tables",
            subcategory="{dataset}, TSV",
            labels={"table": "Table 3 (TSV)", "dataset": "{dataset}"},
        ),
        md="results/{dataset}/table3.md",
    log:
        "logs/{dataset}/table3.log",
    conda:
        "../../envs/report.yaml"
    # Memory: from the test count and the runs (avcmr.resources.table_mem_mb).
    threads: 1
    resources:
        mem_mb=mem_mb("table"),
        runtime=lambda wc, attempt: attempt * 10,
    params:
        header=map_header,
        paper_reference=paper_reference_of,
    script:
        "../scripts/table3.py"


rule table4:
    # Table 4: the ablation rows that are configured (random, explicit, implicit, ex_im_share, ours).
    input:
        lambda wc: evaluation_targets(wc.dataset, only=TABLE4_METHODS),
    output:
        tsv=report(
            "results/{dataset}/table4.tsv",
            caption="../report/tables_tsv.rst",
            category="Tables",
            subcategory="{dataset}, TSV",
            labels={"table": "Table 4 (TSV)", "dataset": "{dataset}"},
        ),
        md="results/{dataset}/table4.md",
    log:
        "logs/{dataset}/table4.log",
    conda:
        "../../envs/report.yaml"
    # Memory: from the test count and the runs (avcmr.resources.table_mem_mb).
    threads: 1
    resources:
        mem_mb=mem_mb("table"),
        runtime=lambda wc, attempt: attempt * 10,
    params:
        header=map_header,
        paper_reference=paper_reference_of,
    script:
        "../scripts/table4.py"
