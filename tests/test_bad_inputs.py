"""A corpus of bad media through the real stages: each bad case gives its failures row, good clips go on.

decode → logmel → VGGish → InceptionV3 (random weights) on one shard, as the workflow runs them, then
the failures table and the acquisition summary; and the same corpus as a user's folder (index stage).
"""

import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from avcmr.data.listing import LISTING_SCHEMA
from avcmr.io import schemas
from avcmr.io.parquet import read_metadata, read_table, vector_column, write_table
from avcmr.stages.acquire import index_folder_shard
from avcmr.stages.extract import decode_shard, inception_shard, logmel_shard, vggish_shard
from avcmr.stages.report import acquisition_summary, concat_failures

RANDOM = {"vggish": "random", "inception": "random", "seed": 0}
SOURCES = "-f lavfi -i testsrc=size=160x120:rate=10 -f lavfi -i sine=frequency=440:sample_rate=16000"
VIDEO = "-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 10"


def ffmpeg(arguments: str, cwd) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments.split()], cwd=cwd, check=True)


# clip → (stage, the start of its reason); good clips have no entry.
EXPECTED = {
    "corrupt": ("decode", "unreadable media"),
    "empty": ("decode", "empty file"),
    "truncated_index": ("decode", "unreadable media"),
    "truncated_data": ("decode", "truncated file: audio decodes to"),
    "no_audio": ("decode", "no audio stream"),
    "no_video": ("decode", "no video stream"),
    "cover_art_only": ("decode", "no video stream"),
    "no_streams": ("decode", "no video stream"),
    "zero_frames": ("decode", "zero video frames decoded"),
    "too_short": ("logmel", "audio shorter than one VGGish patch"),
    "nan_audio": ("logmel", "non-finite log-mel values"),
}
GOOD = ["good_a", "good_b"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The bad-input corpus: real files made with ffmpeg, one per way a clip can be unusable."""
    root = tmp_path_factory.mktemp("corpus")
    ffmpeg(f"{SOURCES} -t 3 {VIDEO} -c:a aac -movflags +faststart good_a.mp4", root)
    ffmpeg(f"-f lavfi -i mandelbrot=size=160x120:rate=10 -f lavfi -i sine=frequency=880:sample_rate=16000 -t 2.5 "
           f"{VIDEO} -c:a aac good_b.mp4", root)
    rng = np.random.default_rng(0)
    (root / "corrupt.mp4").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (root / "empty.mp4").write_bytes(b"")
    # Index (moov) at the end, file cut in half: the container cannot be read.
    ffmpeg(f"{SOURCES} -t 3 {VIDEO} -c:a aac tail.mp4", root)
    (root / "truncated_index.mp4").write_bytes((root / "tail.mp4").read_bytes()[:15000])
    # Index first, media data cut: the container announces 3 s, the streams hold a fraction.
    data = (root / "good_a.mp4").read_bytes()
    (root / "truncated_data.mp4").write_bytes(data[: len(data) // 3])
    ffmpeg("-i good_a.mp4 -an -c copy no_audio.mp4", root)
    ffmpeg("-i good_a.mp4 -vn -c copy no_video.m4a", root)
    ffmpeg("-f lavfi -i color=c=red:size=64x64 -frames:v 1 cover.png", root)
    ffmpeg("-i no_video.m4a -i cover.png -map 0 -map 1 -c copy -disposition:v:0 attached_pic cover_art_only.m4a",
           root)
    ffmpeg("-i good_a.mp4 -map 0 -c copy -frames:v 0 -frames:a 0 -t 0 no_streams.mp4", root)
    # A video track holding one 0.1-s frame beside 3 s of audio: nothing at 1 frame per second.
    ffmpeg(f"{SOURCES} -t 3 -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 250 -c:a aac one_key.mp4", root)
    ffmpeg("-i one_key.mp4 -c copy -bsf:v noise=drop=not(key) zero_frames.mp4", root)
    ffmpeg(f"{SOURCES} -t 0.5 {VIDEO} -c:a aac too_short.mp4", root)
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 16000)).astype(np.float32)
    samples[1000:1100], samples[5000] = np.nan, np.inf
    samples.tofile(root / "nan.f32")
    ffmpeg(f"-f lavfi -i testsrc=size=160x120:rate=10 -f f32le -ar 16000 -ac 1 -i nan.f32 -t 3 {VIDEO} "
           "-c:a pcm_f32le nan_audio.mov", root)
    files = {path.stem: path for path in root.iterdir()
             if path.stem in set(EXPECTED) | set(GOOD) and path.suffix in (".mp4", ".m4a", ".mov")}
    assert sorted(files) == sorted(set(EXPECTED) | set(GOOD))
    return root, files


def add_nan_patches(logmel_path, clip_id: str) -> None:
    """A clip whose log-mel patches are NaN: no decoded file yields one (logmel refuses non-finite
    values), so it is put into the table to show what VGGish does with non-finite input."""
    patches = read_table(logmel_path)
    flat = np.stack(patches["logmel"].to_numpy(zero_copy_only=False)).astype(np.float32)
    broken = np.full((2, flat.shape[1]), np.nan, dtype=np.float32)
    table = pa.table({"clip_id": patches["clip_id"].to_pylist() + [clip_id] * 2,
                      "second": patches["second"].to_pylist() + [0, 1],
                      "logmel": vector_column(np.concatenate([flat, broken]))})
    write_table(table, logmel_path, schemas.logmel(96, 64))


@pytest.fixture(scope="module")
def pipeline(corpus, tmp_path_factory):
    """The stages of one shard on the corpus, as the workflow chains them."""
    _, files = corpus
    out = tmp_path_factory.mktemp("results")
    names = sorted(files)
    clips = pd.DataFrame({"clip_id": names, "label": ["good" if n in GOOD else "bad" for n in names],
                          "path": [str(files[n]) for n in names], "duration_s": np.nan})
    write_table(pa.Table.from_pandas(clips, preserve_index=False), out / "clips.parquet", schemas.CLIPS)
    provenance = {"dataset": "corpus"}
    decode_shard(out / "clips.parquet", out / "frames.parquet", out / "audio.parquet", out / "f_decode.parquet",
                 fps=1, frame_size=299, sample_rate=16000, provenance=provenance)
    logmel_shard(out / "audio.parquet", out / "logmel.parquet", out / "f_logmel.parquet", provenance)
    add_nan_patches(out / "logmel.parquet", "nan_features")
    vggish_shard(out / "logmel.parquet", out / "vggish.parquet", out / "f_vggish.parquet", RANDOM, batch_size=64,
                 postprocess=False, threads=2, provenance=provenance)
    inception_shard(out / "frames.parquet", out / "inception.parquet", out / "f_inception.parquet", RANDOM,
                    batch_size=8, threads=2, provenance=provenance)
    stages = ["decode", "logmel", "vggish", "inception"]
    concat_failures([out / f"f_{stage}.parquet" for stage in stages], out / "failures.parquet", provenance)
    listing = clips[["clip_id", "label"]].assign(youtube_id=None, start_s=np.nan, end_s=np.nan, shard=0)
    write_table(pa.Table.from_pandas(listing, preserve_index=False), out / "listing.parquet", LISTING_SCHEMA,
                listing_counts={"lines": len(listing)})
    summary = acquisition_summary(out / "listing.parquet", [out / "clips.parquet"], [out / "audio.parquet"],
                                  [out / "vggish.parquet"], [out / "inception.parquet"], out / "acquisition.tsv")
    return out, summary


def test_every_bad_case_has_its_failure_row(pipeline):
    out, _ = pipeline
    failures = read_table(out / "failures.parquet").to_pandas()
    assert failures["clip_id"].is_unique
    rows = failures.set_index("clip_id")
    assert sorted(rows.index) == sorted([*EXPECTED, "nan_features"])
    # A clip with non-finite VGGish input is dropped alone (whatever the forward pass made of its
    # NaN: fused kernels may return zeros); the shard's other clips keep theirs.
    assert rows.loc["nan_features"].tolist() == ["vggish", "non-finite input"]
    for clip_id, (stage, reason) in EXPECTED.items():
        assert rows.loc[clip_id, "stage"] == stage, (clip_id, rows.loc[clip_id].to_dict())
        assert rows.loc[clip_id, "reason"].startswith(reason), (clip_id, rows.loc[clip_id, "reason"])


def test_the_good_clips_still_get_both_features(pipeline):
    out, _ = pipeline
    vggish = read_table(out / "vggish.parquet").to_pandas()
    inception = read_table(out / "inception.parquet").to_pandas()
    assert sorted(vggish["clip_id"].unique()) == GOOD
    # Stages are independent: clips whose audio failed still have frames; the split keeps only
    # clips with both features (the 'usable' column of acquisition.tsv).
    assert sorted(inception["clip_id"].unique()) == sorted(GOOD + ["nan_audio", "too_short"])
    assert vggish.groupby("clip_id").size().to_dict() == {"good_a": 3, "good_b": 2}  # 0.96-s patches
    assert inception.groupby("clip_id").size().loc[GOOD].to_dict() == {"good_a": 3, "good_b": 3}  # 1 fps
    assert np.isfinite(np.stack(vggish["audio_128"])).all()
    assert np.isfinite(np.stack(inception["visual_2048"])).all()
    assert read_metadata(out / "vggish.parquet")["weights_sha256"] == {}  # random weights: no files
    # The arithmetic the features were made with (features.inference_precision; default float32).
    assert read_metadata(out / "vggish.parquet")["inference_precision"] == "float32"
    assert read_metadata(out / "inception.parquet")["inference_precision"] == "float32"


def test_acquisition_summary_counts_every_stage(pipeline):
    out, summary = pipeline
    rows = summary.set_index("label")
    n_bad = len(EXPECTED)
    n_decoded_bad = sum(stage != "decode" for stage, _ in EXPECTED.values())
    assert rows.loc["good"].tolist() == [2, 2, 2, 2]
    assert rows.loc["bad"].tolist() == [n_bad, n_bad, n_decoded_bad, 0]
    assert rows.loc["TOTAL"].tolist() == [n_bad + 2, n_bad + 2, n_decoded_bad + 2, 2]
    text = (out / "acquisition.tsv").read_text().splitlines()
    assert text[0] == '# listing: {"lines": 13}'
    assert text[1].split("\t") == ["label", "listed", "downloaded", "decoded", "usable"]


def test_a_shard_with_only_bad_clips_still_completes(corpus, tmp_path):
    _, files = corpus
    clips = pd.DataFrame({"clip_id": ["corrupt", "no_audio"], "label": "bad",
                          "path": [str(files["corrupt"]), str(files["no_audio"])], "duration_s": np.nan})
    write_table(pa.Table.from_pandas(clips, preserve_index=False), tmp_path / "clips.parquet", schemas.CLIPS)
    decode_shard(tmp_path / "clips.parquet", tmp_path / "frames.parquet", tmp_path / "audio.parquet",
                 tmp_path / "failures.parquet", 1, 299, 16000, {})
    logmel_shard(tmp_path / "audio.parquet", tmp_path / "logmel.parquet", tmp_path / "f2.parquet", {})
    assert read_table(tmp_path / "frames.parquet").num_rows == 0
    assert read_table(tmp_path / "logmel.parquet").num_rows == 0
    assert read_table(tmp_path / "failures.parquet").num_rows == 2


def test_a_users_folder_gets_the_same_handling(corpus, tmp_path):
    """Folder datasets: unreadable files fail at the index stage (probe), the rest as above."""
    from avcmr.data.folder import list_folder

    _, files = corpus
    for name, path in files.items():
        label = tmp_path / "folder" / ("good" if name in GOOD else "bad")
        label.mkdir(parents=True, exist_ok=True)
        (label / path.name).symlink_to(path)
    listing = list_folder(tmp_path / "folder", ["mp4", "m4a", "mov"])
    index_folder_shard(listing, tmp_path / "clips.parquet", tmp_path / "failures.parquet", {})
    failures = read_table(tmp_path / "failures.parquet").to_pandas().set_index("clip_id")["reason"]
    assert sorted(failures.index) == ["bad__corrupt", "bad__empty", "bad__truncated_index"]
    assert failures["bad__empty"] == "empty file"
    assert failures["bad__corrupt"].startswith("unreadable media")
    indexed = read_table(tmp_path / "clips.parquet").to_pandas()
    # The rest goes on to decode_shard, as above.
    assert sorted(indexed["clip_id"]) == sorted(f"{'good' if n in GOOD else 'bad'}__{n}" for n in files
                                                if n not in ("corrupt", "empty", "truncated_index"))
    assert indexed.set_index("clip_id").loc["good__good_a", "duration_s"] == pytest.approx(3.0, abs=0.1)
