# Acquisition: the clips of each shard as a table (clip_id, label, path, duration_s) + the manifest.


rule synthesize_shard:
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        media=directory("results/{dataset}/media/shard{shard}"),
    log:
        "logs/{dataset}/synthesize/shard{shard}.log",
    wildcard_constraints:
        dataset=names_of_kind("synthetic"),
    # Generates real H.264 + AAC clips; memory: one clip's frames at a time (< 50 MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        spec=lambda wc: SETTINGS[wc.dataset]["synthetic"],
        shard_size=lambda wc: feature_settings(wc.dataset)["shard_size"],
        provenance=provenance("extraction"),
    script:
        "../scripts/synthesize_shard.py"


rule index_folder_shard:
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        failures="results/{dataset}/failures/index/shard{shard}.parquet",
    log:
        "logs/{dataset}/index/shard{shard}.log",
    wildcard_constraints:
        dataset=names_of_kind("folder"),
    # Probes the shard's files of a user's folder; memory: the listing only.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        root=lambda wc: SETTINGS[wc.dataset]["root"],
        extensions=lambda wc: SETTINGS[wc.dataset].get(
            "extensions", list(DEFAULT_EXTENSIONS)
        ),
        shard_size=lambda wc: feature_settings(wc.dataset)["shard_size"],
        provenance=provenance("extraction"),
    script:
        "../scripts/index_folder_shard.py"


rule manifest:
    input:
        clips=shard_paths("results/{dataset}/clips/shard{shard}.parquet"),
    output:
        "results/{dataset}/manifest.parquet",
    log:
        "logs/{dataset}/manifest.log",
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        shards=lambda wc: shards(wc.dataset),
        provenance=provenance("extraction"),
    script:
        "../scripts/manifest.py"
