"""Model-selection helpers shared by the neural methods: label codes, input scaling, validation
splits carved from the *training* pairs, validation MAP, best-epoch tracking and the
early-stopping tower trainer, and parameter counting.

Nothing here is specific to one method. This module sits below ``avcmr.evaluation`` and must not
import it (the validation MAP below is a small re-implementation for model selection only).

Three stratified validation splitters live here because they give *different* index sets for the
same labels, fraction and seed, and each method's results depend on its own (checked numerically
when they were gathered here from ``acmr``, ``dcca`` and ``dual_subspace``):

- ``carve_validation``: one global ``train_test_split`` (sklearn), validation capped at 1,000
  pairs, plain random split when stratifying is impossible; both index sets sorted.
- ``stratified_validation_split``: per class, a seeded numpy permutation and round(fraction·n_c)
  validation pairs (a class may go entirely to validation); both index sets sorted.
- ``stratified_validation_split_keep_one``: the same per-class draws, but every class keeps at
  least one fit pair, and the fit indices come back in a seeded *shuffled* (class-mixed) order, so
  that any prefix of them is a class-mixed sample.

The unsupervised methods (``kcca``, ``dcca``, ``ucal``, ``ugach``) must not see the labels, not
even through the choice of validation pairs: ``unstratified_validation_split`` takes the number of
pairs, not the labels, and draws the validation pairs by a seeded permutation.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import Standardizer, cosine_similarity, hamming_similarity

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Labels, scaling, parameter counts
# ---------------------------------------------------------------------------------------------
def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, integer codes 0…C−1) of arbitrary label values."""
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return classes, codes.astype(np.int64)


def count_parameters(*networks: nn.Module) -> int:
    """Number of weights and biases (buffers not counted) of all ``networks`` together."""
    return int(sum(p.numel() for net in networks for p in net.parameters()))


class IdentityScaler(Standardizer):
    def fit(self, x: np.ndarray) -> IdentityScaler:
        self.mean_ = np.zeros(x.shape[1])
        self.scale_ = np.ones(x.shape[1])
        return self


def fit_scalers(
    audio: np.ndarray, visual: np.ndarray, standardize: bool
) -> tuple[Standardizer, Standardizer]:
    """z-scoring with the fit split's statistics, or the identity when ``standardize`` is off."""
    cls = Standardizer if standardize else IdentityScaler
    return cls().fit(audio), cls().fit(visual)


# ---------------------------------------------------------------------------------------------
# Validation splits of the training pairs (three distinct behaviours, see the module docstring)
# ---------------------------------------------------------------------------------------------
MAX_VALIDATION_PAIRS = 1000


