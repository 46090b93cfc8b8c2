"""The output folder of a build: one build at a time (a lock), the identity a resume must match
(``build.json``), starting over (``--overwrite``) and removing an interrupted run's temporaries.

The lock is an ``flock`` on ``OUT/.pairgen.lock``: the kernel releases it when the holding
process dies, however it dies, so a killed build never leaves a stale lock. The file itself
stays (removing it would let two builds lock two different files); it names the holder.

On an object store there is no flock: ``ObjectStoreLock`` creates the lock object with a
conditional PUT (If-None-Match: *, so of two builds racing, one gets it), naming its holder
(host, pid, command) and refreshed every 30 s; it is deleted when the build ends. A killed
build leaves it behind: it counts as stale when its holder was on this host and that process is
gone, or when it has not been refreshed for 120 s; ``PAIRGEN_BREAK_LOCK=1`` takes it over at
once. Taking over and refreshing are PUTs conditional on the ETag last seen (If-Match), so of
two builds taking over one stale lock, one wins, and a build whose lock was taken says so.
Limits: a store without conditional PUTs (S3 has them since 2024; some S3-compatible stores do
not; other protocols delete and create) cannot exclude a racing build; a host whose clock is
minutes off may see a live lock as stale.
"""
from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid

from . import storage
from .errors import PairgenError, UsageError
from .shards import write_json_atomic

LOCK_FILE = ".pairgen.lock"
BREAK_LOCK_ENV = "PAIRGEN_BREAK_LOCK"
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


