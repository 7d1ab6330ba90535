"""The retrieval page (avcmr.reporting.retrieval_page): its rankings and APs against a brute-force
numpy computation on small real Parquet tables, the query draw, the previews cut by ffmpeg from real
clips, the features-only page, and (slow) the page of the shared tiny run as headless Chromium shows
it, media loaded."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import threading
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from avcmr.io import schemas
from avcmr.io.parquet import read_table, vector_column, write_table
from avcmr.media.ffmpeg_io import probe
from avcmr.reporting.retrieval_page import balanced_queries, write_retrieval_page
from avcmr.reporting.retrieval_page_media import OPUS, WAV, audio_encoding, cut_preview
from avcmr.reporting.retrieval_page_types import PageSettings, PreviewError

PROVENANCE = {"dataset": "small", "config_hash": "0", "random_weights": True}
TIE_SEED = 4


# --- a small run's tables, written as the workflow writes them -----------------------------------


def write_run_tables(folder: Path, labels: list[str], embeddings: dict, clip_ids: list[str] | None = None) -> dict:
    """features.parquet (10 training + the test clips), per-method embeddings, and per-query AP
    tables holding the brute-force AP (the 'stored' AP). ``embeddings``: method → (audio, visual, kind)."""
    rng = np.random.default_rng(7)
    n_test = len(labels)
    clip_ids = clip_ids or [f"clip{i:02d}" for i in range(n_test)]
    train_ids = [f"train{i:02d}" for i in range(10)]
    features = pa.table({
        "clip_id": train_ids + clip_ids,
        "label": [labels[i % n_test] for i in range(10)] + labels,
        "split": ["train"] * 10 + ["test"] * n_test,
        "audio": vector_column(rng.normal(size=(10 + n_test, 5))),
        "visual": vector_column(rng.normal(size=(10 + n_test, 3))),
    })
    write_table(features, folder / "features.parquet", schemas.features(5, 3), PROVENANCE)
    paths = {"features": folder / "features.parquet", "eval": [], "embeddings": []}
    for method, (audio, visual, kind) in embeddings.items():
        table = pa.table({"clip_id": clip_ids, "label": labels, "audio": vector_column(audio),
                          "visual": vector_column(visual)})
        path = folder / f"{method}_seed{TIE_SEED}.embeddings.parquet"
        write_table(table, path, schemas.embeddings(audio.shape[1], visual.shape[1]), PROVENANCE, method=method,
                    seed=TIE_SEED, has_embeddings=True, similarity_kind=kind)
        scores = brute_force_scores(audio, visual, kind)
        write_eval_table(folder / f"{method}_seed{TIE_SEED}.parquet", clip_ids, labels, scores)
        paths["eval"].append(folder / f"{method}_seed{TIE_SEED}.parquet")
        paths["embeddings"].append(path)
    return paths


def write_eval_table(path: Path, clip_ids, labels, scores: np.ndarray) -> None:
    labels = np.asarray(labels, dtype=object)
    ap = {"a2v": [brute_force_ranking(scores[i], labels, labels[i])[1] for i in range(len(labels))],
          "v2a": [brute_force_ranking(scores[:, i], labels, labels[i])[1] for i in range(len(labels))]}
    table = pa.table({"direction": ["a2v"] * len(labels) + ["v2a"] * len(labels),
                      "query_clip_id": list(clip_ids) * 2, "query_label": list(labels) * 2,
                      "ap": ap["a2v"] + ap["v2a"]})
    write_table(table, path, schemas.PER_QUERY_AP, PROVENANCE)


def brute_force_scores(audio: np.ndarray, visual: np.ndarray, kind: str) -> np.ndarray:
    """Audio × visual scores from first principles: cosine, or −Hamming distance of ±1 codes."""
    if kind == "hamming":
        return -np.array([[np.sum(a != v) for v in visual] for a in audio], dtype=float)
    unit_audio = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    unit_visual = visual / np.linalg.norm(visual, axis=1, keepdims=True)
    return np.array([[float(np.dot(a, v)) for v in unit_visual] for a in unit_audio])


def brute_force_ranking(scores: np.ndarray, candidate_labels, query_label) -> tuple[np.ndarray, float]:
    """(candidate order, AP): by decreasing score, ties in the order of the seeded permutation of the
    candidates (METHODS.md); AP = mean over the relevant items of the precision at their rank."""
    permutation = np.random.default_rng(TIE_SEED).permutation(len(scores))
    order = permutation[np.argsort(-np.asarray(scores, dtype=np.float32)[permutation], kind="stable")]
    relevant = np.asarray(candidate_labels, dtype=object)[order] == query_label
    ranks = np.flatnonzero(relevant) + 1
    return order, float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else 0.0


class PageParser(HTMLParser):
    """Sections → directions → queries (clip, label, AP attributes) with their result items."""

    def __init__(self):
        super().__init__()
        self.sections, self.options, self.media, self.hidden = {}, [], [], {}
        self.section = self.direction = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "option":
            self.options.append(attrs["value"])
        elif tag == "section" and "method" in classes:
            self.section = self.sections.setdefault(attrs["data-method"], {})
            self.hidden[attrs["data-method"]] = "hidden" in attrs
        elif tag == "div" and "direction" in classes:
            self.direction = self.section.setdefault(attrs["data-direction"], [])
        elif tag == "div" and "query" in classes:
            self.direction.append({**attrs, "results": []})
        elif tag == "li" and "result" in classes:
            self.direction[-1]["results"].append({**attrs, "classes": classes})
        elif tag in ("img", "audio"):
            self.media.append((tag, attrs.get("src") or attrs.get("data-media")))


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --- rankings and AP ------------------------------------------------------------------------------


def test_the_query_draw_is_seeded_and_balanced_over_the_classes():
    labels = ["a"] * 10 + ["b"] * 7 + ["c"] * 2
    chosen = balanced_queries(labels, 8, seed=[0, 1])
    counts = {label: sum(labels[i] == label for i in chosen) for label in "abc"}
    assert counts == {"a": 3, "b": 3, "c": 2}  # c has only 2: the others share the rest evenly
    assert len(set(chosen.tolist())) == 8
    assert list(chosen) == sorted(chosen, key=lambda i: (labels[i], i))
    assert np.array_equal(chosen, balanced_queries(labels, 8, seed=[0, 1]))
    assert any(not np.array_equal(chosen, balanced_queries(labels, 8, seed=[s, 1])) for s in range(1, 5))
    assert sorted(balanced_queries(labels, 50, seed=0).tolist()) == list(range(len(labels)))
    nine = balanced_queries(["x", "y", "z"] * 20, 9, seed=3)
    assert sorted(np.unique([["x", "y", "z"][i % 3] for i in nine], return_counts=True)[1].tolist()) == [3, 3, 3]


@pytest.fixture
def small_run(tmp_path):
    """30 test clips of 3 classes; `cca` with continuous 4-D embeddings, `ugach` with ±1 codes (many ties)."""
    rng = np.random.default_rng(1)
    labels = [f"class_{i % 3}" for i in range(30)]
    codes = np.where(rng.random((2, 30, 6)) < 0.5, -1.0, 1.0)
    embeddings = {"cca": (rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), "cosine"),
                  "ugach": (codes[0], codes[1], "hamming")}
    return labels, embeddings, write_run_tables(tmp_path, labels, embeddings)


def test_top_k_and_ap_equal_a_brute_force_ranking(small_run, tmp_path):
    labels, embeddings, paths = small_run
    labels = np.asarray(labels, dtype=object)
    clip_ids = [f"clip{i:02d}" for i in range(30)]
    settings = PageSettings(queries_per_direction=6, top_k=10, query_seed=2)
    write_retrieval_page(dataset="small", features_path=paths["features"], manifest_path=None,
                         methods=["cca", "ugach"], eval_paths=paths["eval"], embeddings_paths=paths["embeddings"],
                         model_paths=None, seed=TIE_SEED, page_out=tmp_path / "retrieval.html",
                         report_out=tmp_path / "report/retrieval.html", media_dir=tmp_path / "retrieval",
                         settings=settings, has_media=False)
    page = parse_page(tmp_path / "retrieval.html")
    assert page.options == ["cca", "ugach"] and page.hidden == {"cca": False, "ugach": True}
    checked = 0
    for method, (audio, visual, kind) in embeddings.items():
        scores = brute_force_scores(audio, visual, kind)
        for direction in ("a2v", "v2a"):
            queries = page.sections[method][direction]
            assert len(queries) == 6
            assert sorted(np.unique([q["data-label"] for q in queries], return_counts=True)[1]) == [2, 2, 2]
            for query in queries:
                index = clip_ids.index(query["data-clip"])
                row = scores[index] if direction == "a2v" else scores[:, index]
                order, ap = brute_force_ranking(row, labels, labels[index])
                assert [r["data-clip"] for r in query["results"]] == [clip_ids[c] for c in order[:10]]
                np.testing.assert_allclose([float(r["data-score"]) for r in query["results"]], row[order[:10]],
                                           rtol=0, atol=1e-6)
                assert [r["data-relevant"] == "true" for r in query["results"]] == list(labels[order[:10]]
                                                                                       == labels[index])
                assert float(query["data-ap"]) == pytest.approx(ap, abs=1e-12)
                assert float(query["data-evaluation-ap"]) == pytest.approx(ap, abs=1e-12)
                checked += 1
    assert checked == 24
    text = (tmp_path / "retrieval.html").read_text()
    assert "equal to the per-query AP the evaluation stored" in text and "RANDOM BACKBONE WEIGHTS" in text


def test_a_method_without_embeddings_is_ranked_by_its_saved_models_own_scores(tmp_path):
    """`random` ranks by seeded random scores (no embeddings): the page takes them from its model file."""
    from avcmr.methods.random_baseline import RandomRanking
    from avcmr.models_io import save_model

    labels = [f"class_{i % 2}" for i in range(12)]
    clip_ids = [f"clip{i:02d}" for i in range(12)]
    paths = write_run_tables(tmp_path, labels, {}, clip_ids)
    empty = pa.table({"clip_id": pa.array([], pa.string()), "label": pa.array([], pa.string()),
                      "audio": vector_column(np.zeros((0, 1))), "visual": vector_column(np.zeros((0, 1)))})
    write_table(empty, tmp_path / "random.embeddings.parquet", schemas.embeddings(1, 1), PROVENANCE,
                has_embeddings=False)
    method = RandomRanking(random_state=TIE_SEED).fit(np.zeros((10, 5)), np.zeros((10, 3)), np.arange(10) % 2)
    scores = np.random.default_rng(TIE_SEED).random((12, 12))  # RandomRanking's documented scores
    write_eval_table(tmp_path / "random.parquet", clip_ids, labels, scores)
    pca = pa.table({"row": ["mean", "component_0"], "explained_variance": [np.nan, 1.0],
                    "vector": vector_column(np.zeros((2, 4)), pa.float64())})
    write_table(pca, tmp_path / "visual_pca.parquet", schemas.pca_model(4), PROVENANCE)
    save_model(tmp_path / "random.joblib", method, method_name="random", seed=TIE_SEED, dataset="small",
               class_names=["class_0", "class_1"], pca_path=tmp_path / "visual_pca.parquet", feature_settings={},
               backbone_weights={"vggish": "random", "inception": "random", "seed": 0})
    data = write_retrieval_page(
        dataset="small", features_path=paths["features"], manifest_path=None, methods=["random"],
        eval_paths=[tmp_path / "random.parquet"], embeddings_paths=[tmp_path / "random.embeddings.parquet"],
        model_paths=[tmp_path / "random.joblib"], seed=TIE_SEED, page_out=tmp_path / "retrieval.html",
        report_out=tmp_path / "report.html", media_dir=tmp_path / "retrieval",
        settings={"queries_per_direction": 4, "top_k": 5}, has_media=False)
    labels = np.asarray(labels, dtype=object)
    for direction, queries in data.sections[0].queries.items():
        assert len(queries) == 4
        for query in queries:
            index = clip_ids.index(query.clip_id)
            row = scores[index] if direction == "a2v" else scores[:, index]
            order, ap = brute_force_ranking(row, labels, labels[index])
            assert [r.clip_id for r in query.results] == [clip_ids[c] for c in order[:5]]
            assert query.ap == pytest.approx(ap, abs=1e-12) and query.evaluation_ap == pytest.approx(ap, abs=1e-12)
    assert data.sections[0].similarity == "the method's own scores"


def test_stale_embeddings_are_refused_in_one_line(small_run, tmp_path):
    labels, embeddings, paths = small_run
    audio, visual, kind = embeddings["cca"]
    stale = tmp_path / "stale.embeddings.parquet"
    table = pa.table({"clip_id": [f"other{i}" for i in range(30)], "label": labels, "audio": vector_column(audio),
                      "visual": vector_column(visual)})
    write_table(table, stale, schemas.embeddings(4, 4), PROVENANCE, has_embeddings=True, similarity_kind=kind)
    with pytest.raises(ValueError, match=r"its clips are not the test clips of features.parquet") as raised:
        write_retrieval_page(dataset="small", features_path=paths["features"], manifest_path=None, methods=["cca"],
                             eval_paths=paths["eval"][:1], embeddings_paths=[stale], model_paths=None, seed=TIE_SEED,
                             page_out=tmp_path / "p.html", report_out=tmp_path / "r.html",
                             media_dir=tmp_path / "m", has_media=False)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "p.html").exists()


def test_a_features_only_page_shows_ids_and_labels_only(small_run, tmp_path):
    labels, _, paths = small_run
    write_retrieval_page(dataset="released", features_path=paths["features"], manifest_path=None,
                         methods=["cca", "ugach"], eval_paths=paths["eval"], embeddings_paths=paths["embeddings"],
                         model_paths=None, seed=TIE_SEED, page_out=tmp_path / "retrieval.html",
                         report_out=tmp_path / "report/retrieval.html", media_dir=tmp_path / "retrieval",
                         has_media=False)
    for page in (tmp_path / "retrieval.html", tmp_path / "report/retrieval.html"):
        parsed = parse_page(page)
        text = page.read_text()
        assert parsed.media == [] and "<img" not in text and "<audio" not in text and "MEDIA" not in text
        assert "feature file (no clips): the page shows clip ids and labels only" in text
        queries = parsed.sections["cca"]["a2v"]
        assert len(queries) == 20 and all(len(q["results"]) == 10 for q in queries)
        assert all(re.fullmatch(r"clip\d\d", r["data-clip"]) and r["data-label"] in labels
                   for q in queries for r in q["results"])
        assert all(f">{r['data-clip']}</span>" in text for r in queries[0]["results"])
    assert (tmp_path / "retrieval").is_dir() and list((tmp_path / "retrieval").iterdir()) == []


# --- media ---------------------------------------------------------------------------------------


def test_audio_is_opus_when_ffmpeg_has_libopus_else_wav():
    assert audio_encoding(" A....D libopus              libopus Opus (codec opus)\n") is OPUS
    assert audio_encoding(" A..X.. opus                 Opus\n A....D pcm_s16le  PCM\n") is WAV
    assert audio_encoding() in (OPUS, WAV)  # this machine's ffmpeg


def test_a_preview_is_a_thumbnail_and_an_audio_extract_from_the_middle_of_the_clip(synthetic_clip, tmp_path):
    path, duration = synthetic_clip
    settings = PageSettings(thumbnail_width=160, audio_seconds=2.0)
    outputs = cut_preview(path, duration, {"thumbnail", "audio"}, tmp_path / "clip", settings, OPUS)
    with Image.open(outputs["thumbnail"]) as image:
        assert image.format == "JPEG" and image.width == 160 and image.height > 50
        assert np.asarray(image.convert("L"), dtype=float).std() > 5  # a picture, not a blank frame
    audio = probe(outputs["audio"])
    assert not audio.has_video and audio.has_audio and audio.duration_s == pytest.approx(2.0, abs=0.1)
    streams = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
                              "-of", "json", str(outputs["audio"])], capture_output=True, text=True, check=True)
    (stream,) = json.loads(streams.stdout)["streams"]
    assert stream["codec_name"] == "opus" and stream["channels"] == 1
    wav = cut_preview(path, duration, {"audio"}, tmp_path / "short", PageSettings(audio_seconds=30.0), WAV)
    assert set(wav) == {"audio"} and probe(wav["audio"]).duration_s == pytest.approx(duration, abs=0.15)
    with pytest.raises(PreviewError, match="file not found"):
        cut_preview(tmp_path / "missing.mp4", 3.0, {"thumbnail"}, tmp_path / "x", settings, OPUS)
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-an", "-c", "copy", str(silent)], check=True)
    with pytest.raises(PreviewError, match="ffmpeg failed"):
        cut_preview(silent, duration, {"audio"}, tmp_path / "silent", settings, OPUS)


@pytest.fixture(scope="module")
def media_run(tmp_path_factory):
    """Six real clips of two classes, their manifest and the page's tables (one method)."""
    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips

    folder = tmp_path_factory.mktemp("media_run")
    spec = SyntheticSpec(n_classes=2, n_clips=6, min_duration_s=2.0, max_duration_s=3.0, width=96, height=72, seed=5)
    clips = write_clips(plan_clips(spec), spec, folder / "media")
    clips = clips.assign(duration_s=clips["duration_s"].astype(float))
    write_table(pa.Table.from_pandas(clips[["clip_id", "label", "path", "duration_s"]].assign(shard=0),
                                     preserve_index=False), folder / "manifest.parquet", schemas.MANIFEST, PROVENANCE)
    rng = np.random.default_rng(2)
    paths = write_run_tables(folder, clips["label"].tolist(),
                             {"cca": (rng.normal(size=(6, 3)), rng.normal(size=(6, 3)), "cosine")},
                             clips["clip_id"].tolist())
    return folder, clips, paths


