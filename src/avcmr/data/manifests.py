"""Clip lists of the YouTube datasets (VEGAS, AVE, AudioSet subsets, VGGSound) as one table: what to
download, and its label.

Every parser returns a :class:`~avcmr.data.listing.Listing`: ``clips`` with the columns of
:data:`~avcmr.data.listing.LISTING_COLUMNS` (``clip_id, youtube_id, start_s, end_s, label``; the
window is in seconds of the YouTube video), optionally ``split`` (the list's own train/test split)
and ``skip_reason`` (why a listed clip cannot be fetched); ``counts``, the numbers behind every row
that was dropped, for the log and the report; and ``notes``, caveats the acquisition summary repeats.

AVE (Tian et al. 2018): ``Annotations.txt`` lines ``class&youtube_id&quality&start&end``, where
start/end is the annotated event inside the 10-s AVE clip. The paper keeps 15 classes
(:data:`AVE_PAPER_CLASSES`). The file does not say where the 10-s clip sits inside its YouTube
video; AVE clips are AudioSet segments, so AudioSet's segment lists give that offset
(:mod:`avcmr.data.audioset`). An id without a segment is listed with a ``skip_reason`` and no
window: it becomes a failure row, never a fetch of the video's first 10 s.

VEGAS (Zhou et al. 2018): a table (CSV, TSV or Parquet) with ``youtube_id, start_s, end_s, label``
and optionally ``clip_id``.

AudioSet subsets (``kind: audioset``): segments chosen by label id (:func:`avcmr.data.audioset.audioset_listing`).

VGGSound (Chen et al. 2020): ``vggsound.csv``, no header, ``youtube_id,start_seconds,label,split``;
each clip is the 10 s from ``start_seconds``; ``split`` (train/test) is kept in the listing.

Repeated keys (an AVE YouTube id listed twice, a VEGAS clip id listed twice) follow one documented
policy, :data:`avcmr.data.listing.DUPLICATE_POLICIES`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from avcmr.data.audioset import AUDIOSET_SEGMENT_URLS, audioset_listing, read_audioset_segments
from avcmr.data.listing import (
    LISTING_COLUMNS,
    Listing,
    ManifestError,
    apply_duplicate_policy,
    clip_id_for,
    clip_ids_for,
    safe_clip_id,
)
from avcmr.io.checksums import file_digest
from avcmr.io.http_fetch import FetchError, FileCheckError, fetch_file, is_url
from avcmr.io.parquet import atomic_path

# Dataset kinds whose clips are fetched from YouTube by a listing (and the list files they read).
YOUTUBE_KINDS = ("vegas", "ave", "audioset", "vggsound")
SEGMENT_KINDS = ("ave", "audioset")  # read AudioSet segment CSVs
VGGSOUND_CLIP_SECONDS = 10.0
LISTED_SPLITS = ("train", "test")

# The 15 non-music AVE classes the paper keeps (DATA.md).
AVE_PAPER_CLASSES = (
    "Clock", "Motorcycle", "Train horn", "Bark", "Cat", "Bus", "Rodents, rats, mice", "Toilet flush",
    "Acoustic guitar", "Frying (food)", "Chainsaw", "Horse", "Helicopter", "Baby cry, infant cry", "Truck",
)
AVE_CLIP_SECONDS = 10.0

WINDOWS = {
    "clip": "the whole clip: [offset, offset + clip_seconds)",
    "event": "the annotated event only: [offset + start, offset + end) (AVE)",
}


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


def no_segment_reason(youtube_id: str) -> str:
    return f"no AudioSet segment for id {youtube_id} in the segment lists: its window is unknown (not fetched)"


def ave_listing(path: str | Path, classes: Sequence[str] | None = AVE_PAPER_CLASSES, duplicates: str = "drop",
                window: str = "clip", clip_seconds: float = AVE_CLIP_SECONDS,
                offsets: Mapping[str, float] | None = None) -> Listing:
    """The AVE clips to fetch, one per kept YouTube id.

    ``offsets``: YouTube id → start of its 10-s clip in the video (AudioSet segments). An id
    missing from it is listed without a window and with a ``skip_reason``. ``None`` means the
    clips are the 10-s files themselves (offset 0), as in the AVE release archive.
    """
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
    if offsets is None:
        offset = pd.Series(0.0, index=rows.index)
    else:
        offset = rows["youtube_id"].map(offsets).astype(float)
        counts["with_segment_offset"] = int(offset.notna().sum())
        counts["without_segment"] = int(offset.isna().sum())
    if window == "clip":
        start, end = offset, offset + clip_seconds
    else:
        start, end = offset + rows["event_start_s"], offset + rows["event_end_s"]
    clips = pd.DataFrame({"youtube_id": rows["youtube_id"], "start_s": start.astype(float),
                          "end_s": end.astype(float), "label": rows["label"]})
    placed = offset.notna()
    # Without a window the id alone names the clip (unique after the duplicate policy).
    clips.insert(0, "clip_id", [clip_id_for(y, s, e) if ok else y for y, s, e, ok in
                                zip(clips["youtube_id"], clips["start_s"], clips["end_s"], placed, strict=True)])
    clips["skip_reason"] = [None if ok else no_segment_reason(y) for y, ok in zip(clips["youtube_id"], placed, strict=True)]
    counts["kept"] = len(clips)
    return Listing(clips[[*LISTING_COLUMNS, "skip_reason"]], counts)


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
    table["clip_id"] = given.where(given.notna(), derived).astype(str).str.strip().map(safe_clip_id)
    all_keys = table["clip_id"].tolist()
    table = table[~bad].reset_index(drop=True)
    if classes is not None:
        table = table[table["label"].isin(list(classes))].reset_index(drop=True)
    counts["in_classes"] = len(table)
    table, duplicate_counts = apply_duplicate_policy(table, "clip_id", duplicates, all_keys)
    counts.update(duplicate_counts)
    counts["kept"] = len(table)
    return Listing(table[LISTING_COLUMNS].astype({"start_s": float, "end_s": float}), counts)


def vggsound_listing(path: str | Path, classes: Sequence[str] | None = None, duplicates: str = "drop",
                     clip_seconds: float = VGGSOUND_CLIP_SECONDS) -> Listing:
    """The VGGSound clips of ``vggsound.csv`` (no header: ``youtube_id,start_seconds,label,split``).

    Each clip is ``[start, start + clip_seconds)``; the file's ``split`` (train/test) is kept. A
    header line is skipped; a line with a negative or non-numeric start is dropped (counted); a
    split other than train/test is an error naming the line. Repeated clip ids follow ``duplicates``.
    """
    try:
        # One spare column: a line with a fifth field lands there instead of shifting the others.
        table = pd.read_csv(path, header=None, names=["youtube_id", "start_s", "label", "split", "extra"],
                            dtype=str, keep_default_na=False, skipinitialspace=True, engine="c")
    except pd.errors.EmptyDataError:
        raise ManifestError(f"{path}: empty file (expected youtube_id,start_seconds,label,split lines)") from None
    except pd.errors.ParserError as error:
        raise ManifestError(f"{path}: not a VGGSound list ({str(error).strip().splitlines()[0]})") from None
    if len(table) and table.iloc[0]["youtube_id"].strip().lower() in ("youtube_id", "ytid", "# youtube_id"):
        table = table.iloc[1:]  # a header line, as in some copies of the file
    counts: dict[str, object] = {"lines": len(table)}
    extra = table["extra"].fillna("") != ""
    if extra.any():
        line = int(table.index[extra.to_numpy()][0]) + 1
        raise ManifestError(f"{path}:{line}: expected youtube_id,start_seconds,label,split, got more fields "
                            "(is a label with a comma unquoted?)")
    table = table.assign(youtube_id=table["youtube_id"].str.strip(), label=table["label"].str.strip(),
                         split=table["split"].str.strip().str.lower())
    wrong_split = ~table["split"].isin(LISTED_SPLITS)
    if wrong_split.any():
        line = int(table.index[wrong_split.to_numpy()][0]) + 1
        raise ManifestError(f"{path}:{line}: expected youtube_id,start_seconds,label,split with split train or "
                            f"test; {int(wrong_split.sum())} lines are not (first: {table.iloc[:, :4].loc[line - 1].tolist()})")
    start = pd.to_numeric(table["start_s"], errors="coerce")
    bad = start.isna() | (start < 0) | (table["youtube_id"] == "")
    counts["dropped_bad_window"] = int(bad.sum())
    table = table.assign(start_s=start.astype(float), end_s=start.astype(float) + clip_seconds)
    all_keys = clip_ids_for(table["youtube_id"], table["start_s"].fillna(0.0), table["end_s"].fillna(0.0))
    table = table.assign(clip_id=all_keys)[~bad.to_numpy()].reset_index(drop=True)
    if classes is not None:
        unknown = sorted(set(classes) - set(table["label"]))
        if unknown:
            raise ManifestError(f"{path}: no lines for the configured classes {unknown}")
        table = table[table["label"].isin(list(classes))].reset_index(drop=True)
    counts["in_classes"] = len(table)
    table, duplicate_counts = apply_duplicate_policy(table, "clip_id", duplicates, all_keys)
    counts.update(duplicate_counts)
    counts["kept"] = len(table)
    counts["listed_split"] = table["split"].value_counts().sort_index().to_dict()
    return Listing(table[[*LISTING_COLUMNS, "split"]], counts)


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


def segment_sources(spec: Mapping) -> list[str]:
    """The AudioSet segment CSVs (paths or URLs) of an ``ave`` / ``audioset`` spec: its ``segments``,
    by default the official lists; none for the other kinds."""
    if spec["kind"] not in SEGMENT_KINDS:
        return []
    segments = spec.get("segments")
    segments = list(AUDIOSET_SEGMENT_URLS if segments is None else segments)
    if not segments:
        raise ManifestError(
            f"kind {spec['kind']} takes each clip's window from AudioSet's segment CSVs, but segments: is "
            "empty; leave it out for the official lists, or give local copies")
    return segments


def dataset_listing(spec: Mapping, manifest_path: str | Path | None,
                    segment_paths: Sequence[str | Path] = (), cache_dir: str | Path | None = None) -> Listing:
    """The listing of a YouTube dataset spec (config ``datasets.<name>``, kind in :data:`YOUTUBE_KINDS`)
    from local files: its manifest (vegas, ave, vggsound) and AudioSet segment CSVs (ave, audioset).

    ``cache_dir``: where parsed segment CSVs are kept (:func:`avcmr.data.audioset.segment_table`).
    """
    kind = spec["kind"]
    duplicates = spec.get("duplicates", "drop")
    seed = int(spec.get("split", {}).get("seed", 0))
    if kind in SEGMENT_KINDS and not segment_paths:
        raise ManifestError(f"kind {kind} needs AudioSet segment CSVs (segments:)")
    if kind == "ave":
        classes = spec.get("classes", list(AVE_PAPER_CLASSES))
        youtube_ids = read_ave_annotations(manifest_path)["youtube_id"].unique()
        offsets = read_audioset_segments(segment_paths, youtube_ids, cache_dir)
        listing = ave_listing(manifest_path, classes, duplicates, spec.get("window", "clip"),
                              float(spec.get("clip_seconds", AVE_CLIP_SECONDS)), offsets)
    elif kind == "vegas":
        listing = vegas_listing(manifest_path, spec.get("classes"), duplicates)
    elif kind == "vggsound":
        listing = vggsound_listing(manifest_path, spec.get("classes"), duplicates,
                                   float(spec.get("clip_seconds", VGGSOUND_CLIP_SECONDS)))
    elif kind == "audioset":
        if not spec.get("classes"):
            raise ManifestError("kind audioset needs classes: (AudioSet label ids such as /m/0bt9lr)")
        listing = audioset_listing(segment_paths, spec["classes"], spec.get("class_names"), duplicates,
                                   spec.get("max_per_class"), seed, cache_dir)
    else:
        raise ManifestError(f"dataset kind {kind!r} has no YouTube manifest")
    if spec.get("split", {}).get("from_manifest") and "split" not in listing.clips.columns:
        raise ManifestError(f"split.from_manifest is set, but a {kind} list gives no train/test split "
                            "(only vggsound.csv does); remove it to use the class-balanced split")
    listing = limit_clips(listing, spec.get("max_clips"), seed)
    listing.counts["per_class"] = listing.clips["label"].value_counts().sort_index().to_dict()
    return listing


def list_file_records(paths: Mapping[str, str | Path]) -> dict[str, dict[str, object]]:
    """role → {path, bytes, sha256} of the list files a listing was read from (for its provenance)."""
    return {role: {"path": str(path), "bytes": Path(path).stat().st_size, "sha256": file_digest(path)}
            for role, path in paths.items()}


# Where `snakemake fetch_manifests` puts a list configured as a URL (relative to the working folder).
MANIFEST_CACHE = "resources/manifests"


def local_list_path(dataset: str, role: str, source: str, cache_dir: str = MANIFEST_CACHE) -> str:
    """The file a dataset's list is read from: ``source`` itself, or for a URL the copy
    ``fetch_manifests`` downloads to ``<cache_dir>/<dataset>/<role>_<file name>`` (role: ``manifest``,
    ``segments0``, ...)."""
    if not is_url(source):
        return str(source)
    name = Path(urlparse(source).path).name or "list"
    return f"{cache_dir}/{dataset}/{role}_{name}"


def check_sha256(path: str | Path, expected: str | None) -> None:
    """Raise :class:`ManifestError` when ``expected`` is set and the file's sha256 differs."""
    actual = file_digest(path) if expected else None
    if expected and actual != expected.lower():
        raise ManifestError(f"{path} has sha256 {actual}, the config expects {expected}: "
                            "a different version of the list (re-download it, or update the configured sha256)")


