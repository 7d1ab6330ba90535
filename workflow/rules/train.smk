# Training and per-query evaluation. Outputs are per (method, seed). Jobs are per method by default
# (evaluation.fit_jobs: per_method): one job trains the method's seeds one after the other, so a run
# pays one interpreter start and one import of its libraries per method, not per seed — on a small
# dataset most of a job (≈ 4 s of ≈ 5-15 s on 2 cores). `per_seed`: one job per (method, seed), which
# a cluster spreads over nodes and GPUs. common.smk's training_rules() names the rules: `fit_evaluate`
# for the usual shape, one more per dataset whose seeds or fit_jobs differ.

FIT_OUTPUTS = {
    "evaluation": "results/{dataset}/eval/{method}_seed{seed}.parquet",
    "precision": "results/{dataset}/eval/{method}_seed{seed}.precision.parquet",
    "embeddings": "results/{dataset}/eval/{method}_seed{seed}.embeddings.parquet",
    "history": "results/{dataset}/training/{method}_seed{seed}.parquet",
    "model": "results/{dataset}/models/{method}_seed{seed}.joblib",
}

for _rule_name, _mode, _seeds, _datasets in training_rules():
    _per_seed = _mode == "per_seed"
    _job = "{method}_seed{seed}" if _per_seed else "{method}"

    rule:
        name:
            _rule_name
        input:
            features="results/{dataset}/features.parquet",
            pca="results/{dataset}/visual_pca.parquet",
            # ugach_real / agah_real evaluate the ugach / agah fit of each seed (one training for
            # two rows) when both rows are configured alike; else this is empty and they train.
            shared_fits=(
                (lambda wc: shared_fit_models(wc.dataset, wc.method, [wc.seed]))
                if _per_seed
                else (
                    lambda wc, seeds=_seeds: shared_fit_models(
                        wc.dataset, wc.method, seeds
                    )
                )
            ),
        output:
            **(
                FIT_OUTPUTS
                if _per_seed
                else {
                    key: expand(pattern, seed=_seeds, allow_missing=True)
                    for key, pattern in FIT_OUTPUTS.items()
                }
            ),
        log:
            f"logs/{{dataset}}/fit_evaluate/{_job}.log",
        benchmark:
            f"results/{{dataset}}/benchmarks/fit_evaluate/{_job}.tsv"
        wildcard_constraints:
            dataset=_datasets,
        # Memory: from the clip and test counts (avcmr.resources.fit_evaluate_mem_mb): the job's
        # libraries and torch, the features and training copies, the per-query P@K table, two
        # evaluation blocks (scores are ranked a block of queries at a time) and, for `random`, its
        # dense n_test² scores. Seeds of one job run one after the other: one fit's memory (seeds
        # trained together, evaluation.seeds_together, hold their training copies on the GPU).
        conda:
            "../../envs/train.yaml"
        threads: lambda wc: fit_threads(wc.dataset)
        resources:
            mem_mb=mem_mb("fit_evaluate"),
            runtime=lambda wc, attempt, n=1 if _per_seed else len(_seeds): attempt
            * 60
            * n,
            # A GPU only for the methods that train with torch (a cluster profile routes them to GPUs).
            gpu=lambda wc: gpus_of(wc.method),
        params:
            seeds=(
                (lambda wc: [int(wc.seed)])
                if _per_seed
                else [int(seed) for seed in _seeds]
            ),
            method_params=lambda wc: method_params(wc.dataset, wc.method),
            seeds_together=lambda wc: SETTINGS[wc.dataset]["evaluation"].get(
                "seeds_together", "auto"
            ),
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
    benchmark:
        "results/{dataset}/benchmarks/alpha_beta_point/ours_alpha{alpha}_beta{beta}_seed{seed}.tsv"
    wildcard_constraints:
        alpha=GRID_VALUE,
        beta=GRID_VALUE,
    # Memory: one `ours` training and evaluation, as fit_evaluate (avcmr.resources).
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: fit_threads(wc.dataset)
    resources:
        mem_mb=mem_mb("fit_evaluate"),
        runtime=lambda wc, attempt: attempt * 60,
        gpu=lambda wc: gpus_of("ours"),
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
    # Memory: from the test count and the runs (avcmr.resources.table_mem_mb): the grid's per-query AP.
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("table"),
        runtime=lambda wc, attempt: attempt * 10,
    params:
        header=map_header,
    script:
        "../scripts/alpha_beta_table.py"
