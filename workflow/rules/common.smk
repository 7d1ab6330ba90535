# Helpers shared by all rule files (settings per dataset, shard lists, provenance)
import math
from pathlib import Path
from urllib.parse import urlparse

from avcmr.config import (
    ConfigError,
    check_dataset,
    config_hash,
    dataset_settings,
    n_synthetic_shards,
)
from avcmr.data.folder import DEFAULT_EXTENSIONS, list_folder
from avcmr.data.manifests import ManifestError, check_sha256, dataset_listing, is_url
from avcmr.features.weights import describe_weights, uses_random_weights
from avcmr.media.ffmpeg_io import require_ffmpeg
from avcmr.reporting.tables import ABLATION_ONLY, TABLE4_METHODS

require_ffmpeg()

SETTINGS = {}
for _name in config["datasets"]:
    try:
        SETTINGS[_name] = dataset_settings(config, _name)
        check_dataset(SETTINGS[_name])
    except ConfigError as error:
        raise WorkflowError(str(error)) from None


def names_of_kind(kind):
    """Regex alternation of the dataset names of one kind (matches nothing when there is none)."""
    names = [name for name, spec in SETTINGS.items() if spec["kind"] == kind]
    return "|".join(names) if names else "(?!)"


_FOLDER_LISTINGS = {}


def folder_listing(dataset):
    """The folder dataset's clips, listed once per Snakemake invocation."""
    if dataset not in _FOLDER_LISTINGS:
        spec = SETTINGS[dataset]
        _FOLDER_LISTINGS[dataset] = list_folder(
            spec["root"], spec.get("extensions", DEFAULT_EXTENSIONS)
        )
    return _FOLDER_LISTINGS[dataset]


def shards(dataset):
    spec = SETTINGS[dataset]
    if spec["kind"] == "synthetic":
        return list(range(n_synthetic_shards(spec)))
    if spec["kind"] in YOUTUBE_KINDS:
        n_clips = len(youtube_listing(dataset).clips)
        return list(range(math.ceil(n_clips / spec["features"]["shard_size"])))
    return list(
        range(math.ceil(len(folder_listing(dataset)) / spec["features"]["shard_size"]))
    )


def shard_paths(pattern):
    """Input function: ``pattern`` formatted for every shard of the wildcard's dataset."""

    def paths(wildcards):
        return [
            pattern.format(dataset=wildcards.dataset, shard=shard)
            for shard in shards(wildcards.dataset)
        ]

    return paths


def feature_settings(dataset):
    return SETTINGS[dataset]["features"]


def provenance(level):
    """Params function: what produced a table, at three levels of the config that can change it.

    extraction: dataset + feature settings; split: + split; evaluation: + methods. Keeping the
    levels apart means that adding a method does not re-extract features.
    """

    def params(wildcards):
        spec = SETTINGS[wildcards.dataset]
        parts = {
            k: spec[k]
            for k in spec
            if k not in ("split", "evaluation", "method_params")
        }
        if "download" in parts:  # pacing settings (sleep, retries, ...) change no table
            parts["download"] = download_content(wildcards)
        if level in ("split", "evaluation"):
            parts["split"] = spec["split"]
        if level == "evaluation":
            # Threads per job are an execution setting, like download pacing: no rerun.
            parts["evaluation"] = {
                k: v for k, v in spec["evaluation"].items() if k != "threads_per_fit"
            }
            # A (method, seed) job depends on its own method's parameters only.
            methods = (
                [wildcards.method]
                if "method" in wildcards.keys()
                else spec["evaluation"]["methods"]
            )
            parts["method_params"] = {
                method: method_params(wildcards.dataset, method) for method in methods
            }
        return {
            "dataset": wildcards.dataset,
            "config_hash": config_hash(parts),
            "backbone_weights": describe_weights(spec["backbone_weights"]),
            "random_weights": uses_random_weights(spec["backbone_weights"]),
        }

    return params


def method_params(dataset, method):
    """The method's global hyper-parameters, updated by the dataset's own ``method_params``."""
    return {
        **config.get("method_params", {}).get(method, {}),
        **SETTINGS[dataset].get("method_params", {}).get(method, {}),
    }


def fit_threads(dataset):
    """Threads of one training job: the dataset's ``evaluation.threads_per_fit`` (default 2)."""
    return SETTINGS[dataset]["evaluation"].get("threads_per_fit", 2)


