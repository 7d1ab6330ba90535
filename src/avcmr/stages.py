"""One function per workflow stage: read the stage's Parquet inputs, compute, write its outputs.

The Snakemake scripts in ``workflow/scripts`` are thin wrappers around these functions, which also
makes every stage callable (and testable) without Snakemake. Heavy libraries (TensorFlow, torch)
are imported inside the stages that need them so that light stages start fast.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.failures import FailureLog
from avcmr.io.parquet import (
    read_metadata,
    read_table,
    vector_column,
    vectors_from_column,
    write_table,
)

log = logging.getLogger(__name__)


class ProgressLog:
    """Periodic 'done/total, rate' log lines for long loops."""

    def __init__(self, what: str, total: int, every_s: float = 10.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s or done == self.total:
            rate = done / max(now - self.start, 1e-9)
            log.info("%s: %d/%d (%.1f/s)", self.what, done, self.total, rate)
            self.last = now


# --- acquisition ---------------------------------------------------------------------------------


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


# --- decoding ------------------------------------------------------------------------------------


def decode_shard(clips_path, frames_out, audio_out, failures_out, fps: float, frame_size: int,
                 sample_rate: int, provenance) -> None:
    """1-fps RGB frames (``frame_size`` square, 299 by default) and 16 kHz mono audio of every clip
    of a shard."""
    from avcmr.media.ffmpeg_io import MediaError, decode_usable_clips

    clips = read_table(clips_path).to_pandas()
    failures = FailureLog("decode")
    frame_rows: dict[str, list] = {"clip_id": [], "second": [], "rgb": []}
    audio_rows: dict[str, list] = {"clip_id": [], "sample_rate": [], "waveform": []}
    progress = ProgressLog("decode", len(clips))
    decoded = decode_usable_clips(clips["path"], fps, frame_size, sample_rate)
    for done, (clip, (_, result)) in enumerate(zip(clips.itertuples(), decoded, strict=True), start=1):
        try:
            if isinstance(result, MediaError):
                raise result
            frames, waveform, info = result
            if len(frames) == 0:
                raise MediaError("zero video frames decoded")
            if len(waveform) == 0:
                raise MediaError("zero audio samples decoded")
            _check_not_truncated(info.duration_s, len(waveform) / sample_rate, len(frames) / fps)
        except MediaError as error:
            failures.record(clip.clip_id, error.reason)
            continue
        frame_rows["clip_id"] += [clip.clip_id] * len(frames)
        frame_rows["second"] += list(range(len(frames)))
        frame_rows["rgb"] += [frame.tobytes() for frame in frames]
        audio_rows["clip_id"].append(clip.clip_id)
        audio_rows["sample_rate"].append(sample_rate)
        audio_rows["waveform"].append(waveform)
        progress.update(done)
    frames_schema = schemas.frames(frame_size)
    write_table(pa.table(frame_rows, schema=frames_schema), frames_out, frames_schema, provenance)
    write_table(pa.table(audio_rows, schema=schemas.AUDIO), audio_out, schemas.AUDIO, provenance)
    failures.write(failures_out, provenance)


def _check_not_truncated(container_s: float, audio_s: float, video_s: float) -> None:
    """A file whose streams decode to much less than its container announces was cut off (a
    truncated download): its features would describe a fragment, so it is refused.

    Allowed shortfall: max(1 s, 25 %) of the container's duration, which leaves room for 1-fps
    frame counting and for audio and video tracks of slightly different lengths.
    """
    from avcmr.media.ffmpeg_io import MediaError

    allowed = max(1.0, 0.25 * container_s)
    for stream, decoded_s in (("audio", audio_s), ("video", video_s)):
        if decoded_s < container_s - allowed:
            raise MediaError(f"truncated file: {stream} decodes to {decoded_s:.2f} s of the {container_s:.2f} s "
                             "the container announces")


# --- audio features ------------------------------------------------------------------------------


def logmel_shard(audio_path, out, failures_out, provenance) -> None:
    from avcmr.features.logmel import LogMelSpec, log_mel_patches

    spec = LogMelSpec()
    audio = read_table(audio_path)
    failures = FailureLog("logmel")
    clip_ids, seconds, patches = [], [], []
    for clip_id, sample_rate, waveform in zip(*(audio[c].to_pylist() for c in ("clip_id", "sample_rate")),
                                              audio["waveform"], strict=True):
        if sample_rate != spec.sample_rate:
            failures.record(clip_id, f"sample rate {sample_rate} Hz, expected {spec.sample_rate}")
            continue
        clip_patches = log_mel_patches(waveform.values.to_numpy(zero_copy_only=False), spec)
        if len(clip_patches) == 0:
            failures.record(clip_id, f"audio shorter than one VGGish patch ({spec.patch_seconds:.2f} s)")
            continue
        if not np.isfinite(clip_patches).all():
            failures.record(clip_id, "non-finite log-mel values")
            continue
        clip_ids += [clip_id] * len(clip_patches)
        seconds += list(range(len(clip_patches)))
        patches.append(clip_patches.reshape(len(clip_patches), -1))
    schema = schemas.logmel(spec.patch_frames, spec.n_mels)
    flat = np.concatenate(patches) if patches else np.zeros((0, spec.patch_frames * spec.n_mels), np.float32)
    table = pa.table({"clip_id": clip_ids, "second": seconds, "logmel": vector_column(flat)})
    write_table(table, out, schema, provenance)
    failures.write(failures_out, provenance)


def _embed_per_clip(table: pa.Table, embed, batch_size: int, column: str, dim: int, stage: str,
                    out, failures_out, provenance, weights_sha256: Mapping, precision: str,
                    finite_inputs: np.ndarray | None = None) -> None:
    """Run ``embed`` over all rows at once, then drop clips whose inputs (``finite_inputs``, one
    flag per row) or outputs are not finite. Inputs are checked themselves because whether NaN
    survives a forward pass depends on the kernels: the compiled graph's fused convolution + ReLU
    turned NaN patches into zeros on an AVX-512 CPU, where it kept NaN on an AVX2 one.

    ``embed`` gets the (start, stop) row ranges of its batches, cut at clip boundaries
    (``inference.clip_batches``): a clip's features do not depend on its shard's other clips."""
    from avcmr.features.inference import clip_batches

    failures = FailureLog(stage)
    clip_ids = np.asarray(table["clip_id"].to_pylist(), dtype=object)
    started = time.monotonic()
    embeddings = embed(clip_batches(clip_ids, batch_size))
    elapsed = time.monotonic() - started
    log.info("%s: %d inputs in %.1f s (%.1f/s)", stage, len(clip_ids), elapsed, len(clip_ids) / max(elapsed, 1e-9))
    finite = np.isfinite(embeddings).all(axis=1)
    bad_inputs = set() if finite_inputs is None else set(clip_ids[~finite_inputs])
    for clip_id in sorted(bad_inputs):
        failures.record(clip_id, "non-finite input")
    for clip_id in sorted(set(clip_ids[~finite]) - bad_inputs):
        failures.record(clip_id, "non-finite features")
    keep = ~np.isin(clip_ids, list(failures.failed_ids))
    schema = schemas.frame_vectors(column, dim)
    result = pa.table(
        {"clip_id": clip_ids[keep].tolist(), "second": table["second"].filter(pa.array(keep, type=pa.bool_())),
         column: vector_column(embeddings[keep])}
    )
    # The sha256 of the official files the extractor loaded ({} for random weights).
    write_table(result, out, schema, provenance, weights_sha256=weights_sha256, inference_precision=precision)
    failures.write(failures_out, provenance)


def configure_tensorflow(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:  # TensorFlow already ran in this process (a test, a notebook): keep its pools
        log.warning("TensorFlow is initialised already; its thread pools stay as they are (asked: %d)", threads)


def vggish_shard(logmel_path, out, failures_out, backbone_weights: Mapping, batch_size: int,
                 postprocess: bool, threads: int, provenance, precision: str = "float32") -> None:
    configure_tensorflow(threads)
    from avcmr.features.vggish import VGGishExtractor
    from avcmr.features.weights import parse_weights

    table = read_table(logmel_path)
    patches = vectors_from_column(table["logmel"]).reshape(-1, 96, 64)
    extractor = VGGishExtractor(parse_weights(dict(backbone_weights), "vggish"), batch_size, postprocess, precision)
    _embed_per_clip(table, lambda ranges: extractor.embed_ranges(patches, ranges), batch_size, "audio_128", 128,
                    "vggish", out, failures_out, provenance, weights_sha256=extractor.weights_sha256,
                    precision=precision, finite_inputs=np.isfinite(patches).all(axis=(1, 2)))


def inception_shard(frames_path, out, failures_out, backbone_weights: Mapping, batch_size: int,
                    threads: int, provenance, precision: str = "float32") -> None:
    """InceptionV3 features of a shard's frames. The frames are turned from the table's bytes into
    arrays one batch at a time, in a background thread while the previous batch is inferred, so
    that the shard's frames are never all held as arrays (``embed_batches``)."""
    configure_tensorflow(threads)
    from avcmr.features.inception import InceptionExtractor
    from avcmr.features.weights import parse_weights

    table = read_table(frames_path)
    size = int(round((table.schema.field("rgb").type.byte_width / 3) ** 0.5))
    rgb = table["rgb"].combine_chunks()

    def frame_batches(ranges):
        for start, stop in ranges:
            chunk = rgb.slice(start, stop - start)
            # A fixed-size binary column is one contiguous buffer: a view, no per-frame copies.
            data = chunk.buffers()[1]
            offset = chunk.offset * size * size * 3
            yield np.frombuffer(data, dtype=np.uint8, count=len(chunk) * size * size * 3,
                                offset=offset).reshape(-1, size, size, 3)

    extractor = InceptionExtractor(parse_weights(dict(backbone_weights), "inception"), batch_size, precision,
                                   frame_size=size)
    _embed_per_clip(table.drop_columns(["rgb"]), lambda ranges: extractor.embed_batches(frame_batches(ranges)),
                    batch_size, "visual_2048", 2048, "inception", out, failures_out, provenance,
                    weights_sha256=extractor.weights_sha256, precision=precision)


