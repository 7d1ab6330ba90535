"""Named training budgets: `paper` (each method's published schedule) and `quick` (CPU-sized).

A budget turns into constructor parameters of a method at fit time, when the number of training
pairs is known:

- ``paper``: the schedule the method's paper or official code uses (``PAPER_SCHEDULES``, with
  the source of every number). Model selection stays on the validation split carved from the
  training pairs; ``patience`` is switched off so the whole schedule runs and the best validated
  epoch is kept. The paper's model is trained with SGD as the paper says (its Fig. 5 plots
  epochs 1–1,000; Table 3: 8.36 GPU minutes on VEGAS).
- ``quick``: trained to convergence, counted in **optimiser steps**: each iterative method stops
  once its validation score has not improved for ``QUICK_PATIENCE_STEPS`` steps, at the latest
  after ``QUICK_CAP_STEPS`` steps or ``QUICK_CAP_PASSES`` passes over the training pairs,
  whichever comes first (converted into epochs for the dataset at hand, so a 720-pair demo set
  follows the same rule as VEGAS's 22,482 pairs). Every row says how its training ended
  (``training_end``: converged, cap reached). Sized from learning curves so that all 16 models of
  Tables 2 and 4 train in under an hour on two CPU cores at VEGAS scale (measured: 35 fit minutes
  a seed on a Zen 4 EPYC, benchmarks/README.md).

Parameters given explicitly in the config (global or per dataset ``method_params``) win over
the budget's; the row's budget label then says which schedule keys were overridden, and which
other settings depart from the method's published defaults (its constructor's). Methods
without iterative training (random, CCA variants, KCCA) have no schedule: their label is
``closed-form``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from avcmr.methods.registry import make_method

BUDGETS = ("paper", "quick")
DEFAULT_BUDGET = "quick"

# The paper's model and its ablations: the paper's SGD, epochs 1–1,000 (Fig. 5). The paper gives
# no learning rate. Measured on a 2,400-pair feature stand-in (60 epochs, momentum 0.9, batch 800):
# lr 0.3 / 0.1 / 0.03 gave test MAP .629 / .583 / .530, all stable; 0.3 peaked at epoch 5 and then
# declined, 0.1 was still improving at epoch 35 — 0.1 is the reading for a 1,000-epoch schedule.
_DUAL_SUBSPACE_PAPER = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9, "epochs": 1000,
                        "patience": None, "validation_interval": 10}  # fmt: skip

PAPER_SCHEDULES: dict[str, dict[str, object]] = {
    "ours": _DUAL_SUBSPACE_PAPER,
    "explicit": _DUAL_SUBSPACE_PAPER,
    "implicit": _DUAL_SUBSPACE_PAPER,
    "ex_im_share": _DUAL_SUBSPACE_PAPER,
    "dcca": {"epochs": 100, "patience": None},  # Andrew et al. 2013 (METHODS.md)
    "c_dcca": {"epochs": 100, "patience": None},  # the authors' C-DCCA config
    "tnn_c_cca": {"epochs": 10, "patience": None},  # Zeng et al. TOMM 2020 config (~10 epochs)
    "dscmr": {"epochs": 200},  # Zhen et al. CVPR 2019: 100–200 epochs; the upper end
    "acmr": {"epochs": 50},  # Wang et al. MM 2017, official demo: 50 epochs
    "ucal": {"epochs": 100},  # no official code; DCCA's 100-epoch schedule (a reading, stated)
    "ugach": {"epochs": 30, "queries_per_epoch": None},  # Zhang et al. AAAI 2018 code: 30 epochs, all queries
    "ugach_real": {"epochs": 30, "queries_per_epoch": None},
    "agah": {"epochs": 300, "batches_per_epoch": None},  # Gu et al. ICMR 2019 code: ~300 full epochs
    "agah_real": {"epochs": 300, "batches_per_epoch": None},
}
PAPER_SOURCES = {
    "ours": "SGD, 1,000 epochs (paper, Fig. 5)",
    "dcca": "100 epochs (Andrew et al. 2013)",
    "c_dcca": "100 epochs (C-DCCA config)",
    "tnn_c_cca": "10 epochs (TNN-C-CCA config)",
    "dscmr": "200 epochs (DSCMR: 100–200)",
    "acmr": "50 epochs (ACMR demo)",
    "ucal": "100 epochs (no official code; DCCA's schedule)",
    "ugach": "30 epochs over all queries (UGACH code)",
    "agah": "300 full epochs (AGAH code)",
}

# The CPU-sized budget by convergence: each iterative method trains until its validation score (its
# own model-selection criterion: validation MAP for the supervised methods, held-out correlation or
# pair rank for the unsupervised ones) has not improved for QUICK_PATIENCE_STEPS optimiser steps, or
# until QUICK_CAP_STEPS steps or QUICK_CAP_PASSES passes over the training pairs, whichever comes
# first; the best validated weights are kept. Patience and cap are counted in steps, not epochs, so
# that a 720-pair demo and VEGAS's 22,482 pairs follow one rule; a method validates once an epoch
# (the dual-subspace family every ``validation_interval`` epochs, set so that a patience holds at
# least QUICK_VALIDATIONS_PER_PATIENCE validations and a run QUICK_MIN_VALIDATIONS). The numbers come
# from the learning curves of benchmarks/bench_learning_curves.py (benchmarks/results/
# learning_curves_*_summary.tsv: the steps each method needs to reach 97 % of its plateau), read on
# the VEGAS-size stand-in (seed 0–2; steps to 97 % of the plateau / longest
# stretch between two improvements before it): ours 100 / 25 (plateau at 250 steps), explicit 100 /
# 75, ex_im_share 100 / 50, implicit 600 / 575 (still creeping at 1,475), DCCA 425 / 75,
# C-DCCA 3,500–3,900 / ≤ 909 (still creeping at 8,000), TNN-C-CCA 6,750–7,200 / ≤ 1,350 (still
# creeping at 8,100), ACMR 6,000–6,950 / ≤ 1,264 (still creeping at 16,000). Each patience exceeds
# the method's longest stretch between improvements; each cap lies past its 97 % point where the
# time allows (Tables 2 + 4 at VEGAS size in about an hour on 2 cores, from the per-step costs of
# results/table3_paper_cpu.tsv). AGAH (≈ 1.2 s a step there, an 8192 × 4096 net) is capped by that
# hour, not by its curve: its rows say when the cap ended them. UGACH trains to its cap and keeps
# the last weights (its default ``selection: fixed_epochs``; its held-out criterion does not follow
# its test MAP, see ugach.SELECTIONS): the cap lies past its test-MAP plateau (4,600–5,800 steps)
# and past the latest best validation seen (9,216 steps); its patience applies only with
# ``holdout_best``. (UGACH's step counts in benchmarks/results up to ugach_criterion_vegas* are
# half its optimiser steps: they counted one step per batch of queries for both directions; its
# cap and patience here were doubled with the count, so it trains the same epochs as there.)
QUICK_CAP_STEPS: dict[str, int] = {
    "ours": 1500, "explicit": 1500, "implicit": 1500, "ex_im_share": 1500,
    "dcca": 2000, "ucal": 2000, "dscmr": 6000, "c_dcca": 8000, "tnn_c_cca": 16000, "acmr": 16000,
    "ugach": 10000, "ugach_real": 10000, "agah": 500, "agah_real": 500,
}  # fmt: skip
QUICK_PATIENCE_STEPS: dict[str, int] = {
    "ours": 150, "explicit": 150, "implicit": 600, "ex_im_share": 150,
    "dcca": 300, "ucal": 300, "dscmr": 1000, "c_dcca": 1000, "tnn_c_cca": 1500, "acmr": 1500,
    "ugach": 3600, "ugach_real": 3600, "agah": 200, "agah_real": 200,
}  # fmt: skip
QUICK_VALIDATIONS_PER_PATIENCE = 3
# ... and at least this many over a run whose cap comes before its patience (a small set).
QUICK_MIN_VALIDATIONS = 8
# The cap in passes over the training pairs binds only on small sets: at VEGAS size every cap above
# is reached within 80 passes, while on the demo's 720 pairs (6 steps a pass at batch 100) 6,000
# steps are 1,000 passes over the same clips. Measured there under the step caps alone: DCCA still
# crept at 334 passes (validation correlation -6.25 → -6.32 over the last 100), DSCMR at 700
# (validation MAP .356) and the workflow took over 20 minutes; the rows whose cap now binds say so.
QUICK_CAP_PASSES = 100
# Where a run departs from a method's published defaults (its constructor's), the budget label says
# so: after the schedule keys the config overrides, every other key it sets to another value
# ("quick (config sets epochs, batch_size, visual_hidden)"). Execution settings do not count.
EXECUTION_KEYS = ("device",)
# How a run ended (the tables' "how training ended"): its patience ran out before the cap
# ("converged"), it trained to the quick budget's cap ("cap reached") or the paper's whole
# schedule ("full schedule"), or it has no iterative training ("closed-form").
TRAINING_ENDS = ("converged", "cap reached", "full schedule", "closed-form")


@dataclass
class Budget:
    """What a method is trained with: the budget's name, the parameters it set, the overrides."""

    name: str
    params: dict[str, object] = field(default_factory=dict)
    overridden: tuple[str, ...] = ()
    planned_steps: int | None = None

    @property
    def label(self) -> str:
        if self.name == "closed-form":
            return self.name
        return self.name + (f" (config sets {', '.join(self.overridden)})" if self.overridden else "")


