"""Folder listings: stable hash shards, per-shard member lists that change with the files, errors."""

import hashlib
import os

import pytest

from avcmr.data.folder import (
    content_fingerprint,
    list_folder,
    list_folder_dataset,
    n_folder_shards,
    shard_members,
    shard_of,
)


def make_folder(root, names):
    for label, stem in names:
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{stem}.mp4").write_bytes(f"{label}/{stem}".encode() * 10)


def spec(root, n_shards=None, shard_size=4):
    return {"root": str(root), "features": {"shard_size": shard_size}, "n_shards": n_shards}


def members_by_shard(listing):
    return {shard: shard_members(listing, shard) for shard in range(listing.attrs["n_shards"])}


NAMES = [(label, f"clip{i}") for label in ("dog", "drum", "snoring") for i in range(5)]


def test_shard_is_sha256_of_the_clip_id_modulo_the_shard_count():
    for clip_id in ("dog__clip0", "drum__x", "AbCdEfGhIjK"):
        expected = int(hashlib.sha256(clip_id.encode()).hexdigest()[:16], 16) % 7
        assert shard_of(clip_id, 7) == expected
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"clip{i}", 4)] += 1
    assert min(counts) > 900  # roughly even


def test_adding_a_clip_changes_one_shard_only(tmp_path):
    make_folder(tmp_path, NAMES)
    before = list_folder_dataset(spec(tmp_path, n_shards=3))
    make_folder(tmp_path, [("dog", "new one")])
    after = list_folder_dataset(spec(tmp_path, n_shards=3))
    new_shard = shard_of("dog__new_one", 3)
    old, new = members_by_shard(before), members_by_shard(after)
    for shard in range(3):
        if shard == new_shard:
            assert [m["clip_id"] for m in new[shard]] == sorted([m["clip_id"] for m in old[shard]] + ["dog__new_one"])
        else:
            assert new[shard] == old[shard]
    assert content_fingerprint(before) != content_fingerprint(after)


def test_removing_or_touching_a_clip_changes_its_shard_only(tmp_path):
    make_folder(tmp_path, NAMES)
    before = members_by_shard(list_folder_dataset(spec(tmp_path, n_shards=3)))
    (tmp_path / "drum/clip2.mp4").unlink()
    touched = tmp_path / "snoring/clip4.mp4"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    after = members_by_shard(list_folder_dataset(spec(tmp_path, n_shards=3)))
    changed = {shard_of("drum__clip2", 3), shard_of("snoring__clip4", 3)}
    for shard in range(3):
        assert (after[shard] != before[shard]) == (shard in changed)
    assert "drum__clip2" not in [m["clip_id"] for members in after.values() for m in members]
    touched_row = next(m for m in after[shard_of("snoring__clip4", 3)] if m["clip_id"] == "snoring__clip4")
    assert touched_row["mtime_ns"] == touched.stat().st_mtime_ns and touched_row["size"] == touched.stat().st_size


def test_shard_count_is_configured_or_clips_over_shard_size(tmp_path):
    make_folder(tmp_path, NAMES)
    assert list_folder_dataset(spec(tmp_path, shard_size=4)).attrs["n_shards"] == 4  # ceil(15 / 4)
    assert list_folder_dataset(spec(tmp_path, n_shards=2, shard_size=4)).attrs["n_shards"] == 2
    assert n_folder_shards(0, 10) == 1


def test_listing_rows_carry_label_path_and_no_refusal(tmp_path):
    make_folder(tmp_path, NAMES[:2])
    listing = list_folder_dataset(spec(tmp_path, n_shards=1))
    assert listing["clip_id"].tolist() == ["dog__clip0", "dog__clip1"]
    assert (listing["label"] == "dog").all() and (listing["refused"] == "").all()
    assert listing["path"].tolist() == [str((tmp_path / "dog" / f"clip{i}.mp4").resolve()) for i in range(2)]


def test_colliding_ids_and_empty_folders_are_errors(tmp_path):
    make_folder(tmp_path, [("dog", "a b"), ("dog", "a_b")])
    with pytest.raises(ValueError, match="collide after sanitising"):
        list_folder(tmp_path)
    with pytest.raises(ValueError, match="no clips with extensions"):
        list_folder(tmp_path / "dog")
