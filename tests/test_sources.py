"""Decoding rules and the bad-input corpus: every bad file is skipped with a reason, never a crash."""
import io
import os
import struct
import tarfile
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from pairgen.errors import PairgenError
from pairgen.sources import DecodeError, decode_image_bytes, list_sources, load_rgb

PHOTO = data.astronaut()[:96, :128]  # (96, 128, 3) uint8


def pil_bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_formats_decode_to_rgb8(fmt):
    kw = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    out = decode_image_bytes(pil_bytes(Image.fromarray(PHOTO), fmt, **kw))
    assert out.shape == PHOTO.shape and out.dtype == np.uint8
    tolerance = 12 if fmt in ("JPEG", "WEBP") else 0
    assert np.abs(out.astype(int) - PHOTO).mean() <= tolerance


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = decode_image_bytes(pil_bytes(Image.fromarray(PHOTO), "PNG", exif=exif.tobytes()))
    assert out.shape == (128, 96, 3)
    np.testing.assert_array_equal(out, np.rot90(PHOTO, k=-1))


def test_gray_alpha_16bit_palette_cmyk_rules():
    gray = PHOTO[:, :, 1]
    out = decode_image_bytes(pil_bytes(Image.fromarray(gray), "PNG"))
    assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)

    rgba = np.dstack([PHOTO, np.zeros_like(gray)])  # fully transparent -> white
    rgba[:10, :, 3] = 255  # opaque strip keeps its colour
    out = decode_image_bytes(pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[10:] == 255).all() and np.array_equal(out[:10], PHOTO[:10])

    gray16 = gray.astype(np.uint16) * 257  # 16-bit gray: v / 257 gives back the 8-bit values
    ok, buf = cv2.imencode(".png", gray16)
    assert np.array_equal(decode_image_bytes(buf.tobytes())[:, :, 0], gray)

    rgb16 = PHOTO.astype(np.uint16) * 257 + 100  # 16-bit colour PNG rounds, not truncates
    ok, buf = cv2.imencode(".png", rgb16[:, :, ::-1].copy())
    assert np.array_equal(decode_image_bytes(buf.tobytes()), PHOTO)

    palette = Image.fromarray(PHOTO).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    assert decode_image_bytes(pil_bytes(palette, "PNG")).shape == PHOTO.shape

    cmyk = Image.fromarray(PHOTO).convert("CMYK")
    out = decode_image_bytes(pil_bytes(cmyk, "JPEG", quality=95))
    assert out.shape == PHOTO.shape and np.abs(out.astype(int) - PHOTO).mean() < 15


@pytest.mark.parametrize(
    "data_bytes, reason",
    [
        (b"", "empty"),
        (b"hello, not an image", "not an image"),
        (pil_bytes(Image.fromarray(PHOTO), "JPEG")[:900], "truncated"),
        (png_header_only(100_000, 100_000), "decompression bomb"),
        (pil_bytes(Image.fromarray(PHOTO), "GIF"), "unsupported image format"),
    ],
)
def test_bad_bytes_raise_decode_error_with_reason(data_bytes, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_image_bytes(data_bytes)


def make_corpus(folder):
    """Good and bad inputs side by side; returns {file name: expected skip reason or None}."""
    good = pil_bytes(Image.fromarray(data.coffee()[:200, :200]), "JPEG", quality=90)
    files = {
        "good.jpg": (good, None),
        "good_gray.png": (pil_bytes(Image.fromarray(data.camera()[:150, :150]), "PNG"), None),
        "empty.jpg": (b"", "empty file"),
        "notes.txt.jpg": (b"just text", "not an image"),
        "truncated.jpg": (good[: len(good) // 3], "truncated or corrupt"),
        "small.png": (pil_bytes(Image.fromarray(PHOTO[:40, :40]), "PNG"), "too small"),
        "bomb.png": (png_header_only(60_000, 60_000), "decompression bomb"),
    }
    for name, (blob, _) in files.items():
        (folder / name).write_bytes(blob)
    os.symlink(folder / "does-not-exist.jpg", folder / "dangling.jpg")
    os.mkfifo(folder / "pipe.jpg")
    expected = {name: reason for name, (_, reason) in files.items()}
    expected["dangling.jpg"] = "dangling symbolic link"
    expected["pipe.jpg"] = "not a regular file"
    return expected


def test_listing_skips_bad_inputs_with_reasons(tmp_path):
    expected = make_corpus(tmp_path)
    refs, skipped = list_sources([str(tmp_path)], min_side=64)
    assert sorted(os.path.basename(r.path) for r in refs) == ["good.jpg", "good_gray.png", "truncated.jpg"]
    reasons = {os.path.basename(s.path): s.reason for s in skipped}
    for name, reason in expected.items():
        if reason and name != "truncated.jpg":  # a truncated body is only found when decoding
            assert reason in reasons[name], (name, reasons.get(name))
    truncated = next(r for r in refs if r.path.endswith("truncated.jpg"))
    with pytest.raises(DecodeError, match="truncated"):
        load_rgb(truncated)


def test_tar_glob_and_list_sources(tmp_path):
    blobs = {f"img{i}.png": pil_bytes(Image.fromarray(np.roll(PHOTO, i, axis=1)), "PNG") for i in range(3)}
    with tarfile.open(tmp_path / "photos.tar", "w") as archive:
        for name, blob in blobs.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    refs, skipped = list_sources([str(tmp_path / "photos.tar")], min_side=64)
    assert [r.identity for r in refs] == ["photos.tar:img0.png", "photos.tar:img1.png", "photos.tar:img2.png"]
    assert np.array_equal(load_rgb(refs[1]), np.roll(PHOTO, 1, axis=1))

    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    refs, _ = list_sources([str(tmp_path / "img*.png")])
    assert len(refs) == 3
    (tmp_path / "list.txt").write_text("# my photos\nimg0.png\n\nimg2.png\nmissing.png\n")
    refs, skipped = list_sources([str(tmp_path / "list.txt")])
    assert [os.path.basename(r.path) for r in refs] == ["img0.png", "img2.png"]
    assert [s.reason for s in skipped] == ["missing file"]


def test_missing_or_empty_source_is_an_error(tmp_path):
    with pytest.raises(PairgenError, match="no such file"):
        list_sources([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PairgenError, match="no files found"):
        list_sources([str(tmp_path / "empty")])


def test_embedded_photos_are_available_offline():
    refs, skipped = list_sources([], min_side=256)
    assert len(refs) >= 15 and not [s for s in skipped if "not available" in s.reason]
    assert load_rgb(refs[0]).dtype == np.uint8
