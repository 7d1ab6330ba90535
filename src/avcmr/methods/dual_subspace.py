"""The paper's dual-subspace model (`ours`) and its three Table 4 ablations.

Paper: "Learning Explicit and Implicit Dual Common Subspaces for Audio-visual Cross-modal
Retrieval" (Zeng et al., ACM TOMM), the seed paper of this project (METHODS.md, "The paper's
model"). Four separate MLPs, no shared trunk:

- explicit subspace: f(a) 128→1024→1024→10 and g(v) 1024→1024→2048→10, trained by
  **L_corr** (Eq. 2), the DCCA objective −Σ singular values of Σaa^{-1/2} Σav Σvv^{-1/2}
  (``losses.dcca_loss``: centred batch, r = 1e-4, 10×10 algebra in float64 via eigh);
- implicit subspace: ψ(a) 128→1024→1024→C and τ(v) 1024→1024→2048→C (C = classes seen in
  ``fit``), trained by **L_dis** (Eq. 3), mean_i ‖ψ(a_i) − y_i‖₂ + mean_i ‖τ(v_i) − y_i‖₂ with
  y one-hot, so the implicit output doubles as a label prediction;
- **L_cons** (Eqs. 4–5), a domain-separation "difference loss" on the batch outputs:
  ‖Q_exᵀQ_im‖²_F + ‖H_im^aᵀH_im^v‖²_F with Q_ex = [H_ex^a; H_ex^v], Q_im = [H_im^a; H_im^v].
  By default every matrix entering a product has its columns centred and its rows L2-normalised,
  and the squared product entries are averaged — the product is first divided by its number of
  rows, so each entry is a mean over the batch and the loss does not grow with the batch size
  (this normalisation is our reading of "averaged over entries"). ``cons_normalized=False``
  gives the raw literal sum of squares of the raw outputs;
- total **L = L_corr + α L_dis + β L_cons**, α = 0.01, β = 0.001 (the paper's best of its
  Fig. 7 grid).

Inputs are z-scored with training statistics; hidden layers are ReLU (``activation="sigmoid"``
as in the paper's option), outputs linear. The paper trains with SGD; the default here is **Adam**
(lr 1e-3), which reaches the same plateau in far fewer epochs; ``optimizer="sgd"`` (with
``momentum``) is available. Note: the explicit and implicit subnets are disjoint, so L_dis is the
only sizeable loss the implicit nets see; Adam divides each gradient by its running scale, so
α mostly cancels (it only sets L_dis against the tiny β L_cons coupling term).

Fusion after training: per modality, z-score the explicit and the implicit output blocks with
training statistics, concatenate [explicit | implicit] (10 + C dims), fit a regularised linear CCA
(r = 1e-4, 10 components) on the training pairs, embed, and retrieve by cosine.

Model selection: a stratified ``validation_fraction`` of the *training* pairs is held out of the
gradient steps; after each epoch the fusion head is fitted on ``validation_reference_pairs``
training pairs and the average MAP (a→v, v→a; ties in arbitrary order, as real-valued scores
rarely tie) on the held-out pairs is recorded; the best epoch's weights are kept and training
stops after ``patience`` epochs without improvement. The test set is never seen. The final head
is then fitted on all training pairs.

Ablations (Table 4):
- `explicit`: f, g with L_corr only, then linear CCA to 10-D;
- `implicit`: ψ, τ with L_dis + β·‖H_im^aᵀH_im^v‖² (the implicit cross term of L_cons); retrieval
  by cosine on the C-dim outputs, or after linear CCA to 10-D with ``cca_to_10d=True``;
- `ex_im_share`: one MLP per modality with C outputs (audio 128→1024→1024→C, visual
  1024→1024→2048→C) trained by L_corr on its top-10 correlations + α L_dis, then linear CCA to
  10-D (the outputs are z-scored with training statistics before every CCA head).

Simplifications: one learning rate for all four nets; a batch whose loss is not finite (an
ill-conditioned covariance) is skipped rather than stepped on and counted in
``n_skipped_batches_``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

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
    validation_map,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    Standardizer,
    minibatches,
    mlp,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)

log = logging.getLogger(__name__)

LOSS_TERMS = ("total", "corr", "dis", "cons")


# -- the loss terms (Eqs. 2–5) -----------------------------------------------------------------
def discriminative_loss(implicit_audio: torch.Tensor, implicit_visual: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """L_dis (Eq. 3): mean_i ‖ψ(a_i) − y_i‖₂ + mean_i ‖τ(v_i) − y_i‖₂, y one-hot."""
    onehot = onehot.to(implicit_audio.dtype)
    return (
        torch.linalg.vector_norm(implicit_audio - onehot, dim=1).mean()
        + torch.linalg.vector_norm(implicit_visual - onehot, dim=1).mean()
    )


def _centre_and_normalise_rows(matrix: torch.Tensor) -> torch.Tensor:
    centred = matrix - matrix.mean(dim=0, keepdim=True)
    return nn.functional.normalize(centred, dim=1)


def orthogonality_penalty(left: torch.Tensor, right: torch.Tensor, normalized: bool = True) -> torch.Tensor:
    """‖leftᵀ right‖²_F (raw), or with centred, row-normalised inputs the mean over entries of
    (leftᵀ right / n_rows)² — a batch-size-free squared cross-correlation in [0, 1]."""
    if not normalized:
        return (left.T @ right).square().sum()
    product = _centre_and_normalise_rows(left).T @ _centre_and_normalise_rows(right)
    return (product / left.shape[0]).square().mean()


def consistency_loss(
    explicit_audio: torch.Tensor,
    explicit_visual: torch.Tensor,
    implicit_audio: torch.Tensor,
    implicit_visual: torch.Tensor,
    normalized: bool = True,
) -> torch.Tensor:
    """L_cons (Eqs. 4–5): ‖Q_exᵀQ_im‖²_F + ‖H_im^aᵀH_im^v‖²_F, Q = modalities stacked by rows."""
    stacked_explicit = torch.cat([explicit_audio, explicit_visual], dim=0)
    stacked_implicit = torch.cat([implicit_audio, implicit_visual], dim=0)
    return orthogonality_penalty(stacked_explicit, stacked_implicit, normalized) + orthogonality_penalty(
        implicit_audio, implicit_visual, normalized
    )


def dual_subspace_losses(
    explicit_audio: torch.Tensor,
    explicit_visual: torch.Tensor,
    implicit_audio: torch.Tensor,
    implicit_visual: torch.Tensor,
    onehot: torch.Tensor,
    alpha: float = 0.01,
    beta: float = 0.001,
    corr_reg: float = 1e-4,
    cons_normalized: bool = True,
) -> dict[str, torch.Tensor]:
    """The paper's objective on one batch: L = L_corr + α L_dis + β L_cons (float64 total)."""
    corr = dcca_loss(explicit_audio, explicit_visual, reg=corr_reg)
    dis = discriminative_loss(implicit_audio, implicit_visual, onehot)
    cons = consistency_loss(explicit_audio, explicit_visual, implicit_audio, implicit_visual, cons_normalized)
    return {"total": corr + alpha * dis + beta * cons, "corr": corr, "dis": dis, "cons": cons}


