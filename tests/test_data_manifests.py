"""Manifests of the YouTube datasets: AVE's Annotations.txt, VEGAS tables, duplicates, and the DAG."""

import functools
import hashlib
import http.server
import re
import subprocess
import sys
import threading
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, require_shared
from snakemake.utils import validate

from avcmr.config import deep_merge
from avcmr.data.audioset import AUDIOSET_SEGMENT_URLS, read_audioset_segments
from avcmr.data.listing import FULL_LISTING_SCHEMA, LISTING_COLUMNS, ManifestError
from avcmr.data.manifests import (
    AVE_PAPER_CLASSES,
    ave_listing,
    check_sha256,
    dataset_listing,
    fetch_source,
    limit_clips,
    read_ave_annotations,
    segment_sources,
    vegas_listing,
    vggsound_listing,
)
from avcmr.data.split import listed_split
from avcmr.io.checksums import file_digest
from avcmr.io.parquet import read_metadata, read_table, write_table

AVE_SHA256 = "0d24a9ec5cd4ceb779ebd83d74e83ec8e55c5e468cede3f320fb57346c9dd321"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


@pytest.fixture(scope="module")
def annotations():
    return require_shared("data/ave/Annotations.txt")


def test_ave_file_is_the_documented_one(annotations):
    check_sha256(annotations, AVE_SHA256)
    lines = read_ave_annotations(annotations)
    assert len(lines) == 4143 and lines["label"].nunique() == 28
    assert set(AVE_PAPER_CLASSES) <= set(lines["label"])


def test_ave_paper_classes_have_2015_rows_and_the_duplicate_policies_their_counts(annotations):
    listings = {policy: ave_listing(annotations, duplicates=policy) for policy in ("drop", "first", "drop_any")}
    for listing in listings.values():
        assert listing.counts["lines"] == 4143
        assert listing.counts["in_classes"] == 2015
        # Two YouTube ids appear twice among the 15 classes (each under two labels).
        assert listing.counts["repeated_keys"] == 2 and listing.counts["rows_with_repeated_key"] == 4
        assert sorted(listing.clips["label"].unique()) == sorted(AVE_PAPER_CLASSES)
        assert listing.clips["clip_id"].is_unique and listing.clips["youtube_id"].is_unique
        assert list(listing.clips.columns) == [*LISTING_COLUMNS, "skip_reason"]
        assert listing.clips["skip_reason"].isna().all()  # no offsets given: the clips are the 10-s files
    assert len(listings["drop"].clips) == 2011
    assert len(listings["first"].clips) == 2013
    # DATA.md: 45 ids appear more than once in the whole file; 12 rows of the 15 classes carry one.
    assert listings["drop_any"].counts["keys_repeated_in_whole_file"] == 45
    assert len(listings["drop_any"].clips) == 2003
    clips = listings["drop"].clips
    assert (clips["start_s"] == 0).all() and (clips["end_s"] == 10).all()
    assert clips.loc[clips["youtube_id"] == "RUhOCu3LNXM"].empty  # Church bell: not a paper class
    per_class = clips["label"].value_counts()
    assert per_class["Bark"] == 171 and per_class["Cat"] == 60


def write_segments(path, rows):
    """An AudioSet segment CSV as published: 3 comment lines, then YTID, start, end, "labels"."""
    path.write_text("# Segments csv created Sun Mar  5 10:54:25 2017\n"
                    f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels=527\n"
                    "# YTID, start_seconds, end_seconds, positive_labels\n"
                    + "".join(f'{y}, {s:.3f}, {e:.3f}, "{labels}"\n' for y, s, e, labels in rows))
    return path


