"""The output folder of a build: one build at a time (a lock), the identity a resume must match
(``build.json``), starting over (``--overwrite``) and removing an interrupted run's temporaries.

The lock is an ``flock`` on ``OUT/.pairgen.lock``: the kernel releases it when the holding
process dies, however it dies, so a killed build never leaves a stale lock. The file itself
stays (removing it would let two builds lock two different files); it names the holder.
"""
from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import shutil
import sys
import time

from .errors import PairgenError, UsageError
from .shards import write_json_atomic

LOCK_FILE = ".pairgen.lock"
MARKER = "build.json"
# Errors of the output medium, not of one shard: retrying cannot help.
MEDIUM_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system"}


class OutputLock:
    """Exclusive lock on an output folder, held until ``release`` or the process's death."""

    def __init__(self, out: str):
        self.out = out
        self.path = os.path.join(out, LOCK_FILE)
        self.fd = None

    def acquire(self, command: str) -> "OutputLock":
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise unwritable(self.out, exc) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(self.fd)
            os.close(self.fd)
            self.fd = None
            raise PairgenError(
                f"{self.out} is in use by another pairgen build (pid {holder.get('pid', '?')}, started "
                f"{holder.get('started', '?')}: {holder.get('command', '?')}); wait for it to finish, stop it, "
                "or choose another --out") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "command": command,
                                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode() + b"\n", 0)
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}


def command_line() -> str:
    return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))


def check_out_path(out: str) -> None:
    """Usage errors of --out itself (before anything is created)."""
    if not out or not str(out).strip():
        raise UsageError("--out is empty; give the folder to write the shards to")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file, not a folder; give a new or empty folder (or an earlier build's)")


def open_out(out: str) -> OutputLock:
    """Create the folder if needed and lock it for this process."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise unwritable(out, exc) from None
    return OutputLock(out).acquire(command_line())


def prepare(out: str, fingerprint: dict, invocation: dict, overwrite: bool) -> None:
    """Make ``out`` ready for this build: start over (overwrite), or check that the build
    found there is this one (resume). Removes an interrupted run's temporaries. The folder
    must be locked by the caller."""
    marker = os.path.join(out, MARKER)
    contents = [name for name in os.listdir(out) if name != LOCK_FILE]
    if overwrite and contents:
        if not os.path.exists(marker):
            raise PairgenError(f"--overwrite: {out} holds files not written by pairgen (no build.json); refusing to delete them")
        for name in contents:  # everything but the lock this process holds
            path = os.path.join(out, name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    elif os.path.exists(marker):
        with open(marker, encoding="utf-8") as handle:
            previous = json.load(handle)
        previous.pop("invocation", None)
        difference = _difference(previous, json.loads(json.dumps(fingerprint)))
        if difference:
            raise PairgenError(f"{out} holds a build made with other options or inputs ({difference}); "
                               "run the same command to resume it, use --overwrite to start over, or choose another --out")
    elif contents:
        raise PairgenError(f"{out} is not empty and holds no pairgen build; choose an empty or new --out")
    remove_temporaries(out)
    write_json_atomic(marker, dict(fingerprint, invocation=invocation))


def remove_temporaries(out: str) -> int:
    """Remove the ``*.tmp`` pieces of an interrupted or failed run (never trusted)."""
    removed = 0
    for stale in glob.glob(os.path.join(glob.escape(out), "*.tmp")):
        try:
            os.unlink(stale)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _difference(previous: dict, current: dict, prefix: str = "") -> str:
    """What differs between two fingerprints, in words: 'seed 0 -> 1', 'the inputs'."""
    for key in sorted(set(previous) | set(current)):
        old, new = previous.get(key), current.get(key)
        if old == new:
            continue
        name = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            return _difference(old, new, name + ".")
        if name == "items":
            return "the inputs differ (other files, or files changed)"
        return f"{name}: {_short(old)} there, {_short(new)} now"
    return ""


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unwritable(path: str, exc: OSError) -> PairgenError:
    reason = MEDIUM_ERRORS.get(exc.errno) or exc.strerror or str(exc)
    return PairgenError(f"cannot write to {path}: {reason}; choose a writable --out")
