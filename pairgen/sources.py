"""Where photos come from, and how they are decoded safely into 8-bit RGB.

A ``--src`` is a directory (searched recursively), a glob, a text file listing paths (one per
line, relative to the list's folder, ``#`` comments), a ``.tar`` of images, or nothing (the
photos that ship inside scikit-image). Planning reads headers only; decoding happens in workers.
Each may also be a remote URL (``s3://bucket/photos/``, through ``pairgen.storage``): a prefix is
listed recursively, a header is probed from its first 16 KiB range(s), the same rules apply.

Decoding rules (documented in the README):
* EXIF orientation is applied, so pixels are upright as a viewer shows them.
* Gray -> the value copied to R, G and B. 16-bit -> 8-bit by rounding v / 257.
* Alpha (RGBA, LA, palette transparency) -> composited over white.
* CMYK -> RGB by Pillow's conversion (no ICC colour management).
* Images above ``max_pixels`` are refused from their header, before any pixel is decoded.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import posixpath
import stat
import tarfile
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from . import storage
from .errors import PairgenError

IMAGE_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}
DEFAULT_MAX_PIXELS = 100_000_000

# Photos inside the scikit-image wheel (offline). Gray ones become gray RGB by the rules above.
EMBEDDED_PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "retina",
    "rocket", "motorcycle_left", "motorcycle_right",
)

# Pillow's own bomb check would raise on large images mid-plan; ours runs first with a clear reason.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Skip:
    """An input that was not used, reported in the dataset card."""

    path: str
    reason: str


@dataclass(frozen=True)
class SourceRef:
    """A picklable, JSON-able reference to one input image.

    kind: "file" (path), "tar" (path of the archive + member name + data offset/size) or
    "embedded" (a scikit-image photo name). identity: stable text naming the input.
    size: the file's (or member's) size in bytes; 0 for embedded photos.
    """

    identity: str
    kind: str
    path: str
    member: str = ""
    offset: int = 0
    size: int = 0
    height: int = 0
    width: int = 0

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, values: dict) -> "SourceRef":
        return cls(**values)


class DecodeError(Exception):
    """An input that cannot be turned into an RGB image; the message is the skip reason."""


# ----------------------------------------------------------------------------- listing


def list_sources(srcs: list[str], min_side: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS, exclude: tuple = ()):
    """Expand ``--src`` values into (usable SourceRefs sorted by identity, skipped inputs).

    A missing path or a source that yields no file at all raises PairgenError; individual bad
    files are skipped with a reason. ``min_side``: images whose shorter side is below it are
    skipped (too small for the crop). ``exclude``: folders never searched (the build's --out).
    """
    candidates: list[tuple[str, str, str]] = []  # (identity, path, member)
    refs: list[SourceRef] = []
    skipped: list[Skip] = []
    remote_sizes: dict[str, int | None] = {}  # URL -> bytes, from the listings (None: not listed)
    if not srcs:
        for name in EMBEDDED_PHOTOS:
            try:
                h, w = load_embedded(name).shape[:2]
            except Exception as exc:  # a photo this scikit-image build does not carry
                skipped.append(Skip(f"embedded:{name}", f"not available offline: {exc}"))
                continue
            refs.append(SourceRef(f"embedded:{name}", "embedded", name, height=h, width=w))
    for src in srcs:
        found = _expand_remote(src, skipped, exclude, remote_sizes) if storage.is_remote(src) else _expand(src, skipped, exclude)
        if not found:
            raise PairgenError(f"--src {src}: no files found there")
        candidates.extend(found)

    seen: set = set()  # identities, and real files: a file reached twice (a glob and its folder, two links) is used once
    for identity, path, member in sorted(set(candidates)):
        remote = storage.is_remote(path)
        real = (path if remote else os.path.realpath(path), member)
        if identity in seen or real in seen:
            continue
        seen.update((identity, real))
        if member:
            refs.append(SourceRef(identity, "tar", path, member=member[0], offset=member[1], size=member[2]))
            continue
        size, reason = _remote_problem(path, remote_sizes) if remote else (0, _file_problem(path))
        if reason:
            skipped.append(Skip(path, reason))
            continue
        refs.append(SourceRef(identity, "file", path, size=size if remote else os.path.getsize(path)))

    refs = sorted(refs, key=lambda r: r.identity)
    # Headers are read by a few threads: on network storage the latency, not the CPU, dominates
    # (an object store's ~20-50 ms per GET: more threads there).
    remote = any(storage.is_remote(ref.path) for ref in refs if ref.kind != "embedded")
    with ThreadPoolExecutor(max_workers=32 if remote else 8) as pool:
        sizes = list(pool.map(lambda ref: _probe_or_reason(ref, max_pixels), refs))
    usable = []
    for ref, size in zip(refs, sizes):
        if isinstance(size, str):
            skipped.append(Skip(display_path(ref), size))
            continue
        h, w = size
        if min(h, w) < min_side:
            skipped.append(Skip(display_path(ref), f"too small: {w}x{h} px, the crop needs {min_side}x{min_side}"))
            continue
        usable.append(SourceRef(**{**ref.to_json(), "height": h, "width": w}))
    return usable, skipped


def _probe_or_reason(ref: SourceRef, max_pixels: int):
    """(height, width), or the reason the input is skipped."""
    if ref.kind == "embedded":
        return ref.height, ref.width
    try:
        return probe_size(ref, max_pixels)
    except DecodeError as exc:
        return str(exc)


def display_path(ref: SourceRef) -> str:
    if ref.kind == "tar":
        return f"{ref.path}:{ref.member}"
    if ref.kind == "embedded":
        return f"embedded:{ref.path}"
    return ref.path


def _expand(src: str, skipped: list[Skip], exclude: tuple = ()) -> list[tuple[str, str, object]]:
    """Candidates (identity, path, tar member) of one --src value. A glob's matches follow the
    same rules as each match given alone (a folder is searched, a tar is opened)."""
    if os.path.isdir(src):
        return _walk(src, skipped, exclude)
    if any(ch in src for ch in "*?[") and not os.path.lexists(src):
        out = []
        for match in sorted(glob.glob(src, recursive=True)):
            out.extend(_expand(match, skipped, exclude))
        return out
    if not os.path.lexists(src):
        raise PairgenError(f"--src {src}: no such file or directory")
    if os.path.isfile(src) and tarfile.is_tarfile(src):
        return _tar_members(src, skipped)
    if os.path.splitext(src)[1].lower() in LIST_EXTENSIONS:
        folder = os.path.dirname(src)
        return [(path, path, None) for path in (os.path.normpath(os.path.join(folder, entry)) for entry in read_list_file(src))]
    return [(os.path.normpath(src), src, None)]


def _expand_remote(src: str, skipped: list[Skip], exclude: tuple, sizes: dict) -> list[tuple[str, str, object]]:
    """``_expand`` for a remote URL: a prefix (listed recursively, identities relative to its
    parent, as for a local folder), a glob, a .tar object, a list file, or one object."""
    fs, path = storage.filesystem(src)
    if any(ch in path for ch in "*?["):
        out = []
        for match in sorted(fs.glob(path)):
            out.extend(_expand_remote(storage.url(fs, match), skipped, exclude, sizes))
        return out
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise PairgenError(f"--src {src}: no such object or prefix") from None
    except OSError as exc:
        raise PairgenError(f"--src {src}: cannot list it ({exc})") from None
    if info.get("type") == "directory":
        root = path.rstrip("/")
        base = posixpath.dirname(root)
        excluded = [fs._strip_protocol(e).rstrip("/") + "/" for e in exclude if storage.is_remote(e)]
        out, left_out = [], set()
        for name, entry in sorted(fs.find(root, detail=True).items()):
            inside = next((e for e in excluded if name.startswith(e)), None)
            if inside:
                left_out.add(inside)
                continue
            address = storage.url(fs, name)
            sizes[address] = int(entry.get("size") or 0)
            out.append((posixpath.relpath(name, base), address, None))
        skipped.extend(Skip(storage.url(fs, e), "the build's own --out folder, inside --src: not used as input") for e in sorted(left_out))
        return out
    address = storage.url(fs, path)
    sizes[address] = int(info.get("size") or 0)
    if path.lower().endswith(".tar"):
        return _tar_members(address, skipped)
    if posixpath.splitext(path)[1].lower() in LIST_EXTENSIONS:
        folder = address.rsplit("/", 1)[0]
        entries = read_list_file(address)
        return [(entry, entry, None) for entry in (e if "://" in e else storage.join(folder, e) for e in entries)]
    return [(address, address, None)]


def _remote_problem(address: str, sizes: dict) -> tuple[int, str]:
    """(size, the reason to skip a remote object or ''): missing, empty."""
    size = sizes.get(address)
    if size is None:  # named by a list file: not seen in a listing
        fs, path = storage.filesystem(address)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return 0, "missing file"
        except OSError as exc:
            return 0, f"unreadable: {exc}"
        if info.get("type") != "file":
            return 0, "not a regular file"
        size = int(info.get("size") or 0)
    return size, ("empty file" if size == 0 else "")


def _walk(src: str, skipped: list[Skip], exclude: tuple) -> list[tuple[str, str, object]]:
    """Every file under a folder, sorted. Symbolic links to folders are followed, each real
    folder listed once (a link back up, a loop, is reported, not followed); unreadable folders
    and the build's own output folder are reported in ``skipped``."""
    root = os.path.normpath(src)
    base = os.path.dirname(os.path.abspath(root))
    excluded = {os.path.realpath(e) for e in exclude}
    seen = set()
    out = []

    def unreadable(error: OSError):
        skipped.append(Skip(error.filename, f"unreadable folder: {error.strerror}"))

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=unreadable):
        real = os.path.realpath(folder)
        if real in excluded:
            skipped.append(Skip(folder, "the build's own --out folder, inside --src: not used as input"))
            dirs[:] = []
            continue
        if real in seen:
            skipped.append(Skip(folder, f"folder already listed (a symbolic link to {real}): not listed twice"))
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            out.append((os.path.relpath(os.path.abspath(path), base), path, None))
    return out


