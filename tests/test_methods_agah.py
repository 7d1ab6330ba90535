"""Tests of `agah` (Gu et al. ICMR 2019): loss terms, code-map and feature-map updates, label
attention, Frobenius normalisation, hashing output, the `agah_real` row, fitting."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map, hamming_distance

from avcmr.methods import make_method
from avcmr.methods.agah import AGAH
from avcmr.methods.agah_losses import (
    bit_balance_loss,
    code_map_loss,
    gradient_penalty,
    quantization_loss,
    triplet_all_cosine,
    update_code_map,
)
from avcmr.methods.agah_network import (
    AGAHNetwork,
    BatchFrobeniusNormalisation,
    class_prototypes,
    label_attention,
)
from avcmr.methods.base import NotFittedError, cosine_similarity

# The 8192-wide default is exercised by the architecture test; fits use narrow layers. The
# official Frobenius normalisation shrinks every feature row to ≈ 1/√batch, so the hash layer needs
# on the order of a hundred steps at the official rate before codes differ between items; the
# fits here take ten times the official rate (and no decay) to get there in 36 steps.
FAST = {
    "visual_hidden": (512, 256),
    "audio_hidden": (256,),
    "feature_dim": 128,
    "epochs": 12,
    "batches_per_epoch": None,
    "lr": 1e-3,
    "lr_decay_every": None,
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return AGAH(random_state=0, **FAST).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )


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


def test_label_attention_matches_the_official_formula_row_by_row():
    rng = np.random.default_rng(2)
    features = np.abs(rng.standard_normal((5, 6))) * 0.3
    prototypes = rng.standard_normal((4, 6))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    expected = np.zeros_like(features)
    for i, f in enumerate(features):
        weights = [1.0 / (1.0 + np.exp(-5.0 * f @ p)) for p in prototypes]
        attended = sum(w * p for w, p in zip(weights, prototypes, strict=True)) / sum(weights)
        expected[i] = 0.8 * f + 0.2 * attended
    got = label_attention(torch.tensor(features), torch.tensor(prototypes), 0.8, 5.0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    # λ = 1 switches the attention off.
    np.testing.assert_array_equal(
        label_attention(torch.tensor(features), torch.tensor(prototypes), 1.0, 5.0).numpy(),
        features,
    )


def test_feature_map_is_the_normalised_class_mean_of_both_modalities():
    rng = np.random.default_rng(3)
    audio, visual = rng.standard_normal((12, 5)), rng.standard_normal((12, 5))
    labels = np.array([0, 1, 0, 1, 1, 0, 3, 3, 0, 1, 3, 0])  # class 2 has no member
    previous = rng.standard_normal((4, 5))
    expected = previous.copy()
    for c in (0, 1, 3):
        mean = (visual[labels == c].mean(axis=0) + audio[labels == c].mean(axis=0)) / 2
        expected[c] = mean / np.linalg.norm(mean)
    got = class_prototypes(
        torch.tensor(audio),
        torch.tensor(visual),
        torch.tensor(np.eye(4)[labels]),
        torch.tensor(previous),
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_frobenius_normalisation_in_training_and_its_running_estimate_in_eval():
    normalisation = BatchFrobeniusNormalisation(batch_size=4, momentum=0.1)
    first = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    out = normalisation(first)
    norm = float(torch.sqrt((first.detach() ** 2).sum()))
    np.testing.assert_allclose(out.detach().numpy(), first.detach().numpy() / norm, rtol=1e-12)
    # No gradient through the norm: d(Σ out)/d first = 1/‖F‖ everywhere.
    out.sum().backward()
    np.testing.assert_allclose(first.grad.numpy(), np.full((4, 3), 1.0 / norm), rtol=1e-12)
    second = torch.randn(4, 3, dtype=torch.float64)
    normalisation(second)
    mean_square = 0.9 * (first.detach() ** 2).sum(1).mean() + 0.1 * (second**2).sum(1).mean()
    normalisation.eval()
    rows = torch.randn(3, 3, dtype=torch.float64)
    np.testing.assert_allclose(
        normalisation(rows).numpy(), (rows / torch.sqrt(4 * mean_square)).numpy(), rtol=1e-6
    )
    # In eval mode a row's output does not depend on the rows embedded with it.
    np.testing.assert_array_equal(normalisation(rows[:1]).numpy(), normalisation(rows).numpy()[:1])


def test_default_architecture_and_official_weights():
    net = AGAHNetwork(128, 1024, (8192, 4096), (4096,), 512, 64, 10)
    # The official feature modules end in ReLU; the feature map is one 512-D prototype per class.
    assert isinstance(net.visual_features[-1], torch.nn.ReLU)
    assert isinstance(net.audio_features[-1], torch.nn.ReLU)
    assert net.prototypes.shape == (10, 512)
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
    assert (defaults.attention_mix, defaults.attention_sharpness) == (0.8, 5.0)
    assert (defaults.lr_decay_factor, defaults.lr_decay_every) == (0.6, 100)
    assert (defaults.n_bits, defaults.batch_size, defaults.lr, defaults.lr_multiplier) == (
        64,
        128,
        1e-4,
        10.0,
    )


def test_codes_are_pm1_and_similarity_is_negative_hamming(fitted, adversarial_easy):
    codes_a, codes_v = (
        fitted.embed_audio(adversarial_easy.audio_test),
        fitted.embed_visual(adversarial_easy.visual_test),
    )
    assert codes_a.shape == (100, 64) and set(np.unique(codes_a)) <= {-1.0, 1.0}
    assert set(np.unique(codes_v)) <= {-1.0, 1.0}
    assert fitted.similarity_kind == "hamming"
    np.testing.assert_array_equal(
        fitted.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test),
        -hamming_distance(codes_a, codes_v),
    )
    assert set(np.unique(fitted.code_map_)) <= {-1.0, 0.0, 1.0} and fitted.code_map_.shape == (
        10,
        64,
    )


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    # Measured 0.51 against a chance MAP of 0.10 (36 steps; with the official normalisation the
    # codes only start to separate after ≈ 15 of them).
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.3


def test_test_codes_depend_on_the_learned_feature_map(fitted, adversarial_easy):
    np.testing.assert_allclose(np.linalg.norm(fitted.feature_map_, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(fitted.feature_map_, fitted.network_.prototypes.numpy())
    before = fitted.real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)
    # Other prototypes, or no attention at all, give other test outputs.
    other_map = copy.deepcopy(fitted)
    random_map = torch.nn.functional.normalize(torch.randn(fitted.network_.prototypes.shape), dim=1)
    other_map.network_.prototypes.copy_(random_map)
    no_attention = copy.deepcopy(fitted)
    no_attention.network_.attention_mix = 1.0
    for changed in (other_map, no_attention):
        after = changed.real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)
        assert np.abs(before - after).max() > 1e-3


def test_real_output_is_cosine_on_tanh_codes(fitted, adversarial_easy):
    real = make_method("agah_real", FAST, random_state=0).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    assert isinstance(real, AGAH) and real.name == "agah_real" and real.output == "real"
    assert "output" not in real.get_params()
    with pytest.raises(ValueError, match="output"):
        make_method("agah_real", {"output": "codes"})
    assert real.similarity_kind == "cosine"
    real_a, real_v = (
        real.embed_audio(adversarial_easy.audio_test),
        real.embed_visual(adversarial_easy.visual_test),
    )
    assert np.abs(real_a).max() <= 1.0 and len(np.unique(real_a)) > 1000
    # Determinism: the same seed trains the same network whatever the output setting.
    np.testing.assert_array_equal(
        np.where(real_a >= 0, 1.0, -1.0), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_allclose(
        real.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test),
        cosine_similarity(real_a, real_v),
    )
    np.testing.assert_allclose(
        fitted.real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test),
        cosine_similarity(real_a, real_v),
    )


def test_history_selection_and_budget(fitted, adversarial_easy):
    assert [h["epoch"] for h in fitted.history_] == list(range(1, FAST["epochs"] + 1))
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
    limited.fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    assert limited.history_[0]["pairs_seen"] == 32
    assert fitted.n_parameters() == sum(p.numel() for p in fitted.network_.parameters())


def test_use_before_fit_raises(adversarial_easy):
    with pytest.raises(NotFittedError):
        AGAH().embed_audio(adversarial_easy.audio_test)
    with pytest.raises(NotFittedError):
        AGAH().similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)


def test_model_files_saved_before_the_module_split_find_their_classes():
    """A model file pickles the fitted network under its module path: files saved when the network
    was defined in ``avcmr.methods.agah`` name it (and its normalisation layers) there."""
    import pickle

    from avcmr.methods import agah, agah_losses, agah_network

    for name in ("AGAHNetwork", "BatchFrobeniusNormalisation"):
        pickled = f"cavcmr.methods.agah\n{name}\n.".encode()  # a protocol-0 reference to the class
        assert pickle.loads(pickled) is getattr(agah_network, name)
    assert agah.update_code_map is agah_losses.update_code_map
