"""Field values <-> bytes, chosen by the field name's extension (like webdataset's writer).

*.png: uint8 (H, W, 3) RGB, uint8 (H, W) gray, or uint16 (H, W) (ids); a standard
       non-interlaced PNG (filter "Up" on every row, one zlib stream from ISA-L at level 1; see
       encode_png), which every PNG reader decodes to the same pixels.
*.npy: any numpy array (numpy's own format).
json:  a dict, serialised with sorted keys so the bytes are reproducible.
"""
from __future__ import annotations

import io
import json
import struct
import zlib

import cv2
import numpy as np
import deflate

PNG_ZLIB_LEVEL = 1  # libdeflate level (0-12); pixels are the same at any level, only size and speed differ
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_FILTER_UP = 2


def encode(name: str, value) -> bytes:
    ext = name.rsplit(".", 1)[-1]
    if ext == "png":
        return encode_png(value)
    if ext == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(value), allow_pickle=False)
        return buffer.getvalue()
    if ext == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
    raise ValueError(f"field {name!r}: no encoder for extension {ext!r} (png, npy, json)")


def decode(name: str, data: bytes):
    ext = name.rsplit(".", 1)[-1]
    if ext == "png":
        return decode_image(data)
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if ext == "json":
        return json.loads(data)
    raise ValueError(f"field {name!r}: no decoder for extension {ext!r}")


def encode_png(image: np.ndarray) -> bytes:
    """A PNG of ``image``: 8-bit RGB (color type 2), 8-bit gray or 16-bit gray (type 0).

    Written here rather than by libpng for speed (a 512x512 RGB image: ~5 ms against 8.6 ms for
    cv2.imencode's defaults and 15 ms at IMWRITE_PNG_COMPRESSION=1, and smaller than both;
    figures in the README): every row uses the "Up" filter (byte minus the byte above, mod 256,
    one numpy subtraction) and the filtered rows are one zlib stream from libdeflate. libdeflate's
    compressor is portable C that initializes all its state per call, so the bytes are a pure
    function of the pixels and the libdeflate version, on any CPU: every worker, executor and
    cluster node writes the same shards. (ISA-L, 2.5x faster, was dropped for that: it picks its
    kernels by CPU features, and in object-store builds a few PNGs per thousand came out with
    other bytes for the same pixels, a cause we did not find.)
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG fields must be uint8 or uint16, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        color_type = 2
    elif image.ndim == 2:
        color_type = 0
    else:
        raise ValueError(f"PNG fields must be uint8 (H, W) or (H, W, 3), or uint16 (H, W); got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"PNG fields must be at least 1x1 px, got {width}x{height}")
    bit_depth = 8 * image.dtype.itemsize
    # PNG stores samples big-endian; rows as bytes, each prefixed by its filter type
    rows = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">")).view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _PNG_FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wraps mod 256, as the filter is defined
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"".join((
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", deflate.zlib_compress(filtered, PNG_ZLIB_LEVEL)),
        _png_chunk(b"IEND", b""),
    ))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def decode_image(data: bytes) -> np.ndarray:
    """PNG (or any format OpenCV reads) -> array as stored: RGB / RGBA order, 8 or 16 bit."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"could not decode {len(data)} bytes as an image")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image
