"""`logreg`: the supervised sanity row, checked against a logistic regression fitted here."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from avcmr.methods.base import NotFittedError
from avcmr.methods.registry import make_method


def separated_pairs(seed=0, n_pairs=120, n_classes=3, audio_dim=8, visual_dim=12):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_pairs)
    audio_means = rng.normal(0, 2.0, (n_classes, audio_dim))
    visual_means = rng.normal(0, 2.0, (n_classes, visual_dim))
    # Different offsets and scales per column: the z-scoring must matter.
    audio = (audio_means[labels] + rng.normal(0, 1.0, (n_pairs, audio_dim))) * rng.uniform(0.5, 20, audio_dim) + 5
    visual = (visual_means[labels] + rng.normal(0, 1.0, (n_pairs, visual_dim))) * rng.uniform(0.5, 20, visual_dim) - 3
    return audio, visual, labels


def reference_similarity(audio, visual, labels, audio_test, visual_test):
    """Fitted independently of the package: numpy z-scoring, sklearn models, numpy cosine."""

    def probabilities(train, test):
        mean, std = train.mean(axis=0), train.std(axis=0)
        model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000).fit((train - mean) / std, labels)
        return model.predict_proba((test - mean) / std)

    a, v = probabilities(audio, audio_test), probabilities(visual, visual_test)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return a @ v.T


def test_similarity_is_the_cosine_of_the_two_models_class_probabilities():
    audio, visual, labels = separated_pairs()
    audio_test, visual_test, test_labels = separated_pairs(seed=1, n_pairs=30)
    # The test set is drawn with other class means: only the values matter here, not its accuracy.
    method = make_method("logreg").fit(audio, visual, labels)
    scores = method.similarity(audio_test, visual_test)
    assert scores.shape == (30, 30)
    np.testing.assert_allclose(scores, reference_similarity(audio, visual, labels, audio_test, visual_test),
                               rtol=1e-6, atol=1e-8)
    assert list(method.classes_) == [0, 1, 2] and method.embed_audio(audio_test).shape == (30, 3)
    np.testing.assert_allclose(method.embed_visual(visual_test).sum(axis=1), 1.0)
    # Two 3-class models on 8 and 12 features: 3 × (8 + 1) + 3 × (12 + 1) weights.
    assert method.n_parameters() == 27 + 39


def test_on_separated_classes_same_label_pairs_score_highest():
    audio, visual, labels = separated_pairs()
    scores = make_method("logreg").fit(audio, visual, labels).similarity(audio, visual)
    same = labels[:, None] == labels[None, :]
    assert scores[same].mean() > 0.9 and scores[~same].mean() < 0.2


def test_training_end_says_whether_the_iteration_cap_stopped_lbfgs(recwarn):
    audio, visual, labels = separated_pairs()
    capped = make_method("logreg", {"max_iter": 1}).fit(audio, visual, labels)
    assert capped.training_end_ == "cap reached" and capped.n_steps_ == 1
    converged = make_method("logreg").fit(audio, visual, labels)
    assert converged.training_end_ == "converged" and 1 < converged.n_steps_ < 1000
    expected = max(LogisticRegression(max_iter=1000).fit((x - x.mean(0)) / x.std(0), labels).n_iter_[0]
                   for x in (audio, visual))
    assert converged.n_steps_ == expected
    # scikit-learn's ConvergenceWarning is turned into training_end_, not passed on.
    assert not [w for w in recwarn if "converge" in str(w.message).lower()]


def test_lbfgs_draws_no_random_numbers_so_seeds_give_the_same_row():
    audio, visual, labels = separated_pairs()
    first = make_method("logreg", random_state=0).fit(audio, visual, labels)
    second = make_method("logreg", random_state=7).fit(audio, visual, labels)
    np.testing.assert_array_equal(first.similarity(audio, visual), second.similarity(audio, visual))


def test_without_standardising_the_raw_features_are_used():
    audio, visual, labels = separated_pairs()
    method = make_method("logreg", {"standardize": False, "max_iter": 5000}).fit(audio, visual, labels)
    model = LogisticRegression(max_iter=5000).fit(audio, labels)
    np.testing.assert_allclose(method.embed_audio(audio), model.predict_proba(audio), rtol=1e-6, atol=1e-9)


def test_estimator_conventions():
    method = make_method("logreg", {"C": 0.5}, random_state=3)
    assert method.get_params() == {"C": 0.5, "max_iter": 1000, "standardize": True, "random_state": 3}
    with pytest.raises(NotFittedError):
        method.embed_audio(np.zeros((2, 8)))
    assert type(method).simplifications == ""
