"""Executors: they only schedule ``process_shard(spec)``, the unit of work; the worker knows
nothing of the pool or cluster around it. Local (in-process or a process pool) and Ray, both
with retries of failed shards."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from . import storage
from .errors import PairgenError
from .outdir import MEDIUM_ERRORS
from .rng import sample_rng
from .sources import prefetching
from .shards import file_sha256, open_writer, stats_file, write_json_atomic
from .tasks.base import SkipSample, Task, WorkItem

_progress_queue = None  # set in pool workers: per-sample progress to the main process


@dataclass
class ShardSpec:
    index: int
    name: str
    out_dir: str
    fmt: str
    seed: int
    task: Task
    items: list[WorkItem] = field(default_factory=list)
    storage: dict = field(default_factory=dict)  # storage.shipped(): how a worker reaches remote inputs/outputs


class ShardFailed(Exception):
    pass


def process_shard(spec: ShardSpec, progress=None) -> dict:
    """Make every sample of one shard, write it atomically, then its stats file; return the stats.
    To an object store: the shard is written to a local temporary folder, uploaded whole, then
    its stats object is written (a resume trusts a shard only with its stats)."""
    if spec.storage:
        storage.configure(**spec.storage)
    if not storage.is_remote(spec.out_dir):
        return _make_shard(spec, os.path.join(spec.out_dir, spec.name), progress)
    staging = storage.staging_folder(spec.out_dir)
    os.makedirs(staging, exist_ok=True)
    local = os.path.join(staging, spec.name)
    try:
        return _make_shard(spec, local, progress, publish=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local)


def _make_shard(spec: ShardSpec, path: str, progress, publish: bool = False) -> dict:
    started = time.perf_counter()
    writer = _write(open_writer, path, spec.fmt, tmp=path + ".tmp")
    skipped, keys, records = [], [], []
    try:
        with prefetching(spec.items):
            _make_samples(spec, writer, progress, skipped, keys, records)
        _write(writer.close, tmp=writer.tmp)
    except BaseException:
        writer.abort()
        raise
    samples = len(keys)
    stats = {
        "shard": spec.name,
        "samples": samples,
        "first_key": keys[0] if keys else None,
        "last_key": keys[-1] if keys else None,
        "skipped": skipped,
        "bytes": os.path.getsize(path),
        "sha256": file_sha256(path),  # checked on resume and by `pairgen verify`
        "seconds": round(time.perf_counter() - started, 3),
    }
    summary = spec.task.shard_summary(records)
    if summary:
        stats["summary"] = summary
    if publish:
        storage.upload(path, storage.join(spec.out_dir, spec.name))
        stats["seconds"] = round(time.perf_counter() - started, 3)  # the upload is part of the shard's cost
        write_json_atomic(storage.join(spec.out_dir, stats_file(spec.name)), stats)
    else:
        write_json_atomic(os.path.join(spec.out_dir, stats_file(spec.name)), stats)
    return stats


def _make_samples(spec: ShardSpec, writer, progress, skipped: list, keys: list, records: list) -> None:
    for item in spec.items:
        try:
            made = spec.task.make(item, sample_rng(spec.seed, item.identity))
        except SkipSample as exc:
            skipped.append({"path": exc.path, "reason": exc.reason})
            made = []
        for key, fields in made:
            _write(writer.write, key, fields, tmp=writer.tmp)
            keys.append(key)
            records.append(fields.get("json", {}))
            _report(progress, 1)


def _write(call, *args, tmp: str):
    """A writer call whose OSError names the file it was writing (tarfile and h5py leave it out)."""
    try:
        return call(*args)
    except OSError as exc:
        if exc.filename or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, tmp) from exc


def _fatal(exc: BaseException) -> bool:
    """Errors of the output medium (full disk, read-only): no retry can help; stop the build."""
    return isinstance(exc, OSError) and exc.errno in MEDIUM_ERRORS


def _report(progress, n):
    target = progress if progress is not None else _progress_queue
    if target is None:
        return
    if callable(target):
        target(n)
    else:
        target.put(n)


def _init_worker(progress_queue):
    global _progress_queue
    _progress_queue = progress_queue
    # The main process decides how a build stops: a terminal's Ctrl-C reaches the whole process
    # group, and a worker interrupted inside a multiprocessing lock would hang the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the main process's "stop like Ctrl-C"
    _die_with_parent()
    prepare_worker()


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that forked it dies, even by SIGKILL
    (a worker blocked on the pool's queue would otherwise wait forever)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: the main process still stops its workers
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def prepare_worker() -> None:
    """One core per worker (workers scale; threads would fight them), and keep large freed
    buffers in the heap: glibc otherwise returns each per-image array to the kernel and
    page-faults it back on the next image (~1 ms per 512x512 float plane)."""
    import ctypes

    import cv2

    cv2.setNumThreads(1)
    _one_blas_thread()
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 512 * 1024 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _one_blas_thread() -> None:
    """numpy's OpenBLAS starts a thread per core for matrix products (e.g. the channel mixing of
    correlated noise), which two workers then fight over; set it to one thread, as OpenCV's."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libraries = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:  # not Linux: leave BLAS as it is
        return
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("openblas_set_num_threads64_", "openblas_set_num_threads", "scipy_openblas_set_num_threads64_"):
            if hasattr(library, name):
                getattr(library, name)(1)
                break


