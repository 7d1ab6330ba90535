"""VGGish (Hershey et al. 2017) in Keras, with the official checkpoint or seeded random weights.

Architecture of the AudioSet release: conv64–pool–conv128–pool–conv256×2–pool–conv512×2–pool–
fc4096–fc4096–fc128 (3×3 convolutions, ReLU, 2×2 max-pooling, 'SAME' padding) on 96×64 log-mel
patches. Layer names follow the official TF-slim variable scopes (``vggish/conv3/conv3_1/weights``
…) so that the checkpoint maps onto the layers one to one. The embedding layer (fc2) is linear, as
in the released model definition; the optional PCA/whitening + 8-bit quantisation post-processor
of the release is applied only when configured (the paper uses the raw 128-D embedding).

Inference (:mod:`avcmr.features.inference`): one compiled forward pass instead of ``model.predict``,
batches prepared one ahead in a background thread, optional bfloat16 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avcmr.features.inference import (
    check_precision,
    clip_batches,
    compiled_forward,
    precision_policy,
    run_batches,
)
from avcmr.features.weights import OFFICIAL_SOURCES, MissingWeightsError, WeightsSpec, file_sha256

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


def build_vggish(seed: int = 0, random_init: bool = True):
    """The VGGish network with seeded He-normal initial weights (zeros when ``random_init`` is false:
    weights that a checkpoint overwrites need no costly draw of 72 M numbers)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(96, 64, 1), name="log_mel")]
    for index, (name, _, kind, size) in enumerate(VGGISH_LAYERS):
        init = keras.initializers.HeNormal(seed=seed + index) if random_init else "zeros"
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
    available = reader.get_variable_to_shape_map()
    missing = [f"{scope}/{kind}" for _, scope, _, _ in VGGISH_LAYERS if scope for kind in ("weights", "biases")
               if f"{scope}/{kind}" not in available]
    if missing:
        raise ValueError(f"{checkpoint_path} is not a VGGish checkpoint: it lacks the variables {missing[:4]}")
    for name, scope, _, _ in VGGISH_LAYERS:
        if scope is None:
            continue
        layer = model.get_layer(name)
        layer.set_weights([reader.get_tensor(f"{scope}/weights"), reader.get_tensor(f"{scope}/biases")])


def write_vggish_checkpoint(model, checkpoint_path: str | Path) -> Path:
    """Write the model's weights as a TF-slim checkpoint with the official variable names.

    TF checkpoint format V1 (one file), the format of the released ``vggish_model.ckpt``. Used to
    test the loader and to hand a VGGish to tools that expect the release's file.
    """
    import tensorflow as tf

    names, tensors = [], []
    for name, scope, _, _ in VGGISH_LAYERS:
        if scope is not None:
            kernel, bias = model.get_layer(name).get_weights()
            names += [f"{scope}/weights", f"{scope}/biases"]
            tensors += [tf.constant(kernel), tf.constant(bias)]
    checkpoint_path = Path(checkpoint_path)
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    # The V1 'Save' op writes the tensor-slice table that TF-slim's Saver wrote for the release.
    tf.raw_ops.Save(filename=str(checkpoint_path), tensor_names=names, data=tensors)
    return checkpoint_path


def postprocess_embeddings(embeddings: np.ndarray, pca_params_path: str | Path) -> np.ndarray:
    """The release's PCA/whitening + 8-bit quantisation (``vggish_postprocess.Postprocessor``), as float32.

    Projection ``(x − pca_means) · pca_eigen_vectorsᵀ``, clip to [−2, 2], scale to [0, 255] and cast
    to uint8 (truncation, as the release's ``astype(np.uint8)``; not rounding).
    """
    params = np.load(pca_params_path)
    projected = (embeddings - params["pca_means"].reshape(1, -1)) @ params["pca_eigen_vectors"].T
    clipped = np.clip(projected, -2.0, 2.0)
    return ((clipped + 2.0) * (255.0 / 4.0)).astype(np.uint8).astype(np.float32)


class VGGishExtractor:
    """Load VGGish once, embed many clips' patches: (n_patches, 96, 64) → (n_patches, 128)."""

    def __init__(self, weights: WeightsSpec, batch_size: int = 64, postprocess: bool = False,
                 precision: str = "float32"):
        self.weights = weights
        self.batch_size = batch_size
        self.postprocess = postprocess
        self.precision = check_precision(precision)
        if weights.is_random and postprocess:
            raise ValueError("VGGish post-processing needs the official PCA parameters; it is undefined for random weights")
        # Files first (present, matching their configured sha256), so that a missing file fails fast.
        checkpoint = None if weights.is_random else weights.require("checkpoint", "VGGish checkpoint")
        self._pca_params = None
        if postprocess:
            if "pca_params" not in weights.paths:
                raise MissingWeightsError("vggish_postprocess is on but backbone_weights.vggish has no pca_params: "
                                          f"set it to the path of {OFFICIAL_SOURCES['VGGish PCA parameters']}")
            self._pca_params = weights.require("pca_params", "VGGish PCA parameters")
        with precision_policy(precision):
            self.model = build_vggish(weights.seed, random_init=weights.is_random)
        if checkpoint is not None:
            load_vggish_checkpoint(self.model, checkpoint)
        self._forward = compiled_forward(self.model)
        # sha256 of every file loaded, for the feature tables' metadata.
        self.weights_sha256 = {key: file_sha256(path) for key, path in
                               (("checkpoint", checkpoint), ("pca_params", self._pca_params)) if path is not None}

    def embed(self, patches: np.ndarray, clip_ids: Sequence | None = None) -> np.ndarray:
        """Embeddings of the patches; with ``clip_ids`` (one per patch) no batch straddles two clips
        (``inference.clip_batches``: a clip's embeddings then depend on its own patches alone)."""
        clip_ids = np.zeros(len(patches)) if clip_ids is None else clip_ids
        return self.embed_ranges(patches, clip_batches(clip_ids, self.batch_size))

    def embed_ranges(self, patches: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
        """Embeddings of the patches, inferred in the given (start, stop) row batches."""
        batches = (np.asarray(patches[start:stop], dtype=np.float32)[..., None] for start, stop in ranges)
        embeddings = run_batches(self._forward, batches, 128)
        if self._pca_params is not None:
            embeddings = postprocess_embeddings(embeddings, self._pca_params)
        return embeddings
