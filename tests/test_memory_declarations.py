"""The memory the workflow declares for its dataset-wide jobs (avcmr.resources) grows with the
dataset and covers what the real stage functions allocate: each stage runs in a fresh subprocess on
two dataset sizes, its peak resident set (VmHWM) is read, and the declaration must be at least the
peak and grow at least as much as the peak between the two sizes."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from avcmr import resources
from avcmr.io import schemas
from avcmr.io.parquet import vector_column, write_table

PROVENANCE = {"dataset": "memory", "config_hash": "0"}


def peak_rss_mb(code: str) -> float:
    """Run ``code`` in a fresh interpreter (one thread) and return its peak resident set in MB."""
    probe = code + textwrap.dedent("""
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                print("VmHWM", int(line.split()[1]) / 1024)
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600,
                            env={"OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": ":".join(sys.path)})
    assert result.returncode == 0, result.stderr[-3000:]
    return float(result.stdout.split("VmHWM")[-1])


def test_declarations_grow_with_the_dataset():
    small, large = (2_000, 400), (200_000, 15_446)  # clips, test clips (VGGSound-sized)
    assert resources.visual_pca_mem_mb(large[0], 100, 10) > resources.visual_pca_mem_mb(small[0], 100, 10)
    assert resources.pool_mem_mb(large[0], 100, 10, 1024) > resources.pool_mem_mb(small[0], 100, 10, 1024)
    for method in ("cca", "random"):
        assert (resources.fit_evaluate_mem_mb(*large, 1024, method)
                > resources.fit_evaluate_mem_mb(*small, 1024, method))
    assert resources.table_mem_mb(large[1], 54) > resources.table_mem_mb(small[1], 54)
    # The dense scores of `random` are the one quadratic term: 15,446² × 12 B ≈ 2.7 GB.
    extra = resources.fit_evaluate_mem_mb(*large, 1024, "random") - resources.fit_evaluate_mem_mb(*large, 1024, "cca")
    assert extra == pytest.approx(15_446**2 * 12 / 2**20, abs=1)


def test_expected_test_clips_bounds_the_balanced_split():
    from avcmr.data.split import balanced_split

    rng = np.random.default_rng(0)
    labels = rng.choice([f"c{i}" for i in range(7)], size=1_003, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05])
    n_test = int((np.asarray(balanced_split(pd.Series(labels), 0.8, 0, None)) == "test").sum())
    assert n_test <= resources.expected_test_clips(1_003, 0.8, None, 7) <= n_test + 7
    assert resources.expected_test_clips(1_003, 0.8, 189, 7) == 189


def test_dense_score_methods_are_those_without_embedding_scores():
    import avcmr.methods  # noqa: F401  (registers every method)
    from avcmr.methods.base import RetrievalMethod
    from avcmr.methods.registry import available_methods, method_class

    dense = {name for name in available_methods() if method_class(name).similarity is not RetrievalMethod.similarity}
    assert dense == set(resources.DENSE_SCORE_METHODS)


def _write_features(folder, n_clips: int, n_test: int) -> str:
    from avcmr.data.synthetic_features import make_synthetic_features, write_feature_table

    path = folder / f"features_{n_clips}.parquet"
    write_feature_table(make_synthetic_features(n_clips=n_clips, train_size=n_clips - n_test), path, PROVENANCE)
    return str(path)


