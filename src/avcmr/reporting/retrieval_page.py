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
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from avcmr.io.parquet import atomic_path, read_metadata, read_table, vectors_from_column

log = logging.getLogger(__name__)

DIRECTIONS = ("a2v", "v2a")
DIRECTION_TITLES = {"a2v": "Audio → visual", "v2a": "Visual → audio"}
# What the page shows of a clip in each role: the query both, a result its retrieved modality.
QUERY_MEDIA = ("thumbnail", "audio")
RESULT_MEDIA = {"a2v": "thumbnail", "v2a": "audio"}
# An AP of the page farther than this from the evaluation's stored AP is stated on the page.
AP_TOLERANCE = 1e-6


class RetrievalPageError(ValueError):
    """The run's tables cannot make the page (stale or missing outputs); one-line message."""


class PreviewError(Exception):
    """A clip whose thumbnail or audio extract cannot be cut; ``reason`` is shown on the page."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# The `figures` config keys of the page, and the PageSettings field each one sets.
CONFIG_KEYS = {"retrieval_queries": "queries_per_direction", "retrieval_top_k": "top_k",
               "retrieval_seed": "query_seed", "retrieval_thumbnail_px": "thumbnail_width",
               "retrieval_audio_s": "audio_seconds"}


@dataclass(frozen=True)
class PageSettings:
    """What the page shows (config: the ``figures`` section's ``retrieval_*`` keys)."""

    queries_per_direction: int = 20
    top_k: int = 10
    query_seed: int = 0
    thumbnail_width: int = 160
    audio_seconds: float = 3.0

    def __post_init__(self):
        for name in ("queries_per_direction", "top_k", "thumbnail_width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"retrieval page: {name} must be at least 1, got {getattr(self, name)}")
        if not self.audio_seconds > 0:
            raise ValueError(f"retrieval page: audio_seconds must be positive, got {self.audio_seconds}")

    @classmethod
    def from_config(cls, figures: Mapping | None) -> PageSettings:
        """The settings the config's ``figures`` section gives (``CONFIG_KEYS``); the rest default."""
        figures = figures or {}
        return cls(**{name: figures[key] for key, name in CONFIG_KEYS.items() if key in figures})

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> PageSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(values or {}) - known
        if unknown:
            raise ValueError(f"retrieval page: unknown settings {sorted(unknown)} (known: {sorted(known)})")
        return cls(**dict(values or {}))


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


@dataclass
class Result:
    rank: int
    clip_id: str
    label: str
    score: float
    relevant: bool


@dataclass
class RankedQuery:
    clip_id: str
    label: str
    ap: float  # of the ranking shown
    evaluation_ap: float  # as the evaluation stored it
    results: list[Result]


@dataclass
class MethodSection:
    method: str
    similarity: str  # what the scores are, in words
    score_format: str
    mean_ap: dict[str, float]  # MAP per direction over all test queries (the evaluation's)
    queries: dict[str, list[RankedQuery]] = field(default_factory=dict)

    @property
    def largest_ap_difference(self) -> float:
        gaps = [abs(q.ap - q.evaluation_ap) for direction in self.queries.values() for q in direction]
        return max(gaps, default=0.0)


@dataclass
class PageData:
    dataset: str
    seed: int
    n_test: int
    settings: PageSettings
    random_weights: bool
    sections: list[MethodSection]

    @property
    def largest_ap_difference(self) -> float:
        return max((section.largest_ap_difference for section in self.sections), default=0.0)


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


# --- media: one ffmpeg call per clip on the page -------------------------------------------------


@dataclass(frozen=True)
class AudioEncoding:
    suffix: str
    mime: str
    codec_args: tuple[str, ...]


# Ogg/Opus: ≈ 9 KB for 3 s; WAV (16-bit, 16 kHz mono: 96 KB for 3 s) where ffmpeg lacks libopus.
OPUS = AudioEncoding(".ogg", "audio/ogg", ("-c:a", "libopus", "-b:a", "24k"))
WAV = AudioEncoding(".wav", "audio/wav", ("-c:a", "pcm_s16le"))
AUDIO_SAMPLE_RATE = 16000
MEDIA_MIME = {".jpg": "image/jpeg", OPUS.suffix: OPUS.mime, WAV.suffix: WAV.mime}


def audio_encoding(encoders_listing: str | None = None) -> AudioEncoding:
    """Opus when ``ffmpeg -encoders`` lists libopus, else WAV (every ffmpeg writes it, every browser
    plays it)."""
    if encoders_listing is None:
        encoders_listing = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True,
                                          timeout=60).stdout
    return OPUS if re.search(r"^\s*A\S*\s+libopus\s", encoders_listing, re.MULTILINE) else WAV


def media_needs(data: PageData) -> dict[str, set[str]]:
    """Clip id → what the page shows of it (``thumbnail``, ``audio``)."""
    needs: dict[str, set[str]] = {}
    for section in data.sections:
        for direction, queries in section.queries.items():
            for query in queries:
                needs.setdefault(query.clip_id, set()).update(QUERY_MEDIA)
                for result in query.results:
                    needs.setdefault(result.clip_id, set()).add(RESULT_MEDIA[direction])
    return needs


def cut_preview(path, duration_s: float, needs: set[str], stem: Path, settings: PageSettings,
                encoding: AudioEncoding) -> dict[str, Path]:
    """One ffmpeg call: the clip's thumbnail (the first frame of the window, ``thumbnail_width`` px
    wide, JPEG) and/or its audio extract (the window, 16 kHz mono), the window being
    ``audio_seconds`` (or the whole clip when shorter) in the middle of the clip."""
    path = Path(path)
    if not path.is_file():
        raise PreviewError(f"file not found: {path}")
    duration = float(duration_s) if duration_s is not None and np.isfinite(duration_s) and duration_s > 0 else math.inf
    window = min(settings.audio_seconds, duration)
    start = (duration - window) / 2 if np.isfinite(duration) else 0.0
    # One decoding thread: the job runs ``threads`` of these processes at once.
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", "1", "-ss", f"{start:.3f}",
               "-t", f"{window:.3f}", "-i", str(path)]
    outputs = {}
    if "thumbnail" in needs:
        outputs["thumbnail"] = stem.with_suffix(".jpg")
        command += ["-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={settings.thumbnail_width}:-2",
                    "-q:v", "5", str(outputs["thumbnail"])]
    if "audio" in needs:
        outputs["audio"] = stem.with_suffix(encoding.suffix)
        command += ["-map", "0:a:0", "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE), *encoding.codec_args,
                    str(outputs["audio"])]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise PreviewError("ffmpeg took more than 300 s") from None
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0:
        raise PreviewError(f"ffmpeg failed ({lines[-1][:200] if lines else f'exit status {result.returncode}'})")
    empty = [kind for kind, target in outputs.items() if not target.is_file() or target.stat().st_size == 0]
    if empty:
        raise PreviewError(f"ffmpeg wrote no {' and no '.join(empty)}")
    return outputs


