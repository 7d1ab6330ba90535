# The paper's figures (Figs 3–8), HTML views of the result tables, the retrieval page and the run
# summary, all flagged for `snakemake --report results/{dataset}/report.html` (captions:
# workflow/report/).
# Figure and retrieval page settings (t-SNE subsample, α/β grid, queries): the optional `figures`
# config section, see avcmr.workflow.settings.figure_settings (report_common.smk binds it).


report: "../report/workflow.rst"


rule fig3_class_counts:
    input:
        split="results/{dataset}/split.parquet",
    output:
        png=figure_report("fig3_class_counts", "fig3.rst"),
        pdf="results/{dataset}/figures/fig3_class_counts.pdf",
    log:
        "logs/{dataset}/figures/fig3_class_counts.log",
    # Memory: 1500 MB, fixed: the job's Snakemake and matplotlib (~0.7 GB) and the split table.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 10,
    script:
        "../scripts/fig3_class_counts.py"


rule fig4_precision_scope:
    input:
        all_seed_paths("results/{dataset}/eval/{method}_seed{seed}.precision.parquet"),
    output:
        png=figure_report("fig4_precision_scope", "fig4.rst"),
        pdf="results/{dataset}/figures/fig4_precision_scope.pdf",
    log:
        "logs/{dataset}/figures/fig4_precision_scope.log",
    # Memory: 2000 MB, fixed: per-query P@K tables read one at a time (5,621 queries × 100 K ×
    # 2 directions ≈ 1.1 M rows each at VEGAS scale) and the curves.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 2000,
        runtime=lambda wc, attempt: attempt * 10,
    script:
        "../scripts/fig4_precision_scope.py"


rule fig5_training_losses:
    input:
        all_seed_paths("results/{dataset}/training/{method}_seed{seed}.parquet"),
    output:
        png=figure_report("fig5_training_losses", "fig5.rst"),
        pdf="results/{dataset}/figures/fig5_training_losses.pdf",
    log:
        "logs/{dataset}/figures/fig5_training_losses.log",
    # Memory: 1500 MB, fixed: the job's Snakemake and matplotlib and the per-epoch loss tables.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 10,
    params:
        reference_configured=reference_configured,
    script:
        "../scripts/fig5_training_losses.py"


rule fig6_per_class_ap:
    input:
        all_seed_paths("results/{dataset}/eval/{method}_seed{seed}.parquet"),
    output:
        png=figure_report("fig6_per_class_ap", "fig6.rst"),
        pdf="results/{dataset}/figures/fig6_per_class_ap.pdf",
    log:
        "logs/{dataset}/figures/fig6_per_class_ap.log",
    # Memory: 2000 MB, fixed: the per-query AP tables of every method and seed (11 k rows each).
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 2000,
        runtime=lambda wc, attempt: attempt * 10,
    params:
        reference_configured=reference_configured,
    script:
        "../scripts/fig6_per_class_ap.py"


rule fig7_alpha_beta:
    input:
        lambda wc: alpha_beta_targets(wc.dataset),
    output:
        png=figure_report("fig7_alpha_beta", "fig7.rst"),
        pdf="results/{dataset}/figures/fig7_alpha_beta.pdf",
    log:
        "logs/{dataset}/figures/fig7_alpha_beta.log",
    # Memory: 1500 MB, fixed: the grid's per-query AP tables.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 10,
    script:
        "../scripts/fig7_alpha_beta.py"


rule fig8_tsne:
    input:
        features="results/{dataset}/features.parquet",
        evaluations=all_seed_paths("results/{dataset}/eval/{method}_seed{seed}.parquet"),
        embeddings=first_seed_paths(
            "results/{dataset}/eval/{method}_seed{seed}.embeddings.parquet"
        ),
    output:
        png=figure_report("fig8_tsne", "fig8.rst"),
        pdf="results/{dataset}/figures/fig8_tsne.pdf",
    log:
        "logs/{dataset}/figures/fig8_tsne.log",
    # Memory: 2000 MB, fixed: features.parquet (≈ 130 MB at VEGAS scale) and three t-SNE maps of at
    # most `figures.tsne_max_points` clips. Time: ~1 min at 2,000 clips.
    conda:
        "../../envs/report.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: attempt * 2000,
        runtime=lambda wc, attempt: attempt * 30,
    params:
        reference_configured=reference_configured,
        max_points=lambda wc: figure_settings()["tsne_max_points"],
        perplexity=lambda wc: figure_settings()["tsne_perplexity"],
        seed=lambda wc: figure_settings()["tsne_seed"],
    script:
        "../scripts/fig8_tsne.py"


