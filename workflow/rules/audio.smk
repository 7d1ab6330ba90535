# Audio features: VGGish log-mel patches, then 128-D VGGish embeddings per 0.96 s.


rule logmel:
    input:
        audio="results/{dataset}/decoded/shard{shard}.audio.parquet",
    output:
        patches="results/{dataset}/logmel/shard{shard}.parquet",
        failures="results/{dataset}/failures/logmel/shard{shard}.parquet",
    log:
        "logs/{dataset}/logmel/shard{shard}.log",
    # Memory: one shard's waveforms (100 clips × 10 s × 64 kB/s ≈ 64 MB) and patches (≈ 25 MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        provenance=provenance("extraction"),
    script:
        "../scripts/logmel.py"


rule vggish:
    input:
        patches="results/{dataset}/logmel/shard{shard}.parquet",
    output:
        embeddings="results/{dataset}/vggish/shard{shard}.parquet",
        failures="results/{dataset}/failures/vggish/shard{shard}.parquet",
    log:
        "logs/{dataset}/vggish/shard{shard}.log",
    # Memory: TensorFlow + VGGish (~1.5 GB) + one shard's patches.
    conda:
        "../../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        backbone_weights=lambda wc: SETTINGS[wc.dataset]["backbone_weights"],
        batch_size=lambda wc: feature_settings(wc.dataset)["vggish_batch_size"],
        postprocess=lambda wc: feature_settings(wc.dataset)["vggish_postprocess"],
        provenance=provenance("extraction"),
    script:
        "../scripts/vggish.py"
