"""Trained models on disk: one file per (method, seed), everything a query on a new clip needs.

``results/{dataset}/models/{method}_seed{seed}.joblib`` holds

- a header (plain values only): the format name and version, the avcmr and library versions that
  wrote it, method, seed, hyper-parameters, dataset, class names, the feature settings (fps, frame
  size, sample rate, VGGish post-processing, the backbones' precision where not float32) and the
  backbone weights the features came from;
- the fitted visual PCA (2048 → pca_dim, fitted on the training frames) as arrays;
- the fitted estimator, pickled separately, so that the header can be read (and a file from an
  incompatible avcmr refused with a clear message) before any avcmr class is unpickled.

Networks are moved to the CPU before saving, so a model trained on a GPU loads anywhere; the
device it was trained on is kept in the header (``fitted_device``).

Like any pickle, a model file can run code when loaded: load only files you (or your workflow) wrote.
"""

from __future__ import annotations

import copy
import logging
import pickle
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avcmr import __version__
from avcmr.features.pca import StreamingPCA
from avcmr.io.parquet import (
    atomic_path,
    library_versions,
    read_metadata,
    read_table,
    vectors_from_column,
)

log = logging.getLogger(__name__)

MODEL_FORMAT = "avcmr-model"
# Bump when the file layout or the meaning of a header field changes; files of another format
# version are refused. Within one format version, files from another avcmr minor release are
# refused too, as the pickled estimator classes may have changed (0.x: minor releases may break).
MODEL_FORMAT_VERSION = 1


# The feature settings a saved model needs to turn a new clip into the features it was trained on.
MODEL_FEATURE_KEYS = ("fps", "frame_size", "sample_rate", "pca_dim", "vggish_postprocess", "inference_precision")


def model_feature_settings(features: Mapping) -> dict:
    """The :data:`MODEL_FEATURE_KEYS` of ``features``; the backbones' precision only where it is not
    the default float32 (a header without it means float32), so that models trained at float32 keep
    the header, and the workflow's job parameters, they had before the precision was recorded."""
    return {key: features[key] for key in MODEL_FEATURE_KEYS
            if key in features and not (key == "inference_precision" and features[key] == "float32")}


class ModelFileError(ValueError):
    """A model file that cannot be used (missing, not an avcmr model, incompatible version)."""


@dataclass
class SavedModel:
    """A loaded model file: the fitted estimator, the visual PCA and the header."""

    method: object
    pca: StreamingPCA
    header: dict = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.header["class_names"])

    @property
    def random_weights(self) -> bool:
        return bool(self.header.get("random_weights", False))


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _cpu_copy(method):
    """A copy of the estimator with every torch module / tensor on the CPU (or the original when
    torch is not involved). A process that never imported torch holds no torch object, so a
    closed-form method's job does not import it (≈ 1.5 s) just to find that out."""
    torch = sys.modules.get("torch")
    if torch is None:
        return method
    state = vars(method)
    uses_torch = any(isinstance(v, torch.nn.Module | torch.Tensor) for v in state.values())
    if not uses_torch:
        return method
    clone = copy.copy(method)
    for name, value in state.items():
        if isinstance(value, torch.nn.Module):
            setattr(clone, name, copy.deepcopy(value).to("cpu"))
        elif isinstance(value, torch.Tensor):
            setattr(clone, name, value.detach().to("cpu"))
    if hasattr(clone, "device_"):
        clone.device_ = torch.device("cpu") if isinstance(method.device_, torch.device) else "cpu"
    return clone


def read_pca_table(pca_path) -> dict:
    """The fitted PCA of ``visual_pca.parquet`` as plain arrays (mean, components, variances)."""
    table = read_table(pca_path)
    vectors = vectors_from_column(table["vector"])
    meta = read_metadata(pca_path)
    return {
        "mean": vectors[0],
        "components": vectors[1:],
        "explained_variance": table["explained_variance"].to_numpy()[1:],
        "whiten": bool(meta.get("whiten", False)),
    }


