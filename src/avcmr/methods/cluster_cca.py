"""`c_cca`: Cluster-CCA (Rasiwasia, Mahajan, Mahadevan & Aggarwal, AISTATS 2014), with the blend of
Zeng, Yu & Oyama (TOMM 2020) used as the Table 2 baseline.

Cluster-CCA treats every within-class (audio, visual) combination as a correlated pair. With C
classes, X_c / Y_c the n_c centred audio / visual rows of class c and M = Σ_c n_c² pairs (Rasiwasia
et al.'s covariances over all within-class pairs):

    Σ_av^cluster = (1/M) Σ_c Σ_{j,k∈c} x_j y_kᵀ = (1/M) Σ_c s_c^a s_c^vᵀ,   s_c = Σ_{j∈c} x_j,
    Σ_aa^cluster = (1/M) Σ_c Σ_{j,k∈c} x_j x_jᵀ = (1/M) Σ_c n_c X_cᵀX_c      (Σ_vv likewise),

so the n_c² pair list is never materialised: class sums give the cross term and per-row weights n_c
give the auto terms (O(n·d²) instead of O(Σ n_c²·d²)). The cluster cross-covariance has rank ≤ C,
so Zeng et al. blend it with the ordinary paired cross-covariance Σ_av^pair = X̃ᵀỸ/(n−1):

    Σ_av = β·Σ_av^pair + (1−β)·Σ_av^cluster        (β = 0.2 in their code; β = 0 is pure C-CCA),

then solve regularised CCA (Σ_aa + r·I, Σ_vv + r·I, r = 1e-4) by SVD of
T = Σ_aa^{-1/2} Σ_av Σ_vv^{-1/2} (``LinearCCA._fit_covariances``), 10 components, cosine retrieval.

Choices (and how they differ from the authors' code):
- centring uses the ordinary training means (as in the authors' code and in "class sums of centred
  features"); Rasiwasia's pair-set CCA would centre with the pair-weighted mean Σ_c n_c s_c / M,
  which coincides for balanced classes;
- ``auto_covariance="cluster"`` (default) uses Rasiwasia's pair-weighted Σ_aa, Σ_vv above;
  ``"paired"`` uses the ordinary X̃ᵀX̃/(n−1) as the authors' public code does (identical up to
  n/(n−1) for balanced classes).

`cluster_covariances` only uses ``@``, ``.T``, ``.sum(0)``, ``.mean(0)`` and broadcasting, so it
works unchanged on numpy arrays and on torch tensors: `c_dcca` calls it on every minibatch of
network outputs and `tnn_c_cca` reuses `ClusterCCA` for its first stage.
"""

from __future__ import annotations

import numpy as np

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.linear_cca import LinearCCA, LinearCCAEmbedding
from avcmr.methods.registry import register

AUTO_COVARIANCE_KINDS = ("cluster", "paired")


def one_hot(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n × C membership matrix, class values) of arbitrary hashable labels."""
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    membership = np.zeros((len(codes), len(classes)))
    membership[np.arange(len(codes)), codes] = 1.0
    return membership, classes


def cluster_covariances(audio, visual, membership, beta: float = 0.2, auto_covariance: str = "cluster"):
    """Unregularised (Σ_aa, Σ_vv, Σ_av) of blended Cluster-CCA from class sums (module docstring).

    ``audio`` (n×p), ``visual`` (n×q) raw rows, ``membership`` the n×C one-hot class matrix; all
    three numpy arrays or all three torch tensors (same dtype). Rows are centred with their means.
    Returns the covariances without the ridge; the caller adds r·I.
    """
    if auto_covariance not in AUTO_COVARIANCE_KINDS:
        raise ValueError(f"auto_covariance must be one of {AUTO_COVARIANCE_KINDS}, got {auto_covariance!r}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    n = audio.shape[0]
    audio = audio - audio.mean(0)
    visual = visual - visual.mean(0)
    class_sizes = membership.sum(0)                      # n_c
    n_pairs = (class_sizes * class_sizes).sum()          # M = Σ_c n_c²
    sums_audio = membership.T @ audio                    # C × p, rows s_c^a
    sums_visual = membership.T @ visual                  # C × q, rows s_c^v
    cov_av = sums_audio.T @ sums_visual / n_pairs
    if beta > 0:
        cov_av = beta * (audio.T @ visual / (n - 1)) + (1.0 - beta) * cov_av
    if auto_covariance == "cluster":
        # Σ_c n_c X_cᵀX_c = Σ_i n_{y_i} x_i x_iᵀ: weight every row by the size of its class.
        row_weights = (membership @ class_sizes)[:, None]
        cov_aa = audio.T @ (audio * row_weights) / n_pairs
        cov_vv = visual.T @ (visual * row_weights) / n_pairs
    else:
        cov_aa = audio.T @ audio / (n - 1)
        cov_vv = visual.T @ visual / (n - 1)
    return cov_aa, cov_vv, cov_av


def fit_cluster_cca(
    audio: np.ndarray,
    visual: np.ndarray,
    labels: np.ndarray,
    n_components: int = 10,
    beta: float = 0.2,
    reg: float = 1e-4,
    auto_covariance: str = "cluster",
) -> LinearCCA:
    """A fitted ``LinearCCA`` (weights, means, correlations) solving blended Cluster-CCA."""
    audio = np.asarray(audio, dtype=np.float64)
    visual = np.asarray(visual, dtype=np.float64)
    membership, _ = one_hot(labels)
    cov_aa, cov_vv, cov_av = cluster_covariances(audio, visual, membership, beta, auto_covariance)
    cca = LinearCCA(n_components=n_components, reg=reg)
    cca._fit_covariances(
        cov_aa + reg * np.eye(cov_aa.shape[0]), cov_vv + reg * np.eye(cov_vv.shape[0]), cov_av
    )
    # transform_x / transform_y centre with the same (ordinary) means the covariances used.
    cca.mean_x_ = audio.mean(axis=0)
    cca.mean_y_ = visual.mean(axis=0)
    return cca


@register("c_cca")
class ClusterCCA(LinearCCAEmbedding, RetrievalMethod):
    """Blended Cluster-CCA; ``beta=0`` is Rasiwasia's pure C-CCA, ``beta=1`` plain (paired) CCA
    with cluster-weighted auto-covariances."""

    def __init__(
        self,
        n_components: int = 10,
        beta: float = 0.2,
        reg: float = 1e-4,
        auto_covariance: str = "cluster",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.beta = beta
        self.reg = reg
        self.auto_covariance = auto_covariance

    def fit(self, audio, visual, labels) -> ClusterCCA:
        audio, visual, labels = check_training_data(audio, visual, labels)
        self.cca_ = fit_cluster_cca(
            audio, visual, labels, self.n_components, self.beta, self.reg, self.auto_covariance
        )
        self.correlations_ = self.cca_.correlations_
        return self
