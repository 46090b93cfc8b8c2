"""Reading a pairgen shard folder for training.

* ``load_card(folder)`` reads ``dataset.json``: the task, which fields are inputs and targets,
  and the shard files with their sample counts.
* ``check_shards(card)`` scans every tar's headers (no decoding) in the main process, so a
  missing, corrupt or truncated shard, or a card whose fields are not in the shards, is
  reported by file name before any DataLoader worker starts.
* ``Prepare`` decodes one sample's fields by extension, brings every input to the target's
  pixel grid (bicubic; for super-resolution this is the LR -> HR upsampling) and applies one
  random crop to all of them.
* ``TrainStream`` is an endless, deterministic stream of batches: the shard order of epoch ``e``
  is a permutation drawn from ``(seed, e)``; shards are split across processes (RANK /
  WORLD_SIZE) and DataLoader workers; a shuffle buffer per worker is seeded from
  ``(seed, e, slot)``; each sample's crop is drawn from ``(seed, e, key)``. Batch ``i`` of a run
  is therefore a function of the seed and ``i`` alone, which is what makes ``--resume`` exact:
  a resumed stream skips the raw (undecoded) samples of the batches already trained on.
* The folder may be on an object store (``s3://bucket/shards/``, through pairgen.storage and
  fsspec): credentials from the AWS_* variables, other fsspec options as JSON in
  ``PAIRGEN_STORAGE_OPTIONS``. Shards are streamed (8 MiB ranges), never copied to disk.

Value conventions of the tensors handed to the model (``to_model``: channels first, float32):
8-bit PNG -> [-1, 1]; 16-bit PNG -> [-1, 1] for image tasks, int64 ids for segmentation;
``.npy`` -> the stored values (flow in pixels (dx, dy), depth planar with 0 = invalid).
"""
from __future__ import annotations

import io
import itertools
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
import webdataset as wds

from pairgen import storage

cv2.setNumThreads(1)  # one thread per DataLoader worker; the workers are the parallelism


class DataError(Exception):
    """Training data the user can fix; the message names the file and the problem."""


class RemotePath(str):
    """A folder or shard on an object store, where a local one is a Path: ``/`` and ``.name``."""

    def __truediv__(self, name: str) -> "RemotePath":
        return RemotePath(storage.join(self, name))

    @property
    def name(self) -> str:
        return self.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Shard:
    path: Path | RemotePath
    samples: int


@dataclass(frozen=True)
class Card:
    """What the trainer needs from ``dataset.json``; ``raw`` is the whole parsed card."""

    root: Path | RemotePath
    task: str
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    fields: dict
    shards: tuple[Shard, ...]
    raw: dict

    @property
    def card_path(self) -> Path:
        return self.root / "dataset.json"


