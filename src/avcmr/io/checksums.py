"""The digest of a file (or of a file set, such as a TF checkpoint), by any hashlib algorithm name.

The one place where files are hashed: downloads, list files, archives, feature files and backbone
weights all call :func:`file_digest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path


def file_digest(paths: str | Path | Sequence[str | Path], algorithm: str = "sha256") -> str:
    """Hex digest (``hashlib`` algorithm name: ``sha256``, ``md5``, ...) of a file's bytes, or of the
    bytes of several files read one after the other in the given order.

    Files are read by :func:`hashlib.file_digest` (chunked, never whole in memory).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    digest = hashlib.new(algorithm, usedforsecurity=False)  # integrity checks, not security
    for path in paths:
        with open(path, "rb") as handle:
            # file_digest takes a factory: handing it the running object chains the files.
            hashlib.file_digest(handle, lambda: digest)
    return digest.hexdigest()
