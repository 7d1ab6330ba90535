"""Release archives (.zip, .tar, .tar.gz) as the source of a folder dataset: safe unpacking + a layout.

The paper's datasets exist publicly as archives of videos (DATA.md): VEGAS as ``VEGAS.zip``
(``VEGAS/<class>/videos/*.mp4``, names without YouTube ids), AVE as ``AVE_Dataset.zip``
(``AVE/<youtube_id>.mp4``, labelled by ``Annotations.txt``). A *layout* maps member paths to clips:
a pattern over the member path with the fields ``{label}``, ``{clip}`` and ``{youtube_id}``, e.g.
``VEGAS/{label}/videos/{clip}.mp4`` or ``AVE/{youtube_id}.mp4``. Members that do not match it
(read-me files, folders) are skipped and counted.

Unpacking is defensive, as archives are input from elsewhere:

- a member with an absolute path, a ``..`` component, a NUL, or that is a link (symbolic or hard),
  a device or a FIFO is *refused*: not written, and recorded with its reason (a failure row later,
  not a crash). Clips are regular files, so links are refused whether or not they leave the folder;
- ``max_members`` and ``max_bytes`` cap the member count and the declared total size before any
  byte is written, and the bytes actually written are counted against ``max_bytes`` too (a member
  that inflates beyond its declared size stops the unpacking): an archive over a cap is an error;
- a member that cannot be read (bad CRC, truncated) is refused with the reader's message;
- every file is written to a temporary name and renamed into place, with the member's own time as
  its modification time, so unpacking the same archive again changes no file and the folder's
  fingerprint (:mod:`avcmr.data.folder`) stays the same: no shard is recomputed.

The result is a member table (``clip_id, label, path, refused, member``) that the folder listing
reads (:func:`avcmr.data.folder.read_member_table`) instead of walking a directory.
"""

from __future__ import annotations

import calendar
import logging
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa

from avcmr.data.listing import safe_clip_id
from avcmr.data.manifests import AVE_PAPER_CLASSES, ave_listing
from avcmr.io.http_fetch import FileCheckError, is_url, verify_file
from avcmr.io.parquet import write_table

log = logging.getLogger(__name__)

MEMBERS_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("label", pa.string()), ("path", pa.string()), ("refused", pa.string()),
    ("member", pa.string()),
])
LAYOUT_FIELDS = {"label": r"[^/]+", "clip": r"[^/]+", "youtube_id": r"[^/]+"}
DEFAULT_MAX_MEMBERS = 200_000
DEFAULT_MAX_BYTES = 200 * 2**30
UNKNOWN_LABEL = "(unknown)"
_COPY_BYTES = 1 << 20


# Where `snakemake fetch_archives` downloads and unpacks archives (relative to the working folder).
ARCHIVES = "resources/archives"


def local_archive_path(dataset: str, source: str, folder: str = ARCHIVES) -> str:
    """The archive file a dataset unpacks: ``source`` itself, or for a URL the download
    ``fetch_archives`` makes at ``<folder>/<dataset>/download/<file name>``."""
    if not is_url(source):
        return str(source)
    name = Path(urlparse(source).path).name or "archive"
    return f"{folder}/{dataset}/download/{name}"


class ArchiveError(ValueError):
    """An archive that cannot be used as a whole (unreadable, over a cap, bad layout); one line."""


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, other
    size: int
    mtime: float


def compile_layout(pattern: str) -> re.Pattern:
    """The regex of a layout pattern; it must name the clip (``{clip}`` or ``{youtube_id}``)."""
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        elif part not in LAYOUT_FIELDS:
            raise ArchiveError(f"layout {pattern!r}: unknown field {{{part}}}; use {sorted(LAYOUT_FIELDS)}")
        elif f"(?P<{part}>" in regex:
            raise ArchiveError(f"layout {pattern!r}: field {{{part}}} appears twice")
        else:
            regex += f"(?P<{part}>{LAYOUT_FIELDS[part]})"
    compiled = re.compile(regex)
    if ("clip" in compiled.groupindex) == ("youtube_id" in compiled.groupindex):
        raise ArchiveError(f"layout {pattern!r}: name the clip with exactly one of {{clip}} or {{youtube_id}}")
    return compiled


