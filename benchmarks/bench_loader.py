"""Trainer data loader throughput vs bare PNG decoding of the same shards vs model speed.

    .venv/bin/python benchmarks/bench_loader.py                 # builds superres shards from the embedded photos
    .venv/bin/python benchmarks/bench_loader.py SHARDS --workers 0 1 2

All in one run, on the same shards:
* bare decode: one process reads the tars and decodes the input and target PNGs (cv2), nothing else;
* loader: train/data.py's TrainStream through a DataLoader (decode, bicubic LR -> HR, crop,
  batching; uint8 batches, as the trainer receives them) with 0, 1, 2 worker processes;
  samples/s and CPU ms per sample (main process plus workers, from /proc), best of
  interleaved rounds, because other processes may share the CPU;
* model: forward + backward + Adam step of the U-Net on batches of the same size (the pix2pix
  default and a small CPU configuration).
The issue's bar: loader >= 0.8x bare decode, and loader faster than the model consumes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from train.data import Prepare, TrainStream, channel_count, decode_field, first_sample, load_card  # noqa: E402
from train.models import Generator  # noqa: E402


def _worker_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the given processes, from /proc."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def bare_decode(paths: list[str], fields: set[str]) -> tuple[float, float]:
    """(samples/s, CPU ms/sample) of reading the tars and cv2.imdecode of every wanted PNG, one process."""
    wall, cpu, decoded = time.perf_counter(), time.process_time(), 0
    for path in paths:
        with tarfile.open(path) as tar:
            for member in tar:
                field = member.name.partition(".")[2]
                if field in fields:
                    data = tar.extractfile(member).read()
                    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
                    assert image is not None
                    decoded += 1
    n = decoded / len(fields)
    return n / (time.perf_counter() - wall), (time.process_time() - cpu) / n * 1e3


def loader_speed(paths, prepare, batch_size: int, workers: int, samples: int) -> tuple[float, float]:
    """(samples/s, CPU ms/sample over the main process and its workers) of TrainStream batches."""
    stream = TrainStream(paths, prepare, batch_size=batch_size, seed=0, shuffle_buffer=64)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up and buffer fill are not throughput
    pids = [w.pid for w in getattr(it, "_workers", [])]
    wall, cpu, worker_cpu, seen = time.perf_counter(), time.process_time(), _worker_cpu(pids), 0
    while seen < samples:
        inputs, _ = next(it)
        seen += inputs[0].shape[0]
    rate = seen / (time.perf_counter() - wall)
    cpu_ms = (time.process_time() - cpu + _worker_cpu(pids) - worker_cpu) / seen * 1e3
    del it
    return rate, cpu_ms


def model_speed(in_ch: int, out_ch: int, crop: int, batch_size: int, depth: int, width: int, steps: int) -> float:
    torch.manual_seed(0)
    model = Generator(in_ch, out_ch, depth=depth, width=width, output="residual")
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x = torch.rand(batch_size, in_ch, crop, crop) * 2 - 1
    y = torch.rand(batch_size, out_ch, crop, crop) * 2 - 1

    def step():
        opt.zero_grad()
        loss = (model(x) - y).abs().mean()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", help="shard folder (default: build superres shards from the embedded photos)")
    p.add_argument("--crops-per-image", type=int, default=12, help="when building: samples per embedded photo")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--samples", type=int, default=320, help="samples timed per loader configuration and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each configuration's best is kept")
    args = p.parse_args()

    tmp = None
    folder = args.folder
    if folder is None:
        from pairgen.api import build

        tmp = tempfile.TemporaryDirectory()
        folder = str(Path(tmp.name) / "shards")
        t0 = time.perf_counter()
        build("superres", src=[], out=folder, crop=args.crop, crops_per_image=args.crops_per_image, seed=0,
              workers=2, shard_size=64, progress=False)
        print(f"built {folder} in {time.perf_counter() - t0:.1f} s")
    card = load_card(folder)
    paths = [str(s.path) for s in card.shards]
    fields = set(card.inputs + card.targets)
    sizes = {n: card.fields[n].get("shape") for n in fields}
    print(f"shards: {len(paths)} tars, {sum(s.samples for s in card.shards)} samples, fields {sizes}; "
          f"torch threads {torch.get_num_threads()}")

    bare_decode(paths, fields)  # warm the page cache
    # Other processes may share the CPU: interleave the configurations over several rounds and
    # keep each one's best round; CPU time per sample is the contention-proof comparison.
    best: dict = {}
    prepare = Prepare(card.inputs, card.targets, crop=args.crop)
    for _ in range(args.rounds):
        results = {"bare": bare_decode(paths * max(1, args.samples // max(1, len(paths) * 64)), fields)}
        for workers in args.workers:
            results[workers] = loader_speed(paths, prepare, args.batch_size, workers, args.samples)
        for name, (rate, cpu_ms) in results.items():
            old = best.get(name, (0.0, float("inf")))
            best[name] = (max(old[0], rate), min(old[1], cpu_ms))
    bare, bare_cpu = best["bare"]
    print(f"bare PNG decode, 1 process            : {bare:7.1f} samples/s, {bare_cpu:5.2f} CPU ms/sample")
    for workers in args.workers:
        rate, cpu_ms = best[workers]
        print(f"loader, {workers} worker(s), batch {args.batch_size:3d}      : {rate:7.1f} samples/s, {cpu_ms:5.2f} CPU ms/sample"
              f"  ({rate / bare:.2f}x bare wall, {bare_cpu / cpu_ms:.2f}x bare per CPU second)")

    sample = first_sample(card)
    in_ch = sum(channel_count(decode_field(n, sample[n], "")) for n in card.inputs)
    out_ch = sum(channel_count(decode_field(n, sample[n], "")) for n in card.targets)
    for depth, width, steps in ((8, 64, 2), (6, 32, 3), (4, 16, 5)):
        rate = model_speed(in_ch, out_ch, args.crop, args.batch_size, depth, width, steps)
        print(f"U-Net depth {depth} width {width:2d}, train step     : {rate:7.1f} samples/s "
              f"(crop {args.crop}, batch {args.batch_size})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
