"""Download one large file over HTTP(S), resumably, with size and sha256 checks.

For release archives (VEGAS.zip, AVE_Dataset.zip: gigabytes). Bytes go to ``<name>.part`` beside
the destination and are flushed chunk by chunk, so an interrupted transfer (a dropped connection,
a killed job) resumes with an HTTP Range request from the bytes already on disk: at most the chunk
in flight is fetched twice. The file gets its final name only after the size and sha256 checks;
a file that fails them is deleted, partial part included, so nothing half-written or wrong stays
to be trusted by a later run. A server that ignores Range (answers 200 to a ranged request) makes
the download start over, which the log says.
"""

from __future__ import annotations

import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from avcmr.io.checksums import file_sha256

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class FetchError(RuntimeError):
    """A download that failed for good (after its attempts) or gave the wrong bytes; one line."""


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.part")


def verify_file(path: str | Path, sha256: str | None, size: int | None, what: str) -> None:
    """Raise :class:`FetchError` when ``path`` has not the expected size or sha256 (when given)."""
    actual_size = Path(path).stat().st_size
    if size is not None and actual_size != int(size):
        raise FetchError(f"{what}: {actual_size} bytes, expected {int(size)}")
    if sha256:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise FetchError(f"{what}: sha256 {actual}, expected {sha256.lower()} (a different or corrupted file)")


def fetch_resumable(url: str, path: str | Path, sha256: str | None = None, size: int | None = None,
                    attempts: int = 3, backoff_s: float = 5.0, timeout_s: float = 60.0,
                    chunk_bytes: int = CHUNK_BYTES) -> Path:
    """Download ``url`` to ``path`` (resuming ``path.part``), check ``size`` and ``sha256``; return ``path``.

    An existing ``path`` that passes the checks is kept without a request. Transient errors (a
    dropped connection, a time-out, 5xx) are retried ``attempts`` times from the bytes on disk; a
    4xx, the wrong size or the wrong sha256 stop at once with :class:`FetchError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        verify_file(path, sha256, size, str(path))
        log.info("%s is there and passes its checks; not fetched again", path)
        return path
    partial = partial_path(path)
    for attempt in range(1, attempts + 1):
        try:
            total = _transfer(url, partial, timeout_s, chunk_bytes)
            break
        except FetchError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as error:
            on_disk = partial.stat().st_size if partial.exists() else 0
            if isinstance(error, urllib.error.HTTPError) and error.code < 500:
                raise FetchError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
            if attempt == attempts:
                raise FetchError(f"could not download {url} after {attempts} attempts ({error}); {on_disk} bytes "
                                 f"are kept in {partial} and the next run resumes from them") from None
            log.warning("attempt %d/%d of %s failed (%s); resuming from byte %d", attempt, attempts, url, error,
                        on_disk)
            time.sleep(backoff_s * 2 ** (attempt - 1))
    try:
        if total is not None and partial.stat().st_size != total:
            raise FetchError(f"{url}: got {partial.stat().st_size} bytes, the server announced {total}")
        verify_file(partial, sha256, size, url)
    except FetchError as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{error}; the download was deleted") from None
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
