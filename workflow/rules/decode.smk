# Decode each shard to 1 frame per second (299×299 RGB) and 16 kHz mono audio.


rule decode:
    input:
        clips="results/{dataset}/clips/shard{shard}.parquet",
    output:
        frames="results/{dataset}/decoded/shard{shard}.frames.parquet",
        audio="results/{dataset}/decoded/shard{shard}.audio.parquet",
        failures="results/{dataset}/failures/decode/shard{shard}.parquet",
    log:
        "logs/{dataset}/decode/shard{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/decode/shard{shard}.tsv"
    # This variant keeps the frames (features.keep_decoded_frames: true); the one below drops them.
    wildcard_constraints:
        dataset=frames_kept_names(True),
    # Kept frames cost the same disk whenever they are decoded: decoding first lets the one-thread
    # jobs pair up (as synthesize_shard). Dropped frames keep the default priority, so that the
    # scheduler's temp-file objective hands each shard to InceptionV3 soon after it is decoded.
    priority: 2
    # Memory: 1000 MB + 8 MB per clip of the shard: the job's Snakemake and pyarrow (~0.7 GB), and a
    # clip's ≤ 10 frames of 268 kB (clips ≤ 10 s, as in VEGAS and AVE) held twice (rows, Arrow table)
    # plus its audio; longer clips need a smaller shard_size. Both × the attempt (retries).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt
        * (1000 + 8 * feature_settings(wc.dataset)["shard_size"]),
        runtime=lambda wc, attempt: attempt
        * (10 + feature_settings(wc.dataset)["shard_size"] // 2),
    params:
        fps=lambda wc: feature_settings(wc.dataset)["fps"],
        frame_size=lambda wc: feature_settings(wc.dataset)["frame_size"],
        sample_rate=lambda wc: feature_settings(wc.dataset)["sample_rate"],
        provenance=provenance("extraction"),
    script:
        "../scripts/decode.py"


# The same job for datasets with keep_decoded_frames: false (the default): the frames are deleted
# once InceptionV3 has read them (≈ 75 GB at VEGAS scale). temp() cannot depend on a wildcard,
# hence a second rule limited to those datasets' names.
use rule decode as decode_dropping_frames with:
    output:
        frames=temp("results/{dataset}/decoded/shard{shard}.frames.parquet"),
        audio="results/{dataset}/decoded/shard{shard}.audio.parquet",
        failures="results/{dataset}/failures/decode/shard{shard}.parquet",
    wildcard_constraints:
        dataset=frames_kept_names(False),
    priority: 0
