"""Plain JSON values for records (sample json, card, build.json): no third-party imports, so the
Blender process can use it too."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


_PLAIN = (int, float, str, bool, type(None))


def to_jsonable(value: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, numpy arrays and scalars -> Python values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # field by field, not dataclasses.asdict: that deep-copies every element first (a mask
        # op's hundreds of stroke coordinates cost more to record than to draw)
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) in _PLAIN for v in value):
            return list(value)
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