def test_ave_event_window_and_audioset_offsets(annotations, tmp_path):
    events = ave_listing(annotations, classes=None, duplicates="first", window="event")
    assert events.counts["dropped_empty_event"] == 1  # "Church bell&VWi2ENBuTbw&good&0&0"
    assert (events.clips["end_s"] > events.clips["start_s"]).all()
    segments = write_segments(tmp_path / "balanced_train_segments.csv", [
        ("3jS8tWfLJxI", 30.0, 40.0, "/m/05tny_,/m/0bt9lr"), ("-J2WJaG1Dd4", 7.0, 17.0, "/m/03w41f")])
    offsets = read_audioset_segments([segments])
    assert offsets == {"3jS8tWfLJxI": 30.0, "-J2WJaG1Dd4": 7.0}
    listing = ave_listing(annotations, offsets=offsets)
    row = listing.clips.set_index("youtube_id").loc["3jS8tWfLJxI"]
    assert (row["start_s"], row["end_s"], row["clip_id"]) == (30.0, 40.0, "3jS8tWfLJxI_30000_40000")
    assert pd.isna(row["skip_reason"])
    assert listing.counts["with_segment_offset"] == 1  # -J2WJaG1Dd4 is a Church bell clip
    # Every other clip is listed without a window, with the reason: it is never fetched from 0 s.
    unplaced = listing.clips[listing.clips["skip_reason"].notna()]
    assert len(unplaced) == 2010 == listing.counts["without_segment"]
    assert unplaced["start_s"].isna().all() and unplaced["end_s"].isna().all()
    assert (unplaced["clip_id"] == unplaced["youtube_id"]).all()
    assert unplaced["skip_reason"].str.startswith("no AudioSet segment for id ").all()


def test_ave_windows_come_from_the_segment_csvs_and_unlisted_ids_are_not_placed(tmp_path):
    annotations = tmp_path / "Annotations.txt"
    annotations.write_text("Bark&dogA&good&2&6\nCat&catB&good&0&10\nBark&dogC&good&1&3\nCat&catD&good&4&9\n")
    balanced = write_segments(tmp_path / "balanced_train_segments.csv", [
        ("dogA", 30.0, 40.0, "/m/0bt9lr"), ("other", 5.0, 15.0, "/m/04rlf")])
    unbalanced = write_segments(tmp_path / "unbalanced_train_segments.csv", [
        ("catB", 0.0, 10.0, "/m/01yrx"), ("dogC", 125.5, 135.5, "/m/05tny_"), ("dogA", 90.0, 100.0, "/m/0bt9lr")])
    spec = {"kind": "ave", "classes": ["Bark", "Cat"]}
    listing = dataset_listing(spec, annotations, [balanced, unbalanced]).clips.set_index("youtube_id")
    windows = listing[["start_s", "end_s"]].to_dict("index")
    # The whole 10-s clip from each id's segment start; an id in two lists keeps the first one's.
    assert windows["dogA"] == {"start_s": 30.0, "end_s": 40.0}
    assert windows["catB"] == {"start_s": 0.0, "end_s": 10.0}
    assert windows["dogC"] == {"start_s": 125.5, "end_s": 135.5}
    assert listing.loc["dogC", "clip_id"] == "dogC_125500_135500"
    assert listing["skip_reason"].notna().tolist() == [False, False, False, True]
    assert listing.loc["catD", "skip_reason"].startswith("no AudioSet segment for id catD")
    assert pd.isna(listing.loc["catD", "start_s"])
    events = dataset_listing({**spec, "window": "event"}, annotations, [balanced, unbalanced]).clips
    assert events.set_index("youtube_id").loc["dogA", ["start_s", "end_s"]].tolist() == [32.0, 36.0]


def test_segment_lists_default_to_the_official_files_and_cannot_be_emptied():
    assert segment_sources({"kind": "ave"}) == list(AUDIOSET_SEGMENT_URLS)
    assert segment_sources({"kind": "audioset", "segments": ["a.csv"]}) == ["a.csv"]
    assert segment_sources({"kind": "vegas"}) == [] and segment_sources({"kind": "vggsound"}) == []
    assert [url.rsplit("/", 1)[1] for url in AUDIOSET_SEGMENT_URLS] == [
        "balanced_train_segments.csv", "unbalanced_train_segments.csv", "eval_segments.csv"]
    assert all(url.startswith("http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/")
               for url in AUDIOSET_SEGMENT_URLS)
    with pytest.raises(ManifestError, match="segments: is empty"):
        segment_sources({"kind": "ave", "segments": []})


