"""What decides each table: the part of a dataset's settings a rule's output depends on, hashed
into its ``provenance`` parameter (a change reruns the rule, any other change does not), and the
header lines of the result tables.
"""

from __future__ import annotations

from collections.abc import Mapping

from avcmr.config import config_hash
from avcmr.data.feature_file import RELEASED_FEATURES_WEIGHTS, released_features_line
from avcmr.features.weights import describe_weights, uses_random_weights
from avcmr.routes import Resolution, route_line
from avcmr.workflow.settings import Spec, method_params

# Download settings that change which files land (a change re-runs the download shards); the
# pacing settings (sleep, back-off, attempts, rate limit, time-out, cookies) do not.
DOWNLOAD_CONTENT_KEYS = ("url_template", "format", "exact_cuts", "duration_tolerance_s")
# The settings that decide a dataset's listing (and, after it, the downloads).
LISTING_KEYS = (
    "kind", "manifest", "manifest_sha256", "classes", "duplicates", "window", "clip_seconds", "segments",
    "segments_sha256", "class_names", "max_per_class", "max_clips", "synthetic", "root", "extensions",
    "n_shards", "layout",
)
# The settings that decide what unpacking a release archive gives (its member table).
ARCHIVE_KEYS = (
    "archive", "archive_sha256", "archive_bytes", "layout", "annotations", "classes", "duplicates",
    "archive_limits", "root",
)
# Keys no extracted table depends on: they come in at the split and evaluation levels.
NOT_EXTRACTION_KEYS = ("split", "evaluation", "method_params", "budget", "paper_reference")
# Evaluation settings of how jobs run, not of what they compute (threads, seeds per job).
EXECUTION_EVALUATION_KEYS = ("threads_per_fit", "fit_jobs")
LEVELS = ("extraction", "split", "evaluation")


def download_content(spec: Mapping) -> dict:
    """The download settings that change which files land."""
    settings = spec.get("download", {})
    return {k: settings[k] for k in DOWNLOAD_CONTENT_KEYS if k in settings}


def listing_spec(spec: Mapping) -> dict:
    """The part of a dataset's spec that decides its listing (and nothing else, so that other
    changes do not re-run the listing and, after it, the downloads)."""
    subset = {k: spec[k] for k in LISTING_KEYS if k in spec}
    if spec.get("max_clips") or spec.get("max_per_class"):  # seeded draws of the list
        subset["split"] = {"seed": spec["split"]["seed"]}
    return subset


def listing_provenance(spec: Mapping) -> dict:
    """Provenance of the listing and the downloads (only what changes them)."""
    parts = {
        **listing_spec(spec),
        "shard_size": spec["features"]["shard_size"],
        "download": download_content(spec),
    }
    return {"dataset": spec["name"], "config_hash": config_hash(parts)}


def archive_settings(spec: Mapping) -> dict:
    """The dataset's archive settings (:data:`ARCHIVE_KEYS`): what decides the unpacked member table."""
    return {k: spec[k] for k in ARCHIVE_KEYS if k in spec}


def archive_provenance(spec: Mapping) -> dict:
    """The settings that decide what the unpacking gives (a change re-unpacks)."""
    return {"dataset": spec["name"], "config_hash": config_hash(archive_settings(spec))}


def backbone_facts(spec: Mapping) -> dict:
    """The backbone weights a dataset's features come from, as the tables' metadata records them
    (a features dataset has no backbones: its file's authors extracted the features)."""
    if spec["kind"] == "features":
        return {"backbone_weights": RELEASED_FEATURES_WEIGHTS, "random_weights": False}
    return {
        "backbone_weights": describe_weights(spec["backbone_weights"]),
        "random_weights": uses_random_weights(spec["backbone_weights"]),
    }


def table_provenance(level: str, config: Mapping, spec: Spec, method: str | None = None) -> dict:
    """What produced a table, at three levels of the config that can change it.

    extraction: dataset + feature settings; split: + split; evaluation: + methods (``method``: the
    one a training job fits, else every configured one). Keeping the levels apart means that adding
    a method does not re-extract features.
    """
    if level not in LEVELS:
        raise ValueError(f"provenance level must be one of {LEVELS}, got {level!r}")
    parts = {k: spec[k] for k in spec if k not in NOT_EXTRACTION_KEYS}
    if "download" in parts:  # pacing settings (sleep, retries, ...) change no table
        parts["download"] = download_content(spec)
    if "features" in parts:  # threads per job are an execution setting: no rerun
        parts["features"] = {k: v for k, v in parts["features"].items() if k != "backbone_threads"}
    if level in ("split", "evaluation"):
        parts["split"] = spec["split"]
    if level == "evaluation":
        # Threads per job and how seeds map to jobs are execution settings, like download
        # pacing: no rerun.
        parts["evaluation"] = {
            k: v for k, v in spec["evaluation"].items() if k not in EXECUTION_EVALUATION_KEYS
        }
        # A training job depends on its own method's parameters only.
        methods = [method] if method is not None else spec["evaluation"]["methods"]
        parts["method_params"] = {name: method_params(config, spec, name) for name in methods}
    return {"dataset": spec["name"], "config_hash": config_hash(parts), **backbone_facts(spec)}


def acquisition_header(spec: Mapping) -> list[str]:
    """acquisition.tsv's route line. Only what the dataset's entry says, so that the same entry
    given by --configfile or chosen by kind auto reruns nothing."""
    line = route_line(spec["name"], spec)
    return [line] if line else []


def route_header(spec: Mapping, routes: Resolution) -> list[str]:
    """Header lines naming the dataset's route (none for the synthetic set) and, for an auto
    dataset, how it was chosen."""
    lines = acquisition_header(spec)
    if spec["name"] in routes.chosen:
        lines.append(routes.chosen[spec["name"]].header_line())
    return [line for line in lines if line]


def map_header(config: Mapping, spec: Spec, routes: Resolution) -> list[str]:
    """The '# ' header lines of map.tsv and the tables: dataset, weights, config hash, route."""
    facts = backbone_facts(spec)
    lines = [
        f"dataset: {spec['name']} ({spec['kind']})",
        "backbone weights: " + "; ".join(f"{k}={v}" for k, v in facts["backbone_weights"].items()),
        f"config hash: {table_provenance('evaluation', config, spec)['config_hash']}",
    ]
    if spec["kind"] == "features":
        lines.append(f"features: {released_features_line(spec)}")
    lines += route_header(spec, routes)
    if facts["random_weights"]:
        lines.append("WARNING: random backbone weights; these numbers are a pipeline check, not paper results")
    return lines
