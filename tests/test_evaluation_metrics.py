import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from avcmr.evaluation import metrics
from avcmr.evaluation.metrics import (
    DenseScores,
    EmbeddingScores,
    average_precision_per_query,
    evaluate_scores,
    evaluate_source,
    mean_average_precision,
    method_scores,
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


def _hamming_full(left, right):
    """Brute force: minus the number of differing bits of every pair of ±1 codes."""
    return -np.array([[np.sum(a != b) for b in right] for a in left], dtype=float)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so that every direction spans many blocks of uneven size."""
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 7 * 173)


def test_blocked_hamming_equals_full_matrix_with_ties(rng, small_blocks):
    codes_a = np.where(rng.random((160, 6)) < 0.5, -1.0, 1.0)  # 6 bits: nearly every score is tied
    codes_v = np.where(rng.random((173, 6)) < 0.5, -1.0, 1.0)
    labels_a, labels_v = rng.integers(0, 4, 160), rng.integers(0, 4, 173)
    scopes = [1, 10, 50, 173]
    blocked = evaluate_source(EmbeddingScores(codes_a, codes_v, "hamming"), labels_a, labels_v, 5, scopes)
    full = _hamming_full(codes_a, codes_v)
    assert metrics.rows_per_block(173) == 7
    for direction, matrix, queries, candidates in (("a2v", full, labels_a, labels_v),
                                                   ("v2a", full.T, labels_v, labels_a)):
        ap, precision = metrics.ranking_metrics(matrix, queries, candidates, 5, scopes, n_threads=1)
        np.testing.assert_array_equal(blocked[direction], ap)
        np.testing.assert_array_equal(blocked[f"{direction}_precision"], precision)


def test_blocked_cosine_equals_full_matrix_with_exact_ties(rng, small_blocks):
    from avcmr.methods.base import cosine_similarity

    audio = rng.normal(size=(150, 8))
    visual = rng.normal(size=(173, 8))
    visual[50:90] = visual[10]  # 41 identical candidates: exact ties for every query
    visual[120] = 0.0  # a zero vector scores 0 against everything
    labels_a, labels_v = rng.integers(0, 3, 150), rng.integers(0, 3, 173)
    blocked = evaluate_source(EmbeddingScores(audio, visual), labels_a, labels_v, 1, [10, 100])
    unblocked = evaluate_scores(cosine_similarity(audio, visual), labels_a, labels_v, 1, [10, 100])
    for key in ("a2v", "v2a", "a2v_precision", "v2a_precision"):
        np.testing.assert_array_equal(blocked[key], unblocked[key])


def test_blocked_ap_equals_sklearn_both_directions(rng, small_blocks):
    audio, visual = rng.normal(size=(90, 5)), rng.normal(size=(173, 5))
    labels_a, labels_v = rng.integers(0, 4, 90), rng.integers(0, 4, 173)
    blocked = evaluate_source(EmbeddingScores(audio, visual), labels_a, labels_v)
    unit_a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    unit_v = visual / np.linalg.norm(visual, axis=1, keepdims=True)
    cosine = unit_a @ unit_v.T
    expected_a2v = [average_precision_score(labels_v == labels_a[i], cosine[i]) for i in range(90)]
    expected_v2a = [average_precision_score(labels_a == labels_v[j], cosine[:, j]) for j in range(173)]
    np.testing.assert_allclose(blocked["a2v"], expected_a2v, atol=1e-12)
    np.testing.assert_allclose(blocked["v2a"], expected_v2a, atol=1e-12)


def test_method_scores_use_embeddings_unless_the_method_scores_itself(rng):
    from avcmr.methods import make_method

    audio, visual = rng.normal(size=(120, 6)), rng.normal(size=(120, 9))
    labels = rng.integers(0, 3, 120)
    for name, expected_source in (("cca", EmbeddingScores), ("random", DenseScores)):
        method = make_method(name, {"n_components": 3} if name == "cca" else {}, random_state=0)
        method.fit(audio, visual, labels)
        source = method_scores(method, audio, visual)
        assert isinstance(source, expected_source)
        blocked = evaluate_source(source, labels, labels, 0, [10])
        unblocked = evaluate_scores(method.similarity(audio, visual), labels, labels, 0, [10])
        for key in ("a2v", "v2a", "a2v_precision", "v2a_precision"):
            np.testing.assert_array_equal(blocked[key], unblocked[key])


def test_blocked_evaluation_never_holds_the_score_matrix(rng, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 50_000)
    n = 2000
    audio, visual = rng.normal(size=(n, 16)), rng.normal(size=(n, 16))
    labels = rng.integers(0, 10, n)
    source = EmbeddingScores(audio, visual)
    tracemalloc.start()
    try:
        evaluate_source(source, labels, labels, n_threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    float32_matrix = n * n * 4
    # Two threads × one block's buffers (≈ 40 B per score) plus the per-query results.
    assert peak < float32_matrix / 4, f"peak {peak / 1e6:.1f} MB, a float32 score matrix is {float32_matrix / 1e6:.1f} MB"


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_non_finite_embedding_scores_are_refused():
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        EmbeddingScores(np.array([[np.nan, 1.0]]), np.ones((2, 2)))
    overflowing = EmbeddingScores(np.full((1, 2), 1e300), np.full((2, 2), 1e300), "hamming")  # inf products
    with pytest.raises(ValueError, match="scores contain NaN or Inf"):
        evaluate_source(overflowing, [0], [0, 1])


def test_ap_and_precision_equal_brute_force_on_rows_with_and_without_ties(rng, small_blocks):
    """Rows without ties take the relevant-ranks path, rows with ties the seeded tie-break: both
    must equal a loop over the stable order of the permuted scores."""
    scores = rng.normal(size=(40, 173))
    scores[::3, 20:60] = 0.25  # every third row: a 40-way tie (blocks of 7 rows mix both kinds)
    scores[5, :] = np.round(scores[5, :], 1)  # a row of many small ties
    labels_q, labels_c = rng.integers(0, 3, 40), rng.integers(0, 3, 173)
    scopes = [50, 1, 173, 10, 400]  # unsorted, one beyond the candidates (clipped to 173)
    ap, precision = metrics.ranking_metrics(scores, labels_q, labels_c, tie_seed=4, scopes=scopes)
    shuffle = np.random.default_rng(4).permutation(173)
    for query in range(40):
        order = shuffle[np.argsort(-scores[query, shuffle].astype(np.float32), kind="stable")]
        hits = labels_c[order] == labels_q[query]
        precisions = [hits[: k + 1].mean() for k in range(173) if hits[k]]
        assert ap[query] == pytest.approx(np.mean(precisions), abs=1e-12)
        for column, k in enumerate(scopes):
            assert precision[query, column] == pytest.approx(hits[: min(k, 173)].mean(), abs=1e-12)
