"""Clip lists of the paper's YouTube datasets (VEGAS, AVE) as one table: what to download, and its label.

Every parser returns a :class:`Listing`: ``clips`` with the columns of :data:`LISTING_COLUMNS`
(``clip_id, youtube_id, start_s, end_s, label``; the window is in seconds of the YouTube video)
and ``counts``, the numbers behind every row that was dropped, for the log and the report.

AVE (Tian et al. 2018): ``Annotations.txt`` lines ``class&youtube_id&quality&start&end``, where
start/end is the annotated event inside the 10-s AVE clip. The paper keeps 15 classes
(:data:`AVE_PAPER_CLASSES`). The file does not say where the 10-s clip sits inside its YouTube
video; AVE clips come from AudioSet, so AudioSet's segment lists (``YTID, start_seconds, ...``)
give that offset when configured (:func:`read_audioset_segments`); otherwise the offset is 0.

VEGAS (Zhou et al. 2018): a table (CSV, TSV or Parquet) with ``youtube_id, start_s, end_s, label``
and optionally ``clip_id``.

Repeated keys (an AVE YouTube id listed twice, a VEGAS clip id listed twice) follow one documented
policy, :data:`DUPLICATE_POLICIES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

LISTING_COLUMNS = ["clip_id", "youtube_id", "start_s", "end_s", "label"]
# results/{dataset}/listing.parquet (youtube_id and the window are null for folder/synthetic datasets).
LISTING_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("youtube_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("label", pa.string()), ("shard", pa.int32()),
])

# The 15 non-music AVE classes the paper keeps (DATA.md).
AVE_PAPER_CLASSES = (
    "Clock", "Motorcycle", "Train horn", "Bark", "Cat", "Bus", "Rodents, rats, mice", "Toilet flush",
    "Acoustic guitar", "Frying (food)", "Chainsaw", "Horse", "Helicopter", "Baby cry, infant cry", "Truck",
)
AVE_CLIP_SECONDS = 10.0

DUPLICATE_POLICIES = {
    "drop": "drop every row of a key listed more than once among the kept classes (its label is ambiguous)",
    "drop_any": "drop every row of a key listed more than once anywhere in the file, other classes included",
    "first": "keep the first row of each repeated key",
}
WINDOWS = {
    "clip": "the whole clip: [offset, offset + clip_seconds)",
    "event": "the annotated event only: [offset + start, offset + end) (AVE)",
}


class ManifestError(ValueError):
    """A manifest that cannot be read as documented; the message says what is wrong and where."""


@dataclass
class Listing:
    clips: pd.DataFrame
    counts: dict[str, object] = field(default_factory=dict)


def clip_id_for(youtube_id: str, start_s: float, end_s: float) -> str:
    """``<youtube id>_<start ms>_<end ms>``: unique per window, safe in file names."""
    return f"{youtube_id}_{int(round(start_s * 1000))}_{int(round(end_s * 1000))}"


def apply_duplicate_policy(rows: pd.DataFrame, key: str, policy: str,
                           all_keys: Iterable[str] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows with each ``key`` value at most once, following ``policy`` (:data:`DUPLICATE_POLICIES`).

    ``all_keys``: the keys of the whole file before any class filter (for ``drop_any``).
    """
    if policy not in DUPLICATE_POLICIES:
        raise ManifestError(f"unknown duplicates policy {policy!r}; choose one of {sorted(DUPLICATE_POLICIES)}")
    repeated = rows[key].duplicated(keep=False)
    counts = {"repeated_keys": int(rows.loc[repeated, key].nunique()), "rows_with_repeated_key": int(repeated.sum())}
    if policy == "first":
        keep = ~rows[key].duplicated(keep="first")
    elif policy == "drop":
        keep = ~repeated
    else:
        everywhere = pd.Series(list(all_keys if all_keys is not None else rows[key]))
        repeated_anywhere = set(everywhere[everywhere.duplicated(keep=False)])
        counts["keys_repeated_in_whole_file"] = len(repeated_anywhere)
        keep = ~rows[key].isin(repeated_anywhere)
    counts["dropped_as_duplicates"] = int((~keep).sum())
    return rows[keep].reset_index(drop=True), counts


