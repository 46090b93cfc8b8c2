"""The Python API the CLI wraps: make_task(), build(), replay(), read_card().

``pairgen.inspection`` holds inspect() and export; ``pairgen.tasks`` the tasks (a registry)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from . import __version__, outdir, storage
from .errors import Interrupted, PairgenError, RecipeError, UsageError
from .executors import ShardFailed, ShardSpec, run_local, run_ray
from .recipes import load_recipe
from .records import to_jsonable
from .tasks.base import BuildInputs
from .shards import HDF5_FILTERS, completed_shards, shard_file, write_json_atomic

FORMATS = ("wds", "hdf5", "hdf5-lzf")
CONVENTIONS = {
    "images": "8-bit sRGB, RGB channel order, (H, W, 3), row 0 at the top",
    "coordinates": "pixels; x right, y down; pixel (i, j) has its centre at (j + 0.5, i + 0.5)",
    "boxes": "(x0, y0, x1, y1) in pixels, end exclusive",
    "keys": "digits only (webdataset keys end at the first dot)",
    "rng": "every random draw comes from a numpy Generator seeded by (seed, the sample's input identity)",
}


@dataclass
class BuildResult:
    out: str
    card: dict
    made_shards: int = 0
    resumed_shards: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)


def make_task(recipe: str, src=(), seed: int = 0, limit: int | None = None, overrides=(), max_pixels: int | None = None,
              workers: int = 1, exclude=(), **task_options):
    """The task a recipe describes, with the command's options applied: (recipe name, task).
    ``task_options`` are the task's own options (its ``Options`` dataclass, e.g. ``crop``,
    ``scale`` for superres; ``scenes``, ``resolution`` for flow); None means not given."""
    from .tasks import get_task

    recipe_ = load_recipe(recipe, overrides)
    task_class = get_task(recipe_.task, where=recipe_.path, error=RecipeError)
    task_class.check_recipe_keys(recipe_.raw, recipe_.path)
    options = task_class.parse_options(task_options, recipe_.name)
    inputs = BuildInputs(tuple(src), int(seed), limit, max_pixels, workers, tuple(exclude))
    return recipe_.name, task_class.from_recipe(recipe_, options, inputs)


def build(recipe: str, src=(), out: str = "shards", seed: int = 0, workers: int | None = None, shard_size: int | None = None,
          limit: int | None = None, format: str = "wds", overwrite: bool = False, overrides=(), executor: str = "local",
          ray_address: str | None = None, max_pixels: int | None = None, progress: bool = True,
          log: bool = True, retries: int = 2, storage_options: dict | str | None = None, **task_options) -> BuildResult:
    """Build shards into ``out``; resumes an interrupted build of the same command.
    shard_size: samples per shard (None: the task's default, 256 for photo recipes, 32 for
    rendered ones). progress: show a progress bar; log: print the plan and the summary.
    task_options: the recipe's task's own options (see ``make_task``). storage_options: fsspec
    options for remote paths (a dict or JSON; default: PAIRGEN_STORAGE_OPTIONS; see pairgen.storage)."""
    started = time.perf_counter()
    storage.configure(storage.parse_options(storage_options) if isinstance(storage_options, str) else storage_options)
    out, src = storage.local_form(out), [storage.local_form(s) for s in src]
    _check_options(out, workers, shard_size, limit, format, executor, ray_address)
    # What repairs (``pairgen verify --repair``) rerun: the command minus how it ran.
    invocation = to_jsonable({"recipe": _absolute(recipe), "src": [_absolute(s) for s in src], "seed": seed,
                              "shard_size": shard_size, "limit": limit, "format": format, "overrides": list(overrides),
                              "max_pixels": max_pixels, **{k: _absolute(v) for k, v in task_options.items()}})
    run = RunOptions(out, seed, workers or os.cpu_count() or 1, shard_size, format, overwrite, executor, ray_address,
                     progress, log, retries, {"limit": limit}, invocation)
    with _sigterm_as_interrupt():
        name, task = make_task(recipe, src, seed=seed, limit=limit, overrides=overrides, max_pixels=max_pixels,
                               workers=run.workers, exclude=(out,), **task_options)
        run.shard_size = shard_size or task.default_shard_size
        try:
            return _build(name, task, run, started)
        finally:
            task.close()  # e.g. the idle Blender process of an in-process build


def _absolute(value):
    """A local path argument made absolute (a repair may run from another folder); other values as given."""
    if isinstance(value, str) and "://" not in value and (os.path.exists(value) or any(c in value for c in "*?[")):
        return os.path.abspath(value)
    return value


def exit_at_next_interrupt() -> None:
    """While a stopped build tidies up, a second Ctrl-C or SIGTERM ends the process at once (the
    folder stays resumable: a rerun removes whatever temporaries are left)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def exit_now(signum, frame):
        os.write(2, b"\npairgen: stopped; run the same command again to resume\n")
        os._exit(130)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, exit_now)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (timeout, a scheduler, a container stop) stops a build the way Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class RunOptions:
    """How a build runs (as opposed to what it makes: that is the task)."""

    out: str
    seed: int
    workers: int
    shard_size: int
    format: str
    overwrite: bool
    executor: str
    ray_address: str | None
    progress: bool
    log: bool
    retries: int
    recorded: dict  # the command's options, for build.json and the card
    invocation: dict = field(default_factory=dict)  # the build's arguments, for repairs


