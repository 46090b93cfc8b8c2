"""Recipes: YAML files -> validated, compiled degradation pipelines.

A recipe is a mapping with ``task`` plus task keys. For image-degradation tasks the pipelines
are lists of *steps*; a step is one of

    - op: blur            # a registered operation; the other keys are its Config fields
      p: 0.8              # probability the step runs (default 1)
      label: stage2_blur  # optional name, for --set paths and shuffle ordering
      sigma_range: [0.2, 1.5]
    - one_of:             # exactly one branch runs, chosen by weight
        - {weight: 0.5, steps: [...]}
        - {weight: 0.5, steps: [...]}
    - shuffle:            # the steps run in a random order ...
        steps: [...]
        keep_order: [a, b]   # ... except that the step labelled a comes before b

Every error names the file, the line and the allowed names.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from . import ops
from .errors import RecipeError
from .ops.util import choose
from .records import to_jsonable

RECIPE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin_recipes")
STEP_KEYS = {"op", "p", "label"}


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
        value = yaml.safe_load(text)
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
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                elif part not in node:
                    raise RecipeError(f"--set {dotted}: {path} has no key {where!r} (keys there: {', '.join(map(str, node))})")
                else:
                    node = node[part]
            else:
                raise RecipeError(f"--set {dotted}: {where!r} is a value in {path}, not a mapping or list")
    return raw


def _list_index(node: list, part: str):
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for i, step in enumerate(node):
        if isinstance(step, dict) and step.get("label") == part:
            return i
    return None


# ----------------------------------------------------------------------------- compiled steps


@dataclass(frozen=True)
class OpStep:
    op: ops.Operation
    config: Any
    p: float = 1.0
    label: str = ""

    def describe(self) -> dict:
        out = {"op": self.op.name, "p": self.p, **to_jsonable(self.config)}
        if self.label:
            out["label"] = self.label
        return out


@dataclass(frozen=True)
class OneOf:
    weights: tuple[float, ...]
    branches: tuple[tuple, ...]
    p: float = 1.0
    label: str = ""

    def describe(self) -> dict:
        return {
            "one_of": [
                {"weight": w, "steps": [s.describe() for s in b]} for w, b in zip(self.weights, self.branches)
            ],
            "p": self.p,
        }


@dataclass(frozen=True)
class Shuffle:
    steps: tuple
    keep_order: tuple[str, ...] = ()
    p: float = 1.0
    label: str = ""

    def describe(self) -> dict:
        return {"shuffle": {"steps": [s.describe() for s in self.steps], "keep_order": list(self.keep_order)}, "p": self.p}


def compile_steps(raw_steps, path: str, where: str) -> tuple:
    if raw_steps is None:
        return ()
    if not isinstance(raw_steps, list):
        raise RecipeError(f"{path} line {_line(raw_steps)}: {where} must be a list of steps")
    lines = getattr(raw_steps, "lines", [0] * len(raw_steps))
    return tuple(compile_step(step, path, line) for step, line in zip(raw_steps, lines))


def compile_step(raw, path: str, line: int):
    if not isinstance(raw, dict):
        raise RecipeError(f"{path} line {line}: a step must be a mapping with 'op', 'one_of' or 'shuffle'")
    line = getattr(raw, "line", line)
    p = _probability(raw.get("p", 1.0), path, _key_line(raw, "p", line))
    label = str(raw.get("label", ""))
    if "one_of" in raw:
        _only(raw, {"one_of", "p", "label"}, path, line)
        branches_raw = raw["one_of"]
        if not isinstance(branches_raw, list) or not branches_raw:
            raise RecipeError(f"{path} line {line}: one_of needs a non-empty list of {{weight, steps}} branches")
        weights, branches = [], []
        for branch in branches_raw:
            bline = getattr(branch, "line", line)
            if not isinstance(branch, dict):
                raise RecipeError(f"{path} line {bline}: a one_of branch must be a mapping with 'weight' and 'steps'")
            _only(branch, {"weight", "steps"}, path, bline)
            weight = branch.get("weight", 1.0)
            if not isinstance(weight, (int, float)) or weight < 0:
                raise RecipeError(f"{path} line {bline}: weight must be a number >= 0, got {weight!r}")
            weights.append(float(weight))
            branches.append(compile_steps(branch.get("steps", []), path, "steps"))
        if sum(weights) <= 0:
            raise RecipeError(f"{path} line {line}: one_of weights sum to 0")
        return OneOf(tuple(w / sum(weights) for w in weights), tuple(branches), p, label)
    if "shuffle" in raw:
        _only(raw, {"shuffle", "p", "label"}, path, line)
        body = raw["shuffle"]
        if isinstance(body, list):
            body = {"steps": body}
        _only(body, {"steps", "keep_order"}, path, getattr(body, "line", line))
        steps = compile_steps(body.get("steps", []), path, "shuffle.steps")
        keep = tuple(body.get("keep_order", ()) or ())
        labels = [s.label for s in steps]
        for name in keep:
            if name not in labels:
                raise RecipeError(
                    f"{path} line {_key_line(body, 'keep_order', line)}: keep_order names {name!r}, "
                    f"which labels no step of this shuffle (labels: {', '.join(l for l in labels if l) or 'none'})"
                )
        return Shuffle(steps, keep, p, label)
    if "op" not in raw:
        raise RecipeError(f"{path} line {line}: a step needs 'op', 'one_of' or 'shuffle' (got keys: {', '.join(map(str, raw))})")
    name = raw["op"]
    if name not in ops.REGISTRY:
        raise RecipeError(
            f"{path} line {_key_line(raw, 'op', line)}: unknown operation {name!r}; "
            f"allowed: {', '.join(sorted(ops.REGISTRY))}"
        )
    op = ops.REGISTRY[name]
    values = {k: v for k, v in raw.items() if k not in STEP_KEYS}
    try:
        config = op.make_config(values)
    except KeyError as exc:
        key = exc.args[0]
        raise RecipeError(
            f"{path} line {_key_line(raw, key, line)}: unknown parameter {key!r} for operation {name!r}; "
            f"allowed: {', '.join(sorted(STEP_KEYS | set(op.config_keys())))}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{path} line {line}: invalid parameters for operation {name!r}: {exc}") from None
    return OpStep(op, config, p, label)


def _only(raw: dict, allowed: set, path: str, line: int):
    for key in raw:
        if key not in allowed:
            raise RecipeError(
                f"{path} line {_key_line(raw, key, line)}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
            )


def _probability(value, path, line) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise RecipeError(f"{path} line {line}: p must be a probability in [0, 1], got {value!r}")
    return float(value)


def _key_line(raw, key, default):
    return getattr(raw, "lines", {}).get(key, default)


def _line(raw):
    return getattr(raw, "line", 0)


# ----------------------------------------------------------------------------- running


def run_steps(steps, image: np.ndarray, rng: np.random.Generator, ctx: ops.Context, record: list,
              parent: str = "") -> np.ndarray:
    """Run compiled steps, drawing every choice from ``rng``; append each applied operation as
    {"op", "params", "label"} to ``record``. The label names the step for summaries: its own
    label, else its enclosing step's label and its op name (``noise1.gaussian_noise``)."""
    for step in steps:
        if step.p < 1.0 and rng.random() >= step.p:
            continue
        label = step.label or (f"{parent}.{step.op.name}" if parent and isinstance(step, OpStep) else parent)
        if isinstance(step, OpStep):
            params = step.op.sample(rng, step.config, image.shape, ctx)
            image = step.op.apply(image, params)
            record.append({"op": step.op.name, "label": label or step.op.name, "params": step.op.params_to_json(params)})
        elif isinstance(step, OneOf):
            branch = choose(rng, step.weights)
            image = run_steps(step.branches[branch], image, rng, ctx, record, label)
        else:
            image = run_steps(_shuffled(step, rng), image, rng, ctx, record, label)
    return image


def _shuffled(step: Shuffle, rng: np.random.Generator) -> list:
    order = [step.steps[i] for i in rng.permutation(len(step.steps))]
    # keep_order: the labelled steps take the positions they landed on, in the stated order.
    positions = sorted(i for i, s in enumerate(order) if s.label in step.keep_order)
    ranked = sorted((s for s in order if s.label in step.keep_order), key=lambda s: step.keep_order.index(s.label))
    for position, s in zip(positions, ranked):
        order[position] = s
    return order


def replay_ops(image: np.ndarray, applied: list[dict]) -> np.ndarray:
    """Re-apply recorded operations: no random draws, bit-exact with the original run."""
    for entry in applied:
        op = ops.REGISTRY[entry["op"]]
        image = op.apply(image, op.params_from_json(entry["params"]))
    return image
