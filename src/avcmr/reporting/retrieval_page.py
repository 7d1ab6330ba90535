"""The retrieval page: which test clips each trained method returns for a sample of queries.

``results/<dataset>/retrieval.html`` shows, for a seeded, class-balanced sample of test queries in
each direction (audio → visual, visual → audio), the top-k test items of the other modality that
each trained method ranks first at one seed (the first configured seed), each marked relevant (same
label) or not, with the query's AP. A plain ``<select>`` shows one method at a time.

The rankings are the evaluation's own (:func:`avcmr.stages.train.fit_and_evaluate`):

- scores from the same score source: the stored test embeddings compared by the method's similarity
  (:class:`~avcmr.evaluation.metrics.EmbeddingScores`, cosine or Hamming as the embeddings table
  records), or, for a method that scores without embeddings (``random``), its saved model's own
  ``similarity`` (:func:`~avcmr.evaluation.metrics.method_scores`); each query's row is computed in
  the block of query rows the evaluation computed it in;
- order from :func:`~avcmr.evaluation.metrics.rank_candidates` and AP from
  :func:`~avcmr.evaluation.metrics.ranking_metrics`, ties broken by the same seeded permutation (the
  run's seed), over all test clips of the other modality.

The page states how far its APs are from the per-query APs the evaluation stored (none on CPU runs:
the embeddings are the evaluation's; float64 embeddings stored as float32 can move a near-tie).

Media: for each clip on the page, one ffmpeg call cuts from the clip's own file (``manifest.parquet``)
what the page shows of it: a frame thumbnail (queries, and the results of audio → visual) and a
short audio extract (queries, and the results of visual → audio), from the middle of the clip, into
``results/<dataset>/retrieval/``. A features dataset (kind ``features``, rows of a released feature
file) has no media: its page shows ids and labels only. ``snakemake --report`` embeds each result as
one file, so the report holds a copy of the page with every media file inline (once, as a data URI).

This module picks the queries, ranks them and writes the page; the page's data types are in
``avcmr.reporting.retrieval_page_types``, the media in ``retrieval_page_media`` and the HTML in
``retrieval_page_html`` (their public names are importable from here too).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avcmr.io.parquet import atomic_path, read_metadata, read_table, vectors_from_column

# Re-exported (F401): the names that lived here before the split, some of them used here too.
from avcmr.reporting.retrieval_page_html import default_method, render_page  # noqa: F401
from avcmr.reporting.retrieval_page_media import (  # noqa: F401
    AUDIO_SAMPLE_RATE,
    MEDIA_MIME,
    OPUS,
    WAV,
    AudioEncoding,
    audio_encoding,
    cut_preview,
    cut_previews,
    data_uris,
    manifest_clips,
    media_needs,
)
from avcmr.reporting.retrieval_page_types import (  # noqa: F401
    AP_TOLERANCE,
    CONFIG_KEYS,
    DIRECTION_TITLES,
    DIRECTIONS,
    QUERY_MEDIA,
    RESULT_MEDIA,
    MethodSection,
    PageData,
    PageSettings,
    PreviewError,
    RankedQuery,
    Result,
    RetrievalPageError,
)

log = logging.getLogger(__name__)


# --- which queries, and what each method returns for them ---------------------------------------


def balanced_queries(labels: Sequence, n_queries: int, seed) -> np.ndarray:
    """Positions of ``n_queries`` items (all when there are fewer), balanced over the labels: the
    classes, in a seeded order, take turns giving their next item of a seeded shuffle, so each class
    has ⌊n/C⌋ or ⌈n/C⌉ queries while it has items left. Sorted by label, then position."""
    labels = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels.tolist()))
    pools = [rng.permutation(np.flatnonzero(labels == classes[i])).tolist()
             for i in rng.permutation(len(classes))]
    wanted = min(int(n_queries), len(labels))
    chosen: list[int] = []
    while len(chosen) < wanted:
        for pool in pools:
            if pool and len(chosen) < wanted:
                chosen.append(pool.pop(0))
    return np.asarray(sorted(chosen, key=lambda i: (str(labels[i]), i)), dtype=np.intp)


def score_rows(source, direction: str, positions: Sequence[int]) -> np.ndarray:
    """Scores (float32) of the queries at ``positions`` against every candidate of ``source`` (an
    evaluation score source), each row computed within the block of query rows the evaluation
    computed it in, so the products, and the float32 values ranked, are the same."""
    from avcmr.evaluation.metrics import rows_per_block

    n_queries, n_candidates = source.shape if direction == "a2v" else source.shape[::-1]
    rows_of = source.a2v_rows if direction == "a2v" else source.v2a_rows
    block_rows = rows_per_block(n_candidates)
    positions = np.asarray(positions, dtype=np.intp)
    rows = np.empty((len(positions), n_candidates), dtype=np.float32)
    starts = positions // block_rows * block_rows
    for start in np.unique(starts):
        block = np.asarray(rows_of(int(start), int(min(start + block_rows, n_queries))), dtype=np.float32)
        for index in np.flatnonzero(starts == start):
            rows[index] = block[positions[index] - start]
    return rows


def rank_queries(rows: np.ndarray, query_labels: Sequence, candidate_labels: Sequence, top_k: int,
                 tie_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(top-k candidate positions of each row, each row's AP over the full ranking), with the
    evaluation's ranking and AP functions and tie-breaking seed."""
    from avcmr.evaluation.metrics import rank_candidates, ranking_metrics

    order = rank_candidates(rows, tie_seed)[:, :top_k]
    average_precision, _ = ranking_metrics(rows, query_labels, candidate_labels, tie_seed)
    return order, average_precision

