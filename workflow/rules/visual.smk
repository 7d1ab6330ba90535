# Visual features: InceptionV3 2048-D per decoded frame.


rule inception:
    input:
        frames="results/{dataset}/decoded/shard{shard}.frames.parquet",
    output:
        embeddings="results/{dataset}/inception/shard{shard}.parquet",
        failures="results/{dataset}/failures/inception/shard{shard}.parquet",
    log:
        "logs/{dataset}/inception/shard{shard}.log",
    # Memory: TensorFlow + InceptionV3 (~1.5 GB) + one shard's frames (≈ 270 MB at 100 clips).
    conda:
        "../../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc: 3000 + 8 * feature_settings(wc.dataset)["shard_size"],
        runtime=240,
    params:
        backbone_weights=lambda wc: SETTINGS[wc.dataset]["backbone_weights"],
        batch_size=lambda wc: feature_settings(wc.dataset)["inception_batch_size"],
        provenance=provenance("extraction"),
    script:
        "../scripts/inception.py"
