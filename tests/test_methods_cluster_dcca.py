"""`c_dcca`: cluster-DCCA loss, class-stratified batches, retrieval and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easy_features import average_map, make_easy_features
from test_methods_cluster_cca import generalized_eigen_cca

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.cluster_cca import cluster_covariances, one_hot
from avcmr.methods.cluster_dcca import ClusterDeepCCA, cluster_correlation_loss, stratified_batches

TEST_PARAMS = {"epochs": 30, "device": "cpu"}


@pytest.fixture(scope="module")
def easy():
    return make_easy_features()


@pytest.fixture(scope="module")
def fitted(easy):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    return method_class("c_dcca")(random_state=0, **TEST_PARAMS).fit(*train)


def test_stratified_batches_partition_and_balance():
    codes = np.repeat(np.arange(4), [400, 300, 200, 100])
    batches = list(stratified_batches(codes, 200, np.random.default_rng(0)))
    assert [len(batch) for batch in batches] == [200] * 5
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    for batch in batches:
        counts = np.bincount(codes[batch], minlength=4)
        np.testing.assert_allclose(counts, [80, 60, 40, 20], atol=2)
    # A trailing batch under half the size is merged into the previous one.
    assert [len(b) for b in stratified_batches(codes[:240], 100, np.random.default_rng(0))] == [100, 140]


def test_loss_is_minus_top_k_cluster_correlations():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=120)
    h_a = rng.normal(size=(120, 12)) + labels[:, None]
    h_v = rng.normal(size=(120, 9)) - labels[:, None]
    membership, _ = one_hot(labels)
    loss = cluster_correlation_loss(torch.from_numpy(h_a).float(), torch.from_numpy(h_v).float(),
                                    torch.from_numpy(membership), beta=0.2, reg=1e-4, top_k=3)
    cov_aa, cov_vv, cov_av = cluster_covariances(h_a.astype(np.float32).astype(np.float64),
                                                 h_v.astype(np.float32).astype(np.float64), membership, beta=0.2)
    correlations, _, _ = generalized_eigen_cca(cov_aa + 1e-4 * np.eye(12), cov_vv + 1e-4 * np.eye(9), cov_av, 3)
    assert correlations.min() > 0.1
    assert loss.item() == pytest.approx(-correlations.sum(), rel=1e-9)


def test_beats_random(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    chance = average_map(method_class("random")(random_state=0).fit(*train), easy)
    assert average_map(fitted, easy) > chance + 0.3
    assert fitted.embed_visual(easy["visual_test"]).shape == (100, 10)
    assert fitted.device_ == "cpu"
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]
    assert all(set(record) >= {"epoch", "loss", "seconds"} for record in fitted.history_)
    batch_norm = 2 * 128 + 2 * 1024
    dense = (128 * 100 + 100) + (1024 * 100 + 100) + 2 * 3 * (100 * 100 + 100)
    assert fitted.n_parameters() == batch_norm + dense + 2 * 100 * 10


def test_deterministic_on_cpu(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    again = method_class("c_dcca")(random_state=0, **TEST_PARAMS).fit(*train)
    np.testing.assert_array_equal(fitted.embed_audio(easy["audio_test"]), again.embed_audio(easy["audio_test"]))
    other_seed = method_class("c_dcca")(random_state=1, **TEST_PARAMS).fit(*train)
    assert not np.array_equal(fitted.embed_audio(easy["audio_test"]), other_seed.embed_audio(easy["audio_test"]))


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        ClusterDeepCCA().embed_visual(np.zeros((2, 1024)))
