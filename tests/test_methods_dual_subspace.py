"""Tests of the paper's dual-subspace model (`ours`) and its ablations.

Networks in the training tests are narrower than the paper's (hidden widths are hyper-parameters)
so that the whole file runs in well under a minute on two CPU cores; the loss tests use the
functions the estimators train with.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.evaluation.metrics import evaluate_scores
from avcmr.methods.base import NotFittedError
from avcmr.methods.dual_subspace import (
    DualSubspace,
    ExplicitImplicitShared,
    ExplicitSpace,
    ImplicitSpace,
)
from avcmr.methods.dual_subspace_losses import (
    consistency_loss,
    discriminative_loss,
    dual_subspace_losses,
    orthogonality_penalty,
)
from avcmr.methods.registry import method_class

SMALL_NETS = {"audio_hidden": (64, 64), "visual_hidden": (64, 128), "batch_size": 128}


@pytest.fixture(scope="module")
def easy_features():
    """600 clips with well separated classes and a weak pair nuisance: a learnable task."""
    table = make_synthetic_features(
        n_clips=600, train_size=480, class_separation=3.0, pair_correlation=0.2, noise=0.5, random_state=3
    )
    return split_arrays(table)


@pytest.fixture(scope="module")
def fitted_ours(easy_features):
    audio_train, visual_train, labels_train, *_ = easy_features
    return DualSubspace(epochs=5, random_state=0, device="cpu", **SMALL_NETS).fit(audio_train, visual_train, labels_train)


def average_map(method, audio, visual, labels) -> float:
    per_query = evaluate_scores(method.similarity(audio, visual), labels, labels)
    return float((per_query["a2v"].mean() + per_query["v2a"].mean()) / 2)


def chance_map(labels) -> float:
    shares = np.bincount(labels) / len(labels)
    return float((shares**2).sum())


# -- the loss terms ---------------------------------------------------------------------------
def numpy_canonical_correlation_sum(h_a: np.ndarray, h_v: np.ndarray, reg: float) -> float:
    """Σ singular values of Σaa^{-1/2} Σav Σvv^{-1/2}, written independently of the torch code."""
    n = len(h_a)
    h_a = h_a - h_a.mean(axis=0)
    h_v = h_v - h_v.mean(axis=0)
    cov_aa = h_a.T @ h_a / (n - 1) + reg * np.eye(h_a.shape[1])
    cov_vv = h_v.T @ h_v / (n - 1) + reg * np.eye(h_v.shape[1])
    cov_av = h_a.T @ h_v / (n - 1)

    def inverse_sqrt(matrix):
        values, vectors = np.linalg.eigh(matrix)
        return vectors @ np.diag(values**-0.5) @ vectors.T

    t = inverse_sqrt(cov_aa) @ cov_av @ inverse_sqrt(cov_vv)
    return float(np.linalg.svd(t, compute_uv=False).sum())


def numpy_discriminative(implicit_audio, implicit_visual, onehot) -> float:
    """Eq. 3: mean_i ‖ψ(a_i) − y_i‖₂ + mean_i ‖τ(v_i) − y_i‖₂."""
    return float(np.linalg.norm(implicit_audio - onehot, axis=1).mean() + np.linalg.norm(implicit_visual - onehot, axis=1).mean())


def numpy_difference(left, right, normalized: bool) -> float:
    """‖leftᵀright‖²_F, on column-centred unit-norm columns when ``normalized`` (Pearson form)."""
    if normalized:
        left = left - left.mean(axis=0)
        right = right - right.mean(axis=0)
        left = left / np.linalg.norm(left, axis=0)
        right = right / np.linalg.norm(right, axis=0)
    return float(np.sum((left.T @ right) ** 2))


def numpy_consistency(ex_a, ex_v, im_a, im_v, normalized: bool = True) -> float:
    """Eqs. 4–5 per modality: ‖Q_ex^aᵀQ_im^a‖² + ‖Q_ex^vᵀQ_im^v‖² + ‖Q_im^aᵀQ_im^v‖²."""
    return numpy_difference(ex_a, im_a, normalized) + numpy_difference(ex_v, im_v, normalized) + numpy_difference(im_a, im_v, normalized)


def test_corr_term_is_minus_the_sum_of_canonical_correlations():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((200, 10))
    explicit_audio = shared + 0.8 * rng.standard_normal((200, 10))
    explicit_visual = shared @ rng.standard_normal((10, 10)) + 0.8 * rng.standard_normal((200, 10))
    implicit = torch.tensor(rng.standard_normal((200, 4)), dtype=torch.float32)
    onehot = torch.nn.functional.one_hot(torch.arange(200) % 4, 4).float()
    outputs = {"explicit_audio": torch.tensor(explicit_audio, dtype=torch.float32),
               "explicit_visual": torch.tensor(explicit_visual, dtype=torch.float32),
               "implicit_audio": implicit, "implicit_visual": implicit}  # fmt: skip
    losses = dual_subspace_losses(outputs, onehot)
    expected = -numpy_canonical_correlation_sum(explicit_audio, explicit_visual, reg=1e-4)
    assert float(losses["corr"]) == pytest.approx(expected, abs=1e-4)
    # Ten strongly shared dimensions: a large sum of correlations, each below one.
    assert -10.0 < expected < -5.0


def test_dis_term_matches_hand_computation():
    implicit_audio = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    implicit_visual = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # Audio rows: ‖(0,0)‖ = 0, ‖(0,−1)‖ = 1, ‖(2,4)‖ = √20; visual rows: √2, 0, 0.
    expected = (0.0 + 1.0 + np.sqrt(20.0)) / 3 + (np.sqrt(2.0) + 0.0 + 0.0) / 3
    assert float(discriminative_loss(implicit_audio, implicit_visual, onehot)) == pytest.approx(expected, rel=1e-6)


def test_cons_term_is_per_modality_where_the_stacked_form_cancels():
    """Audio's explicit/implicit product is +M, visual's is −M: over rows stacked across modalities
    the two cancel (‖M − M‖² = 0); Eq. 4 per modality gives 2‖M‖² (+ the implicit a–v term)."""
    explicit_audio = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    implicit_audio = np.array([[1.0], [3.0], [0.0]])
    explicit_visual = explicit_audio.copy()
    implicit_visual = -implicit_audio
    product = explicit_audio.T @ implicit_audio  # M = [1, 6]
    stacked = np.vstack([explicit_audio, explicit_visual]).T @ np.vstack([implicit_audio, implicit_visual])
    assert np.allclose(stacked, 0.0)
    # By hand: 2‖M‖² = 2·(1 + 36); ‖H_im^aᵀH_im^v‖² = (−(1 + 9))² = 100.
    expected_raw = 2 * (1.0 + 36.0) + 100.0
    assert float(np.sum(product**2)) == pytest.approx(37.0)
    tensors = [torch.tensor(x, dtype=torch.float64) for x in (explicit_audio, explicit_visual, implicit_audio, implicit_visual)]
    assert float(consistency_loss(*tensors, form="frobenius")) == pytest.approx(expected_raw)
    assert float(consistency_loss(*tensors, form="correlation")) == pytest.approx(
        numpy_consistency(explicit_audio, explicit_visual, implicit_audio, implicit_visual), rel=1e-9
    )


def test_normalised_cons_is_the_sum_of_squared_cross_correlations():
    rng = np.random.default_rng(1)
    left = rng.standard_normal((100, 3))
    right = left[:, :2] + rng.standard_normal((100, 2))
    expected = float(np.sum(np.corrcoef(left.T, right.T)[:3, 3:] ** 2))  # numpy's Pearson correlations
    once = orthogonality_penalty(torch.tensor(left), torch.tensor(right))
    repeated = orthogonality_penalty(torch.tensor(left).repeat(5, 1), torch.tensor(right).repeat(5, 1))
    assert float(once) == pytest.approx(expected, rel=1e-9)
    assert float(repeated) == pytest.approx(expected, rel=1e-9)  # batch-size free
    assert float(orthogonality_penalty(torch.tensor(left), torch.tensor(right) * 1e3)) == pytest.approx(expected, rel=1e-9)


# (corr weight, α, β) of each Table 4 variant as §5.2.2/§5.2.4 define it, written out here.
PAPER_WEIGHTS = {
    "ours": (1.0, 0.01, 0.001),
    "explicit": (1.0, 0.0, 0.001),  # "α = 0, our model is the explicit-space model"
    "implicit": (0.0, 0.01, 0.001),  # discriminative loss with constraint loss
    "ex_im_share": (1.0, 0.01, 0.001),  # shared trunks, the same loss as ours
}


@pytest.mark.parametrize("name", sorted(PAPER_WEIGHTS))
def test_each_variant_trains_on_the_papers_loss_composition(easy_features, name):
    audio_train, visual_train, labels_train, *_ = easy_features
    model = method_class(name)(epochs=1, random_state=0, device="cpu", **SMALL_NETS)
    model.fit(audio_train[:200], visual_train[:200], labels_train[:200])
    audio = torch.tensor(model.audio_scaler_.transform(audio_train[:160]), dtype=torch.float32)
    visual = torch.tensor(model.visual_scaler_.transform(visual_train[:160]), dtype=torch.float32)
    classes = np.searchsorted(model.classes_, labels_train[:160])
    onehot = np.eye(len(model.classes_))[classes]
    outputs = model._forward(model.networks_, audio, visual)
    losses = model._batch_losses(outputs, torch.tensor(onehot, dtype=torch.float32))
    out = {key: value.detach().double().numpy() for key, value in outputs.items()}
    corr = -numpy_canonical_correlation_sum(out["explicit_audio"], out["explicit_visual"], reg=1e-4)
    dis = numpy_discriminative(out["implicit_audio"], out["implicit_visual"], onehot)
    cons = numpy_consistency(out["explicit_audio"], out["explicit_visual"], out["implicit_audio"], out["implicit_visual"])
    corr_weight, alpha, beta = PAPER_WEIGHTS[name]
    assert float(losses["total"].detach()) == pytest.approx(corr_weight * corr + alpha * dis + beta * cons, rel=1e-4, abs=1e-5)
    # All four variants fuse [explicit 10 | implicit C] with the same CCA head.
    assert model.embed_audio(audio_train[:5]).shape == (5, 10)
    assert out["explicit_audio"].shape[1] == 10 and out["implicit_visual"].shape[1] == len(model.classes_)


def test_ex_im_share_has_one_trunk_per_modality_and_ours_four_nets(easy_features):
    audio_train, visual_train, labels_train, *_ = easy_features
    shared = ExplicitImplicitShared(epochs=1, device="cpu", **SMALL_NETS).fit(audio_train, visual_train, labels_train)
    separate = DualSubspace(epochs=1, device="cpu", **SMALL_NETS).fit(audio_train, visual_train, labels_train)
    n_classes = len(shared.classes_)

    def dense(sizes):
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))

    # Shared: trunk 128→64→64 with heads 64→10 and 64→C (visual likewise from 1024→64→128).
    expected_shared = (dense([128, 64, 64]) + dense([64, 10]) + dense([64, n_classes])
                       + dense([1024, 64, 128]) + dense([128, 10]) + dense([128, n_classes]))  # fmt: skip
    expected_separate = (dense([128, 64, 64, 10]) + dense([128, 64, 64, n_classes])
                         + dense([1024, 64, 128, 10]) + dense([1024, 64, 128, n_classes]))  # fmt: skip
    assert shared.n_parameters() == expected_shared
    assert separate.n_parameters() == expected_separate


def test_beta_changes_the_weights_after_one_step(easy_features):
    """β = 0.001 vs β = 0 (the paper's SGD, one full-batch step): the weights differ by more than
    float noise, i.e. L_cons is not inert; the same β twice gives identical weights."""
    audio_train, visual_train, labels_train, *_ = easy_features
    settings = {**SMALL_NETS, "batch_size": 1000, "epochs": 1, "optimizer": "sgd", "learning_rate": 0.01,
                "momentum": 0.0, "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}  # fmt: skip

    def weights(beta):
        model = DualSubspace(beta=beta, **settings).fit(audio_train, visual_train, labels_train)
        assert model.n_steps_ == 1
        return torch.cat([p.detach().flatten() for p in model.networks_.parameters()]).numpy()

    with_cons, again, without = weights(0.001), weights(0.001), weights(0.0)
    np.testing.assert_array_equal(with_cons, again)
    difference = np.abs(with_cons - without).max()
    float_noise = np.finfo(np.float32).eps * np.abs(without).max()
    assert difference > 100 * float_noise


def test_gradients_reach_every_parameter(fitted_ours, easy_features):
    audio_train, visual_train, labels_train, *_ = easy_features
    model = fitted_ours
    networks = model.networks_
    audio = torch.tensor(model.audio_scaler_.transform(audio_train[:200]), dtype=torch.float32)
    visual = torch.tensor(model.visual_scaler_.transform(visual_train[:200]), dtype=torch.float32)
    class_index = torch.as_tensor(np.searchsorted(model.classes_, labels_train[:200]))
    onehot = torch.nn.functional.one_hot(class_index, len(model.classes_)).float()
    losses = model._batch_losses(model._forward(networks, audio, visual), onehot)
    networks.zero_grad(set_to_none=True)
    losses["total"].backward()
    gradients = {name: parameter.grad for name, parameter in networks.named_parameters()}
    networks.zero_grad(set_to_none=True)
    assert set(gradients) == {name for name, _ in networks.named_parameters()}
    for name, gradient in gradients.items():
        assert gradient is not None, name
        assert torch.isfinite(gradient).all(), name
        assert gradient.abs().sum() > 0, name


# -- the estimators ---------------------------------------------------------------------------
def test_registry_names_map_to_the_four_variants():
    assert method_class("ours") is DualSubspace
    assert method_class("explicit") is ExplicitSpace
    assert method_class("implicit") is ImplicitSpace
    assert method_class("ex_im_share") is ExplicitImplicitShared


def test_embedding_before_fit_raises():
    model = DualSubspace()
    with pytest.raises(NotFittedError):
        model.embed_audio(np.zeros((2, 128)))
    with pytest.raises(NotFittedError):
        model.embed_visual(np.zeros((2, 1024)))


def test_ours_learns_the_easy_task_far_above_chance(fitted_ours, easy_features):
    *_, audio_test, visual_test, labels_test = easy_features
    score = average_map(fitted_ours, audio_test, visual_test, labels_test)
    assert score > 0.9
    assert score > chance_map(labels_test) + 0.6
    embedding = fitted_ours.embed_audio(audio_test)
    assert embedding.shape == (len(audio_test), 10)


def test_ours_history_and_fitted_state(fitted_ours):
    history = fitted_ours.history_
    assert [record["epoch"] for record in history] == list(range(1, len(history) + 1))
    for record in history:
        assert {"epoch", "steps", "total", "corr", "dis", "cons", "val_map", "grad_corr", "grad_dis", "grad_cons"} <= set(record)
        assert all(np.isfinite(value) for value in record.values())
        # L_cons is alive: its weighted gradient on the outputs is a measurable share of the total.
        shares = np.array([record["grad_corr"], record["grad_dis"], record["grad_cons"]])
        assert shares[2] / shares.sum() > 1e-3
    # ≈ 432 fit pairs in batches of 128, the trailing 48 merged: 3 optimiser steps per epoch.
    assert [record["steps"] for record in history] == [3 * record["epoch"] for record in history]
    assert fitted_ours.n_steps_ == history[-1]["steps"]
    # L_corr of 10 components lies in [−10, 0]; the correlations grow during training.
    assert -10.0 <= history[-1]["corr"] < history[0]["corr"] <= 0.0
    assert history[-1]["dis"] < history[0]["dis"]
    assert fitted_ours.best_epoch_ == 1 + int(np.argmax([record["val_map"] for record in history]))
    assert fitted_ours.device_ == "cpu"
    n_classes = len(fitted_ours.classes_)
    layer_sizes = {
        "f": [128, 64, 64, 10],
        "g": [1024, 64, 128, 10],
        "psi": [128, 64, 64, n_classes],
        "tau": [1024, 64, 128, n_classes],
    }
    expected = sum(n_in * n_out + n_out for sizes in layer_sizes.values() for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))
    assert fitted_ours.n_parameters() == expected


def test_two_cpu_fits_with_one_seed_give_identical_embeddings(easy_features):
    audio_train, visual_train, labels_train, audio_test, visual_test, _ = easy_features
    settings = {"epochs": 2, "random_state": 7, "device": "cpu", **SMALL_NETS}
    first = DualSubspace(**settings).fit(audio_train, visual_train, labels_train)
    second = DualSubspace(**settings).fit(audio_train, visual_train, labels_train)
    np.testing.assert_array_equal(first.embed_audio(audio_test), second.embed_audio(audio_test))
    np.testing.assert_array_equal(first.embed_visual(visual_test), second.embed_visual(visual_test))
    other_seed = DualSubspace(**{**settings, "random_state": 8}).fit(audio_train, visual_train, labels_train)
    assert not np.allclose(first.embed_audio(audio_test), other_seed.embed_audio(audio_test))


@pytest.mark.parametrize(
    ("method", "unused_terms"),
    [(ExplicitSpace, ("dis",)), (ImplicitSpace, ("corr",)), (ExplicitImplicitShared, ())],
)
def test_ablations_fit_and_retrieve_above_chance(easy_features, method, unused_terms):
    audio_train, visual_train, labels_train, audio_test, visual_test, labels_test = easy_features
    model = method(epochs=3, random_state=0, device="cpu", **SMALL_NETS).fit(audio_train, visual_train, labels_train)
    score = average_map(model, audio_test, visual_test, labels_test)
    assert score > chance_map(labels_test) + 0.3
    assert model.embed_visual(visual_test).shape == (len(visual_test), 10)
    for term in unused_terms:  # a weight of zero: no gradient from that term
        assert all(record[f"grad_{term}"] == 0.0 for record in model.history_)


def test_bfloat16_training_runs_the_nets_in_bfloat16_close_to_float32_and_is_labelled(easy_features):
    from avcmr.methods.budgets import budgeted_method

    audio_train, visual_train, labels_train, *_ = easy_features
    settings = {**SMALL_NETS, "batch_size": 1000, "epochs": 1, "optimizer": "sgd", "learning_rate": 0.01,
                "momentum": 0.0, "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}  # fmt: skip
    seen_dtypes = []

    def weights(precision):
        model = DualSubspace(training_precision=precision, **settings)
        original = model._build_networks

        def build_and_watch(*args):
            networks = original(*args)
            first_layer = networks["audio"].explicit[0]
            first_layer.register_forward_hook(lambda module, inputs, output: seen_dtypes.append((precision, output.dtype)))
            return networks

        model._build_networks = build_and_watch
        model.fit(audio_train, visual_train, labels_train)
        return torch.cat([p.detach().flatten() for p in model.networks_.parameters()]).numpy()

    float32, bfloat16 = weights("float32"), weights("bfloat16")
    assert ("bfloat16", torch.bfloat16) in seen_dtypes and ("float32", torch.float32) in seen_dtypes
    assert all(dtype == torch.float32 for precision, dtype in seen_dtypes if precision == "float32")
    assert bfloat16.dtype == np.float32  # the weights themselves stay float32
    difference = np.abs(bfloat16 - float32).max()
    assert difference > 100 * np.finfo(np.float32).eps * np.abs(float32).max()  # bfloat16 products ran
    assert difference < 0.05 * np.abs(float32).max()  # one step apart by rounding, not diverged
    _, budget = budgeted_method("ours", {"training_precision": "bfloat16"}, 1000, random_state=0)
    assert "training_precision" in budget.label
    with pytest.raises(ValueError, match="training_precision"):
        DualSubspace(training_precision="float16", **settings).fit(audio_train, visual_train, labels_train)


def test_model_files_saved_before_the_module_split_find_their_classes():
    """A model file pickles the networks it holds under their module path: files saved when the
    networks and the loss terms were defined in ``avcmr.methods.dual_subspace`` name them there."""
    import pickle

    from avcmr.methods import (
        dual_subspace,
        dual_subspace_losses,
        dual_subspace_networks,
        dual_subspace_training,
    )

    for name in ("SeparateNets", "SharedTrunk"):
        pickled = f"cavcmr.methods.dual_subspace\n{name}\n.".encode()  # a protocol-0 reference to the class
        assert pickle.loads(pickled) is getattr(dual_subspace_networks, name)
    assert dual_subspace.fit_together is dual_subspace_training.fit_together
    assert dual_subspace.dual_subspace_losses is dual_subspace_losses.dual_subspace_losses
