import pytest
import yaml
from conftest import REPO
from snakemake.utils import validate

from avcmr.config import ConfigError, check_dataset, dataset_settings
from avcmr.features.weights import MissingWeightsError, parse_weights, require_file

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def load_default():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_default_and_tiny_configs_validate():
    validate(load_default(), SCHEMA)
    validate(yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text()), SCHEMA)


def test_every_schema_key_is_described():
    schema = yaml.safe_load(open(SCHEMA))

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                assert "description" in value or "$ref" in value, f"{path}.{key} has no description"
                walk(value, f"{path}.{key}")
            for key in ("additionalProperties", "items"):
                if isinstance(node.get(key), dict):
                    walk(node[key], f"{path}.{key}")
            for key, value in node.get("definitions", {}).items():
                walk(value, f"{path}.definitions.{key}")

    walk(schema, "config")


def test_schema_rejects_unknown_keys():
    config = load_default()
    config["features"]["pca_dims"] = 10
    with pytest.raises(Exception, match="pca_dims"):
        validate(config, SCHEMA)


def test_dataset_overrides_merge_over_global_sections():
    config = load_default()
    config["datasets"]["synthetic"]["features"] = {"pca_dim": 16}
    settings = dataset_settings(config, "synthetic")
    assert settings["features"]["pca_dim"] == 16
    assert settings["features"]["shard_size"] == config["features"]["shard_size"]
    # The demo dataset trains its many tiny jobs one thread each, two at a time.
    assert settings["evaluation"]["threads_per_fit"] == 1
    assert settings["evaluation"]["seeds"] == config["evaluation"]["seeds"]
    assert config["evaluation"]["threads_per_fit"] == 2


def test_folder_dataset_refuses_random_weights_unless_allowed(tmp_path):
    config = load_default()
    config["datasets"]["mine"] = {"kind": "folder", "root": str(tmp_path),
                                  "backbone_weights": {"vggish": "random", "inception": "random"}}
    with pytest.raises(ConfigError, match="random backbone weights"):
        check_dataset(dataset_settings(config, "mine"))
    config["datasets"]["mine"]["allow_random_weights"] = True
    check_dataset(dataset_settings(config, "mine"))


def test_missing_weights_file_error_names_path_and_source(tmp_path):
    spec = parse_weights({"inception": str(tmp_path / "inception.h5")}, "inception")
    assert not spec.is_random
    with pytest.raises(MissingWeightsError) as error:
        require_file(spec.paths["h5"], "InceptionV3 weights")
    message = str(error.value)
    assert str(tmp_path / "inception.h5") in message and "Keras applications" in message
    assert "\n" not in message
