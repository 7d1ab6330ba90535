"""The dual-subspace model's loss terms (Eqs. 2–5 of Zeng et al.) and the options that select
the paper's open readings of them.

L_corr is ``avcmr.methods.losses.dcca_loss``; here L_dis (:func:`discriminative_loss`), L_cons
(:func:`consistency_loss`, built from :func:`orthogonality_penalty`), one batch's weighted total
(:func:`dual_subspace_losses`), the implicit block's class targets (:func:`class_targets`) and the
gradient norms of the weighted terms on the output blocks (:func:`output_gradient_norms`). The
estimators that use them, and the equations in full, are in ``avcmr.methods.dual_subspace``.

L_cons's normalisation (``cons_form="correlation"``, the default): every Q has its columns centred
and scaled to unit L2 norm, so each product is a matrix of Pearson cross-correlations and the loss
is the sum of their squares — independent of batch size and of the outputs' scale, and alive: its
gradient on the outputs is of the same order as L_corr's, so β = 0.001 is a measurable share of the
total (the per-epoch history records each term's gradient norm; see ``GRADIENT_COLUMNS``).
``cons_form="frobenius"`` is the raw literal sum of squares of the raw outputs' products. (An
earlier reading — row-normalised, product divided by the batch size, averaged over entries — had
a gradient ≈ 1e-4 of α·L_dis's, which made β inert.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avcmr.methods.losses import dcca_loss

LOSS_TERMS = ("total", "corr", "dis", "cons")
# Per-epoch gradient norms (on one batch) of each *weighted* term w.r.t. the four output blocks.
GRADIENT_COLUMNS = ("grad_corr", "grad_dis", "grad_cons")
OUTPUT_BLOCKS = ("explicit_audio", "implicit_audio", "explicit_visual", "implicit_visual")

# The paper's open readings, each a named option of the four estimators (docs/methods.md,
# "The paper's open readings"); the first of each is the default.
CONS_FORMS = ("correlation", "frobenius")
DIS_FORMS = ("row_mean", "frobenius_over_n")
SELECTIONS = ("holdout_best", "fixed_epochs")
ABLATION_NETS = ("all", "own")
FUSION_FITS = ("train", "holdout")


# -- the loss terms (Eqs. 2–5) -----------------------------------------------------------------
def discriminative_loss(implicit_audio: torch.Tensor | None, implicit_visual: torch.Tensor | None,
                        targets: torch.Tensor, form: str = "row_mean") -> torch.Tensor:
    """L_dis (Eq. 3) over the implicit blocks given (None: absent), y the class targets (one-hot).

    ``row_mean``: mean_i ‖ψ(a_i) − y_i‖₂ + mean_i ‖τ(v_i) − y_i‖₂ (the mean of row norms);
    ``frobenius_over_n``: (1/n)‖ψ(A) − Y‖_F + (1/n)‖τ(V) − Y‖_F, the equation's literal form
    (≈ 1/√n of the first for rows of similar error, so α weighs it differently)."""
    total = targets.new_zeros(())
    for block in (implicit_audio, implicit_visual):
        if block is None:
            continue
        difference = block - targets.to(block.dtype)
        if form == "row_mean":
            total = total + torch.linalg.vector_norm(difference, dim=1).mean()
        elif form == "frobenius_over_n":
            total = total + torch.linalg.matrix_norm(difference) / len(difference)
        else:
            raise ValueError(f"dis_form must be one of {', '.join(DIS_FORMS)}, got {form!r}")
    return total


def _standardise_columns(matrix: torch.Tensor) -> torch.Tensor:
    """Columns centred and scaled to unit L2 norm (a constant column stays zero)."""
    centred = matrix - matrix.mean(dim=0, keepdim=True)
    return nn.functional.normalize(centred, dim=0)


def orthogonality_penalty(left: torch.Tensor, right: torch.Tensor, form: str = "correlation") -> torch.Tensor:
    """‖leftᵀ right‖²_F: ``frobenius`` on the raw matrices (the equation as written), ``correlation``
    on column-standardised ones, i.e. the sum of squared Pearson correlations between the columns
    of ``left`` and those of ``right`` (free of the batch size and of the outputs' scale)."""
    if form == "correlation":
        left, right = _standardise_columns(left), _standardise_columns(right)
    elif form != "frobenius":
        raise ValueError(f"cons_form must be one of {', '.join(CONS_FORMS)}, got {form!r}")
    return (left.T @ right).square().sum()


def consistency_loss(
    explicit_audio: torch.Tensor | None,
    explicit_visual: torch.Tensor | None,
    implicit_audio: torch.Tensor | None,
    implicit_visual: torch.Tensor | None,
    form: str = "correlation",
) -> torch.Tensor:
    """L_cons (Eqs. 4–5), per modality: ‖Q_ex^aᵀQ_im^a‖²_F + ‖Q_ex^vᵀQ_im^v‖²_F + ‖Q_im^aᵀQ_im^v‖²_F;
    a term whose blocks are not both given (None: a net that the variant does not train) is left
    out, and with none left the loss is 0."""
    pairs = ((explicit_audio, implicit_audio), (explicit_visual, implicit_visual), (implicit_audio, implicit_visual))
    terms = [orthogonality_penalty(left, right, form) for left, right in pairs if left is not None and right is not None]
    if not terms:
        present = next(block for block in (explicit_audio, explicit_visual, implicit_audio, implicit_visual)
                       if block is not None)
        return present.new_zeros(())
    return torch.stack(terms).sum()


def dual_subspace_losses(
    outputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    corr_weight: float = 1.0,
    alpha: float = 0.01,
    beta: float = 0.001,
    corr_reg: float = 1e-4,
    cons_form: str = "correlation",
    dis_form: str = "row_mean",
) -> dict[str, torch.Tensor]:
    """One batch's terms and total L = corr_weight·L_corr + α L_dis + β L_cons (``ours``: 1, α, β;
    `explicit`: α = 0; `implicit`: corr_weight = 0). ``outputs`` maps the ``OUTPUT_BLOCKS`` a
    variant has to tensors; a term without its blocks is 0 (``ablation_nets="own"``)."""
    block = {name: outputs.get(name) for name in OUTPUT_BLOCKS}
    zero = next(value for value in outputs.values()).new_zeros(())
    has_explicit = block["explicit_audio"] is not None and block["explicit_visual"] is not None
    corr = dcca_loss(block["explicit_audio"], block["explicit_visual"], reg=corr_reg) if has_explicit else zero
    dis = discriminative_loss(block["implicit_audio"], block["implicit_visual"], targets, dis_form)
    cons = consistency_loss(block["explicit_audio"], block["explicit_visual"], block["implicit_audio"],
                            block["implicit_visual"], cons_form)  # fmt: skip
    weighted = {"corr": corr_weight * corr, "dis": alpha * dis, "cons": beta * cons}
    return {"total": weighted["corr"] + weighted["dis"] + weighted["cons"], "corr": corr, "dis": dis, "cons": cons,
            "weighted": weighted}  # fmt: skip


def class_targets(n_classes: int, implicit_dim: int) -> np.ndarray:
    """The implicit block's target per class (rows), ``implicit_dim`` wide: the one-hot vector,
    zero-padded when the block is wider than the classes; with fewer dimensions than classes (the
    paper's 10-D implicit space on AVE's 15 classes, a reading) unit-length rows of a fixed
    orthogonal matrix's first ``implicit_dim`` columns, so classes keep distinct, equally long
    targets (seed 0: the same for every fit)."""
    if implicit_dim >= n_classes:
        return np.eye(n_classes, implicit_dim)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((n_classes, n_classes)))
    codes = rotation[:, :implicit_dim]
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def output_gradient_norms(weighted: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖∂(weighted term)/∂(all four output blocks)‖₂ per term (the loss graph only, not the nets)."""
    blocks = [outputs[name] for name in OUTPUT_BLOCKS if name in outputs]
    norms = {}
    for term, value in weighted.items():
        if not value.requires_grad:
            norms[f"grad_{term}"] = 0.0
            continue
        grads = torch.autograd.grad(value, blocks, retain_graph=True, allow_unused=True)
        squares = [g.double().square().sum() for g in grads if g is not None]
        norms[f"grad_{term}"] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms
