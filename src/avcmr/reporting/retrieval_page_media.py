"""The retrieval page's media: for each clip on the page, one ffmpeg call cuts a frame thumbnail
and/or a short audio extract from the middle of the clip's own file; the report's copy carries
them inline as data URIs. Used by ``avcmr.reporting.retrieval_page``.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avcmr.io.parquet import read_table
from avcmr.reporting.retrieval_page_types import (
    QUERY_MEDIA,
    RESULT_MEDIA,
    PageData,
    PageSettings,
    PreviewError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioEncoding:
    suffix: str
    mime: str
    codec_args: tuple[str, ...]


# Ogg/Opus: ≈ 9 KB for 3 s; WAV (16-bit, 16 kHz mono: 96 KB for 3 s) where ffmpeg lacks libopus.
OPUS = AudioEncoding(".ogg", "audio/ogg", ("-c:a", "libopus", "-b:a", "24k"))
WAV = AudioEncoding(".wav", "audio/wav", ("-c:a", "pcm_s16le"))
AUDIO_SAMPLE_RATE = 16000
MEDIA_MIME = {".jpg": "image/jpeg", OPUS.suffix: OPUS.mime, WAV.suffix: WAV.mime}


def audio_encoding(encoders_listing: str | None = None) -> AudioEncoding:
    """Opus when ``ffmpeg -encoders`` lists libopus, else WAV (every ffmpeg writes it, every browser
    plays it)."""
    if encoders_listing is None:
        encoders_listing = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True,
                                          timeout=60).stdout
    return OPUS if re.search(r"^\s*A\S*\s+libopus\s", encoders_listing, re.MULTILINE) else WAV


def media_needs(data: PageData) -> dict[str, set[str]]:
    """Clip id → what the page shows of it (``thumbnail``, ``audio``)."""
    needs: dict[str, set[str]] = {}
    for section in data.sections:
        for direction, queries in section.queries.items():
            for query in queries:
                needs.setdefault(query.clip_id, set()).update(QUERY_MEDIA)
                for result in query.results:
                    needs.setdefault(result.clip_id, set()).add(RESULT_MEDIA[direction])
    return needs


def cut_preview(path, duration_s: float, needs: set[str], stem: Path, settings: PageSettings,
                encoding: AudioEncoding) -> dict[str, Path]:
    """One ffmpeg call: the clip's thumbnail (the first frame of the window, ``thumbnail_width`` px
    wide, JPEG) and/or its audio extract (the window, 16 kHz mono), the window being
    ``audio_seconds`` (or the whole clip when shorter) in the middle of the clip."""
    path = Path(path)
    if not path.is_file():
        raise PreviewError(f"file not found: {path}")
    duration = float(duration_s) if duration_s is not None and np.isfinite(duration_s) and duration_s > 0 else math.inf
    window = min(settings.audio_seconds, duration)
    start = (duration - window) / 2 if np.isfinite(duration) else 0.0
    # One decoding thread: the job runs ``threads`` of these processes at once.
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-threads", "1", "-ss", f"{start:.3f}",
               "-t", f"{window:.3f}", "-i", str(path)]
    outputs = {}
    if "thumbnail" in needs:
        outputs["thumbnail"] = stem.with_suffix(".jpg")
        command += ["-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={settings.thumbnail_width}:-2",
                    "-q:v", "5", str(outputs["thumbnail"])]
    if "audio" in needs:
        outputs["audio"] = stem.with_suffix(encoding.suffix)
        command += ["-map", "0:a:0", "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE), *encoding.codec_args,
                    str(outputs["audio"])]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise PreviewError("ffmpeg took more than 300 s") from None
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0:
        raise PreviewError(f"ffmpeg failed ({lines[-1][:200] if lines else f'exit status {result.returncode}'})")
    empty = [kind for kind, target in outputs.items() if not target.is_file() or target.stat().st_size == 0]
    if empty:
        raise PreviewError(f"ffmpeg wrote no {' and no '.join(empty)}")
    return outputs


def cut_previews(needs: Mapping[str, set[str]], clips: Mapping[str, tuple[str, float]], folder: Path,
                 settings: PageSettings, threads: int = 1) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """({clip id: {kind: file name in ``folder``}}, {clip id: why it has no media}); ``clips`` maps
    a clip id to (media path, duration in s). Clips are cut on ``threads`` threads (ffmpeg processes)."""
    from avcmr.media.ffmpeg_io import require_ffmpeg

    require_ffmpeg()
    encoding = audio_encoding()
    names = {clip_id: f"clip{index:05d}" for index, clip_id in enumerate(sorted(needs))}
    media: dict[str, dict[str, str]] = {}
    failures: dict[str, str] = {}

    def cut(clip_id):
        if clip_id not in clips:
            raise PreviewError("not in manifest.parquet")
        path, duration = clips[clip_id]
        return cut_preview(path, duration, needs[clip_id], folder / names[clip_id], settings, encoding)

    with ThreadPoolExecutor(max(1, int(threads))) as pool:
        futures = {clip_id: pool.submit(cut, clip_id) for clip_id in sorted(needs)}
        for clip_id, future in futures.items():
            try:
                media[clip_id] = {kind: target.name for kind, target in future.result().items()}
            except PreviewError as error:
                failures[clip_id] = error.reason
                log.warning("no media for %s: %s", clip_id, error.reason)
    log.info("media of %d clips cut (%s audio), %d without", len(media), encoding.suffix[1:], len(failures))
    return media, failures


def data_uris(folder: Path, media: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """File name → data URI of every media file in ``folder`` (the report copy's inline media)."""
    uris = {}
    for names in media.values():
        for name in names.values():
            encoded = base64.b64encode((folder / name).read_bytes()).decode("ascii")
            uris[name] = f"data:{MEDIA_MIME[Path(name).suffix]};base64,{encoded}"
    return uris


def manifest_clips(manifest_path, wanted) -> dict[str, tuple[str, float]]:
    """Clip id → (media path, duration in s) from ``manifest.parquet``, for the ``wanted`` clips."""
    table = read_table(manifest_path, ["clip_id", "path", "duration_s"]).to_pydict()
    wanted = set(wanted)
    return {clip_id: (path, duration) for clip_id, path, duration
            in zip(table["clip_id"], table["path"], table["duration_s"], strict=True) if clip_id in wanted}
