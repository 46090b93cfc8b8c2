"""Field values <-> bytes, chosen by the field name's extension (like webdataset's writer).

*.png: uint8 (H, W, 3) RGB, uint8 (H, W) gray, or uint16 (H, W) (ids); written by OpenCV's
       libpng (deterministic bytes for the same pixels).
*.npy: any numpy array (numpy's own format).
json:  a dict, serialised with sorted keys so the bytes are reproducible.
"""
from __future__ import annotations

import io
import json

import cv2
import numpy as np

PNG_COMPRESSION = 1  # libpng level: OpenCV's default, fast; pixels are identical at any level


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
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG fields must be uint8 or uint16, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    elif image.ndim != 2:
        raise ValueError(f"PNG fields must be (H, W) or (H, W, 3), got shape {image.shape}")
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


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
