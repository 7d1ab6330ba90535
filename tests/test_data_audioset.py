"""AudioSet segment lists: reading (and its cache), offsets, and clips chosen by label id."""

import os

import numpy as np
import pandas as pd
import pytest

from avcmr.data.audioset import (
    AUDIOSET_APPROXIMATION_NOTE,
    audioset_listing,
    read_audioset_segments,
    read_segment_table,
    segment_table,
)
from avcmr.data.listing import ManifestError

DOG, DRUM, STREAM = "/m/0bt9lr", "/m/026t6", "/m/0j6m2"


def write_segments(path, rows):
    """3 comment lines, then ``YTID, start_seconds, end_seconds, "positive_labels"`` as published."""
    path.write_text("# Segments csv created Sun Mar  5 10:54:25 2017\n"
                    f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels=527\n"
                    "# YTID, start_seconds, end_seconds, positive_labels\n"
                    + "".join(f'{y}, {s:.3f}, {e:.3f}, "{labels}"\n' for y, s, e, labels in rows))
    return path


@pytest.fixture
def segments(tmp_path):
    return write_segments(tmp_path / "balanced_train_segments.csv", [
        ("dog1", 30.0, 40.0, f"{DOG},/m/068hy,/m/0jbk"),
        ("both", 7.0, 17.0, f"{DRUM},{DOG}"),  # two requested classes
        ("drum1", 0.0, 10.0, DRUM),
        ("lookalike", 2.0, 12.0, "/m/0bt9lrx"),  # not Dog: ids match whole
        ("stream1", 12.5, 20.0, f"/m/0838f,{STREAM}"),  # shorter than 10 s, as at a video's end
        ("dog1", 60.0, 70.0, DOG),  # the same video again
        ("drum1", 200.0, 210.0, "/m/04rlf"),  # again, with a class not requested
    ])


def test_segment_table_reads_the_published_format(segments):
    table = read_segment_table([segments]).to_pandas()
    assert table["youtube_id"].tolist() == ["dog1", "both", "drum1", "lookalike", "stream1", "dog1", "drum1"]
    assert table["start_s"].tolist() == [30.0, 7.0, 0.0, 2.0, 12.5, 60.0, 200.0]
    assert table.loc[4, "end_s"] == 20.0 and table.loc[0, "labels"] == f"{DOG},/m/068hy,/m/0jbk"
    assert (table["file"] == 0).all()


def test_offsets_keep_the_first_segment_of_an_id_across_files(segments, tmp_path):
    later = write_segments(tmp_path / "unbalanced_train_segments.csv", [("drum1", 99.0, 109.0, DRUM),
                                                                        ("only_here", 5.0, 15.0, DOG)])
    assert read_audioset_segments([segments, later]) == {
        "dog1": 30.0, "both": 7.0, "drum1": 0.0, "lookalike": 2.0, "stream1": 12.5, "only_here": 5.0}
    assert read_audioset_segments([segments, later], youtube_ids=["only_here", "drum1", "absent"]) == {
        "drum1": 0.0, "only_here": 5.0}


def test_one_label_per_clip_under_each_duplicate_policy(segments):
    names = {DOG: "dog", DRUM: "drum"}
    first = audioset_listing([segments], [DOG, DRUM], names, "first").clips
    # File order; "both" takes the first requested class (dog); dog1's second segment is dropped.
    assert first[["clip_id", "label"]].values.tolist() == [
        ["dog1_30000_40000", "dog"], ["both_7000_17000", "dog"], ["drum1_0_10000", "drum"]]
    assert first.loc[0, ["start_s", "end_s"]].tolist() == [30.0, 40.0]
    reversed_order = audioset_listing([segments], [DRUM, DOG], names, "first").clips
    assert reversed_order.set_index("youtube_id").loc["both", "label"] == "drum"
    # drop: a video matched twice (two classes, or two segments) has no single clip.
    dropped = audioset_listing([segments], [DOG, DRUM], names, "drop")
    assert dropped.clips["youtube_id"].tolist() == ["drum1"]
    assert dropped.counts["segments_with_several_classes"] == 1 and dropped.counts["repeated_keys"] == 2
    assert dropped.notes == [AUDIOSET_APPROXIMATION_NOTE]
    kept = audioset_listing([segments], [DRUM, STREAM], None, "drop").clips
    assert kept["youtube_id"].tolist() == ["both", "drum1", "stream1"]
    assert kept["label"].tolist() == [DRUM, DRUM, STREAM]  # no names given: the ids
    assert kept.loc[2, ["start_s", "end_s"]].tolist() == [12.5, 20.0]
    # drop_any also drops ids listed twice in the CSVs when only one of their rows matches.
    strict = audioset_listing([segments], [DRUM, STREAM], None, "drop_any").clips
    assert strict["youtube_id"].tolist() == ["both", "stream1"]


