"""`ugach`: Unsupervised Generative Adversarial Cross-modal Hashing (Zhang, Peng, Yuan; AAAI 2018).

Follows the paper and the official code (``PKU-ICST-MIPL/UGACH_AAAI2018``: ``gen_model_nn.py``,
``dis_model_nn.py``, ``train_64.py``), with audio in the role of text. No labels are used.

- **Correlation graph** (paper Sec. 3.2): a k-nearest-neighbour graph per modality (k = 5) on the
  training features; the *manifold pairs* of an audio query i are the visual items paired with i
  or with one of i's audio neighbours, and symmetrically for visual queries.
- **Networks**: generator G and discriminator D each have one net per modality,
  x → tanh(W1 x + b1) → W2 · + b2 → sigmoid ∈ (0, 1)^L (L = 64 bits), weights initialised from a
  truncated normal (std 0.1) as in the official code; hash codes round the sigmoid (≥ 0.5 → 1).
- **Discriminator** (the paper's triplet-margin objective, official ``svm`` loss): for a query q, a manifold-pair item p and a generated
  item n, mean max(0, β + ‖D(q) − D(p)‖² − ‖D(q) − D(n)‖²) + w·½‖θ_D‖², β = L/8, w = 0.01.
- **Generator** (policy gradient, REINFORCE): for each query, a candidate pool of N/50 items of the other
  modality; ``select_num`` = 2 negatives are sampled from softmax(−‖G(q) − G(c)‖²) over the pool
  (excluding the query's manifold pairs when they feed D); reward r = σ(max(0, β + ‖D(q) − D(p)‖²
  − ‖D(q) − D(n)‖²)); loss −mean(r · log p(n | q)) + w·½‖θ_G‖², where, as in the official
  ``gen_loss``, the log-softmax runs over the sampled negatives of the query.
- **Schedule** (``train_64.py``): per epoch one D pass (fresh samples from G) then two G passes;
  plain SGD with the official per-sample rates (D 1e-3, G 1e-2) — the official batch is one query;
  we step on minibatches of ``batch_size`` queries with the rates scaled by the batch size (linear
  scaling), which keeps the per-sample step. The official discriminator starts from a pretrained
  file whose recipe is not published; here it gets ``pretrain_epochs`` passes with uniformly
  random negatives first.
- **Output**: codes of the *discriminator* (the official ``test_64.py`` hashes with D), ±1 for
  Hamming ranking; ``output="real"`` ranks by cosine on the real-valued relaxation 2σ(·) − 1
  instead (the ``ugach_real`` row: the same class with ``output`` fixed to "real", so the same seed
  trains the same networks; ``real_similarity`` gives that score for a model fitted with either
  setting).

Simplifications for the CPU budget (documented defaults): hidden width 1,024 (the official
``test_64.py`` value; ``train_64.py`` uses 8,192); each epoch draws ``queries_per_epoch`` = 2,048
random queries per direction instead of visiting all 22,482 training items (so the cost of an
epoch does not grow with the training set); the kNN graph is searched in a 64-D PCA space of the
z-scored features (an exact 22k × 22k search in 1,024-D would cost more than all the training);
4 epochs (official: 30). Measured: 46–53 CPU-seconds on the VEGAS-scale synthetic benchmark
(``benchmarks/bench_adversarial.py``).

Fitted ``n_steps_``: the optimiser steps run, one per batch of queries in either direction and in
every pass (pre-training included): an epoch is (d_epochs + g_epochs) passes × 2 directions ×
⌈queries / batch_size⌉ steps (``avcmr.methods.budgets.steps_per_epoch``).

Model selection never sees labels. ``selection="fixed_epochs"`` (the default) trains on every pair
and keeps the last epoch, as the official code's newest model; ``"holdout_best"`` keeps the epoch
with the best mean reciprocal rank of each held-out item's own pair under Hamming ranking
(``validation_fraction`` of the training pairs carved out) and lets ``patience`` stop the run. The
second does not track test MAP (``SELECTIONS`` below), so under the ``quick`` budget UGACH trains to
its step cap and its rows say "cap reached".
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import (
    HashingOutputMixin,
    RetrievalMethod,
    check_training_data,
    cosine_similarity,
)
from avcmr.methods.model_selection import (
    BestEpoch,
    count_parameters,
    split_and_scale,
    validation_map,
)
from avcmr.methods.registry import register, register_variant
from avcmr.methods.torch_utils import (
    make_optimizer,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)

log = logging.getLogger(__name__)


def knn_graph(
    features: np.ndarray,
    n_neighbors: int,
    n_dims: int | None,
    device: torch.device,
    chunk: int = 2048,
) -> np.ndarray:
    """Indices (N × k) of every row's k nearest other rows (Euclidean), optionally after PCA to
    ``n_dims`` dimensions (ties: lowest index first)."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    x = x - x.mean(dim=0)
    if n_dims is not None and n_dims < x.shape[1]:
        _, eigenvectors = torch.linalg.eigh((x.T @ x).double())
        x = x @ eigenvectors[:, -n_dims:].float()
    squared = (x * x).sum(dim=1)
    neighbours = []
    for start in range(0, len(x), chunk):
        stop = min(start + chunk, len(x))
        # ‖x_i‖² is constant along a row, so −2 x_i·x_j + ‖x_j‖² ranks like the distance.
        distance = torch.addmm(squared[None, :], x[start:stop], x.T, alpha=-2.0)
        own = torch.arange(start, stop, device=device)
        distance[own - start, own] = torch.inf
        neighbours.append(torch.topk(distance, n_neighbors, dim=1, largest=False).indices.cpu())
    return torch.cat(neighbours).numpy()


