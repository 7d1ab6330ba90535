"""Cluster-CCA (`c_cca`): closed form from class sums vs explicit within-class pair enumeration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from easy_features import average_map, make_easy_features

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.cluster_cca import ClusterCCA, cluster_covariances, fit_cluster_cca, one_hot


@pytest.fixture(scope="module")
def small_set():
    rng = np.random.default_rng(3)
    labels = np.array(["dog"] * 9 + ["rain"] * 5 + ["drum"] * 14)  # unbalanced classes
    rng.shuffle(labels)
    shared = rng.normal(size=(len(labels), 2))
    audio = shared @ rng.normal(size=(2, 5)) + rng.normal(size=(len(labels), 5)) + 4.0
    visual = shared @ rng.normal(size=(2, 4)) + rng.normal(size=(len(labels), 4)) - 2.0
    return audio, visual, labels


def enumerated_pair_covariances(audio, visual, labels):
    """Rasiwasia et al.'s definition: every within-class (audio j, visual k) combination, listed."""
    audio = audio - audio.mean(axis=0)
    visual = visual - visual.mean(axis=0)
    pairs_audio, pairs_visual = [], []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        for j in members:
            for k in members:
                pairs_audio.append(audio[j])
                pairs_visual.append(visual[k])
    pairs_audio, pairs_visual = np.array(pairs_audio), np.array(pairs_visual)
    n_pairs = len(pairs_audio)
    return (pairs_audio.T @ pairs_audio / n_pairs, pairs_visual.T @ pairs_visual / n_pairs,
            pairs_audio.T @ pairs_visual / n_pairs, n_pairs)


def generalized_eigen_cca(cov_aa, cov_vv, cov_av, n_components):
    """CCA of given covariances by another route than the code's whitening + SVD: the symmetric
    generalized eigenproblem [[0, Σ_av], [Σ_va, 0]] w = ρ [[Σ_aa, 0], [0, Σ_vv]] w (scipy.linalg.eigh).
    Its largest eigenvalues are the canonical correlations; eigh scales w to wᵀBw = 1, and for ρ > 0
    each half then has variance ½, so the unit-variance weights are √2 times the halves."""
    p = len(cov_aa)
    left = np.zeros((p + len(cov_vv),) * 2)
    left[:p, p:], left[p:, :p] = cov_av, cov_av.T
    values, vectors = scipy.linalg.eigh(left, scipy.linalg.block_diag(cov_aa, cov_vv))
    top = np.argsort(values)[::-1][:n_components]
    return values[top], np.sqrt(2.0) * vectors[:p, top], np.sqrt(2.0) * vectors[p:, top]


def test_class_sum_covariances_equal_explicit_pair_enumeration(small_set):
    audio, visual, labels = small_set
    membership, classes = one_hot(labels)
    assert list(classes) == ["dog", "drum", "rain"]
    cov_aa, cov_vv, cov_av = cluster_covariances(audio, visual, membership, beta=0.0)
    ref_aa, ref_vv, ref_av, n_pairs = enumerated_pair_covariances(audio, visual, labels)
    assert n_pairs == 9**2 + 5**2 + 14**2
    np.testing.assert_allclose(cov_aa, ref_aa, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov_vv, ref_vv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov_av, ref_av, rtol=1e-12, atol=1e-12)
    # The cluster cross-covariance is a sum of C rank-one terms.
    assert np.linalg.matrix_rank(cov_av) <= 3


