"""The task registry: task name (a recipe's ``task:``) -> Task class.

Every module of this package that defines a task registers it with ``@register_task``; the
modules are found by listing the package, so adding a task is adding its module (plus its
recipe and its test). ``base``, ``photo`` and ``rendered`` hold shared bases and register nothing.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..errors import PairgenError

_TASKS: dict = {}
_SHARED = {"base", "photo", "rendered"}
_loaded = False


def register_task(cls):
    """Class decorator: make ``cls`` the task of recipes whose ``task:`` is ``cls.name``."""
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} registered twice ({_TASKS[cls.name].__module__} and {cls.__module__})")
    _TASKS[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if module.name not in _SHARED:
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def registered_tasks() -> dict:
    """name -> Task class of every task, in name order."""
    _load_all()
    return dict(sorted(_TASKS.items()))


def get_task(name, where: str = "", error: type = PairgenError) -> type:
    """The Task class named ``name``; ``error`` (naming ``where``) when there is none."""
    tasks = registered_tasks()
    if name not in tasks:
        import difflib

        prefix = f"{where}: " if where else ""
        close = difflib.get_close_matches(str(name), list(tasks), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise error(f"{prefix}unknown task {name!r} (known: {', '.join(tasks)}){hint}")
    return tasks[name]
