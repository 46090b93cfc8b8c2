"""Degradation operations. Importing this package registers every operation.

See ``pairgen.ops.base`` for the contract. Adding an operation: write its module here, import
it below, and its contract tests run automatically (tests/test_ops.py walks REGISTRY).
"""
from pairgen.ops.base import REGISTRY, Context, WithOutputs, get, to_float, to_uint8

# Imported for their registrations.
from pairgen.ops import blur, jpeg, noise, resize, sharpen  # noqa: E402,F401

__all__ = ["REGISTRY", "Context", "WithOutputs", "get", "to_float", "to_uint8"]
