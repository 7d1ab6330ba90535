"""Which backbone weights a run uses: the official files, or seeded random weights.

Config (``datasets.<name>.backbone_weights``)::

    vggish: random                      # or {checkpoint: path, pca_params: path,
                                        #     checkpoint_sha256: hex, pca_params_sha256: hex}
    inception: random                   # or a path to the Keras InceptionV3 no-top .h5 file,
                                        #    or {path: ..., sha256: hex}
    seed: 0                             # seeds the random weights

Random weights exist for the embedded synthetic dataset and tests only: every table computed from
them says so in its metadata, and paper datasets refuse them unless explicitly allowed.

An expected sha256 is checked whenever it is configured (a mismatch stops the job with the two
digests); the digest actually loaded is always written to the feature tables' metadata. The
official release publishes no sha256 for these files, so none is built in: the only published
digest we know is the MD5 that Keras checks for the InceptionV3 no-top file, and
:func:`fetch_official_file` checks it too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from avcmr.io.checksums import file_digest
from avcmr.io.http_fetch import FetchError, FileCheckError, fetch_file

log = logging.getLogger(__name__)

# Where the official files come from (printed in errors so users know how to get them).
OFFICIAL_SOURCES = {
    "VGGish checkpoint": "vggish_model.ckpt from the AudioSet VGGish release (tensorflow/models, research/audioset/vggish)",
    "VGGish PCA parameters": "vggish_pca_params.npz from the AudioSet VGGish release (tensorflow/models, research/audioset/vggish)",
    "InceptionV3 weights": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 from the Keras applications release",
}


@dataclass(frozen=True)
class OfficialFile:
    what: str
    url: str
    path: str
    md5: str | None = None


# The download addresses of the releases (AudioSet VGGish README; keras.applications.inception_v3).
OFFICIAL_FILES = {
    "vggish_checkpoint": OfficialFile(
        "VGGish checkpoint", "https://storage.googleapis.com/audioset/vggish_model.ckpt",
        "resources/weights/vggish_model.ckpt"),
    "vggish_pca_params": OfficialFile(
        "VGGish PCA parameters", "https://storage.googleapis.com/audioset/vggish_pca_params.npz",
        "resources/weights/vggish_pca_params.npz"),
    "inception": OfficialFile(
        "InceptionV3 weights",
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resources/weights/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="bcbd6486424b2319ff4ef7d526e38f63"),  # the file_hash keras.applications checks
}
FETCH_HINT = "(when online, `snakemake fetch_weights --cores 1` downloads the official files into resources/weights/)"


class MissingWeightsError(FileNotFoundError):
    pass


class WeightsChecksumError(ValueError):
    pass


@dataclass(frozen=True)
class WeightsSpec:
    backbone: str
    is_random: bool
    seed: int = 0
    paths: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)  # path key → expected digest (only those configured)

    def describe(self) -> str:
        if self.is_random:
            return f"random(seed={self.seed})"
        return ", ".join(f"{key}={value}" for key, value in sorted(self.paths.items()))

    def require(self, key: str, what: str) -> Path:
        """The file of ``key`` (e.g. ``checkpoint``), present and matching its configured sha256."""
        return require_file(self.paths[key], what, self.sha256.get(key))


def parse_weights(backbone_weights: dict, backbone: str) -> WeightsSpec:
    """The spec of one backbone (``vggish`` or ``inception``) from the dataset's config block."""
    value = backbone_weights.get(backbone, "random")
    seed = int(backbone_weights.get("seed", 0))
    if value == "random":
        return WeightsSpec(backbone, True, seed)
    if backbone == "vggish":
        if isinstance(value, str):
            value = {"checkpoint": value}
        paths = {k: str(v) for k, v in value.items() if not k.endswith("_sha256") and v is not None}
        digests = {k[: -len("_sha256")]: str(v).lower() for k, v in value.items() if k.endswith("_sha256") and v}
        return WeightsSpec(backbone, False, seed, paths, digests)
    if isinstance(value, dict):
        digests = {"h5": str(value["sha256"]).lower()} if value.get("sha256") else {}
        return WeightsSpec(backbone, False, seed, {"h5": str(value["path"])}, digests)
    return WeightsSpec(backbone, False, seed, {"h5": str(value)})


