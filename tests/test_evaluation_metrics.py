import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from avcmr.evaluation.metrics import (
    average_precision_per_query,
    evaluate_scores,
    mean_average_precision,
    precision_at_k,
    rank_candidates,
)


def test_ap_equals_sklearn_per_query(rng):
    labels_q = rng.integers(0, 4, 40)
    labels_c = rng.integers(0, 4, 55)
    scores = rng.normal(size=(40, 55))
    ours = average_precision_per_query(scores, labels_q, labels_c)
    expected = [average_precision_score(labels_c == labels_q[i], scores[i]) for i in range(40)]
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    assert mean_average_precision(scores, labels_q, labels_c) == pytest.approx(np.mean(expected))


def test_random_scores_give_map_near_class_prior(rng):
    labels = rng.choice(5, size=1500, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    scores = rng.random((1500, 1500))
    prior = sum(np.mean(labels == c) ** 2 for c in range(5))
    per_query = evaluate_scores(scores, labels, labels)
    assert per_query["a2v"].mean() == pytest.approx(prior, abs=0.02)
    assert per_query["v2a"].mean() == pytest.approx(prior, abs=0.02)


def test_perfect_scores_give_map_one():
    labels = np.array([0, 0, 1, 1, 2])
    scores = (labels[:, None] == labels[None, :]).astype(float)
    assert mean_average_precision(scores, labels, labels) == pytest.approx(1.0)


def test_ties_are_broken_by_a_seeded_permutation_not_by_position():
    scores = np.zeros((1, 6))  # everything tied
    first = rank_candidates(scores, tie_seed=1)
    assert sorted(first[0]) == list(range(6))
    np.testing.assert_array_equal(first, rank_candidates(scores, tie_seed=1))
    orders = {tuple(rank_candidates(scores, tie_seed=s)[0]) for s in range(10)}
    assert len(orders) > 1


def test_precision_at_k_equals_direct_count(rng):
    labels = rng.integers(0, 3, 30)
    scores = rng.normal(size=(30, 30))
    scopes = [1, 5, 10, 30, 50]
    ours = precision_at_k(scores, labels, labels, scopes)
    order = np.argsort(-scores, axis=1, kind="stable")
    for query in range(30):
        for column, k in enumerate(scopes):
            k_eff = min(k, 30)
            expected = np.mean(labels[order[query, :k_eff]] == labels[query])
            assert ours[query, column] == pytest.approx(expected)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        rank_candidates(np.array([[0.0, np.nan]]))


def test_ranking_equals_stable_sort_of_permuted_scores_with_many_ties(rng):
    scores = rng.integers(-8, 8, size=(300, 700)).astype(float)  # Hamming-like: heavy ties
    scores[:, :5] = [1e30, -1e30, 0.0, -0.0, 1e-30]  # extremes, signed zeros (a tie) and subnormal-ish values
    shuffle = np.random.default_rng(3).permutation(700)
    expected = shuffle[np.argsort(-scores[:, shuffle], axis=1, kind="stable")]
    np.testing.assert_array_equal(rank_candidates(scores, tie_seed=3, n_threads=2), expected)


def test_one_ranking_gives_both_ap_and_precision(rng):
    labels = rng.integers(0, 4, 600)  # more rows than one block
    scores = rng.normal(size=(600, 600))
    both = evaluate_scores(scores, labels, labels, tie_seed=2, scopes=[10, 100, 1000])
    np.testing.assert_array_equal(both["a2v"], average_precision_per_query(scores, labels, labels, 2))
    np.testing.assert_array_equal(both["v2a"], average_precision_per_query(scores.T, labels, labels, 2))
    np.testing.assert_array_equal(both["v2a_precision"], precision_at_k(scores.T, labels, labels, [10, 100, 1000], 2))