def read_list_file(path: str) -> list[str]:
    """The entries of a list file: one path per line, UTF-8, ``#`` comments and blank lines skipped."""
    if storage.is_remote(path):
        raw_lines = storage.read_bytes(path).splitlines()
    else:
        with open(path, "rb") as handle:
            raw_lines = handle.read().splitlines()
    entries = []
    for number, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise PairgenError(f"--src {path} line {number}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                               "save the list as UTF-8") from None
        if line and not line.startswith("#"):
            entries.append(line)
    return entries


def _tar_members(path: str, skipped: list[Skip]):
    out = []
    label = os.path.basename(path)
    try:
        with (tarfile.open(fileobj=storage.open_input(path, 1 << 20)) if storage.is_remote(path) else tarfile.open(path)) as archive:
            for info in archive:
                if info.isfile():
                    out.append((f"{label}:{info.name}", path, (info.name, info.offset_data, info.size)))
    except (tarfile.TarError, OSError) as exc:  # keep the members read before the damage
        skipped.append(Skip(path, f"tar archive damaged after {len(out)} members: {exc}"))
    return out


def _file_problem(path: str) -> str:
    if os.path.islink(path) and not os.path.exists(path):
        return "dangling symbolic link"
    if not os.path.exists(path):
        return "missing file"
    if not stat.S_ISREG(os.stat(path).st_mode):
        return "not a regular file"  # a FIFO or device would block or never end
    if not os.access(path, os.R_OK):
        return "unreadable: permission denied"
    if os.path.getsize(path) == 0:
        return "empty file"
    return ""


# ----------------------------------------------------------------------------- decoding


class _Prefetch:
    """Remote inputs fetched a few ahead on threads while the current one is decoded: an object
    store's latency per GET, not its bandwidth, would otherwise set a worker's pace."""

    def __init__(self, refs: list[SourceRef], ahead: int):
        self.pool = ThreadPoolExecutor(max_workers=ahead)
        self.lock = threading.Lock()
        self.futures: dict = {}
        self.queue = deque(dict.fromkeys(_key(r) for r in refs))  # in order, each object once
        for _ in range(ahead):
            self._next()

    def _next(self) -> None:
        if self.queue:
            key = self.queue.popleft()
            self.futures[key] = self.pool.submit(_fetch_remote, *key)

    def take(self, ref: SourceRef):
        """The prefetched bytes of ``ref`` (an OSError re-raised as it would be unprefetched), or None."""
        with self.lock:
            future = self.futures.pop(_key(ref), None)
            if future is not None:
                self._next()
        return None if future is None else future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_prefetch: _Prefetch | None = None


def _key(ref: SourceRef) -> tuple:
    return (ref.path, ref.offset, ref.size) if ref.kind == "tar" else (ref.path, None, None)


def _fetch_remote(path: str, offset, size) -> bytes:
    return storage.read_bytes(path) if offset is None else storage.read_bytes(path, offset, offset + size)


@contextlib.contextmanager
def prefetching(items, ahead: int = 3):
    """While in this block, ``read_bytes`` serves the remote inputs of ``items`` (work items
    whose payload holds a ``source`` SourceRef, as photo and annotated tasks' do) from reads
    started ``ahead`` inputs in advance. Local inputs are read as always."""
    global _prefetch
    refs = [SourceRef.from_json(i.payload["source"]) for i in items if isinstance(i.payload.get("source"), dict)]
    refs = [r for r in refs if r.kind != "embedded" and storage.is_remote(r.path)]
    if not refs or _prefetch is not None:
        yield
        return
    _prefetch = _Prefetch(refs, ahead)
    try:
        yield
    finally:
        _prefetch.close()
        _prefetch = None


def read_bytes(ref: SourceRef) -> bytes:
    if storage.is_remote(ref.path):
        try:
            if _prefetch is not None:
                data = _prefetch.take(ref)
                if data is not None:
                    return data
            if ref.kind == "tar":
                return storage.read_bytes(ref.path, ref.offset, ref.offset + ref.size)
            return storage.read_bytes(ref.path)
        except OSError as exc:
            raise DecodeError(f"unreadable: {exc.strerror or exc}") from exc
    try:
        with open(ref.path, "rb") as handle:
            if ref.kind == "tar":
                handle.seek(ref.offset)
                return handle.read(ref.size)
            return handle.read()
    except OSError as exc:
        raise DecodeError(f"unreadable: {exc.strerror or exc}") from exc


def probe_size(ref: SourceRef, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only."""
    data = read_bytes(ref) if ref.kind == "tar" else None
    if data is not None and not data:
        raise DecodeError("empty file")
    remote = data is None and storage.is_remote(ref.path)
    try:
        # 16 KiB ranges, fetched as Pillow reads: one GET for most headers, more past a large EXIF block
        handle = storage.open_input(ref.path, 16 * 1024, size=ref.size) if remote else None
    except OSError as exc:
        raise DecodeError(f"unreadable: {exc.strerror or exc}") from exc
    try:
        with Image.open(io.BytesIO(data) if data is not None else handle or ref.path) as image:
            if image.format not in IMAGE_FORMATS:
                raise DecodeError(f"unsupported image format {image.format}")
            w, h = image.size
            if w * h > max_pixels:
                raise DecodeError(f"decompression bomb refused: {w}x{h} = {w * h} pixels > max_pixels {max_pixels}")
            # Pillow's PNG getexif() decodes the pixels to find a late eXIf chunk: header only here.
            has_exif = image.format != "PNG" or "exif" in image.info
            orientation = image.getexif().get(0x0112, 1) if has_exif else 1
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(str(exc)) from exc
    except Exception as exc:
        raise DecodeError("not an image (unrecognised format)") from exc
    finally:
        if handle is not None:
            handle.close()
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def load_rgb(ref: SourceRef, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one input to uint8 (H, W, 3) RGB by the module's rules, or raise DecodeError."""
    if ref.kind == "embedded":
        return to_rgb8(load_embedded(ref.path))
    return decode_image_bytes(read_bytes(ref), max_pixels)


def decode_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    if not data:
        raise DecodeError("empty file")
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise DecodeError("not an image (unrecognised format)") from exc
    if image.format not in IMAGE_FORMATS:
        raise DecodeError(f"unsupported image format {image.format}")
    w, h = image.size
    if w * h > max_pixels:
        raise DecodeError(f"decompression bomb refused: {w}x{h} = {w * h} pixels > max_pixels {max_pixels}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L"):
                array = _decode_jpeg(data, image.getexif().get(0x0112, 1))
                if array is not None:
                    return array
            if image.format == "PNG" and _png_bit_depth(data) == 16 and image.mode in ("RGB", "RGBA"):
                array = _decode_16bit_color_png(data)  # Pillow would truncate 48/64-bit PNGs
            else:
                image.load()
                image = ImageOps.exif_transpose(image)
                array = _pil_to_array(image)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"truncated or corrupt image data: {exc}") from exc
    return to_rgb8(array)


# EXIF orientation -> the view that shows the stored pixels upright (as Pillow's exif_transpose).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: a.transpose(1, 0, 2)[:, ::-1],
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: a.transpose(1, 0, 2)[::-1],
}


