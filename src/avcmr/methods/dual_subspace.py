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
  Normalisation (``cons_form="correlation"``, the default): each product is of Pearson
  cross-correlations (Q's columns centred, unit norm); ``"frobenius"``: the raw outputs' products
  (``avcmr.methods.dual_subspace_losses`` says why the first is the default).
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

The paper's open readings are options (docs/methods.md, "The paper's open readings"; first value the
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
Training, one seed or several together: ``avcmr.methods.dual_subspace_training``.

Simplifications: one learning rate for all nets; a batch whose loss is not finite (an
ill-conditioned covariance) is skipped rather than stepped on and counted in
``n_skipped_batches_`` (this costs one device→host read per step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.dual_subspace_losses import (  # noqa: F401 -- re-exported: this module's public names before the split
    ABLATION_NETS,
    CONS_FORMS,
    DIS_FORMS,
    FUSION_FITS,
    SELECTIONS,
    class_targets,
    consistency_loss,
    discriminative_loss,
    dual_subspace_losses,
    orthogonality_penalty,
    output_gradient_norms,
)

# Model files pickle the networks: files saved before the split name these classes under this module.
from avcmr.methods.dual_subspace_networks import SeparateNets, SharedTrunk, output_blocks
from avcmr.methods.dual_subspace_training import TrainingRun, fit_together
from avcmr.methods.linear_cca import LinearCCA
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
    make_optimizer,
    pick_device,
    seed_everything,
    to_tensor,
)

log = logging.getLogger(__name__)


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

    def _start(self, audio, visual, labels) -> TrainingRun:
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
        return TrainingRun(model=self, networks=networks, optimizer=optimizer, generator=generator,
                            all_audio=all_audio, all_visual=all_visual, fit_audio=all_audio[fit_index],
                            fit_visual=all_visual[fit_index], fit_targets=fit_targets, class_index=class_index,
                            validation_index=validation_index, head_index=head_index, scored_index=scored_index,
                            select=select, tracker=BestEpoch({"networks": networks}))  # fmt: skip

    def _end_epoch(self, run: TrainingRun, epoch: int, record: dict, training_seconds: float) -> None:
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

    def _finish(self, run: TrainingRun) -> None:
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

    _forward = staticmethod(output_blocks)

    _gradient_norms = staticmethod(output_gradient_norms)

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
