"""Release archives: sha256/size checks before unpacking (the download itself: test_io_http_fetch.py),
safe unpacking (zip and tar.gz; zip-slip, links, caps) and the layouts of VEGAS and AVE."""

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from avcmr.data.archive import ArchiveError, compile_layout, unpack_archive, unpack_dataset_archive
from avcmr.data.folder import content_fingerprint, list_folder_dataset
from avcmr.io.parquet import read_metadata, read_table

CLASSES = ("dog", "drum", "helicopter")
VEGAS_LAYOUT = "VEGAS/{label}/videos/{clip}.mp4"


def clip_bytes(label: str, index: int) -> bytes:
    return hashlib.sha256(f"{label}{index}".encode()).digest() * 200  # 6.4 kB, distinct per clip


def vegas_members() -> dict[str, bytes]:
    members = {f"VEGAS/{label}/videos/{label}_{i}.mp4": clip_bytes(label, i) for label in CLASSES for i in range(2)}
    members["VEGAS/readme.txt"] = b"not a clip"
    return members


def write_zip(path: Path, members: dict[str, bytes], evil: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("VEGAS/", b"")
        for name, data in members.items():
            archive.writestr(name, data)
        if evil:
            archive.writestr("../evil.mp4", b"outside")  # zip-slip
            archive.writestr("/tmp/absolute.mp4", b"absolute")
            link = zipfile.ZipInfo("VEGAS/dog/videos/link.mp4")
            link.create_system, link.external_attr = 3, (0o120777 << 16)
            archive.writestr(link, "/etc/passwd")
    return path


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
        slip = tarfile.TarInfo("VEGAS/dog/videos/../../../../evil.mp4")
        slip.size = 7
        archive.addfile(slip, io.BytesIO(b"outside"))
        for kind, name in ((tarfile.SYMTYPE, "VEGAS/dog/videos/link.mp4"), (tarfile.LNKTYPE, "VEGAS/drum/videos/hard.mp4")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else "VEGAS/readme.txt"
            archive.addfile(info)
    return path


# --- unpacking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_vegas_layout_unpacks_the_clips_and_refuses_bad_members(tmp_path, kind):
    members = vegas_members()
    writer = write_zip if kind == "zip" else write_tar_gz
    archive = writer(tmp_path / f"VEGAS.{kind}", members)
    dest = tmp_path / "work" / "unpacked"
    counts = unpack_archive(archive, dest, VEGAS_LAYOUT, tmp_path / "work/members.parquet", provenance={"k": 1})
    table = read_table(tmp_path / "work/members.parquet").to_pandas().set_index("clip_id")
    good = table[table["refused"] == ""]
    assert sorted(good.index) == sorted(f"{label}__{label}_{i}" for label in CLASSES for i in range(2))
    for clip_id, row in good.iterrows():
        label, stem = clip_id.split("__")
        assert row["label"] == label
        assert Path(row["path"]).read_bytes() == members[f"VEGAS/{label}/videos/{stem}.mp4"]
        assert Path(row["path"]).is_relative_to(dest)
    refused = table[table["refused"] != ""]
    reasons = dict(zip(refused["member"], refused["refused"], strict=True))
    slip = next(name for name in reasons if name.endswith("evil.mp4"))
    assert "'..' in its path" in reasons[slip]
    assert "symbolic link" in reasons["VEGAS/dog/videos/link.mp4"]
    assert refused.loc["dog__link", "label"] == "dog"  # matched the layout: its label is known
    if kind == "zip":
        assert "absolute path" in reasons["/tmp/absolute.mp4"]
    else:
        assert "hard link" in reasons["VEGAS/drum/videos/hard.mp4"]
    # Nothing landed outside the folder, no link was made, the read-me was skipped.
    assert not (tmp_path / "evil.mp4").exists() and not (tmp_path / "work" / "evil.mp4").exists()
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == sorted(
        f"{label}_{i}.mp4" for label in CLASSES for i in range(2))
    assert counts["unpacked"] == 6 and counts["refused"] == len(refused) and counts["not_in_layout"] == 1
    assert read_metadata(tmp_path / "work/members.parquet")["archive_counts"] == counts


@pytest.mark.parametrize("check, message", [
    ({"archive_sha256": "0" * 64}, "sha256 [0-9a-f]{64}, expected 0{64}.*fix archive_sha256 / archive_bytes"),
    ({"archive_bytes": 1}, r"\d+ bytes, expected 1.*fix archive_sha256 / archive_bytes"),
])
def test_a_configured_archive_that_fails_its_checks_is_not_unpacked(tmp_path, check, message):
    archive = write_zip(tmp_path / "VEGAS.zip", vegas_members(), evil=False)
    spec = {"layout": VEGAS_LAYOUT, **check}
    with pytest.raises(ArchiveError, match=message):
        unpack_dataset_archive(archive, spec, tmp_path / "unpacked", tmp_path / "members.parquet")
    assert not (tmp_path / "unpacked").exists() and not (tmp_path / "members.parquet").exists()
    right = {"layout": VEGAS_LAYOUT, "archive_sha256": hashlib.sha256(archive.read_bytes()).hexdigest().upper(),
             "archive_bytes": archive.stat().st_size}
    counts = unpack_dataset_archive(archive, right, tmp_path / "unpacked", tmp_path / "members.parquet")
    assert counts["unpacked"] == 6


def test_unpacking_again_changes_no_file_and_no_fingerprint(tmp_path):
    archive = write_zip(tmp_path / "VEGAS.zip", vegas_members())
    spec = {"features": {"shard_size": 4}, "n_shards": 2}
    unpack_archive(archive, tmp_path / "unpacked", VEGAS_LAYOUT, tmp_path / "members.parquet")
    before = list_folder_dataset(spec, tmp_path / "members.parquet")
    counts = unpack_archive(archive, tmp_path / "unpacked", VEGAS_LAYOUT, tmp_path / "members.parquet")
    after = list_folder_dataset(spec, tmp_path / "members.parquet")
    assert counts["unpacked"] == 0 and counts["already_there"] == 6
    assert content_fingerprint(before) == content_fingerprint(after)
    # The refused members are listed (to become failure rows) with their reason, the clips without.
    assert (after["refused"] != "").sum() == 3 and after.loc[after["refused"] == "", "size"].gt(0).all()


def test_caps_on_member_count_and_size_refuse_the_archive(tmp_path):
    archive = write_zip(tmp_path / "VEGAS.zip", vegas_members(), evil=False)
    with pytest.raises(ArchiveError, match="8 members, over the cap of 5"):
        unpack_archive(archive, tmp_path / "u", VEGAS_LAYOUT, tmp_path / "m.parquet", max_members=5)
    with pytest.raises(ArchiveError, match="declares 38410 bytes, over the cap of 1000"):
        unpack_archive(archive, tmp_path / "u", VEGAS_LAYOUT, tmp_path / "m.parquet", max_bytes=1000)
    assert not (tmp_path / "u").exists() and not (tmp_path / "m.parquet").exists()


def test_a_corrupt_member_is_recorded_and_the_rest_unpacks(tmp_path):
    archive = write_zip(tmp_path / "VEGAS.zip", vegas_members(), evil=False)
    raw = bytearray(archive.read_bytes())
    at = raw.index(clip_bytes("drum", 1)[:32])  # stored uncompressed: flip a byte of its data
    raw[at] ^= 0xFF
    archive.write_bytes(bytes(raw))
    unpack_archive(archive, tmp_path / "u", VEGAS_LAYOUT, tmp_path / "m.parquet")
    table = read_table(tmp_path / "m.parquet").to_pandas().set_index("clip_id")
    assert "Bad CRC" in table.loc["drum__drum_1", "refused"]
    assert (table["refused"] == "").sum() == 5
    assert not list((tmp_path / "u").rglob(".*unpacking"))


def test_ave_layout_labels_by_annotations_with_classes_and_duplicate_policy(tmp_path):
    annotations = tmp_path / "Annotations.txt"
    annotations.write_text("Category&VideoID&Quality&StartTime&EndTime\n"
                           "Bark&aaaaaaaaaaa&good&0&10\nCat&bbbbbbbbbbb&good&2&8\n"
                           "Bark&ccccccccccc&good&0&5\nCat&ccccccccccc&good&5&10\n"  # two events: ambiguous
                           "Violin, fiddle&ddddddddddd&good&0&10\n")  # a music class the paper drops
    members = {f"AVE/{youtube_id * 11}.mp4": clip_bytes(youtube_id, 0) for youtube_id in "abcde"}
    archive = write_zip(tmp_path / "AVE_Dataset.zip", members, evil=False)
    counts = unpack_archive(archive, tmp_path / "u", "AVE/{youtube_id}.mp4", tmp_path / "m.parquet",
                            annotations=annotations, classes=["Bark", "Cat"], duplicates="drop")
    table = read_table(tmp_path / "m.parquet").to_pandas()
    assert dict(zip(table["clip_id"], table["label"], strict=True)) == {"aaaaaaaaaaa": "Bark", "bbbbbbbbbbb": "Cat"}
    assert counts["not_labelled"] == 3  # the ambiguous id, the music class, the id without annotation
    with pytest.raises(ArchiveError, match="has no \\{label\\}: set the dataset's annotations"):
        unpack_archive(archive, tmp_path / "u", "AVE/{youtube_id}.mp4", tmp_path / "m.parquet")


@pytest.mark.parametrize("pattern, message", [
    ("{label}/{name}.mp4", "unknown field"),
    ("{label}/videos.mp4", "exactly one of"),
    ("{clip}/{clip}.mp4", "appears twice"),
])
def test_bad_layouts_are_one_line_errors(pattern, message):
    with pytest.raises(ArchiveError, match=message):
        compile_layout(pattern)


def test_a_file_that_is_no_archive_is_refused(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"plain text")
    with pytest.raises(ArchiveError, match="neither a zip nor a tar"):
        unpack_archive(tmp_path / "x.zip", tmp_path / "u", VEGAS_LAYOUT, tmp_path / "m.parquet")


def test_layout_matching_is_by_whole_path_components():
    pattern = compile_layout(VEGAS_LAYOUT)
    assert pattern.fullmatch("VEGAS/dog/videos/a b.mp4").groupdict() == {"label": "dog", "clip": "a b"}
    assert pattern.fullmatch("VEGAS/dog/extra/videos/a.mp4") is None
    assert pattern.fullmatch("VEGAS/dog/videos/a.mp4.txt") is None



def test_an_archive_dataset_needs_a_layout_but_no_existing_root(tmp_path):
    from avcmr.config import ConfigError, check_dataset

    spec = {"name": "v", "kind": "folder", "archive": str(tmp_path / "VEGAS.zip"), "allow_random_weights": True,
            "backbone_weights": {"vggish": "random", "inception": "random", "seed": 0}}
    with pytest.raises(ConfigError, match="an archive needs a layout"):
        check_dataset(spec)
    check_dataset({**spec, "layout": VEGAS_LAYOUT})  # root is where it will be unpacked: need not exist yet