def load_test_split(features_path) -> dict:
    """Clip ids, labels and features of the test clips in ``features.parquet`` order (the order
    the evaluation ranks them in): the candidates `avcmr query` ranks."""
    from avcmr.query import QueryInputError, load_candidates

    try:
        return load_candidates(features_path, "test")
    except QueryInputError as error:
        raise RetrievalPageError(str(error)) from None


# What the scores of each kind of score source are, in words, and how the page prints them.
SIMILARITY_WORDS = {"cosine": "cosine of the embeddings", "hamming": "negative Hamming distance of the codes",
                    "own": "the method's own scores"}
SCORE_FORMATS = {"hamming": "{:.0f}"}


def evaluation_scores(method: str, embeddings_path, model_path, test: Mapping):
    """(score source, its kind: a :data:`SIMILARITY_WORDS` key) that the evaluation ranked for one
    (method, seed)."""
    from avcmr.evaluation.metrics import EmbeddingScores, method_scores

    metadata = read_metadata(embeddings_path)
    if metadata.get("has_embeddings", True):
        table = read_table(embeddings_path)
        if table["clip_id"].to_pylist() != list(test["clip_ids"]):
            raise RetrievalPageError(f"{embeddings_path}: its clips are not the test clips of features.parquet "
                                     "(outputs of different runs): run the workflow again")
        kind = str(metadata.get("similarity_kind", "cosine"))
        return EmbeddingScores(vectors_from_column(table["audio"]), vectors_from_column(table["visual"]), kind), kind
    if model_path is None or not Path(model_path).is_file():
        raise RetrievalPageError(f"{method} has no test embeddings ({embeddings_path}) and no model file to score "
                                 "with")
    from avcmr.models_io import load_model

    return method_scores(load_model(model_path).method, test["audio"], test["visual"]), "own"


def method_section(method: str, source, kind: str, test: Mapping, query_positions: Mapping[str, np.ndarray],
                   evaluation, top_k: int, tie_seed: int) -> MethodSection:
    """The queries of one method: top-k of each, its AP, and the evaluation's stored AP and MAP.
    ``evaluation``: the method's per-query AP table (direction, query_clip_id, ap)."""
    stored = {(d, c): float(a) for d, c, a in zip(evaluation["direction"], evaluation["query_clip_id"],
                                                   evaluation["ap"], strict=True)}
    mean_ap = {d: float(np.mean([a for (dd, _), a in stored.items() if dd == d] or [np.nan])) for d in DIRECTIONS}
    section = MethodSection(method, SIMILARITY_WORDS[kind], SCORE_FORMATS.get(kind, "{:.3f}"), mean_ap)
    labels, clip_ids = test["labels"], test["clip_ids"]
    for direction in DIRECTIONS:
        positions = query_positions[direction]
        rows = score_rows(source, direction, positions)
        order, average_precision = rank_queries(rows, labels[positions], labels, top_k, tie_seed)
        ranked = []
        for row, (position, top, ap) in enumerate(zip(positions, order, average_precision, strict=True)):
            results = [Result(rank, str(clip_ids[c]), str(labels[c]), float(rows[row, c]), bool(labels[c] == labels[position]))
                       for rank, c in enumerate(top, start=1)]
            key = (direction, str(clip_ids[position]))
            if key not in stored:
                raise RetrievalPageError(f"the per-query AP table of {method} has no {direction} query "
                                         f"{key[1]} (outputs of different runs): run the workflow again")
            ranked.append(RankedQuery(key[1], str(labels[position]), float(ap), stored[key], results))
        section.queries[direction] = ranked
    return section


