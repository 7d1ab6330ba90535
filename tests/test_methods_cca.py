import numpy as np
import pytest

from avcmr.methods import NotFittedError, make_method
from avcmr.methods.linear_cca import LinearCCA


def correlated_views(rng, n=400):
    latent = rng.normal(size=(n, 3))
    x = latent @ rng.normal(size=(3, 12)) + 0.5 * rng.normal(size=(n, 12))
    y = latent @ rng.normal(size=(3, 20)) + 0.5 * rng.normal(size=(n, 20))
    return x, y


def test_canonical_correlations_equal_direct_svd(rng):
    x, y = correlated_views(rng)
    cca = LinearCCA(n_components=5, reg=0.0).fit(x, y)
    # Independent route: correlations are the singular values of Qxᵀ Qy (orthonormal bases).
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    expected = np.linalg.svd(qx.T @ qy, compute_uv=False)[:5]
    np.testing.assert_allclose(cca.correlations_, expected, atol=1e-8)
    # …and they are the correlations of the projected training data, which are uncorrelated.
    projected = np.corrcoef(cca.transform_x(x).T, cca.transform_y(y).T)
    np.testing.assert_allclose(np.diag(projected[:5, 5:]), expected, atol=1e-8)
    np.testing.assert_allclose(projected[:5, :5], np.eye(5), atol=1e-8)


def test_cca_method_retrieves_paired_classes(rng):
    labels = np.repeat(np.arange(4), 60)
    means_a, means_v = rng.normal(size=(4, 16)), rng.normal(size=(4, 40))
    audio = means_a[labels] + 0.6 * rng.normal(size=(240, 16))
    visual = means_v[labels] + 0.6 * rng.normal(size=(240, 40))
    train = np.arange(240) % 5 != 0
    method = make_method("cca", {"n_components": 3}).fit(audio[train], visual[train], labels[train])
    from avcmr.evaluation.metrics import mean_average_precision

    scores = method.similarity(audio[~train], visual[~train])
    assert mean_average_precision(scores, labels[~train], labels[~train]) > 0.9
    assert method.n_parameters() == 3 * (16 + 40)


def test_using_cca_before_fit_is_an_error():
    with pytest.raises(NotFittedError, match="fit"):
        make_method("cca").embed_audio(np.zeros((2, 3)))


def test_unknown_method_and_parameter_are_clear_errors():
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        make_method("nope")
    with pytest.raises(ValueError, match="no parameter"):
        make_method("cca", {"n_comp": 3})


def test_random_method_is_seeded(rng):
    x = rng.normal(size=(10, 4))
    labels = np.arange(10) % 2

    def scores(seed):
        return make_method("random", random_state=seed).fit(x, x, labels).similarity(x, x)

    a, b = scores(3), scores(3)
    np.testing.assert_array_equal(a, b)  # the same seed: the same scores
    # Another seed draws other scores, and the scores are a real draw: distinct within each query's
    # row (a random ranking of the candidates), neither constant nor the identity's.
    assert not np.allclose(a, scores(4))
    assert all(len(np.unique(row)) == len(row) for row in a)
    assert len({tuple(np.argsort(row)) for row in a}) > 1
    assert a.shape == (10, 10) and ((a >= 0) & (a < 1)).all()
