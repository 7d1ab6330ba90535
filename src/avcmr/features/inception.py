"""InceptionV3 frame features (Keras applications): 299×299 RGB → 2048-D average-pooled features.

``include_top=False, pooling="avg"`` gives the ReLU'd last hidden layer; inputs are scaled to
[−1, 1] by ``keras.applications.inception_v3.preprocess_input``. Random mode re-initialises every
convolution kernel with a seeded He-normal draw from numpy (so features are reproducible across
TF versions) and keeps BatchNorm at its neutral initial state.
"""

from __future__ import annotations

import numpy as np

from avcmr.features.weights import WeightsSpec, file_sha256


class InceptionExtractor:
    """Load InceptionV3 once, embed many frames in batches: (n, 299, 299, 3) uint8 → (n, 2048)."""

    def __init__(self, weights: WeightsSpec, batch_size: int = 32):
        import keras

        self.weights = weights
        self.batch_size = batch_size
        weights_path = None if weights.is_random else str(weights.require("h5", "InceptionV3 weights"))
        # sha256 of the file loaded, for the feature tables' metadata.
        self.weights_sha256 = {} if weights_path is None else {"h5": file_sha256(weights_path)}
        self.model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=weights_path, input_shape=(299, 299, 3)
        )
        if weights.is_random:
            _he_initialise(self.model, weights.seed)
        self._preprocess = keras.applications.inception_v3.preprocess_input
        import tensorflow as tf

        # A traced forward pass avoids eager per-op dispatch (several times faster on CPU).
        self._forward = tf.function(lambda batch: self.model(batch, training=False), reduce_retracing=True)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros((0, 2048), dtype=np.float32)
        features = []
        for start in range(0, len(frames), self.batch_size):
            batch = self._preprocess(frames[start : start + self.batch_size].astype(np.float32))
            features.append(np.asarray(self._forward(batch), dtype=np.float32))
        return np.concatenate(features)


def _he_initialise(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "Conv2D":
            kernel, *rest = layer.get_weights()
            fan_in = np.prod(kernel.shape[:-1])
            layer.set_weights([rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32), *rest])
