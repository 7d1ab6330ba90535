"""Name → method class, so that every table is one loop over the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from avcmr.methods.base import RetrievalMethod

_REGISTRY: dict[str, type[RetrievalMethod]] = {}


def register(name: str) -> Callable[[type[RetrievalMethod]], type[RetrievalMethod]]:
    """Class decorator: make a method available under the name used in the tables."""

    def decorator(cls: type[RetrievalMethod]) -> type[RetrievalMethod]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_methods() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[RetrievalMethod]:
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
    import importlib
    import pkgutil

    import avcmr.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in {"base", "registry"} and not module.name.startswith("_"):
            importlib.import_module(f"avcmr.methods.{module.name}")
