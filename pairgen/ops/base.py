"""The operation contract and its registry.

An operation is three things registered under one name:

* ``Config``: a frozen dataclass of *sampling settings* (ranges, probabilities). These are the
  keys a recipe YAML may set for the op; its defaults are the published ones.
* ``Params``: a frozen dataclass of *drawn parameters*: everything ``apply`` needs, nothing
  random left. Fields are JSON scalars or tuples of them. Random fields (noise) are described by
  an integer ``seed`` so that ``apply`` stays pure and replay is bit-exact.
* ``sample(rng, config, image_shape, ctx) -> Params`` draws from a ``numpy.random.Generator``;
  ``apply(image, params) -> image`` (or ``WithOutputs(image, {name: array})`` when it makes
  more, e.g. a mask) is pure: it draws nothing and never modifies its input.

Images inside a pipeline are float32 arrays, (H, W, 3), C-contiguous, values in [0, 1],
x right / y down, pixel centres at integer + 0.5 (OpenCV's convention).
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from ..records import to_jsonable
from ..values import check
from .util import unit_to_uint8


@dataclass(frozen=True)
class Context:
    """What a sampler may need to know beyond the current image.

    input_size: (height, width) of the image the pipeline starts from (the HR crop), pixels.
    scale: the integer factor between input and target (super-resolution; 1 elsewhere).
    target_size: (height, width) the pipeline must end at; default ``input_size // scale``.
    extra: task-specific, read-only facts for samplers (e.g. a mask library, the image's
        annotations, a film preset), by name.
    """

    input_size: tuple[int, int]
    scale: int = 1
    target_size: tuple[int, int] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.target_size is None:
            object.__setattr__(self, "target_size", (self.input_size[0] // self.scale, self.input_size[1] // self.scale))

    @property
    def hr_size(self) -> tuple[int, int]:
        """The super-resolution name of ``input_size``."""
        return self.input_size


class WithOutputs(NamedTuple):
    """What ``apply`` returns when it makes more than the pipeline's image: ``image`` goes on
    down the pipeline, ``outputs`` (name -> array, e.g. {"mask": ...}) are collected by the step
    runner for the task."""

    image: np.ndarray
    outputs: dict


@dataclass(frozen=True)
class Operation:
    name: str
    summary: str
    Config: type
    Params: type
    sample: Callable[[np.random.Generator, Any, tuple[int, ...], Context], Any]
    apply: Callable[[np.ndarray, Any], np.ndarray]

    def config_keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.Config)]

    def make_config(self, values: dict) -> Any:
        """Build a Config from recipe values (lists become tuples); unknown keys raise KeyError."""
        allowed = set(self.config_keys())
        unknown = [k for k in values if k not in allowed]
        if unknown:
            raise KeyError(unknown[0])
        hints = _config_hints(self.Config)
        for key, value in values.items():
            problem = check(_freeze(value), hints.get(key, Any))
            if problem:
                raise ParameterError(key, f"{key} {problem}")
        return self.Config(**{k: _freeze(v) for k, v in values.items()})

    def params_to_json(self, params) -> dict:
        return to_jsonable(params)

    def params_from_json(self, values: dict):
        return self.Params(**{k: _freeze(v) for k, v in values.items()})


REGISTRY: dict[str, Operation] = {}


def register(name: str, summary: str, Config: type, Params: type, sample, apply) -> Operation:
    if name in REGISTRY:
        raise ValueError(f"operation {name!r} registered twice")
    op = Operation(name, summary, Config, Params, sample, apply)
    REGISTRY[name] = op
    return op


def get(name: str) -> Operation:
    return REGISTRY[name]


class ParameterError(TypeError):
    """A recipe value of the wrong type for an operation's parameter ``key``."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@functools.cache
def _config_hints(config_type: type) -> dict:
    try:
        return typing.get_type_hints(config_type)
    except Exception:  # noqa: BLE001 - an annotation this module cannot resolve: the op validates
        return {}


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    return value


def to_float(image_u8: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 in [0, 1]."""
    out = np.empty(image_u8.shape, np.float32)  # one pass, straight from a (possibly strided) crop
    return np.multiply(image_u8, np.float32(1.0 / 255.0), out=out, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] -> uint8, rounding to nearest: floor(255 x + 0.5), clipped."""
    return unit_to_uint8(image)
