# Acquisition: the clips of each shard as a table (clip_id, label, path, duration_s) + the manifest.


rule synthesize_shard:
    # Generates real H.264 + AAC clips; memory: one clip's frames at a time (< 50 MB).
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        media=directory("results/{dataset}/media/shard{shard}"),
    params:
        spec=lambda wc: SETTINGS[wc.dataset]["synthetic"],
        shard_size=lambda wc: feature_settings(wc.dataset)["shard_size"],
        provenance=provenance("extraction"),
    wildcard_constraints:
        dataset=names_of_kind("synthetic"),
    log:
        "logs/{dataset}/synthesize/shard{shard}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../scripts/synthesize_shard.py"


rule index_folder_shard:
    # Probes the shard's files of a user's folder; memory: the listing only.
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        failures="results/{dataset}/failures/index/shard{shard}.parquet",
    params:
        root=lambda wc: SETTINGS[wc.dataset]["root"],
        extensions=lambda wc: SETTINGS[wc.dataset].get("extensions", list(DEFAULT_EXTENSIONS)),
        shard_size=lambda wc: feature_settings(wc.dataset)["shard_size"],
        provenance=provenance("extraction"),
    wildcard_constraints:
        dataset=names_of_kind("folder"),
    log:
        "logs/{dataset}/index/shard{shard}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    script:
        "../scripts/index_folder_shard.py"


rule manifest:
    input:
        clips=shard_paths("results/{dataset}/clips/shard{shard}.parquet"),
    output:
        "results/{dataset}/manifest.parquet",
    params:
        shards=lambda wc: shards(wc.dataset),
        provenance=provenance("extraction"),
    log:
        "logs/{dataset}/manifest.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/manifest.py"
