"""The two random references of Table 2 (see METHODS.md, "Random").

- `random`: a seeded random score for every (query, candidate) pair, i.e. a uniformly random
  permutation per query in both directions; its MAP ≈ Σ_c p_c² (p_c = test class share), a
  built-in sanity check of the evaluation.
- `random_pca`: what the original authors ran as "random": PCA to 10 dimensions fitted separately
  on each modality, compared by cosine (the two spaces are unrelated, so this is chance too).
"""

from __future__ import annotations

import numpy as np

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.registry import register


@register("random")
class RandomRanking(RetrievalMethod):
    def fit(self, audio, visual, labels) -> RandomRanking:
        check_training_data(audio, visual, labels)
        self.fitted_ = True
        return self

    def embed_audio(self, audio):
        raise NotImplementedError("`random` ranks by random scores and has no embedding")

    embed_visual = embed_audio

    def similarity(self, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("fitted_")
        rng = np.random.default_rng(self.random_state)
        return rng.random((len(audio), len(visual)))


@register("random_pca")
class RandomPCA(RetrievalMethod):
    def __init__(self, n_components: int = 10, random_state: int | None = 0):
        super().__init__(random_state=random_state)
        self.n_components = n_components

    def fit(self, audio, visual, labels) -> RandomPCA:
        audio, visual, _ = check_training_data(audio, visual, labels)
        self.audio_mean_, self.audio_components_ = _pca(audio, self.n_components)
        self.visual_mean_, self.visual_components_ = _pca(visual, self.n_components)
        return self

    def embed_audio(self, audio):
        self._check_fitted("audio_components_")
        return (np.asarray(audio, dtype=np.float64) - self.audio_mean_) @ self.audio_components_

    def embed_visual(self, visual):
        self._check_fitted("visual_components_")
        return (np.asarray(visual, dtype=np.float64) - self.visual_mean_) @ self.visual_components_


def _pca(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:n_components].T
