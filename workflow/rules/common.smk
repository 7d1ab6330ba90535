# Helpers shared by all rule files (settings per dataset, shard lists, provenance)
import math

from avcmr.config import (
    ConfigError,
    check_dataset,
    config_hash,
    dataset_settings,
    n_synthetic_shards,
)
from avcmr.data.folder import DEFAULT_EXTENSIONS, list_folder
from avcmr.features.weights import describe_weights, uses_random_weights
from avcmr.media.ffmpeg_io import require_ffmpeg

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
        parts = {k: spec[k] for k in spec if k not in ("split", "evaluation")}
        if level in ("split", "evaluation"):
            parts["split"] = spec["split"]
        if level == "evaluation":
            parts["evaluation"] = spec["evaluation"]
            parts["method_params"] = config.get("method_params", {})
        return {
            "dataset": wildcards.dataset,
            "config_hash": config_hash(parts),
            "backbone_weights": describe_weights(spec["backbone_weights"]),
            "random_weights": uses_random_weights(spec["backbone_weights"]),
        }

    return params


def method_params(method):
    return config.get("method_params", {}).get(method, {})


def evaluation_targets(dataset):
    evaluation = SETTINGS[dataset]["evaluation"]
    return [
        f"results/{dataset}/eval/{method}_seed{seed}.parquet"
        for method in evaluation["methods"]
        for seed in evaluation["seeds"]
    ]


def default_targets():
    targets = []
    for dataset in config.get("default_datasets", list(SETTINGS)):
        if dataset not in SETTINGS:
            raise WorkflowError(
                f"default_datasets names {dataset!r}, which is not under datasets:"
            )
        targets += [f"results/{dataset}/map.tsv", f"results/{dataset}/failures.parquet"]
    return targets


def keep_or_temp(path):
    """Decoded frames are big at VEGAS scale: temporary unless ``keep_decoded_frames``.

    The flag is global (features section), as output flags cannot depend on wildcards.
    """
    return path if config["features"].get("keep_decoded_frames", True) else temp(path)


FAILURE_STAGES = {
    "synthetic": ["decode", "logmel", "vggish", "inception"],
    "folder": ["index", "decode", "logmel", "vggish", "inception"],
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