def _fit_pairs(params: Mapping, n_train: int) -> int:
    """Training pairs left for gradient steps after the validation split (an estimate: a method may
    cap or round its validation split differently)."""
    fraction = float(params.get("validation_fraction", 0.0) or 0.0)
    return max(1, n_train - int(round(fraction * n_train)))


def steps_per_epoch(method: str, params: Mapping, n_train: int) -> int:
    """Optimiser steps one epoch of ``method`` takes with ``params`` on ``n_train`` pairs."""
    n_fit = _fit_pairs(params, n_train)
    batch_size = int(params.get("batch_size", n_fit))
    if method in ("ugach", "ugach_real"):
        if params.get("selection", "fixed_epochs") == "fixed_epochs":
            n_fit = n_train  # nothing is held out: every pair trains
        queries = params.get("queries_per_epoch")
        n_queries = n_fit if queries is None else min(int(queries), n_fit)
        passes = int(params.get("d_epochs", 1)) + int(params.get("g_epochs", 1))
        return passes * 2 * math.ceil(n_queries / batch_size)  # each pass: a→v queries, then v→a
    if method in ("agah", "agah_real"):
        full = math.ceil(n_fit / batch_size)
        cap = params.get("batches_per_epoch")
        return full if cap is None else min(int(cap), full)
    # A trailing batch under half a batch is merged into the previous one (torch_utils.minibatches).
    return max(1, int(round(n_fit / batch_size)))


