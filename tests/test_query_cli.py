"""`avcmr query` and `avcmr methods`: retrieval on a clip of the synthetic set, and bad input.

Bad input (not a media file, no audio track, too short, a missing or incompatible model) must give
one line on stderr and exit code 2; those checks run before any backbone is loaded, so they are
fast. The retrieval test queries a clip of the tiny end-to-end run (slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pytest
from report_run import DATASET, tiny_report_run

from avcmr.cli import main
from avcmr.io import schemas
from avcmr.io.parquet import read_table, vector_column, vectors_from_column, write_table
from avcmr.methods import make_method
from avcmr.models_io import save_model

CONSOLE_SCRIPT = shutil.which("avcmr", path=str(Path(sys.executable).parent))


def ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments], check=True, timeout=120)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """results/<dataset>/{features.parquet, models/cca_seed0.joblib} from random features."""
    folder = tmp_path_factory.mktemp("results") / "unit"
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 10)
    audio, visual = rng.normal(size=(30, 128)), rng.normal(size=(30, 4))
    split = np.where(np.arange(30) % 5 == 0, "test", "train")
    features = pa.table({"clip_id": [f"clip{i:02d}" for i in range(30)], "label": labels, "split": split,
                         "audio": vector_column(audio), "visual": vector_column(visual)})
    write_table(features, folder / "features.parquet", schemas.features(128, 4))
    pca = pa.table({"row": ["mean"] + [f"component_{i}" for i in range(4)],
                    "explained_variance": [np.nan, 4.0, 3.0, 2.0, 1.0],
                    "vector": vector_column(rng.normal(size=(5, 2048)), pa.float64())})
    write_table(pca, folder / "visual_pca.parquet", schemas.pca_model(2048))
    method = make_method("cca", {"n_components": 2}, random_state=0).fit(audio, visual, labels)
    save_model(folder / "models" / "cca_seed0.joblib", method, method_name="cca", seed=0, dataset="unit",
               class_names=["a", "b", "c"], pca_path=folder / "visual_pca.parquet",
               feature_settings={"fps": 1, "frame_size": 299, "sample_rate": 16000},
               backbone_weights={"vggish": "random", "inception": "random", "seed": 0})
    return folder


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Bad query files: text, a video without audio, 0.5 s of sound, a folder."""
    folder = tmp_path_factory.mktemp("media")
    (folder / "notes.mp4").write_text("not a video at all\n" * 20)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x72:rate=5", "-t", "2", "-an", "-c:v", "libx264",
           str(folder / "silent.mp4"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-ar", "16000", str(folder / "short.wav"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-ar", "16000", str(folder / "tone.wav"))
    (folder / "a_folder").mkdir()
    return folder


def run_cli(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("name", "extra", "reason"),
    [
        ("notes.mp4", [], "not a readable audio or video file"),
        ("silent.mp4", [], "no audio track"),
        ("short.wav", [], "too short: 0.50 s of audio, at least 0.96 s"),
        ("missing.mp4", [], "file not found"),
        ("a_folder", [], "is a folder, not a media file"),
        ("tone.wav", ["--by", "visual"], "no video stream"),
    ],
)
def test_bad_media_gives_one_line_and_exit_code_2(capsys, model_folder, media, name, extra, reason):
    code, out, err = run_cli(capsys, "query", str(media / name), "--results", str(model_folder), *extra)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("avcmr query: error: ") and reason in err


def test_bad_model_or_arguments_give_exit_code_2(capsys, model_folder, media, tmp_path):
    tone = str(media / "tone.wav")
    code, _, err = run_cli(capsys, "query", tone, "--results", str(tmp_path))
    assert code == 2 and "no trained model under" in err
    code, _, err = run_cli(capsys, "query", tone, "--results", str(model_folder), "--method", "ours")
    assert code == 2 and "no trained model of method 'ours'" in err and "trained: cca" in err
    code, _, err = run_cli(capsys, "query", tone, "--model", str(tmp_path / "none.joblib"))
    assert code == 2 and "model file not found" in err
    old = tmp_path / "old.joblib"
    payload = joblib.load(model_folder / "models" / "cca_seed0.joblib")
    payload["header"]["format_version"] = 0
    joblib.dump(payload, old)
    code, _, err = run_cli(capsys, "query", tone, "--model", str(old))
    assert code == 2 and "model format 0" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "query", tone, "--results", str(model_folder), "-k", "0")
    assert code == 2 and "k must be at least 1" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage errors exit 2 as well
        main(["query", tone, "--candidates", "train"])
    assert exit_info.value.code == 2