@pytest.mark.parametrize("method", ["cca", "random"])
def test_fit_evaluate_declaration_covers_the_measured_peak(tmp_path, method):
    sizes = [(1_000, 300), (5_000, 2_500)]
    measured, declared = [], []
    for n_clips, n_test in sizes:
        features = _write_features(tmp_path, n_clips, n_test)
        out = tmp_path / f"{method}_{n_clips}"
        # One training job: the method over two seeds, one after the other (the declaration is one fit's).
        measured.append(peak_rss_mb(f"""
from avcmr.stages.train import fit_and_evaluate_seeds
outputs = {{kind: ['{out}' + f'_seed{{seed}}.{{kind}}.parquet' for seed in (0, 1)]
           for kind in ('evaluation', 'history', 'precision', 'embeddings')}}
fit_and_evaluate_seeds({features!r}, {method!r}, {{}}, [0, 1], {{**outputs, 'model': [None, None]}}, {PROVENANCE!r})
"""))
        declared.append(resources.fit_evaluate_mem_mb(n_clips, n_test, 1024, method, threads=1))
    print(f"fit_evaluate {method}: declared {declared} MB, measured peak {measured} MB")
    assert declared[0] >= measured[0] and declared[1] >= measured[1], (declared, measured)
    assert declared[1] - declared[0] >= measured[1] - measured[0] > 0, (declared, measured)


def _write_frame_features(folder, n_clips: int, frames_per_clip: int, shard_size: int, rng):
    """Shards of random VGGish and InceptionV3 frame features and a 80/20 split of ``n_clips``."""
    clip_ids = [f"clip{i:06d}" for i in range(n_clips)]
    audio_paths, visual_paths = [], []
    for shard, start in enumerate(range(0, n_clips, shard_size)):
        ids = np.repeat(clip_ids[start : start + shard_size], frames_per_clip).tolist()
        seconds = np.tile(np.arange(frames_per_clip, dtype=np.int32), len(ids) // frames_per_clip)
        for column, dim, paths in (("audio_128", 128, audio_paths), ("visual_2048", 2048, visual_paths)):
            path = folder / f"{column}_{n_clips}_shard{shard}.parquet"
            vectors = rng.random((len(ids), dim), dtype=np.float32)
            table = pa.table({"clip_id": ids, "second": seconds, column: vector_column(vectors)})
            write_table(table, path, schemas.frame_vectors(column, dim), PROVENANCE)
            paths.append(str(path))
    split_path = folder / f"split_{n_clips}.parquet"
    labels = [f"class{i % 10}" for i in range(n_clips)]
    split = ["test" if i % 5 == 0 else "train" for i in range(n_clips)]
    write_table(pa.table({"clip_id": clip_ids, "label": labels, "split": split}), split_path, schemas.SPLIT, PROVENANCE)
    return audio_paths, visual_paths, str(split_path)


def test_visual_pca_and_pool_declarations_cover_the_measured_peak(tmp_path):
    rng = np.random.default_rng(0)
    frames_per_clip, shard_size, pca_dim = 3, 200, 256
    measured = {"visual_pca": [], "pool": []}
    declared = {"visual_pca": [], "pool": []}
    for n_clips in (400, 3_000):
        audio, visual, split = _write_frame_features(tmp_path, n_clips, frames_per_clip, shard_size, rng)
        pca = tmp_path / f"pca_{n_clips}.parquet"
        measured["visual_pca"].append(peak_rss_mb(f"""
from avcmr.stages.split import fit_visual_pca
fit_visual_pca({visual!r}, {split!r}, '{pca}', {pca_dim}, False, {PROVENANCE!r})
"""))
        measured["pool"].append(peak_rss_mb(f"""
from avcmr.stages.split import pool_features
pool_features({audio!r}, {visual!r}, '{pca}', {split!r}, '{tmp_path}/features_{n_clips}.parquet', {PROVENANCE!r})
"""))
        declared["visual_pca"].append(resources.visual_pca_mem_mb(n_clips, shard_size, frames_per_clip))
        declared["pool"].append(resources.pool_mem_mb(n_clips, shard_size, frames_per_clip, pca_dim))
    for stage in measured:
        print(f"{stage}: declared {declared[stage]} MB, measured peak {measured[stage]} MB")
        declared_mb, measured_mb = declared[stage], measured[stage]
        assert declared_mb[0] >= measured_mb[0] and declared_mb[1] >= measured_mb[1], (stage, declared_mb, measured_mb)
        assert declared_mb[1] > declared_mb[0]
        assert declared_mb[1] - declared_mb[0] >= measured_mb[1] - measured_mb[0], (stage, declared_mb, measured_mb)
