"""Compiled inference, prefetching and the bfloat16 option of the backbone extractors
(avcmr.features.inference), checked against Keras's own ``model.predict``."""

import numpy as np
import pyarrow as pa
import pytest

from avcmr.features.inference import clip_batches, fold_batch_norms, prefetched, run_batches
from avcmr.features.weights import WeightsSpec


def test_prefetched_keeps_order_and_reraises_errors():
    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise OSError("unreadable shard")

    with pytest.raises(OSError, match="unreadable shard"):
        list(prefetched(failing()))
    assert run_batches(lambda batch: batch * 2, [], 3).shape == (0, 3)


def test_fold_batch_norms_computes_what_keras_batch_normalization_computes(rng):
    import keras

    inputs = keras.Input((12, 10, 3))
    folded_pair = keras.layers.BatchNormalization(name="bn_scaled")(keras.layers.Conv2D(6, 3, use_bias=False, name="conv_a")(inputs))
    x = keras.layers.ReLU()(folded_pair)
    biased = keras.layers.Conv2D(5, 1, use_bias=True, name="conv_b")(x)  # bias, BN with scale=False, center=False
    x = keras.layers.BatchNormalization(scale=False, center=False, epsilon=0.01, name="bn_plain")(biased)
    shared = keras.layers.Conv2D(4, 3, padding="same", name="conv_shared")(x)  # two consumers: not folded
    branch = keras.layers.BatchNormalization(name="bn_of_shared")(shared)
    after_pool = keras.layers.BatchNormalization(name="bn_after_pool")(keras.layers.AveragePooling2D(2)(branch))
    outputs = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(after_pool),
                                          keras.layers.GlobalAveragePooling2D()(shared)])
    model = keras.Model(inputs, outputs)
    for layer in model.layers:  # moving statistics far from BN's neutral start
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, layer.moving_variance.shape))
            if layer.scale:
                layer.gamma.assign(rng.normal(1, 0.5, layer.gamma.shape))
            if layer.center:
                layer.beta.assign(rng.normal(0, 1, layer.beta.shape))
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 1, layer.bias.shape))

    folded = fold_batch_norms(model)
    batch = rng.normal(size=(7, 12, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5, atol=1e-5)
    remaining = {layer.name for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert remaining == {"bn_of_shared", "bn_after_pool"}  # a shared convolution's, a pooling's
    assert folded.get_layer("conv_a").use_bias and not model.get_layer("conv_a").use_bias


@pytest.fixture(scope="module")
def vggish_float32():
    from avcmr.features.vggish import VGGishExtractor

    return VGGishExtractor(WeightsSpec("vggish", True, seed=1), batch_size=16)


def test_vggish_compiled_forward_equals_model_predict(vggish_float32, rng):
    patches = rng.normal(size=(37, 96, 64)).astype(np.float32)  # two full batches and a partial one
    expected = vggish_float32.model.predict(patches[..., None], batch_size=16, verbose=0)
    np.testing.assert_allclose(vggish_float32.embed(patches), expected, rtol=1e-5, atol=1e-5)
    # Batches of 16, 16 and 5 rows ran through one graph, traced once for any batch size.
    assert vggish_float32._forward.traces() == 1


def test_vggish_bfloat16_is_close_to_float32_but_not_equal(vggish_float32, rng):
    from avcmr.features.vggish import VGGishExtractor

    patches = rng.normal(size=(8, 96, 64)).astype(np.float32)
    bf16 = VGGishExtractor(WeightsSpec("vggish", True, seed=1), batch_size=16, precision="bfloat16")
    assert bf16.model.layers[0].compute_dtype == "bfloat16"
    reference, reduced = vggish_float32.embed(patches), bf16.embed(patches)
    assert reduced.dtype == np.float32
    relative = np.abs(reduced - reference).max() / np.abs(reference).max()
    assert 0 < relative < 0.05  # bfloat16 keeps 8 mantissa bits (≈ 0.4 % per rounding)
    with pytest.raises(ValueError, match="inference_precision"):
        VGGishExtractor(WeightsSpec("vggish", True), precision="float16")


def test_inception_shard_streams_frames_and_matches_model_predict(tmp_path, rng):
    from avcmr.features.inception import InceptionExtractor
    from avcmr.io import schemas
    from avcmr.io.parquet import read_table, vectors_from_column, write_table
    from avcmr.stages.extract import inception_shard

    frames = rng.integers(0, 256, size=(5, 299, 299, 3), dtype=np.uint8)
    frames_path = tmp_path / "frames.parquet"
    table = pa.table({"clip_id": ["a", "a", "a", "b", "b"], "second": [0, 1, 2, 0, 1],
                      "rgb": [frame.tobytes() for frame in frames]}, schema=schemas.frames(299))
    write_table(table, frames_path, schemas.frames(299), {"dataset": "t", "config_hash": "0"})
    inception_shard(frames_path, tmp_path / "out.parquet", tmp_path / "failures.parquet", {"seed": 2},
                    batch_size=2, threads=2, provenance={"dataset": "t", "config_hash": "0"})
    features = vectors_from_column(read_table(tmp_path / "out.parquet")["visual_2048"])
    extractor = InceptionExtractor(WeightsSpec("inception", True, seed=2), batch_size=2)
    scaled = frames.astype(np.float32) / 127.5 - 1.0  # keras.applications.inception_v3.preprocess_input
    expected = extractor.model.predict(scaled, batch_size=2, verbose=0)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    # Inference runs the network with each of its 94 BatchNormalization layers folded away.
    extractor.embed(frames[:1])  # the folded twin is made at the first embed
    assert sum(type(layer).__name__ == "BatchNormalization" for layer in extractor.model.layers) == 94
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in extractor.inference_model.layers)


def test_clip_batches_never_straddle_two_clips():
    clip_ids = ["a"] * 5 + ["b"] * 2 + ["c"] * 7
    ranges = clip_batches(clip_ids, 3)
    assert ranges == [(0, 3), (3, 5), (5, 7), (7, 10), (10, 13), (13, 14)]
    # Brute force: the ranges tile every row once, each range holds one clip, and a clip's ranges
    # are cut from its own first row (so they do not move when a neighbouring clip changes).
    covered = [row for start, stop in ranges for row in range(start, stop)]
    assert covered == list(range(len(clip_ids)))
    for start, stop in ranges:
        assert 0 < stop - start <= 3 and len(set(clip_ids[start:stop])) == 1
        first = clip_ids.index(clip_ids[start])
        assert (start - first) % 3 == 0
    assert clip_batches([], 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        clip_batches(clip_ids, 0)


def test_vggish_features_of_a_clip_do_not_depend_on_its_shard_mates(vggish_float32, rng):
    """A folder that gains a clip reruns that shard: the old clips' features must stay byte-identical."""
    clip = rng.normal(size=(11, 96, 64)).astype(np.float32)
    before_mates = rng.normal(size=(5, 96, 64)).astype(np.float32)
    after_mates = rng.normal(size=(9, 96, 64)).astype(np.float32)
    alone = vggish_float32.embed(clip, ["x"] * 11)
    with_few = vggish_float32.embed(np.concatenate([before_mates, clip]), ["m"] * 5 + ["x"] * 11)[5:]
    with_more = vggish_float32.embed(np.concatenate([after_mates, clip]), ["n"] * 9 + ["x"] * 11)[9:]
    assert alone.tobytes() == with_few.tobytes() == with_more.tobytes()