def fetch_source(url: str, path: str | Path, sha256: str | None = None, timeout_s: float = 60.0,
                 attempts: int = 3, backoff_s: float = 5.0) -> Path:
    """Download a manifest (or AudioSet segment list) to ``path``, checking ``sha256`` when set
    (:func:`avcmr.io.http_fetch.fetch_file`: resumable, atomic).

    The digest of what landed is logged and recorded beside the file as ``<name>.sha256`` (the
    ``sha256sum`` format), to be copied into the config to pin the list. Offline, the error says
    which file to place where.
    """
    path = Path(path)
    try:
        fetch_file(url, path, digests={"sha256": sha256}, attempts=attempts, backoff_s=backoff_s,
                   timeout_s=timeout_s)
    except FileCheckError as error:
        raise ManifestError(f"{url} has sha256 {error.actual}, the config expects {sha256}: a different version "
                            "of the list, deleted (re-download it, or update the configured sha256)") from None
    except FetchError as error:
        raise ManifestError(f"{error}; without internet, download it elsewhere and place it at {path} (or set "
                            "the dataset's manifest to a local path)") from None
    digest = file_digest(path)
    with atomic_path(path.with_name(f"{path.name}.sha256")) as record:
        Path(record).write_text(f"{digest}  {path.name}\n")
    logging.getLogger(__name__).info("%s: %d bytes, sha256 %s (recorded in %s.sha256)", url, path.stat().st_size,
                                     digest, path.name)
    return path
