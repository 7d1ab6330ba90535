"""`kcca`: kernel CCA (Lai & Fyfe 2000; Bach & Jordan 2002; Hardoon, Szedmak & Shawe-Taylor 2004)
with RBF kernels, made scalable by a Nyström feature map per view (Williams & Seeger 2001).

Per view (audio, visual), on features z-scored with training statistics:
1. RBF kernel k(x, x') = exp(−γ‖x − x'‖²), γ = 1/(2σ²) with σ the median pairwise distance of a
   seeded subsample of training rows (median heuristic, Gretton et al.) unless γ is given.
2. Nyström map with m landmarks (the same m training pairs for both views, m = min(n_landmarks, n)):
   K_mm = U Λ Uᵀ, φ(x) = k(x, L) U Λ^{-1/2}  (eigenvalues ≤ 1e-10·λ_max dropped), so that
   φ(x)ᵀφ(x') reproduces the kernel on span{k(·, l)}.
3. Regularised linear CCA on the centred maps (Hotelling; `LinearCCA._fit_covariances`):
   Σ_aa = Φ̃_aᵀΦ̃_a/(n−1) + r_a I with r_a = ridge · tr(Φ̃_aᵀΦ̃_a/(n−1))/m_a (ridge ≈ 1e-3 × the
   mean eigenvalue), Σ_vv likewise, Σ_av = Φ̃_aᵀΦ̃_v/(n−1); 10 components.

With m = n this is exactly regularised KCCA in its dual form (Hardoon et al. 2004, with
centred kernels): (K_v + κ_v I)⁻¹ K_a (K_a + κ_a I)⁻¹ K_v β = ρ² β, κ = r·(n−1), because the
ridge on primal weights w = Φ̃ᵀα gives αᵀ(K²/(n−1) + rK)α; the tests check this against a direct
solve of the dual. Test points are embedded as k(x, L)·P − offset with P = UΛ^{-1/2}W_cca (m × 10).

Cost: the n × m kernel blocks are processed in row chunks and only m × m Gram matrices are kept,
so memory is O(m² + chunk·m) and time O(n·m·(d + m)) (≈ 35 CPU-seconds at VEGAS size, m = 2,000).
Simplification: landmarks are drawn uniformly at random (no k-means / leverage sampling).

Caveat: 1e-3 × the mean eigenvalue is a small ridge, so the m-dimensional CCA needs n ≫ m: at VEGAS size (n ≈ 22k, m = 2,000) it generalises,
whereas with n ≈ 2.5·m it fits noise and test retrieval drops to chance. Lower ``n_landmarks`` or
raise ``ridge`` on small training sets.
"""

from __future__ import annotations

import numpy as np

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.linear_cca import LinearCCA
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import Standardizer


def rbf_kernel(x: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """exp(−γ‖x_i − y_j‖²) for all row pairs."""
    squared = (x * x).sum(axis=1)[:, None] + (y * y).sum(axis=1)[None, :] - 2.0 * (x @ y.T)
    return np.exp(-gamma * np.maximum(squared, 0.0))


def median_heuristic_gamma(x: np.ndarray, rng: np.random.Generator, max_samples: int = 2000) -> float:
    """γ = 1/(2σ²), σ = median Euclidean distance between distinct rows of a seeded subsample."""
    if len(x) > max_samples:
        x = x[rng.choice(len(x), max_samples, replace=False)]
    squared = (x * x).sum(axis=1)[:, None] + (x * x).sum(axis=1)[None, :] - 2.0 * (x @ x.T)
    upper = np.maximum(squared[np.triu_indices(len(x), k=1)], 0.0)
    median_squared = float(np.median(upper))
    if median_squared <= 0:
        raise ValueError("median heuristic failed: the features have (almost) no spread")
    return 1.0 / (2.0 * median_squared)


def nystroem_normaliser(kernel_landmarks: np.ndarray, relative_floor: float = 1e-10) -> np.ndarray:
    """U Λ^{-1/2} of K_mm (m × m', eigen-directions below ``relative_floor``·λ_max dropped)."""
    eigenvalues, eigenvectors = np.linalg.eigh(kernel_landmarks)
    keep = eigenvalues > relative_floor * eigenvalues.max()
    return eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])


