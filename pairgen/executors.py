"""Executors: they only schedule ``process_shard(spec)``, the unit of work; the worker knows
nothing of the pool or cluster around it. Local (in-process or a process pool) and Ray, both
with retries of failed shards."""
from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from .errors import PairgenError
from .rng import sample_rng
from .shards import open_writer, stats_file, write_json_atomic
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


class ShardFailed(Exception):
    pass


def process_shard(spec: ShardSpec, progress=None) -> dict:
    """Make every sample of one shard, write it atomically, then its stats file; return the stats."""
    started = time.perf_counter()
    path = os.path.join(spec.out_dir, spec.name)
    writer = open_writer(path, spec.fmt)
    samples, skipped, keys, records = 0, [], [], []
    try:
        for item in spec.items:
            try:
                made = spec.task.make(item, sample_rng(spec.seed, item.identity))
            except SkipSample as exc:
                skipped.append({"path": exc.path, "reason": exc.reason})
                made = []
            for key, fields in made:
                writer.write(key, fields)
                keys.append(key)
                records.append(fields.get("json", {}))
                samples += 1
                _report(progress, 1)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    stats = {
        "shard": spec.name,
        "samples": samples,
        "first_key": keys[0] if keys else None,
        "last_key": keys[-1] if keys else None,
        "skipped": skipped,
        "bytes": os.path.getsize(path),
        "seconds": round(time.perf_counter() - started, 3),
    }
    summary = spec.task.shard_summary(records)
    if summary:
        stats["summary"] = summary
    write_json_atomic(os.path.join(spec.out_dir, stats_file(spec.name)), stats)
    return stats


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
    prepare_worker()


def prepare_worker() -> None:
    """One core per worker (workers scale; threads would fight them), and keep large freed
    buffers in the heap: glibc otherwise returns each per-image array to the kernel and
    page-faults it back on the next image (~1 ms per 512x512 float plane)."""
    import ctypes

    import cv2

    cv2.setNumThreads(1)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 512 * 1024 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def run_local(specs: list[ShardSpec], workers: int, on_progress, on_shard, retries: int = 2) -> list[str]:
    """Run specs; return messages for shards that failed after all retries."""
    failures: list[str] = []
    if workers <= 1:
        prepare_worker()
        for spec in specs:
            for attempt in range(retries + 1):
                try:
                    on_shard(process_shard(spec, progress=on_progress))
                    break
                except Exception as exc:  # report, retry, and keep the other shards going
                    if attempt == retries:
                        failures.append(f"{spec.name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return failures

    context = multiprocessing.get_context("fork")
    progress_queue = context.Queue()
    attempts = {spec.name: 0 for spec in specs}
    pending = list(specs)
    while pending:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,)) as pool:
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
                        _retry_or_fail(spec, exc, attempts, retries, pending, failures)
                    except Exception as exc:
                        _retry_or_fail(spec, exc, attempts, retries, pending, failures)
                if broken:
                    for future, spec in futures.items():
                        future.cancel()
                        pending.append(spec)
                    futures = {}
            _drain(progress_queue, on_progress)
    return failures


def _retry_or_fail(spec, exc, attempts, retries, pending, failures):
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


def run_ray(specs: list[ShardSpec], workers: int, on_progress, on_shard, retries: int = 2, address: str | None = None) -> list[str]:
    """Schedule the same process_shard on Ray tasks (one CPU each), with retries; progress is
    counted per finished shard. Starts a local Ray instance unless ``address`` is given."""
    try:
        import ray
    except ImportError:
        raise PairgenError("--executor ray needs Ray: pip install -e '.[ray]' (make installs it)") from None

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_process_shard_ray)
    refs = {remote.remote(spec): spec for spec in specs}
    failures = []
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        spec = refs.pop(done[0])
        try:
            stats = ray.get(done[0])
        except Exception as exc:
            failures.append(f"{spec.name}: {type(exc).__name__}: {exc}")
            continue
        on_progress(stats["samples"])
        on_shard(stats)
    return failures


def _process_shard_ray(spec: ShardSpec) -> dict:
    prepare_worker()
    return process_shard(spec)
