# Split, PCA (fit on training frames only) and frame-mean pooling into one features table.


rule split:
    input:
        manifest="results/{dataset}/manifest.parquet",
        audio=shard_paths("results/{dataset}/vggish/shard{shard}.parquet"),
        visual=shard_paths("results/{dataset}/inception/shard{shard}.parquet"),
    output:
        "results/{dataset}/split.parquet",
    log:
        "logs/{dataset}/split.log",
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        split=lambda wc: SETTINGS[wc.dataset]["split"],
        provenance=provenance("split"),
    script:
        "../scripts/split.py"


rule visual_pca:
    input:
        visual=shard_paths("results/{dataset}/inception/shard{shard}.parquet"),
        split="results/{dataset}/split.parquet",
    output:
        "results/{dataset}/visual_pca.parquet",
    log:
        "logs/{dataset}/visual_pca.log",
    # Memory: streamed per shard; 2048×2048 float64 statistics (32 MB) + one shard's features.
    conda:
        "../../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        n_components=lambda wc: feature_settings(wc.dataset)["pca_dim"],
        whiten=lambda wc: feature_settings(wc.dataset)["pca_whiten"],
        provenance=provenance("split"),
    script:
        "../scripts/visual_pca.py"


rule pool:
    input:
        audio=shard_paths("results/{dataset}/vggish/shard{shard}.parquet"),
        visual=shard_paths("results/{dataset}/inception/shard{shard}.parquet"),
        pca="results/{dataset}/visual_pca.parquet",
        split="results/{dataset}/split.parquet",
    output:
        "results/{dataset}/features.parquet",
    log:
        "logs/{dataset}/pool.log",
    # Memory: one shard's frame features at a time + the pooled table (28k × 1152 float32 ≈ 130 MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        provenance=provenance("split"),
    script:
        "../scripts/pool.py"
