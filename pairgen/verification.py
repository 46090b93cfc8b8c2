"""`pairgen verify`: check every shard of a build against the size and sha256 its stats file
recorded when it was written, and repair damaged ones by rebuilding them bit-exactly (the build's
recorded command, resumed: only the removed shards are made again). A folder may be an object
store prefix (``s3://bucket/shards/``): the same checks, on the objects read back."""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field

from . import storage
from .errors import PairgenError
from .outdir import MARKER
from .shards import read_stats, shard_damage, stats_file


@dataclass
class Verdict:
    folder: str
    checked: int = 0
    bad: dict = field(default_factory=dict)  # shard file -> reason

    @property
    def ok(self) -> bool:
        return not self.bad


def planned_shards(folder: str) -> list[str]:
    """The shard files a build made or meant to make: those its card lists, those with stats
    files, and stray shard files (a shard without its stats file never finished)."""
    if storage.is_remote(folder):
        return _planned_remote(folder, storage.listing(folder))
    names = set()
    card_path = os.path.join(folder, "dataset.json")
    if os.path.exists(card_path):
        try:
            with open(card_path, encoding="utf-8") as handle:
                names.update(row["file"] for row in json.load(handle).get("shards", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PairgenError(f"{card_path}: unreadable ({exc}); run the build command again to rewrite it") from None
    escaped = glob.escape(folder)
    for path in glob.glob(os.path.join(escaped, "*.stats.json")):
        try:
            with open(path, encoding="utf-8") as handle:
                names.add(json.load(handle)["shard"])
        except (OSError, ValueError, KeyError, TypeError):  # a damaged stats file: its shard is found below
            pass
    for pattern in ("*.tar", "*.h5"):
        names.update(os.path.basename(p) for p in glob.glob(os.path.join(escaped, pattern)))
    return sorted(names)


def _planned_remote(folder: str, sizes: dict) -> list[str]:
    names = set()
    if "dataset.json" in sizes:
        try:
            names.update(row["file"] for row in json.loads(storage.read_bytes(storage.join(folder, "dataset.json"))).get("shards", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PairgenError(f"{folder}/dataset.json: unreadable ({exc}); run the build command again to rewrite it") from None
    for name in sizes:
        if name.endswith(".stats.json"):
            stats = read_stats(folder, name[: -len(".stats.json")])
            if isinstance(stats, dict) and isinstance(stats.get("shard"), str):
                names.add(stats["shard"])
        elif name.endswith((".tar", ".h5")):
            names.add(name)
    return sorted(names)


def verify(folder: str) -> Verdict:
    remote = storage.is_remote(folder)
    if remote:
        sizes = storage.listing(folder)
        if MARKER not in sizes:
            raise PairgenError(f"{folder}: no build.json there; is this a pairgen output folder?" if sizes else f"{folder}: no such folder")
    else:
        sizes = None
        if not os.path.isdir(folder):
            raise PairgenError(f"{folder}: no such directory")
        if not os.path.exists(os.path.join(folder, MARKER)):
            raise PairgenError(f"{folder}: no build.json here; is this a pairgen output folder?")
    verdict = Verdict(folder)
    names = _planned_remote(folder, sizes) if remote else planned_shards(folder)
    for name in names:
        verdict.checked += 1
        reason = shard_damage(folder, name, read_stats(folder, name), sizes)
        if reason:
            verdict.bad[name] = reason
    return verdict


def repair(folder: str, progress: bool = True) -> tuple[Verdict, Verdict]:
    """Rebuild the damaged shards of ``folder`` with the command recorded in its build.json;
    returns the verdicts before and after. Refuses when the inputs or recipe changed since
    (the build's own resume check), so a repaired shard is the original, byte for byte."""
    from .api import build

    before = verify(folder)
    if before.ok:
        return before, before
    invocation = json.loads(storage.read_text_input(_in(folder, MARKER))).get("invocation")
    if not invocation:
        raise PairgenError(f"{folder}/build.json does not record the build's command (made by an older pairgen); "
                           "rebuild the damaged shards by running the original command again")
    expected = {name: (read_stats(folder, name) or {}).get("sha256") for name in before.bad}
    for name in before.bad:
        for path in (_in(folder, name), _in(folder, stats_file(name))):
            if storage.is_remote(path):
                storage.remove(path)
            elif os.path.exists(path):
                os.unlink(path)
    build(out=folder, progress=progress, storage_options=storage.shipped()["options"], **invocation)
    after = verify(folder)
    for name, sha in expected.items():
        now = (read_stats(folder, name) or {}).get("sha256")
        if sha and now and now != sha:
            after.bad[name] = "rebuilt, but not byte-identical to the original (have the inputs changed?)"
    return before, after


def _in(folder: str, name: str) -> str:
    return storage.join(folder, name) if storage.is_remote(folder) else os.path.join(folder, name)
