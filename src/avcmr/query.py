"""Retrieval with a trained model on a user's own clip: "which clips match this sound?".

The clip goes through the same path as the workflow's clips: ffmpeg decode (16 kHz mono audio;
1-fps RGB frames at the configured size) → VGGish 128-D per 0.96 s log-mel patch, or InceptionV3
2048-D per frame → the dataset's training PCA → mean over the clip → the trained model, with
the feature settings and backbone weights stored in the model file (:mod:`avcmr.models_io`).
The candidates are the clips of a dataset (its test split by default, or all clips) in the other
modality, ranked by the method's own similarity (cosine; Hamming for hashing codes).

Problems with the user's file (not a media file, no audio track, too short, ...) raise
:class:`QueryInputError` with a one-line reason; the command line turns it into exit code 2.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from avcmr.io.parquet import read_table, vectors_from_column
from avcmr.models_io import ModelFileError, SavedModel, load_model

log = logging.getLogger(__name__)

MODALITIES = ("audio", "visual")
CANDIDATE_SETS = ("test", "all")
MODEL_NAME = re.compile(r"^(?P<method>[a-z0-9_]+)_seed(?P<seed>\d+)\.joblib$")


class QueryInputError(ValueError):
    """The query cannot run on what the user gave (bad media file, missing model or features)."""


@dataclass
class QueryResult:
    table: pd.DataFrame  # rank, clip_id, label, score
    info: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        return {**self.info, "results": self.table.to_dict(orient="records")}


# --- the user's clip -----------------------------------------------------------------------------


@dataclass
class DecodedQuery:
    path: Path
    modality: str
    duration_s: float
    data: np.ndarray  # log-mel patches (audio) or RGB frames (visual)


def decode_query(path, modality: str, features: Mapping) -> DecodedQuery:
    """Probe and decode the clip's stream of ``modality``; raises QueryInputError on bad input."""
    from avcmr.features.logmel import LogMelSpec, log_mel_patches
    from avcmr.media.ffmpeg_io import MediaError, decode_audio, decode_frames, probe

    path = Path(path)
    if not path.exists():
        raise QueryInputError(f"{path}: file not found")
    if path.is_dir():
        raise QueryInputError(f"{path}: is a folder, not a media file")
    try:
        info = probe(path)
    except MediaError as error:
        raise QueryInputError(f"{path}: not a readable audio or video file ({error.reason})") from None
    try:
        if modality == "audio":
            if not info.has_audio:
                raise QueryInputError(f"{path}: no audio track (an audio query needs one; use --by visual to "
                                      "query with the pictures)")
            spec = LogMelSpec(sample_rate=int(features.get("sample_rate", 16000)))
            waveform = decode_audio(path, spec.sample_rate)
            patches = log_mel_patches(waveform, spec)
            if len(patches) == 0:
                raise QueryInputError(f"{path}: too short: {len(waveform) / spec.sample_rate:.2f} s of audio, at "
                                      f"least {spec.patch_seconds:.2f} s (one VGGish patch) is needed")
            if not np.isfinite(patches).all():
                raise QueryInputError(f"{path}: the audio decodes to non-finite values")
            return DecodedQuery(path, modality, info.duration_s, patches)
        if not info.has_video:
            raise QueryInputError(f"{path}: no video stream (a visual query needs pictures)")
        frames = decode_frames(path, float(features.get("fps", 1)), int(features.get("frame_size", 299)))
        if len(frames) == 0:
            raise QueryInputError(f"{path}: too short: no frame decoded at {features.get('fps', 1)} frame/s")
        return DecodedQuery(path, modality, info.duration_s, frames)
    except MediaError as error:
        raise QueryInputError(f"{path}: cannot decode the {modality} ({error.reason})") from None


def _resolve_weights(backbone_weights: Mapping, roots: list[Path]) -> dict:
    """Relative weight paths of the config are relative to the workflow folder: try each root."""

    def resolve(value):
        if isinstance(value, dict):
            return {k: resolve(v) if not k.endswith("sha256") else v for k, v in value.items()}
        if not isinstance(value, str) or value == "random":
            return value
        candidate = Path(value)
        if candidate.is_absolute():
            return value
        for root in roots:
            if (root / candidate).exists() or Path(f"{root / candidate}.index").exists():
                return str(root / candidate)
        return value

    return {key: resolve(value) if key in MODALITY_BACKBONES.values() else value
            for key, value in backbone_weights.items()}


MODALITY_BACKBONES = {"audio": "vggish", "visual": "inception"}


