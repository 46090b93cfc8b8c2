"""Other tools' loaders read pairgen's rendered data: webdataset with pairgen's decoder (16-bit
ids intact), and BlenderProc's per-frame HDF5 layout read with h5py by a loader written from
BlenderProc's writer conventions (not pairgen's code), compared with the shards."""
from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import webdataset as wds

import pairgen
from pairgen.encoding import encode

from conftest import run_cli


def test_decoder_keeps_16_bit_ids_and_arrays(tmp_path):
    ids = np.array([[0, 1, 255], [256, 4097, 65535]], np.uint16)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    flow = np.random.default_rng(0).normal(size=(2, 3, 2)).astype(np.float32)
    url = str(tmp_path / "ids-000000.tar")
    with wds.TarWriter(url) as sink:
        sink.write({"__key__": "000000000", "seg0.png": encode("seg0.png", ids), "img0.png": encode("img0.png", rgb),
                    "flow.npy": encode("flow.npy", flow), "json": encode("json", {"frames": [1, 2]}), "txt": b"note"})
    (sample,) = list(wds.WebDataset(url, shardshuffle=False).decode(pairgen.decoders()))
    assert sample["seg0.png"].dtype == np.uint16 and np.array_equal(sample["seg0.png"], ids)
    assert sample["img0.png"].dtype == np.uint8 and np.array_equal(sample["img0.png"], rgb)  # RGB order
    assert sample["flow.npy"].dtype == np.float32 and np.array_equal(sample["flow.npy"], flow)
    assert sample["json"] == {"frames": [1, 2]} and sample["txt"] == "note"  # the rest: webdataset's handlers
    (stock,) = list(wds.WebDataset(url, shardshuffle=False).decode("rgb8"))
    assert not np.array_equal(np.asarray(stock["seg0.png"])[..., 0].astype(np.uint16), ids)  # what the decoder is for


def _shard_samples(folder):
    """The shards read with webdataset and OpenCV only (PNGs as stored, RGB order)."""
    card = json.loads((folder / "dataset.json").read_text())

    def png(key, data):
        if not key.endswith("png"):
            return None
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        return image[:, :, ::-1] if image.ndim == 3 else image

    urls = [str(folder / row["file"]) for row in card["shards"]]
    return card, list(wds.WebDataset(urls, shardshuffle=False).decode(png))


def _load_blenderproc(path):
    """A BlenderProc user's loader: every dataset of one frame file; json attribute maps parsed."""
    with h5py.File(path, "r") as handle:
        data = {key: handle[key][()] for key in handle}
    data["instance_attribute_maps"] = json.loads(data["instance_attribute_maps"].decode())
    return data


