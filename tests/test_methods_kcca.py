"""`kcca`: the Nyström KCCA with m = n landmarks equals exact (full-kernel, dual) regularised KCCA;
kernel width and ridge are chosen on an unstratified validation split; landmarks are capped."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from easy_features import average_map, make_easy_features
from scipy.spatial.distance import cdist, pdist
from scipy.stats import pearsonr

from avcmr.methods import NotFittedError, method_class
from avcmr.methods.kcca import KernelCCA, median_heuristic_gamma, rbf_kernel
from avcmr.methods.model_selection import unstratified_validation_split


def nonlinear_views(n: int, seed: int):
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    audio = np.column_stack([np.cos(angle), np.sin(angle), rng.normal(size=(n, 3)) * 0.3]) * 3 + 1
    visual = np.column_stack([np.cos(2 * angle), angle, rng.normal(size=(n, 5)) * 0.3])
    return audio, visual


def standardise(train: np.ndarray, other: np.ndarray):
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (other - mean) / std


def exact_kcca(train_a, train_v, test_a, test_v, gamma_a, gamma_v, reg_a, reg_v, n_components):
    """Regularised KCCA in the dual (Hardoon et al. 2004) with centred n × n kernels.

    Ridge r on primal weights w = Φ̃ᵀα ⇔ κ = r(n−1) in (K_v+κ_v I)⁻¹K_a(K_a+κ_a I)⁻¹K_v β = ρ²β,
    α = (K_a+κ_a I)⁻¹K_v β / ρ. Returns correlations and the train/test projections K̃α, K̃β.
    """
    n = len(train_a)
    centring = np.eye(n) - 1.0 / n

    def centred(train, test, gamma):
        kernel, cross = rbf_kernel(train, train, gamma), rbf_kernel(test, train, gamma)
        # Test rows centred with training statistics: k̃(x,·) = k(x,·) − mean_j k(x,x_j) − k̄_col + k̄.
        cross_centred = (cross - cross.mean(axis=1, keepdims=True) - kernel.mean(axis=0) + kernel.mean())
        return centring @ kernel @ centring, cross_centred

    kernel_a, cross_a = centred(train_a, test_a, gamma_a)
    kernel_v, cross_v = centred(train_v, test_v, gamma_v)
    kappa_a, kappa_v = reg_a * (n - 1), reg_v * (n - 1)
    solve_a = np.linalg.solve(kernel_a + kappa_a * np.eye(n), kernel_v)
    problem = np.linalg.solve(kernel_v + kappa_v * np.eye(n), kernel_a @ solve_a)
    eigenvalues, eigenvectors = np.linalg.eig(problem)
    order = np.argsort(-eigenvalues.real)[:n_components]
    correlations = np.sqrt(eigenvalues.real[order])
    beta = eigenvectors[:, order].real
    alpha = solve_a @ beta / correlations
    return correlations, kernel_a @ alpha, kernel_v @ beta, cross_a @ alpha, cross_v @ beta


def median_gamma(standardised: np.ndarray) -> float:
    """The median heuristic by scipy: 1/(2σ²) with σ² the median squared distance between rows."""
    return 1.0 / (2.0 * np.median(pdist(standardised, "sqeuclidean")))


def scaled_ridge(standardised: np.ndarray, gamma: float, ridge: float) -> float:
    """r = ridge × the mean eigenvalue of the centred feature covariance (module docstring, step 3)
    when every training row is a landmark: the Nyström features then reproduce the kernel on its
    eigen-directions above 1e-10·λ_max (the others are dropped), so tr Σ = tr(C K_kept C)/(n − 1),
    averaged over the kept directions."""
    n = len(standardised)
    values, vectors = scipy.linalg.eigh(np.exp(-gamma * cdist(standardised, standardised, "sqeuclidean")))
    keep = values > 1e-10 * values.max()
    kept = (vectors[:, keep] * values[keep]) @ vectors[:, keep].T
    centring = np.eye(n) - 1.0 / n
    return ridge * np.trace(centring @ kept @ centring) / (n - 1) / keep.sum()


def independent_exact_kcca(audio, visual, test_audio, test_visual, gamma_scale, ridge, n_components):
    """Exact KCCA of raw views, with the standardisation, kernel widths and ridges computed here."""
    train_a, test_a = standardise(audio, test_audio)
    train_v, test_v = standardise(visual, test_visual)
    gamma_a, gamma_v = gamma_scale * median_gamma(train_a), gamma_scale * median_gamma(train_v)
    reg_a, reg_v = scaled_ridge(train_a, gamma_a, ridge), scaled_ridge(train_v, gamma_v, ridge)
    return exact_kcca(train_a, train_v, test_a, test_v, gamma_a, gamma_v, reg_a, reg_v, n_components), (
        gamma_a, gamma_v, reg_a, reg_v)


def assert_same_directions(left: np.ndarray, right: np.ndarray, tolerance: float):
    for component in range(left.shape[1]):
        correlation = np.corrcoef(left[:, component], right[:, component])[0, 1]
        assert abs(correlation) > 1 - tolerance, (component, correlation)


# One grid point and no validation split: the plain KCCA of the given width and ridge.
EXACT = {"max_landmark_fraction": 1.0, "gamma_scales": (1.0,), "validation_fraction": 0.0}


@pytest.mark.parametrize("ridge", [1e-3, 0.1])
def test_all_landmarks_equals_exact_kcca(ridge):
    audio, visual = nonlinear_views(140, seed=0)
    test_audio, test_visual = nonlinear_views(30, seed=1)
    model = KernelCCA(n_components=4, n_landmarks=500, ridges=(ridge,), **EXACT).fit(audio, visual, np.zeros(140))
    assert len(model.landmark_index_) == 140  # clipped to n
    (correlations, proj_a, proj_v, test_proj_a, test_proj_v), parameters = independent_exact_kcca(
        audio, visual, test_audio, test_visual, 1.0, ridge, 4)
    # The widths and ridges the model used are those of the documented formulas.
    np.testing.assert_allclose((model.gamma_audio_, model.gamma_visual_, model.reg_audio_, model.reg_visual_),
                               parameters, rtol=1e-8)
    assert correlations[0] > 0.9  # the views are strongly (non-linearly) related
    np.testing.assert_allclose(model.correlations_, correlations, rtol=1e-6)
    assert_same_directions(model.embed_audio(audio), proj_a, 1e-8)
    assert_same_directions(model.embed_visual(visual), proj_v, 1e-8)
    assert_same_directions(model.embed_audio(test_audio), test_proj_a, 1e-8)
    assert_same_directions(model.embed_visual(test_visual), test_proj_v, 1e-8)
    # Training projections are centred and have unit (regularised) variance scale.
    np.testing.assert_allclose(model.embed_audio(audio).mean(axis=0), 0.0, atol=1e-8)


def test_fewer_landmarks_approximate_the_exact_correlations():
    audio, visual = nonlinear_views(400, seed=4)
    full = KernelCCA(n_components=2, n_landmarks=400, ridges=(1e-3,), **EXACT).fit(audio, visual, np.zeros(400))
    reduced = KernelCCA(n_components=2, n_landmarks=120, ridges=(1e-3,), **EXACT).fit(audio, visual, np.zeros(400))
    assert reduced.projection_audio_.shape == (120, 2)
    np.testing.assert_allclose(reduced.correlations_, full.correlations_, atol=0.01)


def test_median_heuristic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    gamma = median_heuristic_gamma(x, rng, max_samples=100)
    assert gamma == pytest.approx(1.0 / (2.0 * np.median(pdist(x)) ** 2), rel=1e-10)
    np.testing.assert_allclose(rbf_kernel(x, x[:7], 0.3), np.exp(-0.3 * cdist(x, x[:7], "sqeuclidean")), atol=1e-12)


def test_beats_random_and_is_deterministic():
    data = make_easy_features()
    train = (data["audio_train"], data["visual_train"], data["labels_train"])
    model = method_class("kcca")(random_state=0).fit(*train)
    again = method_class("kcca")(random_state=0).fit(*train)
    chance = average_map(method_class("random")(random_state=0).fit(*train), data)
    assert average_map(model, data) > chance + 0.3
    np.testing.assert_array_equal(model.embed_audio(data["audio_test"]), again.embed_audio(data["audio_test"]))
    assert model.embed_visual(data["visual_test"]).shape == (100, 10)
    # 400 training pairs: at most 400 / 5 = 80 landmarks, whatever n_landmarks allows.
    assert len(model.landmark_index_) == 80
    assert model.n_parameters() == 80 * (128 + 1024) + 2 * 80 * 10


def held_out_correlation(audio_embedding: np.ndarray, visual_embedding: np.ndarray) -> float:
    """Σ over components of the Pearson correlation of the two views' held-out projections."""
    return sum(pearsonr(audio_embedding[:, k], visual_embedding[:, k])[0] for k in range(audio_embedding.shape[1]))


