"""Tests of `agah` (Gu et al. ICMR 2019): loss terms, code-map update, hashing output, fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map, hamming_distance

from avcmr.methods.agah import (
    AGAH,
    AGAHNetwork,
    bit_balance_loss,
    code_map_loss,
    gradient_penalty,
    quantization_loss,
    triplet_all_cosine,
    update_code_map,
)
from avcmr.methods.base import NotFittedError, cosine_similarity

# The 8192-wide default is exercised by the architecture test; fits use narrow layers.
FAST = {
    "visual_hidden": (512, 256),
    "audio_hidden": (256,),
    "feature_dim": 128,
    "epochs": 6,
    "batches_per_epoch": None,
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return AGAH(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)


def test_triplet_loss_matches_loops():
    rng = np.random.default_rng(0)
    anchor, target = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    labels = np.array([0, 1, 0, 2, 1, 0])
    margin = 0.3

    def distance(a, b):
        return max(0.0, 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    expected = 0.0
    for i in range(6):
        for j in range(6):
            for k in range(6):
                if labels[i] == labels[j] and labels[i] != labels[k]:
                    expected += max(
                        0.0,
                        distance(anchor[i], target[j]) - distance(anchor[i], target[k]) + margin,
                    )
    onehot = torch.nn.functional.one_hot(torch.tensor(labels), 3).double()
    got = triplet_all_cosine(torch.tensor(anchor), onehot, torch.tensor(target), onehot, margin)
    assert float(got) == pytest.approx(expected, rel=1e-10)


def _official_code_map_update(u, v, m, labels_onehot):
    # Literal transcription of WendellGul/AGAH main.update_code_map (CODE_MAP aliases M).
    code_map = m
    u, v = np.sign(u), np.sign(v)
    n_classes, n_bits = m.shape
    s = np.eye(n_classes) * 2 - 1
    q = 2 * n_bits * (labels_onehot.T @ (u + v) + s @ m)
    for k in range(n_bits):
        ind = np.setdiff1d(np.arange(n_bits), k)
        term1 = code_map[:, ind] @ u[:, ind].T @ u[:, k]
        term2 = code_map[:, ind] @ v[:, ind].T @ v[:, k]
        term3 = code_map[:, ind] @ m[:, ind].T @ m[:, k]
        code_map[:, k] = np.sign(q[:, k] - 2 * (term1 + term2 + term3))
    return code_map


def test_code_map_update_matches_the_official_loop():
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal((40, 16)), rng.standard_normal((40, 16))
    labels = np.eye(5)[rng.integers(0, 5, 40)]
    m = np.sign(rng.standard_normal((5, 16)))
    expected = _official_code_map_update(u, v, m.copy(), labels)
    got = update_code_map(torch.tensor(v), torch.tensor(u), torch.tensor(m), torch.tensor(labels))
    np.testing.assert_array_equal(got.numpy(), expected)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    critic = torch.nn.Linear(4, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.5, -1.0, 2.0, 0.0]]))
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((np.sqrt(0.25 + 1 + 4) - 1) ** 2, rel=1e-6)


def test_bit_balance_code_map_and_quantisation_terms():
    codes = torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    theta = np.array([1.0, 1 / np.sqrt(2)])  # cos(|h|, 1) per row
    assert float(bit_balance_loss(codes)) == pytest.approx(
        np.sum(1 / (1 + np.exp(theta))), rel=1e-6
    )
    assert float(quantization_loss(codes)) == pytest.approx(0.25 + 0.25 + 0.0 + 0.0)
    code_map = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # h Mᵀ = [[0, 1], [1, 1]], target L(2y − 1) = [[2, −2], [−2, 2]].
    assert float(code_map_loss(codes, code_map, onehot)) == pytest.approx(4 + 9 + 9 + 1)


def test_default_architecture_and_official_weights():
    net = AGAHNetwork(128, 1024, (8192, 4096), (4096,), 512, 64, 10)
    linear = [
        (m.in_features, m.out_features)
        for m in net.visual_features
        if isinstance(m, torch.nn.Linear)
    ]
    assert linear == [(1024, 8192), (8192, 4096), (4096, 512)]
    linear = [
        (m.in_features, m.out_features)
        for m in net.audio_features
        if isinstance(m, torch.nn.Linear)
    ]
    assert linear == [(128, 4096), (4096, 512)]
    assert isinstance(net.visual_hash[1], torch.nn.Tanh) and net.visual_hash[0].out_features == 64
    defaults = AGAH()
    weights = (
        defaults.alpha,
        defaults.beta,
        defaults.gamma,
        defaults.eta,
        defaults.mu,
        defaults.margin,
    )
    assert weights == (1.0, 0.0, 0.001, 1.0, 1.0, 0.3)
    assert (defaults.n_bits, defaults.batch_size, defaults.lr, defaults.lr_multiplier) == (
        64,
        128,
        1e-4,
        10.0,
    )


def test_codes_are_pm1_and_similarity_is_negative_hamming(fitted, adversarial_easy):
    codes_a, codes_v = fitted.embed_audio(adversarial_easy.audio_test), fitted.embed_visual(adversarial_easy.visual_test)
    assert codes_a.shape == (100, 64) and set(np.unique(codes_a)) <= {-1.0, 1.0}
    assert set(np.unique(codes_v)) <= {-1.0, 1.0}
    assert fitted.similarity_kind == "hamming"
    np.testing.assert_array_equal(
        fitted.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), -hamming_distance(codes_a, codes_v)
    )
    assert set(np.unique(fitted.code_map_)) <= {-1.0, 0.0, 1.0} and fitted.code_map_.shape == (
        10,
        64,
    )


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5


def test_real_output_is_cosine_on_tanh_codes(fitted, adversarial_easy):
    real = AGAH(random_state=0, output="real", **FAST).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    assert real.similarity_kind == "cosine"
    real_a, real_v = real.embed_audio(adversarial_easy.audio_test), real.embed_visual(adversarial_easy.visual_test)
    assert np.abs(real_a).max() <= 1.0 and len(np.unique(real_a)) > 1000
    # Determinism: the same seed trains the same network whatever the output setting.
    np.testing.assert_array_equal(
        np.where(real_a >= 0, 1.0, -1.0), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_allclose(
        real.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), cosine_similarity(real_a, real_v)
    )
    np.testing.assert_allclose(
        fitted.real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), cosine_similarity(real_a, real_v)
    )


def test_history_selection_and_budget(fitted, adversarial_easy):
    assert [h["epoch"] for h in fitted.history_] == list(range(1, 7))
    keys = {
        "loss",
        "triplet",
        "bit_balance",
        "code_map",
        "quantization",
        "adversarial",
        "critic",
        "val_map",
        "pairs_seen",
    }
    assert all(keys <= set(h) for h in fitted.history_)
    assert fitted.best_epoch_ == max(fitted.history_, key=lambda h: h["val_map"])["epoch"]
    assert (
        fitted.history_[0]["pairs_seen"] == 360
    )  # full passes: every fit pair (400 − 40 validation)
    limited = AGAH(
        random_state=0, **{**FAST, "epochs": 1, "batches_per_epoch": 1, "batch_size": 32}
    )
    limited.fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)
    assert limited.history_[0]["pairs_seen"] == 32
    assert fitted.n_parameters() == sum(p.numel() for p in fitted.network_.parameters())


def test_use_before_fit_raises(adversarial_easy):
    with pytest.raises(NotFittedError):
        AGAH().embed_audio(adversarial_easy.audio_test)
    with pytest.raises(NotFittedError):
        AGAH().similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)
