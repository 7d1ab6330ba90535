"""Parquet I/O with explicit schemas, provenance metadata and atomic writes."""

from avcmr.io.parquet import (
    atomic_path,
    provenance_metadata,
    read_metadata,
    read_table,
    vector_column,
    vectors_from_column,
    write_table,
)

__all__ = [
    "atomic_path",
    "provenance_metadata",
    "read_metadata",
    "read_table",
    "vector_column",
    "vectors_from_column",
    "write_table",
]
