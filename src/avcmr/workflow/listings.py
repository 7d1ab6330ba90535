"""Each dataset's clips and shards, known when the workflow starts (no checkpoints, so that
``snakemake -n`` shows the whole DAG).

A folder dataset is listed from its files (or its unpacked archive's member table,
:mod:`avcmr.data.folder`); a YouTube dataset from its lists (manifest, AudioSet segment CSVs,
:mod:`avcmr.data.manifests`); a synthetic or features dataset from its settings. A
:class:`Listings` reads each dataset once per Snakemake invocation. A missing or unreadable list
is a :class:`~avcmr.config.ConfigError` naming the dataset and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from avcmr.config import ConfigError, config_hash, n_synthetic_shards
from avcmr.data.archive import ARCHIVES, local_archive_path
from avcmr.data.folder import list_folder_dataset, shard_members
from avcmr.data.listing import Listing, ManifestError
from avcmr.data.manifests import (
    MANIFEST_CACHE,
    YOUTUBE_KINDS,
    check_sha256,
    dataset_listing,
    local_list_path,
    segment_sources,
)
from avcmr.io.http_fetch import is_url
from avcmr.io.parquet import read_metadata
from avcmr.workflow.provenance import archive_settings

MANIFEST_HELP = {
    "vegas": "no public list of VEGAS's YouTube ids and times exists; whoever has one writes it "
    "as a CSV/TSV/Parquet table with columns youtube_id, start_s, end_s, label (clip_id "
    "optional) and sets datasets.<name>.manifest to its path or URL; otherwise see README, "
    "'Release archives', 'Released feature files' or 'AudioSet subsets'.",
    "ave": "AVE's Annotations.txt comes with the AVE release (github.com/YapengTian/AVE-ECCV18, "
    "data/Annotations.txt); set datasets.<name>.manifest to its path or URL.",
    "vggsound": "vggsound.csv (CC BY 4.0) comes from the VGGSound page of Oxford's Visual Geometry "
    "Group (www.robots.ox.ac.uk/~vgg/data/vggsound/); set datasets.<name>.manifest to its path "
    "(README, 'VGGSound').",
    "segments": "AudioSet's segment lists are published at "
    "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/ (README, 'AudioSet subsets').",
}
UNPACK_FIRST = (
    "run `snakemake fetch_archives --cores 1` first, with the same --configfile if this run has "
    "one (it downloads the archive when it is a URL, checks it and unpacks it)"
)


def archive_paths(spec: Mapping) -> dict[str, str]:
    """The local archive (a download for a URL), the unpacking folder and the member table."""
    name = spec["name"]
    return {
        "archive": local_archive_path(name, spec["archive"]),
        "unpacked": spec.get("root") or f"{ARCHIVES}/{name}/unpacked",
        "members": f"{ARCHIVES}/{name}/members.parquet",
    }


class Listings:
    """The clips of every dataset of ``settings`` (name → settings), each read at most once."""

    def __init__(self, settings: Mapping[str, Mapping], manifest_cache: str = MANIFEST_CACHE):
        self.settings = settings
        self.manifest_cache = manifest_cache
        self._folders: dict[str, pd.DataFrame] = {}
        self._youtube: dict[str, Listing] = {}
        self._sizes: dict[str, tuple[int, int, float]] = {}

    # --- folder datasets (a user's folder, or a release archive unpacked into one) -----------------

    def folder(self, dataset: str) -> pd.DataFrame:
        """The folder dataset's clips with their shards and file fingerprints: the one source of
        shard membership (avcmr.data.folder). An archive dataset lists the member table of its
        unpacked archive."""
        if dataset not in self._folders:
            spec = self.settings[dataset]
            members = self.unpacked_members(dataset) if spec.get("archive") else None
            try:
                self._folders[dataset] = list_folder_dataset(spec, members)
            except (ValueError, OSError) as error:
                raise ConfigError(f"dataset {dataset!r}: {error}") from None
        return self._folders[dataset]

    def folder_members(self, dataset: str, shard: int) -> list[dict]:
        """One shard's members (ids, labels, paths, sizes, mtimes), a rerun trigger: the shard's
        jobs rerun when, and only when, its files change."""
        return shard_members(self.folder(dataset), shard)

    def folder_clips(self, dataset: str) -> list[dict] | None:
        """A folder dataset's whole listing for listing.parquet (None for other kinds)."""
        if self.settings[dataset]["kind"] != "folder":
            return None
        listing = self.folder(dataset)
        return listing[["clip_id", "label", "shard", "size", "mtime_ns"]].to_dict("records")

    def archive_file(self, dataset: str) -> str:
        """The local archive of the dataset, an error when it is a path and not there."""
        spec = self.settings[dataset]
        local = archive_paths(spec)["archive"]
        if not is_url(spec["archive"]) and not Path(local).is_file():
            raise ConfigError(
                f"dataset {dataset!r}: archive {local} not found; place your copy of the "
                f"release archive there, or set datasets.{dataset}.archive to its path or URL "
                "(README, 'Release archives')"
            )
        return local

    def unpacked_members(self, dataset: str) -> str:
        """The member table of the dataset's unpacked archive; an error when it is missing or was
        made with other settings (the listing is read before any job runs)."""
        spec = self.settings[dataset]
        members = archive_paths(spec)["members"]
        if not Path(members).is_file():
            raise ConfigError(f"dataset {dataset!r}: the archive {spec['archive']} is not unpacked yet; {UNPACK_FIRST}")
        if read_metadata(members).get("config_hash") != config_hash(archive_settings(spec)):
            raise ConfigError(f"dataset {dataset!r}: {members} was unpacked with other archive settings; {UNPACK_FIRST}")
        return members

    # --- YouTube datasets (vegas, ave, audioset, vggsound): their list files ------------------------

    def source_entries(self, dataset: str) -> list[tuple[str, str, str, str | None]]:
        """(role, configured path or URL, local path, expected sha256) of a dataset's list files."""
        spec = self.settings[dataset]
        entries = []
        if "manifest" in spec:
            entries.append(("manifest", spec["manifest"], spec.get("manifest_sha256")))
        try:
            segments = segment_sources(spec)
        except ManifestError as error:
            raise ConfigError(f"dataset {dataset!r}: {error}") from None
        pinned = spec.get("segments_sha256", {})
        entries += [
            (f"segments{i}", s, pinned.get(Path(urlparse(s).path).name)) for i, s in enumerate(segments)
        ]
        return [
            (role, source, local_list_path(dataset, role, source, self.manifest_cache), sha256)
            for role, source, sha256 in entries
        ]

    def list_files(self, dataset: str) -> dict:
        """{"manifest": local path (if the kind has one), "segments": [local paths]}; {} for other
        kinds."""
        if self.settings[dataset]["kind"] not in YOUTUBE_KINDS:
            return {}
        local = {role: path for role, _, path, _ in self.source_entries(dataset)}
        inputs = {"manifest": local["manifest"]} if "manifest" in local else {}
        inputs["segments"] = [p for r, p in local.items() if r.startswith("segments")]
        return inputs

    def remote_sources(self) -> dict[str, tuple[str, str | None]]:
        """{cached path: (url, expected sha256)} of every list file configured as a URL."""
        return {
            local: (source, sha256)
            for dataset, spec in self.settings.items()
            if spec["kind"] in YOUTUBE_KINDS
            for _, source, local, sha256 in self.source_entries(dataset)
            if is_url(source)
        }

    def youtube(self, dataset: str) -> Listing:
        """The parsed lists of a YouTube dataset."""
        if dataset in self._youtube:
            return self._youtube[dataset]
        spec = self.settings[dataset]
        for role, source, local, sha256 in self.source_entries(dataset):
            if not Path(local).is_file():
                if is_url(source):
                    raise ConfigError(
                        f"dataset {dataset!r}: the {role} list {source} is not downloaded yet; run "
                        f"`snakemake fetch_manifests --cores 1` (with the same --configfile if this run "
                        f"has one; needs internet) or download it to {local}"
                    )
                help_key = spec["kind"] if role == "manifest" else "segments"
                raise ConfigError(f"dataset {dataset!r}: {role} file {local} not found. {MANIFEST_HELP.get(help_key, '')}")
            try:
                check_sha256(local, sha256)
            except ManifestError as error:
                raise ConfigError(f"dataset {dataset!r}: {error}") from None
        inputs = self.list_files(dataset)
        try:
            listing = dataset_listing(spec, inputs.get("manifest"), inputs["segments"], f"{self.manifest_cache}/parsed")
        except (ManifestError, OSError, ValueError, KeyError) as error:
            raise ConfigError(f"dataset {dataset!r}: {error}") from None
        if listing.clips.empty:
            raise ConfigError(f"dataset {dataset!r}: the manifest lists no clips")
        self._youtube[dataset] = listing
        return listing

    # --- every kind -----------------------------------------------------------------------------

    def shards(self, dataset: str) -> list[int]:
        spec = self.settings[dataset]
        if spec["kind"] == "features":  # one import job, no shards (feature_file.smk)
            return []
        if spec["kind"] == "synthetic":
            return list(range(n_synthetic_shards(spec)))
        if spec["kind"] in YOUTUBE_KINDS:
            n_clips = len(self.youtube(dataset).clips)
            return list(range(math.ceil(n_clips / spec["features"]["shard_size"])))
        return list(range(self.folder(dataset).attrs["n_shards"]))

    def size(self, dataset: str) -> tuple[int, int, float]:
        """(clips listed, classes, longest clip in s) of a dataset, known at parse time."""
        if dataset not in self._sizes:
            self._sizes[dataset] = self._size(dataset)
        return self._sizes[dataset]

    def _size(self, dataset: str) -> tuple[int, int, float]:
        spec = self.settings[dataset]
        if spec["kind"] == "synthetic":
            from avcmr.data.synthetic import SyntheticSpec

            synthetic = spec.get("synthetic", {})
            return (
                synthetic.get("n_clips", SyntheticSpec.n_clips),
                synthetic.get("n_classes", SyntheticSpec.n_classes),
                synthetic.get("max_duration_s", SyntheticSpec.max_duration_s),
            )
        if spec["kind"] == "features":
            from avcmr.data.feature_file import FeatureFileError, FeatureFileSpec, file_size

            try:
                n_rows, n_classes = file_size(FeatureFileSpec.from_config(dataset, spec["feature_file"]))
            except FeatureFileError as error:
                raise ConfigError(str(error)) from None
            return n_rows, n_classes, 0.0  # pooled vectors: no frames
        clips = self.youtube(dataset).clips if spec["kind"] in YOUTUBE_KINDS else self.folder(dataset)
        # Clips of the YouTube datasets are ≤ 10 s; a folder's are assumed so too (decode.smk).
        return len(clips), clips["label"].nunique(), spec.get("clip_seconds", 10.0)

    def feature_file(self, dataset: str) -> str:
        """A features dataset's file, whose shapes are read here so that an unreadable file stops
        the run with its one line before any job (a memory estimate reading it first would be
        reported with a traceback)."""
        self.size(dataset)
        return self.settings[dataset]["feature_file"]["path"]
