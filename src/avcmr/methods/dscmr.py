"""`dscmr`: Deep Supervised Cross-Modal Retrieval (Zhen, Hu, Wang, Peng; CVPR 2019).

Architecture (official code ``penghu-cs/DSCMR``, ``model.py``; image → visual, text → audio):
a modality-specific ReLU layer per modality (visual 1024 → 2048, audio 128 → 2048), a *shared*
linear layer 2048 → 1024 giving the common representation u (the retrieval space) and a *shared*
linear classifier 1024 → C on top of it. Loss (paper Sec. 3: J1, J2, J3 and their weighted sum;
as computed by ``train_model.calc_loss``):

    J  = J1 + λ·J2 + η·J3,   λ = 1e-3, η = 0.1
    J1 = mean_i ‖P u_i^v − y_i‖₂ + mean_i ‖P u_i^a − y_i‖₂                 (label-space discrimination)
    J2 = Σ_{(x,z) ∈ {(a,a), (a,v), (v,v)}} mean_{ij} [log(1 + e^{θ_ij}) − S_ij θ_ij],
         θ_ij = cos(u_i^x, u_j^z) / 2,  S_ij = 1[y_i = y_j]                  (common-space discrimination)
    J3 = mean_i ‖u_i^v − u_i^a‖₂                                             (modality invariance)

(the code takes row norms where the paper writes Frobenius norms; the code is followed). Adam,
lr 1e-4, betas (0.5, 0.999), batch 100. Retrieval: cosine between the 1024-D common features.

Model selection: the official script keeps the epoch with the best *test* MAP; here the epoch is
chosen by MAP on a validation split carved from the training pairs. Inputs are z-scored with
training statistics (the official code feeds raw features).

Budget: the paper trains 100–200 epochs (the script's default ends up at 500). One epoch over the
22,482 VEGAS training pairs costs ~0.8 TFLOP (a 4.5 M-parameter network at batch 100), i.e. tens
of seconds on a two-core CPU, so the default here is ``epochs=2`` (48–49 CPU-seconds on the VEGAS-scale
synthetic benchmark, ``benchmarks/bench_adversarial.py``); raise it on a GPU.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.model_selection import (
    BestEpoch,
    count_parameters,
    encode_labels,
    split_and_scale,
    validation_map,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    make_optimizer,
    minibatches,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)

log = logging.getLogger(__name__)


def label_space_loss(
    audio_prediction: torch.Tensor, visual_prediction: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """J1: mean row-wise L2 distance between the linear classifier's outputs and the one-hot labels."""
    return (visual_prediction - onehot).norm(dim=1).mean() + (audio_prediction - onehot).norm(
        dim=1
    ).mean()


