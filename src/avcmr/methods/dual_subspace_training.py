"""Training of the dual-subspace estimators, one or several seeds together.

:func:`fit_together` runs the epochs of one or more estimators of one variant (``fit`` is
``fit_together([self], ...)``): each estimator prepares its run (``_start``: split, scaling,
seeded nets, optimiser), then every epoch's minibatch steps go in lockstep (:func:`_train_epoch`),
the nets' forward passes batched across the estimators with ``torch.func.vmap`` where the batches
have one size (:func:`_forward_runs`), and each estimator validates and decides to stop on its own
(``_end_epoch``) before its fusion head is fitted (``_finish``). The estimators, their loss terms and
networks are in ``avcmr.methods.dual_subspace``, ``dual_subspace_losses`` and
``dual_subspace_networks``; ``fit_together`` stays importable from ``avcmr.methods.dual_subspace``.

Speed: the training pairs stay on the device; per-step losses are accumulated on the device and
read once per epoch; the gradient norms of the loss terms are measured on one batch per epoch.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import RetrievalMethod
from avcmr.methods.dual_subspace_losses import GRADIENT_COLUMNS, LOSS_TERMS
from avcmr.methods.dual_subspace_networks import BothModalities
from avcmr.methods.model_selection import BestEpoch
from avcmr.methods.torch_utils import minibatches, training_autocast

log = logging.getLogger(__name__)


@dataclass(eq=False)
class TrainingRun:
    """One estimator's fit in progress (``_DualSubspaceFamily._start``)."""

    model: RetrievalMethod  # a dual-subspace estimator (``avcmr.methods.dual_subspace``)
    networks: nn.ModuleDict
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    all_audio: torch.Tensor
    all_visual: torch.Tensor
    fit_audio: torch.Tensor
    fit_visual: torch.Tensor
    fit_targets: torch.Tensor
    class_index: np.ndarray
    validation_index: torch.Tensor
    head_index: torch.Tensor
    scored_index: torch.Tensor
    select: bool
    tracker: BestEpoch
    finished: bool = False


def fit_together(models: Sequence[RetrievalMethod], audio, visual, labels) -> list[RetrievalMethod]:
    """Fit estimators of one variant that differ only in ``random_state`` on the same pairs, with
    their networks' forward and backward passes batched across them (``torch.func.vmap`` over the
    stacked weights of every estimator's own nets).

    Each estimator keeps what a fit of its own has: its validation split, input scaling, initial
    weights, batch order, optimiser (so a batch with a non-finite loss skips that estimator's
    step only), model selection and early stopping (a stopped one leaves the batch). Results equal
    separate fits up to the rounding of batched against single matrix products (a test bounds it).
    ``epoch_seconds_`` holds each epoch's shared training time plus the estimator's own
    validation. One estimator: exactly ``fit``.

    It pays where a step is bound by kernel launches, as on a GPU; on a CPU one estimator's
    products already keep the cores busy and the stacking costs copies
    (``benchmarks/bench_seeds_together.py``).
    """
    models = list(models)
    if not models:
        return models
    first = models[0]
    reference = {key: value for key, value in first.get_params().items() if key != "random_state"}
    for model in models[1:]:
        if type(model) is not type(first):
            raise ValueError(f"seeds trained together must be one variant: {first.name} and {model.name}")
        params = {key: value for key, value in model.get_params().items() if key != "random_state"}
        if params != reference:
            differing = sorted(key for key in params if params[key] != reference.get(key))
            raise ValueError(f"seeds trained together must differ only in random_state; these differ: {differing}")
    runs = [model._start(audio, visual, labels) for model in models]
    template = BothModalities(copy.deepcopy(runs[0].networks).to("meta")) if len(runs) > 1 else None
    epoch = 0
    while any(not run.finished for run in runs):
        epoch += 1
        active = [run for run in runs if not run.finished]
        started = time.perf_counter()
        records = _train_epoch(active, template)
        seconds = time.perf_counter() - started
        for run, record in zip(active, records, strict=True):
            run.model._end_epoch(run, epoch, record, seconds)
    for run in runs:
        run.model._finish(run)
    return models


