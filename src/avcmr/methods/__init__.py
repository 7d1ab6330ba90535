"""Retrieval methods (one module each) behind a name registry."""

from avcmr.methods.base import NotFittedError, RetrievalMethod
from avcmr.methods.registry import available_methods, make_method, method_class, register

__all__ = ["NotFittedError", "RetrievalMethod", "available_methods", "make_method", "method_class", "register"]
