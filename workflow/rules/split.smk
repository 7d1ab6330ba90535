# Split, PCA (fit on training frames only) and frame-mean pooling into one features table.


rule split:
    input:
        unpack(listed_split_input),
        manifest="results/{dataset}/manifest.parquet",
        audio=shard_paths("results/{dataset}/vggish/shard{shard}.parquet"),
        visual=shard_paths("results/{dataset}/inception/shard{shard}.parquet"),
    output:
        "results/{dataset}/split.parquet",
    log:
        "logs/{dataset}/split.log",
    # Memory: 1500 MB, fixed: the job's Snakemake (~0.7 GB on a cluster node, sacct), the manifest and the clip ids of every
    # feature table (28k clips at VEGAS scale: a few MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc, attempt: attempt * 10,
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
    # Memory: from the clip count and shard size (avcmr.resources.visual_pca_mem_mb): the job's
    # libraries, 2048² float64 statistics, one shard's frame features at a time, the split.
    conda:
        "../../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("visual_pca"),
        runtime=lambda wc, attempt: attempt * 30,
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
    # Memory: from the clip count (avcmr.resources.pool_mem_mb): the job's libraries, the pooled
    # means (n × 1,152 float64 ≈ 260 MB at VEGAS scale, a few copies), one shard's frames at a time.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("pool"),
        runtime=lambda wc, attempt: attempt * 30,
    params:
        provenance=provenance("split"),
    script:
        "../scripts/pool.py"
