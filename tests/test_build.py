"""End to end: photos in, shards out, read back with the webdataset library."""
import json
import os
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
import webdataset as wds

from pairgen.api import build, replay
from pairgen.errors import PairgenError

from conftest import PAIRGEN, run_cli

OPTIONS = dict(crop=64, scale=4, crops_per_image=3, shard_size=4, progress=False)


def shard_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder)) if name.endswith(".tar")}


def read_webdataset(folder):
    card = json.load(open(os.path.join(folder, "dataset.json")))
    urls = [os.path.join(folder, row["file"]) for row in card["shards"]]
    dataset = wds.WebDataset(urls, shardshuffle=False).decode("rgb8")
    return card, list(dataset)


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "shards"
    build("superres", src=[str(photos)], out=str(out), seed=7, workers=1, **OPTIONS)
    return out


def test_shards_read_back_with_webdataset(reference, photos):
    card, samples = read_webdataset(reference)
    assert card["counts"]["samples"] == len(samples) == 15  # 5 photos x 3 crops
    assert [row["file"] for row in card["shards"]] == [f"superres-{i:06d}.tar" for i in range(4)]
    keys = [s["__key__"] for s in samples]
    assert keys == sorted(keys) and all(k.isdigit() for k in keys)
    for sample in samples:
        assert sample["hr.png"].shape == (64, 64, 3) and sample["lr.png"].shape == (16, 16, 3)
        record = sample["json"]
        x0, y0, x1, y1 = record["crop_box"]
        assert (x1 - x0, y1 - y0) == (64, 64) and record["scale"] == 4 and record["seed"] == 7
        assert record["degrade_ops"][-1]["op"] in ("jpeg", "sinc", "resize_to_target")
        assert os.path.exists(record["source"]["path"])
    fields = card["fields"]
    assert fields["lr.png"]["role"] == "input" and fields["hr.png"]["role"] == "target"
    assert fields["lr.png"]["shape"] == [16, 16, 3] and fields["hr.png"]["dtype"] == "uint8"
    assert card["recipe"]["degrade"][0]["op"] == "blur"  # fully resolved, defaults included
    assert "kernel_probs" in card["recipe"]["degrade"][0]


def test_hr_is_the_exact_crop_of_the_source(reference):
    _, samples = read_webdataset(reference)
    for sample in samples[:4]:
        record = sample["json"]
        source = cv2.imread(record["source"]["path"])[:, :, ::-1]
        x0, y0, x1, y1 = record["crop_box"]
        if record["source"]["path"].endswith(".png"):
            assert np.array_equal(sample["hr.png"], source[y0:y1, x0:x1])


def test_workers_and_executors_give_identical_bytes(reference, photos, tmp_path):
    build("superres", src=[str(photos)], out=str(tmp_path / "w2"), seed=7, workers=2, **OPTIONS)
    assert shard_bytes(tmp_path / "w2") == shard_bytes(reference)
    card_a = json.load(open(reference / "dataset.json"))
    card_b = json.load(open(tmp_path / "w2" / "dataset.json"))
    assert card_a == card_b
    build("superres", src=[str(photos)], out=str(tmp_path / "seed8"), seed=8, workers=1, **OPTIONS)
    assert shard_bytes(tmp_path / "seed8") != shard_bytes(reference)


def test_ray_executor_gives_identical_bytes(reference, photos, tmp_path):
    import ray

    try:
        build("superres", src=[str(photos)], out=str(tmp_path / "ray"), seed=7, workers=2, executor="ray", **OPTIONS)
    finally:
        ray.shutdown()
    assert shard_bytes(tmp_path / "ray") == shard_bytes(reference)


def test_replay_is_bit_exact_for_every_sample(reference):
    _, samples = read_webdataset(reference)
    for sample in samples:
        again = replay(sample["json"])
        assert np.array_equal(again["hr.png"], sample["hr.png"])
        assert np.array_equal(again["lr.png"], sample["lr.png"])
    result = run_cli("replay", reference, samples[5]["__key__"])
    assert result.returncode == 0 and result.stdout.count("bit-exact") == 2, result.stdout + result.stderr