def query_features(decoded: DecodedQuery, model: SavedModel, roots: list[Path]) -> np.ndarray:
    """The clip's pooled feature vector (1 × dim), exactly as the workflow computes it."""
    from avcmr.features.weights import MissingWeightsError, parse_weights

    if model.header.get("feature_source", "extracted") != "extracted":
        raise QueryInputError(
            f"model of dataset {model.header.get('dataset')!r} was trained on "
            f"{model.header['feature_source']} (a feature file, no backbone weights): a query clip "
            "cannot be embedded like its training items; query a dataset extracted from media"
        )
    weights = _resolve_weights(model.header["backbone_weights"], roots)
    features = model.header.get("features", {})
    # The backbones' arithmetic of the training features (absent: float32, the default).
    precision = features.get("inference_precision", "float32")
    try:
        if decoded.modality == "audio":
            from avcmr.features.vggish import VGGishExtractor

            extractor = VGGishExtractor(parse_weights(weights, "vggish"),
                                        postprocess=bool(features.get("vggish_postprocess", False)),
                                        precision=precision)
            per_patch = extractor.embed(decoded.data)
            vector = per_patch.mean(axis=0)
        else:
            from avcmr.features.inception import InceptionExtractor

            extractor = InceptionExtractor(parse_weights(weights, "inception"), precision=precision,
                                           frame_size=decoded.data.shape[1])
            vector = model.pca.transform(extractor.embed(decoded.data)).mean(axis=0)
    except MissingWeightsError as error:
        raise QueryInputError(str(error)) from None
    if not np.isfinite(vector).all():
        raise QueryInputError(f"{decoded.path}: the {decoded.modality} features are not finite")
    return vector[None, :].astype(np.float32)


# --- models and candidates -----------------------------------------------------------------------


def find_model(results_dir, method: str | None = None, seed: int | None = None) -> Path:
    """The model file of ``results_dir/models`` to use: the given method (default: `ours` when
    trained, else the best trained method by average MAP, `random` last) at the given seed
    (default: the smallest)."""
    results_dir = Path(results_dir)
    models = {}
    for path in sorted((results_dir / "models").glob("*.joblib")):
        match = MODEL_NAME.match(path.name)
        if match:
            models[(match["method"], int(match["seed"]))] = path
    if not models:
        raise QueryInputError(f"no trained model under {results_dir / 'models'}: run the workflow for this "
                              "dataset first (snakemake --cores N results/<dataset>/map.tsv)")
    methods = sorted({m for m, _ in models})
    if method is None:
        method = "ours" if "ours" in methods else _best_method(results_dir, models)
    if method not in methods:
        raise QueryInputError(f"no trained model of method {method!r} under {results_dir / 'models'}; "
                              f"trained: {', '.join(methods)}")
    seeds = sorted(s for m, s in models if m == method)
    if seed is None:
        seed = seeds[0]
    if (method, seed) not in models:
        raise QueryInputError(f"method {method!r} has no model for seed {seed}; trained seeds: "
                              f"{', '.join(map(str, seeds))}")
    return models[(method, seed)]


def default_results_dir(workdir) -> Path:
    """The only folder ``results/<dataset>`` under ``workdir`` with trained models (relative to it
    when ``workdir`` is the current directory); a one-line error when there is none or several."""
    workdir = Path(workdir)
    candidates = sorted(path.parent.parent for path in workdir.glob("results/*/models/*.joblib")
                        if MODEL_NAME.match(path.name))
    folders = sorted(set(candidates))
    if not folders:
        raise QueryInputError(f"no trained model under {workdir / 'results'}/*/models: run the workflow first "
                              "(snakemake --cores N results/<dataset>/map.tsv), or give --results or --model")
    if len(folders) > 1:
        names = ", ".join(str(folder.relative_to(workdir)) for folder in folders)
        raise QueryInputError(f"several results folders have trained models ({names}): choose one with "
                              "--results")
    folder = folders[0]
    return folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder


def _best_method(results_dir: Path, models: Mapping) -> str:
    scores = {}
    for method, seed in models:
        path = results_dir / "eval" / f"{method}_seed{seed}.parquet"
        if path.exists():
            ap = read_table(path, ["ap"])["ap"].to_numpy()
            scores.setdefault(method, []).append(float(ap.mean()))
    ranked = sorted({m for m, _ in models}, key=lambda m: (m == "random", -np.mean(scores.get(m, [-1.0])), m))
    return ranked[0]


