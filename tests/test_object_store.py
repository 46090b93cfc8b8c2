"""Object storage for real: an S3-compatible server (moto in server mode) started by the test on
loopback, real `pairgen build` / `verify` / trainer processes reading and writing it through
s3fs, a build killed by SIGKILL and resumed from the store, a Ray head started with `ray start
--head`. Every process the tests start is stopped by them."""
import glob
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import webdataset as wds

from conftest import PAIRGEN, REPO, run_cli, write_rgb
from pairgen import storage
from test_ray_cluster import free_port, head  # noqa: F401 - the Ray head fixture, started only by the test using it

MOTO = os.path.join(os.path.dirname(PAIRGEN[0]), "moto_server")
BUCKET = "pairgen-test"
BUILD = ["build", "superres-bicubic", "--crop", "64", "--shard-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def s3(photos, tmp_path_factory):
    """An S3 endpoint on 127.0.0.1 with a bucket holding the photos under their folder's name
    (the same identities, so the same draws, as the local folder); yields an s3fs filesystem."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                fs.mkdir(BUCKET)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        fs.put(str(photos), f"{BUCKET}/{photos.name}", recursive=True)
        fs.photos = f"s3://{BUCKET}/{photos.name}"
        yield fs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def listed(fs, prefix, suffix=""):
    """Object names under a prefix, read from the store now (s3fs caches listings)."""
    fs.invalidate_cache()
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(prefix) if p.endswith(suffix)) if fs.exists(prefix) else []


def local_hashes(folder):
    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in glob.glob(os.path.join(folder, "*.tar"))}


def store_hashes(fs, prefix):
    return {name: hashlib.sha256(fs.cat_file(f"{prefix}/{name}")).hexdigest() for name in listed(fs, prefix, ".tar")}


def differing_members(fs, prefix, folder):
    """For a failure message: the members that differ between a store's shards and a folder's,
    and whether their decoded values are equal (a codec's bytes) or not (the data)."""
    import tarfile

    from pairgen.encoding import decode

    out = []
    for name in listed(fs, prefix, ".tar"):
        remote = tarfile.open(fileobj=io.BytesIO(fs.cat_file(f"{prefix}/{name}")))
        with tarfile.open(folder / name) as local:
            for member in remote.getmembers():
                x, y = remote.extractfile(member).read(), local.extractfile(local.getmember(member.name)).read()
                if x != y:
                    same = member.name.endswith(".png") and np.array_equal(decode("png", x), decode("png", y))
                    out.append(f"{name}/{member.name}: {'same pixels, other bytes' if same else 'other content'}")
    return out


def members(tar_bytes_or_path):
    """(member name, bytes) of a tar, read with webdataset."""
    out = {}
    for sample in wds.WebDataset(tar_bytes_or_path, shardshuffle=False):
        for name, value in sample.items():
            if not name.startswith("__"):
                out[f"{sample['__key__']}.{name}"] = value
    return out


def test_a_build_from_and_to_the_store_is_byte_identical_to_the_local_build(s3, photos, tmp_path):
    args = [*BUILD, "--crops-per-image", "2"]
    to_store = run_cli(*args, "--src", s3.photos, "--out", f"s3://{BUCKET}/same")
    assert to_store.returncode == 0, to_store.stderr
    assert to_store.stdout.strip() == f"s3://{BUCKET}/same/dataset.json"
    to_disk = run_cli(*args, "--src", s3.photos, "--out", tmp_path / "disk", "--workers", "1")
    assert to_disk.returncode == 0, to_disk.stderr
    hashes = store_hashes(s3, f"{BUCKET}/same")
    assert hashes == local_hashes(tmp_path / "disk") and len(hashes) == 2
    # No temporary object, no lock left; the stats objects carry each shard's sha256.
    names = listed(s3, f"{BUCKET}/same")
    assert names == sorted(["build.json", "dataset.json", *hashes, *(n.replace(".tar", ".stats.json") for n in hashes)])
    for name, sha in hashes.items():
        assert json.loads(s3.cat_file(f"{BUCKET}/same/{name.replace('.tar', '.stats.json')}"))["sha256"] == sha

    # From the local folder: the same pixels and draws; the records differ only by where the photo was.
    local = run_cli(*args, "--src", photos, "--out", tmp_path / "local", "--workers", "1")
    assert local.returncode == 0, local.stderr
    for name in hashes:
        remote_members = members(str(tmp_path / "disk" / name))
        local_members = members(str(tmp_path / "local" / name))
        assert remote_members.keys() == local_members.keys()
        for member, data in remote_members.items():
            if not member.endswith(".json"):
                assert data == local_members[member], member
                continue
            remote_record, local_record = json.loads(data), json.loads(local_members[member])
            assert remote_record["source"]["path"].startswith(s3.photos + "/")
            assert os.path.basename(remote_record["source"]["path"]) == os.path.basename(local_record["source"]["path"])
            for record in (remote_record, local_record):
                record["source"].pop("path"), record.pop("source_path")
            assert remote_record == local_record

    verified = run_cli("verify", f"s3://{BUCKET}/same")
    assert verified.returncode == 0 and "2 shards checked, 0 damaged" in verified.stdout, verified.stdout + verified.stderr
    damaged = f"{BUCKET}/same/{sorted(hashes)[0]}"
    data = bytearray(s3.cat_file(damaged))
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    s3.pipe_file(damaged, bytes(data))
    verified = run_cli("verify", f"s3://{BUCKET}/same")
    assert verified.returncode == 1 and "checksum differs" in verified.stdout, verified.stdout + verified.stderr
    repaired = run_cli("verify", f"s3://{BUCKET}/same", "--repair", "--quiet")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert store_hashes(s3, f"{BUCKET}/same") == hashes

    # A resume checks every shard it keeps against its stats (sha256), as locally: a damaged one is remade.
    s3.pipe_file(damaged, bytes(data))
    resumed = run_cli(*args, "--src", s3.photos, "--out", f"s3://{BUCKET}/same")
    assert resumed.returncode == 0 and "resuming: 1 shards already complete, 1 to make" in resumed.stderr, resumed.stderr
    assert store_hashes(s3, f"{BUCKET}/same") == hashes


def test_a_killed_build_resumes_from_the_store_and_ends_byte_identical(s3, tmp_path):
    args = [*BUILD, "--crops-per-image", "80", "--src", s3.photos, "--workers", "1"]
    out = f"s3://{BUCKET}/killed"
    proc = subprocess.Popen([*PAIRGEN, *args, "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 120
    while len(listed(s3, f"{BUCKET}/killed", ".stats.json")) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no shard finished"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup at all; the lock object stays behind
    proc.communicate()
    finished = len(listed(s3, f"{BUCKET}/killed", ".stats.json"))
    assert finished < 50 and ".pairgen.lock" in listed(s3, f"{BUCKET}/killed")

    resumed = run_cli(*args, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "taking over the lock" in resumed.stderr and "is gone" in resumed.stderr, resumed.stderr
    assert f"resuming: {finished} shards already complete" in resumed.stderr, resumed.stderr
    reference = run_cli(*args, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    assert store_hashes(s3, f"{BUCKET}/killed") == local_hashes(tmp_path / "reference"), differing_members(
        s3, f"{BUCKET}/killed", tmp_path / "reference")
    assert len(local_hashes(tmp_path / "reference")) == 50
    assert ".pairgen.lock" not in listed(s3, f"{BUCKET}/killed")
    staging = storage.staging_folder(out)  # where the killed build's worker was making its shard
    assert not os.path.exists(staging) or not os.listdir(staging)


def test_a_live_builds_lock_is_refused_and_can_be_broken_on_purpose(s3):
    out = f"s3://{BUCKET}/locked"
    holder = {"host": os.uname().nodename, "pid": os.getpid(), "command": "pairgen build (a test)", "started": "now",
              "token": "t", "refreshed": time.time()}
    s3.pipe_file(f"{BUCKET}/locked/.pairgen.lock", json.dumps(holder).encode())
    args = [*BUILD, "--limit", "2", "--src", s3.photos, "--out", out]
    refused = run_cli(*args)
    assert refused.returncode == 1 and "in use by another pairgen build" in refused.stderr, refused.stderr
    assert "PAIRGEN_BREAK_LOCK=1" in refused.stderr and "Traceback" not in refused.stderr
    broken = subprocess.run([*PAIRGEN, *args], capture_output=True, text=True, env=dict(os.environ, PAIRGEN_BREAK_LOCK="1"))
    assert broken.returncode == 0 and "taking over the lock" in broken.stderr, broken.stderr


def test_of_two_builds_taking_over_a_stale_lock_one_wins(s3):
    from pairgen.outdir import ObjectStoreLock

    out, key = f"s3://{BUCKET}/race", f"{BUCKET}/race/.pairgen.lock"
    stale = json.dumps({"host": "elsewhere", "pid": 1, "command": "pairgen build", "token": "old",
                        "refreshed": time.time() - 1000}).encode()
    s3.pipe_file(key, stale)
    loser = ObjectStoreLock(out)
    loser.holder = {"token": "loser"}
    _, seen = loser._read_with_etag()
    s3.pipe_file(key, b'{"token": "winner"}')  # the other build's takeover lands first
    assert not loser._replace(seen)
    assert json.loads(s3.cat_file(key))["token"] == "winner"

    s3.pipe_file(key, stale)  # stale: not refreshed for 1000 s, held on another host
    lock = ObjectStoreLock(out).acquire("pairgen build (a test)")
    assert json.loads(s3.cat_file(key))["token"] == lock.holder["token"]
    lock.release()
    assert ".pairgen.lock" not in listed(s3, f"{BUCKET}/race")


def test_bad_remote_inputs_are_reported_skips(s3, tmp_path):
    rng = np.random.default_rng(0)
    good = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    write_rgb(str(tmp_path / "good.png"), good)
    write_rgb(str(tmp_path / "full.jpg"), good)
    jpeg = (tmp_path / "full.jpg").read_bytes()
    write_rgb(str(tmp_path / "large.png"), rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    prefix = f"{BUCKET}/bad"
    s3.put_file(str(tmp_path / "good.png"), f"{prefix}/good.png")
    s3.put_file(str(tmp_path / "large.png"), f"{prefix}/large.png")
    s3.pipe_file(f"{prefix}/truncated.jpg", jpeg[: len(jpeg) // 2])
    s3.pipe_file(f"{prefix}/notes.jpg", b"not an image at all\n" * 10)
    s3.pipe_file(f"{prefix}/empty.png", b"")
    result = run_cli(*BUILD, "--src", f"s3://{prefix}", "--out", tmp_path / "out", "--max-pixels", "50000")
    assert result.returncode == 0, result.stderr
    card = json.load(open(tmp_path / "out" / "dataset.json"))
    reasons = {os.path.basename(s["path"]): s["reason"] for s in card["skipped"]}
    assert reasons.keys() == {"large.png", "truncated.jpg", "notes.jpg", "empty.png"}, reasons
    assert reasons["large.png"].startswith("decompression bomb refused: 300x200")
    assert reasons["truncated.jpg"].startswith("truncated or corrupt image data")
    assert reasons["notes.jpg"] == "not an image (unrecognised format)"
    assert reasons["empty.png"] == "empty file"
    assert card["counts"]["samples"] == 1

    missing = run_cli(*BUILD, "--src", f"s3://{BUCKET}/nothing-here", "--out", tmp_path / "none")
    assert missing.returncode == 1 and "no such object or prefix" in missing.stderr, missing.stderr
    bad_options = run_cli(*BUILD, "--src", s3.photos, "--out", tmp_path / "none", "--storage-options", "{endpoint")
    assert bad_options.returncode == 2 and "--storage-options: not valid JSON" in bad_options.stderr


def test_the_trainer_reads_shards_from_the_store(s3, tmp_path):
    out = f"s3://{BUCKET}/train"
    built = run_cli(*BUILD, "--crops-per-image", "2", "--src", s3.photos, "--out", out)
    assert built.returncode == 0, built.stderr
    fit = subprocess.run([sys.executable, os.path.join(REPO, "train", "fit.py"), out + "/", "--out", str(tmp_path / "run"),
                          "--steps", "3", "--num-workers", "1", "--val-samples", "4", "--threads", "1", "--no-progress",
                          "--eval-every", "3", "--ckpt-every", "3"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert fit.returncode == 0, fit.stderr
    assert f"{out}/dataset.json: task superres" in fit.stdout + fit.stderr
    assert "step 3: val loss" in fit.stdout + fit.stderr
    assert glob.glob(str(tmp_path / "run" / "*.pt")) or glob.glob(str(tmp_path / "run" / "**" / "*.pt"), recursive=True)


def test_a_ray_build_on_a_joined_cluster_to_the_store_equals_the_local_build(s3, head, tmp_path):  # noqa: F811
    args = [*BUILD, "--crops-per-image", "2", "--src", s3.photos]
    on_ray = run_cli(*args, "--out", f"s3://{BUCKET}/ray", "--executor", "ray", "--ray-address", head)
    assert on_ray.returncode == 0, on_ray.stderr
    local = run_cli(*args, "--out", tmp_path / "local", "--workers", "1")
    assert local.returncode == 0, local.stderr
    assert store_hashes(s3, f"{BUCKET}/ray") == local_hashes(tmp_path / "local") and len(local_hashes(tmp_path / "local")) == 2


def test_masks_annotations_and_styles_come_from_the_store_too(s3, photos, tmp_path):
    import cv2
    from skimage import data

    from pairgen.api import build

    masks = tmp_path / "masks"
    masks.mkdir()
    star = np.zeros((50, 90), np.uint8)
    cv2.fillPoly(star, [np.array([[5, 40], [45, 2], [85, 40], [60, 45]])], 255)
    cv2.imwrite(str(masks / "star.png"), star)
    cv2.imwrite(str(masks / "empty.png"), np.zeros((20, 20), np.uint8))
    s3.put(str(masks), f"{BUCKET}/masks", recursive=True)
    common = dict(crop=64, limit=4, workers=1, progress=False, log=False, overrides=["family=object"])
    remote = build("inpaint", out=f"s3://{BUCKET}/inpaint", masks=f"s3://{BUCKET}/masks", **common)
    local = build("inpaint", out=str(tmp_path / "inpaint"), masks=str(masks), **common)
    assert remote.card["mask_shapes"] == local.card["mask_shapes"] == 1
    assert [s["reason"] for s in remote.card["skipped"]] == [s["reason"] for s in local.card["skipped"]]
    assert store_hashes(s3, f"{BUCKET}/inpaint") == local_hashes(tmp_path / "inpaint")

    # Keypoints: a COCO file and its images on the store (the demo set's file names and sizes).
    for name in ("astronaut", "camera"):
        write_rgb(str(tmp_path / f"{name}.png"), np.atleast_3d(getattr(data, name)())[..., [0, 0, 0] if name == "camera" else [0, 1, 2]])
        s3.put_file(str(tmp_path / f"{name}.png"), f"{BUCKET}/coco/images/{name}.png")
    demo = os.path.join(REPO, "pairgen", "data", "demo_coco", "person_keypoints.json")
    s3.put_file(demo, f"{BUCKET}/coco/person_keypoints.json")
    keypoints = build("keypoints", src=[f"s3://{BUCKET}/coco/images"], annotations=f"s3://{BUCKET}/coco/person_keypoints.json",
                      out=str(tmp_path / "kp"), crop=64, limit=2, workers=1, progress=False, log=False)
    assert keypoints.card["counts"]["samples"] == 2, keypoints.card["skipped"]

    styles = build("style", src=[str(photos)], style=s3.photos + "/chelsea.png", out=str(tmp_path / "style"), crop=64, limit=2,
                   workers=1, progress=False, log=False)
    assert styles.card["counts"]["samples"] == 2
    assert [s["path"] for s in styles.card["styles"]] == [s3.photos + "/chelsea.png"], styles.card["styles"]
