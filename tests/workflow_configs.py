"""Configs as the workflow sees them, for the unit tests of avcmr.workflow: the default config's
global sections with other datasets, validated against the schema (which fills in its defaults,
as the Snakefile's validate() does)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import yaml
from conftest import REPO
from snakemake.utils import validate

from avcmr.config import deep_merge

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
RANDOM = {"vggish": "random", "inception": "random", "seed": 0}


def run_config(datasets: dict, **top) -> dict:
    """The default config with ``datasets`` (and their default_datasets), ``top`` merged over it."""
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config = {**base, "datasets": copy.deepcopy(datasets), "default_datasets": list(datasets)}
    config = deep_merge(config, top)
    validate(config, SCHEMA)
    return config


def synthetic(**spec) -> dict:
    return {"kind": "synthetic", "synthetic": {"n_classes": 4, "n_clips": 30}, "backbone_weights": RANDOM, **spec}


def wildcards(**values) -> SimpleNamespace:
    """Wildcards as a params function sees them (attributes, and ``get`` as Snakemake's have)."""
    namespace = SimpleNamespace(**values)
    namespace.get = lambda key, default=None: values.get(key, default)
    return namespace