def evaluation_targets(dataset, only=None, exclude=()):
    """Per-(method, seed) evaluation tables of the configured methods (optionally a subset)."""
    evaluation = SETTINGS[dataset]["evaluation"]
    methods = [
        method
        for method in evaluation["methods"]
        if (only is None or method in only) and method not in exclude
    ]
    return [
        f"results/{dataset}/eval/{method}_seed{seed}.parquet"
        for method in methods
        for seed in evaluation["seeds"]
    ]


def default_targets():
    targets = []
    for dataset in config.get("default_datasets", list(SETTINGS)):
        if dataset not in SETTINGS:
            raise WorkflowError(
                f"default_datasets names {dataset!r}, which is not under datasets:"
            )
        targets += [
            f"results/{dataset}/{name}"
            for name in ("map.tsv", "failures.parquet", "acquisition.tsv", "table3.tsv")
        ]
        methods = SETTINGS[dataset]["evaluation"]["methods"]
        if set(methods) - set(ABLATION_ONLY):
            targets.append(f"results/{dataset}/table2.tsv")
        if set(methods) & set(TABLE4_METHODS) - {"random"}:
            targets.append(f"results/{dataset}/table4.tsv")
        targets += report_targets(dataset)
    return targets


def keep_or_temp(path):
    """Decoded frames are big at VEGAS scale: temporary unless ``keep_decoded_frames``.

    The flag is global (features section), as output flags cannot depend on wildcards.
    """
    return path if config["features"].get("keep_decoded_frames", True) else temp(path)


FAILURE_STAGES = {
    "synthetic": ["decode", "logmel", "vggish", "inception"],
    "folder": ["index", "decode", "logmel", "vggish", "inception"],
    "vegas": ["download", "decode", "logmel", "vggish", "inception"],
    "ave": ["download", "decode", "logmel", "vggish", "inception"],
}


def failure_tables(dataset):
    stages = FAILURE_STAGES[SETTINGS[dataset]["kind"]]
    return [
        f"results/{dataset}/failures/{stage}/shard{shard}.parquet"
        for stage in stages
        for shard in shards(dataset)
    ]


def map_header(wildcards):
    spec = SETTINGS[wildcards.dataset]
    weights = describe_weights(spec["backbone_weights"])
    lines = [
        f"dataset: {wildcards.dataset} ({spec['kind']})",
        "backbone weights: " + "; ".join(f"{k}={v}" for k, v in weights.items()),
        f"config hash: {provenance('evaluation')(wildcards)['config_hash']}",
    ]
    if uses_random_weights(spec["backbone_weights"]):
        lines.append(
            "WARNING: random backbone weights; these numbers are a pipeline check, not paper results"
        )
    return lines


# --- YouTube datasets (vegas, ave) ---------------------------------------------------------------
# Their manifests are read at parse time, so that the shards are known without checkpoints and
# `snakemake -n` shows the whole DAG. A manifest given as a URL is downloaded by `fetch_manifests`.

YOUTUBE_KINDS = ("vegas", "ave")
MANIFEST_CACHE = "resources/manifests"
# Download settings that change which files land (a change re-runs the download shards); the
# pacing settings (sleep, back-off, attempts, rate limit, time-out, cookies) do not.
DOWNLOAD_CONTENT_KEYS = ("url_template", "format", "exact_cuts", "duration_tolerance_s")
LISTING_KEYS = (
    "kind",
    "manifest",
    "manifest_sha256",
    "classes",
    "duplicates",
    "window",
    "clip_seconds",
    "segments",
    "max_clips",
)
MANIFEST_HELP = {
    "vegas": "VEGAS's clip list is published by its authors with the dataset (Zhou et al., "
    "CVPR 2018, 'Visual to Sound'); write it as a CSV/TSV/Parquet table with columns "
    "youtube_id, start_s, end_s, label (clip_id optional) and set datasets.<name>.manifest "
    "to its path or URL (README, 'VEGAS and AVE').",
    "ave": "AVE's Annotations.txt comes with the AVE release (github.com/YapengTian/AVE-ECCV18, "
    "data/Annotations.txt); set datasets.<name>.manifest to its path or URL.",
}


def youtube_names():
    """Regex alternation of the vegas and ave dataset names (matches nothing when there is none)."""
    names = [n for n, spec in SETTINGS.items() if spec["kind"] in YOUTUBE_KINDS]
    return "|".join(names) if names else "(?!)"