def _build(name: str, task, run: RunOptions, started: float) -> BuildResult:
    say = (lambda text: print(text, file=sys.stderr)) if run.log else (lambda text: None)
    out, seed, format, workers = run.out, run.seed, run.format, run.workers
    say(f"pairgen: {name}: checking inputs ...")

    items, skipped = task.plan()
    run.recorded.update(to_jsonable(task.options_record()))  # after plan(): a .blend's frames and size are known
    if not items:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5])
        raise PairgenError(f"no usable input: all {len(skipped)} inputs were skipped ({reasons})" if skipped else "no input to build from")

    # The identity of this build: a resumed run must be the same command, or it would mix datasets.
    task_card = task.card()
    fingerprint = {"recipe": task_card.get("recipe", {}), "task": task.name, "seed": seed, "format": format,
                   "shard_size": run.shard_size, "options": run.recorded,
                   "items": hashlib.sha256(json.dumps([i.identity for i in items]).encode()).hexdigest()}
    lock = outdir.open_out(out)
    try:
        return _build_locked(name, task, run, started, say, items, skipped, task_card, fingerprint)
    finally:
        lock.release()


def _build_locked(name, task, run, started, say, items, skipped, task_card, fingerprint) -> BuildResult:
    out, seed, format, workers = run.out, run.seed, run.format, run.workers
    try:
        outdir.prepare(out, fingerprint, run.invocation, run.overwrite)
    except OSError as exc:
        raise outdir.unwritable(out, exc) from None

    shipped = storage.shipped()
    specs = [ShardSpec(i, shard_file(name, i, format), out, format, seed, task, group, shipped)
             for i, group in enumerate(_pack(items, run.shard_size, task))]

    done_stats = completed_shards(out, [spec.name for spec in specs])
    todo = [spec for spec in specs if spec.name not in done_stats]
    planned = sum(_item_samples(i) for i in items)
    already = sum(s["samples"] for s in done_stats.values())
    say(f"pairgen: {name}: {len(items)} inputs -> {planned} planned samples in {len(specs)} shards"
        f" ({len(skipped)} inputs skipped up front; {workers} worker{'s' if workers > 1 else ''}, {run.executor})")
    if len(todo) < workers and len(specs) == len(todo):
        say(f"pairgen: note: {len(specs)} shard(s) keep at most {len(specs)} of {workers} workers busy; "
            f"a smaller --shard-size spreads the work")
    if done_stats:
        say(f"pairgen: resuming: {len(done_stats)} shards already complete, {len(todo)} to make")

    bar = _progress_bar(planned, already, run.progress)
    result_stats = dict(done_stats)

    def on_shard(stats):
        result_stats[stats["shard"]] = stats

    execute = run_ray if run.executor == "ray" else run_local
    extra = {"address": run.ray_address} if run.executor == "ray" else {}

    def complete() -> str:
        samples = sum(s["samples"] for s in result_stats.values())
        return f"{len(result_stats)} of {len(specs)} shards complete ({samples} samples) in {_folder(out)}"

    retried: list[str] = []

    def on_retry(message: str) -> None:
        retried.append(message)
        say(f"pairgen: {message}")

    try:
        try:
            failures = execute(todo, workers, bar.update, on_shard, retries=run.retries, on_retry=on_retry, **extra)
        finally:
            bar.close()
        card = _card(name, task, task_card, seed, format, specs, result_stats, skipped, items, fingerprint)
        if retried:  # how the build got there (not part of the data)
            card["retried"] = retried
        write_json_atomic(_in(out, "dataset.json"), card)
    except KeyboardInterrupt:
        exit_at_next_interrupt()
        outdir.remove_temporaries(out)
        raise Interrupted(f"interrupted: {complete()}; run the same command again to resume") from None
    except OSError as exc:
        if exc.errno not in outdir.MEDIUM_ERRORS:
            raise
        outdir.remove_temporaries(out)  # a full disk stays full with them
        where = f" writing {exc.filename}" if exc.filename else ""
        raise PairgenError(f"{outdir.MEDIUM_ERRORS[exc.errno]} on {out}{where}; {complete()}; "
                           "free some space (or choose another --out) and run the same command again to resume") from None
    result = BuildResult(out, card, len(todo), len(done_stats), time.perf_counter() - started, failures)
    counts = card["counts"]
    say(f"pairgen: wrote {counts['samples']} samples in {len(result_stats)} shards to {_folder(out)} "
        f"in {result.seconds:.1f} s; {_skip_summary(card['skipped'])}"
        + (f" (details in {_in(out, 'dataset.json')})" if card["skipped"] else ""))
    if failures:
        raise ShardFailed(f"{len(failures)} shards failed after retries (run the same command again to resume):\n" + "\n".join(failures))
    return result


