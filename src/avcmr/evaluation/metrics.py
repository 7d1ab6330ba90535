"""MAP, per-query AP and precision at K, vectorised over all queries.

Conventions (METHODS.md):
- candidates are all test items of the other modality, the query's own pair included;
- AP over the full ranked list: AP = (1/R) Σ_{k relevant} P@k, R = items sharing the query's label;
- ties are broken by a seeded random permutation of the candidates followed by a stable sort, so
  that tied hashing codes are neither favoured nor penalised by their position in the test set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_SCOPES = tuple(range(10, 1001, 10))


def rank_candidates(scores: np.ndarray, tie_seed: int = 0) -> np.ndarray:
    """Candidate indices of each row ordered by decreasing score (ties: seeded random order)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("similarity scores contain NaN or Inf")
    rng = np.random.default_rng(tie_seed)
    shuffle = rng.permutation(scores.shape[1])
    order_in_shuffled = np.argsort(-scores[:, shuffle], axis=1, kind="stable")
    return shuffle[order_in_shuffled]


def _relevance(scores, query_labels, candidate_labels, tie_seed):
    ranking = rank_candidates(np.ascontiguousarray(scores), tie_seed)
    candidate_labels = np.asarray(candidate_labels)
    return candidate_labels[ranking] == np.asarray(query_labels)[:, None]


def average_precision_per_query(
    scores: np.ndarray, query_labels: Sequence, candidate_labels: Sequence, tie_seed: int = 0
) -> np.ndarray:
    """AP of every row of ``scores`` (rows = queries, columns = candidates)."""
    hits = _relevance(scores, query_labels, candidate_labels, tie_seed)
    # Only relevant positions contribute P@k, so work on those (≈ 1/C of the matrix) instead of
    # dividing the whole cumulative-hits matrix by the ranks.
    hits_so_far = np.cumsum(hits, axis=1, dtype=np.int32)
    rows, columns = np.nonzero(hits)
    precision_at_hits = hits_so_far[rows, columns] / (columns + 1.0)
    n_relevant = np.bincount(rows, minlength=len(hits))
    summed = np.bincount(rows, weights=precision_at_hits, minlength=len(hits))
    return np.divide(summed, n_relevant, out=np.zeros(len(hits)), where=n_relevant > 0)


def mean_average_precision(scores, query_labels, candidate_labels, tie_seed: int = 0) -> float:
    return float(average_precision_per_query(scores, query_labels, candidate_labels, tie_seed).mean())


def precision_at_k(
    scores: np.ndarray,
    query_labels: Sequence,
    candidate_labels: Sequence,
    scopes: Sequence[int] = DEFAULT_SCOPES,
    tie_seed: int = 0,
) -> np.ndarray:
    """P@K per query (shape: queries × scopes); K is clipped to the number of candidates."""
    hits = _relevance(scores, query_labels, candidate_labels, tie_seed)
    cumulative = np.cumsum(hits, axis=1, dtype=np.int32)
    clipped = np.minimum(np.asarray(scopes), hits.shape[1])
    return cumulative[:, clipped - 1] / clipped


def evaluate_scores(scores: np.ndarray, audio_labels, visual_labels, tie_seed: int = 0) -> dict[str, np.ndarray]:
    """Per-query AP in both directions: a→v ranks rows of ``scores``, v→a ranks its columns."""
    return {
        "a2v": average_precision_per_query(scores, audio_labels, visual_labels, tie_seed),
        "v2a": average_precision_per_query(scores.T, visual_labels, audio_labels, tie_seed),
    }
