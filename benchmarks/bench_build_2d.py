"""The inpaint and edges builds against their own I/O floors, one core.

    .venv/bin/python benchmarks/bench_build_2d.py                     # 120 samples, 3 rounds, both recipes
    .venv/bin/python benchmarks/bench_build_2d.py --recipes edges --samples 240 --rounds 5

I/O floor (as in bench_build.py): the plain library calls for the same work, one core, in this
process: ``cv2.imdecode`` of every source JPEG and ``cv2.imencode(".png", img)`` at its default
parameters of every output image of every sample (inpaint: masked.png and image.png RGB and
mask.png gray, 512 px; edges: edges.png gray and image.png RGB, 512 px). Nothing of pairgen is
in it. The build is ``pairgen build RECIPE --crop 512 --workers 1`` as a fresh process, start-up
and the dataset card included. Target (issue 10): each build <= 2.0x its floor. Rounds alternate
floor and build; the median of the per-round ratios is reported.
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
from common import photo_folder  # noqa: E402

SIDE = 512


def outputs(recipe: str, crop: np.ndarray) -> list[np.ndarray]:
    """Stand-ins of one sample's output images with realistic content (made outside the timing)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if recipe.startswith("inpaint"):
        mask = np.zeros(gray.shape, np.uint8)
        cv2.line(mask, (40, 60), (400, 300), 255, 40)
        masked = crop.copy()
        masked[mask > 0] = 0
        return [masked, mask, crop]
    return [cv2.Canny(gray, 50, 120), crop]


def io_floor(recipe: str, blobs: list[bytes]) -> float:
    cv2.setNumThreads(1)
    elapsed = 0.0
    for blob in blobs:
        started = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        elapsed += time.perf_counter() - started
        images = outputs(recipe, np.ascontiguousarray(image[:SIDE, :SIDE]))
        started = time.perf_counter()
        for picture in images:
            cv2.imencode(".png", picture)
        elapsed += time.perf_counter() - started
    return elapsed


def timed_build(recipe: str, src: str, out: str, samples: int) -> float:
    command = [os.path.join(os.path.dirname(sys.executable), "pairgen"), "build", recipe, "--src", src, "--out", out,
               "--crop", str(SIDE), "--limit", str(samples), "--workers", "1", "--shard-size", "40", "--quiet",
               "--overwrite"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["inpaint-512", "edges"])
    parser.add_argument("--samples", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pairgen-bench2d-")
    try:
        src = photo_folder(os.path.join(work, "photos"), count=args.samples)
        files = sorted(os.path.join(src, f) for f in os.listdir(src))[: args.samples]
        blobs = [open(f, "rb").read() for f in files]
        for recipe in args.recipes:
            rows = []
            for _ in range(args.rounds):
                rows.append((io_floor(recipe, blobs), timed_build(recipe, src, os.path.join(work, recipe), args.samples)))
            ms = lambda s: s / args.samples * 1000  # noqa: E731
            ratio = float(np.median([b / f for f, b in rows]))
            print(f"{recipe}: {args.samples} samples ({SIDE} px crops of 640 px JPEGs), median of {args.rounds} rounds")
            print(f"  I/O floor (cv2.imdecode + cv2.imencode PNG defaults, one core): {ms(np.median([r[0] for r in rows])):6.2f} ms/sample")
            print(f"  pairgen build, 1 worker, process start included:         {ms(np.median([r[1] for r in rows])):6.2f} ms/sample "
                  f"= {ratio:.2f}x the floor (target <= 2.0x: {'met' if ratio <= 2.0 else 'NOT met'})")
            print("  per round (floor, build; ms/sample): " + "; ".join(f"{ms(f):.1f} {ms(b):.1f}" for f, b in rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
