"""A render worker: a child process that owns bpy and renders jobs sent to it.

Blender leaks memory across scenes and can crash on a bad file, so it never runs in the build's
own processes. ``RenderWorker`` starts ``python -m renderers.worker FD`` and talks to it over a
socket with pickled messages; the child's stdout and stderr (Blender's chatter) go to a log file
whose tail is quoted when something fails.

* The child is replaced after ``recycle_every`` jobs (one job = one scene or one chunk of
  frames), which bounds Blender's memory growth.
* A child that dies (crash, killed) or hangs past ``timeout`` seconds is replaced and the job
  retried, up to ``retries`` times; every crash is recorded in ``events`` (the tasks put them
  in the sample's json and print them) and a job that still fails raises ``RenderFailed``.
* A problem with the user's scene (``blender.SceneError``: no camera, bad frame range, not a
  .blend) is not retried: it raises ``pairgen.errors.PairgenError`` with the message.

Jobs are functions of this module named ``job_<name>``; they run in the child with the
process's ``blender.Session``.
"""
from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection

from pairgen.errors import PairgenError

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RenderFailed(Exception):
    """A render job failed in every attempt (crash, hang or error inside Blender)."""


class RenderWorker:
    """Parent-side handle of one render child process (started lazily, one job at a time).

    recycle_every: jobs per child before it is replaced. retries: extra attempts after a crash
    or an error. timeout: seconds one job may take (None: no limit)."""

    def __init__(self, recycle_every: int = 20, retries: int = 2, timeout: float | None = 3600.0):
        self.recycle_every = max(1, int(recycle_every))
        self.retries = max(0, int(retries))
        self.timeout = timeout
        self.events: list[str] = []  # crash and retry reports, oldest first
        self.started = 0  # children started so far
        self._proc = None
        self._conn = None
        self._log_path = None
        self._tmp = None
        self._jobs = 0
        self._owner = os.getpid()

    def __getstate__(self):  # a pickled copy (sent to a build worker) starts its own child
        return {"recycle_every": self.recycle_every, "retries": self.retries, "timeout": self.timeout}

    def __setstate__(self, state):
        self.__init__(**state)

    # -------------------------------------------------------------- public
    def call(self, job: str, **kwargs):
        """Run ``job_<job>(session, **kwargs)`` in the child; returns its result."""
        last = ""
        for attempt in range(self.retries + 1):
            if self._proc is None or self._jobs >= self.recycle_every:
                self._restart()
            try:
                result = self._request(job, kwargs)
            except _ChildDied as exc:
                last = str(exc)
                self.events.append(f"render worker crashed in job {job} (attempt {attempt + 1}): {last}")
                self._kill()
                continue
            kind, payload = result
            self._jobs += 1
            if kind == "ok":
                return payload
            if kind == "scene_error":
                raise PairgenError(payload)
            last = payload
            self.events.append(f"render job {job} failed (attempt {attempt + 1}): {payload.strip().splitlines()[-1]}")
            self._kill()  # a fresh Blender for the retry
        raise RenderFailed(f"render job {job} failed after {self.retries + 1} attempts: {last}")

    def close(self) -> None:
        if self._proc is None:
            return
        if os.getpid() == self._owner:
            try:
                self._conn.send(("exit", None))
                self._proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - already gone or stuck: kill below
                pass
        self._kill()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -------------------------------------------------------------- internals
    def _restart(self) -> None:
        self.close()  # graceful when the old child is healthy (recycling), a kill otherwise
        parent_sock, child_sock = socket.socketpair()
        self._tmp = tempfile.mkdtemp(prefix="pairgen-render-")  # the child's scratch files; removed here
        log = tempfile.NamedTemporaryFile(prefix="pairgen-blender-", suffix=".log", delete=False)
        self._log_path = log.name
        env = dict(os.environ)
        env["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "renderers.worker", str(child_sock.fileno()), self._tmp],
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT, env=env,
            )
        finally:
            child_sock.close()
            log.close()
        self._conn = Connection(parent_sock.detach())
        self._jobs = 0
        self._owner = os.getpid()
        self.started += 1

    def _request(self, job: str, kwargs: dict):
        try:
            self._conn.send(("job", (job, kwargs)))
        except (OSError, EOFError) as exc:
            raise _ChildDied(f"cannot send the job: {exc}; {self._log_tail()}") from None
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                if self._conn.poll(0.5):
                    return self._conn.recv()
            except (OSError, EOFError):
                raise _ChildDied(self._died_message()) from None
            if self._proc.poll() is not None:
                raise _ChildDied(self._died_message())
            if deadline is not None and time.monotonic() > deadline:
                raise _ChildDied(f"no answer within {self.timeout:.0f} s (hung); {self._log_tail()}")

    def _died_message(self) -> str:
        code = self._proc.poll() if self._proc is not None else None
        return f"exit status {code}; {self._log_tail()}"

    def _log_tail(self, lines: int = 12) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as handle:
                tail = [line.rstrip() for line in handle.readlines() if line.strip() and not line.startswith("Fra:")][-lines:]
        except (OSError, TypeError):
            return "no log"
        return "Blender log tail: " + " | ".join(tail) if tail else "empty Blender log"

    def _kill(self) -> None:
        if self._proc is not None and os.getpid() == self._owner:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        if self._log_path and os.getpid() == self._owner:
            try:
                os.unlink(self._log_path)
            except OSError:
                pass
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._proc = self._conn = self._log_path = self._tmp = None
        self._owner = os.getpid()


class _ChildDied(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Child side


def job_describe(session, source: dict) -> dict:
    """Load a source and report what it offers (frame range, resolution, camera, objects)."""
    return session.load(source)


def job_render(session, source: dict, frames: list[dict], step: int = 1, normals: bool = False,
               vector: bool = True) -> list[dict]:
    """Load ``source`` and render each of ``frames``: {"time": float, "settings": {...},
    "truth": bool, "rgb": bool}. Returns one ``Session.render_frame`` dict per frame."""
    session.load(source)
    return [
        session.render_frame(f["time"], step=step, settings=f.get("settings"), truth_pass=f.get("truth", True),
                             rgb=f.get("rgb", True), normals=normals, vector=vector)
        for f in frames
    ]


def job_script(session, code: str, **variables):
    """Run Python ``code`` in the Blender process with ``bpy``, ``session`` and ``variables`` in
    scope; returns the value it leaves in ``result`` (tests and tools: build fixture files)."""
    import bpy

    scope = {"bpy": bpy, "session": session, **variables}
    exec(compile(code, "<job_script>", "exec"), scope)  # noqa: S102 - our own code, sent over a private socket
    session.source_key = None  # whatever was loaded may have changed
    return scope.get("result")


def job_crash(session, code: int = 3) -> None:
    """Die abruptly (tests of crash handling)."""
    os._exit(code)


def child_main(fd: int, scratch: str | None = None) -> None:
    conn = Connection(fd)
    from renderers import blender  # imports bpy: only ever in this process

    session = blender.Session(scratch)
    try:
        while True:
            try:
                kind, body = conn.recv()
            except EOFError:
                return
            if kind == "exit":
                return
            job, kwargs = body
            try:
                result = ("ok", globals()[f"job_{job}"](session, **kwargs))
            except blender.SceneError as exc:
                result = ("scene_error", str(exc))
            except Exception:  # noqa: BLE001 - reported to the parent, which retries
                result = ("error", traceback.format_exc())
            try:
                conn.send(result)
            except pickle.PicklingError:
                conn.send(("error", traceback.format_exc()))
    finally:
        session.close()


if __name__ == "__main__":
    child_main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
