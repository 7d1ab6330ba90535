"""Losses shared by several neural methods."""

from __future__ import annotations

import torch

# On an accelerator the o×o algebra of L_corr (three float64 eigendecompositions of 10 × 10
# matrices and their backward passes) is all launch latency and solver synchronisation: ≈ 22 ms a
# step of `ours` on an H200 where the networks' arithmetic takes microseconds. It is done on the
# host instead, where it takes microseconds; only the three o×o covariances cross, and the
# correlations go back to the outputs' device (autograd follows both copies).
SMALL_ALGEBRA_ON_HOST = True


def canonical_correlations(h_a: torch.Tensor, h_v: torch.Tensor, reg: float = 1e-4, eigenvalue_floor: float = 1e-9) -> torch.Tensor:
    """Singular values of T = Σaa^{-1/2} Σav Σvv^{-1/2} for one minibatch (Andrew et al. 2013).

    The o×o algebra is done in float64 through ``eigh`` with eigenvalues clamped at
    ``eigenvalue_floor`` (METHODS.md, L_corr); gradients flow back to the float32 network outputs.
    """
    h_a = h_a.double()
    h_v = h_v.double()
    n = h_a.shape[0]
    h_a = h_a - h_a.mean(dim=0, keepdim=True)
    h_v = h_v - h_v.mean(dim=0, keepdim=True)
    eye_a = torch.eye(h_a.shape[1], dtype=h_a.dtype, device=h_a.device)
    eye_v = torch.eye(h_v.shape[1], dtype=h_v.dtype, device=h_v.device)
    cov_aa = h_a.T @ h_a / (n - 1) + reg * eye_a
    cov_vv = h_v.T @ h_v / (n - 1) + reg * eye_v
    cov_av = h_a.T @ h_v / (n - 1)
    device = cov_av.device
    if SMALL_ALGEBRA_ON_HOST and device.type != "cpu":
        cov_aa, cov_vv, cov_av = cov_aa.cpu(), cov_vv.cpu(), cov_av.cpu()
    t = _inverse_sqrt(cov_aa, eigenvalue_floor) @ cov_av @ _inverse_sqrt(cov_vv, eigenvalue_floor)
    # Singular values of T = sqrt(eigenvalues of TᵀT); eigh keeps the gradient well defined.
    return torch.sqrt(torch.clamp(torch.linalg.eigvalsh(t.T @ t), min=eigenvalue_floor)).to(device)


def dcca_loss(h_a: torch.Tensor, h_v: torch.Tensor, reg: float = 1e-4, top_k: int | None = None) -> torch.Tensor:
    """−(sum of canonical correlations) — the nuclear norm of T, or of its ``top_k`` largest."""
    correlations = canonical_correlations(h_a, h_v, reg)
    if top_k is not None:
        correlations = torch.topk(correlations, min(top_k, correlations.numel())).values
    return -correlations.sum()


def _inverse_sqrt(matrix: torch.Tensor, eigenvalue_floor: float) -> torch.Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    eigenvalues = torch.clamp(eigenvalues, min=eigenvalue_floor)
    return eigenvectors @ torch.diag(eigenvalues.rsqrt()) @ eigenvectors.T
