"""Acquisition stages (rules of ``acquire.smk`` and ``weights.smk``): each shard's clips as a table
(synthesized, indexed from a folder or downloaded), the dataset's listing and manifest, the official
backbone weights.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.failures import FailureLog
from avcmr.io.parquet import read_table, write_table

log = logging.getLogger(__name__)


def synthesize_shard(spec_values: Mapping, shard: int, shard_size: int, media_dir, clips_out, provenance) -> None:
    from avcmr.data.synthetic import SyntheticSpec, plan_clips, write_clips

    spec = SyntheticSpec(**spec_values)
    plan = plan_clips(spec).iloc[shard * shard_size : (shard + 1) * shard_size]
    log.info("synthesizing %d clips of shard %d into %s", len(plan), shard, media_dir)
    clips = write_clips(plan, spec, media_dir, log)
    write_table(pa.Table.from_pandas(clips, preserve_index=False), clips_out, schemas.CLIPS, provenance)


def index_folder_shard(listing: pd.DataFrame, clips_out, failures_out, provenance) -> None:
    """Probe a user's clips (``<root>/<label>/<clip>.<ext>``); unreadable ones become failures, and
    so do the archive members that unpacking refused (a non-empty ``refused`` column: the reason)."""
    from avcmr.media.ffmpeg_io import MediaError, probe

    failures = FailureLog("index")
    durations = []
    for row in listing.itertuples():
        if getattr(row, "refused", ""):
            failures.record(row.clip_id, row.refused)
            durations.append(np.nan)
            continue
        try:
            durations.append(probe(row.path).duration_s)
        except MediaError as error:
            failures.record(row.clip_id, error.reason)
            durations.append(np.nan)
    clips = listing.assign(duration_s=durations)
    clips = clips.loc[~clips["clip_id"].isin(failures.failed_ids), schemas.CLIPS.names]
    write_table(pa.Table.from_pandas(clips, preserve_index=False), clips_out, schemas.CLIPS, provenance)
    failures.write(failures_out, provenance)


def concat_manifest(clip_tables: Sequence[str], shards: Sequence[int], out, provenance) -> None:
    parts = [read_table(path).to_pandas().assign(shard=shard) for path, shard in zip(clip_tables, shards, strict=True)]
    manifest = pd.concat(parts, ignore_index=True)
    write_table(pa.Table.from_pandas(manifest, preserve_index=False), out, schemas.MANIFEST, provenance)


def write_listing(spec: Mapping, shard_size: int, out, provenance, manifest_path=None, segment_paths=(),
                  folder_clips: pd.DataFrame | None = None) -> None:
    """``listing.parquet``: every clip the dataset lists (before any download or decoding), its shard.

    YouTube kinds: parsed from the manifest / segment lists (:mod:`avcmr.data.manifests`; the counts
    behind dropped rows, the list files' sha256 and caveats go to the metadata); folder: ``folder_clips``, the listing the workflow made at start, with
    its shards (:func:`avcmr.data.folder.list_folder_dataset`); synthetic: the generator's plan, where the
    shard of a clip is its position // shard_size, as in the stages that make the shards.
    """
    from avcmr.data.listing import FULL_LISTING_SCHEMA, LISTING_TABLE_COLUMNS
    from avcmr.data.manifests import YOUTUBE_KINDS, dataset_listing, list_file_records

    kind = spec["kind"]
    counts: dict = {}
    extra_metadata: dict = {}
    if kind in YOUTUBE_KINDS:
        listing = dataset_listing(spec, manifest_path, segment_paths)
        clips, counts = listing.clips, listing.counts
        # What the list was read from (sha256 of each file) and its caveats, for acquisition.tsv.
        files = {"manifest": manifest_path} if manifest_path else {}
        files.update({f"segments{i}": path for i, path in enumerate(segment_paths)})
        extra_metadata = {"listing_sources": list_file_records(files), "listing_notes": listing.notes}
    elif kind == "folder":  # the shards come with the listing (hash of the clip id, avcmr.data.folder)
        clips = folder_clips
    else:
        from avcmr.data.synthetic import SyntheticSpec, plan_clips

        clips = plan_clips(SyntheticSpec(**spec.get("synthetic", {})))
    shard = clips["shard"] if kind == "folder" else np.arange(len(clips)) // shard_size
    clips = clips.reindex(columns=LISTING_TABLE_COLUMNS)
    clips["shard"] = np.asarray(shard)
    counts.setdefault("per_class", clips["label"].value_counts().sort_index().to_dict())
    log.info("listing: %d clips in %d shards; %s", len(clips), clips["shard"].nunique(),
             {k: v for k, v in counts.items() if k != "per_class"})
    write_table(pa.Table.from_pandas(clips, preserve_index=False), out, FULL_LISTING_SCHEMA, provenance,
                listing_counts=counts, **extra_metadata)


def download_shard(listing_path, shard: int, media_dir, clips_out, failures_out, download: Mapping,
                   provenance) -> None:
    """Fetch the shard's clips (yt-dlp, resumable); unavailable or unusable ones become failures."""
    from avcmr.media.download import DownloadSettings, download_clips

    listing = read_table(listing_path).to_pandas()
    rows = listing[listing["shard"] == shard]
    settings = DownloadSettings.from_config(download)
    log.info("shard %d: %d clips into %s (%s)", shard, len(rows), media_dir, settings.url_template)
    failures = FailureLog("download")
    # A clip the list cannot place (AVE id without an AudioSet segment) is recorded, never fetched.
    unplaced = rows["skip_reason"].notna() if "skip_reason" in rows else pd.Series(False, index=rows.index)
    for row in rows[unplaced].itertuples(index=False):
        failures.record(row.clip_id, row.skip_reason)
    clips = download_clips(rows[~unplaced], media_dir, settings, failures)
    write_table(pa.Table.from_pandas(clips, preserve_index=False), clips_out, schemas.CLIPS, provenance)
    failures.write(failures_out, provenance)


def fetch_weights(files: Mapping[str, Mapping], record_out) -> None:
    """Download the official backbone files that are not there yet, check their digests, and write
    ``record_out`` (JSON: path, url, bytes, sha256 of each file)."""
    import json

    from avcmr.features.weights import fetch_official_file
    from avcmr.io.parquet import atomic_path

    records = {name: fetch_official_file(entry["url"], entry["path"], entry["what"], entry.get("sha256"),
                                         entry.get("md5"))
               for name, entry in files.items()}
    with atomic_path(record_out) as tmp:
        Path(tmp).write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