def resolve_budget(method: str, budget: str, defaults: Mapping, explicit: Mapping, n_train: int) -> Budget:
    """The parameters ``budget`` gives ``method`` on ``n_train`` pairs.

    ``defaults``: the method's constructor defaults; ``explicit``: the parameters the config sets.
    The result's ``params`` are what the budget adds; the caller applies ``explicit`` on top.
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown training budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if method not in PAPER_SCHEDULES:
        return Budget("closed-form")
    if budget == "paper":
        params = dict(PAPER_SCHEDULES[method])
    else:
        params = _quick_params(method, {**defaults, **explicit}, n_train)
    overridden = tuple(key for key in params if key in explicit) + tuple(
        key for key, value in explicit.items()
        if key not in params and key not in EXECUTION_KEYS and key in defaults and not _same(value, defaults[key])
    )
    merged = {**defaults, **params, **explicit}
    planned = steps_per_epoch(method, merged, n_train) * int(merged["epochs"])
    return Budget(budget, params, overridden, planned)


def _same(value, default) -> bool:
    """Config values equal to a default (a YAML list equals the tuple a constructor defaults to)."""
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value == default


def _quick_params(method: str, params: Mapping, n_train: int) -> dict[str, object]:
    return step_schedule(method, params, n_train, QUICK_CAP_STEPS[method], QUICK_PATIENCE_STEPS[method],
                         cap_passes=QUICK_CAP_PASSES)


def step_schedule(method: str, params: Mapping, n_train: int, cap_steps: int,
                  patience_steps: int | None, cap_passes: int | None = None) -> dict[str, object]:
    """Constructor parameters that train ``method`` for at most ``cap_steps`` optimiser steps (and at
    most ``cap_passes`` passes over the training pairs, None: no such cap) and stop once
    ``patience_steps`` steps (None: never) have passed without a better validation score.

    Steps become whole epochs for the data at hand (the cap rounded up, the patience at least one
    epoch). AGAH's epoch also refreshes its code map and class prototypes from the pairs seen: when a
    full pass is longer than half a patience, its epochs are shortened to that many random batches
    so that it validates (and can stop) as often as the others.
    """
    if method in ("agah", "agah_real"):
        full = steps_per_epoch(method, {**params, "batches_per_epoch": None}, n_train)
        per_epoch = full if patience_steps is None else min(full, max(1, math.ceil(patience_steps / 2)))
        schedule: dict[str, object] = {"batches_per_epoch": None if per_epoch == full else per_epoch}
    else:
        full = per_epoch = steps_per_epoch(method, params, n_train)
        schedule = {}
    schedule["epochs"] = max(1, math.ceil(cap_steps / per_epoch))
    if cap_passes is not None:  # a pass is `full` steps (AGAH's shortened epoch a part of one)
        schedule["epochs"] = min(schedule["epochs"], max(1, cap_passes * full // per_epoch))
    patience = None if patience_steps is None else max(1, math.ceil(patience_steps / per_epoch))
    schedule["patience"] = patience
    if "validation_interval" in params:  # the last epoch is always validated as well
        schedule["validation_interval"] = (
            max(1, math.ceil(schedule["epochs"] / 10)) if patience is None
            else max(1, min(patience // QUICK_VALIDATIONS_PER_PATIENCE,
                            math.ceil(schedule["epochs"] / QUICK_MIN_VALIDATIONS))))
    return schedule


def training_end(budget: Budget, epochs_run: int, params: Mapping, fitted=None) -> str:
    """"converged", "cap reached", "full schedule" or "closed-form" (``TRAINING_ENDS``): a run that
    stopped before its last epoch ran out of patience; one that did not reached its cap (quick) or
    ran its whole schedule (paper). A fitted model may say for itself (``training_end_``)."""
    own = getattr(fitted, "training_end_", None)
    if own is not None:
        return str(own)
    if budget.name == "closed-form":
        return "closed-form"
    if epochs_run < int(params.get("epochs", 0) or 0):
        return "converged"
    return "full schedule" if budget.name == "paper" else "cap reached"


def training_summary(method_name: str, fitted, budget: Budget, params: Mapping, n_train: int) -> dict[str, object]:
    """Budget label, epochs and optimiser steps actually run (for the tables).

    Steps: the fitted model's own count (``n_steps_``) where it keeps one, else epochs run ×
    steps per epoch (``steps_per_epoch``), an estimate.
    """
    history = getattr(fitted, "history_", None) or []
    epochs_run = len(history) if budget.name != "closed-form" else 0
    steps = getattr(fitted, "n_steps_", None)
    if steps is None and budget.name != "closed-form":
        steps = epochs_run * steps_per_epoch(method_name, params, n_train)
    return {
        "budget": budget.label,
        "epochs_run": int(epochs_run),
        "steps_run": int(steps or 0),
        "planned_steps": int(budget.planned_steps or 0),
        "best_epoch": int(getattr(fitted, "best_epoch_", 0) or 0),
        "training_end": training_end(budget, epochs_run, params, fitted),
    }


def budgeted_method(method_name: str, params: Mapping, n_train: int, random_state: int | None):
    """(unfitted method, Budget) for config ``params`` that may hold a ``budget`` key (default
    ``DEFAULT_BUDGET``); the config's other keys win over the budget's."""
    explicit = dict(params)
    budget_name = explicit.pop("budget", DEFAULT_BUDGET)
    defaults = make_method(method_name, {}).get_params()
    budget = resolve_budget(method_name, budget_name, defaults, explicit, n_train)
    return make_method(method_name, {**budget.params, **explicit}, random_state=random_state), budget