def load_candidates(features_path, part: str) -> dict:
    """Clip ids, labels and pooled features of the candidate clips (``test`` split or ``all``)."""
    features_path = Path(features_path)
    if not features_path.is_file():
        raise QueryInputError(f"candidate features not found: {features_path} (give --features)")
    table = read_table(features_path)
    split = np.asarray(table["split"].to_pylist(), dtype=object)
    keep = np.ones(len(split), bool) if part == "all" else split == part
    if not keep.any():
        raise QueryInputError(f"{features_path} has no {part} clips")
    return {
        "clip_ids": np.asarray(table["clip_id"].to_pylist(), dtype=object)[keep],
        "labels": np.asarray(table["label"].to_pylist(), dtype=object)[keep],
        "audio": vectors_from_column(table["audio"])[keep],
        "visual": vectors_from_column(table["visual"])[keep],
    }


def rank(model: SavedModel, query_vector: np.ndarray, query_modality: str, candidates: Mapping, k: int
         ) -> pd.DataFrame:
    """Top-k candidates of the other modality by the method's similarity (highest first)."""
    if query_modality == "audio":
        scores = model.method.similarity(query_vector, candidates["visual"])[0]
    else:
        scores = model.method.similarity(candidates["audio"], query_vector)[:, 0]
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[: max(1, min(k, len(scores)))]
    return pd.DataFrame({
        "rank": np.arange(1, len(order) + 1),
        "clip_id": candidates["clip_ids"][order],
        "label": candidates["labels"][order],
        "score": scores[order],
    })


def run_query(media_path, *, model_path=None, results_dir=None, method: str | None = None, seed: int | None = None,
              features_path=None, candidates: str = "test", query_modality: str = "audio", k: int = 10
              ) -> QueryResult:
    """Decode → features → trained model → top-k clips of the other modality (see module docstring)."""
    if query_modality not in MODALITIES:
        raise QueryInputError(f"query modality must be one of {MODALITIES}, got {query_modality!r}")
    if candidates not in CANDIDATE_SETS:
        raise QueryInputError(f"candidates must be one of {CANDIDATE_SETS}, got {candidates!r}")
    if k < 1:
        raise QueryInputError(f"k must be at least 1, got {k}")
    if model_path is None:
        if results_dir is None:
            raise QueryInputError("give --model FILE or --results results/<dataset>")
        model_path = find_model(results_dir, method, seed)
    model_path = Path(model_path)
    started = time.perf_counter()
    try:
        model = load_model(model_path)
    except ModelFileError as error:
        raise QueryInputError(str(error)) from None
    log.info("model %s loaded in %.2f s", model_path, time.perf_counter() - started)
    started = time.perf_counter()
    decoded = decode_query(media_path, query_modality, model.header.get("features", {}))
    log.info("%s decoded (%s, %.2f s) in %.2f s", media_path, query_modality, decoded.duration_s,
             time.perf_counter() - started)
    # <workdir>/results/<dataset>/models/<file>: the dataset folder and the workflow folder.
    dataset_dir = model_path.resolve().parent.parent
    features_path = Path(features_path) if features_path is not None else dataset_dir / "features.parquet"
    pool = load_candidates(features_path, candidates)
    if pool["visual"].shape[1] != model.pca.components_.shape[0]:
        raise QueryInputError(f"{features_path} has {pool['visual'].shape[1]}-D visual features, the model's PCA "
                              f"gives {model.pca.components_.shape[0]}-D: use the features of the model's dataset")
    roots = [Path.cwd(), dataset_dir.parent.parent]
    started = time.perf_counter()
    vector = query_features(decoded, model, roots)
    log.info("%s features computed in %.2f s (backbone loaded and run)", query_modality, time.perf_counter() - started)
    table = rank(model, vector, query_modality, pool, k)
    other = "visual" if query_modality == "audio" else "audio"
    info = {
        "query": str(media_path),
        "query_modality": query_modality,
        "duration_s": round(decoded.duration_s, 3),
        "candidates": f"{other} items of the {candidates} clips" if candidates == "test" else f"{other} items of all clips",
        "n_candidates": int(len(pool["clip_ids"])),
        "model": str(model_path),
        "method": model.header["method"],
        "seed": model.header["seed"],
        "dataset": model.header.get("dataset"),
        "similarity": "negative Hamming distance" if getattr(model.method, "similarity_kind", "cosine") == "hamming"
        else "cosine",
        "backbone_weights": model.header.get("backbone_weights_described"),
        "random_weights": model.random_weights,
    }
    return QueryResult(table=table, info=info)