def load_card(folder: str | Path) -> Card:
    """Parse and validate ``folder/dataset.json``; raise DataError naming the file and problem."""
    if storage.is_remote(folder):
        return _load_remote_card(RemotePath(str(folder).rstrip("/")))
    root = Path(storage.local_form(str(folder)))
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a pairgen shard folder with dataset.json)")
    card_path = root / "dataset.json"
    if not card_path.is_file():
        if not any(root.iterdir()):
            raise DataError(f"{root}: the folder is empty (expected dataset.json and .tar shards)")
        raise DataError(f"{card_path}: missing; {root} is not a pairgen shard folder")
    try:
        raw = json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{card_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return _parse_card(root, raw, lambda path: path.is_file())


def _load_remote_card(root: RemotePath) -> Card:
    try:
        sizes = storage.listing(root)
    except OSError as exc:
        raise DataError(f"{root}: cannot list it ({exc})") from None
    card_path = root / "dataset.json"
    if "dataset.json" not in sizes:
        raise DataError(f"{card_path}: missing; {root} is not a pairgen shard folder" if sizes else f"{root}: no such folder")
    try:
        raw = json.loads(storage.read_bytes(card_path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{card_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise DataError(f"{card_path}: cannot read it ({exc})") from None
    return _parse_card(root, raw, lambda path: path.name in sizes)


def _parse_card(root, raw, is_file: Callable) -> Card:
    card_path = root / "dataset.json"
    if not isinstance(raw, dict):
        raise DataError(f"{card_path}: expected a JSON object")
    for key in ("task", "fields", "shards"):
        if key not in raw:
            raise DataError(f"{card_path}: no '{key}' entry")
    fmt = raw.get("format", "wds")
    if fmt != "wds":
        raise DataError(f"{card_path}: format '{fmt}' is not supported by this trainer (build with --format wds)")
    fields = raw["fields"]
    if not isinstance(fields, dict):
        raise DataError(f"{card_path}: 'fields' must map field names to entries")
    for name, entry in fields.items():
        if not isinstance(entry, dict) or "role" not in entry:
            raise DataError(f"{card_path}: field '{name}' has no 'role'")
    inputs = tuple(n for n, e in fields.items() if e["role"] == "input")
    order = raw.get("input_order")  # the task's channel order (e.g. inpaint: the masked image, then the mask)
    if order is not None:
        if not isinstance(order, list) or sorted(order) != sorted(inputs):
            raise DataError(f"{card_path}: 'input_order' must list the input fields {list(inputs)}, got {order!r}")
        inputs = tuple(order)
    targets = tuple(n for n, e in fields.items() if e["role"] == "target")
    if not inputs:
        raise DataError(f"{card_path}: no field has role 'input'")
    if not targets:
        raise DataError(f"{card_path}: no field has role 'target'")
    for name in inputs + targets:
        ext = name.rsplit(".", 1)[-1]
        if ext not in ("png", "npy"):
            raise DataError(f"{card_path}: field '{name}': only .png and .npy inputs/targets can be trained on")
    shards = []
    for entry in raw["shards"]:
        if not isinstance(entry, dict) or "file" not in entry:
            raise DataError(f"{card_path}: each 'shards' entry needs 'file' and 'samples'")
        path = root / entry["file"]
        if not is_file(path):
            raise DataError(f"{path}: listed in {card_path} but missing")
        shards.append(Shard(path, int(entry.get("samples", -1))))
    if not shards or sum(max(s.samples, 0) for s in shards) == 0:
        raise DataError(f"{card_path}: lists no shards with samples")
    return Card(root, str(raw["task"]), inputs, targets, fields, tuple(shards), raw)


def check_shards(card: Card, shards: tuple[Shard, ...] | None = None) -> None:
    """Read the tar headers of every shard (not the data) and check them against the card:
    readable, not truncated, the card's sample count, and every input/target field present in
    every sample. Cheap: one 512-byte header read per member."""
    needed = set(card.inputs + card.targets)
    for shard in shards if shards is not None else card.shards:
        remote = isinstance(shard.path, RemotePath)
        if remote:
            fs, inside = storage.filesystem(shard.path)
            size = fs.size(inside)
        else:
            size = shard.path.stat().st_size
        if size == 0:
            raise DataError(f"{shard.path}: empty file (0 bytes)")
        keys: list[str] = []
        seen: dict[str, set] = {}
        try:
            with (tarfile.open(fileobj=storage.open_input(shard.path, 1 << 20), mode="r:") if remote
                  else tarfile.open(shard.path, mode="r:")) as tar:
                for member in tar:
                    if not member.isreg():
                        continue
                    if member.offset_data + member.size > size:
                        raise DataError(f"{shard.path}: truncated (member {member.name} ends past the end of the file)")
                    base = member.name.rsplit("/", 1)[-1]
                    if base.startswith("__"):
                        continue
                    key, _, field = base.partition(".")
                    if not keys or keys[-1] != key:
                        if key in seen:
                            raise DataError(f"{shard.path}: fields of sample {key} are not contiguous")
                        keys.append(key)
                        seen[key] = set()
                    seen[key].add(field.lower())
        except tarfile.TarError as exc:
            raise DataError(f"{shard.path}: not a readable tar file ({exc})") from None
        if shard.samples >= 0 and len(keys) != shard.samples:
            raise DataError(
                f"{shard.path}: holds {len(keys)} samples but {card.card_path} says {shard.samples}"
                + (" (truncated?)" if len(keys) < shard.samples else "")
            )
        for key in keys:
            missing = needed - seen[key]
            if missing:
                raise DataError(
                    f"{shard.path}: sample {key} has fields {sorted(seen[key])} but the card's "
                    f"inputs/targets need {sorted(missing)} too ({card.card_path} does not match the shards)"
                )


# ---------------------------------------------------------------------------------------------
# decoding and preparing one sample


_SWAP = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}  # OpenCV decodes colour PNGs as BGR(A)


def decode_field(name: str, data: bytes, where: str, rgb: bool = True) -> np.ndarray:
    """Bytes of one field -> array: PNG as (H, W) or (H, W, C), uint8 or uint16, RGB(A) order
    (``rgb=False``: OpenCV's BGR(A), for a caller that swaps while copying); NPY as stored."""
    ext = name.rsplit(".", 1)[-1]
    if ext == "png":
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{where}: field {name}: not a decodable PNG")
        return to_rgb(image) if rgb else image
    if ext == "npy":
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # numpy raises several types for bad files
            raise DataError(f"{where}: field {name}: not a readable .npy array ({exc})") from None
    raise DataError(f"{where}: field {name}: cannot decode '.{ext}' fields")


def to_rgb(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """BGR(A) -> RGB(A) (other layouts unchanged), written into ``out`` when given."""
    code = _SWAP.get(image.shape[2]) if image.ndim == 3 else None
    if code is None:
        if out is None:
            return image
        out[...] = image
        return out
    if out is None:
        return cv2.cvtColor(image, code)
    result = cv2.cvtColor(image, code, dst=out)
    if result is not out:  # OpenCV allocates instead when dst does not fit; keep the caller's buffer
        out[...] = result
    return out


def resize_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize (Keys a=-0.75, pixel-centre aligned, as torch's bicubic) in the array's own
    dtype: uint8 stays uint8 (rounded, saturated), which is the usual bicubic baseline."""
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_CUBIC)


def channels_first_fields(card: Card) -> tuple[str, ...]:
    """Fields stored (C, H, W) (keypoint heatmaps, by their view). The trainer turns them to
    (H, W, C) on decoding, as every other field is, so crops, batches and ``to_model`` treat
    all fields alike."""
    from pairgen.preview import CHANNELS_FIRST_VIEWS

    return tuple(n for n in card.inputs + card.targets if card.fields[n].get("view") in CHANNELS_FIRST_VIEWS)


def to_channels_last(array: np.ndarray, name: str, where: str) -> np.ndarray:
    """A (C, H, W) field as an (H, W, C) view."""
    if array.ndim != 3:
        raise DataError(f"{where}: field {name} has shape {list(array.shape)}; its view stores (C, H, W)")
    return array.transpose(1, 2, 0)


@dataclass(frozen=True)
class Prepare:
    """One raw webdataset sample -> (inputs, targets): tuples of arrays, one per card field, as
    decoded (H, W) or (H, W, C) in their stored dtype, all on the target's pixel grid, cropped.

    PNG inputs of another size than the target are resized bicubically to its grid
    (super-resolution: LR -> HR). ``crop`` is the square crop side in target pixels (None: the
    whole image). Arrays stay uint8 until ``to_model`` in the training process: a quarter of
    the bytes through the worker queues and to the GPU. With ``out`` (one array per field, inputs
    then targets) the result is written there: the batch slot, so no separate stacking copy."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    labels: bool = False  # targets are integer class ids (segmentation)
    crop: int | None = None
    channels_first: tuple[str, ...] = ()  # fields stored (C, H, W), turned to (H, W, C) here

    def __call__(self, sample: dict, rng: np.random.Generator | None,
                 out: list[np.ndarray] | None = None) -> tuple[tuple, tuple]:
        where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"
        names = self.inputs + self.targets
        arrays = {}
        for name in names:
            if name not in sample:
                raise DataError(f"{where}: no field {name} (the card lists it; the shard does not have it)")
            arrays[name] = decode_field(name, sample[name], where, rgb=False)
            if name in self.channels_first:
                arrays[name] = to_channels_last(arrays[name], name, where)
        height, width = arrays[self.targets[0]].shape[:2]
        for name in self.targets + self.inputs:
            a = arrays[name]
            if a.shape[:2] == (height, width):
                continue
            if name in self.targets or not name.endswith(".png"):
                raise DataError(f"{where}: field {name} is {a.shape[0]}x{a.shape[1]}, "
                                f"{self.targets[0]} is {height}x{width}")
            arrays[name] = resize_to(a, height, width)
        if self.crop is not None:
            if height < self.crop or width < self.crop:
                raise DataError(f"{where}: {height}x{width} is smaller than the crop {self.crop} (use a smaller --crop)")
            top = int(rng.integers(0, height - self.crop + 1)) if rng is not None else (height - self.crop) // 2
            left = int(rng.integers(0, width - self.crop + 1)) if rng is not None else (width - self.crop) // 2
            if (self.crop, self.crop) != (height, width):  # views; the colour swap or the batch copies them
                arrays = {n: a[top : top + self.crop, left : left + self.crop] for n, a in arrays.items()}
        done = []
        for i, name in enumerate(names):
            a = arrays[name]
            dst = None if out is None else out[i]
            if dst is not None and dst.shape != a.shape:
                raise DataError(f"{where}: field {name} has shape {list(a.shape)}, the batch's other samples {list(dst.shape)}")
            done.append(to_rgb(a, dst) if name.endswith(".png") else (a if dst is None else _copy_into(dst, a)))
        return tuple(done[: len(self.inputs)]), tuple(done[len(self.inputs) :])


def _copy_into(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    dst[...] = src
    return dst


def to_model(fields: list[torch.Tensor], labels: bool = False) -> torch.Tensor:
    """Batched fields (B, H, W[, C]) in their stored dtypes (channels-first fields already turned
    to (H, W, C) by ``Prepare``) -> one float32 (B, C, H, W) tensor in
    the model's value convention (module docstring), channels concatenated in card order; with
    ``labels`` the single target field -> int64 (B, H, W) class ids."""
    if labels:
        return fields[0].long()
    out = []
    for t in fields:
        if t.dim() == 3:
            t = t.unsqueeze(-1)
        t = t.permute(0, 3, 1, 2)
        if t.dtype == torch.uint8:
            t = t.float() * (2.0 / 255.0) - 1.0
        elif t.dtype == torch.uint16:
            t = t.to(torch.int32).float() * (2.0 / 65535.0) - 1.0
        else:
            t = t.float()
        out.append(t)
    return torch.cat(out, dim=1).contiguous()


def batch_buffers(first: tuple[tuple, tuple], batch_size: int) -> list[torch.Tensor]:
    """Empty (batch_size, *shape) tensors for each field of ``first`` (inputs then targets). In a
    DataLoader worker they live in shared memory, as torch's default_collate does, so the queue
    to the training process copies nothing."""
    in_worker = torch.utils.data.get_worker_info() is not None
    buffers = []
    for a in first[0] + first[1]:
        t = torch.empty((batch_size,) + a.shape, dtype=torch.from_numpy(a[:0]).dtype)
        buffers.append(t.share_memory_() if in_worker else t)
    return buffers


# ---------------------------------------------------------------------------------------------
# the training stream


def key_number(key: str) -> int:
    """Sample keys are digits only (pairgen contract); a key that is not is reported, not hashed."""
    tail = key.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise DataError(f"sample key '{key}' is not digits only (pairgen keys are)")
    return int(tail)


@dataclass(frozen=True)
class KeyHoldout:
    """Sample-level hold-out for a folder with a single shard: keys with number % 10 == 9 are
    validation. ``validation`` selects which side this filter keeps."""

    validation: bool

    def __call__(self, key: str) -> bool:
        return (key_number(key) % 10 == 9) == self.validation


def _raise_shard_error(exn: Exception) -> bool:
    """webdataset handler: turn a tar reading error into a DataError naming the shard."""
    url = next((a for a in reversed(exn.args) if isinstance(a, str) and a.endswith(".tar")), "a shard")
    raise DataError(f"{url}: cannot read tar ({exn.args[0] if exn.args else exn})") from None


def read_samples(paths: list[str], fields: set[str]) -> Iterator[dict]:
    """Raw samples (undecoded bytes) of ``paths`` in order, only the named fields, via webdataset."""
    def wanted(fname: str) -> bool:
        return fname.rsplit("/", 1)[-1].partition(".")[2].lower() in fields

    if not any(storage.is_remote(p) for p in paths):
        return wds.tarfile_samples([{"url": p} for p in paths], handler=_raise_shard_error, select_files=wanted)
    files = wds.tariterators.tar_file_expander(_streams(paths), handler=_raise_shard_error, select_files=wanted)
    return wds.tariterators.group_by_keys(files, handler=_raise_shard_error)


def _streams(paths: list[str]) -> Iterator[dict]:
    """webdataset's url+stream pairs, remote shards opened through fsspec (one at a time)."""
    for path in paths:
        if not storage.is_remote(path):
            yield {"url": path, "stream": open(path, "rb")}
            continue
        try:
            fs, inside = storage.filesystem(path)
            stream = fs.open(inside, "rb", block_size=8 << 20, cache_type="readahead")
        except OSError as exc:
            raise DataError(f"{path}: cannot read it ({exc})") from None
        yield {"url": path, "stream": stream}


def shuffled(stream: Iterator[dict], bufsize: int, rng: np.random.Generator) -> Iterator[dict]:
    """Shuffle buffer: fill ``bufsize`` samples, then emit a random one per sample read."""
    buffer: list[dict] = []
    for sample in stream:
        if len(buffer) < bufsize:
            buffer.append(sample)
            continue
        i = int(rng.integers(len(buffer)))
        buffer[i], sample = sample, buffer[i]
        yield sample
    for i in rng.permutation(len(buffer)):
        yield buffer[i]


def epoch_samples(paths: list[str], fields: set[str], *, seed: int, epoch: int, slot: int, slots: int,
                  keep: Callable[[str], bool] | None, shuffle_buffer: int) -> Iterator[dict]:
    """One epoch of raw samples for data slot ``slot`` of ``slots`` (process x worker).
    Shards are split across slots when there are enough of them, else samples are."""
    order = [paths[i] for i in np.random.default_rng([seed, epoch]).permutation(len(paths))]
    if len(order) >= slots:
        stream = read_samples(order[slot::slots], fields)
    else:
        stream = itertools.islice(read_samples(order, fields), slot, None, slots)
    if keep is not None:
        stream = (s for s in stream if keep(s["__key__"]))
    return shuffled(stream, shuffle_buffer, np.random.default_rng([seed, epoch, slot, 1]))


def batches_before(start_batch: int, worker: int, num_workers: int) -> int:
    """How many of the first ``start_batch`` batches of a run came from ``worker`` (DataLoader
    takes batches from its workers in strict rotation; the streams are endless, so none drops out)."""
    return max(0, -(-(start_batch - worker) // num_workers))


class TrainStream(torch.utils.data.IterableDataset):
    """Endless stream of collated batches (use with ``DataLoader(batch_size=None)``): lists of
    per-field tensors (inputs, targets) in their stored dtypes; ``to_model`` converts them."""

    def __init__(self, paths: list[str], prepare: Prepare, *, batch_size: int, seed: int,
                 start_batch: int = 0, rank: int = 0, world_size: int = 1,
                 keep: Callable[[str], bool] | None = None, shuffle_buffer: int = 256):
        super().__init__()
        if not paths:
            raise DataError("no training shards")
        self.paths = [str(p) for p in paths]
        self.prepare = prepare
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.keep = keep
        self.shuffle_buffer = shuffle_buffer

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        info = torch.utils.data.get_worker_info()
        loader_worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # A DataLoader takes batch j from its worker j % num_workers. A resumed loader starts
        # again at its worker 0, which must play the part of the worker that delivered global
        # batch ``start_batch`` in the uninterrupted run.
        worker = (loader_worker + self.start_batch) % num_workers
        slot, slots = self.rank * num_workers + worker, self.world_size * num_workers
        skip = batches_before(self.start_batch, worker, num_workers) * self.batch_size
        fields = set(self.prepare.inputs + self.prepare.targets)
        buffers: list[torch.Tensor] = []
        filled = 0
        n_inputs = len(self.prepare.inputs)
        for epoch in itertools.count():
            count = 0
            for sample in epoch_samples(self.paths, fields, seed=self.seed, epoch=epoch, slot=slot,
                                        slots=slots, keep=self.keep, shuffle_buffer=self.shuffle_buffer):
                count += 1
                if skip:  # resume: batches already trained on are read but not decoded
                    skip -= 1
                    continue
                rng = np.random.default_rng([self.seed, epoch, key_number(sample["__key__"])])
                if filled == 0:
                    first = self.prepare(sample, rng)
                    buffers = batch_buffers(first, self.batch_size)
                    for buffer, array in zip(buffers, first[0] + first[1]):
                        buffer.numpy()[0] = array  # numpy: torch's copy_ wakes its thread pool
                else:  # decoded straight into the batch
                    self.prepare(sample, rng, out=[b[filled].numpy() for b in buffers])
                filled += 1
                if filled == self.batch_size:
                    yield buffers[:n_inputs], buffers[n_inputs:]
                    filled = 0
            if count == 0:  # an endless loop over nothing would hang the run
                raise DataError(f"data slot {slot} of {slots} received no training samples from {len(self.paths)} shard(s)")


def eval_samples(paths: list[str], prepare: Prepare, limit: int,
                 keep: Callable[[str], bool] | None = None) -> list[tuple[str, tuple, tuple]]:
    """The first ``limit`` held-out samples in shard order, uncropped: (key, inputs, targets)."""
    fields = set(prepare.inputs + prepare.targets)
    out = []
    for sample in read_samples([str(p) for p in paths], fields):
        if keep is not None and not keep(sample["__key__"]):
            continue
        x, y = prepare(sample, None)
        out.append((sample["__key__"], x, y))
        if len(out) >= limit:
            break
    return out


def first_sample(card: Card) -> dict:
    """The first raw sample of the first shard (to learn channel counts and sizes)."""
    for sample in read_samples([str(card.shards[0].path)], set(card.inputs + card.targets)):
        return sample
    raise DataError(f"{card.shards[0].path}: no samples")


def worker_error_text(exc: BaseException) -> str:
    """A DataLoader worker's exception re-raised in the main process carries the worker's whole
    traceback in its message; keep the last line (the actual problem) without the class name."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    head, sep, rest = last.partition(": ")
    return rest if sep and (head.endswith("Error") or head.endswith("Exception")) else last


def channel_count(array: np.ndarray) -> int:
    return 1 if array.ndim == 2 else int(array.shape[2])


def round_crop(crop: int, height: int, width: int, multiple: int) -> int:
    """Largest crop <= ``crop`` and <= the image that the U-Net's ``multiple`` divides."""
    side = min(crop, height, width)
    return side // multiple * multiple if side >= multiple else 0