rule table_view:
    # HTML view of a result table for the report (the TSV stays the machine-readable file).
    input:
        "results/{dataset}/{table}.tsv",
    output:
        report(
            "results/{dataset}/report/{table}.html",
            caption="../report/tables.rst",
            category="Tables",
            subcategory="{dataset}",
            labels=lambda wc: {"table": TABLE_VIEWS[wc.table], "dataset": wc.dataset},
        ),
    log:
        "logs/{dataset}/report/{table}.log",
    wildcard_constraints:
        table="|".join(TABLE_VIEWS),
    # Memory: 1500 MB, fixed: the job's Snakemake processes on a cluster
    # (avcmr.resources.JOB_SNAKEMAKE_MB) and one small TSV.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 5,
    params:
        title=lambda wc: f"{TABLE_VIEWS[wc.table]} ({wc.dataset})",
    script:
        "../scripts/table_view.py"


rule retrieval_page:
    # Which test clips each trained method returns (first seed) for a seeded, class-balanced sample
    # of queries, ranked from the evaluation's own scores; thumbnails and audio extracts cut from the
    # clips (one ffmpeg call per clip on the page; none for a features dataset). The report holds a
    # copy with the media inline (a report embeds each result as one file).
    input:
        features="results/{dataset}/features.parquet",
        manifest="results/{dataset}/manifest.parquet",
        evaluations=first_seed_paths(
            "results/{dataset}/eval/{method}_seed{seed}.parquet"
        ),
        embeddings=first_seed_paths(
            "results/{dataset}/eval/{method}_seed{seed}.embeddings.parquet"
        ),
        models=first_seed_paths("results/{dataset}/models/{method}_seed{seed}.joblib"),
    output:
        page="results/{dataset}/retrieval.html",
        media=directory("results/{dataset}/retrieval"),
        report=report(
            "results/{dataset}/report/retrieval.html",
            caption="../report/retrieval.rst",
            category="Retrieval",
            subcategory="{dataset}",
            labels={"item": "Retrieval examples", "dataset": "{dataset}"},
        ),
    log:
        "logs/{dataset}/report/retrieval_page.log",
    # Memory: from the clip and test counts, as a training job of a method with embeddings
    # (avcmr.resources.fit_evaluate_mem_mb): this job holds the features table, one block of score
    # rows at a time and, for `random`, its dense test × test scores, less than the training
    # copies and per-query P@K table counted there.
    conda:
        "../../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("fit_evaluate"),
        runtime=lambda wc, attempt: attempt * 30,
    params:
        methods=lambda wc: configured_methods(wc.dataset),
        seed=lambda wc: SETTINGS[wc.dataset]["evaluation"]["seeds"][0],
        has_media=lambda wc: SETTINGS[wc.dataset]["kind"] != "features",
        settings=lambda wc: retrieval_page_settings(),
    script:
        "../scripts/retrieval_page.py"


rule run_summary:
    # The run's description on the report's landing page; its inputs are every item of the
    # report, so `snakemake --report ... results/{dataset}/report/run_summary.rst` covers them all.
    input:
        evaluations=all_seed_paths("results/{dataset}/eval/{method}_seed{seed}.parquet"),
        split="results/{dataset}/split.parquet",
        features="results/{dataset}/features.parquet",
        acquisition="results/{dataset}/acquisition.tsv",
        report_items=report_items,
    output:
        report(
            "results/{dataset}/report/run_summary.rst",
            caption="../report/run_summary.rst",
            category="Run",
            subcategory="{dataset}",
            labels={"item": "Run summary", "dataset": "{dataset}"},
        ),
    log:
        "logs/{dataset}/report/run_summary.log",
    # Memory: 1500 MB, fixed: table metadata and the split.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 5,
    params:
        spec=lambda wc: SETTINGS[wc.dataset],
    script:
        "../scripts/run_summary.py"


# --- What each rule cost: wall time and peak memory per job, from the rules' `benchmark:` files ---


rule job_costs:
    # Per rule: jobs, total/mean/longest wall time, largest peak RSS, CPU time (sizes a cluster's
    # mem_mb/runtime requests from a real run).
    input:
        unpack(benchmark_files),
    output:
        report(
            "results/{dataset}/job_costs.tsv",
            caption="../report/job_costs.rst",
            category="Tables",
            subcategory="{dataset}",
            labels=lambda wc: {"table": "Job costs", "dataset": wc.dataset},
        ),
    log:
        "logs/{dataset}/job_costs.log",
    # Memory: 1500 MB, fixed: the job's Snakemake processes on a cluster
    # (avcmr.resources.JOB_SNAKEMAKE_MB) and one small TSV per job of the dataset.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 5,
    params:
        header=lambda wc: [
            f"dataset: {wc.dataset}",
            "per rule: jobs, wall seconds (total, mean, max), peak RSS in MB, CPU seconds",
        ],
    script:
        "../scripts/job_costs.py"