def test_a_clip_without_a_window_becomes_a_failure_row_and_is_never_requested(tmp_path):
    from avcmr.stages.acquire import download_shard

    frame = pd.DataFrame({"clip_id": ["catD"], "youtube_id": ["catD"], "start_s": [np.nan], "end_s": [np.nan],
                          "label": ["Cat"], "split": [None], "skip_reason": ["no AudioSet segment for id catD"],
                          "shard": [0]})
    write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "listing.parquet", FULL_LISTING_SCHEMA)
    # Port 9 refuses connections: a request would be recorded as a connection error instead.
    download = {"url_template": "http://127.0.0.1:9/{youtube_id}.mp4", "attempts": 1, "sleep_s": 0.0}
    download_shard(tmp_path / "listing.parquet", 0, tmp_path / "media", tmp_path / "clips.parquet",
                   tmp_path / "failures.parquet", download, {"dataset": "t"})
    failures = read_table(tmp_path / "failures.parquet").to_pylist()
    assert failures == [{"clip_id": "catD", "stage": "download", "reason": "no AudioSet segment for id catD"}]
    assert read_table(tmp_path / "clips.parquet").num_rows == 0


def test_ave_header_is_skipped_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_text("Category&VideoID&Quality&StartTime&EndTime\nBark&abc&good&0&10\nCat&def&good&2&8\n")
    listing = ave_listing(path, classes=["Bark", "Cat"])
    assert listing.clips["youtube_id"].tolist() == ["abc", "def"]
    path.write_text("Bark&abc&good&0&10\nCat&def&good\n")
    with pytest.raises(ManifestError, match=r"Annotations.txt:2"):
        ave_listing(path, classes=["Bark", "Cat"])
    path.write_text("Bark&abc&good&0&10\n")
    with pytest.raises(ManifestError, match="no lines for the configured classes"):
        ave_listing(path, classes=["Dog"])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_vegas_table_formats_derived_ids_and_bad_windows(tmp_path, suffix):
    frame = pd.DataFrame({
        "youtube_id": ["aaa", "bbb", "ccc", "ddd", "aaa"],
        "start_s": [0.0, 30.5, 5.0, 4.0, 0.0],
        "end_s": [10.0, 38.0, 5.0, "x", 10.0],
        "label": ["dog", "drum", "dog", "drum", "dog"],
    })
    path = tmp_path / f"vegas{suffix}"
    if suffix == ".parquet":
        frame.astype({"end_s": str}).to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    listing = vegas_listing(path, duplicates="first")
    assert listing.clips["clip_id"].tolist() == ["aaa_0_10000", "bbb_30500_38000"]
    assert listing.counts["dropped_bad_window"] == 2  # empty window, non-numeric end
    assert listing.counts["dropped_as_duplicates"] == 1
    assert vegas_listing(path, duplicates="drop").clips["clip_id"].tolist() == ["bbb_30500_38000"]
    assert vegas_listing(path, classes=["dog"], duplicates="first").clips["label"].tolist() == ["dog"]


def test_vegas_given_clip_ids_are_kept_and_made_file_safe(tmp_path):
    path = tmp_path / "vegas.csv"
    path.write_text("clip_id,youtube_id,start_s,end_s,label\nchainsaw/0001,abc,0,5,chainsaw\n,def,1,3,dog\n")
    assert vegas_listing(path).clips["clip_id"].tolist() == ["chainsaw_0001", "def_1000_3000"]
    path.write_text("youtube_id,start,end,label\nabc,0,5,dog\n")
    with pytest.raises(ManifestError, match=r"lacks the columns \['start_s', 'end_s'\]"):
        vegas_listing(path)


def test_vggsound_csv_keeps_its_split_quoted_labels_and_ten_second_windows(tmp_path):
    path = tmp_path / "vggsound.csv"
    path.write_text('---g-f_I2yQ,1,people marching,test\n'
                    'abc_DEF-123,30,"male speech, man speaking",train\n'
                    'xyz,x,dog barking,train\n'  # no start: dropped
                    'abc_DEF-123,30,"male speech, man speaking",train\n'  # listed twice
                    'qqq,0,dog barking,train\n')
    listing = vggsound_listing(path, duplicates="first")
    clips = listing.clips
    assert list(clips.columns) == [*LISTING_COLUMNS, "split"]
    assert clips["clip_id"].tolist() == ["---g-f_I2yQ_1000_11000", "abc_DEF-123_30000_40000", "qqq_0_10000"]
    assert clips["label"].tolist() == ["people marching", "male speech, man speaking", "dog barking"]
    assert clips["split"].tolist() == ["test", "train", "train"]
    assert (clips["end_s"] - clips["start_s"] == 10.0).all()
    assert listing.counts["dropped_bad_window"] == 1 and listing.counts["dropped_as_duplicates"] == 1
    assert listing.counts["listed_split"] == {"test": 1, "train": 2}
    assert vggsound_listing(path).clips["clip_id"].tolist() == ["---g-f_I2yQ_1000_11000", "qqq_0_10000"]
    assert vggsound_listing(path, classes=["dog barking", "people marching"]).clips["label"].tolist() == [
        "people marching", "dog barking"]
    spec = {"kind": "vggsound", "split": {"from_manifest": True}}
    assert dataset_listing(spec, path).clips["split"].tolist() == ["test", "train"]
    path.write_text("youtube_id,start_seconds,label,split\nabc,3,dog barking,train\n")
    assert vggsound_listing(path).clips["clip_id"].tolist() == ["abc_3000_13000"]  # header skipped