def _in(folder: str, name: str) -> str:
    return storage.join(folder, name) if storage.is_remote(folder) else os.path.join(folder, name)


def _folder(path: str) -> str:
    return path.rstrip("/") + "/" if path.rstrip("/") else path


def _skip_summary(skipped: list) -> str:
    """'3 inputs skipped: too small (2), not an image (1)': the reasons without their details."""
    if not skipped:
        return "no input skipped"
    from collections import Counter

    reasons = Counter(s["reason"].split(":")[0].strip() for s in skipped)
    listed = ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common())
    return f"{len(skipped)} input{'s' if len(skipped) != 1 else ''} skipped: {listed}"


def _item_samples(item) -> int:
    return int(item.payload.get("samples", 1))


def _pack(items, shard_size: int, task) -> list[list]:
    """Group items into shards of exactly shard_size samples (the last may be short), splitting
    multi-sample items where the task allows it."""
    shards, current, count = [], [], 0
    queue = list(reversed(items))
    while queue:
        item = queue.pop()
        n = _item_samples(item)
        room = shard_size - count
        if n > room:
            parts = task.split(item, room) if room > 0 else None
            if parts:
                item, rest = parts
                queue.append(rest)
                n = room
            elif current:
                shards.append(current)
                current, count = [], 0
        current.append(item)
        count += n
        if count >= shard_size:
            shards.append(current)
            current, count = [], 0
    if current:
        shards.append(current)
    return shards


def _check_options(out, workers, shard_size, limit, fmt, executor, ray_address=None):
    outdir.check_out_path(out)
    if ray_address and executor != "ray":
        raise UsageError("--ray-address needs --executor ray (it names the Ray cluster to run on)")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if shard_size is not None and shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1, got {shard_size}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor must be local or ray, got {executor!r}")


