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
only beyond float32 count as a tie. AP and P@K need only the ranks of the relevant candidates
(≈ 1/C of a row): where few of them are tied (continuous scores), a block is sorted as 32-bit keys
and each relevant candidate's rank found by binary search, its rare float32 ties resolved by the
same seeded permutation (:func:`_relevant_rank_metrics`, ≈ 2× faster); blocks with many ties
(Hamming codes) take the 64-bit key sort. Both give the same numbers.

Memory: nothing of size queries × candidates is ever held. Scores come a block of query rows at a
time from a score source — :class:`EmbeddingScores` computes them from the two embeddings (the
v→a direction as rows of visual · audioᵀ, never as columns of a full matrix), :class:`DenseScores`
wraps a matrix a method produced itself (``random``) — and a block is ranked, scored and dropped.
A block holds at most ``BLOCK_ELEMENTS`` scores, so the working set is a few block buffers per
thread plus the per-query results (≈ 1 GB at 50,000², where a dense float64 matrix alone is 20 GB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

DEFAULT_SCOPES = tuple(range(10, 1001, 10))
ROWS_PER_BLOCK = 256  # 256 × 5,621 keys ≈ 11 MB: cache-friendly, enough work per thread
# Scores per block: 256 rows at VEGAS's 5,621 candidates, fewer rows beyond. A block's buffers
# (float32 scores, uint64 keys, intp positions, candidate labels, hits, int32 running counts) take
# ≈ 40 bytes per score, so ≈ 60 MB per thread.
BLOCK_ELEMENTS = 1_500_000
# Relevant candidates tied with another candidate, per query row, up to which ties are resolved one
# by one (continuous scores collide at float32 now and then); beyond (Hamming codes), the block is
# ranked with the tie-breaking keys.
MAX_TIED_PER_ROW = 2

_LOW_HALF = np.uint64(0xFFFFFFFF)


def _default_threads() -> int:
    """The job's thread budget (OMP_NUM_THREADS, set per Snakemake rule), else the usable cores."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(configured)) if configured.isdigit() else max(1, len(os.sched_getaffinity(0)))


def _check_candidates(n_candidates: int) -> None:
    if n_candidates >= 2**32:
        raise ValueError("more than 2**32 candidates cannot be encoded in a ranking key")


def _checked_scores(scores) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"similarity scores must be a queries × candidates matrix, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("similarity scores contain NaN or Inf")
    _check_candidates(scores.shape[1])
    return np.ascontiguousarray(scores, dtype=np.float32)


def _checked_block(block) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    if not np.isfinite(block).all():
        raise ValueError("similarity scores contain NaN or Inf")
    return block


def rows_per_block(n_candidates: int) -> int:
    """Query rows ranked together: ``ROWS_PER_BLOCK``, fewer when a row has many candidates."""
    return max(1, min(ROWS_PER_BLOCK, BLOCK_ELEMENTS // max(n_candidates, 1)))


class DenseScores:
    """A full score matrix (rows: audio queries, columns: visual items), for methods that produce
    the matrix themselves; converted once to float32, the precision at which ranks are compared."""

    def __init__(self, scores):
        self.matrix = _checked_scores(scores)
        self.shape = self.matrix.shape

    def a2v_rows(self, start: int, stop: int) -> np.ndarray:
        return self.matrix[start:stop]

    def v2a_rows(self, start: int, stop: int) -> np.ndarray:
        return self.matrix[:, start:stop].T


class EmbeddingScores:
    """Scores computed a block of rows at a time from the test embeddings.

    ``kind="cosine"``: the cosine of the two embeddings (a zero vector scores 0 against everything),
    as :func:`avcmr.methods.base.cosine_similarity`; ``kind="hamming"``: the negative Hamming
    distance of ±1 codes, ``−(n_bits − ⟨a, v⟩)/2``, as :func:`avcmr.methods.base.hamming_similarity`.
    Rows are normalised once, so a block costs one (rows × d) · (d × candidates) product; the block
    values equal the rows (a→v) or columns (v→a) of the full matrix.
    """

    def __init__(self, audio_embedding, visual_embedding, kind: str = "cosine"):
        audio = np.asarray(audio_embedding, dtype=np.float64)
        visual = np.asarray(visual_embedding, dtype=np.float64)
        if audio.ndim != 2 or visual.ndim != 2 or audio.shape[1] != visual.shape[1]:
            raise ValueError(f"embeddings must be two matrices of the same width, got {audio.shape} and {visual.shape}")
        if not (np.isfinite(audio).all() and np.isfinite(visual).all()):
            raise ValueError("test embeddings contain NaN or Inf")
        if kind == "cosine":
            audio, visual = _unit_rows(audio), _unit_rows(visual)
            self._offset = 0.0
        elif kind == "hamming":
            self._offset = float(audio.shape[1])
        else:
            raise ValueError(f"unknown similarity kind {kind!r} (cosine or hamming)")
        self.kind, self.audio, self.visual = kind, audio, visual
        self.shape = (len(audio), len(visual))
        _check_candidates(max(self.shape))

    def _scores(self, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        products = queries @ candidates.T
        if self.kind == "hamming":
            products = -(self._offset - products) / 2.0
        return _checked_block(products)

    def a2v_rows(self, start: int, stop: int) -> np.ndarray:
        return self._scores(self.audio[start:stop], self.visual)

    def v2a_rows(self, start: int, stop: int) -> np.ndarray:
        return self._scores(self.visual[start:stop], self.audio)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def method_scores(method, audio, visual):
    """The score source of a fitted method on test data: its embeddings when its similarity is the
    base class's embedding cosine/Hamming, else the dense matrix its own ``similarity`` returns."""
    from avcmr.methods.base import RetrievalMethod

    if type(method).similarity is RetrievalMethod.similarity:
        return EmbeddingScores(method.embed_audio(audio), method.embed_visual(visual), method.similarity_kind)
    return DenseScores(method.similarity(audio, visual))


def _descending_keys(block: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is the descending order of the float32 scores."""
    negated = -block
    negated += np.float32(0.0)  # -0.0 → +0.0: the two zeros must tie, as they compare equal
    bits = negated.view(np.int32)
    # IEEE-754 → unsigned order: flip every bit of negative numbers, only the sign bit of others
    # (the arithmetic shift gives −1 = all bits for negative numbers, 0 for the others).
    flips = bits >> 31
    flips |= np.int32(-(2**31))
    bits ^= flips
    return bits.view(np.uint32)


def _ranked_positions(block: np.ndarray, shuffle: np.ndarray) -> np.ndarray:
    """Positions (in the shuffled candidate order) of each row's candidates by decreasing score."""
    keys = _descending_keys(block[:, shuffle]).astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= np.arange(block.shape[1], dtype=np.uint64)
    keys.sort(axis=1)
    keys &= _LOW_HALF
    return keys.view(np.int64) if np.dtype(np.intp) == np.dtype(np.int64) else keys.astype(np.intp)


def _map_blocks(function, n_rows: int, block_rows: int, n_threads: int | None) -> list:
    starts = range(0, n_rows, block_rows)
    n_threads = min(n_threads or _default_threads(), len(starts)) or 1
    if n_threads == 1:
        return [function(start) for start in starts]
    # Each worker computes its block's scores on one core: a multi-threaded BLAS inside every
    # worker would oversubscribe the cores (2 cores, VEGAS size: 1.26 s → 0.82 s).
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(function, starts))


def rank_candidates(scores: np.ndarray, tie_seed: int = 0, n_threads: int | None = None) -> np.ndarray:
    """Candidate indices of each row ordered by decreasing score (ties: seeded random order)."""
    scores = _checked_scores(scores)
    shuffle = np.random.default_rng(tie_seed).permutation(scores.shape[1])
    block_rows = rows_per_block(scores.shape[1])
    blocks = _map_blocks(
        lambda start: shuffle[_ranked_positions(scores[start : start + block_rows], shuffle)],
        len(scores), block_rows, n_threads,
    )  # fmt: skip
    return np.concatenate(blocks) if blocks else np.empty((0, scores.shape[1]), dtype=np.intp)


def _relevant_pairs(block_labels, candidates_of_label) -> tuple[np.ndarray, np.ndarray]:
    """(row, candidate) of every query of the block and candidate sharing its label."""
    rows, columns = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)]
    for label in np.unique(block_labels):
        candidates = candidates_of_label.get(label)
        if candidates is not None:
            query_rows = np.flatnonzero(block_labels == label)
            rows.append(np.repeat(query_rows, len(candidates)))
            columns.append(np.tile(candidates, len(query_rows)))
    return np.concatenate(rows), np.concatenate(columns)


