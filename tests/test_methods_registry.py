"""The method registry: the name → module table that lets a training job import only its method."""

import os
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


def test_constructor_parameters_are_the_classes_own_and_are_read_back_from_the_cache(tmp_path):
    live = {name: registry.method_class(name)._param_names() for name in registry.available_methods()}
    assert registry.constructor_parameters(tmp_path) == live
    (cached,) = tmp_path.glob("method_parameters.*.json")
    assert cached.name == f"method_parameters.{registry.methods_source_digest()}.json"
    # The next call answers from the file, not from the classes.
    cached.write_text('{"ours": ["only_this"]}')
    assert registry.constructor_parameters(tmp_path) == {"ours": ["only_this"]}


@pytest.mark.parametrize("content", ["{not json", '["a", "list"]', '{"ours": "not a list"}'])
def test_an_unreadable_cached_table_is_rebuilt_from_the_classes(tmp_path, content, caplog):
    path = tmp_path / f"method_parameters.{registry.methods_source_digest()}.json"
    path.write_text(content)
    table = registry.constructor_parameters(tmp_path)
    assert table["ours"] == registry.method_class("ours")._param_names() and "ignoring" in caplog.text
    assert registry.constructor_parameters(tmp_path) == table  # rewritten: read back as built


def test_the_digest_follows_every_method_modules_bytes(tmp_path):
    for path in registry.methods_source_digest.__defaults__[0].glob("*.py"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    assert registry.methods_source_digest(tmp_path) == registry.methods_source_digest()
    with open(tmp_path / "dscmr.py", "a") as module:
        module.write("# an edit\n")
    assert registry.methods_source_digest(tmp_path) != registry.methods_source_digest()


def test_the_workflows_parse_time_questions_import_no_method_module_once_cached(tmp_path):
    # What the Snakefile asks while it parses: the config check and each training rule's GPU count.
    code = (
        "import sys\n"
        "from avcmr.config import check_method_params\n"
        "from avcmr.methods.registry import uses_torch\n"
        "check_method_params({'method_params': {'ours': {'epochs': 2}, 'cca': {'n_components': 2}}})\n"
        "gpus = {name: uses_torch(name) for name in ('ours', 'dscmr', 'cca', 'random')}\n"
        "print(gpus, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn', 'scipy')"
        " or m.startswith('avcmr.methods.') and m not in ('avcmr.methods.base', 'avcmr.methods.registry')))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-2000:]
    assert (tmp_path / "avcmr").is_dir()
    gpus = "{'ours': True, 'dscmr': True, 'cca': False, 'random': False}"
    assert runs[0].stdout.startswith(gpus) and "torch" in runs[0].stdout  # the first call builds the table
    assert runs[1].stdout.strip() == f"{gpus} []"


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # the cache folder cannot be made
    table = registry.constructor_parameters(blocked)
    assert table == {name: registry.method_class(name)._param_names() for name in registry.available_methods()}
    assert blocked.read_text() == "not a folder"


def test_without_a_home_folder_the_table_comes_from_the_classes(monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(registry.Path, "home", staticmethod(no_home))
    assert registry.default_cache_dir() is None
    assert registry.constructor_parameters()["ours"] == registry.method_class("ours")._param_names()
