"""Tests of the paper's dual-subspace model (`ours`) and its ablations.

Networks in the training tests are narrower than the paper's (hidden widths are hyper-parameters)
so that the whole file runs in well under a minute on two CPU cores; the loss tests use the
functions the estimators train with.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.base import NotFittedError
from avcmr.methods.dual_subspace import (
    DualSubspace,
    ExplicitImplicitShared,
    ExplicitOnly,
    ImplicitOnly,
    consistency_loss,
    discriminative_loss,
    dual_subspace_losses,
    orthogonality_penalty,
)
from avcmr.methods.registry import method_class

SMALL_NETS = {"audio_hidden": (64, 64), "visual_hidden": (64, 128), "batch_size": 128}


@pytest.fixture(scope="module")
def easy_features():
    """600 clips with well separated classes and a weak pair nuisance: a learnable task."""
    table = make_synthetic_features(
        n_clips=600, train_size=480, class_separation=3.0, pair_correlation=0.2, noise=0.5, random_state=3
    )
    return split_arrays(table)


@pytest.fixture(scope="module")
def fitted_ours(easy_features):
    audio_train, visual_train, labels_train, *_ = easy_features
    return DualSubspace(epochs=5, random_state=0, device="cpu", **SMALL_NETS).fit(audio_train, visual_train, labels_train)


def average_map(method, audio, visual, labels) -> float:
    per_query = evaluate_scores(method.similarity(audio, visual), labels, labels)
    return float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2)


def chance_map(labels) -> float:
    shares = np.bincount(labels) / len(labels)
    return float((shares**2).sum())


# -- the loss terms ---------------------------------------------------------------------------
def numpy_canonical_correlation_sum(h_a: np.ndarray, h_v: np.ndarray, reg: float) -> float:
    """Σ singular values of Σaa^{-1/2} Σav Σvv^{-1/2}, written independently of the torch code."""
    n = len(h_a)
    h_a = h_a - h_a.mean(axis=0)
    h_v = h_v - h_v.mean(axis=0)
    cov_aa = h_a.T @ h_a / (n - 1) + reg * np.eye(h_a.shape[1])
    cov_vv = h_v.T @ h_v / (n - 1) + reg * np.eye(h_v.shape[1])
    cov_av = h_a.T @ h_v / (n - 1)

    def inverse_sqrt(matrix):
        values, vectors = np.linalg.eigh(matrix)
        return vectors @ np.diag(values**-0.5) @ vectors.T

    t = inverse_sqrt(cov_aa) @ cov_av @ inverse_sqrt(cov_vv)
    return float(np.linalg.svd(t, compute_uv=False).sum())


def test_corr_term_is_minus_the_sum_of_canonical_correlations():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((200, 10))
    explicit_audio = shared + 0.8 * rng.standard_normal((200, 10))
    explicit_visual = shared @ rng.standard_normal((10, 10)) + 0.8 * rng.standard_normal((200, 10))
    implicit = torch.zeros(200, 4)
    onehot = torch.nn.functional.one_hot(torch.arange(200) % 4, 4).float()
    losses = dual_subspace_losses(
        torch.tensor(explicit_audio, dtype=torch.float32),
        torch.tensor(explicit_visual, dtype=torch.float32),
        implicit,
        implicit,
        onehot,
    )
    expected = -numpy_canonical_correlation_sum(explicit_audio, explicit_visual, reg=1e-4)
    assert float(losses["corr"]) == pytest.approx(expected, abs=1e-4)
    # Ten strongly shared dimensions: a large sum of correlations, each below one.
    assert -10.0 < expected < -5.0


def test_dis_term_matches_hand_computation():
    implicit_audio = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    implicit_visual = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # Audio rows: ‖(0,0)‖ = 0, ‖(0,−1)‖ = 1, ‖(2,4)‖ = √20; visual rows: √2, 0, 0.
    expected = (0.0 + 1.0 + np.sqrt(20.0)) / 3 + (np.sqrt(2.0) + 0.0 + 0.0) / 3
    assert float(discriminative_loss(implicit_audio, implicit_visual, onehot)) == pytest.approx(expected, rel=1e-6)


def test_cons_term_matches_hand_computation():
    explicit_audio = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    explicit_visual = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    implicit_audio = torch.tensor([[1.0], [3.0]])
    implicit_visual = torch.tensor([[2.0], [0.0]])

    # Raw literal sum: ‖Q_exᵀQ_im‖²_F + ‖H_im^aᵀH_im^v‖²_F.
    # Q_exᵀQ_im = [1·1 + 0·3 + 1·2 + 2·0, 0·1 + 2·3 + 1·2 + 0·0] = [3, 8]; H_im^aᵀH_im^v = 2.
    raw = consistency_loss(explicit_audio, explicit_visual, implicit_audio, implicit_visual, normalized=False)
    assert float(raw) == pytest.approx(3.0**2 + 8.0**2 + 2.0**2)

    # Normalised: centre columns, L2-normalise rows, mean over entries of (AᵀB / n_rows)².
    # H_im^a centred = [−1, 1] → rows ±1; H_im^v centred = [1, −1] → rows ±1; AᵀB/2 = −1.
    # Q_ex centred = [[0,−0.75],[−1,1.25],[0,0.25],[1,−0.75]], rows normalised:
    #   [0,−1], [−1,1.25]/√2.5625, [0,1], [1,−0.75]/1.25; Q_im centred = [−0.5, 1.5, 0.5, −1.5],
    #   rows normalised = [−1, 1, 1, −1].
    q_ex = np.array([[0.0, -1.0], np.array([-1.0, 1.25]) / np.sqrt(2.5625), [0.0, 1.0], np.array([1.0, -0.75]) / 1.25])
    q_im = np.array([-1.0, 1.0, 1.0, -1.0])
    cross = q_ex.T @ q_im / 4
    expected = np.mean(cross**2) + 1.0
    normalised = consistency_loss(explicit_audio, explicit_visual, implicit_audio, implicit_visual, normalized=True)
    assert float(normalised) == pytest.approx(expected, rel=1e-5)


def test_normalised_orthogonality_is_batch_size_free():
    rng = np.random.default_rng(1)
    left = torch.tensor(rng.standard_normal((100, 3)), dtype=torch.float32)
    right = left[:, :2] + torch.tensor(rng.standard_normal((100, 2)), dtype=torch.float32)
    once = orthogonality_penalty(left, right)
    repeated = orthogonality_penalty(left.repeat(5, 1), right.repeat(5, 1))
    assert float(repeated) == pytest.approx(float(once), rel=1e-4)
    assert 0.0 < float(once) < 1.0


def test_gradients_reach_every_parameter(fitted_ours, easy_features):
    audio_train, visual_train, labels_train, *_ = easy_features
    model = fitted_ours
    networks = model.networks_
    audio = torch.tensor(model.audio_scaler_.transform(audio_train[:200]), dtype=torch.float32)
    visual = torch.tensor(model.visual_scaler_.transform(visual_train[:200]), dtype=torch.float32)
    class_index = torch.as_tensor(np.searchsorted(model.classes_, labels_train[:200]))
    onehot = torch.nn.functional.one_hot(class_index, len(model.classes_)).float()
    losses = model._batch_losses(model._forward(networks, audio, visual), onehot)
    networks.zero_grad(set_to_none=True)
    losses["total"].backward()
    gradients = {name: parameter.grad for name, parameter in networks.named_parameters()}
    networks.zero_grad(set_to_none=True)
    assert set(gradients) == {name for name, _ in networks.named_parameters()}
    for name, gradient in gradients.items():
        assert gradient is not None, name
        assert torch.isfinite(gradient).all(), name
        assert gradient.abs().sum() > 0, name


# -- the estimators ---------------------------------------------------------------------------
def test_registry_names_map_to_the_four_variants():
    assert method_class("ours") is DualSubspace
    assert method_class("explicit") is ExplicitOnly
    assert method_class("implicit") is ImplicitOnly
    assert method_class("ex_im_share") is ExplicitImplicitShared


def test_embedding_before_fit_raises():
    model = DualSubspace()
    with pytest.raises(NotFittedError):
        model.embed_audio(np.zeros((2, 128)))
    with pytest.raises(NotFittedError):
        model.embed_visual(np.zeros((2, 1024)))


def test_ours_learns_the_easy_task_far_above_chance(fitted_ours, easy_features):
    *_, audio_test, visual_test, labels_test = easy_features
    score = average_map(fitted_ours, audio_test, visual_test, labels_test)
    assert score > 0.9
    assert score > chance_map(labels_test) + 0.6
    embedding = fitted_ours.embed_audio(audio_test)
    assert embedding.shape == (len(audio_test), 10)


def test_ours_history_and_fitted_state(fitted_ours):
    history = fitted_ours.history_
    assert [record["epoch"] for record in history] == list(range(1, len(history) + 1))
    for record in history:
        assert {"epoch", "total", "corr", "dis", "cons", "val_map"} <= set(record)
        assert all(np.isfinite(value) for value in record.values())
    # L_corr of 10 components lies in [−10, 0]; the correlations grow during training.
    assert -10.0 <= history[-1]["corr"] < history[0]["corr"] <= 0.0
    assert history[-1]["dis"] < history[0]["dis"]
    assert fitted_ours.best_epoch_ == 1 + int(np.argmax([record["val_map"] for record in history]))
    assert fitted_ours.device_ == "cpu"
    n_classes = len(fitted_ours.classes_)
    layer_sizes = {
        "f": [128, 64, 64, 10],
        "g": [1024, 64, 128, 10],
        "psi": [128, 64, 64, n_classes],
        "tau": [1024, 64, 128, n_classes],
    }
    expected = sum(n_in * n_out + n_out for sizes in layer_sizes.values() for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))
    assert fitted_ours.n_parameters() == expected


def test_two_cpu_fits_with_one_seed_give_identical_embeddings(easy_features):
    audio_train, visual_train, labels_train, audio_test, visual_test, _ = easy_features
    settings = {"epochs": 2, "random_state": 7, "device": "cpu", **SMALL_NETS}
    first = DualSubspace(**settings).fit(audio_train, visual_train, labels_train)
    second = DualSubspace(**settings).fit(audio_train, visual_train, labels_train)
    np.testing.assert_array_equal(first.embed_audio(audio_test), second.embed_audio(audio_test))
    np.testing.assert_array_equal(first.embed_visual(visual_test), second.embed_visual(visual_test))
    other_seed = DualSubspace(**{**settings, "random_state": 8}).fit(audio_train, visual_train, labels_train)
    assert not np.allclose(first.embed_audio(audio_test), other_seed.embed_audio(audio_test))


@pytest.mark.parametrize(
    ("method", "params", "embedding_dim", "unused_terms"),
    [
        (ExplicitOnly, {}, 10, ("dis", "cons")),
        (ImplicitOnly, {}, None, ("corr",)),
        (ImplicitOnly, {"cca_to_10d": True}, 10, ("corr",)),
        (ExplicitImplicitShared, {}, 10, ("cons",)),
    ],
)
def test_ablations_fit_and_retrieve_above_chance(easy_features, method, params, embedding_dim, unused_terms):
    audio_train, visual_train, labels_train, audio_test, visual_test, labels_test = easy_features
    model = method(epochs=3, random_state=0, device="cpu", **SMALL_NETS, **params).fit(audio_train, visual_train, labels_train)
    score = average_map(model, audio_test, visual_test, labels_test)
    assert score > chance_map(labels_test) + 0.3
    expected_dim = len(model.classes_) if embedding_dim is None else embedding_dim
    assert model.embed_visual(visual_test).shape == (len(visual_test), expected_dim)
    for term in unused_terms:
        assert all(record[term] == 0.0 for record in model.history_)