def test_vggsound_lines_without_a_train_or_test_split_are_named(tmp_path):
    path = tmp_path / "vggsound.csv"
    path.write_text("abc,3,dog barking,train\ndef,4,dog barking,validation\n")
    with pytest.raises(ManifestError, match=r"vggsound.csv:2: .*split train or test"):
        vggsound_listing(path)
    path.write_text("abc,3,dog barking,train\ndef,4,dog barking\n")  # three fields
    with pytest.raises(ManifestError, match=r"vggsound.csv:2"):
        vggsound_listing(path)
    path.write_text("abc,3,dog barking,train\ndef,4,male speech, man speaking,train\n")  # comma not quoted
    with pytest.raises(ManifestError, match=r"vggsound.csv:2: .*more fields"):
        vggsound_listing(path)


def test_listed_split_keeps_the_lists_split_and_refuses_gaps():
    listing = pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "split": ["train", "test", "train", None]})
    usable = pd.Series(["c", "a", "b"])
    assert listed_split(usable, listing).tolist() == ["train", "train", "test"]
    with pytest.raises(ValueError, match="1 clips have no train/test"):
        listed_split(pd.Series(["a", "d", "b"]), listing)
    with pytest.raises(ValueError, match="no usable test clip"):
        listed_split(pd.Series(["a", "c"]), listing)


def test_the_split_stage_keeps_the_listed_split(tmp_path):
    from avcmr.stages.split import make_split

    ids = [f"clip{i}" for i in range(8)]
    given = ["train", "test", "train", "train", "test", "train", "test", "train"]
    frame = pd.DataFrame({"clip_id": ids, "youtube_id": ids, "start_s": 0.0, "end_s": 10.0,
                          "label": ["dog", "cat"] * 4, "split": given, "skip_reason": None, "shard": 0})
    write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "listing.parquet", FULL_LISTING_SCHEMA)
    pq.write_table(pa.table({"clip_id": ids, "label": ["dog", "cat"] * 4}), tmp_path / "manifest.parquet")
    pq.write_table(pa.table({"clip_id": ids[1:]}), tmp_path / "audio.parquet")  # clip0 has no audio
    pq.write_table(pa.table({"clip_id": ids}), tmp_path / "visual.parquet")
    make_split(tmp_path / "manifest.parquet", [tmp_path / "audio.parquet"], [tmp_path / "visual.parquet"],
               tmp_path / "split.parquet", 0.8, 0, None, {"dataset": "t"}, listing_path=tmp_path / "listing.parquet")
    split = read_table(tmp_path / "split.parquet").to_pandas()
    assert split["clip_id"].tolist() == ids[1:]
    assert split["split"].tolist() == given[1:]


def test_the_acquisition_summary_names_its_lists_and_the_audioset_caveat(tmp_path):
    from avcmr.stages.acquire import write_listing
    from avcmr.stages.report import acquisition_summary

    segments = write_segments(tmp_path / "eval_segments.csv", [
        ("dog1", 10.0, 20.0, "/m/0bt9lr"), ("drum1", 0.0, 10.0, "/m/026t6"), ("dog2", 3.0, 13.0, "/m/0bt9lr")])
    spec = {"kind": "audioset", "classes": ["/m/0bt9lr", "/m/026t6"], "class_names": {"/m/0bt9lr": "dog"},
            "split": {"seed": 0}}
    write_listing(spec, 2, tmp_path / "listing.parquet", {"dataset": "t"}, None, [segments])
    listing = read_table(tmp_path / "listing.parquet").to_pandas()
    assert listing["clip_id"].tolist() == ["dog1_10000_20000", "drum1_0_10000", "dog2_3000_13000"]
    assert listing["shard"].tolist() == [0, 0, 1]
    sources = read_metadata(tmp_path / "listing.parquet")["listing_sources"]
    assert sources["segments0"]["sha256"] == file_digest(segments)
    summary = acquisition_summary(tmp_path / "listing.parquet", [], [], [], [], tmp_path / "acquisition.tsv")
    assert summary.set_index("label")["listed"].to_dict() == {"/m/026t6": 1, "dog": 2, "TOTAL": 3}
    header = [line for line in (tmp_path / "acquisition.tsv").read_text().splitlines() if line.startswith("#")]
    assert header[0].startswith("# note: ") and "without human checking" in header[0]
    assert "VEGAS's human filtering" in header[0]
    assert header[1] == (f"# source segments0: {segments} ({segments.stat().st_size} bytes, "
                         f"sha256 {file_digest(segments)})")


