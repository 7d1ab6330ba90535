"""Arrow schemas of the workflow's tables (vector widths are parameters where config sets them)."""

from __future__ import annotations

import pyarrow as pa

CLIPS = pa.schema(
    [("clip_id", pa.string()), ("label", pa.string()), ("path", pa.string()), ("duration_s", pa.float64())]
)
MANIFEST = CLIPS.append(pa.field("shard", pa.int32()))
AUDIO = pa.schema([("clip_id", pa.string()), ("sample_rate", pa.int32()), ("waveform", pa.list_(pa.float32()))])
SPLIT = pa.schema([("clip_id", pa.string()), ("label", pa.string()), ("split", pa.string())])
PER_QUERY_AP = pa.schema(
    [("direction", pa.string()), ("query_clip_id", pa.string()), ("query_label", pa.string()), ("ap", pa.float64())]
)
# P@K of every query at every scope K (long format; K already clipped to the number of candidates).
PER_QUERY_PRECISION = pa.schema(
    [("direction", pa.string()), ("query_clip_id", pa.string()), ("query_label", pa.string()), ("k", pa.int32()),
     ("precision", pa.float64())]
)

FLOAT32 = pa.float32()


def vectors(dim: int, dtype: pa.DataType = FLOAT32) -> pa.DataType:
    return pa.list_(dtype, dim)


def frames(size: int) -> pa.Schema:
    return pa.schema([("clip_id", pa.string()), ("second", pa.int32()), ("rgb", pa.binary(size * size * 3))])


def frame_vectors(column: str, dim: int) -> pa.Schema:
    """Per-second (or per-patch) vectors of one clip: ``clip_id, second, <column>``."""
    return pa.schema([("clip_id", pa.string()), ("second", pa.int32()), (column, vectors(dim))])


def logmel(patch_frames: int, n_mels: int) -> pa.Schema:
    return pa.schema([("clip_id", pa.string()), ("second", pa.int32()), ("logmel", vectors(patch_frames * n_mels))])


def pca_model(input_dim: int) -> pa.Schema:
    return pa.schema(
        [("row", pa.string()), ("explained_variance", pa.float64()), ("vector", vectors(input_dim, pa.float64()))]
    )


def features(audio_dim: int, visual_dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("clip_id", pa.string()),
            ("label", pa.string()),
            ("split", pa.string()),
            ("audio", vectors(audio_dim)),
            ("visual", vectors(visual_dim)),
        ]
    )


def embeddings(audio_dim: int, visual_dim: int) -> pa.Schema:
    """Learned test-set embeddings of one (method, seed): ``clip_id, label, audio, visual``."""
    return pa.schema(
        [("clip_id", pa.string()), ("label", pa.string()), ("audio", vectors(audio_dim)), ("visual", vectors(visual_dim))]
    )
