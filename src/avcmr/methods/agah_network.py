"""AGAH's network: feature nets, Frobenius normalisation, label attention, hash and label heads,
critics (:class:`AGAHNetwork`), with the label attention and the class prototypes it reads.

Fitted ``AGAH`` estimators hold an :class:`AGAHNetwork`, so saved models refer to it (and to
:class:`BatchFrobeniusNormalisation`); ``avcmr.methods.agah`` re-exports both under the path older
model files name.
"""

from __future__ import annotations

import torch
from torch import nn

from avcmr.methods.torch_utils import mlp

# Guards the divisions by a norm or by a weight sum against an all-zero (dead-ReLU) batch.
TINY = 1e-12


def label_attention(
    features: torch.Tensor, prototypes: torch.Tensor, mix: float, sharpness: float
) -> torch.Tensor:
    """AGAH's label attention: f̂ = λ f + (1 − λ) (w P) / Σ_c w_c with w = σ(s · f Pᵀ)."""
    weights = torch.sigmoid(sharpness * features @ prototypes.T)  # B × C
    attended = weights @ prototypes / weights.sum(dim=1, keepdim=True).clamp_min(TINY)
    return mix * features + (1.0 - mix) * attended


def class_prototypes(
    audio_features: torch.Tensor,
    visual_features: torch.Tensor,
    onehot: torch.Tensor,
    previous: torch.Tensor,
) -> torch.Tensor:
    """The feature map P (official ``update_feature_map``, "average"): per class the mean of its
    visual and the mean of its audio features, averaged and scaled to unit length; a class without
    any feature keeps its ``previous`` prototype."""
    counts = onehot.sum(dim=0)
    mean = (onehot.T @ visual_features / counts.clamp_min(1.0)[:, None]
            + onehot.T @ audio_features / counts.clamp_min(1.0)[:, None]) / 2.0  # fmt: skip
    normalised = mean / mean.norm(dim=1, keepdim=True).clamp_min(TINY)
    return torch.where((counts > 0)[:, None], normalised, previous)


class BatchFrobeniusNormalisation(nn.Module):
    """f / ‖F‖_F with F the batch's feature matrix and no gradient through the norm (official).

    In training mode this is the official operation. It also tracks a running mean of the squared
    row norm (momentum as BatchNorm's); in eval mode ‖F‖_F is replaced by √(B · E‖f‖²), B the
    training batch size, so that an item's code does not depend on the other items embedded with
    it (the official code divides test items by their test batch's norm).
    """

    def __init__(self, batch_size: int, momentum: float = 0.1):
        super().__init__()
        self.batch_size = int(batch_size)
        self.momentum = momentum
        self.register_buffer("running_mean_square", torch.ones(()))
        self.register_buffer("n_batches", torch.zeros((), dtype=torch.long))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.training:
            squared = features.detach().pow(2).sum(dim=1)
            with torch.no_grad():
                weight = 1.0 if int(self.n_batches) == 0 else self.momentum
                self.running_mean_square.mul_(1.0 - weight).add_(weight * squared.mean())
                self.n_batches += 1
            return features / squared.sum().sqrt().clamp_min(TINY)
        return features / (self.batch_size * self.running_mean_square).sqrt().clamp_min(TINY)


class AGAHNetwork(nn.Module):
    """Feature nets, Frobenius normalisation, label attention, hash and label heads, critics."""

    def __init__(
        self,
        audio_dim: int,
        visual_dim: int,
        visual_hidden,
        audio_hidden,
        feature_dim: int,
        n_bits: int,
        n_classes: int,
        batch_size: int = 128,
        attention_mix: float = 0.8,
        attention_sharpness: float = 5.0,
    ):
        super().__init__()
        self.attention_mix = attention_mix
        self.attention_sharpness = attention_sharpness
        # Flat Sequentials that end in ReLU, as the official feature modules do.
        self.visual_features = nn.Sequential(
            *mlp([visual_dim, *visual_hidden, feature_dim], "relu"), nn.ReLU()
        )
        self.audio_features = nn.Sequential(
            *mlp([audio_dim, *audio_hidden, feature_dim], "relu"), nn.ReLU()
        )
        self.visual_normalisation = BatchFrobeniusNormalisation(batch_size)
        self.audio_normalisation = BatchFrobeniusNormalisation(batch_size)
        self.visual_hash = nn.Sequential(nn.Linear(feature_dim, n_bits), nn.Tanh())
        self.audio_hash = nn.Sequential(nn.Linear(feature_dim, n_bits), nn.Tanh())
        self.visual_label = nn.Sequential(nn.Linear(feature_dim, n_classes), nn.Sigmoid())
        self.audio_label = nn.Sequential(nn.Linear(feature_dim, n_classes), nn.Sigmoid())
        # Critic of the audio feature space (audio real, visual fake) and of the visual one.
        self.audio_critic = mlp([feature_dim, feature_dim, 256, 1], "relu")
        self.visual_critic = mlp([feature_dim, feature_dim, 256, 1], "relu")
        # The feature map P (class prototypes), refreshed after every epoch; a buffer, so that
        # the best epoch's weights and P are kept and restored together.
        self.register_buffer("prototypes", torch.zeros(n_classes, feature_dim))

    def features(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Normalised features f (what the critics and the feature map see)."""
        raw = getattr(self, f"{modality}_features")(x)
        return getattr(self, f"{modality}_normalisation")(raw)

    def attend(self, features: torch.Tensor) -> torch.Tensor:
        return label_attention(
            features, self.prototypes, self.attention_mix, self.attention_sharpness
        )

    def hash_outputs(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Real-valued codes h = tanh(W f̂ + b) of (scaled) input features."""
        return getattr(self, f"{modality}_hash")(self.attend(self.features(modality, x)))