@pytest.fixture
def list_server(tmp_path):
    """A loopback HTTP server for list files (the fetch_manifests route, offline)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_fetched_list_gets_its_sha256_recorded_and_a_wrong_one_keeps_nothing(list_server, tmp_path):
    root, base = list_server
    served = write_segments(root / "unbalanced_train_segments.csv", [("dogA", 30.0, 40.0, "/m/0bt9lr")])
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    target = tmp_path / "cache/ave/segments1_unbalanced_train_segments.csv"
    fetch_source(f"{base}/unbalanced_train_segments.csv", target)
    assert target.read_bytes() == served.read_bytes()
    assert (tmp_path / "cache/ave/segments1_unbalanced_train_segments.csv.sha256").read_text() == (
        f"{digest}  segments1_unbalanced_train_segments.csv\n")
    other = tmp_path / "other/list.csv"
    with pytest.raises(ManifestError, match=f"has sha256 {digest}, the config expects {'0' * 64}"):
        fetch_source(f"{base}/unbalanced_train_segments.csv", other, "0" * 64)
    assert not other.parent.exists() or list(other.parent.iterdir()) == []
    with pytest.raises(ManifestError, match="HTTP 404.*place it at"):
        fetch_source(f"{base}/missing.csv", other)


def test_limit_clips_keeps_class_proportions(annotations):
    listing = ave_listing(annotations)
    limited = limit_clips(listing, 1955, seed=0)
    assert len(limited.clips) == 1955 and limited.counts["kept_before_limit"] == 2011
    shares = limited.clips["label"].value_counts() / listing.clips["label"].value_counts()
    assert np.allclose(shares, 1955 / 2011, atol=0.02)
    assert limited.clips.equals(limit_clips(listing, 1955, seed=0).clips)


def merged_config(*overrides):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for override in overrides:
        config = deep_merge(config, override)
    return config


def test_youtube_configs_validate():
    schema = str(REPO / "workflow/schemas/config.schema.yaml")
    for name in ("vegas", "ave", "vegas_audioset", "vggsound"):
        validate(merged_config(yaml.safe_load((REPO / f"config/{name}.yaml").read_text())), schema)
    bad = merged_config({"datasets": {"ave": {"kind": "ave"}}})
    with pytest.raises(Exception, match="manifest"):
        validate(bad, schema)


def dry_run(tmp_path, config, *targets):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = SNAKEMAKE + [*targets, "-n", "--directory", str(tmp_path), "--configfile",
                           str(tmp_path / "config.yaml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def stage_jobs(jobs, stage, dataset):
    """Jobs of a stage's rule and of its variants (e.g. decode_dropping_frames) for one dataset."""
    return sum(n for (rule, name), n in jobs.items() if name == dataset and (rule == stage or rule.startswith(f"{stage}_")))


def dry_run_jobs(stdout):
    """(rule, dataset) → number of jobs, and rule → the input line of its (last) job, from `snakemake -n`."""
    jobs, inputs, rule = Counter(), {}, None
    for line in stdout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
            jobs[(rule, None)] += 1
        elif rule and line.strip().startswith("input:"):
            inputs[rule] = line.strip()
        elif rule and line.strip().startswith("wildcards:"):
            dataset = re.search(r"dataset=([^,\s]+)", line)
            if dataset:
                jobs[(rule, None)] -= 1
                jobs[(rule, dataset.group(1))] += 1
    return jobs, inputs


