"""`cca_nipals`: scikit-learn's iterative CCA (``sklearn.cross_decomposition.CCA``), the
implementation the original authors ran for their CCA row, kept for fidelity next to `cca`.

Algorithm (Wold's NIPALS in PLS "mode B" with canonical deflation; Wegelin 2000, Alg. "CCA"):
standardise both views, then for each of the 10 components alternate power iterations
w_x ∝ X⁺ t_y, t_x = X w_x, w_y ∝ Y⁺ t_x, t_y = Y w_y until ‖Δw_x‖² < tol (max_iter), and deflate
X ← X − t_x p_xᵀ, Y ← Y − t_y p_yᵀ (p = regression of each view on its own score). Unregularised;
successive components are the classical canonical variates. Retrieval: cosine between the
``transform`` outputs (x_rotations_ / y_rotations_ applied to standardised features).

Speed-up (exact, not an approximation): mode B needs the pseudo-inverse of the n × p deflated view
for every component, an SVD of a 22,482 × 1,024 matrix that alone takes ~15 s on 2 CPU cores (≈ 3
minutes for 10 components). Every NIPALS step is a product with X or Xᵀ, a pseudo-inverse, a
norm or a rank-one deflation, so it only sees the column space of [X Y] through inner products. We
therefore standardise [X Y] ourselves, factor its Gram matrix [X Y]ᵀ[X Y] = RᵀR (pivoted Cholesky,
R has p+q rows, so [X Y] = Q R for some orthonormal Q) and feed sklearn ``Z = H·[R; 0]`` with H the
Householder reflection that maps the last unit vector to 1/√k. Z has p+q+1 rows, ZᵀZ = [X Y]ᵀ[X Y]
and column sums zero (so sklearn's own centring is a no-op), hence weights, rotations, pseudo-inverse
cut-offs and convergence tests are those of the full-data fit up to rounding (the tests compare with
a direct fit; singular values of the data below ~1e-8·σ_max, i.e. numerically degenerate
directions, are resolved less precisely through the Gram matrix than by sklearn's own SVD).
``compress_rows=False`` runs sklearn on the full standardised data.

Needs more training pairs than feature dimensions. Unregularised, the problem is degenerate when
the centred views' column spaces (ranks r_a ≤ min(p, n − 1), r_v ≤ min(q, n − 1), inside the
(n − 1)-dimensional space of centred columns) must intersect: every direction of that intersection,
of dimension ≥ r_a + r_v − (n − 1), has canonical correlation exactly 1. When it holds as many
dimensions as components, all of them are 1 on the training pairs and the components are an
arbitrary basis of the intersection: a 1e-6 change of the input picks another, and retrieval is
near chance (the synthetic demo's 720 pairs with 128 + 1,024 dimensions gave MAP .22 where the
regularised `cca` gave .72). ``fit`` logs a warning and records ``n_exact_correlations_``; the
demo leaves the method out (README, "The default demo").
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy.linalg import lapack
from sklearn.cross_decomposition import CCA as SklearnCCA
from sklearn.exceptions import ConvergenceWarning

from avcmr.methods.base import RetrievalMethod, Standardizer, check_training_data
from avcmr.methods.registry import register

log = logging.getLogger(__name__)


def forced_unit_correlations(n_pairs: int, audio_dim: int, visual_dim: int) -> int:
    """Canonical correlations that are exactly 1 for any data of this size (generic ranks): the
    dimension the two centred column spaces must share inside the (n − 1)-dimensional space."""
    room = n_pairs - 1
    return max(0, min(audio_dim, room) + min(visual_dim, room) - room)


def isometric_row_compression(features: np.ndarray) -> np.ndarray:
    """A (r+1) × d matrix Z with ZᵀZ = featuresᵀfeatures (r = numerical rank ≤ d) and zero column sums.

    ``features`` must have zero column means for Z to represent the same centred data. The factor
    comes from a pivoted Cholesky decomposition of the d × d Gram matrix (LAPACK ``pstrf``, which
    also copes with rank-deficient views); returned unchanged when it would not be smaller.
    """
    n_rows, n_columns = features.shape
    if n_rows <= n_columns + 1:
        return features
    gram = features.T @ features
    factor, pivots, rank, info = lapack.dpstrf(gram, lower=0)
    if info < 0:
        raise np.linalg.LinAlgError(f"pivoted Cholesky failed (LAPACK info={info})")
    # PᵀGP = RᵀR with R upper triangular (rank rows); undo the column pivoting.
    triangular = np.triu(factor)[:rank]
    factor_rows = np.empty_like(triangular)
    factor_rows[:, pivots - 1] = triangular
    k = rank + 1
    stacked = np.vstack([factor_rows, np.zeros((1, n_columns))])
    # Householder H = I − 2uuᵀ/uᵀu with u = e_k − 1/√k maps e_k ↔ 1/√k, so 1ᵀH[R; 0] = √k·e_kᵀ[R; 0] = 0.
    u = -np.full(k, 1.0 / np.sqrt(k))
    u[-1] += 1.0
    return stacked - np.outer(2.0 * u / (u @ u), u @ stacked)


@register("cca_nipals")
class NipalsCCA(RetrievalMethod):
    def __init__(
        self,
        n_components: int = 10,
        max_iter: int = 500,
        tol: float = 1e-6,
        compress_rows: bool = True,
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.compress_rows = compress_rows

    def fit(self, audio, visual, labels) -> NipalsCCA:
        audio, visual, _ = check_training_data(audio, visual, labels)
        n_components = min(self.n_components, audio.shape[1], visual.shape[1], len(audio) - 1)
        self.n_exact_correlations_ = forced_unit_correlations(len(audio), audio.shape[1], visual.shape[1])
        if self.n_exact_correlations_:
            log.warning(
                "cca_nipals: %d training pairs for %d + %d feature dimensions: %d canonical correlations are "
                "exactly 1 and their components arbitrary (unregularised CCA needs more pairs than "
                "dimensions); the regularised `cca` is well defined here",
                len(audio), audio.shape[1], visual.shape[1], self.n_exact_correlations_,
            )
        # sklearn's scale=True divides by the ddof=1 standard deviation; a shared scale factor per
        # column does not change CCA, so the ddof=0 Standardizer is equivalent.
        self.audio_scaler_ = Standardizer().fit(audio)
        self.visual_scaler_ = Standardizer().fit(visual)
        audio = self.audio_scaler_.transform(audio)
        visual = self.visual_scaler_.transform(visual)
        if self.compress_rows:
            compressed = isometric_row_compression(np.hstack([audio, visual]))
            audio, visual = compressed[:, : audio.shape[1]], compressed[:, audio.shape[1] :]
        # sklearn centres what it is given (scale=False: no scaling); its means are kept here, from the
        # same arrays, so that embedding needs none of its private attributes (≈ 0: both the
        # standardised and the compressed views have zero column sums).
        self.audio_offset_, self.visual_offset_ = audio.mean(axis=0), visual.mean(axis=0)
        self.cca_ = SklearnCCA(n_components=n_components, scale=False, max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.cca_.fit(audio, visual)
        self.n_unconverged_ = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        return self

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        centred = self.audio_scaler_.transform(audio) - self.audio_offset_
        return centred @ self.cca_.x_rotations_

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        centred = self.visual_scaler_.transform(visual) - self.visual_offset_
        return centred @ self.cca_.y_rotations_

    def n_parameters(self) -> int:
        self._check_fitted("cca_")
        return self.cca_.x_rotations_.size + self.cca_.y_rotations_.size