def _forward_runs(steps: list[tuple[TrainingRun, torch.Tensor]], template: BothModalities | None
                  ) -> list[dict[str, torch.Tensor]]:  # fmt: skip
    """Each run's output blocks on its batch: one vmapped call over the stacked weights when the
    batches have one size, else one call per run."""
    run = steps[0][0]
    with training_autocast(run.fit_audio.device, run.model.training_precision):
        if len(steps) == 1 or len({len(batch) for _, batch in steps}) > 1:
            return [run.model._forward(run.networks, run.fit_audio[batch], run.fit_visual[batch]) for run, batch in steps]
        weights = [dict(run.networks.named_parameters()) for run, _ in steps]
        stacked = {f"networks.{name}": torch.stack([each[name] for each in weights]) for name in weights[0]}
        audio = torch.stack([run.fit_audio[batch] for run, batch in steps])
        visual = torch.stack([run.fit_visual[batch] for run, batch in steps])
        outputs = torch.func.vmap(lambda params, a, v: torch.func.functional_call(template, params, (a, v)))(
            stacked, audio, visual)
    return [{name: value[index] for name, value in outputs.items()} for index in range(len(steps))]


def _train_epoch(runs: list[TrainingRun], template: BothModalities | None) -> list[dict[str, float]]:
    """One epoch of every run, step by step in lockstep; per run the epoch's mean loss terms and the
    gradient norms of its last batch."""
    device = runs[0].fit_audio.device
    epoch_batches = []
    for run in runs:
        run.networks.train()
        epoch_batches.append([batch.to(device) for batch in minibatches(len(run.fit_audio), run.model.batch_size,
                                                                          run.generator)])  # fmt: skip
    sums = [torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=device) for _ in runs]
    n_used = [0] * len(runs)
    gradient_norms = [dict.fromkeys(GRADIENT_COLUMNS, float("nan")) for _ in runs]
    for step in range(max(len(batches) for batches in epoch_batches)):
        indices = [index for index, batches in enumerate(epoch_batches) if step < len(batches)]
        steps = [(runs[index], epoch_batches[index][step]) for index in indices]
        stepping, total = [], None
        for index, (run, batch), outputs in zip(indices, steps, _forward_runs(steps, template), strict=True):
            # The losses in float32 (L_corr's o×o algebra in float64) whatever the nets ran in.
            outputs = {name: value.float() for name, value in outputs.items()}
            losses = run.model._batch_losses(outputs, run.fit_targets[batch])
            if not torch.isfinite(losses["total"]):
                run.model.n_skipped_batches_ += 1
                log.warning("%s: skipped a batch with a non-finite loss", run.model.name)
                continue
            if step == len(epoch_batches[index]) - 1:
                gradient_norms[index] = run.model._gradient_norms(losses["weighted"], outputs)
            stepping.append(index)
            total = losses["total"] if total is None else total + losses["total"]
            sums[index] += torch.stack([losses[term].detach().double() for term in LOSS_TERMS]) * len(batch)
            n_used[index] += len(batch)
        if total is None:
            continue
        for index in stepping:
            runs[index].optimizer.zero_grad(set_to_none=True)
        total.backward()  # the runs' weights are disjoint: each gets its own loss's gradient
        for index in stepping:
            runs[index].optimizer.step()
            runs[index].model.n_steps_ += 1
    records = []
    for run, run_sums, used, norms in zip(runs, sums, n_used, gradient_norms, strict=True):
        if used == 0:
            raise RuntimeError(f"{run.model.name}: every batch of the epoch had a non-finite loss")
        records.append({**dict(zip(LOSS_TERMS, (run_sums / used).tolist(), strict=True)), **norms})
    return records