def test_snakemake_dry_run_builds_the_ave_dag_from_the_annotations(annotations, tmp_path):
    ave = yaml.safe_load((REPO / "config/ave.yaml").read_text())
    ave["datasets"]["ave"]["manifest"] = str(annotations)
    segments = write_segments(tmp_path / "unbalanced_train_segments.csv", [("3jS8tWfLJxI", 30.0, 40.0, "/m/0bt9lr")])
    ave["datasets"]["ave"]["segments"] = [str(segments)]
    result = dry_run(tmp_path, merged_config(ave), "results/ave/map.tsv", "results/ave/acquisition.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs, inputs = dry_run_jobs(result.stdout)
    shards = -(-2011 // 100)  # shard_size 100: clips without a segment are listed (they become failure rows)
    for rule in ("download_shard", "decode", "logmel", "vggish", "inception"):
        assert stage_jobs(jobs, rule, "ave") == shards, rule
    assert jobs[("listing", "ave")] == 1 and jobs[("acquisition", "ave")] == 1 and jobs[("map_table", "ave")] == 1
    assert inputs["listing"] == f"input: {annotations}, {segments}"
    assert "listing.parquet" not in inputs["split"]  # the class-balanced split


def test_snakemake_dry_run_builds_audioset_and_vggsound_dags_from_local_lists(tmp_path):
    rng = np.random.default_rng(0)
    segments = write_segments(tmp_path / "eval_segments.csv", [
        (f"seg{i:03d}", float(rng.integers(0, 100)), 0.0, labels)
        for i, labels in enumerate(["/m/0bt9lr", "/m/026t6", "/m/0bt9lr,/m/026t6", "/m/09x0r"] * 10)])
    segments.write_text(re.sub(r", (\d+)\.000, 0\.000,", lambda m: f", {m.group(1)}.000, {int(m.group(1)) + 10}.000,",
                               segments.read_text()))
    vggsound = tmp_path / "vggsound.csv"
    pd.DataFrame({"youtube_id": [f"v{i:05d}" for i in range(1200)], "start": rng.integers(0, 300, 1200),
                  "label": rng.choice(["dog barking", "playing drum kit", "rain, thunder"], 1200),
                  "split": ["train"] * 1100 + ["test"] * 100}).to_csv(vggsound, header=False, index=False)
    config = merged_config(yaml.safe_load((REPO / "config/vegas_audioset.yaml").read_text()),
                           yaml.safe_load((REPO / "config/vggsound.yaml").read_text()))
    audioset = config["datasets"]["vegas_audioset"]
    audioset.update(segments=[str(segments)], classes=["/m/0bt9lr", "/m/026t6"], max_per_class=8,
                    features={"shard_size": 5})
    audioset["class_names"] = {"/m/0bt9lr": "dog", "/m/026t6": "drum"}
    config["datasets"]["vggsound"]["manifest"] = str(vggsound)
    targets = [f"results/{name}/{table}" for name in ("vegas_audioset", "vggsound") for table in ("map.tsv", "acquisition.tsv")]
    result = dry_run(tmp_path, config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs, _ = dry_run_jobs(result.stdout)
    for rule in ("download_shard", "decode", "logmel", "vggish", "inception"):
        assert stage_jobs(jobs, rule, "vegas_audioset") == 16 // 5 + 1, rule  # 2 × 8 capped single-class clips
        assert stage_jobs(jobs, rule, "vggsound") == 3, rule  # 1,200 clips, 500 per shard
    split_inputs = [line for line in result.stdout.splitlines() if "results/vggsound/manifest.parquet" in line
                    and line.strip().startswith("input:")]
    assert any("results/vggsound/listing.parquet" in line for line in split_inputs)  # the listed split


@pytest.mark.parametrize("name, file_name", [("vegas_audioset", "segments0_balanced_train_segments.csv"),
                                             ("vggsound", "manifest_vggsound.csv")])
def test_an_offline_dry_run_names_the_missing_list_and_its_source(tmp_path, name, file_name):
    config = merged_config(yaml.safe_load((REPO / f"config/{name}.yaml").read_text()))
    result = dry_run(tmp_path, config, f"results/{name}/map.tsv")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "is not downloaded yet" in line]
    assert len(lines) == 1
    source = config["datasets"][name].get("manifest") or config["datasets"][name]["segments"][0]
    assert source in lines[0] and f"resources/manifests/{name}/{file_name}" in lines[0]
    assert "snakemake fetch_manifests --cores 1" in lines[0]


def test_a_manifest_url_not_yet_fetched_is_a_clear_error(tmp_path):
    ave = yaml.safe_load((REPO / "config/ave.yaml").read_text())
    result = dry_run(tmp_path, merged_config(ave), "results/ave/map.tsv")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "snakemake fetch_manifests --cores 1" in output and "resources/manifests/ave/" in output
    fetch = dry_run(tmp_path, merged_config(ave), "fetch_manifests")
    assert fetch.returncode == 0 and "fetch_manifest" in fetch.stdout


def test_paper_datasets_refuse_random_weights():
    from avcmr.config import ConfigError, check_dataset, dataset_settings

    for name in ("vegas", "ave", "vegas_audioset", "vggsound"):
        config = merged_config(yaml.safe_load((REPO / f"config/{name}.yaml").read_text()))
        check_dataset(dataset_settings(config, name))  # the official files: accepted
        config["datasets"][name]["backbone_weights"] = {"vggish": "random", "inception": "random"}
        with pytest.raises(ConfigError, match="random backbone weights"):
            check_dataset(dataset_settings(config, name))


@pytest.mark.slow
def test_ave_run_fetches_the_segment_list_and_each_clip_at_its_audioset_window(tmp_path):
    """Snakemake for real, offline: `fetch_manifests` downloads the segment list from a loopback
    server (sha256 recorded), then the clip with a segment is fetched at its window and the one
    without becomes a failure row and is never requested."""
    from test_media_download import RangeHandler, encode

    from avcmr.media.ffmpeg_io import probe

    served = tmp_path / "served"
    (served / "media").mkdir(parents=True)
    (served / "lists").mkdir()
    encode(served / "media/dogA.mp4", 14.0)
    encode(served / "media/catB.mp4", 4.0)  # listed without a segment: must never be requested
    write_segments(served / "lists/unbalanced_train_segments.csv", [("dogA", 3.0, 13.0, "/m/0bt9lr")])
    handler = type("Handler", (RangeHandler,), {"requests": Counter()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        annotations = tmp_path / "Annotations.txt"
        annotations.write_text("Bark&dogA&good&2&6\nCat&catB&good&0&4\n")
        config = merged_config({"default_datasets": [], "datasets": {"a": {
            "kind": "ave", "manifest": str(annotations), "classes": ["Bark", "Cat"],
            "segments": [f"{base}/lists/unbalanced_train_segments.csv"],
            "allow_random_weights": True, "backbone_weights": {"vggish": "random", "inception": "random"},
            "download": {"url_template": f"{base}/media/{{youtube_id}}.mp4", "attempts": 1, "sleep_s": 0.0},
            "features": {"shard_size": 5}}}})
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        options = ["--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
        fetched = subprocess.run(SNAKEMAKE + ["fetch_manifests", *options, "--cores", "1"],
                                 capture_output=True, text=True, timeout=300)
        assert fetched.returncode == 0, fetched.stderr[-3000:]
        cached = tmp_path / "resources/manifests/a/segments0_unbalanced_train_segments.csv"
        digest = hashlib.sha256(cached.read_bytes()).hexdigest()
        assert (cached.parent / f"{cached.name}.sha256").read_text().split() == [digest, cached.name]
        targets = ["results/a/manifest.parquet", "results/a/failures/download/shard0.parquet"]
        result = subprocess.run(SNAKEMAKE + [*targets, *options, "--cores", "2", "--resources", "youtube=1"],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        httpd.shutdown()
        httpd.server_close()
    manifest = read_table(tmp_path / "results/a/manifest.parquet").to_pandas()
    assert manifest["clip_id"].tolist() == ["dogA_3000_13000"]
    assert probe(manifest["path"].iloc[0]).duration_s == pytest.approx(10.0, abs=0.15)
    failures = read_table(tmp_path / "results/a/failures/download/shard0.parquet").to_pylist()
    assert [(f["clip_id"], f["reason"].split(" in the")[0]) for f in failures] == [
        ("catB", "no AudioSet segment for id catB")]
    assert handler.requests["/media/catB.mp4"] == 0 and handler.requests["/media/dogA.mp4"] >= 1
    sources = read_metadata(tmp_path / "results/a/listing.parquet")["listing_sources"]
    assert sources["segments0"]["sha256"] == digest
