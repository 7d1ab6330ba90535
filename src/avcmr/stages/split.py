"""Split, PCA and pooling stages (rules of ``split.smk``): the train/test split of the clips with both
modalities, the visual PCA fitted on the training frames only, and the frame-mean pooled features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.parquet import (
    read_clip_ids,
    read_metadata,
    read_table,
    vector_column,
    vectors_from_column,
    write_table,
)

log = logging.getLogger(__name__)


def make_split(manifest_path, audio_paths, visual_paths, out, train_fraction: float, seed: int,
               test_size: int | None, provenance, listing_path=None) -> None:
    """Balanced split of the clips that have both audio and visual features; with ``listing_path``
    (``split.from_manifest``) the split the dataset's list gives instead."""
    from avcmr.data.split import balanced_split, listed_split

    manifest = read_table(manifest_path, ["clip_id", "label"]).to_pandas()
    usable = read_clip_ids(audio_paths) & read_clip_ids(visual_paths)
    clips = manifest[manifest["clip_id"].isin(usable)].reset_index(drop=True)
    log.info("split: %d of %d listed clips have both modalities", len(clips), len(manifest))
    if listing_path is not None:
        log.info("split: the list's own train/test split (train_fraction, test_size and seed unused)")
        clips["split"] = listed_split(clips["clip_id"], read_table(listing_path, ["clip_id", "split"]).to_pandas())
    else:
        clips["split"] = balanced_split(clips["label"], train_fraction, seed, test_size)
    log.info("split: %s", clips.groupby(["split"]).size().to_dict())
    write_table(pa.Table.from_pandas(clips, preserve_index=False), out, schemas.SPLIT, provenance)


def _read_split(split_path) -> pd.DataFrame:
    return read_table(split_path).to_pandas().set_index("clip_id")


def fit_visual_pca(visual_paths, split_path, out, n_components: int, whiten: bool, provenance) -> None:
    """Fit PCA on the TRAINING clips' frames only, streaming shard by shard."""
    from avcmr.features.pca import StreamingPCA

    split = _read_split(split_path)
    train_ids = set(split.index[split["split"] == "train"])
    pca = StreamingPCA(n_components, whiten)
    for path in visual_paths:
        table = read_table(path)
        # A set lookup per frame: np.isin on strings (object arrays) compares every frame with
        # every training id: 20 s a 500-clip shard against 183k training clips (VGGSound), 2 h in all.
        frame_ids = table["clip_id"].to_pylist()
        is_train = np.fromiter((clip_id in train_ids for clip_id in frame_ids), dtype=bool, count=len(frame_ids))
        if is_train.any():
            pca.partial_fit(vectors_from_column(table["visual_2048"])[is_train])
    pca.finalize()
    log.info("PCA on %d training frames: %d components keep %.1f%% of the variance", pca.n_samples_,
             n_components, 100 * pca.explained_variance_.sum() / max(pca.total_variance_, 1e-12))
    rows = ["mean"] + [f"component_{i}" for i in range(n_components)]
    vectors = np.vstack([pca.mean_, pca.components_])
    variance = np.concatenate([[np.nan], pca.explained_variance_])
    table = pa.table({"row": rows, "explained_variance": variance, "vector": vector_column(vectors, pa.float64())})
    write_table(table, out, schemas.pca_model(vectors.shape[1]), provenance,
                whiten=whiten, n_training_frames=pca.n_samples_, total_variance=float(pca.total_variance_))


def load_visual_pca(path):
    from avcmr.features.pca import StreamingPCA

    table = read_table(path)
    meta = read_metadata(path)
    vectors = vectors_from_column(table["vector"])
    pca = StreamingPCA(len(vectors) - 1, bool(meta.get("whiten", False)))
    pca.mean_, pca.components_ = vectors[0], vectors[1:]
    pca.explained_variance_ = table["explained_variance"].to_numpy()[1:]
    return pca


def clip_means(clip_ids: Sequence[str], vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Each clip's mean row of ``vectors`` (``rows.mean(axis=0)`` over its rows, in table order),
    for all clips of a shard in one pass over slices; a pandas group per clip, as before, cost
    ≈ 0.3 s a 500-clip shard (≈ 2 min at VGGSound's size). The memory layout of ``vectors`` decides
    numpy's summation order, so the callers pass the layout the former groups had."""
    ids = np.asarray(clip_ids, dtype=object)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} clip ids for {len(vectors)} rows")
    if not len(ids):
        return {}
    boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    if len(boundaries) + 1 != len(set(ids.tolist())):  # a clip's rows apart: bring them together
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
        boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts, stops = np.concatenate([[0], boundaries]), np.concatenate([boundaries, [len(ids)]])
    return {ids[start]: vectors[start:stop].mean(axis=0) for start, stop in zip(starts, stops, strict=True)}


def pool_features(audio_paths, visual_paths, pca_path, split_path, out, provenance) -> None:
    """Frame-mean global features: mean VGGish embedding and mean PCA-projected InceptionV3 frame."""
    split = _read_split(split_path)
    pca = load_visual_pca(pca_path)
    audio_means, visual_means = {}, {}
    for path in audio_paths:
        table = read_table(path, columns=["clip_id", "audio_128"])
        audio_means.update(clip_means(table["clip_id"].to_pylist(), vectors_from_column(table["audio_128"])))
    for path in visual_paths:
        table = read_table(path, columns=["clip_id", "visual_2048"])
        # Column-major, as the pandas frames of earlier versions held them: pooled features stay
        # bit-identical to theirs (numpy then sums each column pairwise).
        projected = np.asfortranarray(pca.transform(vectors_from_column(table["visual_2048"])))
        visual_means.update(clip_means(table["clip_id"].to_pylist(), projected))
    clip_ids = [c for c in split.index if c in audio_means and c in visual_means]
    missing = len(split) - len(clip_ids)
    if missing:
        raise RuntimeError(f"{missing} clips of the split have no pooled features; the feature tables are stale")
    audio = np.stack([audio_means[c] for c in clip_ids])
    visual = np.stack([visual_means[c] for c in clip_ids])
    table = pa.table(
        {"clip_id": clip_ids, "label": split.loc[clip_ids, "label"].tolist(),
         "split": split.loc[clip_ids, "split"].tolist(),
         "audio": vector_column(audio), "visual": vector_column(visual)}
    )
    write_table(table, out, schemas.features(audio.shape[1], visual.shape[1]), provenance)
    log.info("pooled features: %d clips, audio %d-D, visual %d-D", len(clip_ids), audio.shape[1], visual.shape[1])