def read_ave_annotations(path: str | Path) -> pd.DataFrame:
    """All lines of an AVE ``Annotations.txt``: ``label, youtube_id, quality, event_start_s, event_end_s``.

    A header line (``Category&VideoID&...``, as in the AVE release) is skipped; any other line that
    does not have five ``&``-separated fields with numeric times is an error naming the line.
    """
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("&")
        if len(fields) != 5:
            raise ManifestError(f"{path}:{number}: expected class&youtube_id&quality&start&end, got {line!r}")
        try:
            start, end = float(fields[3]), float(fields[4])
        except ValueError:
            if number == 1:  # header
                continue
            raise ManifestError(f"{path}:{number}: start/end are not numbers in {line!r}") from None
        rows.append((fields[0].strip(), fields[1].strip(), fields[2].strip(), start, end))
    return pd.DataFrame(rows, columns=["label", "youtube_id", "quality", "event_start_s", "event_end_s"])


def read_audioset_segments(paths: Sequence[str | Path]) -> dict[str, float]:
    """YouTube id → start of its AudioSet segment (s), from AudioSet segment CSVs.

    Format: ``#`` comment lines, then ``YTID, start_seconds, end_seconds, "labels"``. An id listed in
    several files keeps its first start.
    """
    offsets: dict[str, float] = {}
    for path in paths:
        table = pd.read_csv(path, comment="#", header=None, skipinitialspace=True, quotechar='"',
                            names=["youtube_id", "start_s", "end_s", "labels"], dtype={"youtube_id": str})
        for youtube_id, start in zip(table["youtube_id"], table["start_s"], strict=True):
            offsets.setdefault(str(youtube_id).strip(), float(start))
    return offsets


def ave_listing(path: str | Path, classes: Sequence[str] | None = AVE_PAPER_CLASSES, duplicates: str = "drop",
                window: str = "clip", clip_seconds: float = AVE_CLIP_SECONDS,
                offsets: Mapping[str, float] | None = None) -> Listing:
    """The AVE clips to fetch, one per kept YouTube id (see the module doc for windows and offsets)."""
    if window not in WINDOWS:
        raise ManifestError(f"unknown AVE window {window!r}; choose one of {sorted(WINDOWS)}")
    lines = read_ave_annotations(path)
    counts: dict[str, object] = {"lines": len(lines)}
    if classes is not None:
        unknown = sorted(set(classes) - set(lines["label"]))
        if unknown:
            raise ManifestError(f"{path}: no lines for the configured classes {unknown}")
        rows = lines[lines["label"].isin(list(classes))].reset_index(drop=True)
    else:
        rows = lines
    counts["in_classes"] = len(rows)
    rows, duplicate_counts = apply_duplicate_policy(rows, "youtube_id", duplicates, lines["youtube_id"])
    counts.update(duplicate_counts)
    if window == "event":
        empty = rows["event_end_s"] <= rows["event_start_s"]
        counts["dropped_empty_event"] = int(empty.sum())
        rows = rows[~empty].reset_index(drop=True)
    offsets = offsets or {}
    offset = rows["youtube_id"].map(offsets)
    counts["with_segment_offset"] = int(offset.notna().sum())
    offset = offset.fillna(0.0).astype(float)
    if window == "clip":
        start, end = offset, offset + clip_seconds
    else:
        start, end = offset + rows["event_start_s"], offset + rows["event_end_s"]
    clips = pd.DataFrame({"youtube_id": rows["youtube_id"], "start_s": start.astype(float),
                          "end_s": end.astype(float), "label": rows["label"]})
    clips.insert(0, "clip_id", [clip_id_for(*r) for r in clips[["youtube_id", "start_s", "end_s"]].itertuples(index=False)])
    counts["kept"] = len(clips)
    return Listing(clips[LISTING_COLUMNS], counts)


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip())


def read_table_file(path: str | Path) -> pd.DataFrame:
    """A CSV, TSV or Parquet table, chosen by the file's suffix."""
    path = Path(path)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".parquet"):
        return pd.read_parquet(path)
    sep = "\t" if suffixes.endswith((".tsv", ".tsv.gz", ".txt")) else ","
    return pd.read_csv(path, sep=sep, comment="#", skipinitialspace=True, dtype={"youtube_id": str, "clip_id": str})