def _relevant_rank_metrics(block, block_labels, candidates_of_label, shuffle_position, scopes):
    """AP and P@K of a block from the ranks of the relevant candidates only, or None when too many
    of them tie with other candidates (Hamming scores), for which :func:`_block_metrics` ranks the
    whole block with the tie-breaking 64-bit keys.

    A row is sorted as 32-bit keys (half the bytes of the tie-breaking keys, no permutation); the
    rank of a relevant candidate is 1 + the number of keys below its own, found by a binary search
    in the sorted row, + the number of candidates with the same score that come first in the seeded
    permutation (the stable sort of the permuted scores puts them first). AP = (1/R) Σ_i i / rank_i
    over the relevant ranks in increasing order, P@K = #(rank_i ≤ K) / K: the same terms, summed in
    the same order, as from the full ranking, so the results are identical.
    """
    n_rows, n_candidates = block.shape
    keys = _descending_keys(block)
    rows, columns = _relevant_pairs(block_labels, candidates_of_label)
    relevant_keys = keys[rows, columns].astype(np.uint64)
    # One binary search over the whole block: row r's sorted keys become r·2³² + key.
    row_offsets = np.arange(n_rows, dtype=np.uint64) << np.uint64(32)
    flat = np.sort(keys, axis=1).astype(np.uint64)
    flat += row_offsets[:, None]
    flat = flat.reshape(-1)
    targets = relevant_keys + row_offsets[rows]
    # Searching sorted needles walks the array forwards (numpy narrows each search from the last).
    by_target = np.argsort(targets)
    targets, rows, columns = targets[by_target], rows[by_target], columns[by_target]
    below = np.searchsorted(flat, targets, side="left")
    # A relevant key is in the row, at ``below``; it is tied when the next key is the same.
    after = np.minimum(below + 1, len(flat) - 1)
    tied = np.flatnonzero((flat[after] == targets) & (after > below))
    if len(tied) > MAX_TIED_PER_ROW * n_rows:
        return None
    rank = below.astype(np.int64) - rows * n_candidates + 1
    del flat, targets, below, after
    for index in tied:  # float32 collisions of continuous scores: a few per block
        row, column = rows[index], columns[index]
        same_score = keys[row] == keys[row, column]
        rank[index] += np.count_nonzero(shuffle_position[same_score] < shuffle_position[column])
    order = np.argsort(rows * np.int64(n_candidates) + rank, kind="stable")
    rows, rank = rows[order], rank[order]
    n_relevant = np.bincount(rows, minlength=n_rows)
    first_of_row = np.concatenate([[0], np.cumsum(n_relevant)[:-1]])
    hits_so_far = np.arange(len(rows)) - first_of_row[rows] + 1
    summed = np.bincount(rows, weights=hits_so_far / rank.astype(np.float64), minlength=n_rows)
    average_precision = np.divide(summed, n_relevant, out=np.zeros(n_rows), where=n_relevant > 0)
    if scopes is None:
        return average_precision, None
    # Relevant candidates at rank ≤ K for every K: count per (row, first scope ≥ rank), accumulate.
    by_size = np.argsort(scopes, kind="stable")
    sorted_scopes = scopes[by_size]
    first_scope = np.searchsorted(sorted_scopes, rank, side="left")
    width = len(scopes) + 1
    counts = np.bincount(rows * width + first_scope, minlength=n_rows * width).reshape(n_rows, width)
    within = np.empty((n_rows, len(scopes)), dtype=np.int64)
    within[:, by_size] = np.cumsum(counts[:, : len(scopes)], axis=1)
    return average_precision, within / scopes


