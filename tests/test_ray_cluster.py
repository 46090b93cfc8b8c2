"""A real Ray cluster: a head node started by the test with `ray start --head` on loopback,
joined with --ray-address; a Ray worker killed in the middle of a shard. Every process the test
starts is stopped by it."""
import glob
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import webdataset as wds

from conftest import PAIRGEN, REPO, run_cli

RAY = os.path.join(os.path.dirname(PAIRGEN[0]), "ray")
BUILD = ["build", "superres-bicubic", "--crop", "64", "--shard-size", "16", "--quiet"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_processes(sid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    pids.append(int(entry))
            except (OSError, IndexError):
                pass
    return pids


@pytest.fixture(scope="module")
def head():
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
                             "--block", "--disable-usage-stats", "--include-dashboard", "false", "--temp-dir", temp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not glob.glob(os.path.join(temp, "session_*", "sockets", "raylet")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
        deadline = time.monotonic() + 5  # its autoscaler monitor lingers ~30 s: not worth waiting for
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not session_processes(proc.pid), "Ray processes outlived the test"


def shard_hashes(folder):
    import hashlib

    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in glob.glob(os.path.join(folder, "*.tar"))}


def test_a_build_on_a_joined_cluster_is_byte_identical_to_the_local_one(head, tmp_path):
    local = run_cli(*BUILD, "--crops-per-image", "4", "--out", tmp_path / "local", "--workers", "1")
    assert local.returncode == 0, local.stderr
    joined = run_cli(*BUILD, "--crops-per-image", "4", "--out", tmp_path / "ray", "--executor", "ray", "--ray-address", head)
    assert joined.returncode == 0, joined.stderr
    assert shard_hashes(tmp_path / "ray") == shard_hashes(tmp_path / "local") and len(shard_hashes(tmp_path / "local")) == 5


def test_a_killed_ray_worker_loses_no_sample_and_makes_none_twice(head, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([*PAIRGEN, *BUILD, "--crops-per-image", "120", "--out", str(out), "--executor", "ray",
                             "--ray-address", head], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 180
    killed = None
    while killed is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no Ray worker seen running a shard"
        if len(glob.glob(str(out / "*.stats.json"))) >= 2:
            busy = subprocess.run(["pgrep", "-f", "ray::_process_shard_ray"], capture_output=True, text=True).stdout.split()
            if busy:
                killed = int(busy[0])
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    card = json.load(open(out / "dataset.json"))
    assert card["retried"] and "retried" in card["retried"][0], card.get("retried")
    keys = [sample["__key__"] for shard in sorted(glob.glob(str(out / "*.tar"))) for sample in wds.WebDataset(shard, shardshuffle=False)]
    assert len(keys) == len(set(keys)) == card["counts"]["samples"] == 18 * 120
    assert not glob.glob(str(out / "*.tmp"))


def test_a_wrong_ray_address_is_a_clear_error(tmp_path):
    result = run_cli(*BUILD, "--limit", "2", "--out", tmp_path / "out", "--executor", "ray", "--ray-address", f"127.0.0.1:{free_port()}",
                     timeout=200)
    assert result.returncode == 1
    assert "cannot join a Ray cluster there" in result.stderr and "Traceback" not in result.stderr


def test_ray_address_without_the_ray_executor_is_a_usage_error(tmp_path):
    result = run_cli(*BUILD, "--limit", "2", "--out", tmp_path / "out", "--ray-address", "127.0.0.1:1")
    assert result.returncode == 2 and "--ray-address needs --executor ray" in result.stderr


def remove_shards(folder, names):
    for name in names:
        os.remove(os.path.join(folder, name))
        os.remove(os.path.join(folder, name.replace(".tar", ".stats.json")))


@pytest.mark.parametrize("first,then", [("local", "ray"), ("ray", "local")])
def test_a_build_started_on_one_executor_resumes_on_the_other(head, tmp_path, first, then):
    executor = {"local": ["--workers", "1"], "ray": ["--executor", "ray", "--ray-address", head]}
    reference = run_cli(*BUILD, "--crops-per-image", "4", "--out", tmp_path / "reference", "--workers", "2")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    started = run_cli(*BUILD, "--crops-per-image", "4", "--out", out, *executor[first])
    assert started.returncode == 0, started.stderr
    remove_shards(out, sorted(shard_hashes(out))[1:3])  # as if the first run had stopped before them
    resumed = run_cli(*BUILD, "--crops-per-image", "4", "--out", out, *executor[then])
    assert resumed.returncode == 0 and "resuming: 3 shards already complete, 2 to make" in resumed.stderr, resumed.stderr
    assert shard_hashes(out) == shard_hashes(tmp_path / "reference") and len(shard_hashes(out)) == 5


def test_a_rendered_recipe_on_a_joined_cluster_equals_the_local_build(head, tmp_path):
    """Blender runs inside the Ray workers (one render process per worker, recycled)."""
    common = ["build", "flow", "--scenes", "2", "--resolution", "32x32", "--samples", "1", "--shard-size", "1", "--quiet"]
    local = run_cli(*common, "--out", tmp_path / "local", "--workers", "1", timeout=400)
    assert local.returncode == 0, local.stderr
    joined = run_cli(*common, "--out", tmp_path / "ray", "--executor", "ray", "--ray-address", head, timeout=400)
    assert joined.returncode == 0, joined.stderr
    assert shard_hashes(tmp_path / "ray") == shard_hashes(tmp_path / "local") and len(shard_hashes(tmp_path / "local")) == 2
