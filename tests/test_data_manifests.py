"""Manifests of the YouTube datasets: AVE's Annotations.txt, VEGAS tables, duplicates, and the DAG."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, require_shared
from snakemake.utils import validate

from avcmr.config import deep_merge
from avcmr.data.manifests import (
    AVE_PAPER_CLASSES,
    LISTING_COLUMNS,
    ManifestError,
    ave_listing,
    check_sha256,
    limit_clips,
    read_audioset_segments,
    read_ave_annotations,
    vegas_listing,
)

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
        assert list(listing.clips.columns) == LISTING_COLUMNS
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


def test_ave_event_window_and_audioset_offsets(annotations, tmp_path):
    events = ave_listing(annotations, classes=None, duplicates="first", window="event")
    assert events.counts["dropped_empty_event"] == 1  # "Church bell&VWi2ENBuTbw&good&0&0"
    assert (events.clips["end_s"] > events.clips["start_s"]).all()
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text('# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=2\n'
                        '# YTID, start_seconds, end_seconds, positive_labels\n'
                        '3jS8tWfLJxI, 30.000, 40.000, "/m/05tny_,/m/0bt9lr"\n'
                        '-J2WJaG1Dd4, 7.000, 17.000, "/m/03w41f"\n')
    offsets = read_audioset_segments([segments])
    assert offsets == {"3jS8tWfLJxI": 30.0, "-J2WJaG1Dd4": 7.0}
    listing = ave_listing(annotations, offsets=offsets)
    row = listing.clips.set_index("youtube_id").loc["3jS8tWfLJxI"]
    assert (row["start_s"], row["end_s"], row["clip_id"]) == (30.0, 40.0, "3jS8tWfLJxI_30000_40000")
    assert listing.counts["with_segment_offset"] == 1  # -J2WJaG1Dd4 is a Church bell clip


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


def test_vegas_and_ave_configs_validate():
    schema = str(REPO / "workflow/schemas/config.schema.yaml")
    for name in ("vegas", "ave"):
        validate(merged_config(yaml.safe_load((REPO / f"config/{name}.yaml").read_text())), schema)
    bad = merged_config({"datasets": {"ave": {"kind": "ave"}}})
    with pytest.raises(Exception, match="manifest"):
        validate(bad, schema)


def dry_run(tmp_path, config, *targets):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = SNAKEMAKE + [*targets, "-n", "--directory", str(tmp_path), "--configfile",
                           str(tmp_path / "config.yaml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_snakemake_dry_run_builds_the_ave_dag_from_the_annotations(annotations, tmp_path):
    ave = yaml.safe_load((REPO / "config/ave.yaml").read_text())
    ave["datasets"]["ave"]["manifest"] = str(annotations)
    result = dry_run(tmp_path, merged_config(ave), "results/ave/map.tsv", "results/ave/acquisition.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(line.split() for line in result.stdout.splitlines()
                if len(line.split()) == 2 and line.split()[1].isdigit())
    shards = -(-2011 // 100)  # shard_size 100
    for rule in ("download_shard", "decode", "logmel", "vggish", "inception"):
        assert int(jobs[rule]) == shards, rule
    assert int(jobs["listing"]) == 1 and int(jobs["acquisition"]) == 1 and int(jobs["map_table"]) == 1


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

    for name in ("vegas", "ave"):
        config = merged_config(yaml.safe_load((REPO / f"config/{name}.yaml").read_text()))
        check_dataset(dataset_settings(config, name))  # the official files: accepted
        config["datasets"][name]["backbone_weights"] = {"vggish": "random", "inception": "random"}
        with pytest.raises(ConfigError, match="random backbone weights"):
            check_dataset(dataset_settings(config, name))
