"""`pairgen calibrate`'s measuring of real photos: 1-megapixel JPEGs, 2 worker processes.

    .venv/bin/python benchmarks/bench_calibrate.py                  # 200 photos, 3 rounds
    .venv/bin/python benchmarks/bench_calibrate.py --photos 100 --rounds 1

Target (issue 14): estimating 1,000 real 1-megapixel photos takes under a minute on 2 cores.
The run measures --photos of them (1024x1024 JPEGs at quality 85, crops and flips of the
embedded photos; for colorize the same photos as sepia-toned prints) with ``measure_real`` and
2 workers (spawned processes, start-up included), for the superres statistics (JPEG quality
from the tables, noise, blur on the central 512x512) and the colorize ones (tone and tint on a
256-px area-averaged copy, grain on the central 512x512), and scales the median round linearly
to 1,000 photos (the work is per photo). Floor: ``cv2.imdecode`` of every colour file, in the
same 2-process pool: decoding alone.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pairgen import calibration  # noqa: E402
from pairgen.ops import film  # noqa: E402
from pairgen.ops.base import to_float, to_uint8  # noqa: E402
from pairgen.sources import load_embedded  # noqa: E402

SIDE = 1024  # 1.05 megapixels


def write_photos(folder: str, count: int, prints: bool = False) -> list:
    """``count`` 1-MP JPEGs; ``prints``: as sepia-toned prints (the film ops' toning of their luminance)."""
    rng = np.random.default_rng(0)  # benchmark fixture only, not pairgen output
    big = [cv2.resize(load_embedded(name), (1400, 1400), interpolation=cv2.INTER_CUBIC)
           for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")]
    paths = []
    for index in range(count):
        image = big[index % len(big)]
        y, x = (int(v) for v in rng.integers(0, 1400 - SIDE + 1, 2))
        crop = image[y:y + SIDE, x:x + SIDE][:, ::(-1 if index // len(big) % 2 else 1)]
        if prints:
            gray = np.repeat(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            crop = to_uint8(film._apply_toning(to_float(gray), film.ToningParams("sepia", 0.8, 70.0)))
        path = os.path.join(folder, f"photo{index:04d}.jpg")
        cv2.imwrite(path, np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
        paths.append(path)
    return paths


def _decode(path: str) -> int:
    return int(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR).size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        folders = {"superres": os.path.join(root, "photos"), "colorize": os.path.join(root, "prints")}
        for task, folder in folders.items():
            os.makedirs(folder)
            paths = write_photos(folder, args.photos, prints=task == "colorize")
        paths = sorted(os.path.join(folders["superres"], name) for name in os.listdir(folders["superres"]))
        times: dict = {"decode floor": [], "superres": [], "colorize": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                pool.map(_decode, paths, chunksize=max(1, len(paths) // (8 * args.workers)))
            times["decode floor"].append(time.perf_counter() - start)
            for task in ("superres", "colorize"):
                start = time.perf_counter()
                real = calibration.measure_real(folders[task], calibration.FAMILIES[task], workers=args.workers)
                times[task].append(time.perf_counter() - start)
                assert len(real.statistics) == args.photos, real.skipped[:3]
    print(f"{args.photos} photos of {SIDE}x{SIDE} px, {args.workers} workers, median of {args.rounds} rounds")
    floor = statistics.median(times["decode floor"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<13} {median:6.2f} s  {1000 * median / args.photos:6.1f} ms/photo  "
              f"-> 1,000 photos: {1000 * median / args.photos:5.1f} s  ({median / floor:.2f}x the decode floor)")


if __name__ == "__main__":
    main()