class ObjectStoreLock:
    """The lock of an output folder on an object store (see the module's docstring)."""

    REFRESH_SECONDS = 30.0
    STALE_SECONDS = 120.0

    def __init__(self, out: str):
        self.out = out
        self.address = storage.join(out, LOCK_FILE)
        self.holder: dict = {}
        self.etag: str | None = None  # of the lock object as this build last wrote it
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def acquire(self, command: str) -> "ObjectStoreLock":
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "command": command, "token": uuid.uuid4().hex,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if not self._create():
            previous, etag = self._read_with_etag()
            reason = self._stale(previous)
            if reason is None:
                raise PairgenError(
                    f"{self.out} is in use by another pairgen build (host {previous.get('host', '?')}, pid "
                    f"{previous.get('pid', '?')}, started {previous.get('started', '?')}: {previous.get('command', '?')}); wait for "
                    f"it to finish or stop it. If it is no longer running, its lock object {self.address} counts as stale "
                    f"{self.STALE_SECONDS:.0f} s after its last refresh; {BREAK_LOCK_ENV}=1 takes it over now") from None
            print(f"pairgen: taking over the lock of {self.out}: {reason}", file=sys.stderr)
            if not self._replace(etag):
                raise PairgenError(f"{self.out}: another build took the lock first; wait for it or stop it") from None
        self._refresher = threading.Thread(target=self._refresh, name="pairgen-lock", daemon=True)
        self._refresher.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
            self._refresher = None
            if self._read().get("token") == self.holder["token"]:  # not someone's who broke it
                storage.remove(self.address)

    def _payload(self) -> bytes:
        return json.dumps({**self.holder, "refreshed": time.time()}).encode() + b"\n"

    def _create(self) -> bool:
        """Create the lock object only if none exists (a conditional PUT); False if one does."""
        fs, path = storage.filesystem(self.address)
        try:
            with fs.open(path, "xb") as handle:
                handle.write(self._payload())
        except FileExistsError:
            return False
        except OSError as exc:
            raise unwritable(self.out, exc) from None
        self.etag = self._current_etag()
        return True

    def _replace(self, etag: str | None) -> bool:
        """Overwrite the lock object only if it is still the one read as ``etag`` (S3's PUT
        If-Match): of two builds taking over a stale lock, one wins. Stores without it: delete
        and create (two racing takers can then both win)."""
        fs, path = storage.filesystem(self.address)
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        if "s3" not in protocols:
            storage.remove(self.address)
            return self._create()
        if etag is None:  # gone meanwhile: create it, conditionally as ever
            return self._create()
        try:
            fs.pipe_file(path, self._payload(), IfMatch=etag)
        except OSError:  # the precondition failed: someone else's lock now
            return False
        self.etag = self._current_etag()
        return True

    def _current_etag(self) -> str | None:
        fs, path = storage.filesystem(self.address)
        try:
            return fs.info(path, refresh=True).get("ETag")
        except OSError:
            return None

    def _read_with_etag(self) -> tuple[dict, str | None]:
        etag = self._current_etag()  # first: a change after it makes the conditional PUT fail
        return self._read(), etag

    def _read(self) -> dict:
        try:
            value = json.loads(storage.read_bytes(self.address))
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def _stale(self, holder: dict) -> str | None:
        """Why a found lock may be taken over, or None while its build may still be running."""
        if os.environ.get(BREAK_LOCK_ENV) == "1":
            return f"{BREAK_LOCK_ENV}=1"
        if not holder:
            return "the lock object is unreadable"
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            return f"its build (pid {holder['pid']} on this host) is gone"
        age = time.time() - float(holder.get("refreshed", 0))
        if age > self.STALE_SECONDS:
            return f"not refreshed for {age:.0f} s"
        return None

    def _refresh(self) -> None:
        while not self._stop.wait(self.REFRESH_SECONDS):
            if self._replace(self.etag):
                continue
            # Taken over (this build looked dead: paused, clock, network) or unreachable: say so.
            print(f"pairgen: warning: could not refresh the lock {self.address}; another build may now write to "
                  f"{self.out}", file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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
    if storage.is_remote(out):
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file, not a folder; give a new or empty folder (or an earlier build's)")


def open_out(out: str) -> OutputLock | ObjectStoreLock:
    """Create the folder if needed and lock it for this process."""
    if storage.is_remote(out):
        return ObjectStoreLock(out).acquire(command_line())
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise unwritable(out, exc) from None
    return OutputLock(out).acquire(command_line())


def prepare(out: str, fingerprint: dict, invocation: dict, overwrite: bool) -> None:
    """Make ``out`` ready for this build: start over (overwrite), or check that the build
    found there is this one (resume). Removes an interrupted run's temporaries. The folder
    must be locked by the caller."""
    if storage.is_remote(out):
        return _prepare_remote(out, fingerprint, invocation, overwrite)
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
            _refuse_another_build(out, json.load(handle), fingerprint)
    elif contents:
        raise PairgenError(f"{out} is not empty and holds no pairgen build; choose an empty or new --out")
    remove_temporaries(out)
    write_json_atomic(marker, dict(fingerprint, invocation=invocation))


def _refuse_another_build(out: str, previous: dict, fingerprint: dict) -> None:
    """A resume continues only the build its folder holds: same options and inputs."""
    previous.pop("invocation", None)
    difference = _difference(previous, json.loads(json.dumps(fingerprint)))
    if difference:
        raise PairgenError(f"{out} holds a build made with other options or inputs ({difference}); "
                           "run the same command to resume it, use --overwrite to start over, or choose another --out")


def _prepare_remote(out: str, fingerprint: dict, invocation: dict, overwrite: bool) -> None:
    """``prepare`` on an object store. No temporaries in the store: objects appear whole (an
    unfinished multipart upload is invisible; a bucket lifecycle rule reclaims its parts); this
    host's staging copies of unfinished shards are removed."""
    fs, root = storage.filesystem(out)
    try:
        entries = [e for e in fs.ls(root, detail=True, refresh=True) if not e["name"].rstrip("/").endswith("/" + LOCK_FILE)]
    except FileNotFoundError:
        entries = []
    marker = storage.join(out, MARKER)
    names = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries}
    if overwrite and entries:
        if MARKER not in names:
            raise PairgenError(f"--overwrite: {out} holds objects not written by pairgen (no build.json); refusing to delete them")
        fs.rm([entry["name"] for entry in entries], recursive=True)  # batched: up to 1,000 keys per request
    elif MARKER in names:
        try:
            previous = json.loads(storage.read_bytes(marker))
        except ValueError as exc:
            raise PairgenError(f"{marker}: not valid JSON ({exc}); use --overwrite to start over") from None
        _refuse_another_build(out, previous, fingerprint)
    elif entries:
        raise PairgenError(f"{out} is not empty and holds no pairgen build; choose an empty or new --out")
    storage.remove_staging(out)
    write_json_atomic(marker, dict(fingerprint, invocation=invocation))


def remove_temporaries(out: str) -> int:
    """Remove the ``*.tmp`` pieces of an interrupted or failed run (never trusted)."""
    if storage.is_remote(out):  # none in the store (objects appear whole): this host's staging copies
        return storage.remove_staging(out)
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
