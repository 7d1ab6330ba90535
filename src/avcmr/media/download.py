"""Fetch the time window of YouTube clips with yt-dlp's Python API, resumably, recording what fails.

One clip at a time (a Snakemake job per shard; jobs are bounded by the ``youtube`` resource):

- a clip whose media file is already in ``media_dir`` and passes the checks below is not fetched
  again (so a re-run, or a shard re-run after a change, resumes);
- otherwise yt-dlp downloads ``[start_s, end_s)`` of ``url_template.format(youtube_id=...)`` in a
  modest format (≤ 360p, mp4/m4a preferred) into a temporary folder; the window goes through
  ffmpeg (``download_ranges``; ``exact_cuts`` re-encodes around the cuts so the clip starts at
  ``start_s``, not at the previous key frame);
- every file is probed with ffprobe before it is accepted: yt-dlp can report success and leave a
  truncated or unusable file (DATA.md), so a file whose duration is not the window's (± tolerance)
  is refused;
- errors that will not change on retry (404, unavailable / private / removed / geo-blocked video,
  a corrupt source) are recorded at once; others (429, 5xx, time-outs, bot checks, truncated
  transfers) are retried with exponential back-off and recorded when the attempts run out;
- a run of ``max_consecutive_transient`` transient failures in a row means the network (or
  YouTube) is down for us: the job stops with an error instead of writing thousands of failure
  rows; what was fetched stays, and the next run resumes.

Accepted files are renamed into place only after the checks, so ``media_dir`` never holds a
half-written clip under its final name.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from avcmr.media.ffmpeg_io import MediaError, MediaInfo, probe

log = logging.getLogger(__name__)

YOUTUBE_URL = "https://www.youtube.com/watch?v={youtube_id}"
# ≤ 360p: separate mp4 video + m4a audio, else a combined mp4, else any ≤ 360p; '?' lets formats of
# unknown height through (direct file URLs, the generic extractor).
MODEST_FORMAT = (
    "bv*[height<=?360][ext=mp4]+ba[ext=m4a]/b[height<=?360][ext=mp4]/bv*[height<=?360]+ba/b[height<=?360]"
)

# Lower-cased fragments of yt-dlp / ffmpeg messages that a retry cannot fix.
PERMANENT_ERRORS = (
    "http error 404", "http error 410", "video unavailable", "private video", "has been removed",
    "no longer available", "is not available", "in your country", "blocked it in your country",
    "geo restrict", "geo-restrict", "copyright", "has been terminated", "confirm your age", "members-only",
    "join this channel", "unsupported url", "ffmpeg exited with code", "does not exist", "requested format is not available",
    "no video formats found", "premieres in", "live event will begin", "video lasts",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DownloadFailed(Exception):
    """One clip could not be fetched; ``reason`` goes to the failures table."""

    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class NetworkDown(RuntimeError):
    """Too many clips in a row failed with transient errors: stop the job, resume later."""


@dataclass(frozen=True)
class DownloadSettings:
    """Config ``datasets.<name>.download`` (every key is described in the config schema)."""

    url_template: str = YOUTUBE_URL
    format: str = MODEST_FORMAT
    attempts: int = 3
    backoff_s: float = 10.0
    sleep_s: float = 2.0
    rate_limit: int | None = None
    socket_timeout_s: float = 30.0
    duration_tolerance_s: float = 0.5
    exact_cuts: bool = True
    cookies_file: str | None = None
    max_consecutive_transient: int = 20

    @classmethod
    def from_config(cls, values: Mapping | None) -> DownloadSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ValueError(f"unknown download settings {unknown}; known: {sorted(known)}")
        return cls(**dict(values or {}))


def clean_reason(message: str) -> str:
    """A yt-dlp message as a one-line, table-friendly reason."""
    text = _ANSI.sub("", str(message)).replace("ERROR: ", "")
    return " ".join(text.split())[:300]


def is_permanent(reason: str) -> bool:
    lowered = reason.lower()
    return any(fragment in lowered for fragment in PERMANENT_ERRORS)


def check_clip(path: str | Path, expected_s: float, tolerance_s: float) -> MediaInfo:
    """Probe a downloaded file: readable, at least one stream, duration = the window ± tolerance."""
    info = probe(path)
    if not (info.has_video or info.has_audio):
        raise MediaError("no audio or video stream")
    if abs(info.duration_s - expected_s) > tolerance_s:
        raise MediaError(f"downloaded file lasts {info.duration_s:.2f} s, the window {expected_s:.2f} s "
                         f"(tolerance {tolerance_s:g} s): truncated or cut wrong")
    return info


def cached_clip(media_dir: Path, clip_id: str) -> Path | None:
    """The accepted media file of a clip from an earlier run, if any."""
    matches = sorted(p for p in media_dir.glob(f"{glob_escape(clip_id)}.*") if p.is_file() and p.stem == clip_id)
    return matches[0] if matches else None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class _YtdlpLogger:
    """yt-dlp's messages into our log; errors are raised and recorded by the caller."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    info = debug

    def warning(self, message: str) -> None:
        log.info("yt-dlp warning: %s", clean_reason(message))

    def error(self, message: str) -> None:
        log.debug("yt-dlp error: %s", clean_reason(message))


