"""`dcca`: Deep CCA (Andrew, Arora, Bilmes & Livescu, ICML 2013).

Two MLPs f(a) (128 → 1024 → 1024 → 1024 → 10) and g(v) (1024 → … → 10), sigmoid hidden layers and
linear outputs, are trained to maximise the total canonical correlation of their outputs on each
minibatch (the DCCA objective of Andrew et al.; METHODS.md L_corr):

    Σ_ff = H̃_fᵀH̃_f/(n−1) + r·I,  Σ_gg likewise,  Σ_fg = H̃_fᵀH̃_g/(n−1),
    T = Σ_ff^{-1/2} Σ_fg Σ_gg^{-1/2},   loss = −‖T‖_* (sum of singular values, r = 1e-4),

implemented by ``losses.dcca_loss`` (float64 eigh), plus the L2 weight penalty l2·Σ‖W‖² on every
dense kernel (1e-5, as the Keras kernel regulariser of the reference implementation; biases are
not penalised). RMSprop (lr 1e-3, ρ = 0.9, ε = 1e-7: the Keras defaults of the reference code),
batch 800. After training, a regularised linear CCA (r = 1e-4, 10 components) is fitted on the
network outputs of all training pairs (as Andrew et al. do) and test items are embedded through it;
retrieval by cosine.

Choices and simplifications:
- inputs are z-scored with training statistics (sigmoid units saturate on raw features);
- model selection: a stratified validation split (``validation_fraction``) is carved from the
  *training* pairs; after every epoch the validation loss (−total correlation of the validation
  outputs) is computed, the best epoch's weights are restored and training stops after ``patience``
  epochs without improvement. The final linear CCA uses all training pairs.
- ``epochs`` defaults to 3, not the paper's 100: one epoch of these 5.3 M-parameter towers on the
  22,482 VEGAS pairs costs ≈ 12 CPU-seconds (one thread; measured in benchmarks/bench_baselines.py)
  and the project must train all its models in minutes. Set ``epochs: 100`` in the config on a GPU
  for the paper's schedule.

This module also holds the small training helpers (`stratified_validation_split`, `l2_penalty`,
`train_towers`, `torch_threads`) that `c_dcca` and `tnn_c_cca` share.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import RetrievalMethod, check_training_data
from avcmr.methods.linear_cca import LinearCCA
from avcmr.methods.losses import canonical_correlations, dcca_loss
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


def stratified_validation_split(labels: np.ndarray, fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``fraction`` of every class, seeded; no validation if 0."""
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {fraction}")
    all_indices = np.arange(len(labels))
    if fraction == 0.0:
        return all_indices, all_indices[:0]
    rng = np.random.default_rng(seed)
    validation = []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        validation.append(members[: int(round(fraction * len(members)))])
    validation = np.sort(np.concatenate(validation))
    return np.setdiff1d(all_indices, validation), validation


def l2_penalty(modules: Iterable[nn.Module]) -> torch.Tensor:
    """Σ‖W‖² over the weight matrices of every ``nn.Linear`` (Keras ``kernel_regularizer=l2``)."""
    terms = [layer.weight.pow(2).sum() for module in modules for layer in module.modules() if isinstance(layer, nn.Linear)]
    return torch.stack(terms).sum()


def train_towers(
    nets: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    epoch_batches: Callable[[int], Iterable[torch.Tensor]],
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validation_loss: Callable[[], float] | None,
    epochs: int,
    patience: int,
    name: str,
) -> tuple[list[dict[str, float]], int]:
    """Minibatch training with best-epoch restore and early stopping on a validation loss.

    ``epoch_batches(epoch)`` yields index tensors, ``batch_loss(indices)`` returns the scalar to
    minimise, ``validation_loss()`` (nets in eval mode, no grad) the model-selection criterion.
    Updates with a non-finite loss or gradient are skipped and counted (``skipped_batches``).
    Returns (history, best epoch); the nets hold the best epoch's weights afterwards.
    """
    parameters = [p for net in nets for p in net.parameters() if p.requires_grad]
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = np.inf, 0, None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for net in nets:
            net.train()
        losses, n_skipped = [], 0
        for indices in epoch_batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(indices)
            loss.backward()
            # A degenerate batch (e.g. repeated covariance eigenvalues in the eigh backward) can give
            # non-finite gradients; skip that update rather than poison the weights.
            if not _finite_step(loss, parameters):
                n_skipped += 1
                continue
            optimizer.step()
            losses.append(loss.item())
        record = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"), "skipped_batches": n_skipped}
        if validation_loss is not None:
            for net in nets:
                net.eval()
            with torch.no_grad():
                record["val_loss"] = float(validation_loss())
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        log.info("%s epoch %d/%d: %s", name, epoch, epochs, record)
        criterion = record.get("val_loss", record["loss"])
        if criterion < best_loss:
            best_loss, best_epoch = criterion, epoch
            best_state = [{k: v.detach().clone() for k, v in net.state_dict().items()} for net in nets]
        elif validation_loss is not None and epoch - best_epoch >= patience:
            log.info("%s: early stop after epoch %d (best %d)", name, epoch, best_epoch)
            break
    if best_state is not None:
        for net, state in zip(nets, best_state, strict=True):
            net.load_state_dict(state)
    for net in nets:
        net.eval()
    return history, best_epoch


