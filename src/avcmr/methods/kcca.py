"""`kcca`: kernel CCA (Lai & Fyfe 2000; Bach & Jordan 2002; Hardoon, Szedmak & Shawe-Taylor 2004)
with RBF kernels, made scalable by a Nyström feature map per view (Williams & Seeger 2001).

Per view (audio, visual), on features z-scored with training statistics:
1. RBF kernel k(x, x') = exp(−γ‖x − x'‖²), γ = s · γ_med with γ_med = 1/(2σ²), σ the median pairwise
   distance of a seeded subsample of training rows (median heuristic, Gretton et al.), or γ_med the
   given ``gamma_audio`` / ``gamma_visual``; s is chosen on a validation split (below).
2. Nyström map with m landmarks (the same m training pairs for both views):
   K_mm = U Λ Uᵀ, φ(x) = k(x, L) U Λ^{-1/2}  (eigenvalues ≤ 1e-10·λ_max dropped), so that
   φ(x)ᵀφ(x') reproduces the kernel on span{k(·, l)}. m = min(``n_landmarks``,
   ⌊``max_landmark_fraction``·n⌋) (at least ``n_components``): ``n_landmarks`` is an upper bound and
   m ≤ n/5 by default, because an m-dimensional CCA on n ≈ 2.5·m pairs fits noise (on AVE, n ≈ 1,600,
   m = n would be exact KCCA with a near-singular problem).
3. Regularised linear CCA on the centred maps (Hotelling):
   Σ_aa = Φ̃_aᵀΦ̃_a/(n−1) + r_a I with r_a = ridge · tr(Φ̃_aᵀΦ̃_a/(n−1))/m_a (ridge × the mean
   eigenvalue), Σ_vv likewise, Σ_av = Φ̃_aᵀΦ̃_v/(n−1); T = Σ_aa^{-1/2} Σ_av Σ_vv^{-1/2} = P S Qᵀ,
   W_a = Σ_aa^{-1/2} P_k, W_v = Σ_vv^{-1/2} Q_k; 10 components.

Model selection (label-blind: KCCA is unsupervised): an unstratified seeded validation split
(``validation_fraction`` of the training pairs, at most 1,000; ``model_selection.
unstratified_validation_split``) is carved from the training pairs; for every kernel-width scale s
in ``gamma_scales`` (default ¼, 1, 4 around the median heuristic, the same s for both views) and
every ``ridges`` value (default 1e-3, 1e-2, 1e-1 × the mean eigenvalue) the model is fitted on the
remaining pairs and scored by its own objective on the unseen pairs: the total held-out canonical
correlation Σ_k corr(a_val·w_k, v_val·u_k) of its ``n_components`` directions. The best (s, ridge)
— the first in grid order on ties — is then refitted on all training pairs. ``history_`` holds one
row per grid point. A grid of one point, or ``validation_fraction`` 0, skips the selection.
Why not the own-pair reciprocal rank that ``ucal`` and ``ugach`` select epochs by: on the
VEGAS-scale synthetic features (benchmarks/bench_baselines.py) it ranked a 3 × 4 grid (ridge up to
1) almost in reverse order of test MAP (its best point, s = ¼ with ridge 1, had test MAP 0.51),
whereas the held-out correlation's best two points were also the best two by test MAP (0.78, 0.75).
With the default grid it selects s = 4, ridge 0.1: test MAP 0.775 against 0.726 for the fixed
median width and ridge 1e-3.

With m = n, s = 1 and no selection this is exactly regularised KCCA in its dual form (Hardoon et al.
2004, with centred kernels): (K_v + κ_v I)⁻¹ K_a (K_a + κ_a I)⁻¹ K_v β = ρ² β, κ = r·(n−1), because
the ridge on primal weights w = Φ̃ᵀα gives αᵀ(K²/(n−1) + rK)α; the tests check this against a direct
solve of the dual. Test points are embedded as k(x, L)·P − offset with P = UΛ^{-1/2}W (m × 10).

Cost: the n × m kernel blocks are processed in row chunks and only m × m Gram matrices are kept, so
memory is O(m² + chunk·m) and time O(n·m·(d + m)) per kernel width; each ridge value costs one
SVD of an m × m matrix (the covariances are eigendecomposed once per width, a ridge only shifts their
eigenvalues). The default 3 × 3 grid plus the refit costs about 4.4 times one fit (VEGAS scale,
m = 2,000: 439 against 99 CPU-seconds, benchmarks/bench_baselines.py on a shared 2-core machine). Simplification: landmarks are drawn uniformly at random (no k-means / leverage
sampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avcmr.methods.base import RetrievalMethod, Standardizer, check_training_data
from avcmr.methods.model_selection import unstratified_validation_split
from avcmr.methods.registry import register

EIGENVALUE_FLOOR = 1e-12


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


def n_landmarks_for(n_pairs: int, n_landmarks: int, max_fraction: float, n_components: int) -> int:
    """m = min(n_landmarks, ⌊max_fraction·n⌋), but at least n_components (and at most n)."""
    return min(n_pairs, max(min(n_landmarks, int(max_fraction * n_pairs)), n_components))


def total_correlation(audio_embedding: np.ndarray, visual_embedding: np.ndarray) -> float:
    """Σ_k Pearson corr(audio[:, k], visual[:, k]); a constant column counts 0."""
    audio_centred = audio_embedding - audio_embedding.mean(axis=0)
    visual_centred = visual_embedding - visual_embedding.mean(axis=0)
    norms = np.linalg.norm(audio_centred, axis=0) * np.linalg.norm(visual_centred, axis=0)
    products = (audio_centred * visual_centred).sum(axis=0)
    return float(np.divide(products, norms, out=np.zeros_like(products), where=norms > 0).sum())


@dataclass
class NystroemCCASolution:
    """One solved KCCA: per view the m × k projection of k(x, L) and the offset to subtract."""

    projection_audio: np.ndarray
    projection_visual: np.ndarray
    offset_audio: np.ndarray
    offset_visual: np.ndarray
    correlations: np.ndarray
    reg_audio: float
    reg_visual: float


class NystroemCCAProblem:
    """The kernel statistics of one (data, landmarks, γ_a, γ_v): built once, solved per ridge."""

    def __init__(self, audio, visual, landmarks_audio, landmarks_visual, gamma_audio, gamma_visual,
                 chunk_size: int):
        n, m = len(audio), len(landmarks_audio)
        normaliser_audio = nystroem_normaliser(rbf_kernel(landmarks_audio, landmarks_audio, gamma_audio))
        normaliser_visual = nystroem_normaliser(rbf_kernel(landmarks_visual, landmarks_visual, gamma_visual))
        # One pass over row chunks: column sums and Gram matrices of the n × m kernel blocks.
        sum_audio, sum_visual = np.zeros(m), np.zeros(m)
        gram_aa, gram_vv, gram_av = np.zeros((m, m)), np.zeros((m, m)), np.zeros((m, m))
        for start in range(0, n, chunk_size):
            block_audio = rbf_kernel(audio[start : start + chunk_size], landmarks_audio, gamma_audio)
            block_visual = rbf_kernel(visual[start : start + chunk_size], landmarks_visual, gamma_visual)
            sum_audio += block_audio.sum(axis=0)
            sum_visual += block_visual.sum(axis=0)
            gram_aa += block_audio.T @ block_audio
            gram_vv += block_visual.T @ block_visual
            gram_av += block_audio.T @ block_visual
        self.mean_audio, self.mean_visual = sum_audio / n, sum_visual / n
        # Centred covariances of the Nyström features φ = k(·, L)·N: Nᵀ(KᵀK − n·k̄k̄ᵀ)N/(n−1).
        na, nv = normaliser_audio, normaliser_visual
        cov_aa = na.T @ (gram_aa - n * np.outer(self.mean_audio, self.mean_audio)) @ na / (n - 1)
        cov_vv = nv.T @ (gram_vv - n * np.outer(self.mean_visual, self.mean_visual)) @ nv / (n - 1)
        cov_av = na.T @ (gram_av - n * np.outer(self.mean_audio, self.mean_visual)) @ nv / (n - 1)
        # Σ + rI = U(Λ + r)Uᵀ: one eigendecomposition per view serves every ridge value.
        self.eigenvalues_audio, eigenvectors_audio = np.linalg.eigh(cov_aa)
        self.eigenvalues_visual, eigenvectors_visual = np.linalg.eigh(cov_vv)
        self.mean_eigenvalue_audio = float(np.trace(cov_aa)) / cov_aa.shape[0]
        self.mean_eigenvalue_visual = float(np.trace(cov_vv)) / cov_vv.shape[0]
        self.basis_audio = na @ eigenvectors_audio
        self.basis_visual = nv @ eigenvectors_visual
        self.cross = eigenvectors_audio.T @ cov_av @ eigenvectors_visual

    def solve(self, ridge: float, n_components: int) -> NystroemCCASolution:
        reg_audio = ridge * self.mean_eigenvalue_audio
        reg_visual = ridge * self.mean_eigenvalue_visual
        whiten_audio = 1.0 / np.sqrt(np.maximum(self.eigenvalues_audio + reg_audio, EIGENVALUE_FLOOR))
        whiten_visual = 1.0 / np.sqrt(np.maximum(self.eigenvalues_visual + reg_visual, EIGENVALUE_FLOOR))
        # T in the eigenbases (the same singular values as Σ_aa^{-1/2} Σ_av Σ_vv^{-1/2}).
        left, singular_values, right_t = np.linalg.svd(
            whiten_audio[:, None] * self.cross * whiten_visual[None, :], full_matrices=False)
        k = min(n_components, len(singular_values))
        projection_audio = self.basis_audio @ (whiten_audio[:, None] * left[:, :k])
        projection_visual = self.basis_visual @ (whiten_visual[:, None] * right_t[:k].T)
        return NystroemCCASolution(
            projection_audio, projection_visual, self.mean_audio @ projection_audio,
            self.mean_visual @ projection_visual, singular_values[:k], reg_audio, reg_visual)


def embed_with_kernel(x, landmarks, gamma, projection, offset, chunk_size: int) -> np.ndarray:
    parts = [rbf_kernel(x[i : i + chunk_size], landmarks, gamma) @ projection - offset
             for i in range(0, len(x), chunk_size)]
    return np.concatenate(parts) if parts else np.zeros((0, projection.shape[1]))


@register("kcca")
class KernelCCA(RetrievalMethod):
    def __init__(
        self,
        n_components: int = 10,
        n_landmarks: int = 2000,
        max_landmark_fraction: float = 0.2,
        gamma_audio: float | None = None,
        gamma_visual: float | None = None,
        gamma_scales: Sequence[float] = (0.25, 1.0, 4.0),
        ridges: Sequence[float] = (1e-3, 1e-2, 1e-1),
        validation_fraction: float = 0.1,
        median_samples: int = 2000,
        chunk_size: int = 4096,
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.n_landmarks = n_landmarks
        self.max_landmark_fraction = max_landmark_fraction
        self.gamma_audio = gamma_audio
        self.gamma_visual = gamma_visual
        self.gamma_scales = gamma_scales
        self.ridges = ridges
        self.validation_fraction = validation_fraction
        self.median_samples = median_samples
        self.chunk_size = chunk_size

    def fit(self, audio, visual, labels) -> KernelCCA:
        # Labels are validated for shape only: KCCA is unsupervised.
        audio, visual, _ = check_training_data(audio, visual, labels)
        scales = [float(s) for s in np.atleast_1d(self.gamma_scales)]
        ridges = [float(r) for r in np.atleast_1d(self.ridges)]
        if not scales or not ridges or min(scales) <= 0 or min(ridges) < 0:
            raise ValueError(f"gamma_scales must be positive and ridges non-negative, got {scales}, {ridges}")
        if not 0.0 < self.max_landmark_fraction <= 1.0:
            raise ValueError(f"max_landmark_fraction must lie in (0, 1], got {self.max_landmark_fraction}")
        fit_index, validation_index = unstratified_validation_split(
            len(audio), self.validation_fraction, self.random_state)
        self.history_ = []
        if len(scales) * len(ridges) > 1 and len(validation_index):
            best_scale, best_ridge = self._select(audio, visual, fit_index, validation_index, scales, ridges)
        else:
            best_scale, best_ridge = scales[0], ridges[0]
        self.gamma_scale_, self.ridge_ = best_scale, best_ridge
        # Refit on all training pairs with the chosen kernel width and ridge.
        self._prepare(audio, visual)
        problem = self._problem(best_scale)
        self._store(problem.solve(best_ridge, self.n_components))
        return self

    # -- fitting steps ----------------------------------------------------------------------------
    def _prepare(self, audio: np.ndarray, visual: np.ndarray) -> None:
        """Scalers, median-heuristic widths and landmarks of the pairs about to be fitted."""
        seed = 0 if self.random_state is None else int(self.random_state)
        self.audio_scaler_ = Standardizer().fit(audio)
        self.visual_scaler_ = Standardizer().fit(visual)
        self._audio = self.audio_scaler_.transform(audio)
        self._visual = self.visual_scaler_.transform(visual)
        rng = np.random.default_rng(seed)
        self.base_gamma_audio_ = (median_heuristic_gamma(self._audio, rng, self.median_samples)
                                  if self.gamma_audio is None else float(self.gamma_audio))
        self.base_gamma_visual_ = (median_heuristic_gamma(self._visual, rng, self.median_samples)
                                   if self.gamma_visual is None else float(self.gamma_visual))
        n = len(audio)
        m = n_landmarks_for(n, self.n_landmarks, self.max_landmark_fraction, self.n_components)
        self.landmark_index_ = np.sort(np.random.default_rng(seed + 1).choice(n, m, replace=False))
        self.landmarks_audio_ = self._audio[self.landmark_index_]
        self.landmarks_visual_ = self._visual[self.landmark_index_]

    def _problem(self, scale: float) -> NystroemCCAProblem:
        self.gamma_audio_ = scale * self.base_gamma_audio_
        self.gamma_visual_ = scale * self.base_gamma_visual_
        return NystroemCCAProblem(self._audio, self._visual, self.landmarks_audio_, self.landmarks_visual_,
                                  self.gamma_audio_, self.gamma_visual_, self.chunk_size)

    def _store(self, solution: NystroemCCASolution) -> None:
        self.projection_audio_ = solution.projection_audio
        self.projection_visual_ = solution.projection_visual
        self.offset_audio_ = solution.offset_audio
        self.offset_visual_ = solution.offset_visual
        self.correlations_ = solution.correlations
        self.reg_audio_, self.reg_visual_ = solution.reg_audio, solution.reg_visual
        del self._audio, self._visual

    def _select(self, audio, visual, fit_index, validation_index, scales, ridges) -> tuple[float, float]:
        """(scale, ridge) with the best held-out total correlation, fitting on ``fit_index`` only."""
        self._prepare(audio[fit_index], visual[fit_index])
        validation_audio = self.audio_scaler_.transform(audio[validation_index])
        validation_visual = self.visual_scaler_.transform(visual[validation_index])
        best = (-np.inf, scales[0], ridges[0])
        for scale in scales:
            problem = self._problem(scale)
            for ridge in ridges:
                solution = problem.solve(ridge, self.n_components)
                score = total_correlation(
                    embed_with_kernel(validation_audio, self.landmarks_audio_, self.gamma_audio_,
                                      solution.projection_audio, solution.offset_audio, self.chunk_size),
                    embed_with_kernel(validation_visual, self.landmarks_visual_, self.gamma_visual_,
                                      solution.projection_visual, solution.offset_visual, self.chunk_size),
                )
                self.history_.append({
                    "gamma_scale": scale, "ridge": ridge, "gamma_audio": self.gamma_audio_,
                    "gamma_visual": self.gamma_visual_, "n_landmarks": len(self.landmark_index_),
                    "n_fit": len(fit_index), "val_total_correlation": score,
                })
                if score > best[0]:
                    best = (score, scale, ridge)
        for record in self.history_:
            record["selected"] = (record["gamma_scale"], record["ridge"]) == best[1:]
        del self._audio, self._visual
        return best[1], best[2]

    # -- embedding --------------------------------------------------------------------------------
    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("projection_audio_")
        return embed_with_kernel(self.audio_scaler_.transform(audio), self.landmarks_audio_, self.gamma_audio_,
                                 self.projection_audio_, self.offset_audio_, self.chunk_size)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("projection_visual_")
        return embed_with_kernel(self.visual_scaler_.transform(visual), self.landmarks_visual_, self.gamma_visual_,
                                 self.projection_visual_, self.offset_visual_, self.chunk_size)

    def n_parameters(self) -> int:
        """Landmark coordinates (kept to evaluate the kernel) plus the m × k projections."""
        self._check_fitted("projection_audio_")
        return (self.landmarks_audio_.size + self.landmarks_visual_.size
                + self.projection_audio_.size + self.projection_visual_.size)
