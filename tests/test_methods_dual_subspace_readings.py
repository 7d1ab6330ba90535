"""The paper's open readings as options of the dual-subspace models (docs/methods.md, "The
paper's open readings"): each form against its equation written out here, each training option against what
it must change (which nets exist, which pairs train, where the fusion head is fitted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.methods.dual_subspace import (
    DualSubspace,
    ExplicitImplicitShared,
    ExplicitSpace,
    ImplicitSpace,
)
from avcmr.methods.dual_subspace_losses import (
    class_targets,
    consistency_loss,
    discriminative_loss,
    dual_subspace_losses,
)

SMALL_NETS = {"audio_hidden": (32, 32), "visual_hidden": (32, 64), "batch_size": 128, "device": "cpu"}


@pytest.fixture(scope="module")
def features():
    table = make_synthetic_features(
        n_clips=400, train_size=320, class_separation=3.0, pair_correlation=0.2, noise=0.5, random_state=5
    )
    return split_arrays(table)


def dense(sizes) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))


def brute_force_product_square_sum(left: np.ndarray, right: np.ndarray) -> float:
    """‖leftᵀright‖²_F by loops over the entries of the product."""
    total = 0.0
    for i in range(left.shape[1]):
        for j in range(right.shape[1]):
            entry = sum(left[k, i] * right[k, j] for k in range(left.shape[0]))
            total += entry**2
    return total


def pearson_square_sum(left: np.ndarray, right: np.ndarray) -> float:
    """Σ of squared Pearson correlations between the columns of left and of right (numpy)."""
    correlations = np.corrcoef(left.T, right.T)[: left.shape[1], left.shape[1]:]
    return float(np.sum(correlations**2))


# -- the loss forms ---------------------------------------------------------------------------
def test_dis_frobenius_over_n_is_eq3_literally_and_row_mean_the_mean_of_row_norms():
    rng = np.random.default_rng(0)
    n, classes = 9, 4
    targets = np.eye(classes)[rng.integers(0, classes, n)]
    audio, visual = rng.standard_normal((n, classes)), rng.standard_normal((n, classes))
    literal = (np.sqrt(np.sum((audio - targets) ** 2)) + np.sqrt(np.sum((visual - targets) ** 2))) / n
    row_mean = np.mean(np.sqrt(np.sum((audio - targets) ** 2, axis=1))) + np.mean(
        np.sqrt(np.sum((visual - targets) ** 2, axis=1)))
    as_tensors = [torch.tensor(x) for x in (audio, visual, targets)]
    assert float(discriminative_loss(*as_tensors, form="frobenius_over_n")) == pytest.approx(literal, rel=1e-12)
    assert float(discriminative_loss(*as_tensors, form="row_mean")) == pytest.approx(row_mean, rel=1e-12)
    # Rows that all miss their target by the same length e: row_mean = 2e, the literal form 2e/√n.
    unit_miss = torch.tensor(targets) + 0.5
    same = discriminative_loss(unit_miss, unit_miss, torch.tensor(targets), form="row_mean")
    literal_same = discriminative_loss(unit_miss, unit_miss, torch.tensor(targets), form="frobenius_over_n")
    assert float(literal_same) == pytest.approx(float(same) / np.sqrt(n), rel=1e-12)


def test_cons_forms_against_brute_force_and_pearson():
    rng = np.random.default_rng(1)
    blocks = {name: rng.standard_normal((7, width)) for name, width in
              (("ex_a", 3), ("ex_v", 3), ("im_a", 2), ("im_v", 2))}
    pairs = (("ex_a", "im_a"), ("ex_v", "im_v"), ("im_a", "im_v"))
    raw = sum(brute_force_product_square_sum(blocks[a], blocks[b]) for a, b in pairs)
    pearson = sum(pearson_square_sum(blocks[a], blocks[b]) for a, b in pairs)
    tensors = [torch.tensor(blocks[name]) for name in ("ex_a", "ex_v", "im_a", "im_v")]
    assert float(consistency_loss(*tensors, form="frobenius")) == pytest.approx(raw, rel=1e-12)
    assert float(consistency_loss(*tensors, form="correlation")) == pytest.approx(pearson, rel=1e-12)
    # Without the explicit blocks only Eq. 5's implicit audio–visual term is left.
    only_implicit = consistency_loss(None, None, tensors[2], tensors[3], form="frobenius")
    assert float(only_implicit) == pytest.approx(brute_force_product_square_sum(blocks["im_a"], blocks["im_v"]))
    assert float(consistency_loss(tensors[0], tensors[1], None, None)) == 0.0


def test_unknown_forms_and_options_are_errors_naming_the_option(features):
    audio, visual, labels, *_ = features
    outputs = {name: torch.zeros(4, 2) for name in ("explicit_audio", "explicit_visual", "implicit_audio", "implicit_visual")}
    with pytest.raises(ValueError, match="dis_form"):
        dual_subspace_losses(outputs, torch.zeros(4, 2), dis_form="sum")
    with pytest.raises(ValueError, match="cons_form"):
        dual_subspace_losses(outputs, torch.zeros(4, 2), cons_form="raw")
    for option, value in (("selection", "best"), ("ablation_nets", "some"), ("fusion_fit", "test"),
                          ("implicit_dim", 0), ("cons_form", "pearson")):
        with pytest.raises(ValueError, match=option):
            DualSubspace(**{option: value}, epochs=1, **SMALL_NETS).fit(audio, visual, labels)
    with pytest.raises(ValueError, match="validation_fraction"):
        DualSubspace(fusion_fit="holdout", validation_fraction=0.0, epochs=1, **SMALL_NETS).fit(audio, visual, labels)


# -- which nets train and fuse ----------------------------------------------------------------
def test_explicit_with_its_own_nets_trains_and_fuses_only_them(features):
    audio, visual, labels, audio_test, visual_test, _ = features
    model = ExplicitSpace(ablation_nets="own", epochs=2, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    assert model.n_parameters() == dense([128, 32, 32, 10]) + dense([1024, 32, 64, 10])
    scaled_audio = torch.tensor(model.audio_scaler_.transform(audio[:150]), dtype=torch.float32)
    scaled_visual = torch.tensor(model.visual_scaler_.transform(visual[:150]), dtype=torch.float32)
    outputs = model._forward(model.networks_, scaled_audio, scaled_visual)
    assert set(outputs) == {"explicit_audio", "explicit_visual"}
    losses = model._batch_losses(outputs, torch.zeros(150, len(model.classes_)))
    # Nothing but L_corr is left: −Σ canonical correlations (a number in [−10, 0]).
    assert float(losses["dis"]) == 0.0 and float(losses["cons"]) == 0.0
    assert float(losses["total"]) == pytest.approx(float(losses["corr"])) and -10.0 <= float(losses["corr"]) < 0.0
    assert model.embed_audio(audio_test).shape == (len(audio_test), 10)
    assert all(record["grad_dis"] == 0.0 and record["grad_cons"] == 0.0 for record in model.history_)
    assert all(record["grad_corr"] > 0.0 for record in model.history_)
    assert np.isfinite(model.similarity(audio_test, visual_test)).all()


def test_implicit_with_its_own_nets_trains_dis_and_the_implicit_cons_term(features):
    audio, visual, labels, *_ = features
    model = ImplicitSpace(ablation_nets="own", epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    n_classes = len(model.classes_)
    assert model.n_parameters() == dense([128, 32, 32, n_classes]) + dense([1024, 32, 64, n_classes])
    scaled_audio = torch.tensor(model.audio_scaler_.transform(audio[:150]), dtype=torch.float64)
    scaled_visual = torch.tensor(model.visual_scaler_.transform(visual[:150]), dtype=torch.float64)
    outputs = model._forward(model.networks_.double(), scaled_audio, scaled_visual)
    assert set(outputs) == {"implicit_audio", "implicit_visual"}
    onehot = np.eye(n_classes)[np.searchsorted(model.classes_, labels[:150])]
    losses = model._batch_losses(outputs, torch.tensor(onehot))
    ia, iv = (outputs[name].detach().numpy() for name in ("implicit_audio", "implicit_visual"))
    dis = np.mean(np.linalg.norm(ia - onehot, axis=1)) + np.mean(np.linalg.norm(iv - onehot, axis=1))
    expected = 0.01 * dis + 0.001 * pearson_square_sum(ia, iv)
    assert float(losses["total"]) == pytest.approx(expected, rel=1e-9)
    assert float(losses["corr"]) == 0.0


def test_all_nets_is_the_default_and_own_changes_nothing_for_ours_and_ex_im_share(features):
    audio, visual, labels, *_ = features
    for cls in (DualSubspace, ExplicitImplicitShared, ExplicitSpace, ImplicitSpace):
        assert cls().ablation_nets == "all"
    for cls in (DualSubspace, ExplicitImplicitShared):
        own = cls(ablation_nets="own", epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
        default = cls(epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
        np.testing.assert_array_equal(own.embed_audio(audio[:20]), default.embed_audio(audio[:20]))


# -- the implicit width -----------------------------------------------------------------------
def test_class_targets_are_one_hot_padded_or_distinct_unit_codes():
    np.testing.assert_array_equal(class_targets(4, 4), np.eye(4))
    padded = class_targets(4, 10)
    np.testing.assert_array_equal(padded[:, :4], np.eye(4))
    assert padded.shape == (4, 10) and not padded[:, 4:].any()
    codes = class_targets(15, 10)  # AVE's 15 classes in the paper's 10-D implicit space
    assert codes.shape == (15, 10)
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1.0)
    distances = np.linalg.norm(codes[:, None] - codes[None], axis=2)[np.triu_indices(15, 1)]
    assert distances.min() > 0.1
    np.testing.assert_array_equal(codes, class_targets(15, 10))  # the same for every fit


def test_implicit_dim_sets_the_implicit_width_and_the_targets(features):
    audio, visual, labels, *_ = features
    n_classes = len(np.unique(labels))
    model = DualSubspace(implicit_dim=10, epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    assert model.class_targets_.shape == (n_classes, 10)
    assert model.n_parameters() == (dense([128, 32, 32, 10]) * 2 + dense([1024, 32, 64, 10]) * 2)
    default = DualSubspace(epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    assert default.class_targets_.shape == (n_classes, n_classes)


# -- model selection and the fusion head ------------------------------------------------------
def test_fixed_epochs_trains_every_pair_for_every_epoch_and_keeps_the_last(features):
    audio, visual, labels, *_ = features
    model = DualSubspace(selection="fixed_epochs", epochs=3, patience=1, random_state=0, **SMALL_NETS)
    model.fit(audio, visual, labels)
    np.testing.assert_allclose(model.audio_scaler_.mean_, audio.mean(axis=0), rtol=1e-6, atol=1e-7)  # all pairs
    assert [record["epoch"] for record in model.history_] == [1, 2, 3]  # patience has no say
    assert all("val_map" not in record for record in model.history_)
    assert model.best_epoch_ == 3
    # 320 pairs in batches of 128 (the trailing 64 kept): 3 steps an epoch.
    assert len(audio) == 320 and model.n_steps_ == 3 * 3
    held_out = DualSubspace(epochs=1, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    assert not np.allclose(held_out.audio_scaler_.mean_, audio.mean(axis=0), rtol=1e-6, atol=1e-7)


def test_holdout_fusion_fits_the_head_on_pairs_the_nets_never_trained_on(features):
    audio, visual, labels, *_ = features

    def output_mean(model, rows):
        scaled = torch.tensor(model.audio_scaler_.transform(audio[rows]), dtype=torch.float32)
        return model._outputs(scaled, "audio").mean(axis=0)

    model = DualSubspace(fusion_fit="holdout", epochs=2, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    held_out = model.held_out_rows_
    trained = np.setdiff1d(np.arange(len(audio)), held_out)
    assert 0.05 * len(audio) < len(held_out) < 0.15 * len(audio)
    np.testing.assert_allclose(model.audio_scaler_.mean_, audio[trained].mean(axis=0), rtol=1e-6, atol=1e-7)  # nets: the rest
    np.testing.assert_allclose(model.output_scalers_[0].mean_, output_mean(model, held_out), rtol=1e-5, atol=1e-7)
    assert all("val_map" in record for record in model.history_)
    train_model = DualSubspace(epochs=2, random_state=0, **SMALL_NETS).fit(audio, visual, labels)
    every_row = np.arange(len(audio))
    np.testing.assert_allclose(train_model.output_scalers_[0].mean_, output_mean(train_model, every_row), rtol=1e-5,
                               atol=1e-7)
