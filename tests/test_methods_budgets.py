"""Named training budgets: `paper` = the published schedules, `quick` = to convergence in optimiser
steps (a patience and a cap)."""

from __future__ import annotations

import inspect
import math

import pytest

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.methods.budgets import (
    PAPER_SCHEDULES,
    QUICK_CAP_PASSES,
    QUICK_CAP_STEPS,
    QUICK_PATIENCE_STEPS,
    Budget,
    resolve_budget,
    step_schedule,
    steps_per_epoch,
    training_end,
    training_summary,
)
from avcmr.methods.model_selection import BestEpoch
from avcmr.methods.registry import available_methods, make_method, method_class

CLOSED_FORM = {"random", "random_pca", "cca", "cca_nipals", "kcca", "c_cca", "logreg"}


def defaults(name):
    return make_method(name, {}).get_params()


def test_every_iterative_method_has_a_paper_schedule_a_cap_and_a_patience_it_accepts():
    for name in available_methods():
        if name in CLOSED_FORM:
            assert resolve_budget(name, "paper", defaults(name), {}, 1000).label == "closed-form"
            continue
        assert name in PAPER_SCHEDULES and name in QUICK_CAP_STEPS and name in QUICK_PATIENCE_STEPS, name
        assert QUICK_PATIENCE_STEPS[name] < QUICK_CAP_STEPS[name], name
        parameters = inspect.signature(method_class(name).__init__).parameters
        # Every iterative method can stop early: the quick budget's patience is a constructor argument.
        assert set(PAPER_SCHEDULES[name]) | {"epochs", "patience"} <= set(parameters), name


def test_paper_budget_is_the_published_schedule():
    ours = resolve_budget("ours", "paper", defaults("ours"), {}, 22482)
    # The paper: SGD, epochs 1–1,000 (Fig. 5); the whole schedule runs (no early stopping).
    assert ours.params["optimizer"] == "sgd" and ours.params["epochs"] == 1000 and ours.params["patience"] is None
    assert resolve_budget("dcca", "paper", defaults("dcca"), {}, 22482).params["epochs"] == 100
    assert resolve_budget("agah", "paper", defaults("agah"), {}, 22482).params == {"epochs": 300, "batches_per_epoch": None}
    assert resolve_budget("ugach", "paper", defaults("ugach"), {}, 22482).params["queries_per_epoch"] is None


@pytest.mark.parametrize("name", sorted(QUICK_CAP_STEPS))
def test_quick_budget_caps_in_steps_on_a_large_set_and_in_passes_on_a_small_one(name):
    for n_train in (240, 22482):
        budget = resolve_budget(name, "quick", defaults(name), {}, n_train)
        params = {**defaults(name), **budget.params}
        per_epoch = steps_per_epoch(name, params, n_train)
        fit_pairs = n_train - round(params.get("validation_fraction", 0.0) * n_train)
        # one pass over the fit pairs, in optimiser steps, counted here from the batch size
        pass_steps = max(1, round(fit_pairs / params.get("batch_size", fit_pairs)))
        if name.startswith("ugach"):
            pass_steps = per_epoch  # a UGACH epoch is its own unit of queries (d + g passes)
        step_cap = math.ceil(QUICK_CAP_STEPS[name] / per_epoch) * per_epoch  # whole epochs, rounded up
        pass_cap = QUICK_CAP_PASSES * pass_steps
        # Whichever comes first, to the epoch boundary; the patience at least one epoch.
        assert budget.planned_steps == pytest.approx(min(step_cap, pass_cap), abs=per_epoch), (n_train, budget)
        assert params["patience"] == max(1, math.ceil(QUICK_PATIENCE_STEPS[name] / per_epoch))
        if n_train == 22482:  # VEGAS size: every cap is the step cap (all well under 100 passes)
            assert budget.planned_steps == step_cap


def test_step_schedule_converts_steps_into_epochs_of_the_data_at_hand():
    # ours: batch 800; 720 pairs keep 648 after the 10 % validation split: one step an epoch.
    assert step_schedule("ours", defaults("ours"), 720, 1000, 300) == {
        "epochs": 1000, "patience": 300, "validation_interval": 100}
    # ... and at most 50 passes: 50 epochs, validated every 7 (at least 8 validations in the run).
    assert step_schedule("ours", defaults("ours"), 720, 1000, 300, cap_passes=50) == {
        "epochs": 50, "patience": 300, "validation_interval": 7}
    # 22,482 pairs: 20,234 fit pairs, round(20,234 / 800) = 25 steps an epoch.
    assert step_schedule("ours", defaults("ours"), 22482, 1000, 300) == {
        "epochs": 40, "patience": 12, "validation_interval": 4}
    # dscmr: batch 100 on 20,234 fit pairs = 202 steps an epoch: a 300-step patience is 2 epochs.
    assert step_schedule("dscmr", defaults("dscmr"), 22482, 1000, 300) == {"epochs": 5, "patience": 2}
    # No patience: the whole cap runs.
    assert step_schedule("dscmr", defaults("dscmr"), 22482, 1000, None)["patience"] is None
    # AGAH: a full pass (batch 128: 159 steps) longer than half a 200-step patience is cut into
    # epochs of 100 random batches.
    assert step_schedule("agah", defaults("agah"), 22482, 1000, 200) == {
        "batches_per_epoch": 100, "epochs": 10, "patience": 2}
    # Its passes are counted in full passes (159 batches), not in its shortened epochs: 2 passes are
    # 318 batches, 3 epochs of 100.
    assert step_schedule("agah", defaults("agah"), 22482, 1000, 200, cap_passes=2)["epochs"] == 3


