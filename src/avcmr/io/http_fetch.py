"""Download one file over HTTP(S), resumably, with size and digest checks.

The one downloader of the package: release archives (VEGAS.zip, AVE_Dataset.zip: gigabytes),
the official backbone weights and the datasets' list files all come through :func:`fetch_file`.
Bytes go to ``<name>.part`` beside the destination and are flushed chunk by chunk, so an
interrupted transfer (a dropped connection, a killed job) resumes with an HTTP Range request from
the bytes already on disk: at most the chunk in flight is fetched twice. The file gets its final
name (an atomic rename) only after the size and digest checks; a download that fails them is
deleted, partial part included, so nothing half-written or wrong stays to be trusted by a later
run. A server that ignores Range (answers 200 to a ranged request) makes the download start over,
which the log says.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from avcmr.io.checksums import file_digest

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class FetchError(RuntimeError):
    """A download that failed for good (after its attempts) or gave the wrong bytes; one line."""


class FileCheckError(FetchError):
    """A file whose size or digest is not the expected one (``check``: ``bytes`` or the algorithm)."""

    def __init__(self, message: str, check: str, actual: str | int, expected: str | int):
        super().__init__(message)
        self.check, self.actual, self.expected = check, actual, expected


def is_url(text: str) -> bool:
    """Whether a configured source is a URL to download (else a local path)."""
    return str(text).startswith(("http://", "https://", "ftp://"))


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.part")


def verify_file(path: str | Path, size: int | None = None, digests: Mapping[str, str | None] | None = None,
                what: str | None = None) -> None:
    """Raise :class:`FileCheckError` when ``path`` has not the expected ``size`` or ``digests``
    (algorithm name → expected hex digest; unset ones are skipped), checked in that order."""
    what = what or str(path)
    actual_size = Path(path).stat().st_size
    if size is not None and actual_size != int(size):
        raise FileCheckError(f"{what}: {actual_size} bytes, expected {int(size)}", "bytes", actual_size, int(size))
    for algorithm, expected in (digests or {}).items():
        if not expected:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected.lower():
            raise FileCheckError(f"{what}: {algorithm} {actual}, expected {expected.lower()} (a different or "
                                 "corrupted file)", algorithm, actual, expected.lower())


def fetch_file(url: str, path: str | Path, size: int | None = None,
               digests: Mapping[str, str | None] | None = None, attempts: int = 3, backoff_s: float = 5.0,
               timeout_s: float = 60.0, chunk_bytes: int = CHUNK_BYTES) -> Path:
    """Download ``url`` to ``path`` (resuming ``path.part``), check ``size`` and ``digests``; return ``path``.

    ``digests``: algorithm name → expected hex digest (``{"sha256": ..., "md5": ...}``). An existing
    ``path`` that passes the checks is kept without a request; one that fails them is fetched again
    (and replaced only by a download that passes). Transient errors (a dropped connection, a
    time-out, 5xx) are retried ``attempts`` times from the bytes on disk, waiting ``backoff_s``,
    then twice as long, ...; a 4xx stops at once with :class:`FetchError`, the wrong size or digest
    with :class:`FileCheckError` (the download deleted).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        try:
            verify_file(path, size, digests)
            log.info("%s is there and passes its checks; not fetched again", path)
            return path
        except FileCheckError as error:
            log.warning("%s; fetching it again", error)
    partial = partial_path(path)
    for attempt in range(1, attempts + 1):
        try:
            total = _transfer(url, partial, timeout_s, chunk_bytes)
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as error:
            on_disk = partial.stat().st_size if partial.exists() else 0
            if isinstance(error, urllib.error.HTTPError) and error.code < 500:
                raise FetchError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
            if attempt == attempts:
                kept = (f"; {on_disk} bytes are kept in {partial} and the next run resumes from them"
                        if on_disk else "")
                raise FetchError(f"could not download {url} after {attempts} attempts ({error}){kept}") from None
            log.warning("attempt %d/%d of %s failed (%s); resuming from byte %d", attempt, attempts, url, error,
                        on_disk)
            time.sleep(backoff_s * 2 ** (attempt - 1))
    try:
        if total is not None and partial.stat().st_size != total:
            received = partial.stat().st_size
            raise FileCheckError(f"{url}: got {received} bytes, the server announced {total}", "bytes", received,
                                 total)
        verify_file(partial, size, digests, url)
    except FileCheckError as error:
        partial.unlink(missing_ok=True)
        raise FileCheckError(f"{error}; the download was deleted", error.check, error.actual,
                             error.expected) from None
    os.replace(partial, path)
    log.info("fetched %s → %s (%d bytes)", url, path, path.stat().st_size)
    return path


def _transfer(url: str, partial: Path, timeout_s: float, chunk_bytes: int) -> int | None:
    """Append the rest of ``url`` to ``partial``; return the file's total size when the server says it."""
    start = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # nothing left to fetch: the part is complete (checked next)
            total = error.headers.get("Content-Range", "").rpartition("/")[2]
            return int(total) if total.isdigit() else None
        raise
    with response:
        if start and response.status != 206:
            log.warning("%s ignores HTTP Range; fetching from the start", url)
            start = 0
        total = _total_size(response, start)
        mode = "ab" if start else "wb"
        log.info("fetching %s from byte %d of %s", url, start, total if total is not None else "?")
        with open(partial, mode) as handle:
            while block := response.read(chunk_bytes):
                handle.write(block)
                handle.flush()
    received = partial.stat().st_size
    if total is not None and received < total:  # the server closed early: resume on the next attempt
        raise http.client.IncompleteRead(b"", total - received)
    return total


def _total_size(response, start: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return start + int(length) if length is not None and length.isdigit() else None
