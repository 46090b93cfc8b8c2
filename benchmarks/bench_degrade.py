"""Degradation alone, one core: 512x512 HR crops to x4 LR, per recipe (ms per pair).

Targets (issue 15): median over interleaved rounds, the default recipe at most 8 ms per pair and
``superres-bsrgan`` at most 6 ms. For scale: the public BSRGAN numpy code takes ~116 ms and the
public Real-ESRGAN pipeline ~1.7 s per pair on this machine class (figures from
shared/notes/degradations.md, measured there).
"""
from __future__ import annotations

import time

import numpy as np

from pairgen import ops
from pairgen.api import make_task
from pairgen.executors import prepare_worker
from pairgen.steps import run_steps
from pairgen.rng import sample_rng


def main(pairs: int = 40, rounds: int = 7) -> None:
    prepare_worker()  # one core, as a build worker runs
    from skimage import data

    photos = [ops.to_float(p) for p in (data.astronaut(), data.retina()[300:812, 300:812], data.brick(), data.gravel())]
    photos = [np.ascontiguousarray(np.dstack([p] * 3) if p.ndim == 2 else p[:, :, :3]) for p in photos]
    recipes = ("superres", "superres-bsrgan", "superres-bicubic")
    tasks = {name: make_task(name, crop=512)[1] for name in recipes}
    ctx = ops.Context((512, 512), 4)
    # Rounds interleave the recipes; this machine's speed drifts (shared cores), so the median
    # round is the figure and the best round shows the spread.
    # CPU time is printed too: on a host whose cores are shared it stays put while wall time
    # swings with the other jobs.
    results: dict[str, list] = {name: [] for name in recipes}
    cpu: dict[str, list] = {name: [] for name in recipes}
    for _ in range(rounds):
        for name in recipes:
            started, started_cpu = time.perf_counter(), time.process_time()
            for i in range(pairs):
                run_steps(tasks[name].degrade_steps, photos[i % len(photos)], sample_rng(0, f"bench{i}"), ctx, [])
            results[name].append((time.perf_counter() - started) / pairs * 1000)
            cpu[name].append((time.process_time() - started_cpu) / pairs * 1000)
    print(f"degradation alone, 512x512 HR -> x4 LR, one core, {rounds} rounds of {pairs} pairs per recipe")
    for name in recipes:
        print(f"  {name:<18} median {np.median(results[name]):6.2f} ms/pair (best round {min(results[name]):6.2f}; "
              f"CPU time median {np.median(cpu[name]):6.2f})")
    # Where the default recipe's time goes, step by step (same draws, timed apply only).
    _, task = make_task("superres", crop=512)
    timings: dict[str, list] = {}
    samples = 60
    for i in range(samples):
        record: list = []
        run_steps(task.degrade_steps, photos[i % len(photos)], sample_rng(0, f"bench{i}"), ops.Context((512, 512), 4), record)
        image = photos[i % len(photos)]
        for entry in record:
            op = ops.REGISTRY[entry["op"]]
            params = op.params_from_json(entry["params"])
            t = time.process_time()
            image = op.apply(image, params)
            timings.setdefault(entry["label"], []).append((time.process_time() - t) * 1000)
    print("  default recipe, CPU ms per pair by step (mean over pairs, steps that did not run count 0): "
          + ", ".join(f"{k} {np.sum(v) / samples:.2f}" for k, v in sorted(timings.items(), key=lambda kv: -sum(kv[1]))))


if __name__ == "__main__":
    main()