# -- shared estimator machinery ---------------------------------------------------------------
class _DualSubspaceFamily(RetrievalMethod):
    """Training loop, validation-based model selection and the CCA head shared by the four
    variants; a variant says which nets it has (``_network_shapes``), how a batch is scored
    (``_batch_losses``) and whether its outputs go through a linear CCA head (``_uses_cca_head``).

    Learned attributes: ``classes_``, ``device_`` (the device actually used), ``audio_scaler_`` /
    ``visual_scaler_`` (input z-scoring), ``networks_`` (an ``nn.ModuleDict``, best epoch's
    weights), ``output_scalers_`` and ``cca_`` (the retrieval head; None for `implicit` without
    CCA), ``history_`` (one dict per epoch: ``epoch``, ``total``, ``corr``, ``dis``, ``cons`` —
    averages over the epoch's training batches, 0.0 for terms a variant does not use — and
    ``val_map`` when a validation split exists), ``best_epoch_``, ``epoch_seconds_`` and
    ``n_skipped_batches_``.
    """

    _uses_cca_head = True

    def __init__(
        self,
        audio_hidden: Sequence[int],
        visual_hidden: Sequence[int],
        activation: str,
        optimizer: str,
        learning_rate: float,
        momentum: float,
        weight_decay: float,
        batch_size: int,
        epochs: int,
        validation_fraction: float,
        patience: int | None,
        validation_reference_pairs: int,
        corr_reg: float,
        cca_components: int,
        cca_reg: float,
        random_state: int | None,
        device: str,
    ):
        super().__init__(random_state=random_state)
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
        self.patience = patience
        self.validation_reference_pairs = validation_reference_pairs
        self.corr_reg = corr_reg
        self.cca_components = cca_components
        self.cca_reg = cca_reg
        self.device = device

    # -- what a variant defines ---------------------------------------------------------------
    def _network_shapes(self, n_classes: int) -> dict[str, tuple[str, int]]:
        """Net name → (modality, output size); audio nets are listed before visual ones."""
        raise NotImplementedError

    def _batch_losses(self, outputs: dict[str, torch.Tensor], onehot: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, audio, visual, labels) -> _DualSubspaceFamily:
        audio, visual, labels = check_training_data(audio, visual, labels)
        self.classes_, class_index = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the dual-subspace model needs at least two classes")
        generator = seed_everything(self.random_state)
        device = pick_device(self.device)
        self.device_ = str(device)
        fit_rows, validation_rows = stratified_validation_split_keep_one(
            class_index, self.validation_fraction, self.random_state
        )

        self.audio_scaler_ = Standardizer().fit(audio[fit_rows])
        self.visual_scaler_ = Standardizer().fit(visual[fit_rows])
        scaled_audio = self.audio_scaler_.transform(audio)
        scaled_visual = self.visual_scaler_.transform(visual)
        fit_audio = to_tensor(scaled_audio[fit_rows], device)
        fit_visual = to_tensor(scaled_visual[fit_rows], device)
        fit_onehot = nn.functional.one_hot(torch.as_tensor(class_index[fit_rows], device=device), len(self.classes_)).float()

        networks = self._build_networks(len(self.classes_)).to(device)
        optimizer = self._make_optimizer(networks.parameters())
        # Fixed training pairs on which the per-epoch validation head is fitted (cheaper than all).
        reference_rows = fit_rows[: self.validation_reference_pairs]

        self.history_ = []
        self.epoch_seconds_ = []
        self.n_skipped_batches_ = 0
        tracker = BestEpoch({"networks": networks})
        self.best_epoch_ = 0
        for epoch in range(1, self.epochs + 1):
            started = time.perf_counter()
            record = self._train_one_epoch(networks, optimizer, fit_audio, fit_visual, fit_onehot, generator)
            record["epoch"] = epoch
            if len(validation_rows):
                record["val_map"] = self._validation_map(
                    networks, scaled_audio, scaled_visual, class_index, reference_rows, validation_rows
                )
                if tracker.update(epoch, record["val_map"]):
                    self.best_epoch_ = epoch
            else:
                self.best_epoch_ = epoch
            self.history_.append(record)
            self.epoch_seconds_.append(time.perf_counter() - started)
            log.info("%s epoch %d: %s", self.name, epoch, {k: round(v, 4) for k, v in record.items()})
            if self.patience is not None and len(validation_rows) and epoch - self.best_epoch_ >= self.patience:
                break
        tracker.restore()
        self.networks_ = networks.eval()

        # The retrieval head is fitted on all training pairs with the selected weights.
        audio_outputs = self._outputs(scaled_audio, "audio")
        visual_outputs = self._outputs(scaled_visual, "visual")
        self.output_scalers_, self.cca_ = self._fit_head(audio_outputs, visual_outputs)
        return self

    def _build_networks(self, n_classes: int) -> nn.ModuleDict:
        networks = {}
        for name, (modality, output_size) in self._network_shapes(n_classes).items():
            input_size = self.audio_scaler_.mean_.size if modality == "audio" else self.visual_scaler_.mean_.size
            hidden = self.audio_hidden if modality == "audio" else self.visual_hidden
            networks[name] = mlp([input_size, *hidden, output_size], activation=self.activation)
        return nn.ModuleDict(networks)

    def _make_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay)
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")

    def _forward(self, networks: nn.ModuleDict, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
        shapes = self._network_shapes(len(self.classes_))
        return {name: net(audio if shapes[name][0] == "audio" else visual) for name, net in networks.items()}

    def _train_one_epoch(self, networks, optimizer, audio, visual, onehot, generator) -> dict[str, float]:
        networks.train()
        sums = dict.fromkeys(LOSS_TERMS, 0.0)
        n_used = 0
        for batch in minibatches(len(audio), self.batch_size, generator):
            batch = batch.to(audio.device)
            losses = self._batch_losses(self._forward(networks, audio[batch], visual[batch]), onehot[batch])
            if not torch.isfinite(losses["total"]):
                self.n_skipped_batches_ += 1
                log.warning("%s: skipped a batch with a non-finite loss", self.name)
                continue
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            for term in LOSS_TERMS:
                sums[term] += float(losses[term].detach()) * len(batch)
            n_used += len(batch)
        if n_used == 0:
            raise RuntimeError(f"{self.name}: every batch of the epoch had a non-finite loss")
        return {term: value / n_used for term, value in sums.items()}

    # -- outputs, head and validation ---------------------------------------------------------
    def _outputs(self, scaled: np.ndarray, modality: str, networks: nn.ModuleDict | None = None) -> np.ndarray:
        """Concatenated outputs of one modality's nets (explicit block first) on z-scored input."""
        networks = self.networks_ if networks is None else networks
        shapes = self._network_shapes(len(self.classes_))
        device = torch.device(self.device_)
        blocks = [predict_in_batches(net, scaled, device) for name, net in networks.items() if shapes[name][0] == modality]
        return np.concatenate(blocks, axis=1)

    def _fit_head(self, audio_outputs: np.ndarray, visual_outputs: np.ndarray):
        if not self._uses_cca_head:
            return None, None
        scalers = (Standardizer().fit(audio_outputs), Standardizer().fit(visual_outputs))
        cca = LinearCCA(self.cca_components, self.cca_reg).fit(
            scalers[0].transform(audio_outputs), scalers[1].transform(visual_outputs)
        )
        return scalers, cca

    @staticmethod
    def _apply_head(outputs: np.ndarray, scalers, cca: LinearCCA | None, modality: str) -> np.ndarray:
        if cca is None:
            return outputs
        if modality == "audio":
            return cca.transform_x(scalers[0].transform(outputs))
        return cca.transform_y(scalers[1].transform(outputs))

    def _validation_map(self, networks, scaled_audio, scaled_visual, class_index, reference_rows, validation_rows) -> float:
        scalers, cca = self._fit_head(
            self._outputs(scaled_audio[reference_rows], "audio", networks),
            self._outputs(scaled_visual[reference_rows], "visual", networks),
        )
        audio_embedding = self._apply_head(self._outputs(scaled_audio[validation_rows], "audio", networks), scalers, cca, "audio")
        visual_embedding = self._apply_head(self._outputs(scaled_visual[validation_rows], "visual", networks), scalers, cca, "visual")
        networks.train()
        # Ties in index order (tie_seed=None): real-valued scores rarely tie.
        return validation_map(audio_embedding, visual_embedding, class_index[validation_rows], tie_seed=None)

    # -- the retrieval contract ---------------------------------------------------------------
    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("networks_")
        outputs = self._outputs(self.audio_scaler_.transform(audio), "audio")
        return self._apply_head(outputs, self.output_scalers_, self.cca_, "audio")

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("networks_")
        outputs = self._outputs(self.visual_scaler_.transform(visual), "visual")
        return self._apply_head(outputs, self.output_scalers_, self.cca_, "visual")

    def n_parameters(self) -> int:
        """Number of network weights and biases (the linear CCA head is not counted)."""
        self._check_fitted("networks_")
        return count_parameters(self.networks_)


# -- the four registered variants -------------------------------------------------------------
DEFAULT_EPOCHS = 3


@register("ours")
class DualSubspace(_DualSubspaceFamily):
    """`ours`: explicit (f, g; L_corr) + implicit (ψ, τ; L_dis) subspaces, L_cons between them,
    fused by linear CCA; see the module docstring for the equations and defaults."""

    def __init__(
        self,
        explicit_dim: int = 10,
        alpha: float = 0.01,
        beta: float = 0.001,
        cons_normalized: bool = True,
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
        patience: int | None = 5,
        validation_reference_pairs: int = 2048,
        corr_reg: float = 1e-4,
        cca_components: int = 10,
        cca_reg: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ):
        super().__init__(
            audio_hidden, visual_hidden, activation, optimizer, learning_rate, momentum, weight_decay,
            batch_size, epochs, validation_fraction, patience, validation_reference_pairs, corr_reg,
            cca_components, cca_reg, random_state, device,
        )  # fmt: skip
        self.explicit_dim = explicit_dim
        self.alpha = alpha
        self.beta = beta
        self.cons_normalized = cons_normalized

    def _network_shapes(self, n_classes):
        return {
            "explicit_audio": ("audio", self.explicit_dim),
            "implicit_audio": ("audio", n_classes),
            "explicit_visual": ("visual", self.explicit_dim),
            "implicit_visual": ("visual", n_classes),
        }

    def _batch_losses(self, outputs, onehot):
        return dual_subspace_losses(
            outputs["explicit_audio"], outputs["explicit_visual"], outputs["implicit_audio"], outputs["implicit_visual"],
            onehot, self.alpha, self.beta, self.corr_reg, self.cons_normalized,
        )  # fmt: skip


@register("explicit")
class ExplicitOnly(_DualSubspaceFamily):
    """`explicit` ablation: f, g trained by L_corr alone (DCCA with the paper's nets), then linear
    CCA to 10-D on the z-scored training outputs."""

    def __init__(
        self,
        explicit_dim: int = 10,
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
        patience: int | None = 5,
        validation_reference_pairs: int = 2048,
        corr_reg: float = 1e-4,
        cca_components: int = 10,
        cca_reg: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ):
        super().__init__(
            audio_hidden, visual_hidden, activation, optimizer, learning_rate, momentum, weight_decay,
            batch_size, epochs, validation_fraction, patience, validation_reference_pairs, corr_reg,
            cca_components, cca_reg, random_state, device,
        )  # fmt: skip
        self.explicit_dim = explicit_dim

    def _network_shapes(self, n_classes):
        return {"explicit_audio": ("audio", self.explicit_dim), "explicit_visual": ("visual", self.explicit_dim)}

    def _batch_losses(self, outputs, onehot):
        corr = dcca_loss(outputs["explicit_audio"], outputs["explicit_visual"], reg=self.corr_reg)
        zero = torch.zeros((), dtype=corr.dtype, device=corr.device)
        return {"total": corr, "corr": corr, "dis": zero, "cons": zero}


@register("implicit")
class ImplicitOnly(_DualSubspaceFamily):
    """`implicit` ablation: ψ, τ trained by L_dis + β‖H_im^aᵀH_im^v‖² (the implicit cross term of
    L_cons); retrieval by cosine on the C-dim outputs, or on a 10-D linear CCA of them when
    ``cca_to_10d`` (Table 4 reports both)."""

    def __init__(
        self,
        beta: float = 0.001,
        cons_normalized: bool = True,
        cca_to_10d: bool = False,
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
        patience: int | None = 5,
        validation_reference_pairs: int = 2048,
        corr_reg: float = 1e-4,
        cca_components: int = 10,
        cca_reg: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ):
        super().__init__(
            audio_hidden, visual_hidden, activation, optimizer, learning_rate, momentum, weight_decay,
            batch_size, epochs, validation_fraction, patience, validation_reference_pairs, corr_reg,
            cca_components, cca_reg, random_state, device,
        )  # fmt: skip
        self.beta = beta
        self.cons_normalized = cons_normalized
        self.cca_to_10d = cca_to_10d

    @property
    def _uses_cca_head(self) -> bool:
        return self.cca_to_10d

    def _network_shapes(self, n_classes):
        return {"implicit_audio": ("audio", n_classes), "implicit_visual": ("visual", n_classes)}

    def _batch_losses(self, outputs, onehot):
        dis = discriminative_loss(outputs["implicit_audio"], outputs["implicit_visual"], onehot)
        cons = orthogonality_penalty(outputs["implicit_audio"], outputs["implicit_visual"], self.cons_normalized)
        zero = torch.zeros((), dtype=dis.dtype, device=dis.device)
        return {"total": dis + self.beta * cons, "corr": zero, "dis": dis, "cons": cons}


@register("ex_im_share")
class ExplicitImplicitShared(_DualSubspaceFamily):
    """`ex_im_share` ablation: one MLP per modality with C outputs serving both subspaces, trained
    by L_corr on its ``corr_top_k`` largest canonical correlations + α L_dis, then linear CCA to
    10-D on the z-scored training outputs."""

    def __init__(
        self,
        alpha: float = 0.01,
        corr_top_k: int = 10,
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
        patience: int | None = 5,
        validation_reference_pairs: int = 2048,
        corr_reg: float = 1e-4,
        cca_components: int = 10,
        cca_reg: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ):
        super().__init__(
            audio_hidden, visual_hidden, activation, optimizer, learning_rate, momentum, weight_decay,
            batch_size, epochs, validation_fraction, patience, validation_reference_pairs, corr_reg,
            cca_components, cca_reg, random_state, device,
        )  # fmt: skip
        self.alpha = alpha
        self.corr_top_k = corr_top_k

    def _network_shapes(self, n_classes):
        return {"shared_audio": ("audio", n_classes), "shared_visual": ("visual", n_classes)}

    def _batch_losses(self, outputs, onehot):
        corr = dcca_loss(outputs["shared_audio"], outputs["shared_visual"], reg=self.corr_reg, top_k=self.corr_top_k)
        dis = discriminative_loss(outputs["shared_audio"], outputs["shared_visual"], onehot)
        zero = torch.zeros((), dtype=corr.dtype, device=corr.device)
        return {"total": corr + self.alpha * dis, "corr": corr, "dis": dis, "cons": zero}
