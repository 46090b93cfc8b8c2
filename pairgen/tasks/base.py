"""The task contract: how a recipe and the command's options become samples.

A task is a picklable object built in the main process by ``Task.from_recipe`` and sent to
worker processes. The build machinery (planning order, RNG derivation, sharding, resume,
executors, the dataset card, replay, inspect, previews, the trainer) is shared by every task
and finds a task by its name in the registry (``pairgen.tasks``). A task class says:

* ``name``: the ``task:`` value of its recipes; ``recipe_keys``: the other top-level keys its
  recipes may hold; ``Options``: a dataclass of its command options (``option()`` fields), which
  the CLI turns into flags and the API checks, so an option of another task is a usage error;
* ``from_recipe(recipe, options, inputs)``: the task object;
* ``plan()``: the ordered work items, plus inputs rejected up front (``Skip`` records);
* ``fields()``: each field it writes, with its role, dtype, shape, meaning and ``view`` (how a
  preview shows it, a name in ``pairgen.preview.VIEWS``);
* ``make(item, rng)``: the samples of one item, as ``(key, {field: value})`` pairs; keys are
  digits only, unique in the dataset. ``item.payload["samples"]`` says how many it makes;
  every ``json`` record carries ``"task"``;
* ``split``, ``card``, ``options_record``, ``replay(record)`` (classmethod) and ``close``.

Field values are encoded by the field name's extension (see ``pairgen.encoding``):
``*.png`` uint8 (H, W, 3) RGB or (H, W) gray, or uint16 (H, W) -> PNG; ``*.npy`` any array;
``json`` a JSON-able dict.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import PairgenError, RecipeError, UsageError
from ..recipes import where
from ..sources import Skip

__all__ = ["BuildInputs", "FieldSpec", "NoOptions", "Skip", "SkipSample", "Task", "WorkItem", "option"]


@dataclass(frozen=True)
class WorkItem:
    """key: digits only, unique in the dataset. identity: stable text the sample RNG is derived
    from (never the key, so adding inputs does not change other samples). payload: JSON-able."""

    key: str
    identity: str
    payload: dict = field(default_factory=dict)


class SkipSample(Exception):
    """Raised by Task.make when an input turns out unusable (e.g. a truncated file)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class FieldSpec:
    """One field of the dataset card. role: input (model input) | target (what a model predicts)
    | aux (extra ground truth, e.g. backward flow) | meta (the json record). shape: list with None
    for sizes that vary between samples. meaning: units and conventions in words. view: how it
    is shown (``pairgen.preview.VIEWS``: rgb, gray, flow, depth, ids, mask, occlusion, heatmap,
    normals, ab); None for records."""

    role: str
    dtype: str
    shape: list
    meaning: str
    view: str | None = None

    def to_json(self) -> dict:
        out = {"role": self.role, "dtype": self.dtype, "shape": list(self.shape), "meaning": self.meaning}
        if self.view is not None:
            out["view"] = self.view
        return out


@dataclass(frozen=True)
class BuildInputs:
    """What every build passes to every task: the --src values (photos, textures; empty: the
    embedded photos), the run seed, --limit, --max-pixels, the worker count and the folders a
    source search must leave out (the build's own --out)."""

    src: tuple = ()
    seed: int = 0
    limit: int | None = None
    max_pixels: int | None = None
    workers: int = 1
    exclude: tuple = ()


def option(type_: type, help: str, default: Any = None, *, choices: tuple | None = None, minimum: int | None = None,
           flag: str | None = None):
    """A task option: a dataclass field the CLI turns into ``--name`` (underscores become
    dashes; ``flag`` overrides). ``default`` None means "the task's own default", said in
    ``help``. bool options become ``--name/--no-name``."""
    return field(default=default, metadata={"type": type_, "help": help, "choices": choices, "minimum": minimum,
                                            "flag": flag})


@dataclass(frozen=True)
class NoOptions:
    """A task without options of its own."""


def option_flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


class Task:
    name: ClassVar[str] = "task"
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    recipe_keys: ClassVar[frozenset] = frozenset()  # besides "task" and "description"
    # Samples per shard when --shard-size is not given. Shards are the unit of parallel work,
    # so tasks with slow samples want smaller ones (a build uses at most one worker per shard).
    default_shard_size: ClassVar[int] = 256
    # replay(record) regenerates a sample bit-exactly (photo tasks); rendered ones render again.
    replayable: ClassVar[bool] = False
    # A dedicated command for this task: (command name, the option that is its argument, help).
    command: ClassVar[tuple[str, str, str] | None] = None
    # The trainer's kind (train/kinds.py) for this task's card; None: chosen from the target's view.
    train_kind: ClassVar[str | None] = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse_options(cls, given: dict, recipe_name: str):
        """The Options of this task from the command's options (None = not given). An option
        this task does not have is a usage error naming the task and the options it has."""
        known = {f.name: f for f in dataclasses.fields(cls.Options)}
        for name, value in given.items():
            if value is None:
                continue
            if name not in known:
                flag = "--" + name.replace("_", "-")
                have = ", ".join(option_flag(f) for f in known.values()) or "none"
                raise UsageError(f"{flag} is not an option of recipe {recipe_name!r} (task {cls.name}; its options: {have})")
            minimum = known[name].metadata.get("minimum")
            if minimum is not None and isinstance(value, (int, float)) and value < minimum:
                raise UsageError(f"{option_flag(known[name])} must be at least {minimum}, got {value}")
            choices = known[name].metadata.get("choices")
            if choices is not None and value not in choices:
                raise UsageError(f"{option_flag(known[name])} must be one of {', '.join(map(str, choices))}, got {value}")
        return cls.Options(**{k: v for k, v in given.items() if v is not None})

    @classmethod
    def check_recipe_keys(cls, raw: dict, path: str) -> None:
        allowed = {"task", "description"} | set(cls.recipe_keys)
        for key in raw:
            if key not in allowed:
                line = getattr(raw, "lines", {}).get(key, 0)
                raise RecipeError(f"{where(path, line)}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")

    @classmethod
    def from_recipe(cls, recipe, options, inputs: BuildInputs) -> "Task":
        """recipe: ``pairgen.recipes.Recipe`` (name, path, raw mapping with lines, keys already
        checked); options: this task's Options; inputs: BuildInputs."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building
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

    def options_record(self) -> dict:
        """The options in effect (defaults resolved), for build.json and the card."""
        return {}

    def shard_summary(self, records: list[dict]) -> dict:
        """Statistics of one shard's samples from their json records (JSON-able), kept in the
        shard's stats file, so a resumed build still has them; {} for none."""
        return {}

    def dataset_summary(self, summaries: list[dict]) -> dict:
        """Card entries merged from every shard's ``shard_summary`` (e.g. a histogram)."""
        return {}

    # ------------------------------------------------------------------ replay
    @classmethod
    def replay(cls, record: dict) -> dict[str, np.ndarray]:
        """Regenerate a sample's fields bit-exactly from its json record."""
        raise PairgenError(f"{cls.name} samples cannot be replayed from their record"
                           + (f": {cls.not_replayable}" if getattr(cls, "not_replayable", "") else ""))
