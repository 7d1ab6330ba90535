"""`cca_nipals`: scikit-learn's iterative CCA, run on an exact row compression of the data."""

from __future__ import annotations

import numpy as np
import pytest
from easy_features import average_map, make_easy_features
from sklearn.cross_decomposition import CCA as SklearnCCA

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.cca_nipals import NipalsCCA, isometric_row_compression


def correlated_views(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 3))
    audio = shared @ rng.normal(size=(3, 8)) + rng.normal(size=(n, 8)) * 1.5 + 5.0
    visual = shared @ rng.normal(size=(3, 6)) + rng.normal(size=(n, 6)) * 1.5 - 1.0
    return audio, visual


def test_row_compression_keeps_the_gram_matrix_and_zero_means():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6))
    x[:, 4] = 2 * x[:, 1] - x[:, 2]  # rank-deficient on purpose
    x -= x.mean(axis=0)
    z = isometric_row_compression(x)
    assert z.shape == (6, 6)  # numerical rank 5, plus one row
    np.testing.assert_allclose(z.T @ z, x.T @ x, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(z.sum(axis=0), 0.0, atol=1e-9)
    small = rng.normal(size=(5, 6))
    assert isometric_row_compression(small) is small


def test_compressed_fit_equals_sklearn_on_the_full_data():
    audio, visual = correlated_views(600)
    audio[:, 3] = 7.0  # a constant column survives standardisation as zeros
    model = NipalsCCA(n_components=4).fit(audio, visual, np.zeros(600))
    assert model.cca_.x_rotations_.shape == (8, 4)
    # Reference: sklearn's own standardisation (ddof=1, hence the √(n/(n−1)) on the scores) and
    # NIPALS on all 600 rows.
    reference = SklearnCCA(n_components=4, scale=True).fit(audio, visual)
    ref_audio, ref_visual = reference.transform(audio, visual)
    np.testing.assert_allclose(model.embed_audio(audio), ref_audio * np.sqrt(600 / 599), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.embed_visual(visual), ref_visual * np.sqrt(600 / 599), rtol=1e-6, atol=1e-8)
    direct = NipalsCCA(n_components=4, compress_rows=False).fit(audio, visual, np.zeros(600))
    np.testing.assert_allclose(model.cca_.x_rotations_, direct.cca_.x_rotations_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.cca_.y_rotations_, direct.cca_.y_rotations_, rtol=1e-8, atol=1e-10)
    assert model.n_unconverged_ == 0


def test_score_correlations_are_the_canonical_correlations():
    audio, visual = correlated_views(3000, seed=2)
    model = NipalsCCA(n_components=4, tol=1e-12, max_iter=5000).fit(audio, visual, np.zeros(3000))
    scores_audio, scores_visual = model.embed_audio(audio), model.embed_visual(visual)
    score_correlations = [np.corrcoef(scores_audio[:, i], scores_visual[:, i])[0, 1] for i in range(4)]
    # Direct SVD of the whitened cross-covariance (unregularised classical CCA).
    joint = np.cov(np.hstack([audio, visual]).T)
    whiten_a = np.linalg.inv(np.linalg.cholesky(joint[:8, :8]))
    whiten_v = np.linalg.inv(np.linalg.cholesky(joint[8:, 8:]))
    expected = np.linalg.svd(whiten_a @ joint[:8, 8:] @ whiten_v.T, compute_uv=False)[:4]
    np.testing.assert_allclose(score_correlations, expected, rtol=1e-6)
    # Canonical deflation: scores of different components are uncorrelated within a view.
    off_diagonal = np.corrcoef(scores_audio.T) - np.eye(4)
    assert np.abs(off_diagonal).max() < 1e-6


def test_beats_random_and_is_deterministic():
    # 256-D visual features: with fewer pairs than dimensions the data cannot be row-compressed and
    # sklearn's 20 pseudo-inverses of 400 × 1024 matrices would dominate the test's run time.
    data = make_easy_features(visual_dim=256)
    train = (data["audio_train"], data["visual_train"], data["labels_train"])
    model = method_class("cca_nipals")(random_state=0).fit(*train)
    again = method_class("cca_nipals")(random_state=0).fit(*train)
    chance = average_map(method_class("random")(random_state=0).fit(*train), data)
    assert average_map(model, data) > chance + 0.3
    np.testing.assert_array_equal(model.embed_visual(data["visual_test"]), again.embed_visual(data["visual_test"]))
    assert model.embed_audio(data["audio_test"]).shape == (100, 10)
    assert model.n_parameters() == (128 + 256) * 10


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        NipalsCCA().embed_visual(np.zeros((2, 4)))


def test_fewer_pairs_than_dimensions_force_unit_correlations_and_are_reported(caplog):
    """With n − 1 < p + q the centred views' column spaces share ≥ p + q − (n − 1) dimensions: that many
    canonical correlations are exactly 1 on the training pairs, whatever the data (here pure noise)."""
    rng = np.random.default_rng(3)
    n, p, q = 40, 8, 36  # room 39: 8 + 36 − 39 = 5 forced unit correlations
    audio, visual = rng.normal(size=(n, p)), rng.normal(size=(n, q))
    # Independent count: the dimension of the intersection of the two centred column spaces, from
    # the ranks of the views and of their concatenation.
    centred_a, centred_v = audio - audio.mean(axis=0), visual - visual.mean(axis=0)
    shared = (np.linalg.matrix_rank(centred_a) + np.linalg.matrix_rank(centred_v)
              - np.linalg.matrix_rank(np.hstack([centred_a, centred_v])))
    assert shared == 5
    with caplog.at_level("WARNING", logger="avcmr.methods.cca_nipals"):
        model = NipalsCCA(n_components=3, max_iter=5000, tol=1e-14).fit(audio, visual, np.zeros(n))
    assert model.n_exact_correlations_ == shared
    assert "5 canonical correlations are exactly 1" in caplog.text
    scores_audio, scores_visual = model.embed_audio(audio), model.embed_visual(visual)
    correlations = [np.corrcoef(scores_audio[:, i], scores_visual[:, i])[0, 1] for i in range(3)]
    # Pure noise (population correlation 0), yet correlated to 1 on the training pairs, up to where
    # NIPALS stops: power iterations on a plateau of equal eigenvalues converge slowly.
    assert correlations[0] > 1 - 1e-4 and min(correlations) > 0.95
    caplog.clear()
    with caplog.at_level("WARNING", logger="avcmr.methods.cca_nipals"):
        enough = NipalsCCA(n_components=3).fit(*correlated_views(200), np.zeros(200))
    assert enough.n_exact_correlations_ == 0 and "exactly 1" not in caplog.text
