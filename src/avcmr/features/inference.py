"""What the two backbone extractors share for inference: a compiled forward pass, the opt-in
bfloat16 arithmetic, and a background thread that prepares the next batch while one is inferred.

- ``model.predict`` builds a data pipeline and a per-call step function and returns through
  callbacks; a ``tf.function`` around ``model(x, training=False)`` is traced once, for any batch
  size, and then runs the graph directly (InceptionV3 1.0–1.08×, its time is in the convolutions;
  VGGish up to ≈ 2×; 2 CPU cores, benchmarks/README.md).
- Each BatchNormalization that follows a convolution is folded into that convolution's kernel
  and bias (:func:`fold_batch_norms`): at inference BN is a per-channel affine map, so the
  folded graph computes the same function in one fused convolution + bias + ReLU where Keras
  runs a convolution and then the normalisation as separate passes over the activations
  (InceptionV3: 94 such pairs, 1.13–1.2× on 2 CPU cores; features move by float rounding,
  ≈ 1e-6 relative; benchmarks/README.md).
- ``inference_precision: bfloat16`` builds the model under Keras's ``mixed_bfloat16`` policy:
  weights stay float32, activations and products are bfloat16 (8 mantissa bits), outputs are cast
  back to float32. Opt-in because features move (benchmarks/README.md states by how much).
- The batch preparation (bytes → uint8 frames → scaled float32) runs in one background thread, one
  batch ahead: TensorFlow releases the GIL while it computes, so the two overlap.
- Batches never straddle two clips (``clip_batches``): the CPU kernels round a row differently with
  the batch it sits in (≈ 5e-6 relative), so a batch shared with a neighbouring clip would make a
  clip's features depend on which clips share its shard — and a folder that gains a clip would
  change its neighbours' features. Cut at clip boundaries, a clip's features depend on its own
  frames alone, byte for byte.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"inference_precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@contextmanager
def precision_policy(precision: str):
    """Keras's dtype policy while a model is built: ``mixed_bfloat16`` for bfloat16, else float32."""
    import keras

    check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@functools.cache
def _folded_batch_norm_class():
    """The layer a folded BatchNormalization becomes: it returns its input and keeps the BN's
    name, so the model's layer names and graph stay those of the original (one class, made once)."""
    import keras

    class FoldedBatchNormalization(keras.layers.Layer):
        def call(self, inputs, training=None, mask=None):  # the signature BN's call nodes were recorded with
            return inputs

    return FoldedBatchNormalization


def fold_batch_norms(model):
    """An equivalent Keras functional model in which every ``BatchNormalization`` whose input is a
    ``Conv2D`` without activation (and that convolution's only consumer) is merged into it:
    with ``s = gamma / sqrt(moving_variance + epsilon)`` per output channel, the convolution's
    kernel becomes ``kernel · s`` and its bias ``(bias − moving_mean) · s + beta`` — BN's
    inference formula applied to the convolution's output, rearranged. Layers that are not
    such pairs are cloned with their weights. The original model is left as it is."""
    import keras

    producer = {id(layer.output): layer for layer in model.layers}
    consumers: dict[int, int] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
        for tensor in inputs:
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    pairs = {}  # convolution name → its BatchNormalization
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (-1, 3):
            continue
        conv = producer.get(id(layer.input))
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last"
                and conv.get_config()["activation"] == "linear" and consumers[id(conv.output)] == 1):
            pairs[conv.name] = layer
    folded_norms = {norm.name for norm in pairs.values()}

    def clone(layer):
        if layer.name in folded_norms:
            return _folded_batch_norm_class()(name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in folded_norms or not layer.weights:
            continue
        weights = layer.get_weights()
        if layer.name in pairs:
            norm = pairs[layer.name]
            kernel = weights[0].astype(np.float64)
            bias = weights[1].astype(np.float64) if layer.use_bias else 0.0
            scale = 1.0 / np.sqrt(norm.moving_variance.numpy().astype(np.float64) + norm.epsilon)
            if norm.scale:
                scale = scale * norm.gamma.numpy()
            shift = (bias - norm.moving_mean.numpy()) * scale + (norm.beta.numpy() if norm.center else 0.0)
            weights = [(kernel * scale).astype(np.float32), shift.astype(np.float32)]
        folded.get_layer(layer.name).set_weights(weights)
    return folded


def compiled_forward(model) -> Callable[[np.ndarray], np.ndarray]:
    """``batch → float32 outputs`` through one graph traced for any batch size: tracing InceptionV3
    costs ≈ 1.8 s, and per-clip batches come in many sizes (traced per shape, a job traced twice
    before its shapes generalised). Outputs equal the per-shape graphs' bit for bit (checked on
    InceptionV3 at five batch sizes)."""
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)]

    @tf.function(input_signature=signature)
    def forward(batch):
        return tf.cast(model(batch, training=False), tf.float32)

    def run(batch: np.ndarray) -> np.ndarray:
        return forward(batch).numpy()

    run.traces = forward.experimental_get_tracing_count  # for tests: how many graphs were built
    return run


def clip_batches(clip_ids: Sequence, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) row ranges of at most ``batch_size`` rows, each inside one run of equal
    consecutive ``clip_ids`` and counted from the run's first row."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    ranges = []
    start = 0
    for stop in range(1, len(clip_ids) + 1):
        if stop == len(clip_ids) or clip_ids[stop] != clip_ids[start]:
            ranges += [(first, min(first + batch_size, stop)) for first in range(start, stop, batch_size)]
            start = stop
    return ranges


def prefetched(batches: Iterable, depth: int = 1) -> Iterator:
    """Iterate ``batches`` in a background thread, ``depth`` items ahead; its errors are re-raised."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    finished = object()
    stop = threading.Event()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((finished, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            slots.put((finished, error))

    worker = threading.Thread(target=produce, name="batch-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is finished:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def run_batches(forward: Callable, batches: Iterable[np.ndarray], width: int, prefetch: bool = True) -> np.ndarray:
    """Concatenated ``forward`` outputs of every batch (``(0, width)`` for none)."""
    outputs = [forward(batch) for batch in (prefetched(batches) if prefetch else batches)]
    return np.concatenate(outputs) if outputs else np.zeros((0, width), dtype=np.float32)
