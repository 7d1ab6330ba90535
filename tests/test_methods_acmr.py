"""Tests of `acmr` and of the pieces it shares with the other adversarial baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map

from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.acmr import (
    ACMR,
    GradientReversal,
    ModalityClassifier,
    acmr_triplet_loss,
    audio_projector,
    grl_strength,
    hardest_other_class,
    visual_projector,
)
from avcmr.methods.base import NotFittedError
from avcmr.methods.model_selection import carve_validation, validation_map

FAST = {"epochs": 6, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return ACMR(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)


def test_gradient_reversal_is_identity_forward_and_flips_the_gradient():
    x = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    layer = GradientReversal(0.7)
    y = layer(x)
    assert torch.equal(y, x)
    (y * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([[-0.7, -1.4, -2.1]]))


def test_grl_schedule_is_the_dann_formula():
    assert grl_strength(0.0) == 0.0
    assert grl_strength(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_strength(1.0) == pytest.approx(0.9999092, abs=1e-7)


def test_modality_classifier_sends_reversed_gradient_to_the_embedding():
    torch.manual_seed(0)
    classifier = ModalityClassifier(8)
    embedding = torch.randn(5, 8, requires_grad=True)
    classifier.reversal.strength = 1.0
    classifier(embedding).sum().backward()
    reversed_grad = embedding.grad.clone()
    embedding.grad = None
    classifier.layers(embedding).sum().backward()
    assert torch.allclose(reversed_grad, -embedding.grad)
    # Its own parameters get the ordinary gradient (it is the player that minimises the loss).
    assert [m.out_features for m in classifier.layers] == [4, 2, 2]


def test_projector_architectures_follow_the_official_demo():
    visual = [m for m in visual_projector(1024, 40) if isinstance(m, torch.nn.Linear)]
    audio = [m for m in audio_projector(128, 40) if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in visual] == [(1024, 512), (512, 100), (100, 40)]
    assert [(m.in_features, m.out_features) for m in audio] == [(128, 40), (40, 100), (100, 40)]
    assert all(isinstance(m, torch.nn.Tanh) for m in list(visual_projector(1024, 40))[1::2])


def test_hardest_other_class_picks_the_most_similar_item_of_another_class():
    features = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    index, valid = hardest_other_class(features, labels)
    assert index.tolist() == [2, 2, 1, 1]
    assert valid.all()
    _, valid = hardest_other_class(features, torch.zeros(4, dtype=torch.long))
    assert not valid.any()


def test_triplet_loss_matches_a_hand_computation():
    rng = np.random.default_rng(1)
    e_a, e_v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    neg_v, neg_a = np.array([1, 0, 3, 2]), np.array([2, 3, 0, 1])
    margin, alpha = 0.1, 5.0
    positive = 0.5 * sum(np.sum((e_v[i] - e_a[i]) ** 2) for i in range(4))
    v_negative = 0.5 * sum(np.sum((e_v[i] - e_a[neg_v[i]]) ** 2) for i in range(4))
    a_negative = 0.5 * sum(np.sum((e_a[i] - e_v[neg_a[i]]) ** 2) for i in range(4))
    expected = max(0.0, margin + alpha * positive - v_negative) + max(
        0.0, margin + alpha * positive - a_negative
    )
    got = acmr_triplet_loss(
        torch.tensor(e_a),
        torch.tensor(e_v),
        torch.tensor(neg_v),
        torch.tensor(neg_a),
        margin,
        alpha,
    )
    assert float(got) == pytest.approx(expected)
    # Far negatives and close positives switch the hinge off.
    anchors = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    swap = torch.tensor([1, 0])
    zero = acmr_triplet_loss(anchors, anchors + 1e-3, swap, swap, 0.1, 5.0)
    assert float(zero) == 0.0


def test_carve_validation_is_stratified_disjoint_and_capped():
    labels = np.repeat(np.arange(10), 50)
    fit, validation = carve_validation(labels, 0.2, random_state=3)
    assert len(validation) == 100 and len(fit) == 400
    assert not set(fit) & set(validation)
    assert np.bincount(labels[validation]).tolist() == [10] * 10
    _, capped = carve_validation(np.repeat(np.arange(10), 1000), 0.5, random_state=0)
    assert len(capped) == 1000
    fit_all, none = carve_validation(labels, 0.0, random_state=0)
    assert len(fit_all) == 500 and len(none) == 0


def test_validation_map_agrees_with_the_evaluation_module():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    audio, visual = rng.standard_normal((60, 5)), rng.standard_normal((60, 5))
    scores = (
        audio
        @ visual.T
        / np.linalg.norm(audio, axis=1)[:, None]
        / np.linalg.norm(visual, axis=1)[None, :]
    )
    ap = evaluate_scores(scores, labels, labels)
    assert validation_map(audio, visual, labels) == pytest.approx(
        (ap["a2v"].mean() + ap["v2a"].mean()) / 2
    )


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5
    assert fitted.embed_audio(adversarial_easy.audio_test).shape == (100, 40)
    assert fitted.embed_visual(adversarial_easy.visual_test).shape == (100, 40)


def test_history_and_model_selection_use_the_training_split(fitted):
    assert [h["epoch"] for h in fitted.history_] == list(range(1, FAST["epochs"] + 1))
    assert all(
        {"loss", "label_loss", "triplet_loss", "domain_loss", "val_map"} <= set(h)
        for h in fitted.history_
    )
    best = max(fitted.history_, key=lambda h: h["val_map"])
    assert fitted.best_epoch_ == best["epoch"]
    assert str(fitted.device_) == "cpu"
    expected = (1024 * 512 + 512 + 512 * 100 + 100 + 100 * 40 + 40) + (
        128 * 40 + 40 + 40 * 100 + 100 + 100 * 40 + 40
    )
    expected += 40 * 10 + 10 + (40 * 20 + 20 + 20 * 10 + 10 + 10 * 2 + 2)
    assert fitted.n_parameters() == expected


def test_fit_is_deterministic_on_cpu(fitted, adversarial_easy):
    again = ACMR(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)
    np.testing.assert_array_equal(
        again.embed_audio(adversarial_easy.audio_test), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_array_equal(
        again.embed_visual(adversarial_easy.visual_test), fitted.embed_visual(adversarial_easy.visual_test)
    )


def test_use_before_fit_raises(adversarial_easy):
    method = ACMR()
    with pytest.raises(NotFittedError):
        method.embed_audio(adversarial_easy.audio_test)
    with pytest.raises(NotFittedError):
        method.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)