def run_local(specs: list[ShardSpec], workers: int, on_progress, on_shard, retries: int = 2, on_retry=None) -> list[str]:
    """Run specs; return messages for shards that failed after all retries (each retry is
    reported through ``on_retry(message)``)."""
    failures: list[str] = []
    if workers <= 1:
        prepare_worker()
        for spec in specs:
            for attempt in range(retries + 1):
                try:
                    on_shard(process_shard(spec, progress=on_progress))
                    break
                except Exception as exc:  # report, retry, and keep the other shards going
                    if _fatal(exc):
                        raise
                    if attempt == retries:
                        failures.append(f"{spec.name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                    elif on_retry:
                        on_retry(f"{spec.name}: attempt {attempt + 1} failed ({type(exc).__name__}: {exc}); retried")
        return failures

    context = multiprocessing.get_context("fork")
    progress_queue = context.Queue()
    attempts = {spec.name: 0 for spec in specs}
    pending = list(specs)
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,))
        futures = {}
        try:
            futures = {pool.submit(process_shard, spec): spec for spec in pending}
            pending = []
            broken = False
            while futures:
                done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, on_progress)
                for future in done:
                    spec = futures.pop(future)
                    try:
                        on_shard(future.result())
                    except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                        broken = True
                        _retry_or_fail(spec, exc, attempts, retries, pending, failures, on_retry)
                    except Exception as exc:
                        if _fatal(exc):
                            raise
                        _retry_or_fail(spec, exc, attempts, retries, pending, failures, on_retry)
                if broken:
                    for future, spec in futures.items():
                        future.cancel()
                        pending.append(spec)
                    futures = {}
            _drain(progress_queue, on_progress)
        except BaseException:  # Ctrl-C or SIGTERM (raised as KeyboardInterrupt): stop now, not after the queue
            _stop_pool(pool, [futures[f] for f in futures])
            raise
        pool.shutdown(wait=True)
    return failures


def _stop_pool(pool: ProcessPoolExecutor, in_flight: list[ShardSpec]) -> None:
    """Cancel the queued shards, end the workers (SIGTERM, then SIGKILL after a second; a
    second Ctrl-C or SIGTERM kills them at once) and remove the unfinished shards' temporaries."""
    processes = list((pool._processes or {}).values())  # Python 3.14 has pool.terminate_workers()

    def kill_now(signum, frame):
        for process in processes:
            if process.is_alive():
                process.kill()

    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, kill_now) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 1.0
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for spec in in_flight:
        _remove_temporaries(spec)


def _remove_temporaries(spec: ShardSpec) -> None:
    """The files an unfinished attempt at ``spec`` may have left on this host."""
    if storage.is_remote(spec.out_dir):  # the local staging copy (an object appears whole or not at all)
        folder = storage.staging_folder(spec.out_dir)
        paths = (spec.name + ".tmp", spec.name)
    else:
        folder, paths = spec.out_dir, (spec.name + ".tmp", stats_file(spec.name) + ".tmp")
    for name in paths:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


def _retry_or_fail(spec, exc, attempts, retries, pending, failures, on_retry):
    attempts[spec.name] += 1
    if attempts[spec.name] > retries:
        failures.append(f"{spec.name}: {type(exc).__name__}: {exc}")
    else:
        pending.append(spec)