def _card(name, task, task_card, seed, fmt, specs, stats, skipped, items, fingerprint) -> dict:
    shard_rows = [{"file": s.name, "samples": stats[s.name]["samples"]} for s in specs if s.name in stats]
    late_skips = [sk for s in specs if s.name in stats for sk in stats[s.name]["skipped"]]
    all_skipped = [{"path": s.path, "reason": s.reason} for s in skipped] + late_skips
    card = {
        "pairgen_version": __version__,
        "task": task.name,
        "recipe_name": name,
        "seed": seed,
        "format": fmt,
        **({"hdf5_filter": dict(zip(("compression", "level"), HDF5_FILTERS[fmt]))} if fmt in HDF5_FILTERS else {}),
        "shards": shard_rows,
        "counts": {
            "samples": sum(r["samples"] for r in shard_rows),
            "inputs": len(items) + len(skipped),
            "skipped": len(all_skipped),
            "shards": len(shard_rows),
            "shards_planned": len(specs),
        },
        "fields": {k: v.to_json() for k, v in task.fields().items()},
        "replayable": task.replayable,
        "conventions": dict(CONVENTIONS),
        "skipped": all_skipped,
        "options": fingerprint["options"],
    }
    if task.train_kind:
        card["train_kind"] = task.train_kind  # the trainer's loss, metrics and head (train/kinds.py)
    task_card = {**task_card, **task.dataset_summary([stats[s.name].get("summary", {}) for s in specs if s.name in stats])}
    for key, value in task_card.items():
        if key == "conventions":
            card["conventions"].update(value)
        else:
            card[key] = value
    return card


def _progress_bar(total: int, initial: int, enabled: bool):
    """A bar on a terminal; plain periodic lines in a log (no carriage returns)."""
    if enabled and not sys.stderr.isatty():
        return PlainProgress(total, initial)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="sample", disable=not enabled, dynamic_ncols=True,
                desc="pairgen", smoothing=0.1)


class PlainProgress:
    """Progress for a redirected stderr: one line every ``every`` seconds, and one at the end."""

    def __init__(self, total: int, initial: int = 0, every: float = 10.0, stream=None):
        self.total, self.done, self.every = total, initial, every
        self.stream = stream or sys.stderr
        self.started = self.last = time.monotonic()
        self.initial = initial

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def close(self) -> None:
        self._line(time.monotonic())

    def _line(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.initial) / elapsed
        left = f", about {(self.total - self.done) / rate:.0f} s left" if rate > 0 and self.done < self.total else ""
        percent = 100.0 * self.done / self.total if self.total else 100.0
        print(f"pairgen: {self.done}/{self.total} samples ({percent:.0f}%), {rate:.1f} samples/s{left}",
              file=self.stream, flush=True)


# ----------------------------------------------------------------------------- replay


def replay(record: dict, task: str | None = None) -> dict:
    """Regenerate a sample's fields bit-exactly from its json record, by the task that made it
    (the record's ``task``; ``task`` names it for records written before records carried it)."""
    from .tasks import get_task

    name = record.get("task") or task
    if name is None:
        raise PairgenError("this record does not say which task made it (no 'task' key); pass the dataset's task")
    return get_task(name).replay(record)


def read_card(folder: str) -> dict:
    if storage.is_remote(folder):  # inspect, replay, export, --html read local folders
        raise PairgenError(f"{folder}: this command reads local folders only (not yet object stores); copy the folder "
                           f"down first (e.g. `aws s3 sync {folder} LOCAL/`), or check it in place with `pairgen verify {folder}`")
    path = os.path.join(folder, "dataset.json")
    if os.path.isfile(folder):
        raise PairgenError(f"{folder} is a file; give the dataset folder (the one holding dataset.json)")
    if not os.path.isdir(folder):
        raise PairgenError(f"{folder}: no such directory")
    if not os.path.exists(path):
        raise PairgenError(f"{folder}: no dataset.json here; is this a pairgen output folder?")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except ValueError as exc:
        raise PairgenError(f"{path}: not valid JSON: {exc}") from exc
