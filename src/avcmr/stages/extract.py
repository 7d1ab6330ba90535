"""Extraction stages (rules of ``decode.smk``, ``audio.smk``, ``visual.smk``): decoded frames and audio
of a shard, log-mel patches, VGGish and InceptionV3 features. TensorFlow is imported by the backbone
stages only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from avcmr.io import schemas
from avcmr.io.failures import FailureLog
from avcmr.io.parquet import read_table, vector_column, vectors_from_column, write_table

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