def _decode_jpeg(data: bytes, orientation: int):
    """A colour or gray JPEG decoded straight into one (H, W, 3) array (the same libjpeg-turbo
    settings as Pillow, so the same pixels: tested), without Pillow's 4-byte-per-pixel buffer and
    the copy out of it; a 100-megapixel photo costs its decoded size plus the file. None when
    libjpeg reports damage: Pillow's decoder then decides (it refuses truncated files and keeps
    complete ones with stray bytes, as before)."""
    import simplejpeg

    try:
        array = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False, strict=True)
    except ValueError:
        return None
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(array)) if turn else array


def _png_bit_depth(data: bytes) -> int:
    return data[24] if len(data) > 24 and data[12:16] == b"IHDR" else 8


def _decode_16bit_color_png(data: bytes) -> np.ndarray:
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DecodeError("truncated or corrupt PNG data")
    channels = [2, 1, 0, 3][: array.shape[2]]  # BGR(A) -> RGB(A)
    return array[:, :, channels]


def _pil_to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "CMYK" or mode == "YCbCr" or mode == "1":
        image = image.convert("RGB" if mode != "1" else "L")
    elif mode == "LA" or mode == "PA" or mode == "La":
        image = image.convert("LA")
    elif mode.startswith("I;16") or mode == "I":
        return np.asarray(image).astype(np.int64).clip(0, 65535).astype(np.uint16)
    elif mode == "F":
        raise DecodeError("unsupported pixel mode F (32-bit float)")
    elif mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    return np.asarray(image)


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Gray / gray+alpha / RGB / RGBA, 8 or 16 bit, or bool -> uint8 (H, W, 3) RGB."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        array = ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DecodeError(f"unsupported sample type {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels in (2, 4):  # composite over white
        alpha = array[:, :, -1:].astype(np.float32) / 255.0
        color = array[:, :, :-1].astype(np.float32)
        array = np.clip(color * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
        channels -= 1
    if channels == 1:
        array = np.repeat(array, 3, axis=2)
    elif channels != 3:
        raise DecodeError(f"unsupported channel count {channels}")
    return np.ascontiguousarray(array)


def load_embedded(name: str) -> np.ndarray:
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(data, name)()
