"""`tnn_c_cca`: Deep Triplet Neural Networks with Cluster-CCA (Zeng, Yu & Oyama, ACM TOMM 16(3),
2020, arXiv:1908.03737).

Stage 1 — blended Cluster-CCA (`cluster_cca`, β = 0.2, r = 1e-4) maps audio and visual features to
10-D canonical spaces (the paper's first stage).
Stage 2 — one triplet network per modality, f_a for audio (anchors) and f_v for visual (positives and
negatives), each 3 × [FC 100, tanh, Dropout 0.1] → FC 10 (linear), trained with the batch-all
triplet hinge on cosine distances d(x, y) = 1 − cos(x, y) (the paper's second stage):

    L = Σ_{i,j,k} m_ijk · max(0, d(f_a(a_i), f_v(v_j)) − d(f_a(a_i), f_v(v_k)) + margin) / #{m_ijk·(·) > 0}

over every batch triple with y_j = y_i (positive, own pair included) and y_k ≠ y_i (negative); the
mask m is a B × B × B boolean tensor built from label equality, no Python loop over triplets, and
the sum is divided by the number of active (non-zero) triplets as in the authors' batch-all loss.
Adam lr 1e-3 (β 0.9, 0.999), 10 epochs, margin 0.4, batches of 45 pairs (the authors' config:
500 batches per epoch over ≈ 22k training pairs; ≈ 3 CPU-seconds per epoch at VEGAS size).
Retrieval: cosine between f_a(·) and f_v(·).

Choices and simplifications:
- anchors are audio only, as in the paper's architecture and code (``symmetric=True`` adds the
  visual-anchor triplets and averages the two losses);
- positives include the anchor's own visual pair (the code's ``permutations`` skips it);
- the output layer is linear (METHODS.md); the code ends in tanh → sigmoid;
- inputs are shuffled every epoch (the code walks the training set in file order);
- model selection on a stratified validation split of the training pairs: the hinge averaged over
  *all* valid triplets of fixed validation batches (the active-triplet average used for training
  grows as easy triplets become inactive, so it cannot rank epochs); best epoch restored, early
  stopping after ``patience``. Stage 1 (C-CCA) is fitted on the fit split only, so the validation
  pairs are unseen by both stages when they rank the epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avcmr.methods.base import RetrievalMethod
from avcmr.methods.cluster_cca import fit_cluster_cca, one_hot
from avcmr.methods.model_selection import (
    count_parameters,
    stratified_validation_split,
    train_towers,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    ThreadLimitedFit,
    make_optimizer,
    minibatches,
    mlp,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)


def batch_all_triplet_loss(anchors: torch.Tensor, candidates: torch.Tensor, anchor_codes: torch.Tensor,
                           candidate_codes: torch.Tensor, margin: float, reduction: str = "active") -> torch.Tensor:
    """Cosine hinge summed over every (anchor i, positive j, negative k) of a batch, divided by the
    number of active (non-zero) triplets (``reduction="active"``, the authors' batch-all loss) or
    of all valid triplets (``"valid"``)."""
    distance = 1.0 - F.normalize(anchors, dim=1) @ F.normalize(candidates, dim=1).T   # B_a × B_c
    same = anchor_codes[:, None] == candidate_codes[None, :]
    valid = same[:, :, None] & ~same[:, None, :]                                        # [i, j, k]
    hinge = torch.relu(distance[:, :, None] - distance[:, None, :] + margin) * valid
    if reduction == "active":
        count = (hinge > 1e-16).sum()
    elif reduction == "valid":
        count = valid.sum()
    else:
        raise ValueError(f"reduction must be 'active' or 'valid', got {reduction!r}")
    return hinge.sum() / count.clamp(min=1)


@register("tnn_c_cca")
class TripletClusterCCA(ThreadLimitedFit, RetrievalMethod):
    def __init__(
        self,
        n_components: int = 10,
        beta: float = 0.2,
        reg: float = 1e-4,
        auto_covariance: str = "cluster",
        hidden_sizes: Sequence[int] = (100, 100, 100),
        n_outputs: int = 10,
        dropout: float = 0.1,
        margin: float = 0.4,
        symmetric: bool = False,
        learning_rate: float = 1e-3,
        batch_size: int = 45,
        epochs: int = 10,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        n_threads: int | None = 1,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.n_components = n_components
        self.beta = beta
        self.reg = reg
        self.auto_covariance = auto_covariance
        self.hidden_sizes = hidden_sizes
        self.n_outputs = n_outputs
        self.dropout = dropout
        self.margin = margin
        self.symmetric = symmetric
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_threads = n_threads
        self.device = device

    def _fit(self, audio, visual, labels) -> TripletClusterCCA:
        generator = seed_everything(self.random_state)
        device = pick_device(self.device)
        self.device_ = str(device)
        train, validation = stratified_validation_split(labels, self.validation_fraction, self.random_state)
        self.cca_ = fit_cluster_cca(audio[train], visual[train], labels[train], self.n_components, self.beta,
                                    self.reg, self.auto_covariance)
        canonical_audio = self.cca_.transform_x(audio)
        canonical_visual = self.cca_.transform_y(visual)
        codes = one_hot(labels)[0].argmax(axis=1)

        hidden = [int(size) for size in self.hidden_sizes]
        self.audio_net_ = mlp([canonical_audio.shape[1], *hidden, self.n_outputs], "tanh", self.dropout).to(device)
        self.visual_net_ = mlp([canonical_visual.shape[1], *hidden, self.n_outputs], "tanh", self.dropout).to(device)
        nets = (self.audio_net_, self.visual_net_)
        optimizer = make_optimizer(torch.optim.Adam, [p for net in nets for p in net.parameters()], lr=self.learning_rate,
                                     betas=(0.9, 0.999))
        audio_all, visual_all = to_tensor(canonical_audio, device), to_tensor(canonical_visual, device)
        codes_all = torch.as_tensor(codes, device=device)
        train_index = torch.as_tensor(train, device=device)
        validation_batches = [torch.as_tensor(validation[i : i + self.batch_size], device=device)
                              for i in range(0, len(validation), self.batch_size)]

        def loss_of(index: torch.Tensor, reduction: str = "active") -> torch.Tensor:
            embedded_audio = self.audio_net_(audio_all[index])
            embedded_visual = self.visual_net_(visual_all[index])
            batch_codes = codes_all[index]
            loss = batch_all_triplet_loss(embedded_audio, embedded_visual, batch_codes, batch_codes, self.margin,
                                          reduction)
            if self.symmetric:
                reverse = batch_all_triplet_loss(embedded_visual, embedded_audio, batch_codes, batch_codes,
                                                 self.margin, reduction)
                loss = (loss + reverse) / 2
            return loss

        def validation_loss() -> float:
            # Mean hinge over *all* valid triplets: the active-triplet mean of training rises as easy
            # triplets drop out, so it cannot rank epochs.
            return float(np.mean([loss_of(index, "valid").item() for index in validation_batches]))

        self.history_, self.best_epoch_ = train_towers(
            nets,
            optimizer,
            lambda epoch: (train_index[batch.to(device)] for batch in minibatches(len(train), self.batch_size, generator)),
            loss_of,
            validation_loss if validation_batches else None,
            self.epochs,
            self.patience,
            "tnn_c_cca",
        )
        return self

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("history_")
        return predict_in_batches(self.audio_net_, self.cca_.transform_x(audio), torch.device(self.device_))

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("history_")
        return predict_in_batches(self.visual_net_, self.cca_.transform_y(visual), torch.device(self.device_))

    def n_parameters(self) -> int:
        """C-CCA projection matrices plus both triplet networks."""
        self._check_fitted("history_")
        return self.cca_.weights_x_.size + self.cca_.weights_y_.size + count_parameters(self.audio_net_, self.visual_net_)
