"""The method registry: the name → module table that lets a training job import only its method."""

import subprocess
import sys

import pytest

from avcmr.methods import registry


def test_module_table_names_every_registered_method_and_where_it_is_defined():
    registered = {name: registry.method_class(name) for name in registry.available_methods()}
    assert set(registry.METHOD_MODULES) == set(registered)
    for name, cls in registered.items():
        assert cls.__module__ == f"avcmr.methods.{registry.METHOD_MODULES[name]}", name
        assert cls.name == name


def test_unknown_method_names_the_available_ones():
    with pytest.raises(KeyError, match="unknown method 'nope'.*ours"):
        registry.method_class("nope")


def test_closed_form_methods_and_the_fit_stage_load_without_torch_or_scikit_learn():
    # A fresh interpreter, as a workflow job: what `fit_and_evaluate` of `random`/`cca`/`c_cca` imports.
    code = (
        "import sys\n"
        "import avcmr.stages, avcmr.evaluation.metrics, avcmr.methods.budgets, avcmr.models_io\n"
        "from avcmr.methods.registry import make_method\n"
        "for name in ('random', 'random_pca', 'cca', 'c_cca'):\n"
        "    make_method(name)\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'tensorflow') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
