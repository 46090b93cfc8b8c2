"""How a build stops and shares its folder, done for real: signals sent to real build processes,
a second real build into the same folder. No process may outlive a build."""
import glob
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import PAIRGEN, REPO

# Long enough to be stopped half-way (thousands of samples), small shards so some finish first.
LONG_BUILD = ["build", "superres-bicubic", "--crop", "64", "--crops-per-image", "400", "--shard-size", "16", "--workers", "2"]


def start(out, *extra):
    """A build in its own session (process group), as a terminal runs it."""
    return subprocess.Popen([*PAIRGEN, *LONG_BUILD, "--out", str(out), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)


def wait_for_shards(out, n, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while len(glob.glob(os.path.join(out, "*.stats.json"))) < n:
        assert proc.poll() is None, f"the build ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the build made no shards"
        time.sleep(0.05)


def children(pid):
    """Pids of a process's children (its workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def assert_all_gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "processes outlived the build"


def stop_and_time(proc, send):
    started = time.monotonic()
    send()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # the build dumps every thread's stack
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"the build did not stop; its stacks:\n{err[-6000:]}") from None
    return time.monotonic() - started, err


def assert_resumable(out):
    assert not glob.glob(os.path.join(out, "*.tmp")), "temporaries left behind"
    for stats_path in glob.glob(os.path.join(out, "*.stats.json")):
        with open(stats_path) as handle:
            stats = json.load(handle)
        assert os.path.getsize(os.path.join(out, stats["shard"])) == stats["bytes"]


def test_ctrl_c_stops_a_multi_worker_build_at_once_and_leaves_it_resumable(tmp_path):
    out = tmp_path / "out"
    proc = start(out)
    wait_for_shards(out, 2, proc)
    workers = children(proc.pid)
    assert len(workers) >= 2
    seconds, err = stop_and_time(proc, lambda: os.killpg(proc.pid, signal.SIGINT))
    assert proc.returncode == 130, err
    assert seconds < 5, f"took {seconds:.1f} s to stop"
    assert "shards complete" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert_all_gone(workers)
    assert_resumable(out)
    complete = len(glob.glob(os.path.join(out, "*.stats.json")))
    assert complete < 100  # stopped, did not run the queue out (5600 samples = 350 shards)

    again = start(out)  # the same command resumes
    wait_for_shards(out, complete + 1, again)
    os.killpg(again.pid, signal.SIGINT)
    _, err2 = again.communicate(timeout=60)
    assert f"resuming: {complete} shards already complete" in err2


def test_second_ctrl_c_ends_the_build_at_once(tmp_path):
    out = tmp_path / "out"
    proc = start(out)
    wait_for_shards(out, 1, proc)
    workers = children(proc.pid)

    def twice():
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)

    seconds, err = stop_and_time(proc, twice)
    # 130, or killed by the second SIGINT itself if it lands while the interpreter shuts down
    # (a shell shows both as 130)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert seconds < 5
    assert_all_gone(workers)
    assert_resumable(out)


def test_sigterm_to_the_main_process_stops_it_like_ctrl_c_and_no_worker_survives(tmp_path):
    out = tmp_path / "out"
    proc = start(out)
    wait_for_shards(out, 1, proc)
    workers = children(proc.pid)
    seconds, err = stop_and_time(proc, lambda: proc.send_signal(signal.SIGTERM))  # the main process only
    assert proc.returncode == 130, err
    assert seconds < 5
    assert "run the same command again to resume" in err
    assert_all_gone(workers)
    assert_resumable(out)


def test_sigkill_of_the_main_process_takes_the_workers_with_it(tmp_path):
    out = tmp_path / "out"
    proc = start(out)
    wait_for_shards(out, 1, proc)
    workers = children(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    assert_all_gone(workers)


def test_a_second_build_into_a_folder_in_use_is_refused_and_a_killed_build_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    first = start(out)
    wait_for_shards(out, 1, first)
    with open(out / "build.json") as handle:
        seed_before = json.load(handle)["seed"]
    for extra in ([], ["--overwrite", "--seed", "1"]):
        second = subprocess.run([*PAIRGEN, *LONG_BUILD, "--out", str(out), *extra], capture_output=True, text=True, cwd=REPO,
                                timeout=120)
        assert second.returncode == 1, second.stderr
        assert f"pid {first.pid}" in second.stderr and "in use by another pairgen build" in second.stderr
        assert "superres-bicubic" in second.stderr  # the holder's command
    assert first.poll() is None  # the first build was not disturbed
    with open(out / "build.json") as handle:
        assert json.load(handle)["seed"] == seed_before
    workers = children(first.pid)
    first.kill()  # no chance to clean up: the lock must die with it
    first.communicate(timeout=30)
    assert_all_gone(workers)
    resumed = start(out)
    wait_for_shards(out, len(glob.glob(os.path.join(out, "*.stats.json"))) + 1, resumed)
    os.killpg(resumed.pid, signal.SIGINT)
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 130 and "resuming" in err, err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_worker_and_many_stop_the_same_way(tmp_path, workers):
    out = tmp_path / "out"
    proc = subprocess.Popen([*PAIRGEN, *LONG_BUILD[:-1], workers, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    wait_for_shards(out, 1, proc)
    seconds, err = stop_and_time(proc, lambda: os.killpg(proc.pid, signal.SIGINT))
    assert proc.returncode == 130 and seconds < 5, err
    assert_resumable(out)
