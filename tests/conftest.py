import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRGEN = [sys.executable, "-m", "pairgen.cli"]


def run_cli(*args, cwd=None, timeout=300):
    """Run the real `pairgen` command; return the CompletedProcess."""
    return subprocess.run([*PAIRGEN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def write_rgb(path, rgb, **params):
    """Write an RGB image with OpenCV (BGR on disk)."""
    flags = []
    if path.endswith((".jpg", ".jpeg")):
        flags = [cv2.IMWRITE_JPEG_QUALITY, params.get("quality", 95)]
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]), flags)


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """A small folder of real textured photos (crops of scikit-image's embedded photos)."""
    folder = tmp_path_factory.mktemp("photos")
    sources = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(), "rocket": data.rocket()}
    for i, (name, image) in enumerate(sorted(sources.items())):
        ext = ".jpg" if i % 2 == 0 else ".png"
        write_rgb(str(folder / f"{name}{ext}"), image[:192, :256])
    sub = folder / "nested"
    sub.mkdir()
    write_rgb(str(sub / "astronaut_face.png"), data.astronaut()[40:200, 160:360])
    return folder


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second thread; on 2 shared cores a spinning pool slows them."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
