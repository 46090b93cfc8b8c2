"""Scale-out costs: Ray against the local executor, object storage against local disk.

    .venv/bin/python benchmarks/bench_scaleout.py               # 500 samples, 3 rounds
    .venv/bin/python benchmarks/bench_scaleout.py --samples 100 --rounds 1

Every build is ``pairgen build superres`` as a fresh process (start-up, planning, the card
included), default recipe, 256 px HR crops, x4, 125 photos x 4 crops, 10 shards, two workers:
* local executor vs ``--executor ray`` starting its own Ray, and vs ``--ray-address`` joining a
  head started here with ``ray start --head`` (target: Ray <= 1.3x local);
* ``--src``/``--out`` on local disk vs both on an S3 server on loopback (moto in server mode,
  started here; it shares the two cores with the build) (target: store <= 1.2x disk).
Rounds are interleaved (the host's speed drifts); ratios are taken within a round; medians are
printed. The per-shard costs behind the README's 10-million-sample estimate come last: bytes per
shard, seconds per shard, what planning costs per input on the store, and what the driver holds
per sample (its specs, pickled).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import photo_folder  # noqa: E402

BIN = os.path.dirname(sys.executable)
PHOTOS, CROPS = 125, 4
BUCKET = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_build(src: str, out: str, samples: int, *extra: str) -> float:
    command = [os.path.join(BIN, "pairgen"), "build", "superres", "--src", src, "--out", out, "--crop", "256",
               "--crops-per-image", str(CROPS), "--limit", str(samples), "--shard-size", str(max(1, samples // 10)),
               "--workers", "2", "--quiet", "--overwrite", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - started


def start_service(command: list[str], ready, what: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.2)
    return proc


def stop_service(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # Ray's helpers linger after SIGTERM
        except ProcessLookupError:
            pass
        proc.wait()


def local_hashes(folder: str) -> dict:
    return {os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in glob.glob(os.path.join(folder, "*.tar"))}


def store_hashes(fs, prefix: str) -> dict:
    fs.invalidate_cache()
    return {p.rsplit("/", 1)[-1]: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in fs.ls(prefix) if p.endswith(".tar")}


def per_shard_costs(fs, prefix: str, samples: int) -> dict:
    """Bytes and seconds per shard from the stats objects; planning per input and the driver's
    bytes per sample measured in this process against the store."""
    from pairgen import storage
    from pairgen.api import make_task
    from pairgen.executors import ShardSpec

    fs.invalidate_cache()
    stats = [json.loads(fs.cat_file(p)) for p in fs.ls(prefix) if p.endswith(".stats.json")]
    storage.configure()
    _, task = make_task("superres", src=[f"s3://{BUCKET}/photos"], crop=256, crops_per_image=CROPS, limit=samples)
    task.plan()  # once before measuring: the first call imports and sets up s3fs/botocore
    tracemalloc.start()
    started = time.perf_counter()
    items, _ = task.plan()  # lists the prefix and probes every photo's header (all PHOTOS of them)
    planning = time.perf_counter() - started
    specs = [ShardSpec(0, "x.tar", f"s3://{BUCKET}/o", "wds", 0, task, items, storage.shipped())]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"shard_bytes": float(np.median([s["bytes"] for s in stats])), "shard_samples": float(np.median([s["samples"] for s in stats])),
            "shard_seconds": float(np.median([s["seconds"] for s in stats])), "plan_seconds_per_input": planning / PHOTOS,
            "driver_bytes_per_sample": held / samples, "pickled_bytes_per_sample": len(pickle.dumps(specs)) / samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pairgen-scaleout-")
    services = []
    try:
        src = photo_folder(os.path.join(work, "photos"), count=PHOTOS)
        port = free_port()
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                          AWS_DEFAULT_REGION="us-east-1")
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)

        def store_ready():
            try:
                fs.mkdir(BUCKET)
                return True
            except OSError:
                return False

        services.append(start_service([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)], store_ready, "moto"))
        fs.put(src, f"{BUCKET}/photos", recursive=True)
        ray_port, ray_temp = free_port(), tempfile.mkdtemp(prefix="rb", dir="/tmp")
        services.append(start_service(
            [os.path.join(BIN, "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(ray_port), "--num-cpus", "2",
             "--block", "--disable-usage-stats", "--include-dashboard", "false", "--temp-dir", ray_temp],
            lambda: bool(glob.glob(os.path.join(ray_temp, "session_*", "sockets", "raylet"))), "ray head"))
        head = f"127.0.0.1:{ray_port}"

        rows = []
        for _ in range(args.rounds):
            local = timed_build(src, os.path.join(work, "local"), args.samples)
            ray_own = timed_build(src, os.path.join(work, "ray"), args.samples, "--executor", "ray")
            ray_joined = timed_build(src, os.path.join(work, "joined"), args.samples, "--executor", "ray", "--ray-address", head)
            store = timed_build(f"s3://{BUCKET}/photos", f"s3://{BUCKET}/out", args.samples)
            rows.append((local, ray_own, ray_joined, store))
        same = local_hashes(os.path.join(work, "local"))
        identical = {"ray": local_hashes(os.path.join(work, "ray")) == same, "joined": local_hashes(os.path.join(work, "joined")) == same}
        disk_from_store = os.path.join(work, "from-store")
        timed_build(f"s3://{BUCKET}/photos", disk_from_store, args.samples)
        identical["store"] = store_hashes(fs, f"{BUCKET}/out") == local_hashes(disk_from_store)
        costs = per_shard_costs(fs, f"{BUCKET}/out", args.samples)
    finally:
        for proc in reversed(services):
            stop_service(proc)
        shutil.rmtree(work, ignore_errors=True)

    med = lambda i: float(np.median([r[i] for r in rows]))  # noqa: E731
    ratio = lambda i: float(np.median([r[i] / r[0] for r in rows]))  # noqa: E731
    print(f"superres, {args.samples} samples (256 px HR, x4), 10 shards, 2 workers, medians of {args.rounds} interleaved rounds")
    print(f"  local executor, local disk:            {med(0):6.2f} s")
    print(f"  --executor ray (starts its own Ray):   {med(1):6.2f} s = {ratio(1):.2f}x local (target <= 1.3x)")
    print(f"  --executor ray --ray-address (joined): {med(2):6.2f} s = {ratio(2):.2f}x local (target <= 1.3x)")
    print(f"  --src/--out on S3 (moto, loopback):    {med(3):6.2f} s = {ratio(3):.2f}x local disk (target <= 1.2x)")
    print(f"  shards byte-identical: ray {identical['ray']}, joined {identical['joined']}, store vs disk {identical['store']}")
    print("  per round (local, ray, joined, store; s): " + "; ".join(" ".join(f"{v:.2f}" for v in r) for r in rows))
    print(f"  per shard: {costs['shard_samples']:.0f} samples, {costs['shard_bytes'] / 1e6:.2f} MB, {costs['shard_seconds']:.2f} s "
          f"(make + upload, one worker); planning {costs['plan_seconds_per_input'] * 1000:.1f} ms per input on the store; "
          f"driver holds {costs['driver_bytes_per_sample']:.0f} bytes per sample (plan and specs in memory; "
          f"{costs['pickled_bytes_per_sample']:.0f} pickled)")


if __name__ == "__main__":
    main()