def _half_cosine(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    norms = left.norm(dim=1, keepdim=True) @ right.norm(dim=1, keepdim=True).T
    return (left @ right.T) / norms.clamp(min=1e-6) / 2.0


def common_space_loss(
    audio_feature: torch.Tensor, visual_feature: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """J2: the negative log-likelihood of the label-similarity matrix under σ(θ), θ = cos/2, summed
    over the audio–audio, audio–visual and visual–visual pairs of the minibatch."""
    similarity = onehot @ onehot.T
    total = audio_feature.new_zeros(())
    for left, right in (
        (audio_feature, audio_feature),
        (audio_feature, visual_feature),
        (visual_feature, visual_feature),
    ):
        theta = _half_cosine(left, right)
        total = total + (F.softplus(theta) - similarity * theta).mean()
    return total


def modality_invariance_loss(
    audio_feature: torch.Tensor, visual_feature: torch.Tensor
) -> torch.Tensor:
    """J3: mean row-wise L2 distance between the paired common representations."""
    return (visual_feature - audio_feature).norm(dim=1).mean()


class DSCMRNetwork(nn.Module):
    """Two modality towers sharing the last (common-space) layer, and a shared classifier."""

    def __init__(
        self, audio_dim: int, visual_dim: int, hidden_dim: int, common_dim: int, n_classes: int
    ):
        super().__init__()
        common = nn.Linear(hidden_dim, common_dim)
        self.audio_tower = nn.Sequential(nn.Linear(audio_dim, hidden_dim), nn.ReLU(), common)
        self.visual_tower = nn.Sequential(nn.Linear(visual_dim, hidden_dim), nn.ReLU(), common)
        self.classifier = nn.Linear(common_dim, n_classes)


@register("dscmr")
class DSCMR(RetrievalMethod):
    def __init__(
        self,
        hidden_dim: int = 2048,
        common_dim: int = 1024,
        common_space_weight: float = 1e-3,
        invariance_weight: float = 0.1,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        batch_size: int = 100,
        epochs: int = 2,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.hidden_dim = hidden_dim
        self.common_dim = common_dim
        self.common_space_weight = common_space_weight
        self.invariance_weight = invariance_weight
        self.lr = lr
        self.betas = betas
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.device = device

    def fit(self, audio, visual, labels) -> DSCMR:
        audio, visual, labels = check_training_data(audio, visual, labels)
        generator = seed_everything(self.random_state)
        self.device_ = pick_device(self.device)
        self.classes_, codes = encode_labels(labels)
        fit_index, validation_index, self.audio_scaler_, self.visual_scaler_ = split_and_scale(
            audio, visual, codes, self.validation_fraction, self.random_state, self.standardize
        )
        self.network_ = DSCMRNetwork(
            audio.shape[1], visual.shape[1], self.hidden_dim, self.common_dim, len(self.classes_)
        ).to(self.device_)
        optimizer = make_optimizer(torch.optim.Adam,
            self.network_.parameters(), lr=self.lr, betas=tuple(self.betas)
        )

        audio_t = to_tensor(self.audio_scaler_.transform(audio[fit_index]), self.device_)
        visual_t = to_tensor(self.visual_scaler_.transform(visual[fit_index]), self.device_)
        onehot_t = (
            F.one_hot(torch.as_tensor(codes[fit_index]), len(self.classes_))
            .float()
            .to(self.device_)
        )
        tracker = BestEpoch({"network": self.network_})
        self.history_ = []
        for epoch in range(self.epochs):
            started = time.perf_counter()
            self.network_.train()
            sums = np.zeros(4)
            n_batches = 0
            for batch in minibatches(len(fit_index), self.batch_size, generator):
                batch = batch.to(self.device_)
                onehot = onehot_t[batch]
                u_a = self.network_.audio_tower(audio_t[batch])
                u_v = self.network_.visual_tower(visual_t[batch])
                j1 = label_space_loss(
                    self.network_.classifier(u_a), self.network_.classifier(u_v), onehot
                )
                j2 = common_space_loss(u_a, u_v, onehot)
                j3 = modality_invariance_loss(u_a, u_v)
                loss = j1 + self.common_space_weight * j2 + self.invariance_weight * j3
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                sums += [loss.item(), j1.item(), j2.item(), j3.item()]
                n_batches += 1
            means = [float(x) for x in sums / max(n_batches, 1)]
            record = {
                "epoch": epoch + 1,
                "loss": means[0],
                "j1": means[1],
                "j2": means[2],
                "j3": means[3],
            }
            if len(validation_index):
                record["val_map"] = validation_map(
                    self.embed_audio(audio[validation_index]),
                    self.embed_visual(visual[validation_index]),
                    codes[validation_index],
                )
                tracker.update(epoch + 1, record["val_map"])
            record["seconds"] = time.perf_counter() - started
            self.history_.append(record)
            log.info("dscmr epoch %d: %s", epoch + 1, record)
            if tracker.patience_exhausted(epoch + 1, self.patience):
                log.info("dscmr: no better validation for %d epochs, stopped after epoch %d", self.patience, epoch + 1)
                break
        self.best_epoch_ = tracker.finish(self.epochs)
        return self

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("network_")
        return predict_in_batches(
            self.network_.audio_tower, self.audio_scaler_.transform(audio), self.device_
        )

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("network_")
        return predict_in_batches(
            self.network_.visual_tower, self.visual_scaler_.transform(visual), self.device_
        )

    def n_parameters(self) -> int:
        self._check_fitted("network_")
        return count_parameters(self.network_)
