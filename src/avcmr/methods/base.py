"""The estimator contract every retrieval method follows (scikit-learn style).

A method learns two maps into a common space from paired training data::

    method = make_method("cca", params={"n_components": 10}, random_state=0)
    method.fit(audio_train, visual_train, labels_train)
    scores = method.similarity(audio_test, visual_test)   # rows: audio queries, cols: visual items

The constructor stores hyper-parameters only; ``fit`` learns state whose names end with ``_`` and
returns ``self``; ``embed_*`` and ``similarity`` refuse to run before ``fit``.
"""

from __future__ import annotations

import inspect

import numpy as np


class NotFittedError(RuntimeError):
    """Raised when a method is used before ``fit``."""


def cosine_similarity(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix; a zero vector has similarity 0 to everything (never NaN)."""
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    left_norm = np.linalg.norm(left, axis=1, keepdims=True)
    right_norm = np.linalg.norm(right, axis=1, keepdims=True)
    left = np.divide(left, left_norm, out=np.zeros_like(left), where=left_norm > 0)
    right = np.divide(right, right_norm, out=np.zeros_like(right), where=right_norm > 0)
    return left @ right.T


def hamming_similarity(left_codes: np.ndarray, right_codes: np.ndarray) -> np.ndarray:
    """Negative Hamming distance between ±1 codes (higher = more similar)."""
    left_codes = np.asarray(left_codes, dtype=np.float64)
    right_codes = np.asarray(right_codes, dtype=np.float64)
    n_bits = left_codes.shape[1]
    # For ±1 codes: hamming = (n_bits - <a, b>) / 2.
    return -(n_bits - left_codes @ right_codes.T) / 2.0


class RetrievalMethod:
    """Base class: hyper-parameters in ``__init__``, learning in ``fit``.

    Subclasses implement ``fit``, ``embed_audio`` and ``embed_visual``; ``similarity`` defaults to
    the cosine between embeddings (hashing methods set ``similarity_kind = "hamming"``).
    """

    name: str = ""
    similarity_kind: str = "cosine"

    def __init__(self, random_state: int | None = 0):
        self.random_state = random_state

    # -- scikit-learn style parameter access -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items() if name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the contract ------------------------------------------------------------------------
    def fit(self, audio: np.ndarray, visual: np.ndarray, labels: np.ndarray) -> RetrievalMethod:
        raise NotImplementedError

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def similarity(self, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        """Scores of every (audio query, visual item) pair; a→v ranks rows, v→a ranks columns."""
        audio_embedding = self.embed_audio(audio)
        visual_embedding = self.embed_visual(visual)
        if self.similarity_kind == "hamming":
            return hamming_similarity(audio_embedding, visual_embedding)
        return cosine_similarity(audio_embedding, visual_embedding)

    def n_parameters(self) -> int:
        """Number of learned scalars (Table 3); subclasses with networks override."""
        total = 0
        for name, value in vars(self).items():
            if name.endswith("_") and isinstance(value, np.ndarray):
                total += value.size
        return total

    # -- helpers for subclasses ----------------------------------------------------------------
    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(audio, visual, labels) first"
            )


class HashingOutputMixin:
    """For hashing methods with an ``output`` parameter: ``"codes"`` (default) ranks the ±1 codes
    by Hamming distance, ``"real"`` ranks the real-valued pre-binarisation outputs by cosine."""

    @property
    def similarity_kind(self) -> str:
        return "cosine" if self.output == "real" else "hamming"

    def _check_output(self) -> None:
        if self.output not in ("codes", "real"):
            raise ValueError(f"output must be 'codes' or 'real', got {self.output!r}")


def check_training_data(audio: np.ndarray, visual: np.ndarray, labels: np.ndarray):
    """Validate and convert the (audio, visual, labels) triple every ``fit`` receives."""
    audio = np.asarray(audio, dtype=np.float64)
    visual = np.asarray(visual, dtype=np.float64)
    labels = np.asarray(labels)
    if audio.ndim != 2 or visual.ndim != 2:
        raise ValueError(f"audio and visual must be 2-D, got {audio.shape} and {visual.shape}")
    if not (len(audio) == len(visual) == len(labels)):
        raise ValueError(
            f"audio, visual and labels must have one row per pair: {len(audio)}, {len(visual)}, {len(labels)}"
        )
    if not (np.isfinite(audio).all() and np.isfinite(visual).all()):
        raise ValueError("training features contain NaN or Inf")
    return audio, visual, labels


class Standardizer:
    """z-scoring with training statistics (zero-variance columns are left unscaled)."""

    def fit(self, x: np.ndarray) -> Standardizer:
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
