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
- model selection: an unstratified, seeded validation split (``validation_fraction``, uncapped)
  is carved from the *training* pairs — DCCA is unsupervised, so the labels must not choose the
  validation pairs either (the fit is label-blind: tests/test_methods_label_blind.py); after
  every epoch the validation loss (−total correlation of the validation outputs) is computed, the best epoch's weights are restored and training stops after ``patience``
  epochs without improvement. The final linear CCA uses all training pairs.
- ``epochs`` defaults to 3, not the paper's 100: one epoch of these 5.3 M-parameter towers on the
  22,482 VEGAS pairs costs ≈ 12 CPU-seconds (one thread; measured in benchmarks/bench_baselines.py)
  and the project must train all its models in minutes. Set ``epochs: 100`` in the config on a GPU
  for the paper's schedule.

The training helpers that `c_dcca` and `tnn_c_cca` share with it (`train_towers`,
`count_parameters`; `torch_threads`) live in ``model_selection`` and ``torch_utils``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from avcmr.methods.base import RetrievalMethod
from avcmr.methods.linear_cca import LinearCCA
from avcmr.methods.losses import canonical_correlations, dcca_loss
from avcmr.methods.model_selection import (
    count_parameters,
    train_towers,
    unstratified_validation_split,
)
from avcmr.methods.registry import register
from avcmr.methods.torch_utils import (
    Standardizer,
    ThreadLimitedFit,
    minibatches,
    mlp,
    pick_device,
    predict_in_batches,
    seed_everything,
    to_tensor,
)


def l2_penalty(modules: Iterable[nn.Module]) -> torch.Tensor:
    """Σ‖W‖² over the weight matrices of every ``nn.Linear`` (Keras ``kernel_regularizer=l2``)."""
    terms = [layer.weight.pow(2).sum() for module in modules for layer in module.modules() if isinstance(layer, nn.Linear)]
    return torch.stack(terms).sum()


@register("dcca")
class DeepCCA(ThreadLimitedFit, RetrievalMethod):
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
        patience: int | None = 10,
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

    def _fit(self, audio, visual, labels) -> DeepCCA:
        generator = seed_everything(self.random_state)
        device = pick_device(self.device)
        self.device_ = str(device)
        self.audio_scaler_ = Standardizer().fit(audio)
        self.visual_scaler_ = Standardizer().fit(visual)
        audio = self.audio_scaler_.transform(audio)
        visual = self.visual_scaler_.transform(visual)
        # Unsupervised: the labels are validated for shape by ``fit`` and never used.
        train, validation = unstratified_validation_split(
            len(audio), self.validation_fraction, self.random_state, max_pairs=None
        )

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
