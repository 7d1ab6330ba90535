"""AudioSet's segment lists: where each clip sits in its YouTube video, and clips chosen by label.

A segment CSV (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
``eval_segments.csv``; Gemmeke et al. 2017) has three ``#`` comment lines, then one line per
segment: ``YTID, start_seconds, end_seconds, "positive_labels"`` (labels: comma-separated ontology
ids such as ``/m/0bt9lr``). The unbalanced list has ≈ 2.04 M lines and is read whenever the
workflow starts; parsing it takes seconds, so the parsed table can be cached as Parquet
(:func:`segment_table`) and is filtered in Arrow before anything becomes Python objects.

Two uses:
- AVE's ``Annotations.txt`` does not say where its 10-s clip sits in the YouTube video; AVE's ids
  are AudioSet segments, so :func:`read_audioset_segments` gives each id's offset.
- ``kind: audioset`` (:func:`audioset_listing`) selects segments by label id, e.g. the closest
  AudioSet classes of VEGAS's ten. VEGAS's authors checked every clip by hand; such a list is not
  checked, so it only approximates VEGAS (:data:`AUDIOSET_APPROXIMATION_NOTE`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from avcmr.data.listing import Listing, ManifestError, apply_duplicate_policy, clip_ids_for
from avcmr.io.parquet import atomic_path

log = logging.getLogger(__name__)

AUDIOSET_CSV_BASE = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv"
# The official segment lists, in the order their offsets are looked up (first listed wins).
AUDIOSET_SEGMENT_URLS = tuple(
    f"{AUDIOSET_CSV_BASE}/{name}.csv"
    for name in ("balanced_train_segments", "unbalanced_train_segments", "eval_segments")
)
AUDIOSET_LABEL_ID = re.compile(r"^/[a-z]/[A-Za-z0-9_]+$")
AUDIOSET_APPROXIMATION_NOTE = (
    "clips chosen from AudioSet's segment lists by label id, without human checking: an "
    "approximation (a VEGAS-like list lacks VEGAS's human filtering; AudioSet labels are noisy)"
)
SEGMENT_COLUMNS = ["youtube_id", "start_s", "end_s", "labels"]
SEGMENT_SCHEMA = pa.schema([("youtube_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                            ("labels", pa.string())])


def _parse_segment_csv(path: str | Path) -> pa.Table:
    """One segment CSV as an Arrow table ``youtube_id, start_s, end_s, labels`` (errors name the file)."""
    try:
        # One spare column: a line with an extra field (labels not quoted) lands there, not in a shifted index.
        table = pd.read_csv(path, comment="#", header=None, names=[*SEGMENT_COLUMNS, "extra"], skipinitialspace=True,
                            quotechar='"', dtype={"youtube_id": str, "labels": str, "extra": str}, engine="c")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    except (pd.errors.ParserError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ManifestError(f"{path}: not an AudioSet segment list ({first_line})") from None
    if table.empty:
        raise ManifestError(f"{path}: no segment lines (expected YTID, start_seconds, end_seconds, "
                            '"positive_labels" after the # comment lines)')
    extra = table["extra"].notna()
    if extra.any():
        raise ManifestError(f"{path}: not an AudioSet segment list ({int(extra.sum())} lines have more than 4 "
                            f"fields, first: {table.loc[extra].iloc[0, :4].tolist()}; are the labels quoted?)")
    table = table.drop(columns="extra").dropna(subset=["youtube_id"])
    for column in ("start_s", "end_s"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            row = table.loc[values.isna()].iloc[0]
            raise ManifestError(f"{path}: {int(values.isna().sum())} segment lines have a non-numeric or missing "
                                f"{column} (first: {row['youtube_id']!r}, {row[column]!r})")
        table[column] = values.astype(float)
    table["youtube_id"] = table["youtube_id"].str.strip()
    table["labels"] = table["labels"].fillna("")
    return pa.Table.from_pandas(table, preserve_index=False).cast(SEGMENT_SCHEMA)


def segment_table(path: str | Path, cache_dir: str | Path | None = None) -> pa.Table:
    """One segment CSV as an Arrow table ``youtube_id, start_s, end_s, labels``.

    The unbalanced list takes seconds to parse and is read whenever the workflow starts, so with
    ``cache_dir`` the parsed table is kept there as Parquet, named by the file's path, size and
    modification time (a changed file is parsed again).
    """
    if cache_dir is None:
        return _parse_segment_csv(path)
    stat = Path(path).stat()
    key = hashlib.sha256(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = Path(cache_dir) / f"{Path(path).name}.{key}.parquet"
    if cached.is_file():
        return pq.read_table(cached)
    table = _parse_segment_csv(path)
    try:
        with atomic_path(cached) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    except OSError as error:  # a read-only place only costs the parse next time
        log.info("segment list %s parsed but not cached in %s: %s", path, cache_dir, error)
    return table


def read_segment_table(paths: Sequence[str | Path], cache_dir: str | Path | None = None) -> pa.Table:
    """All segments of the given CSVs, in file order: ``youtube_id, start_s, end_s, labels, file``
    (``file``: the position of the CSV in ``paths``). A file that is not a segment list (wrong field
    count, non-numeric times) is a :class:`ManifestError` naming the file."""
    parts = [_with_file(segment_table(path, cache_dir), position) for position, path in enumerate(paths)]
    if not parts:
        return SEGMENT_SCHEMA.append(pa.field("file", pa.int32())).empty_table()
    return pa.concat_tables(parts)


def _with_file(table: pa.Table, position: int) -> pa.Table:
    return table.append_column("file", pa.array(np.full(table.num_rows, position, np.int32)))


def read_audioset_segments(paths: Sequence[str | Path], youtube_ids: Sequence[str] | None = None,
                           cache_dir: str | Path | None = None) -> dict[str, float]:
    """YouTube id → start of its AudioSet segment (s), for ``youtube_ids`` (default: every id).
    An id listed more than once keeps its first start."""
    table = read_segment_table(paths, cache_dir).select(["youtube_id", "start_s"])
    if youtube_ids is not None:  # filter in Arrow: 2 M Python strings would cost seconds
        table = table.filter(pc.is_in(table["youtube_id"], value_set=pa.array(list(youtube_ids), pa.string())))
    frame = table.to_pandas().drop_duplicates("youtube_id", keep="first")
    return dict(zip(frame["youtube_id"], frame["start_s"], strict=True))


def _rows_with_labels(segments: pa.Table, label_ids: Sequence[str]) -> pd.DataFrame:
    """``row, label_id`` for every requested label id of each segment, rows in order, ids in the given order."""
    pattern = "|".join(re.escape(label_id) for label_id in label_ids)
    rows = pa.array(np.arange(segments.num_rows, dtype=np.int64))
    mask = pc.match_substring_regex(segments["labels"], pattern)  # one pass in Arrow over all rows
    candidates = pd.Series(segments["labels"].filter(mask).to_pandas().to_numpy(),
                           index=rows.filter(mask).to_numpy())
    pairs = candidates.str.split(",").explode().str.strip()
    rank = {label_id: position for position, label_id in enumerate(label_ids)}
    pairs = pairs[pairs.isin(rank)]  # whole ids only ("/m/01j4z9" must not match "/m/01j4z9x")
    matched = pd.DataFrame({"row": pairs.index.to_numpy(dtype=np.int64), "label_id": pairs.to_numpy()})
    matched["rank"] = matched["label_id"].map(rank)
    return matched.sort_values(["row", "rank"], kind="stable").reset_index(drop=True)


def cap_per_class(clips: pd.DataFrame, max_per_class: int | None, seed: int) -> tuple[pd.DataFrame, int]:
    """At most ``max_per_class`` clips of each label (a seeded draw), in listing order; and how many were dropped."""
    if max_per_class is None:
        return clips, 0
    rng = np.random.default_rng(seed)
    keep = []
    for _label, members in clips.groupby("label", sort=True).groups.items():
        members = members.to_numpy()
        keep.append(members if len(members) <= max_per_class
                    else rng.choice(members, max_per_class, replace=False))
    kept = np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int)
    return clips.loc[kept].reset_index(drop=True), len(clips) - len(kept)


def audioset_listing(segment_paths: Sequence[str | Path], classes: Sequence[str],
                     class_names: Mapping[str, str] | None = None, duplicates: str = "drop",
                     max_per_class: int | None = None, seed: int = 0,
                     cache_dir: str | Path | None = None) -> Listing:
    """The AudioSet segments that carry one of ``classes`` (label ids), one label per clip.

    A segment carrying several requested ids gives one row per id (segments in file order, ids in
    the order of ``classes``); the duplicate policy then decides per YouTube id: ``drop`` drops an
    id matched more than once (ambiguous label, or several segments of one video), ``first`` keeps
    its first row, ``drop_any`` also drops ids listed more than once anywhere in the CSVs.
    ``max_per_class`` caps each class by a seeded draw. Labels are ``class_names[id]`` (default: the id).
    ``cache_dir``: see :func:`segment_table`.
    """
    if not segment_paths:
        raise ManifestError("kind audioset needs AudioSet segment CSVs (segments:)")
    malformed = [label_id for label_id in classes if not AUDIOSET_LABEL_ID.match(label_id)]
    if malformed:
        raise ManifestError(f"classes must be AudioSet label ids such as /m/0bt9lr; not ids: {malformed}")
    class_names = dict(class_names or {})
    stray = sorted(set(class_names) - set(classes))
    if stray:
        raise ManifestError(f"class_names names ids that are not in classes: {stray}")
    names = [class_names.get(label_id, label_id) for label_id in classes]
    if len(set(names)) != len(names):
        raise ManifestError(f"two classes share a name in class_names: {names}")
    segments = read_segment_table(segment_paths, cache_dir)
    counts: dict[str, object] = {"segment_lines": segments.num_rows}
    matched = _rows_with_labels(segments, list(classes))
    missing = [label_id for label_id in classes if label_id not in set(matched["label_id"])]
    if missing:
        raise ManifestError(f"no segment of {[str(p) for p in segment_paths]} carries the label ids {missing}")
    rows = segments.select(["youtube_id", "start_s", "end_s"]).take(pa.array(matched["row"])).to_pandas()
    rows["label"] = matched["label_id"].map(dict(zip(classes, names, strict=True))).to_numpy()
    counts["matching_segments"] = int(matched["row"].nunique())
    counts["segments_with_several_classes"] = int(matched["row"].duplicated().sum())
    counts["in_classes"] = len(rows)
    bad = rows["end_s"] <= rows["start_s"]
    counts["dropped_bad_window"] = int(bad.sum())
    rows = rows[~bad].reset_index(drop=True)
    all_keys = None
    if duplicates == "drop_any":  # ids repeated in the CSVs, and ids matched by several classes
        listed = pc.value_counts(segments["youtube_id"])
        repeated = listed.field("values").filter(pc.greater(listed.field("counts"), 1)).to_pylist()
        repeated += rows["youtube_id"][rows["youtube_id"].duplicated()].tolist()
        all_keys = repeated * 2  # each listed twice: "repeated" for apply_duplicate_policy
    rows, duplicate_counts = apply_duplicate_policy(rows, "youtube_id", duplicates, all_keys)
    counts.update(duplicate_counts)
    counts["per_class_before_cap"] = rows["label"].value_counts().sort_index().to_dict()
    rows, over_cap = cap_per_class(rows, max_per_class, seed)
    counts["dropped_over_class_cap"] = over_cap
    rows.insert(0, "clip_id", clip_ids_for(rows["youtube_id"], rows["start_s"], rows["end_s"]))
    counts["kept"] = len(rows)
    return Listing(rows, counts, notes=[AUDIOSET_APPROXIMATION_NOTE])
