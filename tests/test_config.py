import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO
from snakemake.utils import validate

from avcmr.config import (
    ConfigError,
    check_config_schema,
    check_dataset,
    check_method_params,
    dataset_settings,
)
from avcmr.features.weights import MissingWeightsError, parse_weights, require_file
from avcmr.methods import available_methods

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def load_default():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_default_and_tiny_configs_validate():
    for config in (load_default(), yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())):
        validate(config, SCHEMA)  # raises on the first violation
        check_config_schema(config, SCHEMA)  # the workflow's own check, one line per mistake
        assert config["default_datasets"] and set(config["default_datasets"]) <= set(config["datasets"])
        for name in config["default_datasets"]:
            check_dataset(dataset_settings(config, name))
    # Neither check passes everything: the same config with a wrong type is refused by both.
    config = load_default()
    config["features"]["shard_size"] = "many"
    with pytest.raises(Exception, match="'many' is not of type 'integer'"):
        validate(config, SCHEMA)
    with pytest.raises(ConfigError, match=r"^config key features\.shard_size: 'many' is not of type 'integer'$"):
        check_config_schema(config, SCHEMA)


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


# --- Strict config: typos stop the run with one line naming the key and what is allowed ----------



def schema_method_names() -> list[str]:
    return yaml.safe_load(open(SCHEMA))["definitions"]["method_name"]["enum"]


def test_method_name_enum_equals_the_registry():
    assert sorted(schema_method_names()) == available_methods()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(featurez={"pca_dim": 8}), r"^unknown config key featurez; allowed here: .*\bfeatures\b"),
        (lambda c: c["datasets"]["synthetic"].update(featurez={}),
         r"^unknown config key datasets\.synthetic\.featurez; allowed here: .*\bfeatures\b.*\bkind\b"),
        (lambda c: c["evaluation"].update(methods=["cca", "ccca"]),
         r"^config key evaluation\.methods\.1: 'ccca' is not allowed; allowed: acmr, .*\bcca\b"),
        (lambda c: c["method_params"].update(ccca={}), r"^config key method_params\.ccca: unknown method; allowed: acmr"),
        (lambda c: c["datasets"].update({"my data": c["datasets"]["synthetic"]}),
         r"^config key datasets: name 'my data' is not allowed; names must match"),
    ],
    ids=["top-level featurez", "dataset featurez", "methods ccca", "method_params ccca", "dataset name"],
)
def test_schema_typos_give_one_line_naming_the_key_and_the_allowed_values(edit, expected):
    config = load_default()
    edit(config)
    with pytest.raises(ConfigError) as error:
        check_config_schema(config, SCHEMA)
    assert "\n" not in str(error.value) and re.search(expected, str(error.value)), str(error.value)


def test_unknown_method_parameter_names_the_key_and_the_constructor_arguments():
    config = load_default()
    config["method_params"]["cca"] = {"n_componentz": 3}
    with pytest.raises(ConfigError) as error:
        check_method_params(config)
    message = str(error.value)
    assert message.startswith("config key method_params.cca.n_componentz: cca has no parameter 'n_componentz'; "
                              "allowed: n_components, ")
    assert "\n" not in message and "random_state" not in message
    config = load_default()
    config["datasets"]["synthetic"]["method_params"] = {"ours": {"epochz": 3}}
    with pytest.raises(ConfigError, match=r"^config key datasets\.synthetic\.method_params\.ours\.epochz: "):
        check_method_params(config)


def test_budget_and_every_constructor_argument_pass():
    from avcmr.methods.registry import constructor_parameters

    config = load_default()
    # Every constructor argument of every method (the seed excepted) and `budget`, globally and for a
    # dataset: the check reads the names, and none is refused.
    every = {method: {**{name: 1 for name in names if name != "random_state"}, "budget": "paper"}
             for method, names in constructor_parameters().items()}
    assert sorted(every) == available_methods() and {"n_components", "reg"} <= set(every["cca"])
    config["method_params"] = every
    config["datasets"]["synthetic"]["method_params"] = {"dcca": {"budget": "quick", "epochs": 2}}
    config["datasets"]["synthetic"]["budget"] = "paper"
    assert check_method_params(config) is None
    assert check_config_schema(config, SCHEMA) is None
    # ...while the seed, which comes from evaluation.seeds, is refused, and so is an unknown budget.
    config["method_params"]["cca"]["random_state"] = 0
    with pytest.raises(ConfigError, match=r"^config key method_params\.cca\.random_state: cca has no parameter"):
        check_method_params(config)
    config["datasets"]["synthetic"]["budget"] = "paperz"
    with pytest.raises(ConfigError, match=r"^config key datasets\.synthetic\.budget: 'paperz' is not allowed"):
        check_config_schema(config, SCHEMA)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(featurez={"pca_dim": 8}), "unknown config key featurez; allowed here: "),
        (lambda c: c["evaluation"].update(methods=["ccca"]), "config key evaluation.methods.0: 'ccca' is not allowed; "),
        (lambda c: c["method_params"].update(cca={"n_componentz": 3}),
         "config key method_params.cca.n_componentz: cca has no parameter 'n_componentz'; allowed: n_components"),
    ],
    ids=["featurez", "ccca", "n_componentz"],
)
def test_snakemake_stops_before_any_job_with_the_one_line(edit, expected, tmp_path):
    config = yaml.safe_load((REPO / "tests/data/tiny_config.yaml").read_text())
    edit(config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "results/tiny/map.tsv"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if expected in line]
    assert len(lines) == 1, result.stderr[-3000:]
    assert not (tmp_path / "results").exists() and "Select jobs to execute" not in result.stderr


def test_a_config_error_in_a_workflow_helper_ends_the_run_with_its_line_and_keeps_the_signature():
    import inspect

    from avcmr.config import stop_on_config_error

    def params(wildcards, attempt):
        if attempt > 1:
            raise ConfigError("dataset 'a': broken")
        return wildcards

    wrapped = stop_on_config_error(params)
    assert list(inspect.signature(wrapped).parameters) == ["wildcards", "attempt"]  # what Snakemake reads
    assert wrapped("wc", attempt=1) == "wc"
    with pytest.raises(SystemExit, match=r"^Error: dataset 'a': broken$"):
        wrapped("wc", attempt=2)
    with pytest.raises(ZeroDivisionError):  # other errors pass as they are
        stop_on_config_error(lambda: 1 / 0)()
