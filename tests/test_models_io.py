"""Saved models: a round trip gives the same retrieval, and foreign or incompatible files are refused."""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pyarrow as pa
import pytest

from avcmr import __version__
from avcmr.io import schemas
from avcmr.io.parquet import vector_column, write_table
from avcmr.methods import make_method
from avcmr.models_io import (
    MODEL_FORMAT_VERSION,
    ModelFileError,
    load_model,
    read_header,
    save_model,
)

FEATURES = {"fps": 1, "frame_size": 299, "sample_rate": 16000, "pca_dim": 6, "vggish_postprocess": False}
WEIGHTS = {"vggish": "random", "inception": "random", "seed": 0}


@pytest.fixture
def pca_path(tmp_path, rng):
    vectors = rng.normal(size=(7, 20))
    table = pa.table({"row": ["mean"] + [f"component_{i}" for i in range(6)],
                      "explained_variance": np.concatenate([[np.nan], np.arange(6.0, 0, -1)]),
                      "vector": vector_column(vectors, pa.float64())})
    path = tmp_path / "visual_pca.parquet"
    write_table(table, path, schemas.pca_model(20), whiten=True)
    return path


@pytest.fixture
def data(rng):
    labels = np.repeat(np.arange(3), 20)
    audio = rng.normal(size=(60, 12)) + labels[:, None]
    visual = rng.normal(size=(60, 6)) - labels[:, None]
    return audio, visual, labels


def save(path, method, pca_path, **overrides):
    settings = {"method_name": method.name, "seed": 0, "dataset": "unit", "class_names": ["a", "b", "c"],
                "pca_path": pca_path, "feature_settings": FEATURES, "backbone_weights": WEIGHTS,
                "provenance": {"config_hash": "abc"}}
    settings.update(overrides)
    return save_model(path, method, **settings)


def test_round_trip_keeps_retrieval_and_context(tmp_path, pca_path, data, rng):
    audio, visual, labels = data
    method = make_method("cca", {"n_components": 2}, random_state=0).fit(audio, visual, labels)
    path = save(tmp_path / "cca_seed0.joblib", method, pca_path)
    saved = load_model(path)
    np.testing.assert_array_equal(saved.method.similarity(audio, visual), method.similarity(audio, visual))
    assert saved.header["method"] == "cca" and saved.header["seed"] == 0
    assert saved.header["format_version"] == MODEL_FORMAT_VERSION and saved.header["avcmr_version"] == __version__
    assert saved.header["features"] == FEATURES and saved.class_names == ["a", "b", "c"]
    assert saved.random_weights is True
    assert saved.header["backbone_weights_described"] == {"vggish": "random(seed=0)", "inception": "random(seed=0)"}
    # The PCA is the fitted one, whitening included.
    frames = rng.normal(size=(4, 20))
    mean, components = saved.pca.mean_, saved.pca.components_
    expected = (frames - mean) @ components.T / np.sqrt(np.arange(6.0, 0, -1) + saved.pca.whiten_epsilon)
    np.testing.assert_allclose(saved.pca.transform(frames), expected, rtol=1e-5)
    assert read_header(path)["dataset"] == "unit"


def test_torch_model_round_trip_is_on_cpu(tmp_path, pca_path, data):
    audio, visual, labels = data
    params = {"audio_hidden": [8], "visual_hidden": [8], "epochs": 1, "batch_size": 32, "device": "cpu",
              "validation_fraction": 0.0}
    method = make_method("ours", params, random_state=0).fit(audio, visual, labels)
    saved = load_model(save(tmp_path / "ours_seed0.joblib", method, pca_path))
    assert str(saved.method.device_) == "cpu"
    assert all(p.device.type == "cpu" for p in saved.method.networks_.parameters())
    np.testing.assert_allclose(saved.method.similarity(audio, visual), method.similarity(audio, visual), atol=1e-6)


