"""Shared set-up for the benchmarks: a folder of real photos made from the embedded ones."""
from __future__ import annotations

import os
import resource
import subprocess
import time

import cv2
import numpy as np


def photo_folder(folder: str, count: int = 48, side: int = 640) -> str:
    """Write ``count`` JPEG photos of side x side px (crops, flips of the large embedded photos)."""
    from skimage import data

    os.makedirs(folder, exist_ok=True)
    if len(os.listdir(folder)) >= count:
        return folder
    big = [data.retina(), data.hubble_deep_field(), cv2.resize(data.astronaut(), (900, 900), interpolation=cv2.INTER_CUBIC),
           cv2.resize(data.coffee(), (1000, 667), interpolation=cv2.INTER_CUBIC), cv2.resize(data.rocket(), (1000, 667))]
    rng = np.random.default_rng(0)  # benchmark fixture only, not pairgen output
    for i in range(count):
        image = big[i % len(big)]
        y = int(rng.integers(0, image.shape[0] - side + 1))
        x = int(rng.integers(0, image.shape[1] - side + 1))
        crop = image[y : y + side, x : x + side]
        if i // len(big) % 2:
            crop = crop[:, ::-1]
        cv2.imwrite(os.path.join(folder, f"photo{i:03d}.jpg"), np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return folder


def installed_env(work: str) -> dict:
    """The environment for timed ``pairgen build`` processes: one thread, and Python bytecode
    cached under ``work`` (a pip-installed package has its bytecode compiled; a session with
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile every pairgen module in every timed
    process). Run one untimed build first to fill the cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": os.path.join(work, "pycache"), "OMP_NUM_THREADS": "1",
            "OPENCV_FOR_THREADS_NUM": "1"}


def timed_process(command: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of running ``command`` to completion; CPU is the child's user + system
    time, which other jobs on shared cores disturb far less than the wall clock."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
