"""The paper's dual-subspace model (`ours`) and its three Table 4 ablations.

Paper: "Learning Explicit and Implicit Dual Common Subspaces for Audio-visual Cross-modal
Retrieval" (Zeng et al., ACM TOMM), the seed paper of this project (METHODS.md, "The paper's
model"). Per modality an explicit net and an implicit net:

- explicit subspace: f(a) 128→1024→1024→10 and g(v) 1024→1024→2048→10, trained by
  **L_corr** (Eq. 2), the DCCA objective −Σ singular values of Σaa^{-1/2} Σav Σvv^{-1/2}
  (``losses.dcca_loss``: centred batch, r = 1e-4, 10×10 algebra in float64 via eigh);
- implicit subspace: ψ(a) 128→1024→1024→C and τ(v) 1024→1024→2048→C (C = classes seen in
  ``fit``), trained by **L_dis** (Eq. 3), mean_i ‖ψ(a_i) − y_i‖₂ + mean_i ‖τ(v_i) − y_i‖₂ with
  y one-hot, so the implicit output doubles as a label prediction;
- **L_cons** (Eqs. 4–5), the domain-separation "difference loss" on the batch output matrices Q,
  **per modality** m ∈ {audio, visual}: ‖(Q_ex^m)ᵀ Q_im^m‖²_F (Eq. 4, two terms — never one term
  over rows stacked across modalities, where the audio and visual products can cancel), plus the
  implicit audio–visual term ‖(Q_im^a)ᵀ Q_im^v‖²_F (Eq. 5).
  Normalisation (``cons_form="correlation"``, the default): every Q has its columns centred and
  scaled to unit L2 norm, so each product is a matrix of Pearson cross-correlations and the loss
  is the sum of their squares — independent of batch size and of the outputs' scale, and alive:
  its gradient on the outputs is of the same order as L_corr's, so β = 0.001 is a measurable
  share of the total (the per-epoch history records each term's gradient norm; see
  ``GRADIENT_COLUMNS``). ``cons_form="frobenius"`` is the raw literal sum of squares of the raw
  outputs' products. (An earlier reading — row-normalised, product divided by the batch size,
  averaged over entries — had a gradient ≈ 1e-4 of α·L_dis's, which made β inert.)
- total **L = L_corr + α L_dis + β L_cons**, α = 0.01, β = 0.001 (the paper's best of its
  Fig. 7 grid).

Inputs are z-scored with training statistics; hidden layers are ReLU (``activation="sigmoid"``
as the paper's option), outputs linear. The paper optimises with SGD: ``optimizer="sgd"`` (with
``momentum``) is the `paper` training budget's setting (``avcmr.methods.budgets``); the class
default is Adam (lr 1e-3), which reaches the plateau in far fewer steps and is what the CPU-sized
`quick` budget uses. Note: the explicit and implicit nets are disjoint, so with Adam α mostly
cancels (Adam divides each gradient by its running scale).

Fusion after training: per modality, z-score the explicit and the implicit output blocks with
training statistics, concatenate [explicit | implicit] (10 + C dims), fit a regularised linear CCA
(r = 1e-4, 10 components) on the training pairs, embed, and retrieve by cosine.

Ablations (Table 4), as the paper's §5.2.2 / §5.2.4 define them — all three have the same
output blocks and the same fusion as `ours`:

- `explicit` (Explicit-space): the same four nets, L = L_corr + β L_cons ("α = 0, our model is the
  explicit-space model"); the implicit nets only receive L_cons's gradient;
- `implicit` (Implicit-space): the same four nets, L = α L_dis + β L_cons; the explicit nets only
  receive L_cons's gradient;
- `ex_im_share` (Ex-Im-share): "the same modality shares the same NN structures for two
  subspaces and utilizes the same loss function with our model": one trunk per modality
  (audio 128→1024→1024, visual 1024→1024→2048) feeding a 10-D explicit head and a C-D implicit
  head, L = L_corr + α L_dis + β L_cons.

The paper's open readings are options (README, "The paper's open readings"; first value the
default): ``cons_form`` (correlation | frobenius), ``dis_form`` (row_mean | frobenius_over_n, Eq. 3
as written), ``selection`` (holdout_best | fixed_epochs: every training pair, the last epoch),
``ablation_nets`` (all | own: `explicit` / `implicit` build, train and fuse only their own pair of
nets; no effect on `ours` and `ex_im_share`), ``implicit_dim`` ("classes" | an integer: the
implicit width, with ``class_targets`` as the targets) and ``fusion_fit`` (train | holdout: the
fusion CCA fitted on the held-out pairs' outputs). ``training_precision="bfloat16"`` runs the
networks' forward and backward passes under bfloat16 autocast (weights, optimiser and losses stay
float32, L_corr's algebra float64); the rows of such a run say "config sets training_precision".

Model selection: a stratified ``validation_fraction`` of the *training* pairs is held out of the
gradient steps; every ``validation_interval`` epochs the fusion head is fitted on
``validation_reference_pairs`` training pairs and the average MAP (a→v, v→a; ties in arbitrary
order, as real-valued scores rarely tie) on the held-out pairs is recorded; the best such epoch's
weights are kept, and training stops after ``patience`` epochs without improvement (None: run
every epoch). The test set is never seen. The final head is fitted on all training pairs.

Speed: the training pairs stay on the device; per-step losses are accumulated on the device and
read once per epoch; the gradient norms of the loss terms are measured on one batch per epoch.

Simplifications: one learning rate for all nets; a batch whose loss is not finite (an
ill-conditioned covariance) is skipped rather than stepped on and counted in
``n_skipped_batches_`` (this costs one device→host read per step).
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

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.linear_cca import LinearCCA
from avcmr.methods.losses import dcca_loss
from avcmr.methods.model_selection import (
    BestEpoch,
    count_parameters,
    stratified_validation_split_keep_one,
    validation_map_on_device,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    TRAINING_PRECISIONS,
    Standardizer,
    activation_layer,
    make_optimizer,
    minibatches,
    mlp,
    pick_device,
    seed_everything,
    to_tensor,
    training_autocast,
)

log = logging.getLogger(__name__)

LOSS_TERMS = ("total", "corr", "dis", "cons")
# Per-epoch gradient norms (on one batch) of each *weighted* term w.r.t. the four output blocks.
GRADIENT_COLUMNS = ("grad_corr", "grad_dis", "grad_cons")
OUTPUT_BLOCKS = ("explicit_audio", "implicit_audio", "explicit_visual", "implicit_visual")


# -- the loss terms (Eqs. 2–5) -----------------------------------------------------------------
# The paper's open readings, each a named option of the four estimators (README, "The paper's open
# readings"); the first of each is the default.
CONS_FORMS = ("correlation", "frobenius")
DIS_FORMS = ("row_mean", "frobenius_over_n")
SELECTIONS = ("holdout_best", "fixed_epochs")
ABLATION_NETS = ("all", "own")
FUSION_FITS = ("train", "holdout")


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


# -- networks -----------------------------------------------------------------------------------
class SeparateNets(nn.Module):
    """One modality's explicit and implicit nets, disjoint (`ours`, `explicit`, `implicit`);
    ``blocks`` names the nets built (an ablation trained with ``ablation_nets="own"`` has one)."""

    def __init__(self, input_size: int, hidden: Sequence[int], explicit_dim: int, implicit_dim: int, activation: str,
                 blocks: Sequence[str] = ("explicit", "implicit")):  # fmt: skip
        super().__init__()
        self.explicit = mlp([input_size, *hidden, explicit_dim], activation=activation) if "explicit" in blocks else None
        self.implicit = mlp([input_size, *hidden, implicit_dim], activation=activation) if "implicit" in blocks else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return (None if self.explicit is None else self.explicit(x),
                None if self.implicit is None else self.implicit(x))  # fmt: skip


class SharedTrunk(nn.Module):
    """One modality's trunk shared by a 10-D explicit head and a C-D implicit head (`ex_im_share`)."""

    def __init__(self, input_size: int, hidden: Sequence[int], explicit_dim: int, implicit_dim: int, activation: str,
                 blocks: Sequence[str] = ("explicit", "implicit")):  # fmt: skip
        super().__init__()
        # mlp() leaves its last layer linear; the trunk's last hidden layer needs its activation too.
        self.trunk = nn.Sequential(*mlp([input_size, *hidden], activation=activation), activation_layer(activation))
        self.explicit = nn.Linear(hidden[-1], explicit_dim)
        self.implicit = nn.Linear(hidden[-1], implicit_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = self.trunk(x)
        return self.explicit(shared), self.implicit(shared)


# -- the estimator ------------------------------------------------------------------------------
DEFAULT_EPOCHS = 3


class _DualSubspaceFamily(RetrievalMethod):
    """Training loop, validation-based model selection and the CCA fusion shared by the four
    variants; a variant fixes its loss weights (``_corr_weight``, ``_alpha``) and its networks
    (``_network_class``).

    Learned attributes: ``classes_``, ``device_`` (the device actually used), ``audio_scaler_`` /
    ``visual_scaler_`` (input z-scoring), ``networks_`` (``nn.ModuleDict`` with ``audio`` and
    ``visual``, best epoch's weights), ``output_scalers_`` and ``cca_`` (the fusion head),
    ``history_`` (one dict per epoch: ``epoch``, ``steps`` (cumulative), ``total``, ``corr``,
    ``dis``, ``cons`` — unweighted averages over the epoch's batches —, ``grad_corr``,
    ``grad_dis``, ``grad_cons`` — norms of each weighted term's gradient on the outputs, on the
    epoch's last batch — and ``val_map`` on validated epochs), ``best_epoch_``, ``n_steps_``,
    ``epoch_seconds_`` and ``n_skipped_batches_``.
    """

    _network_class: type[nn.Module] = SeparateNets

    def __init__(
        self,
        explicit_dim: int = 10,
        alpha: float = 0.01,
        beta: float = 0.001,
        cons_form: str = "correlation",
        dis_form: str = "row_mean",
        selection: str = "holdout_best",
        ablation_nets: str = "all",
        implicit_dim: int | str = "classes",
        fusion_fit: str = "train",
        training_precision: str = "float32",
        audio_hidden: Sequence[int] = (1024, 1024),
        visual_hidden: Sequence[int] = (1024, 2048),
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 800,
        epochs: int = DEFAULT_EPOCHS,
        validation_fraction: float = 0.1,
        validation_interval: int = 1,
        patience: int | None = 5,
        validation_reference_pairs: int = 2048,
        corr_reg: float = 1e-4,
        cca_components: int = 10,
        cca_reg: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ):
        super().__init__(random_state=random_state)
        self.explicit_dim = explicit_dim
        self.alpha = alpha
        self.beta = beta
        self.cons_form = cons_form
        self.dis_form = dis_form
        self.selection = selection
        self.ablation_nets = ablation_nets
        self.implicit_dim = implicit_dim
        self.fusion_fit = fusion_fit
        self.training_precision = training_precision
        self.audio_hidden = audio_hidden
        self.visual_hidden = visual_hidden
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.patience = patience
        self.validation_reference_pairs = validation_reference_pairs
        self.corr_reg = corr_reg
        self.cca_components = cca_components
        self.cca_reg = cca_reg
        self.device = device

    # -- the loss weights of a variant ----------------------------------------------------------
    @property
    def _corr_weight(self) -> float:
        return 1.0

    @property
    def _alpha(self) -> float:
        return self.alpha

    @property
    def _blocks(self) -> tuple[str, ...]:
        """The subspaces whose nets are built, trained and fused."""
        return ("explicit", "implicit")

    def _batch_losses(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return dual_subspace_losses(
            outputs, targets, self._corr_weight, self._alpha, self.beta, self.corr_reg, self.cons_form, self.dis_form
        )

    def _check_options(self) -> None:
        for name, allowed in (("cons_form", CONS_FORMS), ("dis_form", DIS_FORMS), ("selection", SELECTIONS),
                              ("ablation_nets", ABLATION_NETS), ("fusion_fit", FUSION_FITS),
                              ("training_precision", TRAINING_PRECISIONS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.implicit_dim != "classes" and not (isinstance(self.implicit_dim, int) and self.implicit_dim >= 1):
            raise ValueError(f"implicit_dim must be 'classes' or a positive integer, got {self.implicit_dim!r}")
        if self.fusion_fit == "holdout" and not self.validation_fraction:
            raise ValueError("fusion_fit='holdout' fits the fusion head on held-out pairs: validation_fraction must be > 0")

    def _implicit_size(self, n_classes: int) -> int:
        return n_classes if self.implicit_dim == "classes" else int(self.implicit_dim)

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, audio, visual, labels) -> _DualSubspaceFamily:
        fit_together([self], audio, visual, labels)
        return self

    @staticmethod
    def fit_seeds(models, audio, visual, labels) -> list:
        """Fit models that differ only in ``random_state`` together (:func:`fit_together`)."""
        return fit_together(models, audio, visual, labels)

    def _start(self, audio, visual, labels) -> _TrainingRun:
        """Everything a fit needs before its first epoch: the validation split, input scaling, the
        pairs on the device, the seeded networks (built right after seeding, as their initial
        weights come from torch's global generator), the optimiser and the batch-order generator."""
        audio, visual, labels = check_training_data(audio, visual, labels)
        self._check_options()
        self.classes_, class_index = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the dual-subspace model needs at least two classes")
        if int(self.validation_interval) < 1:
            raise ValueError(f"validation_interval must be ≥ 1, got {self.validation_interval}")
        generator = seed_everything(self.random_state)
        device = pick_device(self.device)
        self.device_ = str(device)
        select = self.selection == "holdout_best"
        # fixed_epochs trains on every pair, unless the fusion head needs held-out ones.
        holdout = self.validation_fraction if select or self.fusion_fit == "holdout" else 0.0
        fit_rows, validation_rows = stratified_validation_split_keep_one(class_index, holdout, self.random_state)
        self.held_out_rows_ = validation_rows

        self.audio_scaler_ = Standardizer().fit(audio[fit_rows])
        self.visual_scaler_ = Standardizer().fit(visual[fit_rows])
        # All pairs on the device once: batches are gathered there, never copied per step.
        all_audio = to_tensor(self.audio_scaler_.transform(audio), device)
        all_visual = to_tensor(self.visual_scaler_.transform(visual), device)
        fit_index = torch.as_tensor(fit_rows, device=device)
        implicit_size = self._implicit_size(len(self.classes_))
        self.class_targets_ = class_targets(len(self.classes_), implicit_size)
        fit_targets = torch.as_tensor(self.class_targets_[class_index[fit_rows]], dtype=torch.float32, device=device)

        networks = self._build_networks(audio.shape[1], visual.shape[1], implicit_size).to(device)
        optimizer = self._make_optimizer(networks.parameters())
        validation_index = torch.as_tensor(validation_rows, device=device)
        # Where the per-epoch validation head is fitted and scored: on fixed training pairs (cheaper
        # than all) and the held-out pairs, or (fusion_fit="holdout") on one half of the held-out
        # pairs and scored on the other, as the final head will be fitted on held-out pairs.
        if self.fusion_fit == "holdout":
            head_index, scored_index = validation_index[0::2], validation_index[1::2]
        else:
            head_index, scored_index = fit_index[: self.validation_reference_pairs], validation_index

        self.history_ = []
        self.epoch_seconds_ = []
        self.n_skipped_batches_ = 0
        self.n_steps_ = 0
        self.best_epoch_ = 0
        return _TrainingRun(model=self, networks=networks, optimizer=optimizer, generator=generator,
                            all_audio=all_audio, all_visual=all_visual, fit_audio=all_audio[fit_index],
                            fit_visual=all_visual[fit_index], fit_targets=fit_targets, class_index=class_index,
                            validation_index=validation_index, head_index=head_index, scored_index=scored_index,
                            select=select, tracker=BestEpoch({"networks": networks}))  # fmt: skip

    def _end_epoch(self, run: _TrainingRun, epoch: int, record: dict, training_seconds: float) -> None:
        """Validate (when due), keep the best weights, log; mark the run finished at its last epoch
        or when its patience ran out."""
        started = time.perf_counter()
        record = {"epoch": epoch, **record, "steps": self.n_steps_}
        validated = run.select and len(run.scored_index) and (epoch % int(self.validation_interval) == 0
                                                              or epoch == self.epochs)  # fmt: skip
        if validated:
            record["val_map"] = self._validation_map(run.networks, run.all_audio, run.all_visual, run.class_index,
                                                     run.head_index, run.scored_index)  # fmt: skip
            if run.tracker.update(epoch, record["val_map"]):
                self.best_epoch_ = epoch
        elif not run.select or not len(run.scored_index):
            self.best_epoch_ = epoch
        self.history_.append(record)
        self.epoch_seconds_.append(training_seconds + time.perf_counter() - started)
        log.info("%s epoch %d: %s", self.name, epoch, {k: round(v, 6) for k, v in record.items()})
        run.finished = epoch >= self.epochs or bool(
            self.patience is not None and validated and epoch - self.best_epoch_ >= self.patience)

    def _finish(self, run: _TrainingRun) -> None:
        """The selected weights, and the fusion head fitted with them: on all training pairs
        (fusion_fit="train"), or on the held-out pairs, which the nets were not trained on."""
        run.tracker.restore()
        self.networks_ = run.networks.eval()
        head_rows = run.validation_index if self.fusion_fit == "holdout" else slice(None)
        audio_outputs = self._outputs(run.all_audio[head_rows], "audio")
        visual_outputs = self._outputs(run.all_visual[head_rows], "visual")
        self.output_scalers_, self.cca_ = self._fit_head(audio_outputs, visual_outputs)

    def _build_networks(self, audio_size: int, visual_size: int, implicit_size: int) -> nn.ModuleDict:
        return nn.ModuleDict({
            modality: self._network_class(size, hidden, self.explicit_dim, implicit_size, self.activation, self._blocks)
            for modality, size, hidden in (("audio", audio_size, self.audio_hidden),
                                           ("visual", visual_size, self.visual_hidden))
        })  # fmt: skip

    def _make_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return make_optimizer(torch.optim.Adam, parameters, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return make_optimizer(torch.optim.SGD, parameters, lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay)
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")

    @staticmethod
    def _forward(networks: nn.ModuleDict, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
        explicit_audio, implicit_audio = networks["audio"](audio)
        explicit_visual, implicit_visual = networks["visual"](visual)
        outputs = {"explicit_audio": explicit_audio, "implicit_audio": implicit_audio,
                   "explicit_visual": explicit_visual, "implicit_visual": implicit_visual}  # fmt: skip
        return {name: value for name, value in outputs.items() if value is not None}

    @staticmethod
    def _gradient_norms(weighted: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> dict[str, float]:
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

    # -- outputs, head and validation ---------------------------------------------------------
    @torch.no_grad()
    def _outputs(self, scaled: torch.Tensor, modality: str, networks: nn.ModuleDict | None = None,
                 batch_size: int = 4096, to_host: bool = True) -> np.ndarray | torch.Tensor:  # fmt: skip
        """[explicit | implicit] outputs of one modality's nets on z-scored input (a device tensor),
        float64, as a host array (or, ``to_host=False``, a tensor on the device)."""
        networks = self.networks_ if networks is None else networks
        net = networks[modality]
        was_training = net.training
        net.eval()
        blocks = [torch.cat([block for block in net(scaled[start : start + batch_size]) if block is not None], dim=1)
                  for start in range(0, len(scaled), batch_size)]
        net.train(was_training)
        outputs = torch.cat(blocks).double()
        return outputs.cpu().numpy() if to_host else outputs

    def _fit_head(self, audio_outputs: np.ndarray, visual_outputs: np.ndarray):
        scalers = (Standardizer().fit(audio_outputs), Standardizer().fit(visual_outputs))
        cca = LinearCCA(self.cca_components, self.cca_reg).fit(
            scalers[0].transform(audio_outputs), scalers[1].transform(visual_outputs)
        )
        return scalers, cca

    @staticmethod
    def _apply_head(outputs: np.ndarray, scalers, cca: LinearCCA, modality: str) -> np.ndarray:
        if modality == "audio":
            return cca.transform_x(scalers[0].transform(outputs))
        return cca.transform_y(scalers[1].transform(outputs))

    def _validation_map(self, networks, all_audio, all_visual, class_index, head_index, validation_index) -> float:
        """The fusion head fitted on the host (a CCA of 10 + C dimensions), then the held-out pairs
        embedded and ranked on the device, the head applied as one affine map per modality; ties in
        index order (real-valued scores rarely tie). Equal to ranking on the host (a test)."""
        scalers, cca = self._fit_head(
            self._outputs(all_audio[head_index], "audio", networks),
            self._outputs(all_visual[head_index], "visual", networks),
        )
        embeddings = []
        for index, (modality, inputs) in enumerate((("audio", all_audio), ("visual", all_visual))):
            # ((out − μ)/σ − m) W  =  out (W/σ) − (μ/σ + m) W, in float64 on the device.
            mean, weights = (cca.mean_x_, cca.weights_x_) if modality == "audio" else (cca.mean_y_, cca.weights_y_)
            scaled_weights = weights / scalers[index].scale_[:, None]
            offset = -(scalers[index].mean_ / scalers[index].scale_ + mean) @ weights
            outputs = self._outputs(inputs[validation_index], modality, networks, to_host=False)
            device = outputs.device
            embeddings.append(outputs @ torch.as_tensor(scaled_weights, device=device)
                              + torch.as_tensor(offset, device=device))  # fmt: skip
        labels = torch.as_tensor(class_index, device=validation_index.device)[validation_index]
        return validation_map_on_device(*embeddings, labels)

    # -- the retrieval contract ---------------------------------------------------------------
    def _embed(self, features: np.ndarray, modality: str) -> np.ndarray:
        self._check_fitted("networks_")
        scaler = self.audio_scaler_ if modality == "audio" else self.visual_scaler_
        scaled = to_tensor(scaler.transform(features), torch.device(self.device_))
        return self._apply_head(self._outputs(scaled, modality), self.output_scalers_, self.cca_, modality)

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        return self._embed(audio, "audio")

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        return self._embed(visual, "visual")

    def n_parameters(self) -> int:
        """Number of network weights and biases (the linear CCA head is not counted)."""
        self._check_fitted("networks_")
        return count_parameters(self.networks_)


# -- training, one estimator or several seeds together -----------------------------------------
@dataclass(eq=False)
class _TrainingRun:
    """One estimator's fit in progress (``_DualSubspaceFamily._start``)."""

    model: _DualSubspaceFamily
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


class _BothModalities(nn.Module):
    """The four output blocks of a ModuleDict of nets as one module call, for ``functional_call``."""

    def __init__(self, networks: nn.ModuleDict):
        super().__init__()
        self.networks = networks

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
        return _DualSubspaceFamily._forward(self.networks, audio, visual)


def fit_together(models: Sequence[_DualSubspaceFamily], audio, visual, labels) -> list[_DualSubspaceFamily]:
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
    template = _BothModalities(copy.deepcopy(runs[0].networks).to("meta")) if len(runs) > 1 else None
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


def _forward_runs(steps: list[tuple[_TrainingRun, torch.Tensor]], template: _BothModalities | None
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


def _train_epoch(runs: list[_TrainingRun], template: _BothModalities | None) -> list[dict[str, float]]:
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


# -- the four registered variants -------------------------------------------------------------
@register("ours")
class DualSubspace(_DualSubspaceFamily):
    """`ours`: explicit (f, g) + implicit (ψ, τ) subspaces, L = L_corr + α L_dis + β L_cons, fused
    by linear CCA; see the module docstring for the equations and defaults."""


@register("explicit")
class ExplicitSpace(_DualSubspaceFamily):
    """`explicit` (Table 4, Explicit-space): `ours` with α = 0, i.e. L = L_corr + β L_cons on the
    same four nets, same fusion. ``alpha`` is accepted for a uniform config but ignored."""

    @property
    def _alpha(self) -> float:
        return 0.0

    @property
    def _blocks(self) -> tuple[str, ...]:
        return ("explicit",) if self.ablation_nets == "own" else ("explicit", "implicit")


@register("implicit")
class ImplicitSpace(_DualSubspaceFamily):
    """`implicit` (Table 4, Implicit-space): L = α L_dis + β L_cons on the same four nets (no
    L_corr), same fusion."""

    @property
    def _corr_weight(self) -> float:
        return 0.0

    @property
    def _blocks(self) -> tuple[str, ...]:
        return ("implicit",) if self.ablation_nets == "own" else ("explicit", "implicit")


@register("ex_im_share")
class ExplicitImplicitShared(_DualSubspaceFamily):
    """`ex_im_share` (Table 4, Ex-Im-share): one trunk per modality feeding the 10-D explicit and
    the C-D implicit head, the full loss L = L_corr + α L_dis + β L_cons, same fusion."""

    _network_class = SharedTrunk
