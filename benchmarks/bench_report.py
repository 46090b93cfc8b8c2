"""`pairgen inspect --html` at scale: a 100,000-sample report in bounded memory, its first page
opened in Chromium in under a second.

The dataset is the default `superres` recipe on the embedded photos with tiny crops (32 px HR,
8 px LR), so it is cheap to build yet has every drawn parameter of the real recipe (~35
parameters to histogram and filter). The report is written twice from scratch, at a small and at
the full size, each in a fresh process that prints its own peak memory (bounded memory: the two
peaks match), then once more over the finished report (everything kept). Then headless Chromium
(Debian's, `make browser`) opens index.html from disk, fresh profile per load, and reads how long
the first page took until every thumbnail of it had loaded (`pairgenReadyAt`, ms since the
navigation started); also the last page, and a filter over all samples.

    python benchmarks/bench_report.py                  # 100,000 samples (~10 min on 2 cores)
    python benchmarks/bench_report.py --samples 20000 --small 2000
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = """
import json, resource, sys, time
from pairgen.report import write_report
start = time.perf_counter()
result = write_report(sys.argv[1], sys.argv[2], page_size=int(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "pages_written": result.pages_written, "samples": result.samples, "shards_read": result.shards_read}))
"""


def run(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, **kwargs)
    if done.returncode:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{done.stderr}")
    return done.stdout


def build(out: str, samples: int) -> float:
    start = time.perf_counter()
    run([sys.executable, "-m", "pairgen.cli", "build", "superres", "--out", out, "--crop", "32", "--crops-per-image",
         str(-(-samples // 15)), "--limit", str(samples), "--shard-size", "2000", "--workers", "2", "--quiet"])
    return time.perf_counter() - start


def report(folder: str, out: str, page_size: int) -> dict:
    return json.loads(run([sys.executable, "-c", REPORT, folder, out, str(page_size)]).strip().splitlines()[-1])


def folder_size(folder: str) -> tuple[int, int]:
    files = total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            files += 1
            total += os.path.getsize(os.path.join(base, name))
    return files, total


def browser_loads(index: str, fragments: list[str], rounds: int) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    times: dict = {f: [] for f in fragments}
    for _ in range(rounds):
        for fragment in fragments:  # interleaved, a fresh browser and profile for every load
            profile = tempfile.mkdtemp(prefix="bench-chromium-")
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900", f"--user-data-dir={profile}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                driver.get("file://" + os.path.abspath(index) + fragment)
                deadline = time.monotonic() + 60
                while not driver.execute_script("return document.body.dataset.ready") and time.monotonic() < deadline:
                    time.sleep(0.01)
                times[fragment].append(driver.execute_script("return window.pairgenReadyAt"))
            finally:
                driver.quit()
                shutil.rmtree(profile, ignore_errors=True)
    return {f: statistics.median(t) for f, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=2_000, help="the smaller report the memory is compared with")
    parser.add_argument("--page-size", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5, help="browser loads per measure (median)")
    parser.add_argument("--work", help="keep the datasets and reports here (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench-report-")
    os.makedirs(work, exist_ok=True)
    try:
        rows = {}
        for n in (args.small, args.samples):
            data, site = os.path.join(work, f"shards{n}"), os.path.join(work, f"report{n}")
            shutil.rmtree(site, ignore_errors=True)
            built = build(data, n) if not os.path.exists(os.path.join(data, "dataset.json")) else float("nan")
            rows[n] = {"build_s": built, **report(data, site, args.page_size)}
            print(f"{n:>7} samples: build {built:.0f} s; report {rows[n]['seconds']:.1f} s "
                  f"({1000 * rows[n]['seconds'] / n:.2f} ms/sample), peak {rows[n]['peak_mib']:.0f} MiB", flush=True)
        big = rows[args.samples]
        site = os.path.join(work, f"report{args.samples}")
        again = report(os.path.join(work, f"shards{args.samples}"), site, args.page_size)
        files, size = folder_size(site)
        _, data_size = folder_size(os.path.join(work, f"shards{args.samples}"))
        pages = -(-args.samples // args.page_size)
        with open(os.path.join(site, "data", "report.js"), encoding="utf-8") as handle:
            params = json.loads(handle.read().split("=", 1)[1].strip().rstrip(";"))["params"]
        quality = next(p["index"] for p in params if p["name"] == "jpeg1.quality")
        frags = ["", f"#page={pages}", '#f=[{"p":%d,"min":null,"max":40}]' % quality]
        loads = browser_loads(os.path.join(site, "index.html"), frags, args.rounds)
        print()
        print(f"report of {args.samples} samples ({pages} pages of {args.page_size}), superres at 32/8 px:")
        print(f"  written in {big['seconds']:.0f} s = {1000 * big['seconds'] / args.samples:.2f} ms/sample "
              f"({args.small} samples: {1000 * rows[args.small]['seconds'] / args.small:.2f} ms/sample)")
        print(f"  peak memory {big['peak_mib']:.0f} MiB vs {rows[args.small]['peak_mib']:.0f} MiB at {args.small} samples: "
              f"ratio {big['peak_mib'] / rows[args.small]['peak_mib']:.2f} for {args.samples / args.small:.0f}x the samples")
        print(f"  rerun over the finished report: {again['seconds']:.1f} s, {again['pages_written']} pages written, "
              f"{again['shards_read']} shards read")
        print(f"  on disk: {size / 2**20:.0f} MiB in {files} files ({size / data_size:.2f}x the shards' {data_size / 2**20:.0f} MiB)")
        print(f"  Chromium, median of {args.rounds} fresh loads from file://, until every thumbnail of the page is in:")
        print(f"    first page {loads[frags[0]]:.0f} ms (target < 1000 ms); last page {loads[frags[1]]:.0f} ms; "
              f"filter over all {args.samples} samples (jpeg1.quality <= 40) {loads[frags[2]]:.0f} ms")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
