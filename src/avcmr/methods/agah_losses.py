"""AGAH's loss terms and its code-map update (paper Sec. 3, official ``err`` and ``update_code_map``).

The batch-all cosine triplet loss (:func:`triplet_all_cosine`), the bit-balance, code-map and
quantisation terms, the critics' WGAN-GP :func:`gradient_penalty`, and the discrete cyclic
coordinate update of the class code words (:func:`update_code_map`). The estimator that combines
them, with the loss weights, is ``avcmr.methods.agah.AGAH``.
"""

from __future__ import annotations

import torch
from torch import autograd, nn
from torch.nn import functional as F


def cosine_distance(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − cos between every source and target row, clamped at 0."""
    return (1.0 - F.normalize(source, dim=1) @ F.normalize(target, dim=1).T).clamp(min=0.0)


def triplet_all_cosine(
    anchor: torch.Tensor,
    anchor_labels: torch.Tensor,
    target: torch.Tensor,
    target_labels: torch.Tensor,
    margin: float,
) -> torch.Tensor:
    """Batch-all triplet loss, summed: Σ_{i,j,k} max(0, d(a_i, t_j) − d(a_i, t_k) + m) over
    label(t_j) = label(a_i) ≠ label(t_k); d = cosine distance; labels are one-hot (or multi-hot)."""
    distance = cosine_distance(anchor, target)
    similar = (anchor_labels @ target_labels.T > 0).float()
    mask = similar[:, :, None] * (1.0 - similar[:, None, :])
    return (mask * (distance[:, :, None] - distance[:, None, :] + margin)).clamp(min=0.0).sum()


def bit_balance_loss(codes: torch.Tensor) -> torch.Tensor:
    """Σ_i 1 / (1 + e^{cos(|h_i|, 1)}) (official ``loss3``)."""
    theta = F.cosine_similarity(codes.abs(), torch.ones_like(codes), dim=1)
    return torch.sigmoid(-theta).sum()


def code_map_loss(
    codes: torch.Tensor, code_map: torch.Tensor, onehot: torch.Tensor
) -> torch.Tensor:
    """Σ ‖h Mᵀ − L (2y − 1)‖²: inner products with the class code words should be ±L."""
    return ((codes @ code_map.T - codes.shape[1] * (2.0 * onehot - 1.0)) ** 2).sum()


def quantization_loss(codes: torch.Tensor) -> torch.Tensor:
    return ((codes - torch.sign(codes)) ** 2).sum()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """WGAN-GP: mean (‖∇ C(x̂)‖ − 1)² at per-element random interpolates x̂ of real and fake."""
    alpha = torch.rand(real.shape, generator=generator).to(real.device)
    interpolates = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    gradients = autograd.grad(critic(interpolates).sum(), interpolates, create_graph=True)[0]
    return ((gradients.norm(2, dim=1) - 1.0) ** 2).mean()


def update_code_map(
    audio_codes: torch.Tensor,
    visual_codes: torch.Tensor,
    code_map: torch.Tensor,
    onehot: torch.Tensor,
) -> torch.Tensor:
    """AGAH's discrete cyclic coordinate update of the class code words M (C × L), bit by bit:
    M[:, k] = sign(Q[:, k] − 2 M_{¬k} (U_{¬k}ᵀ u_k + V_{¬k}ᵀ v_k + M_{¬k}ᵀ m_k)),
    Q = 2L (Yᵀ(U + V) + S M), S = 2I − 1, U, V the sign codes (official ``update_code_map``)."""
    code_map = code_map.clone()
    u, v = torch.sign(visual_codes), torch.sign(audio_codes)
    n_classes, n_bits = code_map.shape
    s = 2.0 * torch.eye(n_classes, dtype=code_map.dtype, device=code_map.device) - 1.0
    q = 2.0 * n_bits * (onehot.T @ (u + v) + s @ code_map)
    gram = u.T @ u + v.T @ v
    for k in range(n_bits):
        others = torch.arange(n_bits, device=code_map.device) != k
        m_others = code_map[:, others]
        correction = m_others @ gram[others, k] + m_others @ (m_others.T @ code_map[:, k])
        code_map[:, k] = torch.sign(q[:, k] - 2.0 * correction)
    return code_map