# --- split, PCA, pooling -------------------------------------------------------------------------


def _clip_ids(paths: Sequence[str]) -> set[str]:
    return {clip_id for path in paths for clip_id in read_table(path, ["clip_id"])["clip_id"].to_pylist()}


def make_split(manifest_path, audio_paths, visual_paths, out, train_fraction: float, seed: int,
               test_size: int | None, provenance, listing_path=None) -> None:
    """Balanced split of the clips that have both audio and visual features; with ``listing_path``
    (``split.from_manifest``) the split the dataset's list gives instead."""
    from avcmr.data.split import balanced_split, listed_split

    manifest = read_table(manifest_path, ["clip_id", "label"]).to_pandas()
    usable = _clip_ids(audio_paths) & _clip_ids(visual_paths)
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


# --- training and evaluation ---------------------------------------------------------------------


def load_feature_arrays(features_path):
    """(audio, visual, label codes, clip ids, label names) per split from ``features.parquet``."""
    table = read_table(features_path)
    split = np.asarray(table["split"].to_pylist(), dtype=object)
    labels = np.asarray(table["label"].to_pylist(), dtype=object)
    names, codes = np.unique(labels, return_inverse=True)
    audio = vectors_from_column(table["audio"])
    visual = vectors_from_column(table["visual"])
    clip_ids = np.asarray(table["clip_id"].to_pylist(), dtype=object)
    return {
        part: {
            "audio": audio[split == part], "visual": visual[split == part], "labels": codes[split == part],
            "label_names": labels[split == part], "clip_ids": clip_ids[split == part],
        }
        for part in ("train", "test")
    }


