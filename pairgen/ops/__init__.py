"""Image operations. Importing this package registers every operation.

See ``pairgen.ops.base`` for the contract. Adding an operation: write its module here (it is
found by listing the package), and its contract tests run automatically (tests/test_ops.py
walks REGISTRY). ``base`` and ``util`` hold the contract and helpers and register nothing.
"""
import importlib
import pkgutil

from pairgen.ops.base import REGISTRY, Context, WithOutputs, get, to_float, to_uint8

for _module in pkgutil.iter_modules(__path__):  # imported for their registrations
    if _module.name not in ("base", "util"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Context", "WithOutputs", "get", "to_float", "to_uint8"]
