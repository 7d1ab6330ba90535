"""`tnn_c_cca`: vectorised batch-all triplet loss vs an explicit triplet loop; stage 1 on the fit
split only; retrieval, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from easy_features import average_map, make_easy_features

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.cluster_cca import fit_cluster_cca
from avcmr.methods.model_selection import stratified_validation_split
from avcmr.methods.tnn_cluster_cca import TripletClusterCCA, batch_all_triplet_loss

TEST_PARAMS = {"epochs": 3, "batch_size": 90, "device": "cpu"}


@pytest.fixture(scope="module")
def easy():
    return make_easy_features()


@pytest.fixture(scope="module")
def fitted(easy):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    return method_class("tnn_c_cca")(random_state=0, **TEST_PARAMS).fit(*train)


def explicit_batch_all(anchors, candidates, anchor_labels, candidate_labels, margin):
    """Reference: enumerate every (anchor i, positive j, negative k) triplet one by one."""
    def distance(x, y):
        return 1.0 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y))

    total, active, valid = 0.0, 0, 0
    for i, j, k in itertools.product(range(len(anchors)), range(len(candidates)), range(len(candidates))):
        if anchor_labels[i] == candidate_labels[j] and anchor_labels[i] != candidate_labels[k]:
            value = max(0.0, distance(anchors[i], candidates[j]) - distance(anchors[i], candidates[k]) + margin)
            total += value
            active += value > 1e-16
            valid += 1
    return total / max(active, 1), total / valid


def test_vectorised_loss_equals_explicit_triplets():
    rng = np.random.default_rng(0)
    anchors, candidates = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    labels = np.array([0, 1, 1, 2, 0, 2, 1])
    for margin in (0.1, 0.4, 2.5):
        expected_active, expected_valid = explicit_batch_all(anchors, candidates, labels, labels, margin)
        tensors = (torch.from_numpy(anchors), torch.from_numpy(candidates), torch.from_numpy(labels), torch.from_numpy(labels))
        assert batch_all_triplet_loss(*tensors, margin).item() == pytest.approx(expected_active, rel=1e-12)
        assert batch_all_triplet_loss(*tensors, margin, reduction="valid").item() == pytest.approx(expected_valid, rel=1e-12)
    # With a margin above every distance gap, all valid triplets are active: both reductions agree.
    assert explicit_batch_all(anchors, candidates, labels, labels, 10.0)[0] == pytest.approx(
        explicit_batch_all(anchors, candidates, labels, labels, 10.0)[1])
    # Gradients flow to both towers' outputs.
    a = torch.from_numpy(anchors).requires_grad_()
    c = torch.from_numpy(candidates).requires_grad_()
    batch_all_triplet_loss(a, c, torch.from_numpy(labels), torch.from_numpy(labels), 0.4).backward()
    assert a.grad.abs().sum() > 0 and c.grad.abs().sum() > 0


def test_no_active_triplet_gives_zero():
    embedded = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    assert batch_all_triplet_loss(embedded, embedded, labels, labels, margin=0.4).item() == 0.0


def test_beats_random_and_improves_on_its_cluster_cca_input(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    chance = average_map(method_class("random")(random_state=0).fit(*train), easy)
    score = average_map(fitted, easy)
    assert score > chance + 0.5
    assert fitted.embed_audio(easy["audio_test"]).shape == (100, 10)
    # Stage 1 is the blended Cluster-CCA of the c_cca baseline, fitted on the fit split only: the
    # validation pairs that rank the epochs are unseen by both stages.
    fit_rows, validation_rows = stratified_validation_split(easy["labels_train"], 0.1, seed=0)
    assert len(validation_rows) == 40
    stage_one = fit_cluster_cca(*(part[fit_rows] for part in train), n_components=10, beta=0.2, reg=1e-4)
    np.testing.assert_allclose(fitted.cca_.weights_x_, stage_one.weights_x_)
    np.testing.assert_allclose(fitted.cca_.mean_y_, easy["visual_train"][fit_rows].mean(axis=0))
    on_all_pairs = fit_cluster_cca(*train, n_components=10, beta=0.2, reg=1e-4)
    assert np.abs(on_all_pairs.mean_y_ - fitted.cca_.mean_y_).max() > 1e-6
    # Training and validation triplet losses went down.
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]
    assert min(r["val_loss"] for r in fitted.history_) < fitted.history_[0]["val_loss"]
    tower = (10 * 100 + 100) + 2 * (100 * 100 + 100) + (100 * 10 + 10)
    assert fitted.n_parameters() == (128 + 1024) * 10 + 2 * tower


def test_symmetric_variant_trains(easy):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    model = TripletClusterCCA(symmetric=True, random_state=0, **TEST_PARAMS).fit(*train)
    assert average_map(model, easy) > 0.5


def test_deterministic_on_cpu(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    again = method_class("tnn_c_cca")(random_state=0, **TEST_PARAMS).fit(*train)
    np.testing.assert_array_equal(fitted.embed_visual(easy["visual_test"]), again.embed_visual(easy["visual_test"]))
    assert [r["loss"] for r in fitted.history_] == [r["loss"] for r in again.history_]


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        TripletClusterCCA().embed_audio(np.zeros((2, 128)))
