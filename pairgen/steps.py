"""Step pipelines: compile a recipe's step list, run it with a generator, replay a record.

A step is one of

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

Every compile error names the file, the line and the allowed names. An operation may return
more images than the one the pipeline carries (``ops.WithOutputs``: e.g. a mask beside the
masked image); ``run_steps`` and ``replay_ops`` collect them in ``outputs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ops
from .errors import RecipeError
from .ops.base import ParameterError
from .recipes import where
from .values import describe, fits
from .ops.util import choose
from .records import to_jsonable

STEP_KEYS = {"op", "p", "label"}


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


def compile_steps(raw_steps, path: str, key: str) -> tuple:
    if raw_steps is None:
        return ()
    if not isinstance(raw_steps, list):
        raise RecipeError(f"{where(path, _line(raw_steps))}: {key} must be a list of steps")
    lines = getattr(raw_steps, "lines", [0] * len(raw_steps))
    return tuple(compile_step(step, path, line) for step, line in zip(raw_steps, lines))


def compile_step(raw, path: str, line: int):
    if not isinstance(raw, dict):
        raise RecipeError(f"{where(path, line)}: a step must be a mapping with 'op', 'one_of' or 'shuffle'")
    line = getattr(raw, "line", line)
    p = _probability(raw.get("p", 1.0), path, _key_line(raw, "p", line))
    label = str(raw.get("label", ""))
    if "one_of" in raw:
        _only(raw, {"one_of", "p", "label"}, path, line)
        branches_raw = raw["one_of"]
        if not isinstance(branches_raw, list) or not branches_raw:
            raise RecipeError(f"{where(path, line)}: one_of needs a non-empty list of {{weight, steps}} branches")
        weights, branches = [], []
        for branch in branches_raw:
            bline = getattr(branch, "line", line)
            if not isinstance(branch, dict):
                raise RecipeError(f"{where(path, bline)}: a one_of branch must be a mapping with 'weight' and 'steps'")
            _only(branch, {"weight", "steps"}, path, bline)
            weight = branch.get("weight", 1.0)
            if not isinstance(weight, (int, float)) or weight < 0:
                raise RecipeError(f"{where(path, bline)}: weight must be a number >= 0, got {weight!r}")
            weights.append(float(weight))
            branches.append(compile_steps(branch.get("steps", []), path, "steps"))
        if sum(weights) <= 0:
            raise RecipeError(f"{where(path, line)}: one_of weights sum to 0")
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
                    f"{where(path, _key_line(body, 'keep_order', line))}: keep_order names {name!r}, "
                    f"which labels no step of this shuffle (labels: {', '.join(l for l in labels if l) or 'none'})"
                )
        return Shuffle(steps, keep, p, label)
    if "op" not in raw:
        raise RecipeError(f"{where(path, line)}: a step needs 'op', 'one_of' or 'shuffle' (got keys: {', '.join(map(str, raw))})")
    name = raw["op"]
    if name not in ops.REGISTRY:
        raise RecipeError(
            f"{where(path, _key_line(raw, 'op', line))}: unknown operation {name!r}; "
            f"allowed: {', '.join(sorted(ops.REGISTRY))}"
        )
    op = ops.REGISTRY[name]
    values = {k: v for k, v in raw.items() if k not in STEP_KEYS}
    try:
        config = op.make_config(values)
    except KeyError as exc:
        key = exc.args[0]
        raise RecipeError(
            f"{where(path, _key_line(raw, key, line))}: unknown parameter {key!r} for operation {name!r}; "
            f"allowed: {', '.join(sorted(STEP_KEYS | set(op.config_keys())))}"
        ) from None
    except ParameterError as exc:
        raise RecipeError(f"{where(path, _key_line(raw, exc.key, line))}: operation {name!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where(path, line)}: invalid parameters for operation {name!r}: {exc}") from None
    return OpStep(op, config, p, label)


def _only(raw: dict, allowed: set, path: str, line: int):
    for key in raw:
        if key not in allowed:
            raise RecipeError(
                f"{where(path, _key_line(raw, key, line))}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
            )


def _probability(value, path, line) -> float:
    if not fits(value, float) or not 0.0 <= value <= 1.0:
        raise RecipeError(f"{where(path, line)}: p must be a probability in [0, 1], got {describe(value)}")
    return float(value)


def _key_line(raw, key, default):
    return getattr(raw, "lines", {}).get(key, default)


def _line(raw):
    return getattr(raw, "line", 0)


# ----------------------------------------------------------------------------- running


def run_steps(steps, image: np.ndarray, rng: np.random.Generator, ctx: ops.Context, record: list,
              parent: str = "", outputs: dict | None = None) -> np.ndarray:
    """Run compiled steps, drawing every choice from ``rng``; append each applied operation as
    {"op", "params", "label"} to ``record``. The label names the step for summaries: its own
    label, else its enclosing step's label and its op name (``noise1.gaussian_noise``). Extra
    images that operations return (``ops.WithOutputs``) go into ``outputs`` by name."""
    for step in steps:
        if step.p < 1.0 and rng.random() >= step.p:
            continue
        label = step.label or (f"{parent}.{step.op.name}" if parent and isinstance(step, OpStep) else parent)
        if isinstance(step, OpStep):
            params = step.op.sample(rng, step.config, image.shape, ctx)
            image = _collect(step.op.apply(image, params), outputs, step.op.name)
            record.append({"op": step.op.name, "label": label or step.op.name, "params": step.op.params_to_json(params)})
        elif isinstance(step, OneOf):
            branch = choose(rng, step.weights)
            image = run_steps(step.branches[branch], image, rng, ctx, record, label, outputs)
        else:
            image = run_steps(_shuffled(step, rng), image, rng, ctx, record, label, outputs)
    return image


def _collect(result, outputs: dict | None, op_name: str) -> np.ndarray:
    if not isinstance(result, ops.WithOutputs):
        return result
    if outputs is None:
        raise RecipeError(f"operation {op_name!r} makes extra outputs ({', '.join(result.outputs)}) that this task does not take")
    outputs.update(result.outputs)
    return result.image


def _shuffled(step: Shuffle, rng: np.random.Generator) -> list:
    order = [step.steps[i] for i in rng.permutation(len(step.steps))]
    # keep_order: the labelled steps take the positions they landed on, in the stated order.
    positions = sorted(i for i, s in enumerate(order) if s.label in step.keep_order)
    ranked = sorted((s for s in order if s.label in step.keep_order), key=lambda s: step.keep_order.index(s.label))
    for position, s in zip(positions, ranked):
        order[position] = s
    return order


def replay_ops(image: np.ndarray, applied: list[dict], outputs: dict | None = None) -> np.ndarray:
    """Re-apply recorded operations: no random draws, bit-exact with the original run."""
    for entry in applied:
        op = ops.REGISTRY[entry["op"]]
        image = _collect(op.apply(image, op.params_from_json(entry["params"])), outputs, op.name)
    return image