def weight_files(path: str | Path) -> list[Path]:
    """The files of a weights path: the file itself, or those of a TF checkpoint prefix
    (``x.ckpt`` → ``x.ckpt.index`` + data files) in name order, less an unfinished download
    (``x.ckpt.part``, :func:`avcmr.io.http_fetch.partial_path`)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(file for file in path.parent.glob(f"{path.name}.*") if not file.name.endswith(".part"))


def file_sha256(path: str | Path) -> str:
    """sha256 of a weights file; of a TF checkpoint prefix, of its files' bytes in name order."""
    return file_digest(weight_files(path), "sha256")


def require_file(path: str | Path, what: str, sha256: str | None = None) -> Path:
    """The path if it exists (and matches ``sha256`` when given), else a one-line error naming it and
    where the file comes from."""
    path = Path(path)
    if not path.is_file() and not Path(f"{path}.index").is_file():  # TF checkpoints are a file set
        raise MissingWeightsError(
            f"{what} not found at {path}: get {OFFICIAL_SOURCES.get(what, 'the official file')} and place it there "
            f"(or point backbone_weights in the config at it) {FETCH_HINT}"
        )
    if sha256:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise WeightsChecksumError(
                f"{what} at {path} has sha256 {actual}, the config expects {sha256}: the file is damaged or not "
                "the official release; delete it and fetch it again (or correct the configured sha256)"
            )
    return path


def describe_weights(backbone_weights: dict) -> dict[str, str]:
    """Human-readable weights of both backbones, for table metadata and report headers."""
    return {backbone: parse_weights(backbone_weights, backbone).describe() for backbone in ("vggish", "inception")}


def uses_random_weights(backbone_weights: dict) -> bool:
    return any(parse_weights(backbone_weights, b).is_random for b in ("vggish", "inception"))


def official_file_settings(overrides: dict | None = None) -> dict[str, dict]:
    """``url, path, sha256, md5`` of each official file: built-in release facts, then the config's
    ``official_weights`` overrides."""
    settings = {}
    for name, official in OFFICIAL_FILES.items():
        entry = {"what": official.what, "url": official.url, "path": official.path, "sha256": None, "md5": official.md5}
        entry.update({k: v for k, v in ((overrides or {}).get(name) or {}).items()})
        settings[name] = entry
    unknown = sorted(set(overrides or {}) - set(OFFICIAL_FILES))
    if unknown:
        raise ValueError(f"official_weights names unknown files {unknown}; known: {sorted(OFFICIAL_FILES)}")
    return settings


def fetch_official_file(url: str, path: str | Path, what: str, sha256: str | None = None, md5: str | None = None,
                        timeout_s: float = 60.0, attempts: int = 3, backoff_s: float = 5.0) -> dict:
    """Download ``url`` to ``path`` (:func:`avcmr.io.http_fetch.fetch_file`: resumable, atomic) unless
    a file that passes the checks is there already.

    Returns a record (``what, path, url, bytes, sha256, expected_sha256, md5_checked``) for the
    metadata file. A wrong sha256 or MD5 raises :class:`WeightsChecksumError`; offline (or any other
    download error), :class:`MissingWeightsError` says which file to place where.
    """
    path = Path(path)
    try:
        fetch_file(url, path, digests={"sha256": sha256, "md5": md5}, attempts=attempts, backoff_s=backoff_s,
                   timeout_s=timeout_s)
    except FileCheckError as error:
        if error.check == "md5":
            message = f"{what} from {url} does not match the published MD5 {md5} (its md5 is {error.actual})"
        else:
            message = f"{what} from {url} has sha256 {error.actual}, the config expects {sha256}"
        raise WeightsChecksumError(f"{message}; the download was deleted") from None
    except FetchError as error:
        raise MissingWeightsError(
            f"{error}; without internet, get {OFFICIAL_SOURCES.get(what, 'the official file')} and place it at {path}"
        ) from None
    actual = file_sha256(path)
    log.info("%s at %s (sha256 %s)", what, path, actual)
    return _record(what, path, url, actual, sha256, md5)


def _record(what, path, url, actual, sha256, md5) -> dict:
    return {"what": what, "path": str(path), "url": url, "bytes": Path(path).stat().st_size, "sha256": actual,
            "expected_sha256": sha256, "md5_checked": md5}
