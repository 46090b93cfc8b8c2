"""The whole build against an honest I/O floor, worker scaling, and peak memory.

    .venv/bin/python benchmarks/bench_build.py                  # 120 and 2,000 samples
    .venv/bin/python benchmarks/bench_build.py --samples 120 --rounds 5

I/O floor: the plain library calls for the same work, one core, in this process: decode every
source JPEG with ``cv2.imdecode`` and encode every output PNG (one 512x512 HR and one 128x128 LR
per sample) with ``cv2.imencode(".png", img)`` at its default parameters. Nothing of pairgen is
in it. The build is ``pairgen build superres`` as a fresh process (start-up, planning, decoding,
degrading, PNG encoding, tar writing and the dataset card all included), default recipe, 512 px
HR crops, x4. Targets (issue 15): one worker <= 2.0x the floor; two workers >= 1.8x one worker.

This host's speed drifts (shared cores, other jobs), so each round measures the floor, the one-
worker and the two-worker build back to back, ratios are taken within a round, and the median
over rounds is reported (not the best round).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import installed_env, photo_folder, timed_process  # noqa: E402

PHOTOS = 125  # 640x640 JPEGs; 120 samples = 120 photos x 1 crop, 2,000 = 125 x 16 crops
HR, LR = 512, 128


def plan(samples: int) -> tuple[int, int]:
    """(photos, crops per photo) for a sample count."""
    if samples <= PHOTOS:
        return samples, 1
    crops = -(-samples // PHOTOS)
    return -(-samples // crops), crops


def io_floor(files: list[str], crops: int, samples: int) -> float:
    """Seconds for the plain library calls: cv2.imdecode of each source, cv2.imencode(".png")
    with default parameters of each output image, one core. The outputs (crops of the decoded
    photo and their area-downscaled LRs) are prepared outside the timed calls."""
    cv2.setNumThreads(1)
    blobs = [open(f, "rb").read() for f in files]  # reading the files is not timed (page cache)
    elapsed = 0.0
    made = 0
    for blob in blobs:
        started = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        elapsed += time.perf_counter() - started
        for k in range(crops):
            if made == samples:
                break
            y = x = (k * 8) % (image.shape[0] - HR + 1)
            hr = np.ascontiguousarray(image[y:y + HR, x:x + HR])
            lr = cv2.resize(hr, (LR, LR), interpolation=cv2.INTER_AREA)
            started = time.perf_counter()
            cv2.imencode(".png", hr)
            cv2.imencode(".png", lr)
            elapsed += time.perf_counter() - started
            made += 1
    return elapsed


def shard_size(samples: int) -> int:
    """At least 6 equal shards, so that two workers get equal work (120 -> 20, 2,000 -> 100)."""
    return min(100, max(10, samples // 6))


def timed_build(src: str, out: str, workers: int, crops: int, samples: int, env: dict) -> float:
    """Wall seconds of `pairgen build` in a fresh process, process start included (with the
    bytecode cache an installed pairgen has: common.installed_env)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [os.path.join(os.path.dirname(sys.executable), "pairgen"), "build", "superres", "--src", src,
               "--out", out, "--crop", str(HR), "--crops-per-image", str(crops), "--limit", str(samples),
               "--workers", str(workers), "--shard-size", str(shard_size(samples)), "--quiet", "--overwrite"]
    return timed_process(command, env)[0]


def shard_differences(a: str, b: str) -> list[str]:
    """Members that differ between two builds' shards ("shard/member: bytes" or ": pixels")."""
    import tarfile

    names = sorted(n for n in os.listdir(a) if n.endswith(".tar"))
    if names != sorted(n for n in os.listdir(b) if n.endswith(".tar")):
        return ["shard names differ"]
    out = []
    for name in names:
        with tarfile.open(os.path.join(a, name)) as ta, tarfile.open(os.path.join(b, name)) as tb:
            for member in ta.getmembers():
                x, y = ta.extractfile(member).read(), tb.extractfile(tb.getmember(member.name)).read()
                if x != y:
                    same_pixels = member.name.endswith(".png") and np.array_equal(
                        cv2.imdecode(np.frombuffer(x, np.uint8), -1), cv2.imdecode(np.frombuffer(y, np.uint8), -1))
                    out.append(f"{name}/{member.name}: {'bytes only' if same_pixels else 'content'}")
    return out


