"""Resolve the workflow config into per-dataset settings, hashes and policy checks."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from avcmr.features.weights import describe_weights, uses_random_weights

OVERRIDABLE_SECTIONS = ("features", "split", "evaluation")


class ConfigError(ValueError):
    pass


def stop(message: object) -> NoReturn:
    """End the workflow run with ``message`` as one line on stderr and exit status 1.

    For config and data errors found while Snakemake reads the workflow or evaluates an input
    function. Snakemake prints an exception raised there with the file and line it came from, or
    wrapped with a traceback (an input function's); SystemExit passes through both and Python prints
    its message alone. Raised before any job runs, it leaves no lock behind (Snakemake locks the
    working folder once the DAG is built).
    """
    raise SystemExit(f"Error: {message}")


def stop_on_config_error(function: Callable) -> Callable:
    """``function`` ending the run with :func:`stop` when it raises :class:`ConfigError`: how the
    workflow calls the helpers of :mod:`avcmr.workflow` from its input, params and resources
    functions, whose exceptions Snakemake would report with a traceback. The signature stays the
    function's own (Snakemake reads it to pass ``wildcards``, ``attempt``, ...)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ConfigError as error:
            stop(error)

    return call


def deep_merge(base: Mapping, override: Mapping) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def dataset_settings(config: Mapping, name: str) -> dict:
    """The dataset's spec with the global features/split/evaluation sections merged under it."""
    if name not in config["datasets"]:
        raise ConfigError(f"unknown dataset {name!r}; configured: {', '.join(config['datasets'])}")
    spec = dict(config["datasets"][name])
    for section in OVERRIDABLE_SECTIONS:
        spec[section] = deep_merge(config.get(section, {}), spec.get(section, {}))
    spec.setdefault("backbone_weights", {"vggish": "random", "inception": "random", "seed": 0})
    spec["name"] = name
    return spec


def config_hash(*parts: object) -> str:
    """Short stable hash of JSON-serialisable config parts (recorded in every table's metadata)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_dataset(settings: Mapping) -> None:
    """Refuse configurations that would give misleading results, with a one-line reason."""
    name = settings["name"]
    # A features dataset has no backbones: its features were extracted by the file's authors.
    if settings["kind"] not in ("synthetic", "features") and uses_random_weights(settings["backbone_weights"]):
        if not settings.get("allow_random_weights", False):
            raise ConfigError(
                f"dataset {name!r} ({settings['kind']}) is configured with random backbone weights "
                f"({describe_weights(settings['backbone_weights'])}); set backbone_weights to the official "
                "files (see README, 'Official weights'), or set allow_random_weights: true for a pipeline check"
            )
    if settings["kind"] == "folder" and settings.get("archive"):  # root: where it is unpacked
        if not settings.get("layout"):
            raise ConfigError(f"dataset {name!r}: an archive needs a layout (e.g. 'VEGAS/{{label}}/videos/{{clip}}.mp4'; "
                              "README, 'Release archives')")
    elif settings["kind"] == "folder":
        root = settings.get("root")
        if not root or not Path(root).is_dir():
            raise ConfigError(f"dataset {name!r}: folder root {root!r} does not exist")
    if settings["kind"] == "features":
        check_feature_file(settings)
    if settings["kind"] == "synthetic":
        synthetic = settings.get("synthetic", {})
        if synthetic.get("min_duration_s", 2.0) > synthetic.get("max_duration_s", 10.0):
            raise ConfigError(f"dataset {name!r}: min_duration_s exceeds max_duration_s")


def check_feature_file(settings: Mapping) -> None:
    """A features dataset names a feature file that exists (its content is checked at import)."""
    from avcmr.data.feature_file import FeatureFileError, FeatureFileSpec

    name = settings["name"]
    if not settings.get("feature_file"):
        raise ConfigError(f"dataset {name!r} (features) has no feature_file: set feature_file.path (README, "
                          "'Released feature files')")
    try:
        spec = FeatureFileSpec.from_config(name, settings["feature_file"])
    except FeatureFileError as error:
        raise ConfigError(str(error)) from None
    if not Path(spec.path).is_file():
        raise ConfigError(spec.missing_file_message())


def n_synthetic_shards(settings: Mapping) -> int:
    from avcmr.data.synthetic import SyntheticSpec

    n_clips = settings.get("synthetic", {}).get("n_clips", SyntheticSpec.n_clips)
    return math.ceil(n_clips / settings["features"]["shard_size"])


# --- Strict config: one line per mistake, before any job runs ------------------------------------

# Keys of method_params entries that are not constructor arguments: the training budget
# (avcmr.methods.budgets) may be set per method.
NON_CONSTRUCTOR_METHOD_KEYS = ("budget",)


def _key_path(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _schema_at(schema: Mapping, root: Mapping) -> Mapping:
    """Follow a ``$ref`` of the config schema (``#/definitions/...``) to the schema it names."""
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def schema_error_line(error, root_schema: Mapping) -> str:
    """One line for a jsonschema error: the config key, what is wrong, and what is allowed."""
    where = _key_path(error.absolute_path)
    if "propertyNames" in error.relative_schema_path:  # a bad name of a dataset or a method
        name = error.instance
        if error.validator == "enum":
            return (f"config key {where}.{name}: unknown method; allowed: "
                    f"{', '.join(map(str, error.validator_value))}")
        if error.validator == "pattern":
            description = _schema_at(error.schema, root_schema).get("description", "")
            return (f"config key {where}: name {name!r} is not allowed; names must match "
                    f"{error.validator_value} ({description})")
    schema = _schema_at(error.schema, root_schema)
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"{where}.{key}" if error.absolute_path else key for key in unknown)
        return f"unknown config key {keys}; allowed here: {', '.join(allowed)}"
    if error.validator == "enum":
        return (f"config key {where}: {error.instance!r} is not allowed; allowed: "
                f"{', '.join(map(str, error.validator_value))}")
    return f"config key {where}: {error.message.splitlines()[0]}"


def check_config_schema(config: Mapping, schema_path: str | Path) -> None:
    """Validate ``config`` against the workflow's schema; the first problem as one ConfigError line
    (the shallowest key first: a typo in a section name before the errors inside it)."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = jsonschema.Draft202012Validator(schema).iter_errors(dict(config))
    first = min(errors, key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))), default=None)
    if first is not None:
        raise ConfigError(schema_error_line(first, schema))


def check_method_params(config: Mapping) -> None:
    """Every ``method_params`` entry (global and per dataset) is a parameter of its method's
    constructor (or ``budget``); otherwise one line naming the key and the allowed names."""
    from avcmr.methods.registry import constructor_parameters

    sections = [("method_params", config.get("method_params") or {})]
    sections += [(f"datasets.{name}.method_params", spec.get("method_params") or {})
                 for name, spec in (config.get("datasets") or {}).items()]
    parameters = constructor_parameters()  # read once: one lookup per configured method below
    known = sorted(parameters)
    for where, section in sections:
        for method, params in section.items():
            if method not in known:
                raise ConfigError(f"config key {where}.{method}: unknown method; allowed: {', '.join(known)}")
            # The seed comes from evaluation.seeds, so random_state is not a config parameter.
            allowed = [name for name in parameters[method] if name != "random_state"]
            for key in params or {}:
                if key not in allowed and key not in NON_CONSTRUCTOR_METHOD_KEYS:
                    raise ConfigError(f"config key {where}.{method}.{key}: {method} has no parameter {key!r}; "
                                      f"allowed: {', '.join(allowed + list(NON_CONSTRUCTOR_METHOD_KEYS))}")