class SigmoidHashNet(nn.Module):
    """x → tanh hidden → L outputs → sigmoid (UGACH's per-modality net, G and D alike)."""

    def __init__(self, input_dim: int, hidden_dim: int, n_bits: int):
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, n_bits)
        for layer in (self.hidden, self.output):
            nn.init.trunc_normal_(layer.weight, mean=0.0, std=0.1, a=-0.2, b=0.2)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(torch.tanh(self.hidden(x))))


class CrossModalHashNets(nn.Module):
    def __init__(self, audio_dim: int, visual_dim: int, hidden_dim: int, n_bits: int):
        super().__init__()
        self.audio = SigmoidHashNet(audio_dim, hidden_dim, n_bits)
        self.visual = SigmoidHashNet(visual_dim, hidden_dim, n_bits)


def squared_distances(query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """‖q − c‖² of query rows (B × L) against per-query items (B × S × L) → B × S."""
    return ((query[:, None, :] - items) ** 2).sum(dim=-1)


def discriminator_hinge(
    query: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """max(0, β + ‖q − p‖² − ‖q − n‖²) per (query, sample) — UGACH's discriminator loss (official ``svm``)."""
    return torch.relu(
        margin + squared_distances(query, positive) - squared_distances(query, negative)
    )


def l2_penalty(module: nn.Module) -> torch.Tensor:
    """½ Σ θ² over all parameters (``tf.nn.l2_loss`` summed, as the official losses add it)."""
    return 0.5 * sum((p * p).sum() for p in module.parameters())


def codes_from_sigmoid(sigmoid_output: np.ndarray) -> np.ndarray:
    """The official binarisation round(σ) (σ ≥ 0.5 → bit 1), written as ±1."""
    return np.where(np.asarray(sigmoid_output) >= 0.5, 1.0, -1.0)


# How the kept weights are chosen, the default first: the last epoch of the schedule, as the
# official code's "newest" discriminator (its "best" file is chosen by labelled test MAP, which an
# unsupervised method may not see), or the best epoch by the held-out pairs' own-pair reciprocal
# rank (val_pair_mrr). That criterion does not follow test MAP at VEGAS size: it stays within
# .045–.053 from the first epoch on while test MAP climbs from .74 to a .90 plateau, so it kept
# early checkpoints (seed 0: 960 optimiser steps, .855; benchmarks/results/ugach_criterion_vegas*.tsv,
# whose step column counts half).
SELECTIONS = ("fixed_epochs", "holdout_best")


@register("ugach")
class UGACH(HashingOutputMixin, RetrievalMethod):
    def __init__(
        self,
        n_bits: int = 64,
        hidden_dim: int = 1024,
        n_neighbors: int = 5,
        graph_pca_dims: int | None = 64,
        select_num: int = 2,
        sample_ratio: int = 50,
        margin: float | None = None,
        weight_decay: float = 0.01,
        lr_discriminator: float = 1e-3,
        lr_generator: float = 1e-2,
        batch_size: int = 64,
        queries_per_epoch: int | None = 2048,
        epochs: int = 4,
        patience: int | None = None,
        d_epochs: int = 1,
        g_epochs: int = 2,
        pretrain_epochs: int = 1,
        output: str = "codes",
        selection: str = "fixed_epochs",
        validation_fraction: float = 0.1,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_bits = n_bits
        self.hidden_dim = hidden_dim
        self.n_neighbors = n_neighbors
        self.graph_pca_dims = graph_pca_dims
        self.select_num = select_num
        self.sample_ratio = sample_ratio
        self.margin = margin
        self.weight_decay = weight_decay
        self.lr_discriminator = lr_discriminator
        self.lr_generator = lr_generator
        self.batch_size = batch_size
        self.queries_per_epoch = queries_per_epoch
        self.epochs = epochs
        self.patience = patience
        self.d_epochs = d_epochs
        self.g_epochs = g_epochs
        self.pretrain_epochs = pretrain_epochs
        self.output = output
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.device = device

    # -- training -------------------------------------------------------------------------------
    def fit(self, audio, visual, labels) -> UGACH:
        self._check_output()
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        audio, visual, _ = check_training_data(audio, visual, labels)  # labels unused: unsupervised
        self._generator = seed_everything(self.random_state)
        self.device_ = pick_device(self.device)
        # fixed_epochs: every pair trains and the last epoch is kept (no held-out pairs, no early stop).
        holdout = self.validation_fraction if self.selection == "holdout_best" else 0.0
        fit_index, validation_index, self.audio_scaler_, self.visual_scaler_ = split_and_scale(
            audio, visual, None, holdout, self.random_state, self.standardize
        )
        audio_fit = self.audio_scaler_.transform(audio[fit_index])
        visual_fit = self.visual_scaler_.transform(visual[fit_index])
        n_fit = len(fit_index)
        self.margin_ = self.n_bits / 8.0 if self.margin is None else float(self.margin)

        # Manifold pairs: own pair first, then the pairs of the k nearest same-modality items.
        own = np.arange(n_fit)[:, None]
        audio_neighbours = knn_graph(audio_fit, self.n_neighbors, self.graph_pca_dims, self.device_)
        visual_neighbours = knn_graph(
            visual_fit, self.n_neighbors, self.graph_pca_dims, self.device_
        )
        self.manifold_pairs_ = {
            "a2v": torch.as_tensor(np.hstack([own, audio_neighbours])),
            "v2a": torch.as_tensor(np.hstack([own, visual_neighbours])),
        }
        self.generator_ = CrossModalHashNets(
            audio.shape[1], visual.shape[1], self.hidden_dim, self.n_bits
        ).to(self.device_)
        self.discriminator_ = CrossModalHashNets(
            audio.shape[1], visual.shape[1], self.hidden_dim, self.n_bits
        ).to(self.device_)
        # Per-sample SGD rates of the official code, scaled to minibatch means (linear scaling).
        optimizer_d = make_optimizer(torch.optim.SGD,
            self.discriminator_.parameters(), lr=self.lr_discriminator * self.batch_size
        )
        optimizer_g = make_optimizer(torch.optim.SGD,
            self.generator_.parameters(), lr=self.lr_generator * self.batch_size
        )
        self._features = {
            "audio": to_tensor(audio_fit, self.device_),
            "visual": to_tensor(visual_fit, self.device_),
        }
        self._pool_size = int(
            min(n_fit, max(n_fit // self.sample_ratio, self.select_num + self.n_neighbors + 2))
        )

        self.n_steps_ = 0
        for _ in range(self.pretrain_epochs):
            self._discriminator_pass(optimizer_d, use_generator=False)
        tracker = BestEpoch({"discriminator": self.discriminator_})
        self.history_ = []
        for epoch in range(self.epochs):
            started = time.perf_counter()
            d_losses = [
                self._discriminator_pass(optimizer_d, use_generator=True)
                for _ in range(self.d_epochs)
            ]
            g_stats = [self._generator_pass(optimizer_g) for _ in range(self.g_epochs)]
            record = {
                "epoch": epoch + 1,
                "loss": float(np.mean(d_losses)) if d_losses else float("nan"),
                "d_loss": float(np.mean(d_losses)) if d_losses else float("nan"),
                "g_loss": float(np.mean([g for g, _ in g_stats])) if g_stats else float("nan"),
                "mean_reward": float(np.mean([r for _, r in g_stats])) if g_stats else float("nan"),
            }
            if len(validation_index):
                # Each validation pair is its own class, so AP = reciprocal rank of the own pair.
                record["val_pair_mrr"] = validation_map(
                    self._codes("audio", audio[validation_index]),
                    self._codes("visual", visual[validation_index]),
                    np.arange(len(validation_index)),
                    kind="hamming",
                )
                tracker.update(epoch + 1, record["val_pair_mrr"])
            record["seconds"] = time.perf_counter() - started
            self.history_.append(record)
            log.info("ugach epoch %d: %s", epoch + 1, record)
            if tracker.patience_exhausted(epoch + 1, self.patience):
                log.info("ugach: no better validation for %d epochs, stopped after epoch %d", self.patience, epoch + 1)
                break
        self.best_epoch_ = tracker.finish(self.epochs)
        del self._features, self._generator
        return self

    def _directions(self):
        # (name, query modality, candidate modality)
        return (("a2v", "audio", "visual"), ("v2a", "visual", "audio"))

    def _query_batches(self):
        n_fit = len(self._features["audio"])
        n_queries = n_fit if self.queries_per_epoch is None else min(self.queries_per_epoch, n_fit)
        queries = torch.randperm(n_fit, generator=self._generator)[:n_queries]
        return [queries[i : i + self.batch_size] for i in range(0, n_queries, self.batch_size)]

    def _sample_positives(self, direction: str, queries: torch.Tensor) -> torch.Tensor:
        pairs = self.manifold_pairs_[direction][queries]  # B × (k + 1)
        order = torch.rand(pairs.shape, generator=self._generator).argsort(dim=1)[
            :, : self.select_num
        ]
        return torch.gather(pairs, 1, order)

    def _sample_negatives(
        self,
        direction,
        query_modality,
        candidate_modality,
        queries,
        use_generator,
        exclude_positives,
    ):
        n_fit = len(self._features["audio"])
        pool = torch.randperm(n_fit, generator=self._generator)[: self._pool_size]
        if use_generator:
            with torch.no_grad():
                self.generator_.eval()
                query_code = getattr(self.generator_, query_modality)(
                    self._features[query_modality][queries.to(self.device_)]
                )
                pool_code = getattr(self.generator_, candidate_modality)(
                    self._features[candidate_modality][pool.to(self.device_)]
                )
                logits = -torch.cdist(query_code, pool_code).pow(2).cpu()
        else:
            logits = torch.zeros(len(queries), len(pool))
        if exclude_positives:
            manifold = self.manifold_pairs_[direction][queries]
            is_positive = (pool[None, :, None] == manifold[:, None, :]).any(dim=2)
            logits = logits.masked_fill(is_positive, -torch.inf)
        probabilities = torch.softmax(logits.double(), dim=1)
        picks = torch.multinomial(
            probabilities, self.select_num, replacement=True, generator=self._generator
        )
        return pool[picks]  # B × select_num

    def _items(self, nets: CrossModalHashNets, modality: str, index: torch.Tensor) -> torch.Tensor:
        flat = index.reshape(-1).to(self.device_)
        return getattr(nets, modality)(self._features[modality][flat]).reshape(
            *index.shape, self.n_bits
        )

    def _discriminator_pass(self, optimizer, use_generator: bool) -> float:
        losses = []
        for direction, query_modality, candidate_modality in self._directions():
            for queries in self._query_batches():
                positives = self._sample_positives(direction, queries)
                negatives = self._sample_negatives(
                    direction,
                    query_modality,
                    candidate_modality,
                    queries,
                    use_generator,
                    exclude_positives=True,
                )
                self.discriminator_.train()
                query_code = self._items(self.discriminator_, query_modality, queries)
                hinge = discriminator_hinge(
                    query_code,
                    self._items(self.discriminator_, candidate_modality, positives),
                    self._items(self.discriminator_, candidate_modality, negatives),
                    self.margin_,
                ).mean()
                loss = hinge + self.weight_decay * l2_penalty(self.discriminator_)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.n_steps_ += 1
                losses.append(hinge.item())
        return float(np.mean(losses))

    def _generator_pass(self, optimizer) -> tuple[float, float]:
        losses, rewards = [], []
        for direction, query_modality, candidate_modality in self._directions():
            for queries in self._query_batches():
                positives = self._sample_positives(direction, queries)
                negatives = self._sample_negatives(
                    direction,
                    query_modality,
                    candidate_modality,
                    queries,
                    True,
                    exclude_positives=False,
                )
                with torch.no_grad():
                    self.discriminator_.eval()
                    reward = torch.sigmoid(
                        discriminator_hinge(
                            self._items(self.discriminator_, query_modality, queries),
                            self._items(self.discriminator_, candidate_modality, positives),
                            self._items(self.discriminator_, candidate_modality, negatives),
                            self.margin_,
                        )
                    )
                self.generator_.train()
                score = -squared_distances(
                    self._items(self.generator_, query_modality, queries),
                    self._items(self.generator_, candidate_modality, negatives),
                )
                log_probability = torch.log_softmax(score, dim=1)
                policy_loss = -(log_probability * reward).mean()
                loss = policy_loss + self.weight_decay * l2_penalty(self.generator_)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.n_steps_ += 1
                losses.append(policy_loss.item())
                rewards.append(reward.mean().item())
        return float(np.mean(losses)), float(np.mean(rewards))

    # -- outputs --------------------------------------------------------------------------------
    def _sigmoid(self, modality: str, x: np.ndarray) -> np.ndarray:
        scaler = self.audio_scaler_ if modality == "audio" else self.visual_scaler_
        return predict_in_batches(
            getattr(self.discriminator_, modality), scaler.transform(x), self.device_
        )

    def _codes(self, modality: str, x: np.ndarray) -> np.ndarray:
        return codes_from_sigmoid(self._sigmoid(modality, x))

    def _real(self, modality: str, x: np.ndarray) -> np.ndarray:
        # 2σ − 1 ∈ (−1, 1): the relaxation whose sign is the code, centred so cosine is meaningful.
        return 2.0 * self._sigmoid(modality, x) - 1.0

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("discriminator_")
        return self._real("audio", audio) if self.output == "real" else self._codes("audio", audio)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("discriminator_")
        return (
            self._real("visual", visual) if self.output == "real" else self._codes("visual", visual)
        )

    def real_similarity(self, audio: np.ndarray, visual: np.ndarray) -> np.ndarray:
        """Cosine on the real-valued pre-binarisation outputs, whatever ``output`` is."""
        self._check_fitted("discriminator_")
        return cosine_similarity(self._real("audio", audio), self._real("visual", visual))

    def n_parameters(self) -> int:
        self._check_fitted("discriminator_")
        return count_parameters(self.generator_, self.discriminator_)


UGACHReal = register_variant(
    "ugach_real",
    UGACH,
    "UGACHReal",
    "`ugach_real`: the `ugach` model ranked by cosine on the real-valued relaxation 2σ(·) − 1 of "
    "its discriminator outputs (METHODS.md: hashing methods also report cosine on the "
    'pre-binarisation outputs). The constructor is UGACH\'s with ``output`` fixed to "real"; '
    "training does not depend on ``output``, so with the same parameters and seed it trains the "
    "networks of the `ugach` row.",
    output="real",
)
