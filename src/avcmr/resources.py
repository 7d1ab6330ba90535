"""Memory to declare for the dataset-wide jobs (``mem_mb`` of ``visual_pca``, ``pool``,
``fit_evaluate`` and the result tables), from the clip and test counts known when the workflow is
parsed. Pure Python (no numpy), so that Snakemake's parse stays fast.

Each estimate is a fixed part — the job's interpreter with its libraries — plus what the job holds
per clip, per test clip or per frame of a shard, as counted from the code of the stage
(:mod:`avcmr.stages`). The per-item sizes are bytes of the arrays and tables the stage builds, times
the number of copies alive at its peak; ``tests/test_memory_declarations.py`` runs the real stage
functions on two dataset sizes and checks that the declaration covers the measured peak and grows
with the data. Every estimate is multiplied by the attempt number by the rules (retries).
"""

from __future__ import annotations

import math

MB = 2**20

# Python, numpy, pandas, pyarrow, scikit-learn and the package (≈ 150 MB measured), Snakemake's
# script preamble and allocator slack: every job's floor.
INTERPRETER_MB = 400
# On a cluster the job's memory also holds Snakemake twice: the job's own (sacct's batch step,
# ≈ 600–650 MB on the single-node SLURM of tests/test_cluster_slurm.py) and the one that runs the
# rule inside its step (≈ 450 MB before the script: a result-table job whose script peaks at
# ≈ 110 MB reached 1,174–1,241 MB in all).
JOB_SNAKEMAKE_MB = 1100
# + torch and the method's own constant state (networks, KCCA's ≤ 2,000 Nyström landmarks, …):
# fit_and_evaluate peaks at ≈ 600 MB on a small dataset (measured with `cca` on 2,000 clips).
TRAINING_LIBRARIES_MB = 700
# What every job holds before its data: Snakemake's processes and the interpreter with its libraries.
JOB_FLOOR_MB = JOB_SNAKEMAKE_MB + INTERPRETER_MB

AUDIO_DIM = 128  # VGGish embedding
INCEPTION_DIM = 2048  # InceptionV3 pooled features
FLOAT32, FLOAT64 = 4, 8

# visual_pca: the streaming statistics (2,048² float64 scatter, its eigendecomposition and a few
# temporaries), one shard's frame features (table, array, training subset) at a time, and the split
# (clip ids in a pandas table and a set: ≈ 300 B per clip).
PCA_STATISTICS_COPIES = 5
SHARD_FRAME_COPIES = 4
SPLIT_BYTES_PER_CLIP = 300
# Both stages read one shard after the other: the peak grows by ≈ 1 MB per shard read (measured:
# 18 MB from 2 to 20 shards of 200 clips; freed frame arrays the allocator does not hand back).
GROWTH_PER_SHARD_MB = 2

# pool: per clip its mean audio vector (float32) and mean PCA-projected visual vector (float64) in
# dicts of small arrays (≈ 100 B of object overhead each), both stacked again, then the output
# table (float32 columns): ≈ 3 float64 copies of the pooled vector. Per frame of the current shard:
# its Inception features, their float64 projection and a pandas copy for the group-by.
POOLED_COPIES = 3
POOL_FRAME_COPIES = 4

# fit_evaluate: the features table (float32) as Arrow, as arrays and as the per-split subsets;
# the training pairs again as float64 in the method (validation split, standardisation, …).
FEATURE_TABLE_COPIES = 3
TRAINING_FLOAT64_COPIES = 4
# Per test clip: per-query P@K at 100 scopes × 2 directions as float64, then as a long table of
# (direction, clip id, label, k, precision) rows in pandas and Arrow (≈ 150 B per row, counted twice).
PRECISION_ROWS_PER_TEST_CLIP = 2 * 100
PRECISION_BYTES_PER_ROW = 300
# Blocked evaluation (avcmr.evaluation.metrics): per thread one block of ≤ 1.5 M scores with
# ≈ 40 B of buffers per score.
EVALUATION_BLOCK_MB = 60
# Methods whose own ``similarity`` returns a dense test × test float64 matrix (no embeddings):
# the matrix and its float32 copy (12 B per pair).
DENSE_SCORE_METHODS = ("random",)
DENSE_BYTES_PER_PAIR = FLOAT64 + FLOAT32

# Tables (map, table2/3/4): per (method, seed) its per-query AP (2 rows per test clip, ≈ 150 B
# each in pandas with clip id and label strings) read together for the paired tests.
AP_BYTES_PER_ROW = 150


def _mb(n_bytes: float) -> int:
    return int(math.ceil(n_bytes / MB))


def visual_pca_mem_mb(n_clips: int, shard_size: int, frames_per_clip: int) -> int:
    statistics = PCA_STATISTICS_COPIES * INCEPTION_DIM**2 * FLOAT64
    shard = SHARD_FRAME_COPIES * shard_size * frames_per_clip * INCEPTION_DIM * FLOAT32
    growth = GROWTH_PER_SHARD_MB * math.ceil(n_clips / shard_size)
    return JOB_FLOOR_MB + growth + _mb(statistics + shard + SPLIT_BYTES_PER_CLIP * n_clips)


def pool_mem_mb(n_clips: int, shard_size: int, frames_per_clip: int, pca_dim: int) -> int:
    pooled = POOLED_COPIES * n_clips * (AUDIO_DIM + pca_dim) * FLOAT64 + n_clips * (2 * 100 + SPLIT_BYTES_PER_CLIP)
    shard = POOL_FRAME_COPIES * shard_size * frames_per_clip * (INCEPTION_DIM * FLOAT32 + pca_dim * FLOAT64)
    growth = GROWTH_PER_SHARD_MB * math.ceil(n_clips / shard_size)
    return JOB_FLOOR_MB + growth + _mb(pooled + shard)


def fit_evaluate_mem_mb(n_clips: int, n_test: int, pca_dim: int, method: str, threads: int = 2) -> int:
    feature_bytes = (AUDIO_DIM + pca_dim) * FLOAT32
    features = FEATURE_TABLE_COPIES * n_clips * feature_bytes
    training = TRAINING_FLOAT64_COPIES * (n_clips - n_test) * (AUDIO_DIM + pca_dim) * FLOAT64
    precision = n_test * PRECISION_ROWS_PER_TEST_CLIP * PRECISION_BYTES_PER_ROW
    dense = DENSE_BYTES_PER_PAIR * n_test**2 if method in DENSE_SCORE_METHODS else 0
    evaluation = max(threads, 1) * EVALUATION_BLOCK_MB * MB
    return JOB_FLOOR_MB + TRAINING_LIBRARIES_MB + _mb(features + training + precision + dense + evaluation)


def table_mem_mb(n_test: int, n_runs: int) -> int:
    return JOB_FLOOR_MB + _mb(n_runs * 2 * n_test * AP_BYTES_PER_ROW)


def expected_test_clips(n_clips: int, train_fraction: float, test_size: int | None, n_classes: int) -> int:
    """Test clips of the class-balanced split: ``test_size`` when set, else the per-class remainder
    of ``train_fraction`` (rounding can add up to one clip per class: counted, as an upper bound)."""
    if test_size:
        return min(int(test_size), n_clips)
    return min(n_clips, int(math.ceil((1.0 - train_fraction) * n_clips)) + max(n_classes, 1))
