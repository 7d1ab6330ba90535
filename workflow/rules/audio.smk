# Audio features: VGGish log-mel patches, then 128-D VGGish embeddings per 0.96 s.


rule logmel:
    input:
        audio="results/{dataset}/decoded/shard{shard}.audio.parquet",
    output:
        patches="results/{dataset}/logmel/shard{shard}.parquet",
        failures="results/{dataset}/failures/logmel/shard{shard}.parquet",
    log:
        "logs/{dataset}/logmel/shard{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/logmel/shard{shard}.tsv"
    priority: 1  # a one-thread job (as synthesize_shard)
    # Memory: 1000 MB + 2 MB per clip of the shard: the job's Snakemake and librosa (~0.85 GB), a
    # clip's waveform (10 s × 64 kB/s) and its ten 96×64 float32 patches, each held twice.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt
        * (1000 + 2 * feature_settings(wc.dataset)["shard_size"]),
        runtime=lambda wc, attempt: attempt
        * (10 + feature_settings(wc.dataset)["shard_size"] // 5),
    params:
        provenance=provenance("extraction"),
    script:
        "../scripts/logmel.py"


rule vggish:
    input:
        patches="results/{dataset}/logmel/shard{shard}.parquet",
        weights=backbone_weight_files("vggish"),
    output:
        embeddings="results/{dataset}/vggish/shard{shard}.parquet",
        failures="results/{dataset}/failures/vggish/shard{shard}.parquet",
    log:
        "logs/{dataset}/vggish/shard{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/vggish/shard{shard}.tsv"
    # Memory: 2500 MB + 2 MB per clip of the shard: the job's Snakemake, TensorFlow and VGGish's 72 M
    # weights (~1.8 GB), a clip's ten 24 kB patches in the table, as an array and in the batch.
    conda:
        "../../envs/extract.yaml"
    threads: lambda wc: backbone_threads(wc.dataset)
    resources:
        mem_mb=lambda wc, attempt: attempt
        * (2500 + 2 * feature_settings(wc.dataset)["shard_size"]),
        runtime=lambda wc, attempt: attempt
        * (10 + feature_settings(wc.dataset)["shard_size"] // 2),
    params:
        backbone_weights=lambda wc: SETTINGS[wc.dataset]["backbone_weights"],
        batch_size=lambda wc: feature_settings(wc.dataset)["vggish_batch_size"],
        postprocess=lambda wc: feature_settings(wc.dataset)["vggish_postprocess"],
        provenance=provenance("extraction"),
    script:
        "../scripts/vggish.py"
