import numpy as np
import pyarrow as pa
import pytest

from avcmr.io.parquet import (
    atomic_path,
    read_metadata,
    read_table,
    vector_column,
    vectors_from_column,
    write_table,
)


def test_vectors_round_trip_as_fixed_size_lists(tmp_path, rng):
    vectors = rng.normal(size=(5, 7)).astype(np.float32)
    table = pa.table({"clip_id": list("abcde"), "v": vector_column(vectors)})
    schema = pa.schema([("clip_id", pa.string()), ("v", pa.list_(pa.float32(), 7))])
    write_table(table, tmp_path / "t.parquet", schema, {"config_hash": "abc"}, note="x")
    back = read_table(tmp_path / "t.parquet")
    assert back.schema.field("v").type == pa.list_(pa.float32(), 7)
    np.testing.assert_array_equal(vectors_from_column(back["v"]), vectors)
    meta = read_metadata(tmp_path / "t.parquet")
    assert meta["config_hash"] == "abc" and meta["note"] == "x"
    assert "numpy" in meta["library_versions"]


def test_zstd_compression_is_used(tmp_path):
    import pyarrow.parquet as pq

    write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "t.parquet")
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
