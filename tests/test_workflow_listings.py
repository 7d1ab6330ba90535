"""avcmr.workflow.listings: each dataset's clips, shards and size, read once; a missing or unreadable
list is one ConfigError naming the dataset and what to do."""

import pyarrow as pa
import pytest
from test_feature_file import write_feature_file
from workflow_configs import RANDOM, run_config, synthetic

from avcmr.config import ConfigError, config_hash
from avcmr.data.archive import MEMBERS_SCHEMA
from avcmr.io.parquet import write_table
from avcmr.workflow.listings import Listings, archive_paths
from avcmr.workflow.provenance import archive_settings
from avcmr.workflow.settings import load_settings

VEGAS_ROWS = "youtube_id,start_s,end_s,label\n" + "".join(f"id{i},0,10,{'dog' if i % 2 else 'cat'}\n" for i in range(7))


def listings_for(datasets: dict, **top) -> Listings:
    return Listings(load_settings(run_config(datasets, **top)))


def folder(root, **spec) -> dict:
    return {"kind": "folder", "root": str(root), "allow_random_weights": True, "backbone_weights": RANDOM, **spec}


def vegas(manifest, **spec) -> dict:
    return {"kind": "vegas", "manifest": str(manifest), "allow_random_weights": True, "backbone_weights": RANDOM,
            **spec}


def make_clips(root, n_per_label=3):
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_label):
            (root / label / f"{label}{i}.mp4").write_bytes(b"x" * (i + 1))


def test_synthetic_and_features_datasets_are_sized_from_their_settings_and_file(tmp_path):
    write_feature_file(tmp_path / "f.h5", n_train=60, n_test=24, n_classes=3)
    listings = listings_for({
        "syn": synthetic(features={"shard_size": 8}),
        "feat": {"kind": "features", "feature_file": {"path": str(tmp_path / "f.h5")}},
    })
    assert listings.shards("syn") == [0, 1, 2, 3]  # 30 clips, 8 a shard
    assert listings.size("syn") == (30, 4, 10.0)
    assert listings.shards("feat") == []  # one import job
    assert listings.size("feat") == (84, 3, 0.0)
    assert listings.feature_file("feat") == str(tmp_path / "f.h5")


def test_an_unreadable_feature_file_is_one_config_error(tmp_path):
    (tmp_path / "f.h5").write_bytes(b"not hdf5")
    listings = listings_for({"feat": {"kind": "features", "feature_file": {"path": str(tmp_path / "f.h5")}}})
    with pytest.raises(ConfigError, match="f.h5"):
        listings.feature_file("feat")


def test_a_folder_is_listed_once_with_its_shards_and_members(tmp_path):
    make_clips(tmp_path / "clips")
    listings = listings_for({"mine": folder(tmp_path / "clips", n_shards=2)})
    assert listings.shards("mine") == [0, 1]
    assert listings.size("mine") == (6, 2, 10.0)
    members = listings.folder_members("mine", 0) + listings.folder_members("mine", 1)
    assert sorted(m["clip_id"] for m in members) == [f"{label}__{label}{i}" for label in ("cat", "dog")
                                                     for i in range(3)]
    assert {m["size"] for m in members} == {1, 2, 3}
    clips = listings.folder_clips("mine")
    assert len(clips) == 6 and set(clips[0]) == {"clip_id", "label", "shard", "size", "mtime_ns"}
    # Read once per invocation: a clip added later is not seen by this listing.
    (tmp_path / "clips/cat/late.mp4").write_bytes(b"x")
    assert len(listings.folder_clips("mine")) == 6
    assert len(Listings(listings.settings).folder_clips("mine")) == 7
    assert listings_for({"syn": synthetic()}).folder_clips("syn") is None