def _finite_step(loss: torch.Tensor, parameters: Sequence[torch.Tensor]) -> bool:
    gradients = [p.grad.sum() for p in parameters if p.grad is not None]
    return bool(torch.isfinite(loss).item() and (not gradients or torch.isfinite(torch.stack(gradients).sum()).item()))


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (None: leave it alone).

    Small networks (`c_dcca`, `tnn_c_cca`) run faster single-threaded: their matrices are too small
    to amortise the thread pool, and on a shared 2-core machine a spinning second thread can make
    every step an order of magnitude slower.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def count_parameters(*nets: nn.Module) -> int:
    return sum(p.numel() for net in nets for p in net.parameters())


@register("dcca")
class DeepCCA(RetrievalMethod):
    def __init__(
        self,
        hidden_sizes: Sequence[int] = (1024, 1024, 1024),
        n_outputs: int = 10,
        activation: str = "sigmoid",
        learning_rate: float = 1e-3,
        rmsprop_rho: float = 0.9,
        l2: float = 1e-5,
        batch_size: int = 800,
        epochs: int = 3,
        reg: float = 1e-4,
        n_components: int = 10,
        validation_fraction: float = 0.1,
        patience: int = 10,
        n_threads: int | None = None,
        device: str = "auto",
        random_state: int | None = 0,
    ):
        super().__init__(random_state=random_state)
        self.hidden_sizes = hidden_sizes
        self.n_outputs = n_outputs
        self.activation = activation
        self.learning_rate = learning_rate
        self.rmsprop_rho = rmsprop_rho
        self.l2 = l2
        self.batch_size = batch_size
        self.epochs = epochs
        self.reg = reg
        self.n_components = n_components
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_threads = n_threads
        self.device = device

    def fit(self, audio, visual, labels) -> DeepCCA:
        audio, visual, labels = check_training_data(audio, visual, labels)
        with torch_threads(self.n_threads):
            return self._fit(audio, visual, labels)

    def _fit(self, audio, visual, labels) -> DeepCCA:
        generator = seed_everything(self.random_state)
        device = pick_device(self.device)
        self.device_ = str(device)
        self.audio_scaler_ = Standardizer().fit(audio)
        self.visual_scaler_ = Standardizer().fit(visual)
        audio = self.audio_scaler_.transform(audio)
        visual = self.visual_scaler_.transform(visual)
        train, validation = stratified_validation_split(labels, self.validation_fraction, self.random_state)

        hidden = [int(size) for size in self.hidden_sizes]
        self.audio_net_ = mlp([audio.shape[1], *hidden, self.n_outputs], self.activation).to(device)
        self.visual_net_ = mlp([visual.shape[1], *hidden, self.n_outputs], self.activation).to(device)
        nets = (self.audio_net_, self.visual_net_)
        optimizer = torch.optim.RMSprop(
            [p for net in nets for p in net.parameters()], lr=self.learning_rate, alpha=self.rmsprop_rho, eps=1e-7
        )
        audio_train, visual_train = to_tensor(audio[train], device), to_tensor(visual[train], device)
        audio_val, visual_val = to_tensor(audio[validation], device), to_tensor(visual[validation], device)

        def batch_loss(indices: torch.Tensor) -> torch.Tensor:
            indices = indices.to(device)
            loss = dcca_loss(self.audio_net_(audio_train[indices]), self.visual_net_(visual_train[indices]), self.reg)
            return loss + self.l2 * l2_penalty(nets) if self.l2 > 0 else loss

        def validation_loss() -> float:
            correlations = canonical_correlations(self.audio_net_(audio_val), self.visual_net_(visual_val), self.reg)
            return -correlations.sum().item()

        self.history_, self.best_epoch_ = train_towers(
            nets,
            optimizer,
            lambda epoch: minibatches(len(train), self.batch_size, generator),
            batch_loss,
            validation_loss if len(validation) > 1 else None,
            self.epochs,
            self.patience,
            "dcca",
        )
        self.cca_ = LinearCCA(self.n_components, self.reg).fit(
            predict_in_batches(self.audio_net_, audio, device), predict_in_batches(self.visual_net_, visual, device)
        )
        self.correlations_ = self.cca_.correlations_
        return self

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        outputs = predict_in_batches(self.audio_net_, self.audio_scaler_.transform(audio), torch.device(self.device_))
        return self.cca_.transform_x(outputs)

    def embed_visual(self, visual: np.ndarray) -> np.ndarray:
        self._check_fitted("cca_")
        outputs = predict_in_batches(self.visual_net_, self.visual_scaler_.transform(visual), torch.device(self.device_))
        return self.cca_.transform_y(outputs)

    def n_parameters(self) -> int:
        self._check_fitted("cca_")
        return count_parameters(self.audio_net_, self.visual_net_) + self.cca_.weights_x_.size + self.cca_.weights_y_.size
