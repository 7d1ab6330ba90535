"""The retrieval page's HTML: one section per method (a ``<select>`` shows one at a time), each
query with its top-k results marked relevant or not, media from files beside the page or inline
(the report's copy). :func:`render_page` turns a :class:`~avcmr.reporting.retrieval_page_types.PageData`
into the page; ``avcmr.reporting.retrieval_page`` writes it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

from avcmr.reporting.retrieval_page_types import (
    AP_TOLERANCE,
    DIRECTION_TITLES,
    DIRECTIONS,
    QUERY_MEDIA,
    RESULT_MEDIA,
    MethodSection,
    PageData,
    RankedQuery,
)

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