def fit_and_evaluate_seeds(features_path, method_name: str, params: Mapping, seeds: Sequence[int],
                           outputs: Mapping[str, str | Sequence[str]], provenance,
                           model_context: Mapping | None = None, shared_fits: Sequence[str] = (),
                           seeds_together: str = "auto") -> None:
    """:func:`fit_and_evaluate` for each seed in turn, in this process (one training job of a method
    over its seeds). ``outputs`` maps evaluation, history, precision, embeddings and model to one
    path per seed, in the order of ``seeds`` (a single path for a single seed). The features are
    read once for all seeds. ``shared_fits``: for a variant row, its base row's model file per seed
    (see ``shared_fit`` of :func:`fit_and_evaluate`); empty: fit.

    ``seeds_together``: ``always`` fits the seeds of a method that can (``fit_seeds``, the
    dual-subspace family) in one set of batched networks before evaluating them one by one, each
    seed's fit seconds being the joint fit's divided by the seeds; ``auto`` does so where the
    method trains on a GPU; ``never`` fits them one after the other."""
    per_seed = {key: [paths] if isinstance(paths, str) else list(paths) for key, paths in outputs.items()}
    for key, paths in per_seed.items():
        if len(paths) != len(seeds):
            raise ValueError(f"{len(paths)} {key} outputs for {len(seeds)} seeds")
    shared_fits = [shared_fits] if isinstance(shared_fits, str) else list(shared_fits)
    if shared_fits and len(shared_fits) != len(seeds):
        raise ValueError(f"{len(shared_fits)} shared fits for {len(seeds)} seeds")
    data = load_feature_arrays(features_path)
    prefits = [] if shared_fits else _fit_seeds_together(method_name, params, seeds, data, seeds_together)
    for index, seed in enumerate(seeds):
        fit_and_evaluate(features_path, method_name, params, int(seed),
                         eval_out=per_seed["evaluation"][index], history_out=per_seed["history"][index],
                         provenance=provenance, precision_out=per_seed["precision"][index],
                         embeddings_out=per_seed["embeddings"][index], model_out=per_seed["model"][index],
                         model_context=model_context, data=data,
                         shared_fit=shared_fits[index] if shared_fits else None,
                         prefit=prefits[index] if prefits else None)
        gc.collect()  # the next seed's fit starts from the memory one fit needs (mem_mb declares one)