def cut_previews(needs: Mapping[str, set[str]], clips: Mapping[str, tuple[str, float]], folder: Path,
                 settings: PageSettings, threads: int = 1) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """({clip id: {kind: file name in ``folder``}}, {clip id: why it has no media}); ``clips`` maps
    a clip id to (media path, duration in s). Clips are cut on ``threads`` threads (ffmpeg processes)."""
    from avcmr.media.ffmpeg_io import require_ffmpeg

    require_ffmpeg()
    encoding = audio_encoding()
    names = {clip_id: f"clip{index:05d}" for index, clip_id in enumerate(sorted(needs))}
    media: dict[str, dict[str, str]] = {}
    failures: dict[str, str] = {}

    def cut(clip_id):
        if clip_id not in clips:
            raise PreviewError("not in manifest.parquet")
        path, duration = clips[clip_id]
        return cut_preview(path, duration, needs[clip_id], folder / names[clip_id], settings, encoding)

    with ThreadPoolExecutor(max(1, int(threads))) as pool:
        futures = {clip_id: pool.submit(cut, clip_id) for clip_id in sorted(needs)}
        for clip_id, future in futures.items():
            try:
                media[clip_id] = {kind: target.name for kind, target in future.result().items()}
            except PreviewError as error:
                failures[clip_id] = error.reason
                log.warning("no media for %s: %s", clip_id, error.reason)
    log.info("media of %d clips cut (%s audio), %d without", len(media), encoding.suffix[1:], len(failures))
    return media, failures


