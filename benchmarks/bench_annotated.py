"""The annotated builds (keypoints, segment, style) against their own I/O floors, one core.

    .venv/bin/python benchmarks/bench_annotated.py                # 480 photos, 3 rounds
    .venv/bin/python benchmarks/bench_annotated.py --photos 60 --rounds 1

Inputs: 640x640 JPEG photos (benchmarks/common.py) with a synthetic COCO file: per photo two
people (17 keypoints, 12-15 labelled) and four instances (three 24-point polygons, one crowd RLE).
Each build makes two 256x256 samples per photo (keypoints: one per person; segment, style: two
crops) with its default recipe, as a fresh `pairgen build` process with one worker (start-up,
planning, COCO parsing, decoding, warping, photometric steps, labels, PNG encoding, tar writing
and the card all included), its bytecode cached as an installed package has it
(``common.installed_env``; one untimed build fills the cache).

I/O floor of each build: the plain library calls for the same inputs and outputs, one core, in
this process: ``cv2.imdecode`` of every source photo (style: and of every style image) and
``cv2.imencode(".png", img)`` with default parameters of every output picture of every sample
(keypoints also ``np.save`` of its heatmaps). Target: each build <= 2.0x its floor. Rounds
interleave the floors and the builds; medians over rounds are printed, of wall time and of CPU
time (the build's user + system time against the floor's process time: steadier on shared cores).
480 photos (960 samples, as benchmarks/bench_film.py): the process start-up (~0.3 s) is paid
once per build, and at 300 samples it alone would be ~0.25x the floor.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import installed_env, photo_folder, timed_process  # noqa: E402

SIDE = 256
NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
         "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
         "right_ankle"]


def coco_files(folder: str, files: list[str]) -> tuple[str, str]:
    """Write person_keypoints.json and instances.json for the photos (fixed seed: a benchmark fixture)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    images, people, things = [], [], []
    for image_id, path in enumerate(files, start=1):
        images.append({"id": image_id, "file_name": os.path.basename(path), "width": 640, "height": 640})
        for _ in range(2):
            x0, y0 = rng.uniform(40, 360, 2)
            w, h = rng.uniform(120, 240, 2)
            points = np.column_stack([rng.uniform(x0, x0 + w, 17), rng.uniform(y0, y0 + h, 17), np.full(17, 2)]).astype(int)
            points[rng.choice(17, int(rng.integers(2, 6)), replace=False)] = 0
            people.append({"id": len(people) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                           "keypoints": points.ravel().tolist(), "num_keypoints": int((points[:, 2] > 0).sum()),
                           "bbox": [float(x0), float(y0), float(w), float(h)]})
        for k in range(4):
            cx, cy = rng.uniform(120, 520, 2)
            angles = np.sort(rng.uniform(0, 2 * np.pi, 24))
            radii = rng.uniform(40, 110, 24)
            polygon = np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]).ravel().round(1).tolist()
            entry = {"id": len(things) + 1, "image_id": image_id, "category_id": int(rng.integers(1, 6)), "iscrowd": 0,
                     "segmentation": [polygon]}
            if k == 3:  # a crowd region as compressed RLE
                rle = mask_utils.merge(mask_utils.frPyObjects([polygon], 640, 640))
                entry.update(iscrowd=1, segmentation={"size": [640, 640], "counts": rle["counts"].decode("ascii")})
            things.append(entry)
    person = {"id": 1, "name": "person", "keypoints": NAMES, "skeleton": [[1, 2], [1, 3], [2, 4], [3, 5]]}
    keypoints_path, instances_path = os.path.join(folder, "person_keypoints.json"), os.path.join(folder, "instances.json")
    with open(keypoints_path, "w") as handle:
        json.dump({"images": images, "annotations": people, "categories": [person]}, handle)
    with open(instances_path, "w") as handle:
        json.dump({"images": images, "annotations": things,
                   "categories": [{"id": i, "name": f"class{i}"} for i in range(1, 6)]}, handle)
    return keypoints_path, instances_path


