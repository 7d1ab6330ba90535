"""A small, easy audio-visual feature set shared by the method tests.

Every pair (a_i, v_i) of class y_i is built in a low-dimensional latent space and embedded into the
128-D / 1024-D feature spaces by fixed random orthonormal maps plus a constant offset:

    a_i = (m^a_{y_i} + z_i B_a + σ ε^a_i) P_a + o_a,   v_i = (m^v_{y_i} + z_i B_v + σ ε^v_i) P_v + o_v,

with class means m (what a supervised method should align), a pair factor z_i shared by the two
modalities (what an unsupervised correlation method sees besides the class means) and private
noise ε. Classes are balanced, so random retrieval has MAP ≈ 1/C. The features are exactly
low-rank (``audio_rank`` / ``visual_rank`` directions), which keeps closed-form CCA well posed
with fewer training pairs than visual dimensions.
"""

from __future__ import annotations

import numpy as np


def _orthonormal_rows(rng: np.random.Generator, n_rows: int, n_columns: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n_columns, n_rows)))
    return q.T


def make_easy_features(
    n_classes: int = 10,
    n_train: int = 400,
    n_test: int = 100,
    audio_dim: int = 128,
    visual_dim: int = 1024,
    audio_rank: int = 16,
    visual_rank: int = 24,
    pair_dim: int = 4,
    class_scale: float = 1.5,
    noise: float = 0.7,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Dict with audio/visual/labels for ``train`` and ``test`` (keys like ``audio_train``)."""
    rng = np.random.default_rng(seed)
    means_audio = class_scale * rng.normal(size=(n_classes, audio_rank))
    means_visual = class_scale * rng.normal(size=(n_classes, visual_rank))
    pair_to_audio = rng.normal(size=(pair_dim, audio_rank))
    pair_to_visual = rng.normal(size=(pair_dim, visual_rank))
    embed_audio = _orthonormal_rows(rng, audio_rank, audio_dim)
    embed_visual = _orthonormal_rows(rng, visual_rank, visual_dim)
    offset_audio = rng.normal(size=audio_dim)
    offset_visual = rng.normal(size=visual_dim)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % n_classes)
        pair = rng.normal(size=(n, pair_dim))
        audio_latent = means_audio[labels] + pair @ pair_to_audio + noise * rng.normal(size=(n, audio_rank))
        visual_latent = means_visual[labels] + pair @ pair_to_visual + noise * rng.normal(size=(n, visual_rank))
        return audio_latent @ embed_audio + offset_audio, visual_latent @ embed_visual + offset_visual, labels

    audio_train, visual_train, labels_train = draw(n_train)
    audio_test, visual_test, labels_test = draw(n_test)
    return {
        "audio_train": audio_train,
        "visual_train": visual_train,
        "labels_train": labels_train,
        "audio_test": audio_test,
        "visual_test": visual_test,
        "labels_test": labels_test,
    }


def average_map(method, data: dict[str, np.ndarray]) -> float:
    """(MAP a→v + MAP v→a)/2 of a fitted method on the test half of ``data``."""
    from avcmr.evaluation.metrics import evaluate_scores

    scores = method.similarity(data["audio_test"], data["visual_test"])
    per_query = evaluate_scores(scores, data["labels_test"], data["labels_test"])
    return float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2)
