"""A user's own clips: ``<root>/<label>/<clip>.<ext>`` → a clip listing with sanitised ids."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

DEFAULT_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov", "m4v")


def list_folder(root: str | Path, extensions=DEFAULT_EXTENSIONS) -> pd.DataFrame:
    """One row per clip (``clip_id, label, path``), sorted; ids are ``<label>__<stem>`` made filesystem-safe."""
    root = Path(root)
    suffixes = {f".{ext.lower().lstrip('.')}" for ext in extensions}
    rows = []
    for path in sorted(root.glob("*/*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            label = path.parent.name
            clip_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{label}__{path.stem}")
            rows.append({"clip_id": clip_id, "label": label, "path": str(path.resolve())})
    listing = pd.DataFrame(rows, columns=["clip_id", "label", "path"])
    duplicated = listing["clip_id"][listing["clip_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"clip ids collide after sanitising file names: {duplicated[:5]}")
    if listing.empty:
        raise ValueError(f"no clips with extensions {sorted(suffixes)} under {root}/<label>/")
    return listing
