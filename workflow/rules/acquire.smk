# Acquisition: the clips of each shard as a table (clip_id, label, path, duration_s) + the manifest.


rule synthesize_shard:
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        media=directory("results/{dataset}/media/shard{shard}"),
    log:
        "logs/{dataset}/synthesize/shard{shard}.log",
    wildcard_constraints:
        dataset=names_of_kind("synthetic"),
    # One-thread jobs go first, so that two of them share the cores instead of one waiting beside a
    # two-thread backbone job that cannot start; upstream before downstream, so that the last shard's
    # clips are not rendered alone (README, "Job order").
    priority: 3
    # Generates real H.264 + AAC clips.
    # Memory: 1500 MB, fixed: the job's Snakemake processes on a cluster
    # (avcmr.resources.JOB_SNAKEMAKE_MB) and one clip's frames at a time (< 50 MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
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
    # Probes the shard's files of a user's folder; memory: the listing only. The member list (with
    # sizes and mtimes) is a parameter: a shard reruns when its files change, the others do not.
    # Memory: 1500 MB, fixed: the job's Snakemake processes (avcmr.resources.JOB_SNAKEMAKE_MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=30,
    params:
        members=folder_members,
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
    # Memory: 1500 MB, fixed: the job's Snakemake processes (avcmr.resources.JOB_SNAKEMAKE_MB) and
    # the shards' clip tables, read one after the other (28k short rows at VEGAS scale: a few MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=10,
    params:
        shards=lambda wc: shards(wc.dataset),
        provenance=provenance("extraction"),
    script:
        "../scripts/manifest.py"


# --- Release archives of folder datasets (README, 'Release archives') ---------------------------


rule fetch_archives:
    # Target: download (when a URL), check and unpack every configured archive; run it before the
    # first run of such a dataset, as its listing reads the unpacked member table.
    input:
        archive_targets(),
    localrule: True


rule download_archive:
    # Resumable (HTTP Range from resources/archives/{dataset}/download/<name>.part), size + sha256.
    # Memory: 500 MB, fixed: a local job (no Snakemake of its own): the script's Python with numpy,
    # pandas and pyarrow (≈ 130 MB measured) and one 1 MB chunk at a time (avcmr.io.http_fetch).
    output:
        "resources/archives/{dataset}/download/{filename}",
    log:
        "logs/{dataset}/download_archive/{filename}.log",
    wildcard_constraints:
        dataset=archive_names(),
    localrule: True
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 500,
        runtime=600,
    params:
        url=lambda wc: SETTINGS[wc.dataset]["archive"],
        sha256=lambda wc: SETTINGS[wc.dataset].get("archive_sha256"),
        size=lambda wc: SETTINGS[wc.dataset].get("archive_bytes"),
    script:
        "../scripts/download_archive.py"


rule unpack_archive:
    # Safe unpacking of the members matching the layout; refused members are recorded (member table).
    input:
        archive=archive_input,
        annotations=lambda wc: SETTINGS[wc.dataset].get("annotations", []),
    output:
        "resources/archives/{dataset}/members.parquet",
    log:
        "logs/{dataset}/unpack_archive.log",
    wildcard_constraints:
        dataset=archive_names(),
    # Memory: 1500 MB, fixed: the job's Snakemake and pyarrow (~0.7 GB), one member's 1 MB copy
    # buffer and the member list (28k rows at VEGAS scale: a few MB).
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=120,
    params:
        dest=lambda wc: archive_paths(wc.dataset)["unpacked"],
        spec=archive_settings,
        provenance=archive_provenance,
    script:
        "../scripts/unpack_archive.py"


# --- YouTube datasets (vegas, ave, audioset, vggsound) and the acquisition summary of every dataset


rule fetch_manifests:
    # Target: download the manifests (and AudioSet segment lists) configured as URLs.
    input:
        list(remote_sources()),
    localrule: True


rule fetch_manifest:
    output:
        "resources/manifests/{dataset}/{filename}",
    log:
        "logs/{dataset}/fetch_manifest/{filename}.log",
    wildcard_constraints:
        dataset=youtube_names(),
    localrule: True
    # Memory: 500 MB, fixed: a local job (no Snakemake of its own): the script's Python with numpy,
    # pandas and pyarrow (≈ 130 MB measured) and one 1 MB chunk of the list in flight
    # (avcmr.io.http_fetch), which is also hashed in chunks.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 500,
        runtime=10,
    params:
        url=lambda wc, output: remote_sources()[output[0]][0],
        sha256=lambda wc, output: remote_sources()[output[0]][1],
    script:
        "../scripts/fetch_manifest.py"


rule listing:
    # Every clip the dataset lists, with its shard (the 'listed' column of acquisition.tsv).
    # Memory: 1500 MB, fixed: the job's Snakemake processes (avcmr.resources.JOB_SNAKEMAKE_MB).
    input:
        unpack(manifest_inputs),
    output:
        "results/{dataset}/listing.parquet",
    log:
        "logs/{dataset}/listing.log",
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=10,
    params:
        spec=listing_spec,
        shard_size=lambda wc: feature_settings(wc.dataset)["shard_size"],
        folder_clips=folder_clips,
        provenance=listing_provenance,
    script:
        "../scripts/listing.py"


rule download_shard:
    # yt-dlp, one clip at a time; `--resources youtube=N` bounds the shards fetched at once.
    # Media land in resources/media/{dataset}/ (not an output: kept when a job fails, so that
    # the next run resumes); unavailable or unusable clips go to the failures table.
    input:
        listing="results/{dataset}/listing.parquet",
    output:
        clips="results/{dataset}/clips/shard{shard}.parquet",
        failures="results/{dataset}/failures/download/shard{shard}.parquet",
    log:
        "logs/{dataset}/download/shard{shard}.log",
    wildcard_constraints:
        dataset=youtube_names(),
    # Memory: 1500 MB, fixed: the job's Snakemake processes (avcmr.resources.JOB_SNAKEMAKE_MB),
    # yt-dlp and one ffmpeg cut at a time.
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=lambda wc: 2 * feature_settings(wc.dataset)["shard_size"],
        youtube=1,
    params:
        media_dir=media_dir,
        download=download_content,
        provenance=listing_provenance,
    script:
        "../scripts/download_shard.py"


rule acquisition:
    # Per class: listed, downloaded (or found), decoded, usable (both features) clips.
    # Memory: 1500 MB, fixed: the job's Snakemake processes (avcmr.resources.JOB_SNAKEMAKE_MB).
    input:
        listing="results/{dataset}/listing.parquet",
        clips=shard_paths("results/{dataset}/clips/shard{shard}.parquet"),
        audio=shard_paths("results/{dataset}/decoded/shard{shard}.audio.parquet"),
        vggish=shard_paths("results/{dataset}/vggish/shard{shard}.parquet"),
        inception=shard_paths("results/{dataset}/inception/shard{shard}.parquet"),
    output:
        "results/{dataset}/acquisition.tsv",
    log:
        "logs/{dataset}/acquisition.log",
    conda:
        "../../envs/extract.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: attempt * 1500,
        runtime=10,
    params:
        header=acquisition_header,
    script:
        "../scripts/acquisition.py"


rule dataset_without_route:
    # Any result of an auto dataset none of whose routes is present (vegas, ave without their
    # files): the input function stops the run before any job with the one line naming each route
    # and where its file goes. Never runs.
    input:
        no_route_present,
    output:
        "results/{dataset}/{path}",
    log:
        "logs/{dataset}/dataset_without_route/{path}.log",
    wildcard_constraints:
        dataset=alternation(ROUTES.missing),
        path=".+",
    localrule: True
