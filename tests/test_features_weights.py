"""Official backbone weights: loading round trips, sha256 checks, post-processing, and fetching."""

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from avcmr.features.weights import (
    OFFICIAL_FILES,
    MissingWeightsError,
    WeightsChecksumError,
    WeightsSpec,
    fetch_official_file,
    file_sha256,
    official_file_settings,
    parse_weights,
)


@pytest.fixture(scope="module")
def patches():
    return np.random.default_rng(0).normal(0.0, 2.0, (5, 96, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def vggish_checkpoint(tmp_path_factory):
    """A seeded VGGish written as a TF-slim checkpoint (format V1, one file) with the official names.

    The weights are drawn with numpy (seed 5, He scale): the same as a seeded Keras init for this
    purpose, and several times faster for the 72 M parameters.
    """
    from avcmr.features.vggish import build_vggish, write_vggish_checkpoint

    model = build_vggish(random_init=False)
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if layer.get_weights():
            kernel, bias = layer.get_weights()
            scale = np.sqrt(2.0 / np.prod(kernel.shape[:-1]))
            layer.set_weights([rng.standard_normal(kernel.shape, dtype=np.float32) * np.float32(scale),
                               rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
    path = write_vggish_checkpoint(model, tmp_path_factory.mktemp("vggish") / "vggish_model.ckpt")
    return model, path


def test_vggish_checkpoint_has_the_official_variable_names(vggish_checkpoint):
    import tensorflow as tf

    _, path = vggish_checkpoint
    assert path.is_file()  # one file, like the released vggish_model.ckpt
    shapes = tf.train.load_checkpoint(str(path)).get_variable_to_shape_map()
    assert shapes["vggish/conv1/weights"] == [3, 3, 1, 64]
    assert shapes["vggish/conv3/conv3_2/biases"] == [256]
    assert shapes["vggish/fc1/fc1_1/weights"] == [12288, 4096]
    assert shapes["vggish/fc2/weights"] == [4096, 128]
    assert len(shapes) == 18


def test_vggish_checkpoint_loads_back_to_identical_outputs(vggish_checkpoint, patches):
    from avcmr.features.vggish import VGGishExtractor

    model, path = vggish_checkpoint
    expected = model.predict(patches[..., None], verbose=0)
    config = {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path).upper()}
    extractor = VGGishExtractor(parse_weights({"vggish": config}, "vggish"))
    # The extractor starts from all-zero weights: equal outputs mean every layer was loaded.
    assert np.abs(expected).mean() > 1e-3
    np.testing.assert_array_equal(extractor.embed(patches), expected)
    assert extractor.weights_sha256 == {"checkpoint": file_sha256(path)}


def test_vggish_sha256_is_checked_when_configured(vggish_checkpoint):
    from avcmr.features.vggish import VGGishExtractor

    _, path = vggish_checkpoint
    bad = {"checkpoint": str(path), "checkpoint_sha256": "0" * 64}
    with pytest.raises(WeightsChecksumError, match="has sha256 .* the config expects 0{64}"):
        VGGishExtractor(parse_weights({"vggish": bad}, "vggish"))


def test_a_checkpoint_without_the_vggish_variables_is_refused(tmp_path):
    import tensorflow as tf

    from avcmr.features.vggish import build_vggish, load_vggish_checkpoint

    checkpoint = tf.train.Checkpoint(other=tf.Variable(1.0))
    prefix = checkpoint.write(str(tmp_path / "other"))
    with pytest.raises(ValueError, match="not a VGGish checkpoint.*vggish/conv1/weights"):
        load_vggish_checkpoint(build_vggish(random_init=False), prefix)


def test_postprocess_follows_the_release_quantisation(tmp_path):
    """PCA, clip to [-2, 2], scale to 0..255 and truncate like the release's astype(np.uint8)."""
    from avcmr.features.vggish import postprocess_embeddings

    rng = np.random.default_rng(1)
    means = rng.normal(size=(128, 1))
    eigen = np.linalg.qr(rng.normal(size=(128, 128)))[0]
    np.savez(tmp_path / "vggish_pca_params.npz", pca_means=means, pca_eigen_vectors=eigen)
    embeddings = rng.normal(size=(4, 128)) * 2
    embeddings[0] = means[:, 0]  # projects to 0 → 127.5 → 127 (rounding would give 128)
    ours = postprocess_embeddings(embeddings, tmp_path / "vggish_pca_params.npz")
    # The release's vggish_postprocess.Postprocessor.postprocess, written out.
    projected = np.dot(eigen, (embeddings.T - means)).T
    reference = ((np.clip(projected, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.uint8)
    np.testing.assert_array_equal(ours, reference.astype(np.float32))
    assert (ours[0] == 127).all()


def test_postprocess_needs_the_pca_parameters(vggish_checkpoint):
    from avcmr.features.vggish import VGGishExtractor

    _, path = vggish_checkpoint
    with pytest.raises(MissingWeightsError, match="has no pca_params"):
        VGGishExtractor(parse_weights({"vggish": {"checkpoint": str(path)}}, "vggish"), postprocess=True)
    spec = parse_weights({"vggish": {"checkpoint": str(path), "pca_params": "nowhere/pca.npz"}}, "vggish")
    with pytest.raises(MissingWeightsError, match="nowhere/pca.npz.*fetch_weights"):
        VGGishExtractor(spec, postprocess=True)


def test_inception_h5_in_the_keras_release_format_loads_back_to_identical_outputs(tmp_path):
    """A seeded InceptionV3 saved as a legacy Keras .h5 (the release's format) loads to the same features."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from avcmr.features.inception import InceptionExtractor

    frames = np.random.default_rng(2).integers(0, 256, (2, 299, 299, 3), dtype=np.uint8)
    seeded = InceptionExtractor(WeightsSpec("inception", True, seed=3))
    # Make the BatchNorm statistics matter too.
    for layer in seeded.model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            beta, mean, var = layer.get_weights()  # InceptionV3's BatchNorm has no scale
            layer.set_weights([beta + 0.01, mean + 0.02, var * 0.9])
    expected = seeded.embed(frames)
    path = tmp_path / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, seeded.model)
    loaded = InceptionExtractor(parse_weights({"inception": {"path": str(path), "sha256": file_sha256(path)}},
                                              "inception"))
    np.testing.assert_allclose(loaded.embed(frames), expected, rtol=1e-6, atol=1e-6)
    assert loaded.weights_sha256 == {"h5": file_sha256(path)}
    assert np.abs(expected).sum() > 0


def test_parse_weights_reads_paths_and_digests():
    spec = parse_weights({"vggish": {"checkpoint": "a.ckpt", "pca_params": "p.npz", "checkpoint_sha256": "AB" * 32,
                                     "pca_params_sha256": None}}, "vggish")
    assert spec.paths == {"checkpoint": "a.ckpt", "pca_params": "p.npz"}
    assert spec.sha256 == {"checkpoint": "ab" * 32}
    spec = parse_weights({"inception": {"path": "i.h5", "sha256": None}}, "inception")
    assert spec.paths == {"h5": "i.h5"} and spec.sha256 == {} and not spec.is_random
    assert parse_weights({"inception": "i.h5"}, "inception").describe() == "h5=i.h5"


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_downloads_checks_and_records(file_server, tmp_path):
    root, url = file_server
    (root / "w.bin").write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(b"weights" * 1000).hexdigest()
    md5 = hashlib.md5(b"weights" * 1000).hexdigest()
    target = tmp_path / "weights/w.bin"
    record = fetch_official_file(f"{url}/w.bin", target, "VGGish checkpoint", sha256=digest, md5=md5)
    assert target.read_bytes() == b"weights" * 1000
    assert record["sha256"] == digest and record["bytes"] == 7000 and record["expected_sha256"] == digest
    # Present and valid: not fetched again (the server no longer has it).
    (root / "w.bin").unlink()
    assert fetch_official_file(f"{url}/w.bin", target, "VGGish checkpoint", sha256=digest)["sha256"] == digest


def test_fetch_refuses_a_wrong_digest_and_leaves_nothing(file_server, tmp_path):
    root, url = file_server
    (root / "w.bin").write_bytes(b"not the release")
    target = tmp_path / "w.bin"
    with pytest.raises(WeightsChecksumError, match="the config expects"):
        fetch_official_file(f"{url}/w.bin", target, "VGGish checkpoint", sha256="1" * 64)
    with pytest.raises(WeightsChecksumError, match="published MD5"):
        fetch_official_file(f"{url}/w.bin", target, "InceptionV3 weights", md5="0" * 32)
    assert list(tmp_path.iterdir()) == [root]


def test_offline_fetch_says_which_file_to_place_where(tmp_path):
    target = tmp_path / "resources/weights/vggish_model.ckpt"
    with pytest.raises(MissingWeightsError) as error:
        fetch_official_file("http://127.0.0.1:9/vggish_model.ckpt", target, "VGGish checkpoint")
    message = str(error.value)
    assert str(target) in message and "AudioSet VGGish release" in message and "\n" not in message


def test_official_file_settings_merge_config_overrides():
    settings = official_file_settings({"vggish_checkpoint": {"path": "w/v.ckpt", "sha256": "a" * 64}})
    assert settings["vggish_checkpoint"]["path"] == "w/v.ckpt"
    assert settings["vggish_checkpoint"]["url"] == OFFICIAL_FILES["vggish_checkpoint"].url
    assert settings["inception"]["md5"] == "bcbd6486424b2319ff4ef7d526e38f63"
    with pytest.raises(ValueError, match="unknown files"):
        official_file_settings({"resnet": {}})
