"""The rendering commands as a user runs them: render-flow / render-depth on a .blend,
build flow with procedural scenes, export, inspect, and their errors."""
import json

import cv2
import numpy as np
import pytest
import webdataset as wds

from pairgen.formats import read_flo, read_kitti_flow, read_pfm
from renderers.worker import RenderWorker

from conftest import run_cli
from test_render import MAKE_BLEND


@pytest.fixture(scope="module")
def blends(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_blends")
    worker = RenderWorker(recycle_every=1000, retries=1, timeout=300)
    try:
        files = {name: worker.call("script", code=MAKE_BLEND, path=str(folder / f"{name}.blend"), with_camera=cam, marker="")
                 for name, cam in (("plain", True), ("nocam", False))}
    finally:
        worker.close()
    return files


def samples_of(folder):
    card = json.loads((folder / "dataset.json").read_text())
    urls = [str(folder / row["file"]) for row in card["shards"]]
    # PNGs decoded as stored (16-bit ids stay 16-bit); .npy and .json by webdataset's own handlers
    png = lambda key, data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if key.endswith("png") else None
    return card, list(wds.WebDataset(urls, shardshuffle=False).decode(png))


def test_render_flow_export_and_inspect(blends, tmp_path):
    out = tmp_path / "flow"
    result = run_cli("render-flow", blends["plain"], "--out", out, "--samples", "1", "--workers", "1")
    assert result.returncode == 0, result.stderr
    card, samples = samples_of(out)
    assert card["task"] == "flow" and card["counts"]["samples"] == 3  # frames 1-4: pairs (1,2) (2,3) (3,4)
    assert "background_flow" in card["conventions"] and card["fields"]["flow.npy"]["role"] == "target"
    # the sheet's columns read per frame pair (the card's fields are sorted by name: cls0, cls1, depth0, ...)
    assert card["preview"]["order"] == ["img0.png", "img1.png", "flow.npy", "occ.png", "flow_bwd.npy", "depth0.npy",
                                        "depth1.npy", "seg0.png", "seg1.png", "cls0.png", "cls1.png"]
    for sample in samples:
        assert sample["flow.npy"].shape == (30, 40, 2) and sample["flow.npy"].dtype == np.float32
        assert sample["img0.png"].shape == (30, 40, 3) and sample["seg0.png"].dtype == np.uint16
        assert sample["json"]["frames"][1] - sample["json"]["frames"][0] == 1
        assert sample["json"]["render"]["clamp_indirect"] == 10.0  # a .blend keeps its own clamp (factory 10)

    exported = tmp_path / "exported"
    result = run_cli("export", out, "--out", exported)
    assert result.returncode == 0, result.stderr
    first = samples[0]
    key = first["__key__"]
    np.testing.assert_array_equal(read_flo(str(exported / f"{key}_flow.flo")), first["flow.npy"])
    kitti, valid = read_kitti_flow(str(exported / f"{key}_flow_kitti.png"))
    assert np.abs(kitti - first["flow.npy"]).max() <= 1 / 64 and valid.all()
    np.testing.assert_array_equal(read_pfm(str(exported / f"{key}_depth0.pfm")), first["depth0.npy"])

    result = run_cli("inspect", out)
    assert result.returncode == 0, result.stderr
    assert "flow_magnitude_mean_px" in result.stdout and "occluded_fraction" in result.stdout
    assert (out / "preview" / "contact_sheet.png").exists() and not (out / "preview" / "flow_wheel.png").exists()
    written = [line.split(": ", 1)[1].split(" (")[0] for line in result.stdout.splitlines()
               if line.startswith("    contact sheet:") or line.startswith("    parameter histograms:")]
    assert sorted(written) == sorted(str(p) for p in (out / "preview").iterdir())  # every file written is printed
    assert "flow (rim = tile's max)" in result.stdout


def test_render_depth_with_normals_and_step(blends, tmp_path):
    out = tmp_path / "depth"
    result = run_cli("render-depth", blends["plain"], "--out", out, "--samples", "1", "--workers", "1", "--normals",
                     "--step", "3")
    assert result.returncode == 0, result.stderr
    card, samples = samples_of(out)
    assert card["task"] == "depth" and [s["json"]["frame"] if "frame" in s["json"] else s["json"]["frames"][0] for s in samples] == [1, 4]
    for sample in samples:
        assert sample["depth.npy"].shape == (30, 40) and sample["normal.npy"].shape == (30, 40, 3)
        surface = sample["depth.npy"] > 0
        assert surface.any() and np.allclose(np.linalg.norm(sample["normal.npy"][surface], axis=-1), 1, atol=1e-3)


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["render-flow", "{dir}/missing.blend"], 1, "missing.blend"),
        (["render-flow", "{nocam}"], 1, "camera"),
        (["render-flow", "{plain}", "--frames", "3-9"], 1, "frame"),
        (["render-flow", "{plain}", "--frames", "abc"], 2, "--frames must look like A-B"),
        (["render-flow", "{plain}", "--normals"], 2, "No such option '--normals'"),
        (["build", "flow", "--normals", "--scenes", "1"], 2, "--normals is not an option of recipe 'flow' (task flow; its options: --blend, --scenes"),
        (["render-flow", "{plain}", "--resolution", "64"], 2, "--resolution must look like"),
        (["build", "superres", "--samples", "4"], 2, "--samples is not an option of recipe 'superres' (task superres; its options: --crop, --crops-per-image, --scale)"),
        (["build", "flow", "--scenes", "1", "--blend", "{plain}"], 2, "--scenes is for procedural scenes"),
    ],
)
def test_render_errors(blends, tmp_path, args, status, message):
    args = [a.format(dir=tmp_path, nocam=blends["nocam"], plain=blends["plain"]) for a in args]
    result = run_cli(*args, "--out", tmp_path / "out")
    assert result.returncode == status, (result.returncode, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_build_flow_procedural_is_identical_across_workers(tmp_path):
    common = ["build", "flow", "--scenes", "3", "--resolution", "32x32", "--samples", "1", "--shard-size", "1"]
    one = run_cli(*common, "--out", tmp_path / "w1", "--workers", "1")
    two = run_cli(*common, "--out", tmp_path / "w2", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    tars = lambda d: {p.name: p.read_bytes() for p in sorted(d.glob("*.tar"))}
    assert len(tars(tmp_path / "w1")) == 3 and tars(tmp_path / "w1") == tars(tmp_path / "w2")