def io_floor(files: list[str], outputs: dict, styles: list[str] = ()) -> tuple[float, float]:
    """(wall, CPU) seconds of cv2.imdecode (sources, styles) + cv2.imencode(".png") of every output
    picture (two samples per photo) + np.save of arrays, one core. Outputs are prepared outside
    the timing."""
    cv2.setNumThreads(1)
    wall = cpu = 0.0
    for path in list(files) + list(styles):
        blob = open(path, "rb").read()
        started, started_cpu = time.perf_counter(), time.process_time()
        image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        wall, cpu = wall + time.perf_counter() - started, cpu + time.process_time() - started_cpu
        if path in styles:
            continue
        for k in range(2):
            made = {name: make(image, k) for name, make in outputs.items()}
            started, started_cpu = time.perf_counter(), time.process_time()
            for name, value in made.items():
                if name.endswith(".png"):
                    cv2.imencode(".png", value)
                else:
                    np.save(io.BytesIO(), value)
            wall, cpu = wall + time.perf_counter() - started, cpu + time.process_time() - started_cpu
    return wall, cpu


def crop(image, k):
    return np.ascontiguousarray(image[k * 64:k * 64 + SIDE, k * 64:k * 64 + SIDE])


def labels(dtype):
    return lambda image, k: (crop(image, k)[..., 0] // 64).astype(dtype)


OUTPUTS = {
    "keypoints": {"image.png": crop, "heatmaps.npy": lambda image, k: np.zeros((17, SIDE // 4, SIDE // 4), np.float16)},
    "segment": {"image.png": crop, "semantic.png": labels(np.uint8), "instance.png": labels(np.uint16),
                "boundary.png": lambda image, k: np.where(labels(np.uint8)(image, k) == 1, np.uint8(255), np.uint8(0))},
    "style": {"content.png": crop, "style.png": lambda image, k: crop(image, 1 - k)},
}


def timed_build(recipe: str, args: list[str], out: str, env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of the build process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "pairgen.cli", "build", recipe, "--out", out, "--workers", "1",
               "--crop", str(SIDE), "--quiet", "--overwrite", *args]
    return timed_process(command, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=480)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", default=list(OUTPUTS), choices=list(OUTPUTS))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pairgen-bench-annotated-")
    try:
        src = photo_folder(os.path.join(work, "photos"), count=args.photos)
        files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".jpg"))
        keypoints_json, instances_json = coco_files(src, files)
        styles_dir = os.path.join(work, "styles")
        os.makedirs(styles_dir)
        styles = files[:5]
        for path in styles:
            shutil.copy(path, styles_dir)
        builds = {
            "keypoints": ["--src", src, "--annotations", keypoints_json],
            "segment": ["--src", src, "--annotations", instances_json, "--crops-per-image", "2"],
            "style": ["--src", src, "--style", styles_dir, "--crops-per-image", "2"],
        }
        samples = 2 * len(files)
        print(f"{len(files)} photos of 640x640 -> {samples} samples of {SIDE}x{SIDE} per build, one worker, "
              f"median of {args.rounds} interleaved rounds")
        env = installed_env(work)
        for recipe in args.recipes:
            build_args = builds[recipe]
            timed_build(recipe, build_args + ["--limit", "1"], os.path.join(work, recipe), env)  # fills the bytecode cache
            rows = []
            for _ in range(args.rounds):
                rows.append((*io_floor(files, OUTPUTS[recipe], styles if recipe == "style" else ()),
                             *timed_build(recipe, build_args, os.path.join(work, recipe), env)))
            floor, _, built, _ = (float(np.median([r[i] for r in rows])) for i in range(4))
            ratio = float(np.median([b / f for f, _, b, _ in rows]))
            cpu_ratio = float(np.median([b / f for _, f, _, b in rows]))
            print(f"  {recipe:<9} floor {floor / samples * 1000:6.2f} ms/sample, build {built / samples * 1000:6.2f} "
                  f"ms/sample = {ratio:.2f}x the floor (target <= 2.0x); rounds: "
                  + ", ".join(f"{b / f:.2f}x" for f, _, b, _ in rows) + f"; CPU time {cpu_ratio:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
