"""Tests of the VEGAS-scale feature-level synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays

SMALL = {"n_clips": 500, "n_classes": 6, "audio_dim": 16, "visual_dim": 48, "train_size": 400}


@pytest.fixture(scope="module")
def table():
    return make_synthetic_features(**SMALL, random_state=5)


def test_columns_dtypes_and_vector_shapes(table):
    assert list(table.columns) == ["clip_id", "label", "split", "audio", "visual"]
    assert len(table) == 500
    assert all(isinstance(clip_id, str) for clip_id in table["clip_id"])
    assert table["clip_id"].is_unique
    assert table["label"].dtype == np.int64
    assert set(table["label"]) == set(range(6))
    for column, dim in (("audio", 16), ("visual", 48)):
        vectors = table[column]
        assert all(vector.dtype == np.float32 and vector.shape == (dim,) for vector in vectors)
        assert np.isfinite(np.stack(vectors.to_numpy())).all()


def test_split_sizes_are_exact_and_class_stratified(table):
    counts = table["split"].value_counts()
    assert counts["train"] == 400 and counts["test"] == 100
    train_shares = table.loc[table["split"] == "train", "label"].value_counts(normalize=True).sort_index()
    test_shares = table.loc[table["split"] == "test", "label"].value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(train_shares.to_numpy(), test_shares.to_numpy(), atol=0.02)


def test_split_arrays_returns_aligned_numpy_blocks(table):
    audio_train, visual_train, y_train, audio_test, visual_test, y_test = split_arrays(table)
    assert audio_train.shape == (400, 16) and visual_train.shape == (400, 48) and y_train.shape == (400,)
    assert audio_test.shape == (100, 16) and visual_test.shape == (100, 48) and y_test.shape == (100,)
    assert audio_train.dtype == np.float32 and visual_test.dtype == np.float32
    first_test_row = table[table["split"] == "test"].iloc[0]
    np.testing.assert_array_equal(audio_test[0], first_test_row["audio"])
    np.testing.assert_array_equal(visual_test[0], first_test_row["visual"])
    assert y_test[0] == first_test_row["label"]


def test_same_seed_same_table_other_seed_other_table(table):
    again = make_synthetic_features(**SMALL, random_state=5)
    pd.testing.assert_frame_equal(table[["clip_id", "label", "split"]], again[["clip_id", "label", "split"]])
    np.testing.assert_array_equal(np.stack(table["visual"].to_numpy()), np.stack(again["visual"].to_numpy()))
    other = make_synthetic_features(**SMALL, random_state=6)
    assert not np.allclose(np.stack(table["audio"].to_numpy()), np.stack(other["audio"].to_numpy()))


def top_canonical_correlations(audio: np.ndarray, visual: np.ndarray, k: int = 3) -> float:
    """Sum of the k largest canonical correlations (cosines of principal angles, via QR)."""
    q_audio, _ = np.linalg.qr(audio - audio.mean(axis=0))
    q_visual, _ = np.linalg.qr(visual - visual.mean(axis=0))
    return float(np.linalg.svd(q_audio.T @ q_visual, compute_uv=False)[:k].sum())


def shuffle_within_classes(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    order = np.arange(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order[members] = rng.permutation(members)
    return order


@pytest.mark.parametrize("pair_correlation", [0.0, 1.0])
def test_label_and_pair_latent_link_the_modalities(pair_correlation):
    """Re-pairing clips within their class keeps the class link and cuts the pair link; re-pairing
    across classes cuts both. The pair latent must matter exactly when pair_correlation > 0."""
    table = make_synthetic_features(
        n_clips=2000, n_classes=6, audio_dim=16, visual_dim=48, train_size=1600,
        pair_correlation=pair_correlation, random_state=1,
    )  # fmt: skip
    audio, visual, labels, *_ = split_arrays(table)
    audio, visual = audio.astype(np.float64), visual.astype(np.float64)
    rng = np.random.default_rng(0)
    true_pairs = top_canonical_correlations(audio, visual)
    same_class_pairs = top_canonical_correlations(audio, visual[shuffle_within_classes(labels, rng)])
    random_pairs = top_canonical_correlations(audio, visual[rng.permutation(len(labels))])
    assert same_class_pairs > random_pairs + 0.3
    if pair_correlation > 0:
        assert true_pairs > same_class_pairs + 0.5
    else:
        assert true_pairs == pytest.approx(same_class_pairs, abs=0.1)


def test_invalid_train_size_is_refused():
    with pytest.raises(ValueError, match="train_size"):
        make_synthetic_features(n_clips=100, train_size=100)