def retrieval_page_data(dataset: str, features_path, methods: Sequence[str], eval_paths: Sequence, embeddings_paths:
                        Sequence, model_paths: Sequence | None, seed: int, settings: PageSettings) -> PageData:
    """Everything the page shows but the media (one method at a time in memory)."""
    if not (len(methods) == len(eval_paths) == len(embeddings_paths)):
        raise RetrievalPageError(f"{len(methods)} methods but {len(eval_paths)} evaluation and "
                                 f"{len(embeddings_paths)} embeddings tables")
    model_paths = list(model_paths) if model_paths else [None] * len(methods)
    test = load_test_split(features_path)
    query_positions = {direction: balanced_queries(test["labels"], settings.queries_per_direction,
                                                   [settings.query_seed, index])
                       for index, direction in enumerate(DIRECTIONS)}
    sections = []
    for method, eval_path, embeddings_path, model_path in zip(methods, eval_paths, embeddings_paths, model_paths,
                                                              strict=True):
        source, kind = evaluation_scores(method, embeddings_path, model_path, test)
        evaluation = read_table(eval_path, ["direction", "query_clip_id", "ap"]).to_pydict()
        section = method_section(method, source, kind, test, query_positions, evaluation, settings.top_k, seed)
        del source
        log.info("%s: %d + %d queries ranked; largest |AP − evaluation's AP| %.2g", method,
                 len(section.queries["a2v"]), len(section.queries["v2a"]), section.largest_ap_difference)
        sections.append(section)
    metadata = read_metadata(features_path)
    return PageData(dataset, int(seed), len(test["clip_ids"]), settings, bool(metadata.get("random_weights", False)),
                    sections)


def write_retrieval_page(*, dataset: str, features_path, manifest_path, methods: Sequence[str],
                         eval_paths: Sequence, embeddings_paths: Sequence, model_paths: Sequence | None, seed: int,
                         page_out, report_out, media_dir, settings: Mapping | PageSettings | None = None,
                         has_media: bool = True, threads: int = 1) -> PageData:
    """Write the page (``page_out``, media in ``media_dir``) and the report's copy (``report_out``,
    media inline). The media folder is filled under a temporary name and renamed into place before
    the pages are written (each atomically), so a page never points at media that are not there."""
    if not methods:
        raise RetrievalPageError("no trained method to show")
    if not isinstance(settings, PageSettings):
        settings = PageSettings.from_mapping(settings)
    data = retrieval_page_data(dataset, features_path, methods, eval_paths, embeddings_paths, model_paths, seed,
                               settings)
    page_out, report_out, media_dir = Path(page_out), Path(report_out), Path(media_dir)
    media_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{media_dir.name}.", suffix=".tmp", dir=media_dir.parent))
    try:
        media, failures = {}, {}
        if has_media:
            needs = media_needs(data)
            media, failures = cut_previews(needs, manifest_clips(manifest_path, needs), staging, settings, threads)
        inline = data_uris(staging, media)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; results are readable like the rest
        if media_dir.exists():
            shutil.rmtree(media_dir)
        os.replace(staging, media_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    prefix = Path(os.path.relpath(media_dir, page_out.parent)).as_posix() + "/"
    with atomic_path(page_out) as tmp:
        tmp.write_text(render_page(data, media, failures, has_media, prefix), encoding="utf-8")
    with atomic_path(report_out) as tmp:
        tmp.write_text(render_page(data, media, failures, has_media, None, inline), encoding="utf-8")
    log.info("%s: %d methods; %.1f MB of media (report copy %.1f MB)", page_out, len(data.sections),
             sum(len(uri) * 3 / 4 for uri in inline.values()) / 2**20, report_out.stat().st_size / 2**20)
    return data