def test_the_per_class_cap_is_a_seeded_draw_in_list_order(tmp_path):
    rng = np.random.default_rng(1)
    rows = [(f"y{i:03d}", float(i), float(i) + 10, DOG if rng.random() < 0.7 else DRUM) for i in range(200)]
    path = write_segments(tmp_path / "eval_segments.csv", rows)
    whole = audioset_listing([path], [DOG, DRUM]).clips
    capped = audioset_listing([path], [DOG, DRUM], max_per_class=40, seed=3)
    sizes = whole["label"].value_counts()
    assert capped.clips["label"].value_counts().to_dict() == {label: min(40, n) for label, n in sizes.items()}
    assert capped.counts["dropped_over_class_cap"] == len(whole) - len(capped.clips)
    assert capped.counts["per_class_before_cap"] == sizes.sort_index().to_dict()
    # A subset of the uncapped list, in its order; the same seed draws the same clips.
    positions = whole.reset_index().set_index("clip_id").loc[capped.clips["clip_id"], "index"]
    assert positions.is_monotonic_increasing
    assert capped.clips.equals(audioset_listing([path], [DOG, DRUM], max_per_class=40, seed=3).clips)
    assert not capped.clips.equals(audioset_listing([path], [DOG, DRUM], max_per_class=40, seed=4).clips)


def test_bad_classes_are_one_line_errors(segments):
    with pytest.raises(ManifestError, match=r"not ids: \['Dog'\]"):
        audioset_listing([segments], ["Dog", DRUM])
    with pytest.raises(ManifestError, match=r"carries the label ids \['/m/09x0r'\]"):
        audioset_listing([segments], [DOG, "/m/09x0r"])
    with pytest.raises(ManifestError, match=r"not in classes: \['/m/0j6m2'\]"):
        audioset_listing([segments], [DOG, DRUM], {STREAM: "water"})
    with pytest.raises(ManifestError, match="share a name"):
        audioset_listing([segments], [DOG, DRUM], {DOG: "x", DRUM: "x"})


@pytest.mark.parametrize("body, message", [
    ('abc, 1.0, 11.0, /m/0bt9lr,/m/026t6\n', "not an AudioSet segment list"),  # labels not quoted
    ('abc, one, 11.0, "/m/0bt9lr"\n', "non-numeric or missing start_s"),
    ("", "no segment lines"),
])
def test_a_file_that_is_not_a_segment_list_is_named(tmp_path, body, message):
    path = tmp_path / "segments.csv"
    path.write_text("# a\n# b\n# YTID, start_seconds, end_seconds, positive_labels\n" + body)
    with pytest.raises(ManifestError, match=f"segments.csv: .*{message}"):
        read_segment_table([path])


def test_the_parse_cache_follows_the_file(segments, tmp_path):
    cache = tmp_path / "parsed"
    first = segment_table(segments, cache)
    assert len(list(cache.iterdir())) == 1
    assert segment_table(segments, cache).equals(first)
    write_segments(segments, [("new", 1.0, 11.0, DOG)])
    os.utime(segments, ns=(1, 1))  # a new mtime (and size): parsed again
    assert segment_table(segments, cache).to_pandas()["youtube_id"].tolist() == ["new"]
    assert pd.Series(sorted(p.name for p in cache.iterdir())).str.startswith("balanced_train_segments.csv.").all()
