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


# The variables of the AudioSet VGGish release (tensorflow/models research/audioset/vggish,
# vggish_slim.define_vggish_slim: TF-slim scopes under 'vggish/', slim.repeat naming conv3/conv3_1, ...;
# 96 × 64 log-mel input), in the order of the network, with their kernel shapes; each has `weights`
# and `biases` (shape: the last dimension). Written out here, independently of VGGISH_LAYERS.
OFFICIAL_VGGISH_VARIABLES = [
    ("vggish/conv1", (3, 3, 1, 64)),
    ("vggish/conv2", (3, 3, 64, 128)),
    ("vggish/conv3/conv3_1", (3, 3, 128, 256)),
    ("vggish/conv3/conv3_2", (3, 3, 256, 256)),
    ("vggish/conv4/conv4_1", (3, 3, 256, 512)),
    ("vggish/conv4/conv4_2", (3, 3, 512, 512)),
    ("vggish/fc1/fc1_1", (12288, 4096)),
    ("vggish/fc1/fc1_2", (4096, 4096)),
    ("vggish/fc2", (4096, 128)),
]


@pytest.fixture(scope="module")
def vggish_checkpoint(tmp_path_factory):
    """A checkpoint with the release's variable names and shapes (TF checkpoint format V1, one file,
    as the released vggish_model.ckpt), written here with TensorFlow's own Save op, not by the code
    under test. The weights are drawn with numpy (seed 5, He scale; biases N(0, 0.1)), distinct per
    variable, so that a layer loaded from the wrong variable changes the outputs.
    """
    import tensorflow as tf

    rng = np.random.default_rng(5)
    tensors = {}
    for scope, shape in OFFICIAL_VGGISH_VARIABLES:
        scale = np.float32(np.sqrt(2.0 / np.prod(shape[:-1])))
        tensors[f"{scope}/weights"] = rng.standard_normal(shape, dtype=np.float32) * scale
        tensors[f"{scope}/biases"] = rng.normal(0.0, 0.1, shape[-1]).astype(np.float32)
    path = tmp_path_factory.mktemp("vggish") / "vggish_model.ckpt"
    tf.raw_ops.Save(filename=str(path), tensor_names=list(tensors),
                    data=[tf.constant(value) for value in tensors.values()])
    return tensors, path


def release_forward(tensors: dict, patches: np.ndarray) -> np.ndarray:
    """The release's network (vggish_slim.define_vggish_slim) written out with plain TF ops: 3×3
    convolutions (stride 1, SAME) + ReLU, 2×2 max-pools (stride 2, SAME), flatten, two ReLU fc1
    layers, linear fc2."""
    import tensorflow as tf

    def conv(net, scope):
        return tf.nn.relu(tf.nn.conv2d(net, tensors[f"{scope}/weights"], 1, "SAME") + tensors[f"{scope}/biases"])

    def pool(net):
        return tf.nn.max_pool2d(net, 2, 2, "SAME")

    def dense(net, scope):
        return tf.matmul(net, tensors[f"{scope}/weights"]) + tensors[f"{scope}/biases"]

    net = tf.reshape(tf.constant(patches, tf.float32), [-1, 96, 64, 1])
    net = pool(conv(net, "vggish/conv1"))
    net = pool(conv(net, "vggish/conv2"))
    net = pool(conv(conv(net, "vggish/conv3/conv3_1"), "vggish/conv3/conv3_2"))
    net = pool(conv(conv(net, "vggish/conv4/conv4_1"), "vggish/conv4/conv4_2"))
    net = tf.reshape(net, [tf.shape(net)[0], -1])
    net = tf.nn.relu(dense(tf.nn.relu(dense(net, "vggish/fc1/fc1_1")), "vggish/fc1/fc1_2"))
    return dense(net, "vggish/fc2").numpy()


def test_vggish_loads_the_release_checkpoint_and_computes_the_release_network(vggish_checkpoint, patches):
    from avcmr.features.vggish import VGGishExtractor

    tensors, path = vggish_checkpoint
    config = {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path).upper()}
    extractor = VGGishExtractor(parse_weights({"vggish": config}, "vggish"))
    # Every layer holds the release variable of its place in the network (the extractor starts
    # from all-zero weights, so a layer left out would stay zero).
    kernels = [layer.get_weights() for layer in extractor.model.layers if layer.get_weights()]
    assert len(kernels) == len(OFFICIAL_VGGISH_VARIABLES)
    for (kernel, bias), (scope, shape) in zip(kernels, OFFICIAL_VGGISH_VARIABLES, strict=True):
        assert kernel.shape == shape, scope
        np.testing.assert_array_equal(kernel, tensors[f"{scope}/weights"], err_msg=scope)
        np.testing.assert_array_equal(bias, tensors[f"{scope}/biases"], err_msg=scope)
    expected = release_forward(tensors, patches)
    assert expected.shape == (5, 128) and np.abs(expected).mean() > 1e-3
    np.testing.assert_allclose(extractor.embed(patches), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert extractor.weights_sha256 == {"checkpoint": file_sha256(path)}


def test_written_vggish_checkpoint_has_the_release_names_shapes_and_tensors(vggish_checkpoint, tmp_path):
    import tensorflow as tf

    from avcmr.features.vggish import build_vggish, load_vggish_checkpoint, write_vggish_checkpoint

    tensors, release = vggish_checkpoint
    model = build_vggish(random_init=False)
    load_vggish_checkpoint(model, release)
    path = write_vggish_checkpoint(model, tmp_path / "vggish_model.ckpt")
    assert path.is_file()  # one file, like the released vggish_model.ckpt
    reader = tf.train.load_checkpoint(str(path))
    expected_shapes = {}
    for scope, shape in OFFICIAL_VGGISH_VARIABLES:
        expected_shapes[f"{scope}/weights"], expected_shapes[f"{scope}/biases"] = list(shape), [shape[-1]]
    assert reader.get_variable_to_shape_map() == expected_shapes
    for name, value in tensors.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value, err_msg=name)


def test_sha256_of_a_checkpoint_prefix_is_that_of_its_files_in_name_order(tmp_path):
    (tmp_path / "m.ckpt.index").write_bytes(b"index")
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(b"data" * 1000)
    (tmp_path / "m.ckpt.part").write_bytes(b"an unfinished download")  # not part of the checkpoint
    assert file_sha256(tmp_path / "m.ckpt") == hashlib.sha256(b"data" * 1000 + b"index").hexdigest()
    assert file_sha256(tmp_path / "m.ckpt.index") == hashlib.sha256(b"index").hexdigest()


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
        fetch_official_file("http://127.0.0.1:9/vggish_model.ckpt", target, "VGGish checkpoint", attempts=1)
    message = str(error.value)
    assert str(target) in message and "AudioSet VGGish release" in message and "\n" not in message


def test_official_file_settings_merge_config_overrides():
    settings = official_file_settings({"vggish_checkpoint": {"path": "w/v.ckpt", "sha256": "a" * 64}})
    assert settings["vggish_checkpoint"]["path"] == "w/v.ckpt"
    assert settings["vggish_checkpoint"]["url"] == OFFICIAL_FILES["vggish_checkpoint"].url
    assert settings["inception"]["md5"] == "bcbd6486424b2319ff4ef7d526e38f63"
    with pytest.raises(ValueError, match="unknown files"):
        official_file_settings({"resnet": {}})
