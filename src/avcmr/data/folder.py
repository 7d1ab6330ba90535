"""A user's own clips: ``<root>/<label>/<clip>.<ext>`` → a clip listing with sanitised ids and stable shards.

The listing is the one source of shard membership. It is made at the start of every Snakemake
invocation and records each file's size and modification time, so the per-shard member lists
(a rule parameter, hence a rerun trigger) change exactly when the folder's content does.

A clip's shard is a hash of its id modulo the number of shards, not its position in the sorted
listing: adding or removing a clip changes the members of one shard only, so the other shards'
features are neither recomputed nor changed. The number of shards is ``n_shards`` when configured
(then fixed for good), else the clips divided by ``shard_size``, rounded up; when that count crosses
a multiple of ``shard_size`` every shard changes, which is why a growing folder should set it.

A folder can also be what a release archive unpacked into (:mod:`avcmr.data.archive`): its member
table then replaces the directory walk (the layout maps member paths to clips and labels) and the
members the unpacking refused are listed with their reason, to become failure rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from avcmr.data.listing import safe_clip_id
from avcmr.io.parquet import read_table

DEFAULT_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov", "m4v")
# The columns of one shard's member list (config-independent, JSON-serialisable: a rule parameter).
MEMBER_COLUMNS = ["clip_id", "label", "path", "size", "mtime_ns", "refused"]


def list_folder(root: str | Path, extensions=DEFAULT_EXTENSIONS) -> pd.DataFrame:
    """One row per clip (``clip_id, label, path``), sorted; ids are ``<label>__<stem>`` made filesystem-safe."""
    root = Path(root)
    suffixes = {f".{ext.lower().lstrip('.')}" for ext in extensions}
    rows = []
    for path in sorted(root.glob("*/*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            label = path.parent.name
            rows.append({"clip_id": safe_clip_id(f"{label}__{path.stem}"), "label": label,
                         "path": str(path.resolve())})
    listing = pd.DataFrame(rows, columns=["clip_id", "label", "path"])
    check_unique_ids(listing)
    if listing.empty:
        raise ValueError(f"no clips with extensions {sorted(suffixes)} under {root}/<label>/")
    return listing


def check_unique_ids(listing: pd.DataFrame) -> None:
    duplicated = listing["clip_id"][listing["clip_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"clip ids collide after sanitising file names: {duplicated[:5]}")


def shard_of(clip_id: str, n_shards: int) -> int:
    """Stable shard of a clip: the first 8 bytes of sha256(clip id) modulo ``n_shards``
    (Python's ``hash`` of a string changes between processes)."""
    return int.from_bytes(hashlib.sha256(clip_id.encode()).digest()[:8], "big") % n_shards


def n_folder_shards(n_clips: int, shard_size: int, configured: int | None = None) -> int:
    return int(configured) if configured else max(1, math.ceil(n_clips / shard_size))


def with_fingerprint(listing: pd.DataFrame) -> pd.DataFrame:
    """``listing`` + each file's ``size`` and ``mtime_ns`` (0 for refused archive members)."""
    sizes, mtimes = [], []
    for path, refused in zip(listing["path"], listing.get("refused", [""] * len(listing)), strict=True):
        if refused:
            sizes.append(0)
            mtimes.append(0)
            continue
        stat = Path(path).stat()
        sizes.append(int(stat.st_size))
        mtimes.append(int(stat.st_mtime_ns))
    return listing.assign(size=sizes, mtime_ns=mtimes)


def list_folder_dataset(spec: Mapping, members_table: str | Path | None = None) -> pd.DataFrame:
    """Every clip of a folder dataset (config ``datasets.<name>``) with its shard and file fingerprint.

    ``members_table``: the member table of the dataset's unpacked archive (``archive:`` set); its
    ``refused`` members are listed too (with the reason), so that they become failure rows.
    """
    if members_table is not None:
        listing = read_member_table(members_table)
    else:
        listing = list_folder(spec["root"], spec.get("extensions", DEFAULT_EXTENSIONS)).assign(refused="")
    n_shards = n_folder_shards(len(listing), spec["features"]["shard_size"], spec.get("n_shards"))
    listing = with_fingerprint(listing)
    listing["shard"] = [shard_of(clip_id, n_shards) for clip_id in listing["clip_id"]]
    listing.attrs["n_shards"] = n_shards
    return listing


def read_member_table(path: str | Path) -> pd.DataFrame:
    """An unpacked archive's member table (:func:`avcmr.data.archive.unpack_archive`) as the listing
    uses it: ``clip_id, label, path, refused``."""
    return read_table(path, ["clip_id", "label", "path", "refused"]).to_pandas()


def shard_members(listing: pd.DataFrame, shard: int) -> list[dict]:
    """The member list of one shard (clip ids, labels, paths, sizes, mtimes, refusals), sorted by id."""
    rows = listing[listing["shard"] == shard].sort_values("clip_id")
    return rows[MEMBER_COLUMNS].to_dict("records")


def content_fingerprint(listing: pd.DataFrame) -> str:
    """sha256 of the whole member list: changes when a file is added, removed, resized or touched."""
    text = listing.sort_values("clip_id")[MEMBER_COLUMNS + ["shard"]].to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()
