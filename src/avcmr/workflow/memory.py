"""``mem_mb`` of the dataset-wide jobs (visual PCA, pooling, training, result tables) from the
dataset's settings and size (clips, classes, longest clip; :meth:`avcmr.workflow.listings.Listings.size`).
:mod:`avcmr.resources` explains the terms; the rules multiply the value by the attempt (retries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from avcmr.workflow.settings import fit_threads

STAGES = ("visual_pca", "pool", "fit_evaluate", "table")


def dataset_test_clips(spec: Mapping, size: tuple[int, int, float]) -> int:
    """The test clips the dataset's split will have (:func:`avcmr.resources.expected_test_clips`)."""
    from avcmr.resources import expected_test_clips

    n_clips, n_classes, _ = size
    split = spec["split"]
    return expected_test_clips(n_clips, split["train_fraction"], split.get("test_size"), n_classes)


def stage_mem_mb(stage: str, spec: Mapping, size: tuple[int, int, float], method: str = "ours") -> int:
    """MB a job of ``stage`` declares for a dataset of ``size`` (first attempt)."""
    from avcmr import resources

    features = spec["features"]
    n_clips, _, longest_s = size
    frames_per_clip = math.ceil(longest_s * features["fps"])
    if stage == "visual_pca":
        return resources.visual_pca_mem_mb(n_clips, features["shard_size"], frames_per_clip)
    if stage == "pool":
        return resources.pool_mem_mb(n_clips, features["shard_size"], frames_per_clip, features["pca_dim"])
    if stage == "fit_evaluate":
        return resources.fit_evaluate_mem_mb(
            n_clips, dataset_test_clips(spec, size), features["pca_dim"], method, fit_threads(spec)
        )
    if stage == "table":
        evaluation = spec["evaluation"]
        return resources.table_mem_mb(
            dataset_test_clips(spec, size), len(evaluation["methods"]) * len(evaluation["seeds"])
        )
    raise ValueError(f"no memory estimate for {stage!r}; stages: {', '.join(STAGES)}")
