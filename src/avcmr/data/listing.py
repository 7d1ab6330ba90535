"""The listing every clip source gives, and the clip-id rules they share.

A listing (:class:`Listing`) is what a dataset's lists (:mod:`avcmr.data.manifests`,
:mod:`avcmr.data.audioset`) or folder (:mod:`avcmr.data.folder`, :mod:`avcmr.data.archive`) name
as clips: ``clips`` with the columns of :data:`LISTING_COLUMNS`, the ``counts`` behind every
dropped row and ``notes``. The parsers of those modules import it from here, so that none of them
imports another to share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

LISTING_COLUMNS = ["clip_id", "youtube_id", "start_s", "end_s", "label"]
# Columns only some lists have: the list's own split (vggsound) and why a clip cannot be fetched.
LISTING_OPTIONAL_COLUMNS = ["split", "skip_reason"]
LISTING_TABLE_COLUMNS = [*LISTING_COLUMNS, *LISTING_OPTIONAL_COLUMNS]
# results/{dataset}/listing.parquet (youtube_id and the window are null for folder/synthetic datasets):
# the columns every listing has, and the full table write_listing writes (+ the optional columns).
LISTING_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("youtube_id", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("label", pa.string()), ("shard", pa.int32()),
])
FULL_LISTING_SCHEMA = pa.schema([*LISTING_SCHEMA, ("split", pa.string()), ("skip_reason", pa.string())])

DUPLICATE_POLICIES = {
    "drop": "drop every row of a key listed more than once among the kept classes (its label is ambiguous)",
    "drop_any": "drop every row of a key listed more than once anywhere in the file, other classes included",
    "first": "keep the first row of each repeated key",
}


class ManifestError(ValueError):
    """A manifest that cannot be read as documented; the message says what is wrong and where."""


@dataclass
class Listing:
    clips: pd.DataFrame
    counts: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def safe_clip_id(text: str) -> str:
    """Letters, digits, '_', '-', '.' kept, anything else '_' (clip ids name files)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def clip_id_for(youtube_id: str, start_s: float, end_s: float) -> str:
    """``<youtube id>_<start ms>_<end ms>``: unique per window, safe in file names."""
    return f"{youtube_id}_{int(round(start_s * 1000))}_{int(round(end_s * 1000))}"


def clip_ids_for(youtube_ids: pd.Series, starts: pd.Series, ends: pd.Series) -> pd.Series:
    """:func:`clip_id_for` of whole columns at once (≈ 200k VGGSound rows at every workflow start)."""
    def milliseconds(seconds: pd.Series) -> pd.Series:
        return (seconds.astype(float) * 1000).round().astype("int64").astype(str)

    return youtube_ids.astype(str) + "_" + milliseconds(starts) + "_" + milliseconds(ends)


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
