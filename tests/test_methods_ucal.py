"""Tests of `ucal` (unsupervised adversarial alignment with a DCCA pair objective)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easy_features_adversarial import average_map, chance_map

from avcmr.methods import acmr
from avcmr.methods.base import NotFittedError
from avcmr.methods.model_selection import validation_map
from avcmr.methods.ucal import UCAL

FAST = {"epochs": 8, "batch_size": 180, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("single_cpu_thread")


@pytest.fixture(scope="module")
def fitted(adversarial_easy):
    return UCAL(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)


def test_reuses_acmrs_projectors_and_modality_classifier(fitted):
    assert isinstance(fitted.modality_classifier_, acmr.ModalityClassifier)
    linear = [m for m in fitted.visual_net_ if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(1024, 512), (512, 100), (100, 40)]
    linear = [m for m in fitted.audio_net_ if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(128, 40), (40, 100), (100, 40)]
    # The GRL ran its schedule up to the last epoch.
    assert fitted.history_[-1]["grl_strength"] == pytest.approx(
        acmr.grl_strength((FAST["epochs"] - 1) / FAST["epochs"])
    )


def test_fit_beats_random_clearly(fitted, adversarial_easy):
    assert average_map(fitted, adversarial_easy) > chance_map(adversarial_easy.labels_test) + 0.5
    assert fitted.embed_audio(adversarial_easy.audio_test).shape == (100, 10)
    assert fitted.embed_visual(adversarial_easy.visual_test).shape == (100, 10)


def test_training_improves_on_cca_of_the_untrained_projections(adversarial_easy, fitted):
    # epochs=0: linear CCA on the randomly initialised tanh projections (a strong start on adversarial_easy data).
    untrained = UCAL(random_state=0, **{**FAST, "epochs": 0}).fit(
        adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train
    )
    assert untrained.history_ == [] and untrained.best_epoch_ == 0
    assert average_map(fitted, adversarial_easy) > average_map(untrained, adversarial_easy) + 0.05
    own_pair = np.arange(len(adversarial_easy.labels_test))
    assert validation_map(
        fitted.embed_audio(adversarial_easy.audio_test), fitted.embed_visual(adversarial_easy.visual_test), own_pair
    ) > validation_map(
        untrained.embed_audio(adversarial_easy.audio_test), untrained.embed_visual(adversarial_easy.visual_test), own_pair
    )
    assert fitted.history_[-1]["dcca_loss"] < fitted.history_[0]["dcca_loss"]


def test_labels_are_never_used(fitted, adversarial_easy):
    shuffled = np.random.default_rng(5).permutation(adversarial_easy.labels_train)
    other = UCAL(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, shuffled)
    np.testing.assert_array_equal(
        other.embed_audio(adversarial_easy.audio_test), fitted.embed_audio(adversarial_easy.audio_test)
    )
    np.testing.assert_array_equal(
        other.embed_visual(adversarial_easy.visual_test), fitted.embed_visual(adversarial_easy.visual_test)
    )


def test_fit_is_deterministic_and_selects_by_pair_rank(fitted, adversarial_easy):
    again = UCAL(random_state=0, **FAST).fit(adversarial_easy.audio_train, adversarial_easy.visual_train, adversarial_easy.labels_train)
    np.testing.assert_array_equal(
        again.embed_visual(adversarial_easy.visual_test), fitted.embed_visual(adversarial_easy.visual_test)
    )
    assert fitted.best_epoch_ == max(fitted.history_, key=lambda h: h["val_pair_mrr"])["epoch"]
    assert all(
        {"epoch", "loss", "dcca_loss", "domain_loss", "val_pair_mrr"} <= set(h)
        for h in fitted.history_
    )
    assert fitted.n_parameters() > 0 and str(fitted.device_) == "cpu"


def test_use_before_fit_raises(adversarial_easy):
    with pytest.raises(NotFittedError):
        UCAL().embed_audio(adversarial_easy.audio_test)