def test_the_page_cuts_each_clip_once_and_the_report_copy_carries_the_same_media(media_run, tmp_path, monkeypatch):
    folder, clips, paths = media_run
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: calls.append(command) or real_run(command, **kw))
    (folder / "retrieval").mkdir(exist_ok=True)
    (folder / "retrieval" / "old.jpg").write_bytes(b"from a previous run")
    write_retrieval_page(dataset="small", features_path=paths["features"], manifest_path=folder / "manifest.parquet",
                         methods=["cca"], eval_paths=paths["eval"], embeddings_paths=paths["embeddings"],
                         model_paths=None, seed=TIE_SEED, page_out=folder / "retrieval.html",
                         report_out=folder / "report/retrieval.html", media_dir=folder / "retrieval",
                         settings={"top_k": 4}, has_media=True, threads=2)
    cuts = [command for command in calls if command[0] == "ffmpeg" and "-i" in command]
    assert sorted(command[command.index("-i") + 1] for command in cuts) == sorted(clips["path"])  # once each
    files = sorted(path.name for path in (folder / "retrieval").iterdir())
    assert "old.jpg" not in files and len(files) == 12  # every clip is a query here: thumbnail + audio
    page = parse_page(folder / "retrieval.html")
    assert sorted({src for _, src in page.media}) == sorted(f"retrieval/{name}" for name in files)
    report = parse_page(folder / "report/retrieval.html")
    assert sorted({name for _, name in report.media}) == files
    inline = json.loads(re.search(r"const MEDIA = (\{.*?\});", (folder / "report/retrieval.html").read_text()).group(1))
    for name in files:
        assert base64.b64decode(inline[name].split(",", 1)[1]) == (folder / "retrieval" / name).read_bytes()
    assert not list(folder.glob(".retrieval.*")), "no temporary folder left behind"


