import numpy as np
import pyarrow as pa
import pytest

from avcmr.features.pca import StreamingPCA
from avcmr.io.parquet import read_table, vector_column, write_table
from avcmr.stages.split import fit_visual_pca, load_visual_pca


def test_streaming_pca_matches_batch_svd(rng):
    x = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    pca = StreamingPCA(5)
    for chunk in np.array_split(x, 7):
        pca.partial_fit(chunk)
    pca.finalize()
    centred = x - x.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(pca.explained_variance_, singular[:5] ** 2 / 299, rtol=1e-8)
    # Same subspace, component by component up to sign.
    np.testing.assert_allclose(np.abs(np.sum(pca.components_ * vt[:5], axis=1)), 1.0, atol=1e-8)


def test_too_few_frames_for_the_dimension_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="lower features.pca_dim"):
        StreamingPCA(10).fit(rng.normal(size=(8, 20)))


def write_frames(path, clip_ids, vectors):
    table = pa.table({"clip_id": clip_ids, "second": list(range(len(clip_ids))), "visual_2048": vector_column(vectors)})
    write_table(table, path)


def test_visual_pca_is_fit_on_training_frames_only(tmp_path, rng):
    clip_ids = [f"c{i // 4}" for i in range(80)]  # 20 clips × 4 frames
    frames = rng.normal(size=(80, 2048)).astype(np.float32)
    split = pa.table({"clip_id": [f"c{i}" for i in range(20)], "label": ["a"] * 20,
                      "split": ["train"] * 15 + ["test"] * 5})
    write_table(split, tmp_path / "split.parquet")
    write_frames(tmp_path / "frames.parquet", clip_ids, frames)
    fit_visual_pca([tmp_path / "frames.parquet"], tmp_path / "split.parquet", tmp_path / "pca_a.parquet", 8, False, {})

    changed = frames.copy()
    changed[60:] = rng.normal(5.0, 3.0, size=(20, 2048))  # test clips c15..c19
    write_frames(tmp_path / "frames.parquet", clip_ids, changed)
    fit_visual_pca([tmp_path / "frames.parquet"], tmp_path / "split.parquet", tmp_path / "pca_b.parquet", 8, False, {})

    a, b = load_visual_pca(tmp_path / "pca_a.parquet"), load_visual_pca(tmp_path / "pca_b.parquet")
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    np.testing.assert_allclose(a.mean_, frames[:60].mean(0), atol=1e-5)
    assert read_table(tmp_path / "pca_a.parquet").num_rows == 9  # mean + 8 components
