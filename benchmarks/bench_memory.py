"""Peak memory of one worker cutting a 256-px crop from a ~99-megapixel JPEG, against the photo's
decoded size (H x W x 3 bytes). Target: at most about 1.5x the decoded size.

Measured as the peak resident set (ru_maxrss) of a one-worker build of that photo minus the peak
of the same build of a 1-megapixel photo (the interpreter, libraries and the build itself), and
for reference the same figure for the plain library calls: cv2.imdecode of the file, and Pillow's
Image.open + np.asarray.

    python benchmarks/bench_memory.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WIDTH, HEIGHT = 12160, 8140  # 98.98 megapixels, a large-sensor photo


def make_photo(path: str, width: int, height: int) -> None:
    """A textured photo-like JPEG (smooth gradients + noise; compresses like a photo)."""
    import cv2

    rng = np.random.default_rng(0)  # benchmark fixture only
    small = rng.integers(0, 256, (height // 64 + 1, width // 64 + 1, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.integers(0, 16, image.shape, dtype=np.uint8)
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of a child process, in MB (ru_maxrss of a fresh wait4)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024.0


def build_command(photo: str, out: str) -> list[str]:
    return [sys.executable, "-m", "pairgen.cli", "build", "superres-bicubic", "--src", photo, "--out", out, "--crop", "256",
            "--workers", "1", "--quiet", "--max-pixels", str(200_000_000), "--overwrite"]


def library_command(photo: str, how: str) -> list[str]:
    code = {
        "cv2.imdecode": "import cv2, numpy as np; a = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR)",
        "Pillow": "from PIL import Image; import numpy as np; Image.MAX_IMAGE_PIXELS = None; a = np.asarray(Image.open(p).convert('RGB'))",
        "imports only": "import cv2, numpy as np; from PIL import Image",
    }[how]
    return [sys.executable, "-c", f"import sys; p = sys.argv[1]; {code}", photo]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pairgen-bench-memory-") as tmp:
        big, small = os.path.join(tmp, "big.jpg"), os.path.join(tmp, "small.jpg")
        # Made in a child: a forked child starts with its parent's resident size in ru_maxrss,
        # so this process must stay small.
        for path, (w, h) in ((big, (WIDTH, HEIGHT)), (small, (1216, 814))):
            subprocess.run([sys.executable, "-c", f"import bench_memory as b; b.make_photo({path!r}, {w}, {h})"], cwd=HERE,
                           check=True)
        decoded_mb = WIDTH * HEIGHT * 3 / 1e6 * (1e6 / 2**20)
        file_mb = os.path.getsize(big) / 2**20
        print(f"photo: {WIDTH}x{HEIGHT} JPEG, {file_mb:.1f} MB on disk, {decoded_mb:.0f} MB decoded (H x W x 3)")
        rounds = 3
        base = np.median([peak_rss_mb(build_command(small, os.path.join(tmp, "o"))) for _ in range(rounds)])
        peak = np.median([peak_rss_mb(build_command(big, os.path.join(tmp, "o"))) for _ in range(rounds)])
        imports = np.median([peak_rss_mb(library_command(small, "imports only")) for _ in range(rounds)])
        print(f"pairgen build, 1 worker: peak {peak:.0f} MB, {peak - base:.0f} MB above the same build of a 1-MP photo "
              f"= {(peak - base) / decoded_mb:.2f}x the decoded size (median of {rounds})")
        for how in ("cv2.imdecode", "Pillow"):
            lib = np.median([peak_rss_mb(library_command(big, how)) for _ in range(rounds)])
            print(f"plain {how}: {lib - imports:.0f} MB above the imports = {(lib - imports) / decoded_mb:.2f}x the decoded size")


if __name__ == "__main__":
    main()