SEEDS_TOGETHER = ("auto", "always", "never")


def _fit_seeds_together(method_name: str, params: Mapping, seeds: Sequence[int], data: Mapping,
                        mode: str) -> list[tuple]:  # fmt: skip
    """(fitted model, budget, fit seconds) per seed when the seeds are to be trained together (see
    :func:`fit_and_evaluate_seeds`), else []."""
    from avcmr.methods.budgets import budgeted_method
    from avcmr.methods.torch_utils import pick_device

    if mode not in SEEDS_TOGETHER:
        raise ValueError(f"seeds_together must be one of {', '.join(SEEDS_TOGETHER)}, got {mode!r}")
    train = data["train"]
    built = [budgeted_method(method_name, params, len(train["labels"]), random_state=int(seed)) for seed in seeds]
    fit_seeds = getattr(type(built[0][0]), "fit_seeds", None)
    if mode == "never" or len(seeds) < 2 or fit_seeds is None:
        return []
    if mode == "auto" and pick_device(getattr(built[0][0], "device", "cpu")).type != "cuda":
        return []
    log.info("fitting %d seeds of %r together on %d pairs", len(seeds), method_name, len(train["labels"]))
    started = time.perf_counter()
    fit_seeds([model for model, _ in built], train["audio"], train["visual"], train["labels"])
    share = (time.perf_counter() - started) / len(seeds)
    return [(model, budget, share) for model, budget in built]