def vegas_listing(path: str | Path, classes: Sequence[str] | None = None, duplicates: str = "drop") -> Listing:
    """The VEGAS clips from a manifest table (``youtube_id, start_s, end_s, label`` [, ``clip_id``])."""
    table = read_table_file(path)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("youtube_id", "start_s", "end_s", "label") if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: manifest lacks the columns {missing} (has {list(table.columns)})")
    counts: dict[str, object] = {"lines": len(table)}
    table = table.assign(youtube_id=table["youtube_id"].astype(str).str.strip(),
                         label=table["label"].astype(str).str.strip(),
                         start_s=pd.to_numeric(table["start_s"], errors="coerce"),
                         end_s=pd.to_numeric(table["end_s"], errors="coerce"))
    bad = table["start_s"].isna() | table["end_s"].isna() | (table["end_s"] <= table["start_s"])
    counts["dropped_bad_window"] = int(bad.sum())
    derived = pd.Series([clip_id_for(y, s, e) if not b else "" for y, s, e, b in
                         zip(table["youtube_id"], table["start_s"], table["end_s"], bad, strict=True)],
                        index=table.index)
    given = table["clip_id"] if "clip_id" in table.columns else pd.Series(np.nan, index=table.index)
    # Clip ids name media files: anything but letters, digits, '_', '-', '.' becomes '_'.
    table["clip_id"] = given.where(given.notna(), derived).astype(str).map(_safe_id)
    all_keys = table["clip_id"].tolist()
    table = table[~bad].reset_index(drop=True)
    if classes is not None:
        table = table[table["label"].isin(list(classes))].reset_index(drop=True)
    counts["in_classes"] = len(table)
    table, duplicate_counts = apply_duplicate_policy(table, "clip_id", duplicates, all_keys)
    counts.update(duplicate_counts)
    counts["kept"] = len(table)
    return Listing(table[LISTING_COLUMNS].astype({"start_s": float, "end_s": float}), counts)


def limit_clips(listing: Listing, max_clips: int | None, seed: int = 0) -> Listing:
    """At most ``max_clips`` clips, drawn per class in proportion to its size (seeded), in listing order."""
    clips = listing.clips
    if max_clips is None or len(clips) <= max_clips:
        return listing
    rng = np.random.default_rng(seed)
    shares = clips["label"].value_counts().sort_index() / len(clips) * max_clips
    quota = np.floor(shares).astype(int)
    quota[(shares - quota).sort_values(ascending=False).index[: max_clips - int(quota.sum())]] += 1
    chosen = np.concatenate([
        rng.choice(clips.index[clips["label"] == label].to_numpy(), int(quota[label]), replace=False)
        for label in quota.index
    ])
    counts = {**listing.counts, "kept_before_limit": len(clips), "kept": int(max_clips)}
    return Listing(clips.loc[np.sort(chosen)].reset_index(drop=True), counts)


def dataset_listing(spec: Mapping, manifest_path: str | Path,
                    segment_paths: Sequence[str | Path] = ()) -> Listing:
    """The listing of a ``vegas`` or ``ave`` dataset spec (config ``datasets.<name>``) from local files."""
    kind = spec["kind"]
    if kind == "ave":
        offsets = read_audioset_segments(segment_paths) if segment_paths else None
        classes = spec.get("classes", list(AVE_PAPER_CLASSES))
        listing = ave_listing(manifest_path, classes, spec.get("duplicates", "drop"), spec.get("window", "clip"),
                              float(spec.get("clip_seconds", AVE_CLIP_SECONDS)), offsets)
    elif kind == "vegas":
        listing = vegas_listing(manifest_path, spec.get("classes"), spec.get("duplicates", "drop"))
    else:
        raise ManifestError(f"dataset kind {kind!r} has no YouTube manifest")
    listing = limit_clips(listing, spec.get("max_clips"), int(spec.get("split", {}).get("seed", 0)))
    listing.counts["per_class"] = listing.clips["label"].value_counts().sort_index().to_dict()
    return listing


def is_url(text: str) -> bool:
    return str(text).startswith(("http://", "https://", "ftp://"))


def file_sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_sha256(path: str | Path, expected: str | None) -> None:
    """Raise :class:`ManifestError` when ``expected`` is set and the file's sha256 differs."""
    if expected and file_sha256(path) != expected.lower():
        raise ManifestError(f"{path} has sha256 {file_sha256(path)}, the config expects {expected}: "
                            "a different version of the list (re-download it, or update the configured sha256)")


def fetch_source(url: str, path: str | Path, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download a manifest (or AudioSet segment list) to ``path`` atomically, checking ``sha256`` when set.

    Offline, the error says which file to place where.
    """
    import os
    import urllib.error
    import urllib.request

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            partial.write_bytes(response.read())
        check_sha256(partial, sha256)
        os.replace(partial, path)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise ManifestError(f"could not download {url} ({error}); without internet, download it elsewhere and "
                            f"place it at {path} (or set the dataset's manifest to a local path)") from None
    finally:
        partial.unlink(missing_ok=True)
    return path
