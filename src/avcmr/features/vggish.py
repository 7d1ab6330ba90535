"""VGGish (Hershey et al. 2017) in Keras, with the official checkpoint or seeded random weights.

Architecture of the AudioSet release: conv64–pool–conv128–pool–conv256×2–pool–conv512×2–pool–
fc4096–fc4096–fc128 (3×3 convolutions, ReLU, 2×2 max-pooling, 'SAME' padding) on 96×64 log-mel
patches. Layer names follow the official TF-slim variable scopes (``vggish/conv3/conv3_1/weights``
…) so that the checkpoint maps onto the layers one to one. The embedding layer (fc2) is linear, as
in the released model definition; the optional PCA/whitening + 8-bit quantisation post-processor
of the release is applied only when configured (the paper uses the raw 128-D embedding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avcmr.features.weights import WeightsSpec, require_file

# (keras layer name, official variable scope, kind, units/filters)
VGGISH_LAYERS = (
    ("conv1", "vggish/conv1", "conv", 64),
    ("pool1", None, "pool", None),
    ("conv2", "vggish/conv2", "conv", 128),
    ("pool2", None, "pool", None),
    ("conv3_1", "vggish/conv3/conv3_1", "conv", 256),
    ("conv3_2", "vggish/conv3/conv3_2", "conv", 256),
    ("pool3", None, "pool", None),
    ("conv4_1", "vggish/conv4/conv4_1", "conv", 512),
    ("conv4_2", "vggish/conv4/conv4_2", "conv", 512),
    ("pool4", None, "pool", None),
    ("flatten", None, "flatten", None),
    ("fc1_1", "vggish/fc1/fc1_1", "dense", 4096),
    ("fc1_2", "vggish/fc1/fc1_2", "dense", 4096),
    ("fc2", "vggish/fc2", "embedding", 128),
)


def build_vggish(seed: int = 0):
    """The VGGish network with seeded He-normal initial weights."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(96, 64, 1), name="log_mel")]
    for index, (name, _, kind, size) in enumerate(VGGISH_LAYERS):
        init = keras.initializers.HeNormal(seed=seed + index)
        if kind == "conv":
            layers.append(keras.layers.Conv2D(size, 3, padding="same", activation="relu", kernel_initializer=init, name=name))
        elif kind == "pool":
            layers.append(keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name))
        elif kind == "flatten":
            layers.append(keras.layers.Flatten(name=name))
        else:
            activation = "relu" if kind == "dense" else None
            layers.append(keras.layers.Dense(size, activation=activation, kernel_initializer=init, name=name))
    return keras.Sequential(layers, name="vggish")


def load_vggish_checkpoint(model, checkpoint_path: str | Path) -> None:
    """Copy the official TF-slim checkpoint variables (``<scope>/weights``, ``<scope>/biases``) into the model."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(checkpoint_path))
    for name, scope, _, _ in VGGISH_LAYERS:
        if scope is None:
            continue
        layer = model.get_layer(name)
        layer.set_weights([reader.get_tensor(f"{scope}/weights"), reader.get_tensor(f"{scope}/biases")])


def postprocess_embeddings(embeddings: np.ndarray, pca_params_path: str | Path) -> np.ndarray:
    """The release's PCA/whitening + 8-bit quantisation (vggish_postprocess), as float32 0..255."""
    params = np.load(pca_params_path)
    projected = (embeddings - params["pca_means"].reshape(1, -1)) @ params["pca_eigen_vectors"].T
    clipped = np.clip(projected, -2.0, 2.0)
    return np.round((clipped + 2.0) * (255.0 / 4.0)).astype(np.float32)


class VGGishExtractor:
    """Load VGGish once, embed many clips' patches: (n_patches, 96, 64) → (n_patches, 128)."""

    def __init__(self, weights: WeightsSpec, batch_size: int = 64, postprocess: bool = False):
        self.weights = weights
        self.batch_size = batch_size
        self.postprocess = postprocess
        self.model = build_vggish(weights.seed)
        if not weights.is_random:
            load_vggish_checkpoint(self.model, require_file(weights.paths["checkpoint"], "VGGish checkpoint"))
        elif postprocess:
            raise ValueError("VGGish post-processing needs the official PCA parameters; it is undefined for random weights")
        self._pca_params = require_file(weights.paths["pca_params"], "VGGish PCA parameters") if postprocess else None

    def embed(self, patches: np.ndarray) -> np.ndarray:
        if len(patches) == 0:
            return np.zeros((0, 128), dtype=np.float32)
        embeddings = self.model.predict(patches[..., None], batch_size=self.batch_size, verbose=0).astype(np.float32)
        if self._pca_params is not None:
            embeddings = postprocess_embeddings(embeddings, self._pca_params)
        return embeddings