def test_patience_stops_a_known_plateau_after_that_many_epochs():
    """Scores rise to a plateau at epoch 4 and stay below it: with a patience of 3 epochs the run
    stops at epoch 7 and not before; a patience of None never stops."""
    scores = [0.2, 0.5, 0.7, 0.9, 0.9, 0.85, 0.9, 0.8, 0.9]
    stops = {}
    for patience in (3, None):
        tracker = BestEpoch({})
        for epoch, score in enumerate(scores, start=1):
            tracker.update(epoch, score)
            if tracker.patience_exhausted(epoch, patience):
                stops[patience] = epoch
                break
        assert tracker.best_epoch == 4  # a tie with the best is not an improvement
    assert stops == {3: 7}


def test_training_end_says_converged_capped_full_schedule_or_closed_form():
    quick, paper = Budget("quick"), Budget("paper")
    assert training_end(quick, 7, {"epochs": 10}) == "converged"
    assert training_end(quick, 10, {"epochs": 10}) == "cap reached"
    assert training_end(paper, 10, {"epochs": 10}) == "full schedule"
    assert training_end(Budget("closed-form"), 0, {}) == "closed-form"


def test_quick_budget_stops_a_converged_run_and_labels_a_capped_one():
    table = make_synthetic_features(n_clips=300, train_size=240, class_separation=3.0, random_state=0)
    audio, visual, labels, *_ = split_arrays(table)
    # 216 fit pairs in batches of 8: 27 steps an epoch (few validations for the patience's steps);
    # a learning rate that takes these well-separated classes to a perfect validation MAP in a few epochs.
    small = {"hidden_dim": 64, "common_dim": 32, "batch_size": 8, "lr": 3e-3, "device": "cpu"}
    budget = resolve_budget("dscmr", "quick", defaults("dscmr"), small, len(labels))
    model = make_method("dscmr", {**budget.params, **small}).fit(audio, visual, labels)
    patience = math.ceil(QUICK_PATIENCE_STEPS["dscmr"] / 27)
    assert budget.params["patience"] == patience
    scores = [record["val_map"] for record in model.history_]
    # The plateau is known: MAP 1.0, reached long before the cap. The run stops exactly `patience`
    # epochs after the first epoch that reached it, and keeps that epoch's weights.
    assert max(scores) == 1.0 and len(scores) < budget.params["epochs"]
    assert model.best_epoch_ == scores.index(1.0) + 1 and len(scores) == model.best_epoch_ + patience
    summary = training_summary("dscmr", model, budget, model.get_params(), len(labels))
    assert summary["training_end"] == "converged" and summary["steps_run"] == 27 * len(scores)

    # The same data with a cap of 3 epochs: the run ends at the cap, and says so.
    capped = {**small, "epochs": 3}
    budget = resolve_budget("dscmr", "quick", defaults("dscmr"), capped, len(labels))
    model = make_method("dscmr", {**budget.params, **capped}).fit(audio, visual, labels)
    summary = training_summary("dscmr", model, budget, model.get_params(), len(labels))
    assert len(model.history_) == 3 and summary["training_end"] == "cap reached"
    assert summary["budget"] == "quick (config sets epochs, hidden_dim, common_dim, batch_size, lr)"


def test_explicit_config_wins_over_the_budget_and_the_label_says_so():
    budget = resolve_budget("ours", "paper", defaults("ours"), {"optimizer": "adam", "epochs": 7}, 1000)
    assert budget.label == "paper (config sets optimizer, epochs)"
    # Any other setting that departs from the method's published defaults is named too, although no
    # budget sets it; a value equal to the default (a list for a tuple included) is not.
    assert defaults("ours")["batch_size"] == 800 and defaults("ours")["audio_hidden"] == (1024, 1024)
    smaller = resolve_budget("ours", "quick", defaults("ours"), {"batch_size": 100, "device": "cpu"}, 720)
    assert smaller.label == "quick (config sets batch_size)"
    assert smaller.planned_steps == round((720 - 72) / 100) * smaller.params["epochs"]
    same = {"batch_size": 800, "audio_hidden": [1024, 1024], "device": "cuda"}
    assert resolve_budget("ours", "quick", defaults("ours"), same, 720).label == "quick"
    assert resolve_budget("cca", "quick", defaults("cca"), {"reg": 1.0}, 720).label == "closed-form"
    with pytest.raises(ValueError, match="unknown training budget 'fast'"):
        resolve_budget("ours", "fast", defaults("ours"), {}, 1000)


@pytest.mark.parametrize("name", ["dcca", "c_dcca", "tnn_c_cca", "ours", "dscmr", "acmr", "ucal", "ugach", "agah"])
def test_paper_switches_early_stopping_off_quick_keeps_it_and_the_methods_accept_both(name):
    """``paper`` runs every epoch (patience None); ``quick`` gives a patience in epochs."""
    table = make_synthetic_features(n_clips=120, n_classes=4, visual_dim=32, train_size=90, random_state=0)
    audio, visual, labels, *_ = split_arrays(table)
    small = {"ours": {"audio_hidden": [16], "visual_hidden": [16]}, "dcca": {"hidden_sizes": [16]},
             "ugach": {"hidden_dim": 16}, "agah": {"visual_hidden": [16], "audio_hidden": [16]},
             "dscmr": {"hidden_dim": 16, "common_dim": 8}}.get(name, {})
    assert resolve_budget(name, "paper", defaults(name), {}, len(labels)).params.get("patience") is None
    assert resolve_budget(name, "quick", defaults(name), {}, len(labels)).params["patience"] >= 1
    explicit = {"epochs": 3, "patience": None, "device": "cpu", **small}
    model = make_method(name, {**resolve_budget(name, "quick", defaults(name), explicit, len(labels)).params,
                               **explicit}).fit(audio, visual, labels)
    assert len(model.history_) == 3  # no early stop before the last epoch
