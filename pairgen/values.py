"""Recipe values against their types: YAML gives bools, ints, floats, strings and lists, and a
recipe value of the wrong type must be refused with the real reason, not converted (``4.0`` is
not a scale, ``true`` is not a probability) and not left to crash later.

``check(value, hint)`` returns None when ``value`` fits the type hint, else what is wrong in words.
Hints understood: int, float, bool, str, X | None, tuple[X, ...], tuple[X, Y], Any (anything).
"""
from __future__ import annotations

import re
import types
import typing

# PyYAML follows YAML 1.1, where a float needs a dot: 1e9 and 1E-3 are strings.
_NUMBER_LIKE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


def describe(value) -> str:
    """A value as the user wrote it, with its YAML type, and a hint where YAML surprises."""
    if isinstance(value, str) and _NUMBER_LIKE.match(value.strip()):
        return (f"{value!r}, which YAML reads as a string (YAML 1.1 needs a dot in a float: "
                f"write {_yaml_float(value)})")
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            tuple: "a list", dict: "a mapping", type(None): "nothing"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def _yaml_float(text: str) -> str:
    mantissa, _, exponent = text.strip().lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent if exponent[:1] in '+-' else '+' + exponent}"


def expected(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(expected(a) if a is not type(None) else "null" for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
    return str(hint)


def _plural(hint) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(hint, "values")


def fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is None:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
    return True  # a type this checker does not know: the operation validates it


def check(value, hint) -> str | None:
    return None if fits(value, hint) else f"must be {expected(hint)}, got {describe(value)}"
