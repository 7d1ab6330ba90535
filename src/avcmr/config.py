"""Resolve the workflow config into per-dataset settings, hashes and policy checks."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

from avcmr.features.weights import describe_weights, uses_random_weights

OVERRIDABLE_SECTIONS = ("features", "split", "evaluation")


class ConfigError(ValueError):
    pass


def deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def dataset_settings(config: Mapping, name: str) -> dict:
    """The dataset's spec with the global features/split/evaluation sections merged under it."""
    if name not in config["datasets"]:
        raise ConfigError(f"unknown dataset {name!r}; configured: {', '.join(config['datasets'])}")
    spec = dict(config["datasets"][name])
    for section in OVERRIDABLE_SECTIONS:
        spec[section] = deep_merge(config.get(section, {}), spec.get(section, {}))
    spec.setdefault("backbone_weights", {"vggish": "random", "inception": "random", "seed": 0})
    spec["name"] = name
    return spec


def config_hash(*parts: object) -> str:
    """Short stable hash of JSON-serialisable config parts (recorded in every table's metadata)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_dataset(settings: Mapping) -> None:
    """Refuse configurations that would give misleading results, with a one-line reason."""
    name = settings["name"]
    if settings["kind"] != "synthetic" and uses_random_weights(settings["backbone_weights"]):
        if not settings.get("allow_random_weights", False):
            raise ConfigError(
                f"dataset {name!r} ({settings['kind']}) is configured with random backbone weights "
                f"({describe_weights(settings['backbone_weights'])}); set backbone_weights to the official "
                "files (see README, 'Official weights'), or set allow_random_weights: true for a pipeline check"
            )
    if settings["kind"] == "folder":
        root = settings.get("root")
        if not root or not Path(root).is_dir():
            raise ConfigError(f"dataset {name!r}: folder root {root!r} does not exist")
    if settings["kind"] == "synthetic":
        synthetic = settings.get("synthetic", {})
        if synthetic.get("min_duration_s", 2.0) > synthetic.get("max_duration_s", 10.0):
            raise ConfigError(f"dataset {name!r}: min_duration_s exceeds max_duration_s")


def n_synthetic_shards(settings: Mapping) -> int:
    from avcmr.data.synthetic import SyntheticSpec

    n_clips = settings.get("synthetic", {}).get("n_clips", SyntheticSpec.n_clips)
    return math.ceil(n_clips / settings["features"]["shard_size"])