def source_entries(dataset):
    """(role, configured path or URL, local path, expected sha256) of a dataset's list files."""
    spec = SETTINGS[dataset]
    entries = [("manifest", spec["manifest"], spec.get("manifest_sha256"))]
    entries += [
        (f"segments{i}", s, None) for i, s in enumerate(spec.get("segments", []))
    ]
    resolved = []
    for role, source, sha256 in entries:
        local = source
        if is_url(source):
            name = Path(urlparse(source).path).name or "list"
            local = f"{MANIFEST_CACHE}/{dataset}/{role}_{name}"
        resolved.append((role, source, local, sha256))
    return resolved


def manifest_inputs(wildcards):
    """Input function: the local list files of a vegas/ave dataset (none for other kinds)."""
    if SETTINGS[wildcards.dataset]["kind"] not in YOUTUBE_KINDS:
        return {}
    entries = source_entries(wildcards.dataset)
    return {
        "manifest": entries[0][2],
        "segments": [local for _, _, local, _ in entries[1:]],
    }


def remote_sources():
    """{cached path: (url, expected sha256)} of every list file configured as a URL."""
    return {
        local: (source, sha256)
        for dataset, spec in SETTINGS.items()
        if spec["kind"] in YOUTUBE_KINDS
        for _, source, local, sha256 in source_entries(dataset)
        if is_url(source)
    }


_YOUTUBE_LISTINGS = {}


def youtube_listing(dataset):
    """The parsed manifest of a vegas/ave dataset, read once per Snakemake invocation."""
    if dataset in _YOUTUBE_LISTINGS:
        return _YOUTUBE_LISTINGS[dataset]
    spec = SETTINGS[dataset]
    entries = source_entries(dataset)
    for role, source, local, sha256 in entries:
        if not Path(local).is_file():
            if is_url(source):
                raise WorkflowError(
                    f"dataset {dataset!r}: the {role} list {source} is not downloaded yet; run "
                    f"`snakemake fetch_manifests --cores 1` with the same --configfile (needs "
                    f"internet) or download it to {local}"
                )
            raise WorkflowError(
                f"dataset {dataset!r}: {role} file {local} not found. "
                + (MANIFEST_HELP[spec["kind"]] if role == "manifest" else "")
            )
        try:
            check_sha256(local, sha256)
        except ManifestError as error:
            raise WorkflowError(f"dataset {dataset!r}: {error}") from None
    try:
        listing = dataset_listing(
            spec, entries[0][2], [local for _, _, local, _ in entries[1:]]
        )
    except (ManifestError, OSError, ValueError, KeyError) as error:
        raise WorkflowError(f"dataset {dataset!r}: {error}") from None
    if listing.clips.empty:
        raise WorkflowError(f"dataset {dataset!r}: the manifest lists no clips")
    _YOUTUBE_LISTINGS[dataset] = listing
    return listing


def download_content(wildcards):
    """Params function: the download settings that change which files land."""
    settings = SETTINGS[wildcards.dataset].get("download", {})
    return {k: settings[k] for k in DOWNLOAD_CONTENT_KEYS if k in settings}


def listing_spec(wildcards):
    """Params function: the part of a dataset's spec that decides its listing (and nothing else,
    so that other changes do not re-run the listing and, after it, the downloads)."""
    spec = SETTINGS[wildcards.dataset]
    keys = LISTING_KEYS + ("synthetic", "root", "extensions")
    subset = {k: spec[k] for k in keys if k in spec}
    if spec.get("max_clips"):  # the seeded draw of limit_clips
        subset["split"] = {"seed": spec["split"]["seed"]}
    return subset


def listing_provenance(wildcards):
    """Params function: provenance of the listing and the downloads (only what changes them)."""
    spec = SETTINGS[wildcards.dataset]
    parts = {
        **listing_spec(wildcards),
        "shard_size": spec["features"]["shard_size"],
        "download": download_content(wildcards),
    }
    return {"dataset": wildcards.dataset, "config_hash": config_hash(parts)}


def media_dir(wildcards):
    """Where a vegas/ave dataset's clips land (kept across runs: downloads resume from it)."""
    root = SETTINGS[wildcards.dataset].get("media_dir", "resources/media")
    return f"{root}/{wildcards.dataset}"


def official_weights():
    """url, path, sha256 (+ published md5) of each official backbone file (config: official_weights)."""
    from avcmr.features.weights import official_file_settings

    try:
        return official_file_settings(config.get("official_weights"))
    except ValueError as error:
        raise WorkflowError(str(error)) from None
