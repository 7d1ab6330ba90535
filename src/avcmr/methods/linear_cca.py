"""Regularised linear CCA in closed form — the building block of `cca` and of every method that
fuses or post-processes learned outputs with CCA (the paper's model, DCCA, the ablations).

Hotelling's CCA: with centred views X (n×p), Y (n×q),
    Σxx = XᵀX/(n−1) + r·I,  Σyy = YᵀY/(n−1) + r·I,  Σxy = XᵀY/(n−1),
    T = Σxx^{-1/2} Σxy Σyy^{-1/2} = U S Vᵀ (SVD),
projections Wx = Σxx^{-1/2} U_k, Wy = Σyy^{-1/2} V_k, canonical correlations = diag(S)_k.
"""

from __future__ import annotations

import numpy as np


def inverse_sqrt(matrix: np.ndarray, eigenvalue_floor: float = 1e-12) -> np.ndarray:
    """Σ^{-1/2} of a symmetric positive (semi-)definite matrix via eigh, eigenvalues clamped."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    eigenvalues = np.maximum(eigenvalues, eigenvalue_floor)
    return (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T


class LinearCCA:
    """Closed-form regularised CCA between two views (not a retrieval method on its own)."""

    def __init__(self, n_components: int = 10, reg: float = 1e-4):
        self.n_components = n_components
        self.reg = reg

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearCCA:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = len(x)
        if n < 2:
            raise ValueError("CCA needs at least two training pairs")
        self.mean_x_ = x.mean(axis=0)
        self.mean_y_ = y.mean(axis=0)
        xc, yc = x - self.mean_x_, y - self.mean_y_
        cov_xx = xc.T @ xc / (n - 1) + self.reg * np.eye(x.shape[1])
        cov_yy = yc.T @ yc / (n - 1) + self.reg * np.eye(y.shape[1])
        cov_xy = xc.T @ yc / (n - 1)
        return self._fit_covariances(cov_xx, cov_yy, cov_xy)

    def _fit_covariances(self, cov_xx: np.ndarray, cov_yy: np.ndarray, cov_xy: np.ndarray) -> LinearCCA:
        """Solve CCA from (already regularised) covariances; used by Cluster-CCA too."""
        k = min(self.n_components, cov_xx.shape[0], cov_yy.shape[0])
        whiten_x = inverse_sqrt(cov_xx)
        whiten_y = inverse_sqrt(cov_yy)
        left, singular_values, right_t = np.linalg.svd(whiten_x @ cov_xy @ whiten_y, full_matrices=False)
        self.correlations_ = singular_values[:k]
        self.weights_x_ = whiten_x @ left[:, :k]
        self.weights_y_ = whiten_y @ right_t[:k].T
        return self

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_x_) @ self.weights_x_

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean_y_) @ self.weights_y_


class LinearCCAEmbedding:
    """For retrieval methods whose ``fit`` leaves a fitted :class:`LinearCCA` in ``cca_``: embed
    each modality in its canonical space; the projection weights are the learned parameters."""

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        return self.cca_.transform_x(audio)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        return self.cca_.transform_y(visual)

    def n_parameters(self) -> int:
        self._check_fitted("cca_")
        return self.cca_.weights_x_.size + self.cca_.weights_y_.size
