"""The PNG writer (pairgen/encoding.py) writes standard PNGs: independent readers (Pillow,
OpenCV's libpng, the stdlib zlib on the raw chunks) decode them to exactly the pixels written,
and the bytes are a function of the pixels alone."""
from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from pairgen.encoding import decode, encode, encode_png


def images():
    rng = np.random.default_rng(0)
    photo = data.astronaut()
    yield "photo", photo
    yield "noise rgb", rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    yield "1x1", np.array([[[255, 0, 7]]], np.uint8)
    yield "one row", rng.integers(0, 256, (1, 9, 3), dtype=np.uint8)
    yield "gray", data.camera()
    yield "gray noise", rng.integers(0, 256, (20, 3), dtype=np.uint8)
    # 16-bit ids: the big-endian byte order and the mod-256 wrap of the filter on both bytes
    yield "uint16", rng.integers(0, 65536, (31, 17), dtype=np.uint16)
    yield "uint16 ramp", np.tile(np.arange(0, 65536, 257, dtype=np.uint16), (3, 1))


@pytest.mark.parametrize("name,image", list(images()), ids=[n for n, _ in images()])
def test_png_round_trips_through_independent_readers(name, image):
    png = encode_png(image)
    Image.open(io.BytesIO(png)).verify()  # signature, chunk CRCs
    with Image.open(io.BytesIO(png)) as pil:
        assert pil.size == (image.shape[1], image.shape[0])
        assert np.array_equal(np.array(pil).astype(image.dtype), image), "Pillow decodes other pixels"
    flag = cv2.IMREAD_UNCHANGED
    by_cv2 = cv2.imdecode(np.frombuffer(png, np.uint8), flag)
    if image.ndim == 3:
        by_cv2 = by_cv2[:, :, ::-1]
    assert by_cv2.dtype == image.dtype and np.array_equal(by_cv2, image), "libpng decodes other pixels"
    assert np.array_equal(decode("x.png", encode("x.png", image)), image)


def test_png_bytes_are_reproducible_and_standard_chunks():
    image = data.coffee()
    first = encode_png(image)
    assert encode_png(image.copy()) == first
    assert encode_png(np.asfortranarray(image)) == first  # the memory layout does not matter
    # IHDR says 8-bit RGB, non-interlaced; the IDAT is one zlib stream the stdlib inflates
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", first[8:16])
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", first[16:16 + length])
    assert (kind, width, height, depth, color, interlace) == (b"IHDR", image.shape[1], image.shape[0], 8, 2, 0)
    idat_at = 8 + 12 + length
    idat_length, idat_kind = struct.unpack(">I4s", first[idat_at:idat_at + 8])
    assert idat_kind == b"IDAT"
    raw = zlib.decompress(first[idat_at + 8:idat_at + 8 + idat_length])
    assert len(raw) == image.shape[0] * (1 + image.shape[1] * 3)


def test_png_rejects_what_it_cannot_write():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape|got"):
        encode_png(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="1x1"):
        encode_png(np.zeros((0, 4), np.uint8))


def test_png_bytes_are_the_same_on_every_machine():
    """The bytes depend on the pixels and the pinned libdeflate alone, not on this CPU's vector
    extensions or the process's state: fixed digests, which any machine must reproduce."""
    import hashlib

    assert hashlib.sha256(encode_png(data.coffee())).hexdigest() == COFFEE_PNG_SHA256
    assert hashlib.sha256(encode_png(data.camera())).hexdigest() == CAMERA_PNG_SHA256


COFFEE_PNG_SHA256 = "ac6272c6eecf451756439369f9e7040058afc9961fddd4e48e9cb94f79eff949"
CAMERA_PNG_SHA256 = "8148585c8473ce231c5db5524a5024af19264a6c84544bb59f36a462d9a96eeb"