def peak_rss_mb(src: str, out: str, crops: int) -> float:
    """Peak resident memory of a one-worker build in a fresh process (MiB)."""
    shutil.rmtree(out, ignore_errors=True)
    code = ("import resource, sys; from pairgen.api import build; "
            f"build('superres', src=[{src!r}], out={out!r}, crop=256, crops_per_image={crops}, workers=1, shard_size=32, progress=False, log=False); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def measure(work: str, src: str, samples: int, rounds: int, env: dict) -> None:
    photos, crops = plan(samples)
    files = sorted(os.path.join(src, f) for f in os.listdir(src))[:photos]
    sub = os.path.join(work, f"src{samples}")
    if not os.path.isdir(sub):  # the build reads exactly the photos the floor decodes
        os.makedirs(sub)
        for f in files:
            os.symlink(f, os.path.join(sub, os.path.basename(f)))
    rows = []
    for _ in range(rounds):
        floor = io_floor(files, crops, samples)
        one = timed_build(sub, os.path.join(work, "w1"), 1, crops, samples, env)
        two = timed_build(sub, os.path.join(work, "w2"), 2, crops, samples, env)
        rows.append((floor, one, two))
    differences = shard_differences(os.path.join(work, "w1"), os.path.join(work, "w2"))
    floor, one, two = (float(np.median([r[i] for r in rows])) for i in range(3))
    over_floor = float(np.median([r[1] / r[0] for r in rows]))
    scaling = float(np.median([r[1] / r[2] for r in rows]))
    ms = lambda s: s / samples * 1000  # noqa: E731
    print(f"build, default recipe, {samples} samples ({photos} photos x {crops} crops) -> 512x512 HR / 128x128 LR, "
          f"median of {rounds} interleaved rounds")
    print(f"  I/O floor (cv2.imdecode sources + cv2.imencode PNG defaults, one core): {ms(floor):6.2f} ms/pair")
    print(f"  pairgen build, 1 worker, process start included:  {ms(one):6.2f} ms/pair = {over_floor:.2f}x the floor (target <= 2.0x)")
    print(f"  pairgen build, 2 workers:                          {ms(two):6.2f} ms/pair = {scaling:.2f}x one worker (target >= 1.8x)")
    print(f"  1- and 2-worker shards byte-identical: {not differences}"
          + (f" ({len(differences)} members differ: {', '.join(differences[:5])})" if differences else ""))
    print("  per round (floor, 1 worker, 2 workers; ms/pair): "
          + "; ".join(f"{ms(a):.1f} {ms(b):.1f} {ms(c):.1f}" for a, b, c in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[120, 2000])
    parser.add_argument("--rounds", type=int, nargs="+", default=[5, 3], help="rounds per sample count")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    args = parser.parse_args()
    rounds = args.rounds + [args.rounds[-1]] * (len(args.samples) - len(args.rounds))
    work = tempfile.mkdtemp(prefix="pairgen-bench-")
    try:
        src = photo_folder(os.path.join(work, "photos"), count=PHOTOS)
        env = installed_env(work)
        timed_build(src, os.path.join(work, "warm"), 1, 1, 4, env)  # untimed: fills the bytecode cache
        for samples, n in zip(args.samples, rounds):
            measure(work, src, samples, n, env)
        if not args.no_memory:
            small = peak_rss_mb(src, os.path.join(work, "m1"), 1)
            large = peak_rss_mb(src, os.path.join(work, "m8"), 8)
            print(f"  peak memory, 1 worker: {PHOTOS} samples {small:.0f} MiB; {8 * PHOTOS} samples {large:.0f} MiB "
                  f"= {large / small:.2f}x (target: flat)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
