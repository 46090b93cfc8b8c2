"""Inputs that surprise: the output folder inside --src, unreadable and symlinked folders, globs
matching folders and tars, list files that are not UTF-8, and the JPEG decoder's pixels."""
import io
import json
import os
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from conftest import PAIRGEN, REPO, run_cli
from pairgen.sources import decode_image_bytes, list_sources

BUILD = ["build", "superres-bicubic", "--crop", "64", "--quiet"]


def card(out):
    return json.load(open(os.path.join(out, "dataset.json")))


def reasons(card_):
    return {s["path"]: s["reason"] for s in card_["skipped"]}


@pytest.fixture
def src(photos, tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(photos, folder)
    return folder


def test_out_inside_src_is_left_out_of_the_inputs_and_said_so(src):
    out = src / "shards"
    first = run_cli(*BUILD, "--src", src, "--out", out)
    assert first.returncode == 0, first.stderr
    again = run_cli(*BUILD, "--src", src, "--out", out)  # its shards and previews are not new inputs
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    skipped = reasons(card(out))
    assert skipped[str(out)] == "the build's own --out folder, inside --src: not used as input"
    assert card(out)["counts"]["samples"] == 5


def test_an_unreadable_subfolder_is_reported(src, tmp_path):
    locked = src / "locked"
    locked.mkdir()
    shutil.copy(src / "astronaut.jpg", locked / "a.jpg")
    locked.chmod(0)
    out = tmp_path / "out"
    try:
        # `unshare -U`: the same user without its privileges, so permissions apply even to root
        result = subprocess.run(["unshare", "-U", *PAIRGEN, *BUILD, "--src", str(src), "--out", str(out)],
                                capture_output=True, text=True, cwd=REPO, timeout=300)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert reasons(card(out))[str(locked)].startswith("unreadable folder: Permission denied")


def test_symlinked_folders_are_followed_once_and_loops_reported(src, tmp_path):
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    shutil.copy(src / "astronaut.jpg", extra / "linked.jpg")
    os.symlink(extra, src / "link")
    os.symlink(src, src / "nested" / "loop")  # back up to the root
    refs, skipped = list_sources([str(src)])
    names = [r.identity for r in refs]
    assert "src/link/linked.jpg" in names
    assert len(names) == len(set(names)) == 6
    assert any(s.path.endswith("loop") and "already listed" in s.reason for s in skipped)


def test_a_glob_that_matches_a_folder_and_a_tar_reads_both(src, tmp_path):
    pack = tmp_path / "glob" / "pack.tar"
    pack.parent.mkdir()
    with tarfile.open(pack, "w") as archive:
        archive.add(src / "coffee.jpg", arcname="coffee.jpg")
    shutil.copytree(src / "nested", tmp_path / "glob" / "folder")
    together, skipped = list_sources([str(tmp_path / "glob" / "*")])
    alone = list_sources([str(pack)])[0] + list_sources([str(tmp_path / "glob" / "folder")])[0]
    assert sorted(r.identity for r in together) == sorted(r.identity for r in alone) and len(together) == 2
    assert not skipped


def test_a_list_file_that_is_not_utf8_is_named_with_its_line(src, tmp_path):
    listing = tmp_path / "photos.txt"
    listing.write_bytes(f"{src}/astronaut.jpg\n# comment\n".encode() + "caf\u00e9.jpg\n".encode("latin-1"))
    result = run_cli(*BUILD, "--src", listing, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert f"--src {listing} line 3: not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


def test_file_samples_record_their_source_size(src, tmp_path):
    refs, _ = list_sources([str(src)])
    for ref in refs:
        assert ref.size == os.path.getsize(ref.path) > 0


def _pillow_decode(data_):
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data_)))
    return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_pixels_are_pillows_bit_for_bit(subsampling, progressive):
    for image in (data.astronaut(), data.coffee(), data.camera()):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=85, subsampling=subsampling, progressive=progressive)
        ours = decode_image_bytes(buffer.getvalue())
        assert ours.shape[2] == 3 and np.array_equal(ours, _pillow_decode(buffer.getvalue()))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_matches_pillow(orientation):
    image = Image.fromarray(data.astronaut()[:120, :80])
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=90)
    assert np.array_equal(decode_image_bytes(buffer.getvalue()), _pillow_decode(buffer.getvalue()))


def test_a_truncated_jpeg_is_refused_not_filled_in():
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    from pairgen.sources import DecodeError

    with pytest.raises(DecodeError, match="truncated or corrupt"):
        decode_image_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_a_complete_jpeg_with_damaged_bytes_decodes_as_pillow_decodes_it():
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=90)
    damaged = bytearray(buffer.getvalue())
    for offset in (5000, 9000, 20000):
        damaged[offset] ^= 0x5A
    ours = decode_image_bytes(bytes(damaged))
    assert np.array_equal(ours, _pillow_decode(bytes(damaged)))