def test_blenderproc_export_of_flow(tmp_path):
    out = tmp_path / "flow"
    built = run_cli("build", "flow", "--scenes", "1", "--frames", "1-3", "--resolution", "32x24", "--samples", "1",
                    "--workers", "1", "--out", out)
    assert built.returncode == 0, built.stderr
    card, samples = _shard_samples(out)
    exported = tmp_path / "bp"
    result = run_cli("export", out, "--out", exported, "--to", "blenderproc")
    assert result.returncode == 0, result.stderr
    folder = exported / "scene_000000"
    assert json.loads((folder / "frames.json").read_text()) == {"0": 1, "1": 2, "2": 3}
    frames = {i: _load_blenderproc(folder / f"{i}.hdf5") for i in range(3)}
    first, second = sorted(samples, key=lambda s: s["json"]["frames"][0])  # pairs (1, 2) and (2, 3)
    assert set(frames[1]) >= {"colors", "depth", "distance", "forward_flow", "backward_flow", "instance_segmaps",
                              "instance_attribute_maps", "category_id_segmaps"}
    assert "backward_flow" not in frames[0] and "forward_flow" not in frames[2]
    np.testing.assert_array_equal(frames[0]["colors"], first["img0.png"])
    np.testing.assert_array_equal(frames[1]["colors"], second["img0.png"])
    np.testing.assert_array_equal(frames[1]["colors"], first["img1.png"])
    np.testing.assert_array_equal(frames[0]["forward_flow"], first["flow.npy"])  # t -> t+1 at frame t
    np.testing.assert_array_equal(frames[1]["forward_flow"], second["flow.npy"])
    np.testing.assert_array_equal(frames[1]["backward_flow"], first["flow_bwd.npy"])  # t -> t-1 at frame t
    np.testing.assert_array_equal(frames[2]["backward_flow"], second["flow_bwd.npy"])
    assert frames[0]["forward_flow"].dtype == np.float32 and frames[0]["forward_flow"].shape == (24, 32, 2)
    np.testing.assert_array_equal(frames[0]["depth"], first["depth0.npy"])  # closed room: every pixel has depth
    # distance: the ray length through each pixel centre, from BlenderProc's depth and the camera
    K = frames[0]["cam_K"]
    x, y = np.meshgrid(np.arange(32) + 0.5, np.arange(24) + 0.5)
    ray = np.sqrt(((x - K[0, 2]) / K[0, 0]) ** 2 + ((y - K[1, 2]) / K[1, 1]) ** 2 + 1)
    np.testing.assert_allclose(frames[0]["distance"], frames[0]["depth"] * ray, rtol=1e-6)
    assert frames[0]["instance_segmaps"].dtype == np.uint8  # BlenderProc's smallest dtype for the ids
    np.testing.assert_array_equal(frames[0]["instance_segmaps"], first["seg0.png"])
    np.testing.assert_array_equal(frames[2]["category_id_segmaps"], second["cls1.png"])
    names = {entry["idx"]: entry["name"] for entry in frames[0]["instance_attribute_maps"]}
    assert names[0] == "background" and all(names[int(k)] == v for k, v in first["json"]["objects"].items())
    classes = {entry["idx"]: entry["category_id"] for entry in frames[0]["instance_attribute_maps"]}
    for idx in np.unique(frames[0]["instance_segmaps"]):
        assert (frames[0]["category_id_segmaps"][frames[0]["instance_segmaps"] == idx] == classes[int(idx)]).all()
    # BlenderProc's cam2world is Blender's camera convention (looks down -z, y up)
    c2w_cv = np.array(first["json"]["cameras"][0]["camera_to_world"])
    np.testing.assert_allclose(frames[0]["cam2world"], c2w_cv @ np.diag([1.0, -1.0, -1.0, 1.0]))
    again = run_cli("export", out, "--out", exported, "--to", "blenderproc")
    assert again.returncode == 1 and "already holds a BlenderProc export" in again.stderr


def test_blenderproc_export_of_depth_with_normals(tmp_path):
    out = tmp_path / "depth"
    built = run_cli("build", "depth", "--scenes", "1", "--resolution", "32x24", "--samples", "1", "--workers", "1",
                    "--normals", "--distance", "--out", out)
    assert built.returncode == 0, built.stderr
    _, (sample,) = _shard_samples(out)
    exported = tmp_path / "bp"
    assert run_cli("export", out, "--out", exported, "--to", "blenderproc,pfm").returncode == 0
    frame = _load_blenderproc(exported / "scene_000000" / "0.hdf5")
    np.testing.assert_array_equal(frame["depth"], sample["depth.npy"])
    np.testing.assert_array_equal(frame["distance"], sample["distance.npy"])
    # BlenderProc normals: (n + 1) / 2 with n in Blender's camera frame (x right, y up, z to the viewer)
    n_blender = frame["normals"] * 2 - 1
    np.testing.assert_allclose(n_blender * np.array([1, -1, -1]), sample["normal.npy"], atol=1e-6)
    assert (n_blender[..., 2] > 0).mean() > 0.8  # most surfaces seen face the camera: +z in Blender's frame
    assert (exported / f"{sample['__key__']}_distance.pfm").exists()


def test_kitti_export_summary_counts_out_of_range_pixels(tmp_path):
    from pairgen.shards import write_json_atomic

    out = tmp_path / "fake"
    out.mkdir()
    flow = np.zeros((4, 5, 2), np.float32)
    flow[0, :3, 0] = 700.0  # 3 pixels beyond KITTI's range
    sample = {"__key__": "000000000", "flow.npy": encode("flow.npy", flow), "json": encode("json", {})}
    with wds.TarWriter(str(out / "flow-000000.tar")) as sink:
        sink.write(sample)
    write_json_atomic(str(out / "dataset.json"), {
        "task": "flow", "shards": [{"file": "flow-000000.tar"}],
        "fields": {"flow.npy": {"role": "target", "view": "flow"}, "json": {"role": "meta"}}})
    result = run_cli("export", out, "--out", tmp_path / "x", "--to", "kitti")
    assert result.returncode == 0, result.stderr
    assert "KITTI: 3 pixels stored invalid" in result.stdout and "000000000_flow_kitti.png: 3 pixels" in result.stdout
    summary = json.loads((tmp_path / "x" / "export_summary.json").read_text())
    assert summary["kitti_invalid_for_range"] == {"pixels": 3, "per_file": {"000000000_flow_kitti.png": 3}}
