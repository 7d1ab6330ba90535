"""Summary stages (rules ``map_table`` and ``failures`` of ``evaluate.smk``, ``acquisition`` of
``acquire.smk``): map.tsv, the dataset's failure rows in one table, acquisition.tsv.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from avcmr.io.parquet import read_clip_ids, read_metadata, read_table, write_table

log = logging.getLogger(__name__)


def write_map_table(eval_paths: Sequence[str], out, header: Sequence[str]) -> None:
    """``map.tsv``: '# '-prefixed header lines (dataset, weights, …) then one row per (method, seed)."""
    from avcmr.reporting.tables import chance_level, map_table, write_tsv

    header = [*header, f"chance level (class prior, sum of squared test-class shares): {chance_level(eval_paths[0]):.4f}"]
    write_tsv(map_table(eval_paths), out, header)


def concat_failures(failure_paths: Sequence[str], out, provenance) -> None:
    """All stages' failure rows of a dataset in one table (``clip_id, stage, reason``)."""
    from avcmr.io.failures import FAILURES_SCHEMA

    tables = [read_table(path).cast(FAILURES_SCHEMA) for path in failure_paths]
    table = pa.concat_tables(tables) if tables else FAILURES_SCHEMA.empty_table()
    log.info("%d failed clip-stages: %s", len(table), table.to_pandas().groupby("stage").size().to_dict())
    write_table(table, out, FAILURES_SCHEMA, provenance)


ACQUISITION_COLUMNS = ["label", "listed", "downloaded", "decoded", "usable"]


def acquisition_summary(listing_path, clip_paths: Sequence[str], audio_paths: Sequence[str],
                        vggish_paths: Sequence[str], inception_paths: Sequence[str], out,
                        header: Sequence[str] = ()) -> pd.DataFrame:
    """``acquisition.tsv``: per class how many clips are listed, downloaded (or found), decoded, usable.

    usable = with both VGGish and InceptionV3 features, i.e. what the split can use. '# ' header
    lines carry the listing's counts (manifest lines, duplicates dropped, ...), then ``header`` (the
    dataset's route); the last row is the total.
    """
    import json

    from avcmr.io.parquet import atomic_path

    listing = read_table(listing_path, ["clip_id", "label"]).to_pandas()
    stages = {
        "downloaded": read_clip_ids(clip_paths),
        "decoded": read_clip_ids(audio_paths),
        "usable": read_clip_ids(vggish_paths) & read_clip_ids(inception_paths),
    }
    table = listing.assign(listed=1, **{name: listing["clip_id"].isin(ids).astype(int) for name, ids in stages.items()})
    summary = table.groupby("label", sort=True)[ACQUISITION_COLUMNS[1:]].sum().reset_index()
    total = pd.DataFrame([["TOTAL", *summary[ACQUISITION_COLUMNS[1:]].sum().tolist()]], columns=ACQUISITION_COLUMNS)
    summary = pd.concat([summary, total], ignore_index=True)
    metadata = read_metadata(listing_path)
    counts = {k: v for k, v in metadata.get("listing_counts", {}).items() if k != "per_class"}
    with atomic_path(out) as tmp:
        with open(tmp, "w") as handle:
            for note in metadata.get("listing_notes", []):
                handle.write(f"# note: {note}\n")
            for role, record in metadata.get("listing_sources", {}).items():
                handle.write(f"# source {role}: {record['path']} ({record['bytes']} bytes, sha256 {record['sha256']})\n")
            if counts:
                handle.write(f"# listing: {json.dumps(counts, sort_keys=True)}\n")
            handle.writelines(f"# {line}\n" for line in header)
            summary.to_csv(handle, sep="\t", index=False)
    log.info("acquisition: %s", total.iloc[0].to_dict())
    return summary