def ytdlp_options(settings: DownloadSettings, start_s: float, end_s: float, outtmpl: str) -> dict:
    from yt_dlp.utils import download_range_func

    options = {
        "format": settings.format,
        "merge_output_format": "mp4",
        "download_ranges": download_range_func(None, [(float(start_s), float(end_s))]),
        "force_keyframes_at_cuts": settings.exact_cuts,
        "outtmpl": outtmpl,
        "noplaylist": True,
        "overwrites": True,
        "continuedl": False,
        "quiet": True,
        "noprogress": True,
        "logger": _YtdlpLogger(),
        # One HTTP-level retry inside yt-dlp; the back-off between attempts is ours.
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 1,
        "socket_timeout": settings.socket_timeout_s,
    }
    if settings.rate_limit:
        options["ratelimit"] = int(settings.rate_limit)
    if settings.cookies_file:
        options["cookiefile"] = settings.cookies_file
    return options


def fetch_clip(youtube_id: str, start_s: float, end_s: float, clip_id: str, media_dir: str | Path,
               settings: DownloadSettings) -> tuple[Path, MediaInfo]:
    """One attempt: download the window into a temporary folder, check it, move it into place."""
    import yt_dlp

    media_dir = Path(media_dir)
    work = media_dir / f".part-{clip_id}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    url = settings.url_template.format(youtube_id=youtube_id)
    try:
        options = ytdlp_options(settings, start_s, end_s, str(work / f"{clip_id}.%(ext)s"))
        try:
            with yt_dlp.YoutubeDL(options) as ydl:
                info = ydl.extract_info(url, download=True)
        except yt_dlp.utils.DownloadError as error:
            reason = clean_reason(str(error))
            raise DownloadFailed(reason, not is_permanent(reason)) from None
        video_duration = (info or {}).get("duration")
        if video_duration and video_duration < end_s - settings.duration_tolerance_s:
            raise DownloadFailed(f"video lasts {video_duration:.1f} s, the window ends at {end_s:.1f} s", False)
        files = [p for p in work.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if len(files) != 1:
            raise DownloadFailed(f"yt-dlp left {len(files)} media files instead of one", True)
        try:
            media_info = check_clip(files[0], end_s - start_s, settings.duration_tolerance_s)
        except MediaError as error:
            # A truncated transfer may succeed next time; a source that is too short will not (see above).
            raise DownloadFailed(error.reason, True) from None
        final = media_dir / f"{clip_id}{files[0].suffix}"
        files[0].replace(final)
        return final, media_info
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download_clips(rows: pd.DataFrame, media_dir: str | Path, settings: DownloadSettings, failures,
                   sleep: Callable[[float], None] = time.sleep) -> pd.DataFrame:
    """Fetch (or reuse) every clip of ``rows`` (``clip_id, youtube_id, start_s, end_s, label``).

    Returns the clips table (``clip_id, label, path, duration_s``) of the usable files; every other
    clip gets a row in ``failures`` (a :class:`~avcmr.io.failures.FailureLog`).
    """
    media_dir = Path(media_dir).resolve()
    media_dir.mkdir(parents=True, exist_ok=True)
    clips, consecutive_transient, fetched, reused = [], 0, 0, 0
    started, last_request = time.monotonic(), None
    for done, row in enumerate(rows.itertuples(index=False), start=1):
        expected = float(row.end_s) - float(row.start_s)
        cached = cached_clip(media_dir, row.clip_id)
        if cached is not None:
            try:
                info = check_clip(cached, expected, settings.duration_tolerance_s)
                clips.append((row.clip_id, row.label, str(cached), info.duration_s))
                reused += 1
                continue
            except MediaError as error:
                log.info("re-fetching %s: the file from an earlier run is not usable (%s)", row.clip_id, error.reason)
                cached.unlink()
        reason, transient = None, False
        for attempt in range(1, settings.attempts + 1):
            # Rate limit: at least sleep_s between requests; back-off doubles after each failure.
            if attempt > 1:
                sleep(settings.backoff_s * 2 ** (attempt - 2))
            elif last_request is not None:
                sleep(max(0.0, settings.sleep_s - (time.monotonic() - last_request)))
            try:
                path, info = fetch_clip(row.youtube_id, row.start_s, row.end_s, row.clip_id, media_dir, settings)
            except DownloadFailed as error:
                reason, transient = error.reason, error.transient
                log.info("%s attempt %d/%d: %s", row.clip_id, attempt, settings.attempts, reason)
                if not transient:
                    break
                continue
            except Exception as error:  # noqa: BLE001 - one clip must never stop the shard
                reason, transient = clean_reason(f"{type(error).__name__}: {error}"), True
                log.exception("%s attempt %d/%d failed unexpectedly", row.clip_id, attempt, settings.attempts)
                continue
            finally:
                last_request = time.monotonic()
            clips.append((row.clip_id, row.label, str(path), info.duration_s))
            fetched += 1
            reason = None
            break
        if reason is None:
            consecutive_transient = 0
        else:
            if transient:
                reason = f"{reason} (after {settings.attempts} attempts)"
                consecutive_transient += 1
            else:
                consecutive_transient = 0
            failures.record(row.clip_id, reason)
            if consecutive_transient >= settings.max_consecutive_transient:
                raise NetworkDown(
                    f"{consecutive_transient} clips in a row failed with transient errors (last: {reason}); "
                    "is the network up and YouTube reachable? Fetched files are kept: re-run to resume"
                )
        if done % 10 == 0 or done == len(rows):
            log.info("download: %d/%d clips (%d reused, %d fetched, %d failed) in %.0f s", done, len(rows),
                     reused, fetched, len(failures.rows), time.monotonic() - started)
    return pd.DataFrame(clips, columns=["clip_id", "label", "path", "duration_s"])
