# Decode each shard to 1 frame per second (299×299 RGB) and 16 kHz mono audio.


rule decode:
    input:
        clips="results/{dataset}/clips/shard{shard}.parquet",
    output:
        frames=keep_or_temp("results/{dataset}/decoded/shard{shard}.frames.parquet"),
        audio="results/{dataset}/decoded/shard{shard}.audio.parquet",
        failures="results/{dataset}/failures/decode/shard{shard}.parquet",
    log:
        "logs/{dataset}/decode/shard{shard}.log",
    # Memory: one shard's frames (shard_size × ~10 frames × 268 kB ≈ 270 MB at 100 clips) + Arrow copy.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + 8 * feature_settings(wc.dataset)["shard_size"],
        runtime=60,
    params:
        fps=lambda wc: feature_settings(wc.dataset)["fps"],
        frame_size=lambda wc: feature_settings(wc.dataset)["frame_size"],
        sample_rate=lambda wc: feature_settings(wc.dataset)["sample_rate"],
        provenance=provenance("extraction"),
    script:
        "../scripts/decode.py"
