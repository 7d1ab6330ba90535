"""The failures table: one row per clip that a stage could not use (``clip_id, stage, reason``).

A bad clip never stops a run: the stage records it here and goes on with the rest of its shard.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from avcmr.io.parquet import write_table

FAILURES_SCHEMA = pa.schema([("clip_id", pa.string()), ("stage", pa.string()), ("reason", pa.string())])
log = logging.getLogger(__name__)


class FailureLog:
    def __init__(self, stage: str):
        self.stage = stage
        self.rows: list[dict[str, str]] = []

    def record(self, clip_id: str, reason: str) -> None:
        log.warning("%s: skipping clip %s: %s", self.stage, clip_id, reason)
        self.rows.append({"clip_id": clip_id, "stage": self.stage, "reason": reason})

    @property
    def failed_ids(self) -> set[str]:
        return {row["clip_id"] for row in self.rows}

    def write(self, path: str | Path, provenance=None) -> None:
        table = pa.Table.from_pylist(self.rows, schema=FAILURES_SCHEMA)
        write_table(table, path, FAILURES_SCHEMA, provenance)