def carve_validation(
    labels: np.ndarray,
    fraction: float,
    random_state: int | None,
    max_pairs: int = MAX_VALIDATION_PAIRS,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of a stratified split of the *training* pairs.

    The validation set holds ``fraction`` of the pairs, at most ``max_pairs`` (1,000 pairs rank a
    model reliably; more would only cost training data and an N² ranking per epoch). ``fraction``
    0 gives no validation set. Stratification falls back to a plain random split when a class has
    fewer than two pairs or the validation set is smaller than the number of classes.
    """
    n_items = len(labels)
    if fraction <= 0:
        return np.arange(n_items), np.zeros(0, dtype=np.int64)
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    n_validation = min(int(round(fraction * n_items)), max_pairs)
    if n_validation < 2 or n_items - n_validation < 2:
        return np.arange(n_items), np.zeros(0, dtype=np.int64)
    _, counts = np.unique(labels, return_counts=True)
    stratify = (
        labels
        if counts.min() >= 2 and len(counts) <= min(n_validation, n_items - n_validation)
        else None
    )
    # Imported here: scikit-learn costs ≈ 1.9 s to import, and only the methods that carve a
    # stratified validation set this way need it.
    from sklearn.model_selection import train_test_split

    seed = 0 if random_state is None else int(random_state)
    fit_index, validation_index = train_test_split(
        np.arange(n_items), test_size=n_validation, stratify=stratify, random_state=seed
    )
    return np.sort(fit_index), np.sort(validation_index)


def unstratified_validation_split(
    n_items: int,
    fraction: float,
    random_state: int | None,
    max_pairs: int | None = MAX_VALIDATION_PAIRS,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) of a seeded random split of ``n_items`` training pairs, for the
    unsupervised methods: it never sees the labels, so it cannot leak them into model selection.

    The validation set holds round(``fraction``·n) pairs, at most ``max_pairs`` (None: no cap),
    drawn as the first entries of ``np.random.default_rng(random_state).permutation(n)``;
    ``fraction`` 0, or fewer than two pairs on either side, gives no validation set. Both index
    sets are sorted.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {fraction}")
    n_validation = int(round(fraction * n_items))
    if max_pairs is not None:
        n_validation = min(n_validation, max_pairs)
    if n_validation < 2 or n_items - n_validation < 2:
        return np.arange(n_items), np.zeros(0, dtype=np.int64)
    seed = 0 if random_state is None else int(random_state)
    order = np.random.default_rng(seed).permutation(n_items)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def split_and_scale(
    audio: np.ndarray,
    visual: np.ndarray,
    stratify_by: np.ndarray | None,
    fraction: float,
    random_state: int | None,
    standardize: bool,
) -> tuple[np.ndarray, np.ndarray, Standardizer, Standardizer]:
    """``carve_validation`` stratified by ``stratify_by`` (None: ``unstratified_validation_split``,
    for the unsupervised methods), then ``fit_scalers`` on the fit pairs: (fit index, validation
    index, audio scaler, visual scaler)."""
    if stratify_by is None:
        fit_index, validation_index = unstratified_validation_split(
            len(audio), fraction, random_state
        )
    else:
        fit_index, validation_index = carve_validation(stratify_by, fraction, random_state)
    audio_scaler, visual_scaler = fit_scalers(audio[fit_index], visual[fit_index], standardize)
    return fit_index, validation_index, audio_scaler, visual_scaler


def _per_class_holdout(
    labels: np.ndarray, fraction: float, rng: np.random.Generator, keep_one: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per class (in sorted label order): a permutation of its members drawn from ``rng``, the
    first round(fraction·n_c) of them (at most n_c − 1 when ``keep_one``) held out."""
    fit_parts, validation_parts = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_validation = int(round(fraction * len(members)))
        if keep_one:
            n_validation = min(n_validation, len(members) - 1)
        validation_parts.append(members[:n_validation])
        fit_parts.append(members[n_validation:])
    return fit_parts, validation_parts


def stratified_validation_split(
    labels: np.ndarray, fraction: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``fraction`` of every class, seeded; no validation if 0."""
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {fraction}")
    all_indices = np.arange(len(labels))
    if fraction == 0.0:
        return all_indices, all_indices[:0]
    _, validation_parts = _per_class_holdout(
        labels, fraction, np.random.default_rng(seed), keep_one=False
    )
    validation = np.sort(np.concatenate(validation_parts))
    return np.setdiff1d(all_indices, validation), validation


def stratified_validation_split_keep_one(
    labels: np.ndarray, fraction: float, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices): as ``stratified_validation_split``, but every class keeps
    at least one fit pair and the fit indices are returned shuffled across classes (a seeded
    permutation; also for ``fraction`` 0), so that any prefix of them is a class-mixed sample.
    The validation indices are sorted. ``fraction`` is not range-checked."""
    rng = np.random.default_rng(seed)
    fit_parts, validation_parts = _per_class_holdout(labels, fraction, rng, keep_one=True)
    return rng.permutation(np.concatenate(fit_parts)), np.sort(np.concatenate(validation_parts))


# ---------------------------------------------------------------------------------------------
# Validation MAP
# ---------------------------------------------------------------------------------------------
def _mean_average_precision(
    scores: np.ndarray,
    query_labels: np.ndarray,
    candidate_labels: np.ndarray,
    tie_seed: int | None,
) -> float:
    """MAP over the full ranked list of each query row (queries without a relevant item: AP 0).

    Ties: with ``tie_seed`` an integer, broken by a seeded random permutation of the candidates
    then a stable sort (the convention of ``avcmr.evaluation.metrics``, which this layer may not
    import); with ``tie_seed=None``, in candidate index order (a plain stable sort).
    """
    if tie_seed is None:
        ranking = np.argsort(-scores, axis=1, kind="stable")
    else:
        shuffle = np.random.default_rng(tie_seed).permutation(scores.shape[1])
        ranking = shuffle[np.argsort(-scores[:, shuffle], axis=1, kind="stable")]
    hits = candidate_labels[ranking] == query_labels[:, None]
    precision_at_hits = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1) * hits
    n_relevant = hits.sum(axis=1)
    ap = np.divide(
        precision_at_hits.sum(axis=1), n_relevant, out=np.zeros(len(hits)), where=n_relevant > 0
    )
    return float(ap.mean())


def validation_map_on_device(audio_embedding: torch.Tensor, visual_embedding: torch.Tensor, labels: torch.Tensor) -> float:
    """:func:`validation_map` (cosine, ties in index order) computed where the embeddings are: the
    n × n scores are ranked on the device (a GPU sorts them in milliseconds where the host took
    about a second for 2,248 held-out pairs) and only the MAP comes back. float64 like the host's."""
    audio, visual = audio_embedding.double(), visual_embedding.double()
    # Cosine with a zero vector's similarity 0 (never NaN), as base.cosine_similarity.
    audio = audio / torch.where((norm := audio.norm(dim=1, keepdim=True)) > 0, norm, 1.0)
    visual = visual / torch.where((norm := visual.norm(dim=1, keepdim=True)) > 0, norm, 1.0)
    scores = audio @ visual.T

    def mean_average_precision(scores: torch.Tensor) -> float:
        ranking = torch.sort(scores, dim=1, descending=True, stable=True).indices
        hits = (labels[ranking] == labels[:, None]).double()
        ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=torch.float64)
        n_relevant = hits.sum(dim=1)
        precision_sums = (hits.cumsum(dim=1) / ranks * hits).sum(dim=1)
        ap = torch.where(n_relevant > 0, precision_sums / n_relevant.clamp(min=1), 0.0)
        return float(ap.mean())

    return 0.5 * (mean_average_precision(scores) + mean_average_precision(scores.T))


