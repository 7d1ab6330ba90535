"""Parquet tables as avcmr writes them.

Every table has an explicit Arrow schema, vectors are stored as fixed-size lists of float32,
files are zstd-compressed and written atomically (temp file in the same folder, then rename), and
the schema metadata records provenance: the producing config hash, library versions and the
backbone weights used (so a table computed with random weights can never pass for a real one).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_PREFIX = "avcmr."
_VERSIONED_LIBRARIES = ("avcmr", "numpy", "pyarrow", "librosa", "tensorflow-cpu", "keras", "torch", "scikit-learn")

FLOAT32 = pa.float32()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give results the usual permissions (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def provenance_metadata(provenance: Mapping[str, object] | None = None, **extra: object) -> dict[str, str]:
    """Key/value metadata for a table: the given provenance plus library versions, JSON-encoded."""
    entries: dict[str, object] = {"library_versions": library_versions()}
    entries.update(dict(provenance or {}))
    entries.update(extra)
    return {
        METADATA_PREFIX + key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in entries.items()
    }


def vector_column(vectors: np.ndarray, dtype: pa.DataType = FLOAT32) -> pa.FixedSizeListArray:
    """A 2-D array as an Arrow fixed-size list column (one row per vector)."""
    vectors = np.ascontiguousarray(vectors, dtype=dtype.to_pandas_dtype())
    if vectors.ndim != 2:
        raise ValueError(f"vector_column expects a 2-D array, got shape {vectors.shape}")
    flat = pa.array(vectors.reshape(-1), type=dtype)
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def vectors_from_column(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    """The inverse of :func:`vector_column`: a fixed-size list column as a 2-D numpy array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    width = column.type.list_size if dim is None else dim
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)


def write_table(
    table: pa.Table,
    path: str | os.PathLike,
    schema: pa.Schema | None = None,
    provenance: Mapping[str, object] | None = None,
    **extra_metadata: object,
) -> Path:
    """Write ``table`` (cast to ``schema`` when given) atomically as zstd Parquet with metadata."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    merged = dict(table.schema.metadata or {})
    merged.update({k.encode(): v.encode() for k, v in provenance_metadata(provenance, **extra_metadata).items()})
    table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)


def read_clip_ids(paths: Iterable[str | os.PathLike]) -> set[str]:
    """The clip ids of every table in ``paths`` (their ``clip_id`` column only)."""
    return {clip_id for path in paths for clip_id in read_table(path, ["clip_id"])["clip_id"].to_pylist()}


def read_metadata(path: str | os.PathLike) -> dict[str, object]:
    """The avcmr metadata of a Parquet file, JSON values decoded."""
    raw = pq.read_schema(path).metadata or {}
    decoded: dict[str, object] = {}
    for key, value in raw.items():
        name = key.decode()
        if not name.startswith(METADATA_PREFIX):
            continue
        text = value.decode()
        try:
            decoded[name[len(METADATA_PREFIX) :]] = json.loads(text)
        except json.JSONDecodeError:
            decoded[name[len(METADATA_PREFIX) :]] = text
    return decoded
