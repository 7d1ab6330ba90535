"""One function per workflow stage: read the stage's Parquet inputs, compute, write its outputs.

The Snakemake scripts in ``workflow/scripts`` are thin wrappers around these functions, which also
makes every stage callable (and testable) without Snakemake. One module per stage family, as the
rule files go: :mod:`~avcmr.stages.acquire` (clips, listing, manifest, weights),
:mod:`~avcmr.stages.extract` (decode, log-mel, VGGish, InceptionV3), :mod:`~avcmr.stages.split`
(split, visual PCA, pooling), :mod:`~avcmr.stages.train` (fit and evaluate) and
:mod:`~avcmr.stages.report` (map.tsv, failures, acquisition.tsv). Heavy libraries (TensorFlow,
torch) are imported inside the stages that need them so that light stages start fast.

A script imports its stage from its module; the names are also importable from here (benchmarks
and notebooks use ``from avcmr.stages import fit_and_evaluate``).
"""

from avcmr.stages.acquire import (
    concat_manifest,
    download_shard,
    fetch_weights,
    index_folder_shard,
    synthesize_shard,
    write_listing,
)
from avcmr.stages.extract import (
    configure_tensorflow,
    decode_shard,
    inception_shard,
    logmel_shard,
    vggish_shard,
)
from avcmr.stages.report import acquisition_summary, concat_failures, write_map_table
from avcmr.stages.split import (
    clip_means,
    fit_visual_pca,
    load_visual_pca,
    make_split,
    pool_features,
)
from avcmr.stages.train import (
    SEEDS_TOGETHER,
    fit_and_evaluate,
    fit_and_evaluate_seeds,
    load_feature_arrays,
)

__all__ = [
    "SEEDS_TOGETHER",
    "acquisition_summary",
    "clip_means",
    "concat_failures",
    "concat_manifest",
    "configure_tensorflow",
    "decode_shard",
    "download_shard",
    "fetch_weights",
    "fit_and_evaluate",
    "fit_and_evaluate_seeds",
    "fit_visual_pca",
    "inception_shard",
    "index_folder_shard",
    "load_feature_arrays",
    "load_visual_pca",
    "logmel_shard",
    "make_split",
    "pool_features",
    "synthesize_shard",
    "vggish_shard",
    "write_listing",
    "write_map_table",
]
