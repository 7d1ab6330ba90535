# Visual features: InceptionV3 2048-D per decoded frame.


rule inception:
    input:
        frames="results/{dataset}/decoded/shard{shard}.frames.parquet",
        weights=backbone_weight_files("inception"),
    output:
        embeddings="results/{dataset}/inception/shard{shard}.parquet",
        failures="results/{dataset}/failures/inception/shard{shard}.parquet",
    log:
        "logs/{dataset}/inception/shard{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/inception/shard{shard}.tsv"
    # Memory: 3000 MB + 8 MB per clip of the shard: the job's Snakemake, TensorFlow, InceptionV3 and a
    # batch's activations (~2 GB), a clip's ≤ 10 frames of 268 kB in the table, as bytes, as an array.
    conda:
        "../../envs/extract.yaml"
    threads: lambda wc: backbone_threads(wc.dataset)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * (3000 + 8 * feature_settings(wc.dataset)["shard_size"]),
        runtime=lambda wc, attempt: attempt
        * (10 + 2 * feature_settings(wc.dataset)["shard_size"]),
    params:
        backbone_weights=lambda wc: SETTINGS[wc.dataset]["backbone_weights"],
        batch_size=lambda wc: feature_settings(wc.dataset)["inception_batch_size"],
        provenance=provenance("extraction"),
    script:
        "../scripts/inception.py"
