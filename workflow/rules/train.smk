# Training and per-query evaluation, one job per (method, seed) so a cluster can spread them.


rule fit_evaluate:
    input:
        features="results/{dataset}/features.parquet",
        pca="results/{dataset}/visual_pca.parquet",
    output:
        evaluation="results/{dataset}/eval/{method}_seed{seed}.parquet",
        precision="results/{dataset}/eval/{method}_seed{seed}.precision.parquet",
        embeddings="results/{dataset}/eval/{method}_seed{seed}.embeddings.parquet",
        history="results/{dataset}/training/{method}_seed{seed}.parquet",
        model="results/{dataset}/models/{method}_seed{seed}.joblib",
    log:
        "logs/{dataset}/fit_evaluate/{method}_seed{seed}.log",
    # Memory: 4000 MB, fixed: the job's Snakemake and torch (~1 GB), the pooled features (28k ×
    # 1,152 float32 ≈ 130 MB at VEGAS scale), the model, the n_test² float64 similarity matrix and its
    # rankings for AP and P@K (5,621² × 8 B ≈ 250 MB each at VEGAS scale).
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: fit_threads(wc.dataset)
    resources:
        mem_mb=lambda wc, attempt: attempt * 4000,
        runtime=lambda wc, attempt: attempt * 60,
    params:
        method_params=lambda wc: method_params(wc.dataset, wc.method),
        model_context=lambda wc: model_context(wc.dataset),
        provenance=provenance("evaluation"),
    script:
        "../scripts/fit_evaluate.py"


# --- Fig. 7: MAP of `ours` over the α/β grid (built only when results/{dataset}/alpha_beta.tsv or
# the fig7 figure is asked for; grid and seeds: config `figures.alpha_beta_grid`, `alpha_beta_seeds`).


rule alpha_beta_point:
    input:
        features="results/{dataset}/features.parquet",
    output:
        evaluation="results/{dataset}/alpha_beta/ours_alpha{alpha}_beta{beta}_seed{seed}.parquet",
        history="results/{dataset}/alpha_beta/ours_alpha{alpha}_beta{beta}_seed{seed}.history.parquet",
    log:
        "logs/{dataset}/alpha_beta/ours_alpha{alpha}_beta{beta}_seed{seed}.log",
    wildcard_constraints:
        alpha=GRID_VALUE,
        beta=GRID_VALUE,
    # Memory: 4000 MB, fixed: one `ours` training and evaluation, as fit_evaluate.
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: fit_threads(wc.dataset)
    resources:
        mem_mb=lambda wc, attempt: attempt * 4000,
        runtime=lambda wc, attempt: attempt * 60,
    params:
        method_params=lambda wc: {
            **method_params(wc.dataset, "ours"),
            "alpha": float(wc.alpha),
            "beta": float(wc.beta),
        },
        provenance=provenance("evaluation"),
    script:
        "../scripts/alpha_beta_point.py"


rule alpha_beta_table:
    input:
        lambda wc: alpha_beta_targets(wc.dataset),
    output:
        "results/{dataset}/alpha_beta.tsv",
    log:
        "logs/{dataset}/alpha_beta_table.log",
    # Memory: 1000 MB, fixed: the job's Snakemake (~0.6 GB) and the grid's per-query AP tables.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1000,
        runtime=lambda wc, attempt: attempt * 10,
    params:
        header=map_header,
    script:
        "../scripts/alpha_beta_table.py"