def test_missing_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "nope.joblib")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"this is not a pickle")
    with pytest.raises(ModelFileError, match="is not an avcmr model file"):
        load_model(garbage)
    other = tmp_path / "other.joblib"
    joblib.dump({"weights": [1, 2, 3]}, other)
    with pytest.raises(ModelFileError, match="no 'avcmr-model' header"):
        load_model(other)


def rewrite_header(path, **changes):
    payload = joblib.load(path)
    payload["header"].update(changes)
    joblib.dump(payload, path)


def test_incompatible_versions_are_refused_with_a_clear_message(tmp_path, pca_path, data):
    audio, visual, labels = data
    method = make_method("cca", {"n_components": 2}, random_state=0).fit(audio, visual, labels)
    path = save(tmp_path / "cca_seed0.joblib", method, pca_path)
    rewrite_header(path, format_version=MODEL_FORMAT_VERSION + 1, avcmr_version="9.9.0")
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    message = str(error.value)
    assert "written by avcmr 9.9.0" in message and f"format {MODEL_FORMAT_VERSION + 1}" in message
    assert f"this avcmr {__version__} reads format {MODEL_FORMAT_VERSION} only" in message
    assert "results/unit/models/cca_seed0.joblib" in message  # how to re-create it
    major, minor, *_ = __version__.split(".")
    rewrite_header(path, format_version=MODEL_FORMAT_VERSION, avcmr_version=f"{major}.{int(minor) + 1}.0")
    with pytest.raises(ModelFileError, match=f"incompatible with this avcmr {__version__}"):
        load_model(path)
    rewrite_header(path, avcmr_version=f"{major}.{minor}.99")  # a patch release reads it
    assert load_model(path).header["method"] == "cca"


def test_an_estimator_this_version_cannot_rebuild_is_refused(tmp_path, pca_path, data):
    audio, visual, labels = data
    method = make_method("cca", {"n_components": 2}, random_state=0).fit(audio, visual, labels)
    path = save(tmp_path / "cca_seed0.joblib", method, pca_path)
    payload = joblib.load(path)
    payload["estimator"] = payload["estimator"].replace(b"avcmr.methods.cca", b"avcmr.methods.xyz")
    joblib.dump(payload, path)
    with pytest.raises(ModelFileError, match="cannot be rebuilt by this avcmr"):
        load_model(path)


def test_a_model_trained_on_released_features_records_it_and_refuses_queries(tmp_path, pca_path, data):
    from avcmr.query import DecodedQuery, QueryInputError, query_features

    audio, visual, labels = data
    method = make_method("cca", {"n_components": 2}, random_state=0).fit(audio, visual, labels)
    path = save(tmp_path / "cca_seed0.joblib", method, pca_path, feature_source="released features")
    saved = load_model(path)
    # No backbone produced these features here: no weights are claimed, random or official.
    assert saved.header["feature_source"] == "released features"
    assert saved.random_weights is False and saved.header["backbone_weights"] == {}
    clip = DecodedQuery(tmp_path / "clip.mp4", "audio", 3.0, np.zeros((3, 96, 64), dtype=np.float32))
    with pytest.raises(QueryInputError, match="released features .* cannot be embedded"):
        query_features(clip, saved, [tmp_path])


def test_saving_a_closed_form_model_does_not_import_torch(tmp_path, pca_path):
    # A fresh interpreter, as a `cca` training job: torch is imported only by methods that train with it.
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from avcmr.methods import make_method\n"
        "from avcmr.models_io import load_model, save_model\n"
        "rng = np.random.default_rng(0)\n"
        "method = make_method('cca', {'n_components': 2}, random_state=0)\n"
        "method.fit(rng.normal(size=(30, 5)), rng.normal(size=(30, 4)), np.repeat(np.arange(3), 10))\n"
        f"path = save_model({str(tmp_path / 'cca.joblib')!r}, method, method_name='cca', seed=0, dataset='unit',\n"
        f"    class_names=['a', 'b', 'c'], pca_path={str(pca_path)!r}, feature_settings={FEATURES!r},\n"
        f"    backbone_weights={WEIGHTS!r})\n"
        "assert load_model(path).header['method'] == 'cca'\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
