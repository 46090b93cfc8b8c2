"""Shard files: atomic tar (webdataset layout) and HDF5 writers, per-shard stats, the card.

A shard is written under ``NAME.tmp`` and renamed when complete; its stats file
``NAME.stats.json`` is written after that and is the done marker a resumed build trusts. On an
object store (``s3://...``) the shard is written to a local temporary file and uploaded whole
(``pairgen.storage.upload``), then its stats object; resume reads both back from the store.
Tar members carry fixed metadata (mtime 0, uid/gid 0, mode 0444, ustar), so the same samples
give the same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import numpy as np

from . import storage
from .encoding import decode, encode

EXTENSIONS = {"wds": ".tar", "hdf5": ".h5", "hdf5-lzf": ".h5"}
# HDF5 filters: gzip is in every HDF5 build (h5dump, MATLAB, HDFView read it); LZF only in h5py.
# Level 1: on 512x512 RGB + its x4 LR, gzip 1 writes 17 ms/sample and 651 KB, levels 4-6 20 ms
# and 663 KB (no smaller), LZF 7 ms and 720 KB (benchmarks/bench_loader.py has the read side).
HDF5_FILTERS = {"hdf5": ("gzip", 1), "hdf5-lzf": ("lzf", None)}


def shard_file(prefix: str, index: int, fmt: str) -> str:
    return f"{prefix}-{index:06d}{EXTENSIONS[fmt]}"


def stats_file(shard_name: str) -> str:
    return shard_name.rsplit(".", 1)[0] + ".stats.json"


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write under PATH.tmp, fsync, then rename: readers see the old file or the whole new one."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, value) -> None:
    """A JSON file written whole: PATH.tmp + rename locally, one PUT on an object store."""
    data = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if storage.is_remote(path):
        storage.write_bytes(path, data)
    else:
        write_bytes_atomic(path, data)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_stats(out_dir: str, shard_name: str) -> dict | None:
    try:
        if storage.is_remote(out_dir):
            stats = json.loads(storage.read_bytes(storage.join(out_dir, stats_file(shard_name))))
        else:
            with open(os.path.join(out_dir, stats_file(shard_name)), encoding="utf-8") as handle:
                stats = json.load(handle)
        return stats if isinstance(stats, dict) else None
    except (OSError, ValueError):
        return None


NO_STATS, NO_CHECKSUM = "no stats file (never finished)", "no checksum in its stats (made by an older pairgen)"
UNVERIFIABLE = (NO_STATS, NO_CHECKSUM)  # a reader can still read such a shard; a resume remakes it


def shard_damage(out_dir: str, shard_name: str, stats: dict | None, sizes: dict | None = None) -> str | None:
    """Why a finished shard cannot be trusted (missing, other size, other checksum), or None.
    ``sizes``: a remote folder's listing (name -> bytes), read once for all its shards."""
    if stats is None:
        return NO_STATS
    remote = storage.is_remote(out_dir)
    if remote:
        path = storage.join(out_dir, shard_name)
        size = (sizes if sizes is not None else storage.listing(out_dir)).get(shard_name)
        if size is None:
            return "missing"
    else:
        path = os.path.join(out_dir, shard_name)
        if not os.path.exists(path):
            return "missing"
    if "sha256" not in stats:
        return NO_CHECKSUM
    if not remote:
        size = os.path.getsize(path)
    if size != stats.get("bytes"):
        return f"{size} bytes, its stats say {stats.get('bytes')}"
    if (storage.sha256(path) if remote else file_sha256(path)) != stats["sha256"]:
        return "checksum differs from its stats (damaged)"
    return None


def shard_done(out_dir: str, shard_name: str, sizes: dict | None = None) -> dict | None:
    """The shard's stats if an earlier run completed it and it is intact (size and sha256), else None."""
    stats = read_stats(out_dir, shard_name)
    return stats if shard_damage(out_dir, shard_name, stats, sizes) is None else None


def completed_shards(out_dir: str, names: list[str]) -> dict[str, dict]:
    """Name -> stats of the shards an earlier run completed intact. On an object store: one
    listing, then only the shards with a stats object are read back and hashed, a few at a time
    (the round trips, not the CPU, dominate)."""
    if not storage.is_remote(out_dir):
        found = {name: shard_done(out_dir, name) for name in names}
    else:
        from concurrent.futures import ThreadPoolExecutor

        sizes = storage.listing(out_dir)
        candidates = [name for name in names if stats_file(name) in sizes]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = dict(zip(candidates, pool.map(lambda name: shard_done(out_dir, name, sizes), candidates)))
    return {name: stats for name, stats in found.items() if stats is not None}


class TarShardWriter:
    def __init__(self, path: str):
        self.path = path
        self.tmp = path + ".tmp"
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.USTAR_FORMAT)

    def write(self, key: str, fields: dict) -> None:
        for name in sorted(fields):
            data = encode(name, fields[name])
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        _close_and_remove(self.tar, self.tmp)


class HDF5ShardWriter:
    """One group per sample key; arrays as chunked datasets (one chunk each; gzip or LZF, see
    HDF5_FILTERS), the json record as the group's ``json`` attribute. PNG fields are stored
    decoded (their pixels)."""

    def __init__(self, path: str, compression: str = "gzip", level: int | None = 1):
        import h5py

        self.path = path
        self.tmp = path + ".tmp"
        self.compression, self.level = compression, level
        self.file = h5py.File(self.tmp, "w", track_order=True)

    def write(self, key: str, fields: dict) -> None:
        group = self.file.create_group(key)
        for name in sorted(fields):
            value = fields[name]
            if name == "json":
                group.attrs["json"] = encode(name, value).decode("utf-8")
                continue
            array = np.ascontiguousarray(value)
            group.create_dataset(name, data=array, chunks=array.shape or None, compression=self.compression if array.ndim else None,
                                 compression_opts=self.level if array.ndim else None)

    def close(self) -> None:
        self.file.close()
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        _close_and_remove(self.file, self.tmp)


def _close_and_remove(handle, tmp: str) -> None:
    """Abandon a partial shard; closing may fail again (a full disk), removing must not be skipped."""
    try:
        handle.close()
    except Exception:  # noqa: BLE001 - the file is being thrown away
        pass
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def open_writer(path: str, fmt: str):
    return TarShardWriter(path) if fmt == "wds" else HDF5ShardWriter(path, *HDF5_FILTERS[fmt])


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_samples(path: str):
    """Yield (key, {field: decoded value}) from one shard of either format (for inspect/replay;
    tests read tars with the webdataset library instead)."""
    if path.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as handle:
            for key, group in handle.items():
                fields = {name: group[name][()] for name in group}
                fields["json"] = json.loads(group.attrs["json"])
                yield key, fields
        return
    with tarfile.open(path) as archive:
        current, fields = None, {}
        for info in archive:
            if not info.isfile():
                continue
            base = os.path.basename(info.name)
            key, _, name = base.partition(".")
            if key != current and current is not None:
                yield current, fields
                fields = {}
            current = key
            fields[name] = decode(name, archive.extractfile(info).read())
        if current is not None:
            yield current, fields
