"""Recipes: YAML files (with the line of every key) and ``--set`` overrides.

A recipe is a mapping with ``task`` plus the keys that task allows (each task class lists
them); photo tasks' step pipelines are compiled by ``pairgen.steps``. Every error names the
file, the line and the allowed names.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import RecipeError
from .values import check

RECIPE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin_recipes")


@dataclass(frozen=True)
class Recipe:
    """A read recipe: its name (for shard files), its file, and the raw mapping (``LineDict``:
    keys remember their lines) after ``--set`` overrides."""

    name: str
    path: str
    raw: dict

    @property
    def task(self):
        return self.raw.get("task")

    def line(self, key) -> int:
        return getattr(self.raw, "lines", {}).get(key, 0)

    def where(self, key) -> str:
        """Where the value of top-level ``key`` came from: 'FILE line N' or '--set KEY=VALUE'."""
        return where(self.path, self.line(key))

    def value(self, key, hint, default=None):
        """The recipe's value of ``key``, refused with the real reason when not of type ``hint``."""
        if key not in self.raw:
            return default
        problem = check(self.raw[key], hint)
        if problem:
            raise RecipeError(f"{self.where(key)}: {key} {problem}")
        return self.raw[key]


class SetArg(int):
    """The 'line' of a value given by ``--set``: the --set argument itself (an int, the line of
    the mapping it went into, so code that prints 'FILE line N' still names the argument)."""

    def __new__(cls, line: int, argument: str):
        self = super().__new__(cls, line)
        self.argument = argument
        return self

    def __reduce__(self):  # recipes are deep-copied and pickled to workers
        return SetArg, (int(self), self.argument)

    def __format__(self, spec) -> str:
        return f"{int(self)} (--set {self.argument})"


def where(path: str, line) -> str:
    """'FILE line N' for a value from a file, '--set KEY=VALUE' for one from the command line."""
    if isinstance(line, SetArg):
        return f"--set {line.argument}"
    return f"{path} line {line}"


# ----------------------------------------------------------------------------- YAML with lines


class LineDict(dict):
    """A dict that remembers the line (1-based) of each key, and of itself."""

    line: int = 0
    lines: dict


class LineList(list):
    line: int = 0
    lines: list


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader, node):
    seq = LineList(loader.construct_object(child, deep=True) for child in node.value)
    seq.line = node.start_mark.line + 1
    seq.lines = [child.start_mark.line + 1 for child in node.value]
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def builtin_recipes() -> dict[str, str]:
    """name -> path of every recipe shipped in recipes/."""
    return {
        name[: -len(".yaml")]: os.path.join(RECIPE_DIR, name)
        for name in sorted(os.listdir(RECIPE_DIR))
        if name.endswith(".yaml")
    }


def read_recipe(name_or_path: str) -> tuple[str, str, dict]:
    """(recipe name, file path, raw mapping with line numbers)."""
    if os.path.isfile(name_or_path):
        path = name_or_path
        name = os.path.splitext(os.path.basename(path))[0]
    else:
        known = builtin_recipes()
        if name_or_path not in known:
            raise RecipeError(
                f"unknown recipe {name_or_path!r}: not a file and not a built-in recipe "
                f"(built-in: {', '.join(known)}; see `pairgen recipes`)"
            )
        name, path = name_or_path, known[name_or_path]
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping with a 'task' key")
    # Names must be usable in shard file names and keys.
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
    return name, path, raw


def apply_overrides(raw: dict, overrides: list[str], path: str) -> dict:
    """Apply ``--set a.b.c=value`` overrides (value parsed as YAML). List items are addressed by
    index or by their ``label``. A new key may be added to an existing mapping; validation
    then decides whether it is allowed."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected key=value, e.g. --set degrade.0.p=0.5")
        dotted, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise RecipeError(f"--set {item}: the value {text!r} is not valid YAML ({problem}); "
                              "quote it to pass a string, e.g. --set 'key=\"text\"'") from None
        parts = dotted.strip().split(".")
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = _list_index(node, part)
                if index is None:
                    labels = [s.get("label") for s in node if isinstance(s, dict) and s.get("label")]
                    raise RecipeError(
                        f"--set {dotted}: {where!r} matches no item of the list in {path} "
                        f"(use an index 0..{len(node) - 1} or a label: {', '.join(labels) or 'none'})"
                    )
                if last:
                    node[index] = value
                    _mark(node, index, item)
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                    _mark(node, part, item)
                elif part not in node:
                    raise RecipeError(f"--set {dotted}: {path} has no key {where!r} (keys there: {', '.join(map(str, node))})")
                else:
                    node = node[part]
            else:
                raise RecipeError(f"--set {dotted}: {where!r} is a value in {path}, not a mapping or list")
    return raw


def _mark(node, key, argument: str) -> None:
    """Remember that node[key] came from --set (errors then name the argument)."""
    lines = getattr(node, "lines", None)
    if isinstance(lines, dict):
        lines[key] = SetArg(getattr(node, "line", 0), argument)
    elif isinstance(lines, list) and isinstance(key, int):
        lines[key] = SetArg(getattr(node, "line", 0), argument)


def _list_index(node: list, part: str):
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for i, step in enumerate(node):
        if isinstance(step, dict) and step.get("label") == part:
            return i
    return None


def load_recipe(name_or_path: str, overrides=()) -> Recipe:
    """Read a recipe and apply ``--set`` overrides."""
    name, path, raw = read_recipe(name_or_path)
    return Recipe(name, path, apply_overrides(raw, list(overrides), path))