def test_width_and_ridge_are_chosen_on_an_unstratified_validation_split():
    audio, visual = nonlinear_views(300, seed=6)
    test_audio, test_visual = nonlinear_views(20, seed=7)
    labels = np.arange(300) % 3
    # Every training pair a landmark: each grid point is then exact KCCA, computed here independently.
    grid = {"n_components": 3, "n_landmarks": 1000, "max_landmark_fraction": 1.0, "validation_fraction": 0.2}
    model = KernelCCA(gamma_scales=(4.0, 1.0, 0.25), ridges=(0.1, 1e-3), **grid).fit(audio, visual, labels)
    fit_rows, validation_rows = unstratified_validation_split(300, 0.2, 0)
    assert len(validation_rows) == 60
    expected = {}
    for scale in (0.25, 1.0, 4.0):
        for ridge in (1e-3, 0.1):
            (_, _, _, val_a, val_v), _ = independent_exact_kcca(
                audio[fit_rows], visual[fit_rows], audio[validation_rows], visual[validation_rows], scale, ridge, 3)
            expected[scale, ridge] = held_out_correlation(val_a, val_v)
    recorded = {(row["gamma_scale"], row["ridge"]): row["val_total_correlation"] for row in model.history_}
    assert recorded == pytest.approx(expected, rel=1e-6)
    best = max(expected, key=expected.get)
    # The grid's order puts the best point (measured) after the first one.
    assert (model.gamma_scale_, model.ridge_) == best and best != (4.0, 0.1)
    assert [row["selected"] for row in model.history_].count(True) == 1
    # The selection fits on the 240 fit pairs only; the chosen point is refitted on all 300.
    assert {row["n_landmarks"] for row in model.history_} == {240} and len(model.landmark_index_) == 300
    (_, _, _, test_proj_a, test_proj_v), (gamma_a, _, _, _) = independent_exact_kcca(
        audio, visual, test_audio, test_visual, best[0], best[1], 3)
    assert_same_directions(model.embed_audio(test_audio), test_proj_a, 1e-6)
    assert_same_directions(model.embed_visual(test_visual), test_proj_v, 1e-6)
    assert model.gamma_audio_ == pytest.approx(gamma_a, rel=1e-8)


def test_bad_grids_are_refused():
    audio, visual = nonlinear_views(50, seed=0)
    with pytest.raises(ValueError, match="gamma_scales"):
        KernelCCA(gamma_scales=(0.0, 1.0)).fit(audio, visual, np.zeros(50))
    with pytest.raises(ValueError, match="max_landmark_fraction"):
        KernelCCA(max_landmark_fraction=0.0).fit(audio, visual, np.zeros(50))


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        KernelCCA().embed_audio(np.zeros((2, 3)))
