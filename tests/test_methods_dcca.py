"""`dcca` (Andrew et al. 2013) and the shared training helpers of the neural baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from easy_features import average_map, make_easy_features

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.dcca import DeepCCA, l2_penalty
from avcmr.methods.losses import canonical_correlations
from avcmr.methods.model_selection import stratified_validation_split, unstratified_validation_split
from avcmr.methods.torch_utils import mlp, to_tensor, torch_threads

# A narrower tower than the paper's 3 × 1024 keeps the test fast; the default is checked below.
TEST_PARAMS = {"hidden_sizes": (256, 256, 256), "epochs": 25, "batch_size": 180, "device": "cpu", "n_threads": 1}


@pytest.fixture(scope="module")
def easy():
    return make_easy_features()


@pytest.fixture(scope="module")
def fitted(easy):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    return method_class("dcca")(random_state=0, **TEST_PARAMS).fit(*train)


def test_stratified_validation_split():
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    train, validation = stratified_validation_split(labels, 0.1, seed=0)
    assert len(validation) == 10 and len(train) == 90
    assert sorted(np.concatenate([train, validation])) == list(range(100))
    assert [int((labels[validation] == value).sum()) for value in "abc"] == [5, 3, 2]
    again_train, again_validation = stratified_validation_split(labels, 0.1, seed=0)
    np.testing.assert_array_equal(validation, again_validation)
    assert len(stratified_validation_split(labels, 0.0, seed=0)[1]) == 0
    with pytest.raises(ValueError):
        stratified_validation_split(labels, 1.0, seed=0)


def test_l2_penalty_counts_weights_not_biases():
    net = mlp([3, 4, 2], "sigmoid")
    expected = sum(float((layer.weight.detach() ** 2).sum()) for layer in net if isinstance(layer, torch.nn.Linear))
    assert l2_penalty([net]).item() == pytest.approx(expected)


def test_torch_threads_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_default_architecture_and_parameter_count():
    model = DeepCCA()
    assert model.hidden_sizes == (1024, 1024, 1024) and model.batch_size == 800
    assert (model.learning_rate, model.l2, model.reg, model.n_outputs) == (1e-3, 1e-5, 1e-4, 10)


def test_beats_random(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    chance = average_map(method_class("random")(random_state=0).fit(*train), easy)
    assert average_map(fitted, easy) > chance + 0.3
    assert fitted.device_ == "cpu"
    assert fitted.embed_audio(easy["audio_test"]).shape == (100, 10)
    # Training raised the total correlation of the training batches.
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"] - 0.5
    tower = (128 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 10 + 10)
    tower_visual = tower + (1024 - 128) * 256
    assert fitted.n_parameters() == tower + tower_visual + 2 * 10 * 10


def test_best_validation_epoch_is_restored(easy, fitted):
    history = fitted.history_
    assert [record["epoch"] for record in history] == list(range(1, len(history) + 1))
    best = min(history, key=lambda record: record["val_loss"])
    assert fitted.best_epoch_ == best["epoch"]
    # Recompute the validation loss with the restored networks.
    # DCCA is unsupervised: its validation pairs are an unstratified, uncapped seeded draw.
    _, validation = unstratified_validation_split(len(easy["labels_train"]), 0.1, 0, max_pairs=None)
    assert len(validation) == 40
    audio = to_tensor(fitted.audio_scaler_.transform(easy["audio_train"][validation]), torch.device("cpu"))
    visual = to_tensor(fitted.visual_scaler_.transform(easy["visual_train"][validation]), torch.device("cpu"))
    with torch.no_grad():
        value = -canonical_correlations(fitted.audio_net_(audio), fitted.visual_net_(visual), 1e-4).sum().item()
    assert value == pytest.approx(best["val_loss"], rel=1e-6)


def test_deterministic_on_cpu(easy, fitted):
    train = (easy["audio_train"], easy["visual_train"], easy["labels_train"])
    again = method_class("dcca")(random_state=0, **TEST_PARAMS).fit(*train)
    np.testing.assert_array_equal(fitted.embed_visual(easy["visual_test"]), again.embed_visual(easy["visual_test"]))
    assert [r["loss"] for r in fitted.history_] == [r["loss"] for r in again.history_]


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        DeepCCA().embed_audio(np.zeros((2, 128)))
    with pytest.raises(NotFittedError):
        DeepCCA().n_parameters()
