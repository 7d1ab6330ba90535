"""Name → method class, so that every table is one loop over the registry."""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from avcmr.methods.base import RetrievalMethod

_REGISTRY: dict[str, type[RetrievalMethod]] = {}
log = logging.getLogger(__name__)

# The module (under avcmr.methods) that registers each name, so that a training job imports only the
# method it runs: importing every module costs ≈ 3 s of torch and scikit-learn, paid by each job of
# `random` or `cca` before. tests/test_methods_registry.py checks it against the decorators.
METHOD_MODULES = {
    "random": "random_baseline", "random_pca": "random_baseline", "cca": "cca", "cca_nipals": "cca_nipals",
    "kcca": "kcca", "c_cca": "cluster_cca", "dcca": "dcca", "c_dcca": "cluster_dcca", "tnn_c_cca": "tnn_cluster_cca",
    "ugach": "ugach", "ugach_real": "ugach", "agah": "agah", "agah_real": "agah", "ucal": "ucal", "acmr": "acmr",
    "dscmr": "dscmr", "ours": "dual_subspace", "explicit": "dual_subspace", "implicit": "dual_subspace",
    "ex_im_share": "dual_subspace", "logreg": "logreg",
}  # fmt: skip

# The rows registered with register_variant, by the row whose training they share: the variant
# fixes only how a fitted model ranks (``output``), so with the same parameters and seed both rows
# train the same networks and the workflow fits once (a test checks this table against the classes).
VARIANT_BASES = {"ugach_real": "ugach", "agah_real": "agah"}


def register(name: str) -> Callable[[type[RetrievalMethod]], type[RetrievalMethod]]:
    """Class decorator: make a method available under the name used in the tables."""

    def decorator(cls: type[RetrievalMethod]) -> type[RetrievalMethod]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def register_variant(
    name: str, base: type[RetrievalMethod], class_name: str, doc: str, **fixed: object
) -> type[RetrievalMethod]:
    """Register ``base`` under a second table name with some constructor arguments ``fixed``.

    The variant is a subclass (named ``class_name``, defined in ``base``'s module so fitted models
    pickle) whose constructor takes every parameter of ``base`` except the fixed ones, which it
    always passes with the given values; training and embedding are ``base``'s own code. Used for
    the rows that rank a hashing method's real-valued outputs by cosine (``agah_real``).
    """
    signature = inspect.signature(base.__init__)
    unknown = set(fixed) - set(signature.parameters)
    if unknown:
        raise ValueError(f"{base.__name__} has no parameter(s) {sorted(unknown)} to fix")
    kept = inspect.Signature([p for n, p in signature.parameters.items() if n not in fixed])

    def __init__(self, *args, **kwargs):
        bound = kept.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        base.__init__(arguments.pop("self"), **arguments, **fixed)

    __init__.__signature__ = kept
    variant = type(class_name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": base.__module__})
    variant.__qualname__ = class_name
    variant.fixed_params = dict(fixed)
    return register(name)(variant)


def as_variant(fitted: RetrievalMethod, name: str) -> RetrievalMethod:
    """The variant row ``name`` of a model fitted as its base row (``VARIANT_BASES``): the same
    fitted state, with the variant's fixed arguments (e.g. ``output="real"``) and class."""
    cls = method_class(name)
    fixed = getattr(cls, "fixed_params", None)
    if fixed is None or type(fitted) is not cls.__mro__[1]:
        raise TypeError(f"{name!r} is not a variant of a fitted {type(fitted).__name__}")
    variant = cls.__new__(cls)
    variant.__dict__.update(fitted.__dict__)
    for key, value in fixed.items():
        setattr(variant, key, value)
    return variant


def available_methods() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[RetrievalMethod]:
    if name not in _REGISTRY:
        if name in METHOD_MODULES:
            importlib.import_module(f"avcmr.methods.{METHOD_MODULES[name]}")
        else:
            _import_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def make_method(name: str, params: Mapping[str, object] | None = None, random_state: int | None = 0) -> RetrievalMethod:
    """Instantiate a registered method with config hyper-parameters and a seed."""
    cls = method_class(name)
    params = dict(params or {})
    unknown = set(params) - set(cls._param_names())
    if unknown:
        raise ValueError(f"method {name!r} has no parameter(s) {sorted(unknown)}; it takes {cls._param_names()}")
    return cls(random_state=random_state, **params)


def _import_all() -> None:
    # Importing the modules runs their @register decorators.
    import pkgutil

    import avcmr.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in {"base", "registry"} and not module.name.startswith("_"):
            importlib.import_module(f"avcmr.methods.{module.name}")


def uses_torch(name: str) -> bool:
    """Whether the method trains with torch, so a GPU can speed it up: the methods that take a
    ``device`` (the closed-form and random baselines take none and never touch a GPU)."""
    parameters = constructor_parameters()
    if name not in parameters:
        method_class(name)  # the error that lists the available names
    return "device" in parameters[name]


def methods_source_digest(folder: str | Path = Path(__file__).parent) -> str:
    """A digest of the method modules in ``folder`` (default: this package's; their names and
    bytes) and of the Python version: what the methods' constructor signatures depend on."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


@functools.cache
def _package_source_digest() -> str:
    """:func:`methods_source_digest` of this package, read once per process: the workflow asks for
    the table once per training job while it builds the DAG."""
    return methods_source_digest()


def default_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/avcmr``, else ``~/.cache/avcmr``; None where there is no home folder (a
    container user without one): then nothing is cached."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "avcmr"
    try:
        return Path.home() / ".cache" / "avcmr"
    except RuntimeError:
        return None


def constructor_parameters(cache_dir: str | Path | None = None) -> dict[str, list[str]]:
    """{method: its constructor's parameter names} for every registered method.

    The workflow asks at parse time (the config check, each training rule's GPU count), where
    importing every method module would import torch and scikit-learn: ≈ 5 s added to every
    ``snakemake`` call and to every cluster job (each parses the Snakefile again). So the table is
    kept in ``cache_dir`` (default ``$XDG_CACHE_HOME/avcmr``, else ``~/.cache/avcmr``) under the
    digest of the method modules' source (:func:`methods_source_digest`): any edit of a method
    module makes a new one. A cache that cannot be read or written is only logged; the table is
    then taken from the imported classes.
    """
    folder = cache_dir or default_cache_dir()
    if folder is None:
        return _constructor_parameters_of_the_classes()
    path = Path(folder) / f"method_parameters.{_package_source_digest()}.json"
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict) and all(isinstance(v, list) for v in cached.values()):
            return cached
        log.warning("ignoring %s: not a table of method parameters", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as error:
        log.warning("ignoring %s: %s", path, error)
    table = _constructor_parameters_of_the_classes()
    try:
        from avcmr.io.parquet import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    except OSError as error:
        log.info("method parameters not cached in %s: %s", path.parent, error)
    return table


def _constructor_parameters_of_the_classes() -> dict[str, list[str]]:
    return {name: method_class(name)._param_names() for name in available_methods()}