# --- the page ------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 1.5em; color: #1f2937; }
h1 { font-size: 1.3em; } h2 { font-size: 1.15em; margin-top: 1.2em; } h3 { font-size: 1em; margin: 1em 0 0.4em; }
p.about { color: #4b5563; font-size: 0.9em; max-width: 70em; }
.warning { border: 2px solid #b91c1c; background: #fee2e2; color: #7f1d1d; padding: 0.6em; font-weight: bold;
           margin: 0.8em 0; }
.picker { margin: 1em 0; font-size: 1em; } .picker select { font-size: 1em; padding: 0.2em; }
.query { display: flex; gap: 0.8em; align-items: flex-start; border-top: 1px solid #d1d5db; padding: 0.5em 0; }
.query-item { flex: 0 0 168px; background: #eef2ff; padding: 4px; border-radius: 4px; font-size: 0.85em; }
ol.results { display: flex; flex-wrap: wrap; gap: 5px; list-style: none; margin: 0; padding: 0; }
li.result { width: 96px; font-size: 0.7em; padding: 2px; border: 2px solid; border-radius: 4px;
            overflow-wrap: anywhere; }
li.relevant { border-color: #15803d; background: #f0fdf4; } li.irrelevant { border-color: #d1d5db; }
.query-item img { width: 160px; display: block; } li.result img { width: 92px; display: block; }
audio { width: 100%; height: 28px; display: block; margin-top: 2px; }
.mark { font-weight: bold; } li.relevant .mark { color: #15803d; } li.irrelevant .mark { color: #b91c1c; }
.meta { color: #4b5563; } .id { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.ap { font-weight: bold; }
.no-media { color: #6b7280; font-style: italic; }
"""

_PICKER_JS = """
(function () {
  const picker = document.getElementById("method");
  const show = () => {
    for (const section of document.querySelectorAll("section.method")) {
      section.hidden = section.dataset.method !== picker.value;
    }
  };
  picker.addEventListener("change", show);
  show();
})();
"""

# The report copy: each media file once, as a data URI, set on the elements that show it.
_INLINE_MEDIA_JS = """
for (const element of document.querySelectorAll("[data-media]")) {
  element.src = MEDIA[element.dataset.media];
}
"""


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _breakable(label: str) -> str:
    """A label that may wrap after its underscores (noise_band_disc_01) in a narrow card."""
    return _escape(label).replace("_", "_<wbr>")


class _MediaMarkup:
    """The <img>/<audio> of a clip, from files beside the page (``prefix``) or inline (data URIs)."""

    def __init__(self, media: Mapping[str, Mapping[str, str]], failures: Mapping[str, str], prefix: str | None,
                 has_media: bool):
        self.media, self.failures, self.prefix, self.has_media = media, failures, prefix, has_media

    def _source(self, name: str) -> str:
        if self.prefix is None:
            return f'data-media="{_escape(name)}"'
        return f'src="{_escape(self.prefix + name)}"'

    def element(self, clip_id: str, kind: str, label: str) -> str:
        if not self.has_media:
            return ""
        name = self.media.get(clip_id, {}).get(kind)
        if name is None:
            reason = self.failures.get(clip_id, "not cut")
            return f'<div class="no-media" title="{_escape(reason)}">no {kind}: {_escape(reason)}</div>'
        if kind == "thumbnail":
            return f'<img {self._source(name)} alt="{_escape(label)}">'
        return f'<audio controls preload="none" {self._source(name)}></audio>'


def _query_markup(query: RankedQuery, direction: str, section: MethodSection, media: _MediaMarkup) -> str:
    items = []
    for result in query.results:
        state = "relevant" if result.relevant else "irrelevant"
        mark = "✓" if result.relevant else "✗"
        items.append(
            f'<li class="result {state}" data-clip="{_escape(result.clip_id)}" data-label="{_escape(result.label)}" '
            f'data-score="{result.score!r}" data-relevant="{str(result.relevant).lower()}">'
            + media.element(result.clip_id, RESULT_MEDIA[direction], result.label)
            + f'{result.rank}. <span class="mark" title="{state}">{mark}</span> <span class="label">'
            f'{_breakable(result.label)}</span><div class="meta"><span class="score">{section.score_format.format(result.score)}'
            f'</span> <span class="id">{_escape(result.clip_id)}</span></div></li>')
    query_media = "".join(media.element(query.clip_id, kind, query.label) for kind in QUERY_MEDIA)
    return (
        f'<div class="query" data-clip="{_escape(query.clip_id)}" data-label="{_escape(query.label)}" '
        f'data-ap="{query.ap!r}" data-evaluation-ap="{query.evaluation_ap!r}">'
        f'<div class="query-item">{query_media}<div class="id">{_escape(query.clip_id)}</div>'
        f'<div class="label">{_escape(query.label)}</div><div class="ap">AP {query.ap:.3f}</div></div>'
        f'<ol class="results">{"".join(items)}</ol></div>')


def default_method(methods: Sequence[str]) -> str:
    """The method shown first: the paper's model (the tables' reference) when trained, else the first
    configured."""
    from avcmr.reporting.tables import REFERENCE_METHOD

    return REFERENCE_METHOD if REFERENCE_METHOD in methods else methods[0]


def render_page(data: PageData, media: Mapping[str, Mapping[str, str]], failures: Mapping[str, str],
                has_media: bool, prefix: str | None, inline: Mapping[str, str] | None = None) -> str:
    """The page's HTML. ``prefix``: the media folder relative to the page (``retrieval/``); None with
    ``inline`` (file name → data URI) for the report's copy."""
    from avcmr.reporting.report import RANDOM_WEIGHTS_WARNING

    markup = _MediaMarkup(media, failures, prefix, has_media)
    methods = [section.method for section in data.sections]
    shown = default_method(methods)
    k = min(data.settings.top_k, data.n_test)
    n_queries = {d: len(data.sections[0].queries[d]) if data.sections else 0 for d in DIRECTIONS}
    title = f"Retrieval examples: {data.dataset}"
    body = [f"<h1>{_escape(title)}</h1>"]
    if data.random_weights:
        body.append(f'<div class="warning">{_escape(RANDOM_WEIGHTS_WARNING)}</div>')
    difference = data.largest_ap_difference
    agreement = ("equal to the per-query AP the evaluation stored" if difference <= AP_TOLERANCE else
                 f"within {difference:.1g} of the per-query AP the evaluation stored (float32 copies of the "
                 "embeddings moved a near-tie)")
    body.append(
        f'<p class="about">{n_queries["a2v"]} audio queries and {n_queries["v2a"]} visual queries, drawn from the '
        f"{data.n_test} test clips balanced over the classes (seed {data.settings.query_seed}); for each, the "
        f"{k} test items of the other modality that the method ranks first among all {data.n_test}, as the evaluation "
        f"ranks them (models trained with seed {data.seed}, the first configured seed; ties broken by the same "
        f"seeded order). ✓ relevant: same label as the query; ✗ not. AP: the query's average precision over the "
        f"full ranking, {agreement}; MAP: the mean over all test queries.</p>")
    if has_media:
        body.append(
            f'<p class="about">Media cut from each clip\'s own file: a frame from its middle '
            f"({data.settings.thumbnail_width} px wide) and {data.settings.audio_seconds:g} s of its audio around "
            "the middle; queries show both, results the modality retrieved.</p>")
    else:
        body.append('<p class="about">This dataset is a feature file (no clips): the page shows clip ids and '
                    "labels only.</p>")
    options = "".join(f'<option value="{_escape(m)}"{" selected" if m == shown else ""}>{_escape(m)}</option>'
                      for m in methods)
    body.append(f'<div class="picker"><label for="method">Method: </label><select id="method">{options}</select></div>')
    for section in data.sections:
        hidden = "" if section.method == shown else " hidden"
        parts = [f'<section class="method" data-method="{_escape(section.method)}"{hidden}>',
                 f"<h2>{_escape(section.method)}</h2>",
                 f'<p class="about">Scores: {_escape(section.similarity)}. MAP over all {data.n_test} test queries: '
                 f'a→v {section.mean_ap["a2v"]:.3f}, v→a {section.mean_ap["v2a"]:.3f}.</p>']
        for direction in DIRECTIONS:
            query_kind, result_kind = ("audio", "visual") if direction == "a2v" else ("visual", "audio")
            parts.append(f'<div class="direction" data-direction="{direction}"><h3>{DIRECTION_TITLES[direction]}: '
                         f"each {query_kind} query and the {k} {result_kind} items ranked first</h3>")
            parts += [_query_markup(query, direction, section, markup) for query in section.queries[direction]]
            parts.append("</div>")
        parts.append("</section>")
        body.append("\n".join(parts))
    scripts = [_PICKER_JS]
    if inline:  # a features dataset has none
        scripts.insert(0, f"const MEDIA = {json.dumps(dict(inline), sort_keys=True)};\n{_INLINE_MEDIA_JS}")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>\n'
            + "\n".join(body) + "\n" + "".join(f"<script>{script}</script>\n" for script in scripts)
            + "</body></html>\n")


def _data_uris(folder: Path, media: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    uris = {}
    for names in media.values():
        for name in names.values():
            encoded = base64.b64encode((folder / name).read_bytes()).decode("ascii")
            uris[name] = f"data:{MEDIA_MIME[Path(name).suffix]};base64,{encoded}"
    return uris


def _manifest_clips(manifest_path, wanted) -> dict[str, tuple[str, float]]:
    table = read_table(manifest_path, ["clip_id", "path", "duration_s"]).to_pydict()
    wanted = set(wanted)
    return {clip_id: (path, duration) for clip_id, path, duration
            in zip(table["clip_id"], table["path"], table["duration_s"], strict=True) if clip_id in wanted}


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
            media, failures = cut_previews(needs, _manifest_clips(manifest_path, needs), staging, settings, threads)
        inline = _data_uris(staging, media)
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