def _pca_from_arrays(arrays: Mapping) -> StreamingPCA:
    pca = StreamingPCA(len(arrays["components"]), bool(arrays["whiten"]))
    pca.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
    pca.components_ = np.asarray(arrays["components"], dtype=np.float64)
    pca.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float64)
    return pca


def save_model(path, method, *, method_name: str, seed: int, dataset: str, class_names, pca_path,
               feature_settings: Mapping, backbone_weights: Mapping, provenance: Mapping | None = None,
               extra: Mapping | None = None, feature_source: str = "extracted") -> Path:
    """Write the fitted ``method`` with its context (see the module docstring) atomically."""
    import joblib

    from avcmr.features.weights import describe_weights, uses_random_weights

    cpu_method = _cpu_copy(method)
    extracted = feature_source == "extracted"
    header = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "avcmr_version": __version__,
        "library_versions": library_versions(),
        "method": method_name,
        "estimator_class": f"{type(method).__module__}.{type(method).__qualname__}",
        "seed": int(seed),
        "params": {k: repr(v) for k, v in method.get_params().items()},
        "dataset": dataset,
        "class_names": [str(name) for name in class_names],
        "features": model_feature_settings(feature_settings),
        # "extracted" by this workflow from media, or "released features" (a feature file's rows:
        # no backbone produced them here, so the model cannot embed a new clip).
        "feature_source": feature_source,
        "backbone_weights": dict(backbone_weights) if extracted else {},
        "backbone_weights_described": describe_weights(dict(backbone_weights)) if extracted else feature_source,
        "random_weights": uses_random_weights(dict(backbone_weights)) if extracted else False,
        "fitted_device": str(getattr(method, "device_", "cpu")),
        "provenance": dict(provenance or {}),
        **dict(extra or {}),
    }
    payload = {
        "header": header,
        "pca": read_pca_table(pca_path),
        "estimator": pickle.dumps(cpu_method, protocol=pickle.HIGHEST_PROTOCOL),
    }
    # Uncompressed: trained float32 weights barely compress (zlib level 3 kept 93 % of an AGAH model's
    # 207 MB) and an AGAH save took 7.75 s against 0.67 s (benchmarks/bench_model_files.py).
    with atomic_path(path) as tmp:
        joblib.dump(payload, tmp, compress=0)
    log.info("saved %s seed %d to %s", method_name, seed, path)
    return Path(path)


def read_header(path) -> dict:
    """The header of a model file, checked for format and version (raises :class:`ModelFileError`)."""
    return _load_payload(path)["header"]


def _load_payload(path) -> dict:
    import joblib

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        payload = joblib.load(path)
    except Exception as error:  # joblib/pickle raise many types for foreign files
        raise ModelFileError(f"{path} is not an avcmr model file ({type(error).__name__}: {error})") from None
    header = payload.get("header") if isinstance(payload, dict) else None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not an avcmr model file (no '{MODEL_FORMAT}' header)")
    written_by = header.get("avcmr_version", "unknown")
    regenerate = ("re-create it with this version: delete it and run snakemake for "
                  f"results/{header.get('dataset', '<dataset>')}/models/{path.name}")
    if header.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by avcmr {written_by} in model format {header.get('format_version')}; this "
            f"avcmr {__version__} reads format {MODEL_FORMAT_VERSION} only: {regenerate}")
    if _minor(str(written_by)) != _minor(__version__):
        raise ModelFileError(
            f"{path} was written by avcmr {written_by}, incompatible with this avcmr {__version__} (the saved "
            f"estimator classes may differ between minor versions): {regenerate}")
    return payload


def load_model(path) -> SavedModel:
    """Load a model file written by :func:`save_model` (same format and avcmr minor version)."""
    payload = _load_payload(path)
    header = payload["header"]
    try:
        method = pickle.loads(payload["estimator"])
    except (AttributeError, ImportError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise ModelFileError(
            f"{path}: the saved {header['estimator_class']} cannot be rebuilt by this avcmr {__version__} "
            f"({type(error).__name__}: {error}); re-create the model file") from None
    return SavedModel(method=method, pca=_pca_from_arrays(payload["pca"]), header=header)
