# Training and per-query evaluation, one job per (method, seed) so a cluster can spread them.


rule fit_evaluate:
    input:
        features="results/{dataset}/features.parquet",
    output:
        evaluation="results/{dataset}/eval/{method}_seed{seed}.parquet",
        history="results/{dataset}/training/{method}_seed{seed}.parquet",
    log:
        "logs/{dataset}/fit_evaluate/{method}_seed{seed}.log",
    # Memory: the pooled features + the method's model; test similarity matrix n_test² float64
    # (5,621² ≈ 250 MB at VEGAS scale).
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        method_params=lambda wc: method_params(wc.method),
        provenance=provenance("evaluation"),
    script:
        "../scripts/fit_evaluate.py"