def test_a_clip_whose_file_is_gone_shows_why_and_the_page_is_still_written(media_run, tmp_path):
    folder, clips, paths = media_run
    manifest = read_table(folder / "manifest.parquet").to_pandas()
    manifest.loc[0, "path"] = str(tmp_path / "deleted.mp4")
    write_table(pa.Table.from_pandas(manifest, preserve_index=False), tmp_path / "manifest.parquet", schemas.MANIFEST,
                PROVENANCE)
    write_retrieval_page(dataset="small", features_path=paths["features"], manifest_path=tmp_path / "manifest.parquet",
                         methods=["cca"], eval_paths=paths["eval"], embeddings_paths=paths["embeddings"],
                         model_paths=None, seed=TIE_SEED, page_out=tmp_path / "retrieval.html",
                         report_out=tmp_path / "report.html", media_dir=tmp_path / "retrieval", has_media=True)
    text = (tmp_path / "retrieval.html").read_text()
    assert f"no thumbnail: file not found: {tmp_path / 'deleted.mp4'}" in text
    assert len(list((tmp_path / "retrieval").iterdir())) == 10  # the other five clips


# --- the page of the shared tiny run in headless Chromium (slow) ----------------------------------

# Appended to a copy of the page: tries every method of the picker, waits for the images and for the
# metadata of one audio element per file, and writes what it found into the DOM for --dump-dom.
MEDIA_CHECK = """
<script>
window.addEventListener("load", async () => {
  const picker = document.getElementById("method");
  const shown = [];
  for (const option of picker.options) {
    picker.value = option.value;
    picker.dispatchEvent(new Event("change"));
    shown.push([option.value, [...document.querySelectorAll("section.method")].filter(s => !s.hidden)
                                .map(s => s.dataset.method)]);
  }
  const images = [...document.images];
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done); })));
  const bySource = new Map();
  for (const audio of document.querySelectorAll("audio")) if (!bySource.has(audio.src)) bySource.set(audio.src, audio);
  await Promise.all([...bySource.values()].map(audio => new Promise(done => {
    audio.addEventListener("loadedmetadata", done, {once: true});
    audio.addEventListener("error", done, {once: true});
    audio.preload = "metadata";
    audio.load();
  })));
  const out = document.createElement("pre");
  out.id = "media-check";
  out.textContent = JSON.stringify({
    shown,
    images: images.map(img => [img.complete && img.naturalWidth > 0, img.naturalWidth]),
    audio: [...bySource.values()].map(audio => [audio.readyState, audio.duration]),
    audioElements: document.querySelectorAll("audio").length,
    audioWithoutSource: [...document.querySelectorAll("audio")].filter(audio => !audio.src).length,
  });
  document.body.append(out);
});
</script>
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from report_run import tiny_report_run

    return tiny_report_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def loopback_server(tmp_path_factory):
    """A plain http.server on 127.0.0.1 serving a folder (what a user would do to share results)."""
    root = tmp_path_factory.mktemp("served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def media_check(executable: str, url: str, profile: Path) -> dict:
    from report_run import chromium

    result = chromium(executable, profile, "--autoplay-policy=no-user-gesture-required",
                      "--virtual-time-budget=20000", "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="media-check">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, "the check script did not finish: " + result.stdout[-1500:]
    return json.loads(html.unescape(found.group(1)))


def check_media_loaded(report: dict, methods: list[str]) -> None:
    assert report["shown"] == [[method, [method]] for method in methods]  # the picker shows one section
    assert report["images"] and all(loaded and width == 160 for loaded, width in report["images"]), report["images"][:5]
    assert report["audio"] and report["audioWithoutSource"] == 0
    for ready_state, duration in report["audio"]:
        assert ready_state >= 1 and 1.5 <= duration <= 3.1, report["audio"]


@pytest.mark.slow
def test_chromium_shows_the_tiny_runs_page_with_its_media(tiny_run, loopback_server, tmp_path):
    from report_run import DATASET, ensure_chromium

    workdir, _ = tiny_run
    results = workdir / "results" / DATASET
    executable = ensure_chromium()
    methods = ["random", "cca", "ours", "explicit"]
    test_clips = read_table(results / "features.parquet", ["clip_id", "label", "split"]).to_pandas()
    test_clips = test_clips[test_clips["split"] == "test"].set_index("clip_id")["label"]
    n_test = len(test_clips)

    page = parse_page(results / "retrieval.html")
    assert page.options == methods and [m for m, hidden in page.hidden.items() if not hidden] == ["ours"]
    for method in methods:
        stored = read_table(results / "eval" / f"{method}_seed0.parquet").to_pandas()
        stored = stored.set_index(["direction", "query_clip_id"])["ap"]
        for direction in ("a2v", "v2a"):
            queries = page.sections[method][direction]
            assert len(queries) == min(20, n_test)
            assert sorted(q["data-clip"] for q in queries) == sorted(test_clips.index)
            for query in queries:
                assert test_clips[query["data-clip"]] == query["data-label"]
                assert float(query["data-ap"]) == pytest.approx(stored[(direction, query["data-clip"])], abs=1e-9)
                results_shown = query["results"]
                assert len(results_shown) == min(10, n_test)
                assert len({r["data-clip"] for r in results_shown}) == len(results_shown)
                for result in results_shown:
                    relevant = test_clips[result["data-clip"]] == query["data-label"]
                    assert result["data-label"] == test_clips[result["data-clip"]]
                    assert result["data-relevant"] == str(relevant).lower()
                    assert ("relevant" if relevant else "irrelevant") in result["classes"]
                scores = [float(r["data-score"]) for r in results_shown]
                assert scores == sorted(scores, reverse=True)
    text = (results / "retrieval.html").read_text()
    assert "AP " in text and "models trained with seed 0, the first configured seed" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "no external resource"

    root, base_url = loopback_server
    served = root / DATASET
    shutil.copytree(results / "retrieval", served / "retrieval")
    (served / "retrieval.html").write_text(text.replace("</body>", MEDIA_CHECK + "</body>"), encoding="utf-8")
    check_media_loaded(media_check(executable, f"{base_url}/{DATASET}/retrieval.html", tmp_path / "p1"), methods)

    # The report's copy: every media file inline, opened from disk as the report's iframe would.
    inline = (results / "report" / "retrieval.html").read_text()
    assert "retrieval/clip" not in inline
    (tmp_path / "inline.html").write_text(inline.replace("</body>", MEDIA_CHECK + "</body>"), encoding="utf-8")
    check_media_loaded(media_check(executable, (tmp_path / "inline.html").as_uri(), tmp_path / "p2"), methods)

    # The user's folder dataset has a page too, with its clips' media.
    mine = workdir / "results" / "mine"
    assert (mine / "retrieval.html").is_file() and any((mine / "retrieval").glob("*.jpg"))