def _drain(progress_queue, on_progress):
    while True:
        try:
            on_progress(progress_queue.get_nowait())
        except queue_module.Empty:
            return


def run_ray(specs: list[ShardSpec], workers: int, on_progress, on_shard, retries: int = 2, address: str | None = None,
            on_retry=None) -> list[str]:
    """Schedule the same process_shard on Ray tasks (one CPU each). Starts a local Ray instance
    unless ``address`` names a cluster to join (``ray start --head`` prints it). Progress is per
    sample: workers send small batches through a Ray queue. A failed or lost task (an error, a
    worker process that died) is submitted again, at most ``retries`` times, each time reported
    through ``on_retry(message)``; a shard is written atomically, so a lost attempt leaves nothing
    behind but a temporary file the next attempt replaces: nothing lost, nothing twice."""
    if address:
        _check_reachable(address)
        _token_auth_when_available()  # before Ray is imported: it reads the mode once
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise PairgenError("--executor ray needs Ray: pip install -e '.[ray]' (make installs it)") from None

    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise PairgenError(f"--ray-address {address}: cannot join a Ray cluster there ({exc}); start one with "
                               "`ray start --head` and pass the address it prints") from None
    progress = Queue(actor_options={"num_cpus": 0})
    # Our own retries (max_retries=0): Ray's would hide how often a shard failed, and the card says it.
    remote = ray.remote(num_cpus=1, max_retries=0)(_process_shard_ray)
    attempts = {spec.name: 0 for spec in specs}
    refs = {remote.remote(spec, progress): spec for spec in specs}
    failures = []
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            _drain_ray(progress, on_progress)
            for ref in done:
                spec = refs.pop(ref)
                try:
                    stats = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task error or a lost worker: retry, then report
                    attempts[spec.name] += 1
                    reason = _ray_reason(exc)
                    if attempts[spec.name] > retries:
                        failures.append(f"{spec.name}: {reason}")
                        continue
                    if on_retry:
                        on_retry(f"{spec.name}: attempt {attempts[spec.name]} failed ({reason}); retried")
                    refs[remote.remote(spec, progress)] = spec
                    continue
                _drain_ray(progress, on_progress)
                on_shard(stats)
    except BaseException:  # Ctrl-C or SIGTERM: stop the cluster's work on this build now
        for ref in refs:
            ray.cancel(ref, force=True)
        for spec in refs.values():
            _remove_temporaries(spec)
        raise
    finally:
        _drain_ray(progress, on_progress)
        ray.kill(progress.actor)
        if started_here:
            ray.shutdown()
    return failures


def _check_reachable(address: str) -> None:
    """Fail in seconds, not after Ray's minute of reconnecting, when nothing listens there."""
    import socket

    host, _, port = address.rpartition(":")
    if address.startswith("ray://") or not port.isdigit():
        return  # Ray Client or an address form Ray resolves itself
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except OSError as exc:
        raise PairgenError(f"--ray-address {address}: cannot join a Ray cluster there ({exc.strerror or exc}); start "
                           "one with `ray start --head` and pass the address it prints") from None


def _token_auth_when_available() -> None:
    """`ray start --head` enables Ray's token authentication when a token exists (Ray >= 2.5x:
    ~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH), but a driver that joins does not
    send it unless RAY_AUTH_MODE=token: set that when a token is there and no mode was chosen."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    default = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.exists(default):
        os.environ["RAY_AUTH_MODE"] = "token"


def _drain_ray(progress, on_progress) -> None:
    while True:
        try:
            on_progress(progress.get_nowait())
        except Exception:  # noqa: BLE001 - ray.util.queue.Empty, or the queue already gone
            return


def _ray_reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if cause is not None:  # a RayTaskError wraps the worker's exception
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


class _BatchedProgress:
    """Per-sample progress from a Ray worker, sent at most every 0.25 s (a queue call per sample
    would cost more than the sample)."""

    def __init__(self, queue):
        self.queue, self.pending, self.last = queue, 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        if time.monotonic() - self.last >= 0.25:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.queue.put(self.pending)
            self.pending, self.last = 0, time.monotonic()


def _process_shard_ray(spec: ShardSpec, progress_queue) -> dict:
    prepare_worker()
    progress = _BatchedProgress(progress_queue)
    try:
        return process_shard(spec, progress=progress)
    finally:
        progress.flush()