def refusal(member: Member) -> str:
    """Why ``member`` may not be unpacked ('' when it may)."""
    name = member.name.replace("\\", "/")
    if "\x00" in name:
        return "refused archive member: NUL in its name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"refused archive member {member.name!r}: absolute path"
    if ".." in PurePosixPath(name).parts:
        return f"refused archive member {member.name!r}: '..' in its path (it would land outside the folder)"
    if member.kind in ("symlink", "hardlink"):
        what = "symbolic link" if member.kind == "symlink" else "hard link"
        return f"refused archive member {member.name!r}: a {what} (clips are regular files)"
    if member.kind == "other":
        return f"refused archive member {member.name!r}: not a regular file (device, FIFO, ...)"
    return ""


class _Reader:
    """The members of a zip or tar(.gz/.bz2/.xz) archive and a way to read each, uniformly."""

    def __init__(self, path: Path):
        self.path = path
        if zipfile.is_zipfile(path):
            self.zip, self.tar = zipfile.ZipFile(path), None
        elif tarfile.is_tarfile(path):
            self.zip, self.tar = None, tarfile.open(path, "r:*")
        else:
            raise ArchiveError(f"{path} is neither a zip nor a tar archive")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        (self.zip or self.tar).close()

    def members(self) -> Iterator[tuple[Member, object]]:
        if self.zip is not None:
            for info in self.zip.infolist():
                mode = info.external_attr >> 16
                if info.is_dir():
                    kind = "dir"
                elif stat.S_ISLNK(mode):
                    kind = "symlink"
                elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # zips often carry no file type
                    kind = "other"
                else:
                    kind = "file"
                mtime = calendar.timegm((*info.date_time, 0, 0, 0))
                yield Member(info.filename, kind, info.file_size, mtime), info
        else:
            for info in self.tar:
                kind = ("dir" if info.isdir() else "symlink" if info.issym() else "hardlink" if info.islnk()
                        else "file" if info.isfile() else "other")
                yield Member(info.name, kind, info.size, info.mtime), info

    def open(self, info):
        return self.zip.open(info) if self.zip is not None else self.tar.extractfile(info)


def archive_labels(annotations: str | Path, classes: Sequence[str] | None, duplicates: str) -> dict[str, str]:
    """YouTube id → label of an AVE ``Annotations.txt``, with the paper's classes and duplicate policy
    (:func:`avcmr.data.manifests.ave_listing`)."""
    listing = ave_listing(annotations, AVE_PAPER_CLASSES if classes is None else classes, duplicates)
    return dict(zip(listing.clips["youtube_id"], listing.clips["label"], strict=True))


def unpack_archive(archive: str | Path, dest: str | Path, layout: str, members_out: str | Path,
                   annotations: str | Path | None = None, classes: Sequence[str] | None = None,
                   duplicates: str = "drop", max_members: int = DEFAULT_MAX_MEMBERS,
                   max_bytes: int = DEFAULT_MAX_BYTES, provenance: Mapping | None = None) -> dict[str, int]:
    """Unpack the members of ``archive`` that match ``layout`` into ``dest``; write the member table.

    Labels come from the layout's ``{label}``, else (``{youtube_id}`` layouts) from ``annotations``.
    Returns the counts (also in the table's metadata).
    """
    pattern = compile_layout(layout)
    if "label" not in pattern.groupindex and annotations is None:
        raise ArchiveError(f"layout {layout!r} has no {{label}}: set the dataset's annotations (AVE: Annotations.txt)")
    labels = archive_labels(annotations, classes, duplicates) if "label" not in pattern.groupindex else None
    dest = Path(dest)
    counts = {"members": 0, "unpacked": 0, "already_there": 0, "refused": 0, "not_in_layout": 0, "not_labelled": 0}
    rows: list[dict[str, str]] = []
    with _Reader(Path(archive)) as reader:
        members = list(reader.members())
        check_caps(members, archive, max_members, max_bytes)
        written = 0
        for member, info in members:
            counts["members"] += 1
            if member.kind == "dir":
                continue
            reason = refusal(member)
            match = pattern.fullmatch(member.name.replace("\\", "/"))
            if match is None and not reason:
                counts["not_in_layout"] += 1
                continue
            clip_id, label = _clip_of(match, labels, member.name)
            if label is None and not reason:
                counts["not_labelled"] += 1
                continue
            target = dest / PurePosixPath(member.name.replace("\\", "/"))
            if not reason:
                try:
                    if _unchanged(target, member):
                        counts["already_there"] += 1
                    else:
                        written += _extract(reader, info, member, target, max_bytes - written)
                        counts["unpacked"] += 1
                except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as error:
                    reason = f"unreadable archive member {member.name!r}: {error}"
            if reason:
                counts["refused"] += 1
                log.warning("%s", reason)
            rows.append({"clip_id": clip_id, "label": label or UNKNOWN_LABEL, "path": "" if reason else str(target),
                         "refused": reason, "member": member.name})
    table = pd.DataFrame(rows, columns=MEMBERS_SCHEMA.names)
    duplicated = table["clip_id"].duplicated(keep="first")
    if duplicated.any():  # refuse later members whose clip id is taken (two names sanitised alike)
        table.loc[duplicated & (table["refused"] == ""), "refused"] = "refused archive member: its clip id is taken"
        table.loc[duplicated, "clip_id"] = [f"{c}__member{i}" for i, c in zip(table.index[duplicated],
                                                                             table["clip_id"][duplicated], strict=True)]
    if (table["refused"] == "").sum() == 0:
        raise ArchiveError(f"{archive}: no member matches the layout {layout!r} ({counts})")
    write_table(pa.Table.from_pandas(table, preserve_index=False), members_out, MEMBERS_SCHEMA, provenance,
                archive_counts=counts)
    log.info("unpacked %s into %s: %s", archive, dest, counts)
    return counts


