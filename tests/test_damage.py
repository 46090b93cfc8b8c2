"""Damaged shards, full disks and read-only outputs, for real: bytes overwritten in finished shards,
a real tmpfs that fills up, a real read-only mount (in a private mount namespace, so nothing
outlives the test)."""
import hashlib
import json
import os
import shlex
import shutil
import subprocess

import pytest

from conftest import PAIRGEN, REPO, run_cli

SMALL = ["superres-bicubic", "--crop", "64", "--crops-per-image", "4", "--shard-size", "16", "--quiet"]


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def damage(path, offset, data=b"\xff" * 64):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "out"
    result = run_cli("build", *SMALL, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def copy_of(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    return out


def test_stats_record_each_shards_checksum_and_verify_passes_on_a_good_build(finished):
    for row in json.load(open(finished / "dataset.json"))["shards"]:
        stats = json.load(open(finished / row["file"].replace(".tar", ".stats.json")))
        assert stats["sha256"] == sha(finished / row["file"])
    result = run_cli("verify", finished)
    assert result.returncode == 0, result.stdout
    assert "5 shards checked, 0 damaged" in result.stdout


def test_verify_names_a_damaged_shard_and_repair_rebuilds_it_bit_exactly(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    target = out / "superres-bicubic-000001.tar"
    original = sha(target)
    damage(target, 5000)  # same size: only the checksum can tell
    result = run_cli("verify", out)
    assert result.returncode == 1
    assert "superres-bicubic-000001.tar: checksum differs" in result.stdout
    (out / "superres-bicubic-000003.tar").unlink()
    result = run_cli("verify", out)
    assert result.returncode == 1 and "superres-bicubic-000003.tar: missing" in result.stdout

    result = run_cli("verify", out, "--repair", cwd=tmp_path)  # another working folder than the build's
    assert result.returncode == 0, result.stdout + result.stderr
    assert "repaired 2 of 2 damaged shards" in result.stdout
    assert sha(target) == original
    for name in os.listdir(finished):
        if name.endswith(".tar"):
            assert sha(out / name) == sha(finished / name)


def test_resume_rebuilds_a_damaged_shard_instead_of_trusting_its_size(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    target = out / "superres-bicubic-000002.tar"
    original = sha(target)
    damage(target, 4000)
    result = run_cli("build", *SMALL, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "resuming: 4 shards already complete, 1 to make" in result.stderr
    assert sha(target) == original


@pytest.mark.parametrize("fmt", ["wds", "hdf5"])
def test_inspect_names_the_damaged_shard_and_reads_the_rest(tmp_path, fmt):
    out = tmp_path / "out"
    assert run_cli("build", *SMALL, "--format", fmt, "--out", out).returncode == 0
    ext = ".tar" if fmt == "wds" else ".h5"
    target = out / f"superres-bicubic-000001{ext}"
    damage(target, os.path.getsize(target) // 2, b"\x00" * 4000)
    result = run_cli("inspect", out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"superres-bicubic-000001{ext}: checksum differs" in result.stdout
    assert "unreadable after sample" in result.stdout or "unreadable at its first sample" in result.stdout
    assert os.path.getsize(out / "preview" / "contact_sheet.png") > 0  # the other shards were read


def test_inspect_of_a_file_says_it_is_a_file(finished):
    result = run_cli("inspect", finished / "dataset.json")
    assert result.returncode == 1 and "is a file; give the dataset folder" in result.stderr


def in_private_mount(script, tmp_path, timeout=300):
    """Run a shell script in a new user + mount namespace, where it may mount a tmpfs."""
    env = dict(os.environ, PAIRGEN=" ".join(map(shlex.quote, PAIRGEN)), HOME=str(tmp_path / "home"))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=timeout)


def test_full_disk_is_a_clear_error_that_removes_temporaries(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    # 600 kB holds a few of the 45 shards (about 120 kB each) and not the rest
    script = f"""
mount -t tmpfs -o size=600k tmpfs {disk} || exit 99
$PAIRGEN build superres-bicubic --crop 64 --crops-per-image 40 --shard-size 16 --quiet --out {disk}/out --workers 2
echo "rc=$?"
echo "tmp=$(ls -a {disk}/out | grep -c '\\.tmp$')"
echo "done=$(ls {disk}/out | grep -c 'stats.json$')"
"""
    result = in_private_mount(script, tmp_path)
    assert "rc=1" in result.stdout, result.stdout + result.stderr
    assert "tmp=0" in result.stdout
    assert "Traceback" not in result.stderr
    assert "no space left on device on" in result.stderr and "writing" in result.stderr
    done = int(result.stdout.split("done=")[1].split()[0])
    assert f"{done} of 45 shards complete" in result.stderr
    assert "run the same command again to resume" in result.stderr


def test_read_only_out_is_a_clear_error_and_inspect_writes_previews_elsewhere(finished, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    cache = tmp_path / "cache"
    script = f"""
mount -t tmpfs tmpfs {disk} || exit 99
cp -r {finished} {disk}/out && rm -rf {disk}/out/preview
mount -o remount,ro {disk} || exit 98
$PAIRGEN build {' '.join(SMALL)} --out {disk}/out; echo "build_rc=$?"
$PAIRGEN build {' '.join(SMALL)} --out {disk}/new; echo "new_rc=$?"
XDG_CACHE_HOME={cache} $PAIRGEN inspect {disk}/out; echo "inspect_rc=$?"
$PAIRGEN inspect {disk}/out --preview-dir {tmp_path}/previews > /dev/null; echo "chosen_rc=$?"
"""
    result = in_private_mount(script, tmp_path)
    assert "build_rc=1" in result.stdout and "new_rc=1" in result.stdout, result.stdout + result.stderr
    assert result.stderr.count("read-only file system") == 2
    assert "Traceback" not in result.stderr
    assert "inspect_rc=0" in result.stdout and "chosen_rc=0" in result.stdout, result.stdout + result.stderr
    assert f"previews written to {cache}" in result.stdout
    assert list(cache.rglob("contact_sheet.png"))
    assert (tmp_path / "previews" / "contact_sheet.png").exists()
