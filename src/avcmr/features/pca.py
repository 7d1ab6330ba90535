"""PCA of InceptionV3 frame features (2048 → 1024), fitted on training frames only.

Fitted from streamed sufficient statistics (frame count, sum, Σ xxᵀ in float64) so memory is
bounded by the feature width, not by the number of frames (≈200k frames at VEGAS scale).
Optional whitening divides each component by √(eigenvalue + ε), YouTube-8M style.
"""

from __future__ import annotations

import numpy as np


class StreamingPCA:
    def __init__(self, n_components: int = 1024, whiten: bool = False, whiten_epsilon: float = 1e-4):
        self.n_components = n_components
        self.whiten = whiten
        self.whiten_epsilon = whiten_epsilon
        self._count = 0
        self._sum = None
        self._outer = None

    def partial_fit(self, x: np.ndarray) -> StreamingPCA:
        x = np.asarray(x, dtype=np.float64)
        if self._sum is None:
            self._sum = np.zeros(x.shape[1])
            self._outer = np.zeros((x.shape[1], x.shape[1]))
        self._count += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x
        return self

    def finalize(self) -> StreamingPCA:
        if self._count <= self.n_components:
            raise ValueError(
                f"PCA to {self.n_components} dimensions needs more than {self.n_components} training frames, "
                f"got {self._count}: add clips or lower features.pca_dim"
            )
        self.mean_ = self._sum / self._count
        covariance = (self._outer - self._count * np.outer(self.mean_, self.mean_)) / (self._count - 1)
        self.total_variance_ = float(np.trace(covariance))
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][: self.n_components]
        self.explained_variance_ = np.maximum(eigenvalues[order], 0.0)
        components = eigenvectors[:, order].T
        # Fix the sign of each component (largest |loading| positive) so results are reproducible.
        signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
        self.components_ = components * signs[:, None]
        self.n_samples_ = self._count
        return self

    def fit(self, x: np.ndarray) -> StreamingPCA:
        return self.partial_fit(x).finalize()

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise RuntimeError("StreamingPCA is not fitted: call fit or partial_fit + finalize first")
        projected = (np.asarray(x, dtype=np.float64) - self.mean_) @ self.components_.T
        if self.whiten:
            projected /= np.sqrt(self.explained_variance_ + self.whiten_epsilon)
        return projected.astype(np.float32)