def check_caps(members: Sequence[tuple[Member, object]], archive, max_members: int, max_bytes: int) -> None:
    if len(members) > max_members:
        raise ArchiveError(f"{archive} has {len(members)} members, over the cap of {max_members} "
                           "(archive_limits.max_members)")
    declared = sum(member.size for member, _ in members if member.kind == "file")
    if declared > max_bytes:
        raise ArchiveError(f"{archive} declares {declared} bytes, over the cap of {max_bytes} "
                           "(archive_limits.max_bytes)")


def _clip_of(match, labels: Mapping[str, str] | None, name: str) -> tuple[str, str | None]:
    if match is None:  # a refused member outside the layout: named after its path
        return safe_clip_id(f"member__{name}"), UNKNOWN_LABEL
    fields = match.groupdict()
    if "youtube_id" in fields:
        youtube_id = fields["youtube_id"]
        label = fields.get("label") or (labels or {}).get(youtube_id)
        return safe_clip_id(youtube_id), label
    return safe_clip_id(f"{fields['label']}__{fields['clip']}"), fields["label"]


def _unchanged(target: Path, member: Member) -> bool:
    """An earlier unpacking left this very member (same size, same time): leave it."""
    if not target.is_file():
        return False
    info = target.stat()
    return info.st_size == member.size and int(info.st_mtime) == int(member.mtime)


def _extract(reader: _Reader, info, member: Member, target: Path, bytes_left: int) -> int:
    """Copy one member to ``target`` (temporary name, then rename), stopping at ``bytes_left``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.unpacking")
    copied = 0
    try:
        with reader.open(info) as source, open(temporary, "wb") as sink:
            while block := source.read(_COPY_BYTES):
                copied += len(block)
                if copied > bytes_left:
                    raise ArchiveError(f"{reader.path}: member {member.name!r} inflates beyond the cap on unpacked "
                                       "bytes (archive_limits.max_bytes)")
                sink.write(block)
        os.utime(temporary, (member.mtime, member.mtime))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return copied


def unpack_dataset_archive(archive: str | Path, spec: Mapping, dest: str | Path, members_out: str | Path,
                           provenance: Mapping | None = None) -> dict[str, int]:
    """Check (config ``archive_sha256`` / ``archive_bytes``) and unpack a folder dataset's archive."""
    try:
        verify_file(archive, spec.get("archive_bytes"), {"sha256": spec.get("archive_sha256")})
    except FileCheckError as error:
        raise ArchiveError(f"{error}; fix archive_sha256 / archive_bytes or replace the file") from None
    limits = spec.get("archive_limits", {})
    return unpack_archive(archive, dest, spec["layout"], members_out, spec.get("annotations"), spec.get("classes"),
                          spec.get("duplicates", "drop"), limits.get("max_members", DEFAULT_MAX_MEMBERS),
                          limits.get("max_bytes", DEFAULT_MAX_BYTES), provenance)