def test_an_archive_dataset_needs_its_archive_and_its_unpacked_member_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = folder(tmp_path / "unpacked", archive=str(tmp_path / "V.zip"), layout="V/{label}/{clip}.mp4")
    listings = listings_for({"v": spec})
    v = listings.settings["v"]
    assert archive_paths(v) == {"archive": str(tmp_path / "V.zip"), "unpacked": str(tmp_path / "unpacked"),
                                "members": "resources/archives/v/members.parquet"}
    with pytest.raises(ConfigError, match=r"dataset 'v': archive .*V.zip not found; place your copy"):
        listings.archive_file("v")
    (tmp_path / "V.zip").write_bytes(b"zip")
    assert listings.archive_file("v") == str(tmp_path / "V.zip")
    with pytest.raises(ConfigError, match=r"dataset 'v': the archive .*V.zip is not unpacked yet; run `snakemake "
                                          r"fetch_archives --cores 1` first"):
        listings.shards("v")
    (tmp_path / "unpacked/V/dog").mkdir(parents=True)
    (tmp_path / "unpacked/V/dog/a.mp4").write_bytes(b"clip")
    rows = {"clip_id": ["dog__a", "member__x"], "label": ["dog", "(unknown)"],
            "path": [str(tmp_path / "unpacked/V/dog/a.mp4"), ""], "refused": ["", "refused archive member"],
            "member": ["V/dog/a.mp4", "x"]}
    members = archive_paths(v)["members"]
    write_table(pa.table(rows, schema=MEMBERS_SCHEMA), members, MEMBERS_SCHEMA, {"config_hash": "other"})
    with pytest.raises(ConfigError, match="was unpacked with other archive settings"):
        listings.shards("v")
    write_table(pa.table(rows, schema=MEMBERS_SCHEMA), members, MEMBERS_SCHEMA,
                {"config_hash": config_hash(archive_settings(v))})
    assert listings.shards("v") == [0]
    assert [(m["clip_id"], m["refused"]) for m in listings.folder_members("v", 0)] == [
        ("dog__a", ""), ("member__x", "refused archive member")]


def test_a_youtube_list_is_read_from_its_local_file_and_sharded(tmp_path):
    (tmp_path / "v.csv").write_text(VEGAS_ROWS)
    listings = listings_for({"vg": vegas(tmp_path / "v.csv", features={"shard_size": 3})})
    assert listings.list_files("vg") == {"manifest": str(tmp_path / "v.csv"), "segments": []}
    assert listings.shards("vg") == [0, 1, 2]  # 7 clips, 3 a shard
    assert listings.size("vg") == (7, 2, 10.0)
    assert listings.remote_sources() == {}
    assert listings_for({"syn": synthetic()}).list_files("syn") == {}


def test_missing_or_changed_lists_say_what_to_do(tmp_path):
    listings = listings_for({
        "vg": vegas(tmp_path / "absent.csv"),
        "remote": vegas("https://example.org/lists/vegas.csv", manifest_sha256="0" * 64),
    })
    with pytest.raises(ConfigError, match=r"dataset 'vg': manifest file .*absent.csv not found. no public list "
                                          r"of VEGAS's YouTube ids"):
        listings.shards("vg")
    assert listings.remote_sources() == {
        "resources/manifests/remote/manifest_vegas.csv": ("https://example.org/lists/vegas.csv", "0" * 64)}
    with pytest.raises(ConfigError, match=r"dataset 'remote': the manifest list https://example.org/lists/vegas.csv "
                                          r"is not downloaded yet; run `snakemake fetch_manifests --cores 1`"):
        listings.shards("remote")
    (tmp_path / "v.csv").write_text(VEGAS_ROWS)
    pinned = listings_for({"vg": vegas(tmp_path / "v.csv", manifest_sha256="0" * 64)})
    with pytest.raises(ConfigError, match=r"dataset 'vg': .*v.csv has sha256 [0-9a-f]{64}, the config expects 0{64}"):
        pinned.size("vg")
    (tmp_path / "empty.csv").write_text("youtube_id,start_s,end_s,label\n")
    with pytest.raises(ConfigError, match="dataset 'vg': the manifest lists no clips"):
        listings_for({"vg": vegas(tmp_path / "empty.csv")}).shards("vg")


def test_segment_lists_are_entries_of_their_own(tmp_path):
    listings = listings_for({"av": {"kind": "ave", "manifest": "A.txt", "allow_random_weights": True,
                                    "backbone_weights": RANDOM,
                                    "segments": ["https://host/csv/eval_segments.csv", "local.csv"],
                                    "segments_sha256": {"eval_segments.csv": "ab" * 32}}})
    assert listings.source_entries("av") == [
        ("manifest", "A.txt", "A.txt", None),
        ("segments0", "https://host/csv/eval_segments.csv", "resources/manifests/av/segments0_eval_segments.csv",
         "ab" * 32),
        ("segments1", "local.csv", "local.csv", None),
    ]
    empty = listings_for({"av": {"kind": "ave", "manifest": "A.txt", "allow_random_weights": True,
                                 "backbone_weights": RANDOM, "segments": []}})
    with pytest.raises(ConfigError, match="dataset 'av': kind ave takes each clip's window from AudioSet's segment"):
        empty.source_entries("av")