def _block_metrics(block, block_labels, shuffled_candidate_labels, shuffle, scopes):
    positions = _ranked_positions(block, shuffle)
    hits = shuffled_candidate_labels[positions] == block_labels[:, None]
    del positions
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


def blocked_ranking_metrics(
    score_rows,
    n_queries: int,
    query_labels: Sequence,
    candidate_labels: Sequence,
    tie_seed: int = 0,
    scopes: Sequence[int] | None = None,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-query AP (and P@K with ``scopes``) from ``score_rows(start, stop)``, which returns the
    scores of queries ``start:stop`` against every candidate; one block at a time per thread.

    K is clipped to the number of candidates.
    """
    query_labels, candidate_labels = np.asarray(query_labels), np.asarray(candidate_labels)
    n_candidates = len(candidate_labels)
    if len(query_labels) != n_queries:
        raise ValueError(f"{n_queries} queries but {len(query_labels)} query labels")
    _check_candidates(n_candidates)
    shuffle = np.random.default_rng(tie_seed).permutation(n_candidates)
    shuffled_candidate_labels = candidate_labels[shuffle]
    candidate_classes, class_of_candidate = np.unique(candidate_labels, return_inverse=True)
    by_class = np.argsort(class_of_candidate, kind="stable")
    class_starts = np.searchsorted(class_of_candidate[by_class], np.arange(len(candidate_classes) + 1))
    candidates_of_label = {label: by_class[class_starts[i] : class_starts[i + 1]]
                           for i, label in enumerate(candidate_classes.tolist())}
    shuffle_position = np.empty(n_candidates, dtype=np.int64)
    shuffle_position[shuffle] = np.arange(n_candidates)
    clipped = None if scopes is None else np.minimum(np.asarray(scopes, dtype=np.int64), n_candidates)
    block_rows = rows_per_block(n_candidates)

    def on_block(start):
        stop = min(start + block_rows, n_queries)
        block = score_rows(start, stop)
        if block.shape != (stop - start, n_candidates):
            raise ValueError(f"score block of shape {block.shape}, expected {(stop - start, n_candidates)}")
        from_ranks = _relevant_rank_metrics(block, query_labels[start:stop], candidates_of_label,
                                            shuffle_position, clipped)
        if from_ranks is not None:
            return from_ranks
        return _block_metrics(block, query_labels[start:stop], shuffled_candidate_labels, shuffle, clipped)

    blocks = _map_blocks(on_block, n_queries, block_rows, n_threads)
    if not blocks:
        return np.zeros(0), None if scopes is None else np.zeros((0, len(clipped)))
    average_precision = np.concatenate([ap for ap, _ in blocks])
    precision = None if scopes is None else np.concatenate([p for _, p in blocks])
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
    if len(query_labels) != scores.shape[0] or len(candidate_labels) != scores.shape[1]:
        raise ValueError(f"scores {scores.shape} do not match {len(query_labels)} query and "
                         f"{len(candidate_labels)} candidate labels")
    return blocked_ranking_metrics(lambda start, stop: scores[start:stop], len(scores), query_labels,
                                   candidate_labels, tie_seed, scopes, n_threads)


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


def evaluate_source(
    source, audio_labels, visual_labels, tie_seed: int = 0, scopes: Sequence[int] | None = None,
    n_threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-query AP in both directions from a score source (:class:`EmbeddingScores`,
    :class:`DenseScores`): a→v ranks its audio rows, v→a its visual rows (the columns of the
    matrix). With ``scopes``, per-query P@K of each direction too (``a2v_precision``, ``v2a_precision``).
    """
    n_audio, n_visual = source.shape
    if len(audio_labels) != n_audio or len(visual_labels) != n_visual:
        raise ValueError(f"scores {source.shape} do not match {len(audio_labels)} audio and "
                         f"{len(visual_labels)} visual labels")
    results = {}
    for direction, rows, n_queries, queries, candidates in (
        ("a2v", source.a2v_rows, n_audio, audio_labels, visual_labels),
        ("v2a", source.v2a_rows, n_visual, visual_labels, audio_labels),
    ):
        average_precision, precision = blocked_ranking_metrics(rows, n_queries, queries, candidates, tie_seed,
                                                               scopes, n_threads)
        results[direction] = average_precision
        if scopes is not None:
            results[f"{direction}_precision"] = precision
    return results


def evaluate_scores(
    scores: np.ndarray, audio_labels, visual_labels, tie_seed: int = 0, scopes: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Per-query AP in both directions: a→v ranks rows of ``scores``, v→a ranks its columns.

    With ``scopes``, the per-query P@K of each direction comes back too (keys ``a2v_precision``,
    ``v2a_precision``) from the same rankings.
    """
    return evaluate_source(DenseScores(scores), audio_labels, visual_labels, tie_seed, scopes)
