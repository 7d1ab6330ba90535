"""Tests of `dscmr` (Zhen et al. CVPR 2019)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map

from avcmr.methods.base import NotFittedError
from avcmr.methods.dscmr import (
    DSCMR,
    DSCMRNetwork,
    common_space_loss,
    label_space_loss,
    modality_invariance_loss,
)

# Narrow layers and more epochs than the VEGAS defaults: 360 training pairs, seconds of CPU.
FAST = {"hidden_dim": 256, "common_dim": 128, "epochs": 10, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return DSCMR(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)


def _hand_j2(f_a: np.ndarray, f_v: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for left, right in ((f_a, f_a), (f_a, f_v), (f_v, f_v)):
        terms = []
        for i in range(len(left)):
            for j in range(len(right)):
                theta = (
                    left[i] @ right[j] / (np.linalg.norm(left[i]) * np.linalg.norm(right[j])) / 2
                )
                same = float(labels[i] == labels[j])
                terms.append(np.log(1 + np.exp(theta)) - same * theta)
        total += np.mean(terms)
    return total


def test_common_space_loss_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    f_a, f_v = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    labels = np.array([0, 1, 2, 0, 1, 1])
    onehot = torch.nn.functional.one_hot(torch.tensor(labels), 3).double()
    got = common_space_loss(torch.tensor(f_a), torch.tensor(f_v), onehot)
    assert float(got) == pytest.approx(_hand_j2(f_a, f_v, labels), rel=1e-10)


def test_label_space_and_invariance_losses_match_hand_computations():
    rng = np.random.default_rng(1)
    p_a, p_v = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    onehot = np.eye(3)[[0, 2, 1, 1, 0]]
    expected_j1 = np.mean(np.linalg.norm(p_v - onehot, axis=1)) + np.mean(
        np.linalg.norm(p_a - onehot, axis=1)
    )
    assert float(
        label_space_loss(torch.tensor(p_a), torch.tensor(p_v), torch.tensor(onehot))
    ) == pytest.approx(expected_j1)
    expected_j3 = np.mean(np.linalg.norm(p_v - p_a, axis=1))
    assert float(modality_invariance_loss(torch.tensor(p_a), torch.tensor(p_v))) == pytest.approx(
        expected_j3
    )


def test_default_network_is_the_papers_and_shares_the_top_layers():
    net = DSCMRNetwork(128, 1024, 2048, 1024, 10)
    assert net.audio_tower[2] is net.visual_tower[2]
    shapes = [
        (m.in_features, m.out_features)
        for m in (net.audio_tower[0], net.visual_tower[0], net.audio_tower[2], net.classifier)
    ]
    assert shapes == [(128, 2048), (1024, 2048), (2048, 1024), (1024, 10)]
    expected = (128 * 2048 + 2048) + (1024 * 2048 + 2048) + (2048 * 1024 + 1024) + (1024 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == expected
    defaults = DSCMR()
    assert (
        defaults.common_space_weight,
        defaults.invariance_weight,
        defaults.lr,
        defaults.batch_size,
    ) == (1e-3, 0.1, 1e-4, 100)
    assert defaults.betas == (0.5, 0.999)


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5
    assert fitted.embed_audio(adversarial_easy.audio_test).shape == (100, 128)


def test_history_and_selection(fitted):
    assert len(fitted.history_) == FAST["epochs"]
    assert all(
        {"epoch", "loss", "j1", "j2", "j3", "val_map", "seconds"} <= set(h) for h in fitted.history_
    )
    assert fitted.best_epoch_ == max(fitted.history_, key=lambda h: h["val_map"])["epoch"]
    # Training lowers the objective.
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]
    assert fitted.n_parameters() == (128 * 256 + 256) + (1024 * 256 + 256) + (256 * 128 + 128) + (
        128 * 10 + 10
    )
    assert str(fitted.device_) == "cpu"


def test_fit_is_deterministic_on_cpu(fitted, adversarial_easy):
    again = DSCMR(random_state=0, **FAST).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    np.testing.assert_array_equal(
        again.embed_visual(adversarial_easy.visual_test), fitted.embed_visual(adversarial_easy.visual_test)
    )
    np.testing.assert_array_equal(
        again.embed_audio(adversarial_easy.audio_test), fitted.embed_audio(adversarial_easy.audio_test)
    )


def test_use_before_fit_raises(adversarial_easy):
    with pytest.raises(NotFittedError):
        DSCMR().embed_visual(adversarial_easy.visual_test)
    with pytest.raises(NotFittedError):
        DSCMR().n_parameters()
