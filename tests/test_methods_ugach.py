"""Tests of `ugach` (Zhang, Peng, Yuan AAAI 2018): graph, losses, hashing output, fitting."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map, hamming_distance

from avcmr.methods import make_method
from avcmr.methods.base import NotFittedError, cosine_similarity
from avcmr.methods.budgets import steps_per_epoch
from avcmr.methods.ugach import (
    UGACH,
    SigmoidHashNet,
    codes_from_sigmoid,
    discriminator_hinge,
    knn_graph,
    l2_penalty,
)

FAST = {"hidden_dim": 256, "epochs": 2, "queries_per_epoch": 256, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return UGACH(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)


def test_knn_graph_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6))
    distance = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(distance, np.inf)
    expected = np.argsort(distance, axis=1, kind="stable")[:, :5]
    for n_dims in (None, 6):  # PCA to the full dimension is a rotation: same neighbours
        got = knn_graph(x, 5, n_dims, torch.device("cpu"), chunk=16)
        np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(expected, axis=1))


def test_discriminator_hinge_and_reward_match_hand_computation():
    query = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    positive = torch.tensor([[[0.0, 0.5], [1.0, 1.0]], [[1.0, 0.0], [0.5, 0.5]]])
    negative = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]]])
    margin = 0.25
    expected = np.zeros((2, 2))
    for i in range(2):
        for s in range(2):
            d_pos = float(((query[i] - positive[i, s]) ** 2).sum())
            d_neg = float(((query[i] - negative[i, s]) ** 2).sum())
            expected[i, s] = max(0.0, margin + d_pos - d_neg)
    got = discriminator_hinge(query, positive, negative, margin)
    np.testing.assert_allclose(got.numpy(), expected)
    np.testing.assert_allclose(torch.sigmoid(got).numpy(), 1 / (1 + np.exp(-expected)))


def test_nets_and_penalty_follow_the_official_code():
    net = SigmoidHashNet(10, 7, 4)
    out = net(torch.randn(3, 10))
    assert out.shape == (3, 4) and bool(((out > 0) & (out < 1)).all())
    assert float(net.hidden.weight.detach().std()) == pytest.approx(0.1, rel=0.35)
    assert float(net.hidden.bias.detach().abs().sum()) == 0.0
    expected = 0.5 * sum(float((p.detach() ** 2).sum()) for p in net.parameters())
    assert l2_penalty(net).item() == pytest.approx(expected)
    np.testing.assert_array_equal(
        codes_from_sigmoid(np.array([[0.2, 0.5, 0.9]])), [[-1.0, 1.0, 1.0]]
    )
    assert UGACH().n_bits == 64 and UGACH().n_neighbors == 5


def test_codes_are_pm1_and_similarity_is_negative_hamming(fitted, adversarial_easy):
    codes_a, codes_v = fitted.embed_audio(adversarial_easy.audio_test), fitted.embed_visual(adversarial_easy.visual_test)
    assert codes_a.shape == (100, 64) and set(np.unique(codes_a)) <= {-1.0, 1.0}
    assert set(np.unique(codes_v)) <= {-1.0, 1.0}
    assert fitted.similarity_kind == "hamming"
    np.testing.assert_array_equal(
        fitted.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), -hamming_distance(codes_a, codes_v)
    )


def test_real_valued_outputs_rank_by_cosine(fitted, adversarial_easy):
    # The `ugach_real` row: UGACH with ``output`` fixed to "real" (not a parameter of the row).
    real = make_method("ugach_real", FAST, random_state=0).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    assert isinstance(real, UGACH) and real.name == "ugach_real" and real.output == "real"
    assert "output" not in real.get_params() and "hidden_dim" in real.get_params()
    with pytest.raises(ValueError, match="output"):
        make_method("ugach_real", {"output": "codes"})
    # Fitted models are saved with joblib: the variant class must pickle by name.
    restored = pickle.loads(pickle.dumps(real))
    assert type(restored).__name__ == "UGACHReal" and restored.name == "ugach_real"
    np.testing.assert_array_equal(
        restored.embed_audio(adversarial_easy.audio_test), real.embed_audio(adversarial_easy.audio_test)
    )
    assert real.similarity_kind == "cosine"
    real_a, real_v = real.embed_audio(adversarial_easy.audio_test), real.embed_visual(adversarial_easy.visual_test)
    assert np.abs(real_a).max() < 1.0 and len(np.unique(real_a)) > 1000
    # Same training run as the codes model; the sign of 2σ − 1 is the code.
    np.testing.assert_array_equal(
        np.where(real_a >= 0, 1.0, -1.0), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_allclose(
        real.similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), cosine_similarity(real_a, real_v)
    )
    np.testing.assert_allclose(
        fitted.real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test), cosine_similarity(real_a, real_v)
    )
    assert average_map(real, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5


def test_labels_are_never_used_and_fit_is_deterministic(fitted, adversarial_easy):
    shuffled = np.random.default_rng(3).permutation(adversarial_easy.labels_train)
    other = UGACH(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, shuffled)
    np.testing.assert_array_equal(
        other.embed_audio(adversarial_easy.audio_test), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_array_equal(
        other.embed_visual(adversarial_easy.visual_test), fitted.embed_visual(adversarial_easy.visual_test)
    )


def test_default_trains_every_pair_and_keeps_the_last_epoch(fitted, adversarial_easy):
    audio = adversarial_easy.audio_train
    assert [h["epoch"] for h in fitted.history_] == [1, 2]
    assert all({"loss", "d_loss", "g_loss", "mean_reward", "seconds"} <= set(h) for h in fitted.history_)
    assert all("val_pair_mrr" not in h for h in fitted.history_)  # nothing held out, nothing scored
    assert fitted.best_epoch_ == 2
    np.testing.assert_allclose(fitted.audio_scaler_.mean_, audio.mean(axis=0), rtol=1e-6, atol=1e-7)  # all pairs
    assert all(0.5 <= h["mean_reward"] < 1.0 for h in fitted.history_)  # σ of a hinge ≥ 0
    assert fitted.margin_ == 64 / 8
    per_net = (128 * 256 + 256 + 256 * 64 + 64) + (1024 * 256 + 256 + 256 * 64 + 64)
    assert fitted.n_parameters() == 2 * per_net  # generator + discriminator
    # Manifold pairs: own pair first, then 5 graph neighbours.
    pairs = fitted.manifold_pairs_["a2v"].numpy()
    assert pairs.shape[1] == 6 and np.array_equal(pairs[:, 0], np.arange(len(pairs)))


def test_holdout_best_keeps_the_epoch_with_the_best_own_pair_rank(adversarial_easy):
    audio, visual = adversarial_easy.audio_train, adversarial_easy.visual_train
    model = UGACH(random_state=0, selection="holdout_best", **{**FAST, "epochs": 3}).fit(
        audio, visual, adversarial_easy.labels_train)
    assert all("val_pair_mrr" in h for h in model.history_)
    assert model.best_epoch_ == max(model.history_, key=lambda h: h["val_pair_mrr"])["epoch"]
    # 10 % of the pairs held out: the scalers see the other 90 %.
    assert not np.allclose(model.audio_scaler_.mean_, audio.mean(axis=0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="selection must be one of fixed_epochs, holdout_best"):
        UGACH(selection="best").fit(audio, visual, adversarial_easy.labels_train)


@pytest.mark.parametrize("selection", ["fixed_epochs", "holdout_best"])
def test_steps_count_every_optimiser_step_as_the_budget_does(adversarial_easy, monkeypatch, selection):
    """``n_steps_`` (the tables' steps) counts the SGD updates of D and G, both directions; the
    budget's ``steps_per_epoch`` predicts them from the parameters and the training-set size."""
    updates = []
    sgd_step = torch.optim.SGD.step

    def counted(self, *args, **kwargs):
        updates.append(1)
        return sgd_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", counted)
    audio, visual, labels = adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    params = {**FAST, "queries_per_epoch": None, "batch_size": 100, "selection": selection}  # every fit pair a query
    model = UGACH(random_state=0, **params).fit(audio, visual, labels)
    assert model.n_steps_ == len(updates)
    n_fit = len(audio) - (round(0.1 * len(audio)) if selection == "holdout_best" else 0)
    batches = -(-n_fit // 100)  # per direction and pass
    # pre-training: one D pass; each epoch: one D pass and two G passes; each pass both directions
    assert model.n_steps_ == 2 * batches * (1 + 3 * model.epochs)
    assert steps_per_epoch("ugach", model.get_params(), len(audio)) == 2 * batches * 3


def test_use_before_fit_raises(adversarial_easy):
    with pytest.raises(NotFittedError):
        UGACH().embed_visual(adversarial_easy.visual_test)
    with pytest.raises(NotFittedError):
        UGACH().real_similarity(adversarial_easy.audio_test, adversarial_easy.visual_test)
    with pytest.raises(ValueError):
        UGACH(output="bits").fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)
