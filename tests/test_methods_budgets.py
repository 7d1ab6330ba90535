"""Named training budgets: `paper` = the published schedules, `quick` = optimiser steps."""

from __future__ import annotations

import inspect

import pytest

from avcmr.data.synthetic_features import make_synthetic_features, split_arrays
from avcmr.methods.budgets import (
    PAPER_SCHEDULES,
    QUICK_STEPS,
    resolve_budget,
    steps_per_epoch,
    training_summary,
)
from avcmr.methods.registry import available_methods, make_method, method_class

CLOSED_FORM = {"random", "random_pca", "cca", "cca_nipals", "kcca", "c_cca"}


def defaults(name):
    return make_method(name, {}).get_params()


def test_every_iterative_method_has_a_paper_schedule_and_quick_steps_with_real_parameters():
    for name in available_methods():
        if name in CLOSED_FORM:
            assert resolve_budget(name, "paper", defaults(name), {}, 1000).label == "closed-form"
            continue
        assert name in PAPER_SCHEDULES and name in QUICK_STEPS, name
        parameters = inspect.signature(method_class(name).__init__).parameters
        assert set(PAPER_SCHEDULES[name]) <= set(parameters), name


def test_paper_budget_is_the_published_schedule():
    ours = resolve_budget("ours", "paper", defaults("ours"), {}, 22482)
    # The paper: SGD, epochs 1–1,000 (Fig. 5); the whole schedule runs (no early stopping).
    assert ours.params["optimizer"] == "sgd" and ours.params["epochs"] == 1000 and ours.params["patience"] is None
    assert resolve_budget("dcca", "paper", defaults("dcca"), {}, 22482).params["epochs"] == 100
    assert resolve_budget("agah", "paper", defaults("agah"), {}, 22482).params == {"epochs": 300, "batches_per_epoch": None}
    assert resolve_budget("ugach", "paper", defaults("ugach"), {}, 22482).params["queries_per_epoch"] is None


@pytest.mark.parametrize("name", sorted(QUICK_STEPS))
def test_quick_budget_gives_a_small_and_a_large_dataset_the_same_number_of_steps(name):
    if name not in available_methods():
        pytest.skip(f"{name} not registered")
    planned = {}
    for n_train in (240, 22482):
        budget = resolve_budget(name, "quick", defaults(name), {}, n_train)
        per_epoch = steps_per_epoch(name, {**defaults(name), **budget.params}, n_train)
        planned[n_train] = (budget.planned_steps, per_epoch)
    for steps, per_epoch in planned.values():
        # Whole epochs: within half an epoch of the budget, or one epoch when an epoch is longer.
        assert abs(steps - QUICK_STEPS[name]) <= per_epoch / 2 or steps == per_epoch > QUICK_STEPS[name]


def test_quick_budget_in_steps_runs_that_many_steps():
    table = make_synthetic_features(n_clips=300, train_size=240, class_separation=3.0, random_state=0)
    audio, visual, labels, *_ = split_arrays(table)
    explicit = {"audio_hidden": [32], "visual_hidden": [32], "device": "cpu"}
    budget = resolve_budget("ours", "quick", defaults("ours"), explicit, len(labels))
    model = make_method("ours", {**budget.params, **explicit}).fit(audio, visual, labels)
    # 216 fit pairs, one batch of 800: one step per epoch, so the 150 steps are 150 epochs, validated
    # every 15th epoch (10 validations).
    assert QUICK_STEPS["ours"] == 150
    assert budget.params == {"epochs": 150, "patience": None, "validation_interval": 15}
    summary = training_summary("ours", model, budget, model.get_params(), len(labels))
    assert summary["steps_run"] == model.n_steps_ == 150 == summary["epochs_run"]
    validated = [record["epoch"] for record in model.history_ if "val_map" in record]
    assert validated == list(range(15, 151, 15)) and model.best_epoch_ in validated
    # The narrow layers depart from the published model; the device is an execution setting.
    assert summary["budget"] == "quick (config sets audio_hidden, visual_hidden)"


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


@pytest.mark.parametrize("name", ["dcca", "c_dcca", "tnn_c_cca", "ours"])
def test_the_budgets_switch_early_stopping_off_and_the_methods_accept_it(name):
    """Both budgets set ``patience: None`` (every epoch runs); the early-stopping trainers take it."""
    table = make_synthetic_features(n_clips=120, n_classes=4, visual_dim=32, train_size=90, random_state=0)
    audio, visual, labels, *_ = split_arrays(table)
    small = {"ours": {"audio_hidden": [16], "visual_hidden": [16]}, "dcca": {"hidden_sizes": [16]}}.get(name, {})
    for budget in ("quick", "paper"):
        assert resolve_budget(name, budget, defaults(name), {}, len(labels)).params["patience"] is None
        explicit = {"epochs": 3, "device": "cpu", **small}
        model = make_method(name, {**resolve_budget(name, budget, defaults(name), explicit, len(labels)).params,
                                   **explicit}).fit(audio, visual, labels)
        assert len(model.history_) == 3  # no early stop before the last epoch
