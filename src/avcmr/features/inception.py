"""InceptionV3 frame features (Keras applications): 299×299 RGB → 2048-D average-pooled features.

The input side is ``features.frame_size`` (299, the network's own; Keras builds the convolutional
part, with the same weights, for any side ≥ 75, and average pooling gives 2048-D whatever the side).

``include_top=False, pooling="avg"`` gives the ReLU'd last hidden layer; inputs are scaled to
[−1, 1] by ``keras.applications.inception_v3.preprocess_input``. Random mode re-initialises every
convolution kernel with a seeded He-normal draw from numpy (so features are reproducible across
TF versions) and keeps BatchNorm at its neutral initial state.

Inference (:mod:`avcmr.features.inference`): one compiled forward pass of the network with its
BatchNormalization layers folded into the convolutions before them, frames scaled in a
background thread one batch ahead, optional bfloat16 arithmetic (``inference_precision``).
"""

from __future__ import annotations

import numpy as np

from avcmr.features.inference import (
    check_precision,
    compiled_forward,
    fold_batch_norms,
    precision_policy,
    run_batches,
)
from avcmr.features.weights import WeightsSpec, file_sha256


class InceptionExtractor:
    """Load InceptionV3 once, embed many frames in batches: (n, side, side, 3) uint8 → (n, 2048)."""

    def __init__(self, weights: WeightsSpec, batch_size: int = 32, precision: str = "float32",
                 frame_size: int = 299):
        import keras

        self.weights = weights
        self.batch_size = batch_size
        self.precision = check_precision(precision)
        if frame_size < 75:
            raise ValueError(f"InceptionV3 needs frames of at least 75×75 pixels, got {frame_size}")
        self.frame_size = frame_size
        weights_path = None if weights.is_random else str(weights.require("h5", "InceptionV3 weights"))
        # sha256 of the file loaded, for the feature tables' metadata.
        self.weights_sha256 = {} if weights_path is None else {"h5": file_sha256(weights_path)}
        with precision_policy(precision):
            self.model = keras.applications.InceptionV3(
                include_top=False, pooling="avg", weights=weights_path, input_shape=(frame_size, frame_size, 3)
            )
        if weights.is_random:
            _he_initialise(self.model, weights.seed)
        self.inference_model = None  # made at the first embed (_compiled)
        self._forward = None

    @staticmethod
    def scaled(frames: np.ndarray) -> np.ndarray:
        """uint8 RGB → float32 in [−1, 1] (``keras.applications.inception_v3.preprocess_input``)."""
        batch = frames.astype(np.float32)
        batch /= 127.5
        batch -= 1.0
        return batch

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(n, side, side, 3) uint8 frames → (n, 2048) features."""
        return self.embed_batches(frames[start : start + self.batch_size] for start in range(0, len(frames), self.batch_size))

    def embed_batches(self, frame_batches) -> np.ndarray:
        """Features of uint8 frame batches produced lazily (e.g. decoded from a table): each batch
        is produced and scaled in a background thread while the previous one is inferred."""
        return run_batches(self._compiled(), (self.scaled(frames) for frames in frame_batches), 2048)

    def _compiled(self):
        """The compiled forward pass of ``inference_model``, ``model``'s BatchNorm-folded twin, made
        at the first call from the weights ``model`` has then. ``model`` stays the Keras network
        as loaded: its ``predict`` is the reference in tests and benchmarks."""
        if self._forward is None:
            self.inference_model = fold_batch_norms(self.model)
            self._forward = compiled_forward(self.inference_model)
        return self._forward


def _he_initialise(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "Conv2D":
            kernel, *rest = layer.get_weights()
            fan_in = np.prod(kernel.shape[:-1])
            layer.set_weights([rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32), *rest])
