"""The unsupervised methods never use the labels: fitted with the labels permuted (or all equal),
they embed every item exactly as when fitted with the labels as given. Model selection included:
their validation pairs come from ``unstratified_validation_split``, which never sees the labels."""

from __future__ import annotations

import numpy as np
import pytest
from easy_features import make_easy_features

from avcmr.methods import make_method
from avcmr.methods.model_selection import unstratified_validation_split

pytestmark = pytest.mark.usefixtures("single_cpu_thread")

# Tiny settings: what matters is that every code path that could see a label runs, validation
# split and epoch selection included (validation_fraction > 0 and at least two epochs).
UNSUPERVISED = {
    "cca": {},
    "cca_nipals": {"max_iter": 50},
    "kcca": {"n_landmarks": 40, "gamma_scales": (0.5, 2.0), "ridges": (1e-3, 1e-1)},
    "dcca": {"hidden_sizes": (32, 32), "batch_size": 60, "epochs": 2, "device": "cpu"},
    "ucal": {"embedding_dim": 12, "n_components": 6, "batch_size": 60, "epochs": 2, "device": "cpu"},
    "ugach": {"n_bits": 16, "hidden_dim": 32, "queries_per_epoch": 48, "batch_size": 16, "epochs": 2,
              "selection": "holdout_best", "device": "cpu"},  # the path with a validation split
    "ugach_real": {"n_bits": 16, "hidden_dim": 32, "queries_per_epoch": 48, "batch_size": 16, "epochs": 2,
                   "device": "cpu"},
}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return make_easy_features(n_classes=6, n_train=180, n_test=40, audio_dim=32, visual_dim=64, seed=5)


def relabel(labels: np.ndarray, how: str) -> np.ndarray:
    if how == "permuted":
        return np.random.default_rng(11).permutation(labels)
    return np.zeros_like(labels)  # "one_class"


def fit_and_embed(name: str, data, labels) -> tuple[np.ndarray, np.ndarray]:
    method = make_method(name, UNSUPERVISED[name], random_state=3)
    method.fit(data["audio_train"], data["visual_train"], labels)
    return method.embed_audio(data["audio_test"]), method.embed_visual(data["visual_test"])


@pytest.fixture(scope="module")
def as_given(data):
    return {name: fit_and_embed(name, data, data["labels_train"]) for name in UNSUPERVISED}


@pytest.mark.parametrize("how", ["permuted", "one_class"])
@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
def test_embeddings_do_not_depend_on_the_labels(name, how, data, as_given):
    shuffled = relabel(data["labels_train"], how)
    assert (shuffled != data["labels_train"]).mean() > 0.5
    audio, visual = fit_and_embed(name, data, shuffled)
    reference_audio, reference_visual = as_given[name]
    assert np.isfinite(reference_audio).all() and reference_audio.std() > 0
    np.testing.assert_array_equal(audio, reference_audio)
    np.testing.assert_array_equal(visual, reference_visual)


def test_a_supervised_method_does_depend_on_the_labels(data):
    """The control: the relabelling above is a real change for a method that uses the labels."""
    embeddings = []
    for labels in (data["labels_train"], relabel(data["labels_train"], "permuted")):
        method = make_method("c_cca", {}, random_state=3).fit(data["audio_train"], data["visual_train"], labels)
        embeddings.append(method.embed_audio(data["audio_test"]))
    assert np.abs(embeddings[0] - embeddings[1]).max() > 1e-3


def test_unstratified_validation_split():
    fit, validation = unstratified_validation_split(50, 0.2, random_state=4)
    # The first round(0.2 · 50) = 10 entries of the seeded permutation are held out.
    expected = np.sort(np.random.default_rng(4).permutation(50)[:10])
    np.testing.assert_array_equal(validation, expected)
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, validation])), np.arange(50))
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(validation) > 0)
    # Capped at 1,000 pairs unless told otherwise; fraction 0 or a tiny set: no validation pairs.
    assert len(unstratified_validation_split(20_000, 0.1, 0)[1]) == 1000
    assert len(unstratified_validation_split(20_000, 0.1, 0, max_pairs=None)[1]) == 2000
    assert len(unstratified_validation_split(50, 0.0, 0)[1]) == 0
    assert len(unstratified_validation_split(5, 0.1, 0)[1]) == 0
    with pytest.raises(ValueError, match="validation_fraction"):
        unstratified_validation_split(50, 1.0, 0)