def test_kill_and_resume_is_byte_identical(photos, tmp_path):
    # One sample per shard: many shards, so the kill surely lands mid-build however fast they are.
    build("superres", src=[str(photos)], out=str(tmp_path / "whole"), seed=7, workers=1, **{**OPTIONS, "shard_size": 1})
    out = tmp_path / "resumed"
    args = [*PAIRGEN, "build", "superres", "--src", photos, "--out", out, "--seed", "7", "--workers", "1", "--crop", "64",
            "--crops-per-image", "3", "--shard-size", "1", "--quiet"]
    proc = subprocess.Popen([str(a) for a in args], stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (out / "superres-000000.stats.json").exists() and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = sorted(p.name for p in out.glob("*.stats.json"))
    assert finished_before and len(finished_before) < 15, "the kill should land mid-build"
    (out / "superres-000014.tar.tmp").write_bytes(b"half a shard")  # a crash leftover
    result = run_cli(*args[3:])
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    assert shard_bytes(out) == shard_bytes(tmp_path / "whole")
    assert not list(out.glob("*.tmp"))


def test_hdf5_holds_the_same_samples(reference, photos, tmp_path):
    import h5py

    build("superres", src=[str(photos)], out=str(tmp_path / "h5"), seed=7, workers=1, format="hdf5", **OPTIONS)
    card = json.load(open(tmp_path / "h5" / "dataset.json"))
    assert card["format"] == "hdf5" and card["counts"]["samples"] == 15
    _, samples = read_webdataset(reference)
    by_key = {s["__key__"]: s for s in samples}
    for row in card["shards"]:
        with h5py.File(tmp_path / "h5" / row["file"], "r") as handle:
            for key, group in handle.items():
                assert np.array_equal(group["lr.png"][()], by_key[key]["lr.png"])
                assert np.array_equal(group["hr.png"][()], by_key[key]["hr.png"])
                assert json.loads(group.attrs["json"]) == by_key[key]["json"]
    build("superres", src=[str(photos)], out=str(tmp_path / "h5w2"), seed=7, workers=2, format="hdf5", **OPTIONS)
    for row in card["shards"]:  # HDF5 bytes are reproducible too (no timestamps in the file)
        assert (tmp_path / "h5" / row["file"]).read_bytes() == (tmp_path / "h5w2" / row["file"]).read_bytes()


def test_limit_crop0_and_scale(photos, tmp_path):
    result = build("superres-bicubic", src=[str(photos)], out=str(tmp_path / "whole"), crop=0, scale=3, limit=2,
                   workers=1, progress=False)
    assert result.card["counts"]["samples"] == 2
    _, samples = read_webdataset(tmp_path / "whole")
    for sample in samples:
        h, w = sample["hr.png"].shape[:2]
        assert h % 3 == 0 and w % 3 == 0 and sample["lr.png"].shape[:2] == (h // 3, w // 3)
        assert sample["json"]["crop_box"][:2] == [0, 0]


def test_bad_inputs_are_reported_and_good_ones_kept(tmp_path, photos):
    from test_sources import make_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    expected = make_corpus(corpus)
    result = run_cli("build", "superres", "--src", corpus, "--out", tmp_path / "out", "--crop", "64", "--workers", "2")
    assert result.returncode == 0, result.stderr
    bad = sum(1 for reason in expected.values() if reason)
    assert f"; {bad} inputs skipped: " in result.stderr and "truncated or corrupt image data (1)" in result.stderr, result.stderr
    card = json.load(open(tmp_path / "out" / "dataset.json"))
    assert card["counts"]["skipped"] == len(card["skipped"]) == bad
    skipped = {os.path.basename(s["path"]): s["reason"] for s in card["skipped"]}
    for name, reason in expected.items():
        if reason:
            assert reason in skipped[name], (name, skipped.get(name))
    assert card["counts"]["samples"] == 2  # good.jpg and good_gray.png


def test_resume_refuses_other_options_and_overwrite_restarts(reference, photos, tmp_path):
    out = tmp_path / "o"
    build("superres", src=[str(photos)], out=str(out), seed=7, workers=1, limit=3, **{**OPTIONS, "crops_per_image": 1})
    with pytest.raises(PairgenError, match="other options"):
        build("superres", src=[str(photos)], out=str(out), seed=8, workers=1, limit=3, **{**OPTIONS, "crops_per_image": 1})
    build("superres", src=[str(photos)], out=str(out), seed=8, workers=1, limit=3, overwrite=True, **{**OPTIONS, "crops_per_image": 1})
    assert json.load(open(out / "dataset.json"))["seed"] == 8
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(PairgenError, match="not empty"):
        build("superres", src=[str(photos)], out=str(tmp_path / "mine"), workers=1, **OPTIONS)
    with pytest.raises(PairgenError, match="refusing"):
        build("superres", src=[str(photos)], out=str(tmp_path / "mine"), workers=1, overwrite=True, **OPTIONS)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_inspect_writes_previews(reference):
    result = run_cli("inspect", reference)
    assert result.returncode == 0, result.stderr
    assert "15 samples in 4 shards" in result.stdout and "blur1.sigma_x" in result.stdout
    from PIL import Image

    sheet = Image.open(reference / "preview" / "contact_sheet.png")
    cell, gap, header = 192, 4, 24  # 8 samples (the default) x 2 fields (lr, hr)
    assert sheet.size == (gap + 2 * (cell + gap), header + 8 * (cell + gap))
    assert "lr.png" in result.stdout and "rgb" in result.stdout and "jpeg1.quality" in result.stdout
    histograms = Image.open(reference / "preview" / "parameters.png")
    assert histograms.size[0] == 4 * 320  # four histograms per row, 3.2 in at 100 dpi each
