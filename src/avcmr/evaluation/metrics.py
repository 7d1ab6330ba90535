"""MAP, per-query AP and precision at K, vectorised over all queries.

Conventions (METHODS.md):
- candidates are all test items of the other modality, the query's own pair included;
- AP over the full ranked list: AP = (1/R) Σ_{k relevant} P@k, R = items sharing the query's label;
- ties are broken by a seeded random permutation of the candidates followed by a stable sort, so
  that tied hashing codes are neither favoured nor penalised by their position in the test set.

Speed: ranking is the whole cost (5,621² scores per direction at VEGAS size). Instead of a
stable ``argsort`` of float64 scores, each score becomes one 64-bit integer key — the
order-preserving bit pattern of its float32 negation in the high half, its position in the
seeded permutation in the low half — and a plain (SIMD) ``sort`` of the keys yields exactly the
stable order of the permuted scores, with the candidate recoverable from the low half. Rows are
processed in blocks on a few threads (numpy releases the GIL while sorting). Scores are therefore
compared at float32 precision, the precision of the learned embeddings; two scores that differ
only beyond float32 count as a tie.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DEFAULT_SCOPES = tuple(range(10, 1001, 10))
ROWS_PER_BLOCK = 256  # 256 × 5,621 keys ≈ 11 MB: cache-friendly, enough work per thread

_SIGN_BIT = np.uint32(0x80000000)
_ALL_BITS = np.uint32(0xFFFFFFFF)
_LOW_HALF = np.uint64(0xFFFFFFFF)


def _default_threads() -> int:
    """The job's thread budget (OMP_NUM_THREADS, set per Snakemake rule), else the usable cores."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(configured)) if configured.isdigit() else max(1, len(os.sched_getaffinity(0)))


def _checked_scores(scores) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"similarity scores must be a queries × candidates matrix, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("similarity scores contain NaN or Inf")
    if scores.shape[1] >= 2**32:
        raise ValueError("more than 2**32 candidates cannot be encoded in a ranking key")
    return np.ascontiguousarray(scores, dtype=np.float32)


def _ranked_positions(block: np.ndarray, shuffle: np.ndarray) -> np.ndarray:
    """Positions (in the shuffled candidate order) of each row's candidates by decreasing score."""
    negated = -block[:, shuffle]
    negated += np.float32(0.0)  # -0.0 → +0.0: the two zeros must tie, as they compare equal
    bits = negated.view(np.uint32)
    # IEEE-754 → unsigned order: flip every bit of negative numbers, only the sign bit of others.
    bits ^= np.where(bits & _SIGN_BIT, _ALL_BITS, _SIGN_BIT)
    keys = bits.astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= np.arange(block.shape[1], dtype=np.uint64)
    keys.sort(axis=1)
    return (keys & _LOW_HALF).astype(np.intp)


def _map_blocks(function, n_rows: int, n_threads: int | None) -> list:
    starts = range(0, n_rows, ROWS_PER_BLOCK)
    n_threads = min(n_threads or _default_threads(), len(starts)) or 1
    if n_threads == 1:
        return [function(start) for start in starts]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(function, starts))


def rank_candidates(scores: np.ndarray, tie_seed: int = 0, n_threads: int | None = None) -> np.ndarray:
    """Candidate indices of each row ordered by decreasing score (ties: seeded random order)."""
    scores = _checked_scores(scores)
    shuffle = np.random.default_rng(tie_seed).permutation(scores.shape[1])
    blocks = _map_blocks(
        lambda start: shuffle[_ranked_positions(scores[start : start + ROWS_PER_BLOCK], shuffle)],
        len(scores), n_threads,
    )  # fmt: skip
    return np.concatenate(blocks) if blocks else np.empty((0, scores.shape[1]), dtype=np.intp)


def _block_metrics(block, block_labels, shuffled_candidate_labels, shuffle, scopes):
    positions = _ranked_positions(block, shuffle)
    hits = shuffled_candidate_labels[positions] == block_labels[:, None]
    hits_so_far = np.cumsum(hits, axis=1, dtype=np.int32)
    # Only relevant positions contribute P@k, so work on those (≈ 1/C of the matrix) instead of
    # dividing the whole cumulative-hits matrix by the ranks.
    rows, columns = np.nonzero(hits)
    precision_at_hits = hits_so_far[rows, columns] / (columns + 1.0)
    n_relevant = np.bincount(rows, minlength=len(hits))
    summed = np.bincount(rows, weights=precision_at_hits, minlength=len(hits))
    average_precision = np.divide(summed, n_relevant, out=np.zeros(len(hits)), where=n_relevant > 0)
    precision = None if scopes is None else hits_so_far[:, scopes - 1] / scopes
    return average_precision, precision


def ranking_metrics(
    scores: np.ndarray,
    query_labels: Sequence,
    candidate_labels: Sequence,
    tie_seed: int = 0,
    scopes: Sequence[int] | None = None,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-query AP and, when ``scopes`` is given, per-query P@K (queries × scopes) from one ranking.

    K is clipped to the number of candidates.
    """
    scores = _checked_scores(scores)
    query_labels, candidate_labels = np.asarray(query_labels), np.asarray(candidate_labels)
    if len(query_labels) != scores.shape[0] or len(candidate_labels) != scores.shape[1]:
        raise ValueError(f"scores {scores.shape} do not match {len(query_labels)} query and "
                         f"{len(candidate_labels)} candidate labels")
    shuffle = np.random.default_rng(tie_seed).permutation(scores.shape[1])
    shuffled_candidate_labels = candidate_labels[shuffle]
    clipped = None if scopes is None else np.minimum(np.asarray(scopes, dtype=np.int64), scores.shape[1])

    def on_block(start):
        stop = start + ROWS_PER_BLOCK
        return _block_metrics(scores[start:stop], query_labels[start:stop], shuffled_candidate_labels, shuffle,
                              clipped)

    blocks = _map_blocks(on_block, len(scores), n_threads)
    if not blocks:
        return np.zeros(0), None if scopes is None else np.zeros((0, len(clipped)))
    average_precision = np.concatenate([ap for ap, _ in blocks])
    precision = None if scopes is None else np.concatenate([p for _, p in blocks])
    return average_precision, precision


def average_precision_per_query(
    scores: np.ndarray, query_labels: Sequence, candidate_labels: Sequence, tie_seed: int = 0
) -> np.ndarray:
    """AP of every row of ``scores`` (rows = queries, columns = candidates)."""
    return ranking_metrics(scores, query_labels, candidate_labels, tie_seed)[0]


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
    return ranking_metrics(scores, query_labels, candidate_labels, tie_seed, scopes)[1]


def evaluate_scores(
    scores: np.ndarray, audio_labels, visual_labels, tie_seed: int = 0, scopes: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Per-query AP in both directions: a→v ranks rows of ``scores``, v→a ranks its columns.

    With ``scopes``, the per-query P@K of each direction comes back too (keys ``a2v_precision``,
    ``v2a_precision``) from the same rankings.
    """
    scores = _checked_scores(scores)  # one float32 conversion for both directions
    results = {}
    for direction, matrix, queries, candidates in (
        ("a2v", scores, audio_labels, visual_labels),
        ("v2a", scores.T, visual_labels, audio_labels),
    ):
        average_precision, precision = ranking_metrics(matrix, queries, candidates, tie_seed, scopes)
        results[direction] = average_precision
        if scopes is not None:
            results[f"{direction}_precision"] = precision
    return results
