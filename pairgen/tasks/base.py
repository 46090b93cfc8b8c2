"""What a task is: how one work item becomes one or more samples' fields.

A task is a picklable object built in the main process from the command's options and sent to
worker processes. The build machinery (planning order, RNG derivation, sharding, resume,
executors, the dataset card) is shared by every task; a task only says:

* ``plan()``: the ordered list of work items, plus inputs rejected up front (``Skip`` records);
* ``fields()``: the card entry of each field it writes;
* ``make(item, rng)``: the samples of one item, as ``(key, {field: value})`` pairs; keys are
  digits only, unique in the dataset. ``item.payload["samples"]`` says how many it makes.

Field values are encoded by the field name's extension (see ``pairgen.encoding``):
``*.png`` uint8 (H, W, 3) RGB or (H, W) gray, or uint16 (H, W) -> PNG; ``*.npy`` any array;
``json`` a JSON-able dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WorkItem:
    """key: digits only, unique in the dataset. identity: stable text the sample RNG is derived
    from (never the key, so adding inputs does not change other samples). payload: JSON-able."""

    key: str
    identity: str
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """An input that was not used, reported in the dataset card."""

    path: str
    reason: str


class SkipSample(Exception):
    """Raised by Task.make when an input turns out unusable (e.g. a truncated file)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class FieldSpec:
    """One field of the dataset card. role: input (model input) | target (what a model predicts) | aux (extra ground truth,
    e.g. backward flow) | meta (the json record). shape: list with None for
    sizes that vary between samples. meaning: units and conventions in words."""

    role: str
    dtype: str
    shape: list
    meaning: str

    def to_json(self) -> dict:
        return {"role": self.role, "dtype": self.dtype, "shape": list(self.shape), "meaning": self.meaning}


class Task:
    name: str = "task"
    # Samples per shard when --shard-size is not given. Shards are the unit of parallel work,
    # so tasks with slow samples want smaller ones (a build uses at most one worker per shard).
    default_shard_size: int = 256

    def plan(self) -> tuple[list[WorkItem], list[Skip]]:
        raise NotImplementedError

    def fields(self) -> dict[str, FieldSpec]:
        raise NotImplementedError

    def make(self, item: WorkItem, rng: np.random.Generator) -> list[tuple[str, dict[str, Any]]]:
        raise NotImplementedError

    def split(self, item: WorkItem, first: int) -> tuple[WorkItem, WorkItem] | None:
        """Split a multi-sample item after its first ``first`` samples so shards hold exactly
        --shard-size samples; None when the item cannot be split (it then stays whole)."""
        return None

    def close(self) -> None:
        """Release what make() started in this process (a render process, ...)."""

    def card(self) -> dict:
        """Task-specific entries of the dataset card (resolved recipe, conventions, ...)."""
        return {}