@register("kcca")
class KernelCCA(RetrievalMethod):
    def __init__(
        self,
        n_components: int = 10,
        n_landmarks: int = 2000,
        gamma_audio: float | None = None,
        gamma_visual: float | None = None,
        ridge: float = 1e-3,
        median_samples: int = 2000,
        chunk_size: int = 4096,
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.n_landmarks = n_landmarks
        self.gamma_audio = gamma_audio
        self.gamma_visual = gamma_visual
        self.ridge = ridge
        self.median_samples = median_samples
        self.chunk_size = chunk_size

    def fit(self, audio, visual, labels) -> KernelCCA:
        audio, visual, _ = check_training_data(audio, visual, labels)
        rng = np.random.default_rng(self.random_state)
        n = len(audio)
        self.audio_scaler_ = Standardizer().fit(audio)
        self.visual_scaler_ = Standardizer().fit(visual)
        audio = self.audio_scaler_.transform(audio)
        visual = self.visual_scaler_.transform(visual)
        self.gamma_audio_ = (median_heuristic_gamma(audio, rng, self.median_samples)
                             if self.gamma_audio is None else float(self.gamma_audio))
        self.gamma_visual_ = (median_heuristic_gamma(visual, rng, self.median_samples)
                              if self.gamma_visual is None else float(self.gamma_visual))

        n_landmarks = min(self.n_landmarks, n)
        self.landmark_index_ = np.sort(rng.choice(n, n_landmarks, replace=False))
        self.landmarks_audio_ = audio[self.landmark_index_]
        self.landmarks_visual_ = visual[self.landmark_index_]
        normaliser_audio = nystroem_normaliser(rbf_kernel(self.landmarks_audio_, self.landmarks_audio_, self.gamma_audio_))
        normaliser_visual = nystroem_normaliser(rbf_kernel(self.landmarks_visual_, self.landmarks_visual_, self.gamma_visual_))

        # One pass over row chunks: column sums and Gram matrices of the n × m kernel blocks.
        sum_audio = np.zeros(n_landmarks)
        sum_visual = np.zeros(n_landmarks)
        gram_aa = np.zeros((n_landmarks, n_landmarks))
        gram_vv = np.zeros((n_landmarks, n_landmarks))
        gram_av = np.zeros((n_landmarks, n_landmarks))
        for start in range(0, n, self.chunk_size):
            block_audio = rbf_kernel(audio[start : start + self.chunk_size], self.landmarks_audio_, self.gamma_audio_)
            block_visual = rbf_kernel(visual[start : start + self.chunk_size], self.landmarks_visual_, self.gamma_visual_)
            sum_audio += block_audio.sum(axis=0)
            sum_visual += block_visual.sum(axis=0)
            gram_aa += block_audio.T @ block_audio
            gram_vv += block_visual.T @ block_visual
            gram_av += block_audio.T @ block_visual
        mean_audio, mean_visual = sum_audio / n, sum_visual / n
        # Centred covariances of the Nyström features φ = k(·, L)·N: Nᵀ(KᵀK − n·k̄k̄ᵀ)N/(n−1).
        cov_aa = normaliser_audio.T @ (gram_aa - n * np.outer(mean_audio, mean_audio)) @ normaliser_audio / (n - 1)
        cov_vv = normaliser_visual.T @ (gram_vv - n * np.outer(mean_visual, mean_visual)) @ normaliser_visual / (n - 1)
        cov_av = normaliser_audio.T @ (gram_av - n * np.outer(mean_audio, mean_visual)) @ normaliser_visual / (n - 1)
        self.reg_audio_ = self.ridge * np.trace(cov_aa) / cov_aa.shape[0]
        self.reg_visual_ = self.ridge * np.trace(cov_vv) / cov_vv.shape[0]
        cca = LinearCCA(n_components=self.n_components, reg=0.0)
        cca._fit_covariances(
            cov_aa + self.reg_audio_ * np.eye(cov_aa.shape[0]),
            cov_vv + self.reg_visual_ * np.eye(cov_vv.shape[0]),
            cov_av,
        )
        self.correlations_ = cca.correlations_
        # Fold the Nyström normaliser and the CCA weights into one m × k projection per view.
        self.projection_audio_ = normaliser_audio @ cca.weights_x_
        self.projection_visual_ = normaliser_visual @ cca.weights_y_
        self.offset_audio_ = mean_audio @ self.projection_audio_
        self.offset_visual_ = mean_visual @ self.projection_visual_
        return self

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("projection_audio_")
        return self._embed(self.audio_scaler_.transform(audio), self.landmarks_audio_, self.gamma_audio_,
                           self.projection_audio_, self.offset_audio_)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("projection_visual_")
        return self._embed(self.visual_scaler_.transform(visual), self.landmarks_visual_, self.gamma_visual_,
                           self.projection_visual_, self.offset_visual_)

    def _embed(self, x, landmarks, gamma, projection, offset) -> np.ndarray:
        parts = [rbf_kernel(x[i : i + self.chunk_size], landmarks, gamma) @ projection - offset
                 for i in range(0, len(x), self.chunk_size)]
        return np.concatenate(parts) if parts else np.zeros((0, projection.shape[1]))

    def n_parameters(self) -> int:
        """Landmark coordinates (kept to evaluate the kernel) plus the m × k projections."""
        self._check_fitted("projection_audio_")
        return (self.landmarks_audio_.size + self.landmarks_visual_.size
                + self.projection_audio_.size + self.projection_visual_.size)