def fit_and_evaluate(features_path, method_name: str, params: Mapping, seed: int, eval_out, history_out,
                     provenance, precision_out=None, embeddings_out=None, model_out=None,
                     model_context: Mapping | None = None, data: Mapping | None = None,
                     shared_fit=None, prefit: tuple | None = None) -> None:
    """Fit one (method, seed) on the training pairs, rank the test set both ways, store per-query AP.

    ``shared_fit``: for a variant row (``ugach_real``, ``agah_real``), the model file its base row
    wrote for this seed with the same parameters: that fitted model is evaluated the variant's way
    instead of training the same networks again; its fit time and training history are reported.
    ``prefit``: (model, budget, fit seconds) of a fit already made for this seed (seeds trained
    together); the row records ``seeds_together`` (how many).

    Optional outputs (each written when its path is given):
    - ``precision_out``: per-query P@K both ways, K = 10, 20, …, 1000 clipped to the number of
      candidates (duplicates after clipping dropped), long format ``direction, query_clip_id,
      query_label, k, precision`` (Fig. 4 and any later test read it instead of re-ranking);
    - ``embeddings_out``: the test clips' learned audio and visual embeddings (Fig. 8); an empty
      table with ``has_embeddings = false`` in its metadata for methods without one (``random``);
    - ``model_out``: the fitted model with its visual PCA and feature settings
      (:func:`avcmr.models_io.save_model`; ``model_context`` gives ``dataset, pca_path, features,
      backbone_weights``), which ``avcmr query`` loads.
    """
    from avcmr.evaluation.metrics import DEFAULT_SCOPES, evaluate_source, method_scores
    from avcmr.methods.budgets import budgeted_method, training_summary

    data = load_feature_arrays(features_path) if data is None else data  # given: already read
    train, test = data["train"], data["test"]
    if prefit is not None:
        method, budget, fit_seconds = prefit
        shared_with = None
    else:
        method, budget = budgeted_method(method_name, params, len(train["labels"]), random_state=seed)
    log.info("training budget %s: %s", budget.label, budget.params)
    if prefit is not None:
        log.info("%r was fitted with its other seeds (%.1f s its share)", method, fit_seconds)
    elif shared_fit is None:
        log.info("fitting %r on %d pairs", method, len(train["labels"]))
        started = time.perf_counter()
        method.fit(train["audio"], train["visual"], train["labels"])
        fit_seconds = time.perf_counter() - started
        shared_with = None
    else:
        method, fit_seconds, shared_with = _shared_fit(shared_fit, method, method_name, seed)
    started = time.perf_counter()
    # Scores come a block of queries at a time from the test embeddings (no n_test² matrix);
    # P@K comes from the same two rankings as AP (ranking is the whole cost of evaluation).
    scores = method_scores(method, test["audio"], test["visual"])
    scopes = np.unique(np.minimum(np.asarray(DEFAULT_SCOPES), scores.shape[1])) if precision_out is not None else None
    per_query = evaluate_source(scores, test["labels"], test["labels"], seed, scopes)
    del scores
    eval_seconds = time.perf_counter() - started
    device = str(getattr(method, "device_", "cpu"))
    log.info("%s seed %d: MAP a→v %.4f, v→a %.4f (fit %.1f s on %s)", method_name, seed,
             per_query["a2v"].mean(), per_query["v2a"].mean(), fit_seconds, device)
    rows = {
        "direction": ["a2v"] * len(per_query["a2v"]) + ["v2a"] * len(per_query["v2a"]),
        "query_clip_id": list(test["clip_ids"]) * 2,
        "query_label": list(test["label_names"]) * 2,
        "ap": np.concatenate([per_query["a2v"], per_query["v2a"]]),
    }
    summary = {
        "method": method_name, "seed": seed, "fit_seconds": fit_seconds, "eval_seconds": eval_seconds,
        "device": device, "n_train": len(train["labels"]), "n_test": len(test["labels"]),
        "n_parameters": int(method.n_parameters()), "params": {k: repr(v) for k, v in method.get_params().items()},
        **training_summary(method_name, method, budget, method.get_params(), len(train["labels"])),
        "simplifications": getattr(method, "simplifications", ""),
        **({"fit_shared_with": shared_with} if shared_with else {}),
        **({"seeds_together": True} if prefit is not None else {}),
    }
    write_table(pa.table(rows, schema=schemas.PER_QUERY_AP), eval_out, schemas.PER_QUERY_AP, provenance,
                summary=summary)
    history = pd.DataFrame(getattr(method, "history_", []) or {"epoch": []})
    write_table(pa.Table.from_pandas(history, preserve_index=False), history_out, None, provenance,
                method=method_name, seed=seed)
    if precision_out is not None:
        n_candidates = len(test["labels"])
        parts = []
        for direction in ("a2v", "v2a"):
            precision = per_query[f"{direction}_precision"]
            parts.append(pd.DataFrame({
                "direction": direction,
                "query_clip_id": np.repeat(test["clip_ids"], len(scopes)),
                "query_label": np.repeat(test["label_names"], len(scopes)),
                "k": np.tile(scopes, len(test["labels"])).astype(np.int32),
                "precision": precision.reshape(-1),
            }))
        table = pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False)
        write_table(table, precision_out, schemas.PER_QUERY_PRECISION, provenance, method=method_name,
                    seed=seed, n_candidates=n_candidates, nominal_scopes=[int(k) for k in DEFAULT_SCOPES])
    if embeddings_out is not None:
        _write_test_embeddings(method, test, embeddings_out, provenance, method_name, seed)
    if model_out is not None:
        from avcmr.models_io import save_model

        context = dict(model_context or {})
        save_model(model_out, method, method_name=method_name, seed=seed, dataset=context.get("dataset", ""),
                   class_names=np.unique(np.concatenate([train["label_names"], test["label_names"]])),
                   pca_path=context["pca_path"], feature_settings=context.get("features", {}),
                   backbone_weights=context.get("backbone_weights", {}), provenance=provenance,
                   feature_source=context.get("feature_source", "extracted"),
                   extra={"summary": {k: v for k, v in summary.items() if k != "params"}})