@pytest.mark.skipif(CONSOLE_SCRIPT is None, reason="the avcmr console script is not installed (pip install -e .)")
def test_console_script_exit_codes(model_folder, media):
    result = subprocess.run([CONSOLE_SCRIPT, "query", str(media / "silent.mp4"), "--results", str(model_folder)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no audio track" in result.stderr
    listing = subprocess.run([CONSOLE_SCRIPT, "methods"], capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert {"ours", "cca", "random", "dscmr"} <= set(names)
    ours = next(line for line in listing.stdout.splitlines() if line.startswith("ours "))
    assert "Table 2, Table 4" in ours


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_report_run(tmp_path_factory.getbasetemp())[0]


def clip_paths(workdir: Path) -> dict[str, Path]:
    manifest = read_table(workdir / f"results/{DATASET}/manifest.parquet").to_pandas()
    return {row.clip_id: workdir / row.path for row in manifest.itertuples()}


@pytest.mark.slow
def test_query_on_a_synthetic_clip_returns_its_class(tiny_run, capsys, monkeypatch):
    monkeypatch.chdir(tiny_run)
    features = read_table(tiny_run / f"results/{DATASET}/features.parquet").to_pandas()
    # A training clip is not among the (test) candidates: a clip the ranking has never seen.
    query = features[features["split"] == "train"].iloc[0]
    code, out, err = run_cli(capsys, "query", str(clip_paths(tiny_run)[query["clip_id"]]),
                             "--results", f"results/{DATASET}", "--method", "cca", "-k", "3", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["method"] == "cca" and answer["query_modality"] == "audio" and answer["random_weights"] is True
    assert answer["n_candidates"] == int((features["split"] == "test").sum())
    labels = [row["label"] for row in answer["results"]]
    assert [row["rank"] for row in answer["results"]] == [1, 2, 3]
    assert labels[0] == query["label"] and labels.count(query["label"]) >= 2
    scores = [row["score"] for row in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    test_ids = set(features.loc[features["split"] == "test", "clip_id"])
    assert {row["clip_id"] for row in answer["results"]} <= test_ids


@pytest.mark.slow
def test_query_features_equal_the_workflow_features(tiny_run, monkeypatch):
    """The query path (decode → VGGish → mean) reproduces the workflow's pooled feature of a clip."""
    from avcmr.models_io import load_model
    from avcmr.query import decode_query, query_features

    monkeypatch.chdir(tiny_run)
    table = read_table(tiny_run / f"results/{DATASET}/features.parquet")
    clip_id = table["clip_id"][0].as_py()
    model = load_model(tiny_run / f"results/{DATASET}/models/cca_seed0.joblib")
    decoded = decode_query(clip_paths(tiny_run)[clip_id], "audio", model.header["features"])
    vector = query_features(decoded, model, [tiny_run])[0]
    np.testing.assert_allclose(vector, vectors_from_column(table["audio"])[0], atol=1e-4)
    # The table output of the CLI: a header row and k rows.
    result = subprocess.run([sys.executable, "-m", "avcmr.cli", "query", str(clip_paths(tiny_run)[clip_id]),
                             "--results", f"results/{DATASET}", "-k", "4"], capture_output=True, text=True,
                            timeout=600, cwd=tiny_run)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["rank", "clip_id", "label", "score"] and len(lines) == 5
    assert "WARNING" in result.stderr and "RANDOM backbone weights" in result.stderr


# --- the default results folder and a quiet console -------------------------------------------------


def test_results_default_to_the_only_folder_with_models(capsys, model_folder, media, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    silent = str(media / "silent.mp4")
    code, _, err = run_cli(capsys, "query", silent)
    assert code == 2 and err.count("\n") == 1 and "no trained model under" in err and "--results" in err
    (tmp_path / "results/empty/models").mkdir(parents=True)  # a dataset folder without models does not count
    shutil.copytree(model_folder, tmp_path / "results/unit")
    # It says which folder it picked, then the query goes on with it (here to the media check).
    code, _, err = run_cli(capsys, "query", silent)
    assert code == 2
    assert err.splitlines() == [
        "# results: results/unit (the only results folder here with trained models; choose another with --results)",
        f"avcmr query: error: {silent}: no audio track (an audio query needs one; use --by visual to query with "
        "the pictures)"]
    shutil.copytree(model_folder, tmp_path / "results/other")
    code, out, err = run_cli(capsys, "query", silent)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "several results folders have trained models (results/other, results/unit): choose one with --results" in err
    code, _, err = run_cli(capsys, "query", silent, "--results", "results/other")  # an explicit choice still works
    assert code == 2 and "# results:" not in err and "no audio track" in err


@pytest.mark.slow
def test_query_prints_no_backend_noise_unless_verbose(model_folder, media, tmp_path):
    """A real audio query (VGGish on TensorFlow): stderr holds only our own '# ' lines; --verbose adds
    the steps' timings and lets TensorFlow speak."""
    shutil.copytree(model_folder, tmp_path / "results/unit")
    command = [sys.executable, "-m", "avcmr.cli", "query", str(media / "tone.wav"), "-k", "2"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr.splitlines()[0].startswith("# results: results/unit")
    assert all(line.startswith("# ") for line in quiet.stderr.splitlines()), quiet.stderr
    assert quiet.stdout.splitlines()[0].split() == ["rank", "clip_id", "label", "score"]
    verbose = subprocess.run(command + ["--verbose"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                             env=env)
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    steps = [line for line in verbose.stderr.splitlines() if " avcmr.query: " in line]
    assert [re.search(r"avcmr\.query: (model|\S+ decoded|audio features computed) ", line).group(1)
            for line in steps] == ["model", f"{media / 'tone.wav'} decoded", "audio features computed"]
    assert verbose.stdout == quiet.stdout


def test_absl_early_info_lines_are_dropped_and_every_other_line_passes():
    # What TensorFlow writes to file descriptor 2 on a CPU where oneDNN is on, whatever
    # TF_CPP_MIN_LOG_LEVEL says; an error line and our own lines must still come through, in order.
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796103640.317601   29017 port.cc:153] oneDNN custom operations are on.",
        "# query: a line of ours",
        "W0000 00:00:1796103642.783923   29017 cpu_feature_guard.cc:227] a warning",
        "E0000 00:00:1796103642.783923   29017 some_op.cc:12] an error",
        "a traceback line",
    ]
    code = ("import os, sys\nfrom avcmr.cli import absl_early_lines_dropped\n"
            "with absl_early_lines_dropped():\n"
            f"    for line in {lines!r}:\n"
            "        os.write(2, (line + '\\n').encode())\n"
            "print('# after', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [lines[2], lines[4], lines[5], "# after"]


def test_a_query_is_embedded_with_the_precision_of_the_models_features(tmp_path):
    """A model whose features were extracted in bfloat16 says so in its header, and the query's clip
    goes through the same arithmetic (float32 features differ by ≈ 1 %, more than the tables' rounding)."""
    from avcmr.features.vggish import VGGishExtractor
    from avcmr.features.weights import parse_weights
    from avcmr.models_io import SavedModel
    from avcmr.query import DecodedQuery, query_features

    weights = {"vggish": "random", "inception": "random", "seed": 0}
    patches = np.random.default_rng(0).normal(size=(3, 96, 64)).astype(np.float32)
    decoded = DecodedQuery(tmp_path / "tone.wav", "audio", 3.0, patches)
    embedded = {}
    for precision in ("float32", "bfloat16"):
        header = {"features": {"inference_precision": precision}, "backbone_weights": weights}
        embedded[precision] = query_features(decoded, SavedModel(method=None, pca=None, header=header), [tmp_path])[0]
        expected = VGGishExtractor(parse_weights(weights, "vggish"), precision=precision).embed(patches).mean(axis=0)
        np.testing.assert_array_equal(embedded[precision], expected.astype(np.float32))
    assert not np.array_equal(embedded["float32"], embedded["bfloat16"])
