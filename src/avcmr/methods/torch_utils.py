"""Shared PyTorch plumbing for the neural methods: device choice, seeding, thread count,
minibatches, MLPs."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

# Standardizer lives in base (no torch import); named here too so models pickled before still load.
from avcmr.methods.base import Standardizer, check_training_data  # noqa: F401

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; an explicit ``cuda`` without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but no CUDA GPU is available")
    return torch.device(requested)


def seed_everything(seed: int | None) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator for shuffling on the CPU."""
    seed = 0 if seed is None else int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


# Arithmetic of the training steps: float32, or bfloat16 under autocast (weights, optimiser state and
# the losses stay float32; the matrix products of the networks run in bfloat16, 8 mantissa bits).
TRAINING_PRECISIONS = ("float32", "bfloat16")


def training_autocast(device: torch.device | str, precision: str):
    """The autocast context of one training step for ``precision`` (a no-op for float32)."""
    if precision not in TRAINING_PRECISIONS:
        raise ValueError(f"training_precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {precision!r}")
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def make_optimizer(optimizer_class: type[torch.optim.Optimizer], parameters, **options) -> torch.optim.Optimizer:
    """``optimizer_class(parameters, **options)``, with torch's fused kernel where the class has one
    (Adam, AdamW, SGD): the same update rule in one pass over each parameter tensor instead of a
    kernel per arithmetic operation. On CPU, Adam's step over the dual-subspace nets' 8.7 M
    weights (VEGAS) is ≈ 5× faster fused (benchmarks/README.md); results agree to float rounding.
    Optimisers without a fused kernel (Adamax, RMSprop) are built as asked."""
    if "fused" in inspect.signature(optimizer_class.__init__).parameters:
        options.setdefault("fused", True)
    return optimizer_class(parameters, **options)


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


class ThreadLimitedFit:
    """For methods with an ``n_threads`` parameter: ``fit`` validates the training data, then runs
    the subclass's ``_fit(audio, visual, labels)`` with torch's thread count set to ``n_threads``."""

    def fit(self, audio, visual, labels):
        audio, visual, labels = check_training_data(audio, visual, labels)
        with torch_threads(self.n_threads):
            return self._fit(audio, visual, labels)


def minibatches(n_items: int, batch_size: int, generator: torch.Generator, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Shuffled index batches; a trailing batch smaller than half a batch is merged into the previous
    one unless ``drop_last`` (tiny batches make covariance-based losses ill-conditioned)."""
    order = torch.randperm(n_items, generator=generator)
    starts = list(range(0, n_items, batch_size))
    ends = starts[1:] + [n_items]
    if len(starts) > 1 and ends[-1] - starts[-1] < batch_size // 2:
        starts = starts[:-1]
        ends = ends[:-1] if drop_last else ends[:-2] + [n_items]
    for start, end in zip(starts, ends, strict=True):
        yield order[start:end]


ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def activation_layer(activation: str) -> nn.Module:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]()


def mlp(sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Fully connected net: hidden layers with ``activation`` (and dropout), linear output layer."""
    activation_layer(activation)  # validates the name before any layer is built
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(sizes) - 2:
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)


@torch.no_grad()
def predict_in_batches(net: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 4096) -> np.ndarray:
    net.eval()
    outputs = [net(to_tensor(x[i : i + batch_size], device)).double().cpu().numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, 0))