def _shared_fit(path, unfitted, method_name: str, seed: int):
    """(fitted variant, its training's fit seconds, base row) from the base row's model file,
    checked to be the training this row would run: same seed and the same parameters."""
    from avcmr.methods.registry import VARIANT_BASES, as_variant
    from avcmr.models_io import load_model

    saved = load_model(path)
    base = VARIANT_BASES.get(method_name)
    if saved.header["method"] != base or int(saved.header["seed"]) != seed:
        raise ValueError(f"{path}: holds {saved.header['method']} seed {saved.header['seed']}, not the "
                         f"{base} seed {seed} fit that {method_name} shares")
    method = as_variant(saved.method, method_name)
    ours, theirs = ({k: repr(v) for k, v in m.get_params().items()} for m in (unfitted, method))
    if ours != theirs:
        differing = sorted(k for k in ours if ours[k] != theirs.get(k))
        raise ValueError(f"{path}: {base} seed {seed} was trained with other parameters than {method_name} "
                         f"asks for ({', '.join(differing)}); fit it on its own")
    fit_seconds = float(saved.header["summary"]["fit_seconds"])
    log.info("%s seed %d: evaluating the %s fit of the same seed and parameters (%s; trained in %.1f s)",
             method_name, seed, base, path, fit_seconds)
    return method, fit_seconds, base


def _write_test_embeddings(method, test: Mapping, out, provenance, method_name: str, seed: int) -> None:
    try:
        audio = np.asarray(method.embed_audio(test["audio"]), dtype=np.float32)
        visual = np.asarray(method.embed_visual(test["visual"]), dtype=np.float32)
        has_embeddings = True
    except NotImplementedError:
        audio = visual = np.zeros((0, 1), dtype=np.float32)
        has_embeddings = False
    n_rows = len(audio)
    table = pa.table({
        "clip_id": list(test["clip_ids"][:n_rows]), "label": list(test["label_names"][:n_rows]),
        "audio": vector_column(audio), "visual": vector_column(visual),
    })
    write_table(table, out, schemas.embeddings(audio.shape[1], visual.shape[1]), provenance,
                method=method_name, seed=seed, has_embeddings=has_embeddings,
                similarity_kind=getattr(method, "similarity_kind", "cosine"))


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


# --- YouTube datasets (VEGAS, AVE, AudioSet, VGGSound): listing, download, acquisition; weights --


def write_listing(spec: Mapping, shard_size: int, out, provenance, manifest_path=None, segment_paths=(),
                  folder_clips: pd.DataFrame | None = None) -> None:
    """``listing.parquet``: every clip the dataset lists (before any download or decoding), its shard.

    YouTube kinds: parsed from the manifest / segment lists (:mod:`avcmr.data.manifests`; the counts
    behind dropped rows, the list files' sha256 and caveats go to the metadata); folder: ``folder_clips``, the listing the workflow made at start, with
    its shards (:func:`avcmr.data.folder.list_folder_dataset`); synthetic: the generator's plan, where the
    shard of a clip is its position // shard_size, as in the stages that make the shards.
    """
    from avcmr.data.manifests import (
        FULL_LISTING_SCHEMA,
        LISTING_TABLE_COLUMNS,
        YOUTUBE_KINDS,
        dataset_listing,
        list_file_records,
    )

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
        "downloaded": _clip_ids(clip_paths),
        "decoded": _clip_ids(audio_paths),
        "usable": _clip_ids(vggish_paths) & _clip_ids(inception_paths),
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