def test_pure_cluster_cca_equals_cca_of_enumerated_covariances(small_set):
    audio, visual, labels = small_set
    reg = 1e-4
    model = ClusterCCA(n_components=2, beta=0.0, reg=reg).fit(audio, visual, labels)  # rank ≤ C − 1 = 2
    ref_aa, ref_vv, ref_av, _ = enumerated_pair_covariances(audio, visual, labels)
    correlations, weights_a, weights_v = generalized_eigen_cca(ref_aa + reg * np.eye(5), ref_vv + reg * np.eye(4),
                                                               ref_av, 2)
    assert correlations[0] > correlations[1] > 0.01
    np.testing.assert_allclose(model.correlations_, correlations, rtol=1e-10)
    # Same canonical directions up to the sign of each component.
    signs = np.sign(np.sum(model.cca_.weights_x_ * weights_a, axis=0))
    np.testing.assert_allclose(model.cca_.weights_x_, weights_a * signs, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(model.cca_.weights_y_, weights_v * signs, rtol=1e-7, atol=1e-10)


def test_blend_and_paired_auto_covariances(small_set):
    audio, visual, labels = small_set
    membership, _ = one_hot(labels)
    _, _, cluster_av = cluster_covariances(audio, visual, membership, beta=0.0)
    cov_aa, cov_vv, cov_av = cluster_covariances(audio, visual, membership, beta=0.2, auto_covariance="paired")
    joint = np.cov(np.hstack([audio, visual]).T)  # ddof=1
    np.testing.assert_allclose(cov_av, 0.2 * joint[:5, 5:] + 0.8 * cluster_av, rtol=1e-12)
    np.testing.assert_allclose(cov_aa, joint[:5, :5], rtol=1e-12)
    np.testing.assert_allclose(cov_vv, joint[5:, 5:], rtol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        cluster_covariances(audio, visual, membership, beta=1.5)
    with pytest.raises(ValueError, match="auto_covariance"):
        cluster_covariances(audio, visual, membership, auto_covariance="pairs")


def test_canonical_correlations_match_direct_svd(small_set):
    audio, visual, labels = small_set
    reg = 1e-4
    cca = fit_cluster_cca(audio, visual, labels, n_components=4, beta=0.2, reg=reg)
    membership, _ = one_hot(labels)
    cov_aa, cov_vv, cov_av = cluster_covariances(audio, visual, membership, beta=0.2)
    cov_aa, cov_vv = cov_aa + reg * np.eye(5), cov_vv + reg * np.eye(4)
    # Independent whitening (Cholesky instead of the symmetric inverse square root): same spectrum.
    chol_a, chol_v = np.linalg.cholesky(cov_aa), np.linalg.cholesky(cov_vv)
    t = scipy.linalg.solve_triangular(chol_a, scipy.linalg.solve_triangular(chol_v, cov_av.T, lower=True).T, lower=True)
    np.testing.assert_allclose(cca.correlations_, np.linalg.svd(t, compute_uv=False)[:4], rtol=1e-10)
    # The projections solve the constrained problem: unit variance, diagonal cross-covariance ρ.
    np.testing.assert_allclose(cca.weights_x_.T @ cov_aa @ cca.weights_x_, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(cca.weights_y_.T @ cov_vv @ cca.weights_y_, np.eye(4), atol=1e-9)
    np.testing.assert_allclose(cca.weights_x_.T @ cov_av @ cca.weights_y_, np.diag(cca.correlations_), atol=1e-9)


def test_torch_tensors_give_the_numpy_covariances(small_set):
    audio, visual, labels = small_set
    membership, _ = one_hot(labels)
    expected = cluster_covariances(audio, visual, membership, beta=0.2)
    got = cluster_covariances(torch.from_numpy(audio), torch.from_numpy(visual), torch.from_numpy(membership), beta=0.2)
    for left, right in zip(expected, got, strict=True):
        np.testing.assert_allclose(right.numpy(), left, rtol=1e-12, atol=1e-14)


def test_beats_random_and_is_deterministic():
    data = make_easy_features()
    train = (data["audio_train"], data["visual_train"], data["labels_train"])
    model = method_class("c_cca")(random_state=0).fit(*train)
    again = method_class("c_cca")(random_state=0).fit(*train)
    chance = average_map(method_class("random")(random_state=0).fit(*train), data)
    score = average_map(model, data)
    assert chance < 0.2
    assert score > 0.8 > chance + 0.5
    np.testing.assert_array_equal(model.embed_audio(data["audio_test"]), again.embed_audio(data["audio_test"]))
    assert model.embed_visual(data["visual_test"]).shape == (100, 10)
    assert model.n_parameters() == (128 + 1024) * 10


def test_use_before_fit_raises():
    model = ClusterCCA()
    with pytest.raises(NotFittedError):
        model.embed_audio(np.zeros((2, 5)))
    with pytest.raises(NotFittedError):
        model.similarity(np.zeros((2, 5)), np.zeros((2, 4)))