def validation_map(
    audio_embedding: np.ndarray,
    visual_embedding: np.ndarray,
    labels: np.ndarray,
    kind: str = "cosine",
    tie_seed: int | None = 0,
) -> float:
    """(MAP a→v + MAP v→a) / 2 on the validation pairs, by cosine or by Hamming ranking.

    ``tie_seed``: see ``_mean_average_precision`` (0: seeded random tie order; None: index order).
    """
    if kind == "hamming":
        scores = hamming_similarity(audio_embedding, visual_embedding)
    else:
        scores = cosine_similarity(audio_embedding, visual_embedding)
    labels = np.asarray(labels)
    return 0.5 * (
        _mean_average_precision(scores, labels, labels, tie_seed)
        + _mean_average_precision(scores.T, labels, labels, tie_seed)
    )


# ---------------------------------------------------------------------------------------------
# Best-epoch tracking and the early-stopping tower trainer
# ---------------------------------------------------------------------------------------------
class BestEpoch:
    """Keeps a copy of the networks' weights at the epoch with the best validation score."""

    def __init__(self, networks: Mapping[str, nn.Module]):
        self.networks = dict(networks)
        self.best_score = -math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, dict] | None = None

    def update(self, epoch: int, score: float) -> bool:
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self._state = {
                name: copy.deepcopy(net.state_dict()) for name, net in self.networks.items()
            }
            return True
        return False

    def patience_exhausted(self, epoch: int, patience: int | None) -> bool:
        """Whether ``patience`` epochs have passed since the best validated one (never when
        ``patience`` is None or nothing was scored yet): the early stop of the ``quick`` budget."""
        return patience is not None and self.best_epoch is not None and epoch - self.best_epoch >= patience

    def restore(self) -> None:
        if self._state is not None:
            for name, net in self.networks.items():
                net.load_state_dict(self._state[name])

    def finish(self, last_epoch: int) -> int:
        """Restore the best weights; the best epoch, or ``last_epoch`` when none was scored."""
        self.restore()
        return self.best_epoch if self.best_epoch is not None else last_epoch


def train_towers(
    nets: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    epoch_batches: Callable[[int], Iterable[torch.Tensor]],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validation_loss: Callable[[], float] | None,
    epochs: int,
    patience: int | None,
    name: str,
) -> tuple[list[dict[str, float]], int]:
    """Minibatch training with best-epoch restore and early stopping on a validation loss.

    ``epoch_batches(epoch)`` yields index tensors, ``batch_loss(indices)`` returns the scalar to
    minimise, ``validation_loss()`` (nets in eval mode, no grad) the model-selection criterion.
    Updates with a non-finite loss or gradient are skipped and counted (``skipped_batches``).
    Returns (history, best epoch); the nets hold the best epoch's weights afterwards.
    """
    parameters = [p for net in nets for p in net.parameters() if p.requires_grad]
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = np.inf, 0, None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for net in nets:
            net.train()
        losses, n_skipped = [], 0
        for indices in epoch_batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(indices)
            loss.backward()
            # A degenerate batch (e.g. repeated covariance eigenvalues in the eigh backward) can give
            # non-finite gradients; skip that update rather than poison the weights.
            if not finite_step(loss, parameters):
                n_skipped += 1
                continue
            optimizer.step()
            losses.append(loss.item())
        record = {
            "epoch": epoch,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "skipped_batches": n_skipped,
        }
        if validation_loss is not None:
            for net in nets:
                net.eval()
            with torch.no_grad():
                record["val_loss"] = float(validation_loss())
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        log.info("%s epoch %d/%d: %s", name, epoch, epochs, record)
        criterion = record.get("val_loss", record["loss"])
        if criterion < best_loss:
            best_loss, best_epoch = criterion, epoch
            best_state = [
                {k: v.detach().clone() for k, v in net.state_dict().items()} for net in nets
            ]
        elif validation_loss is not None and patience is not None and epoch - best_epoch >= patience:
            log.info("%s: early stop after epoch %d (best %d)", name, epoch, best_epoch)
            break
    if best_state is not None:
        for net, state in zip(nets, best_state, strict=True):
            net.load_state_dict(state)
    for net in nets:
        net.eval()
    return history, best_epoch


def finite_step(loss: torch.Tensor, parameters: Sequence[torch.Tensor]) -> bool:
    """Whether the loss and the gradients just computed are finite (a step on them is safe)."""
    gradients = [p.grad.sum() for p in parameters if p.grad is not None]
    return bool(
        torch.isfinite(loss).item()
        and (not gradients or torch.isfinite(torch.stack(gradients).sum()).item())
    )
