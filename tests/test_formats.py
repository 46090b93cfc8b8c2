"""Middlebury .flo, KITTI flow PNG and PFM: byte layouts checked against the published specs."""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from pairgen import formats
from pairgen.errors import PairgenError


def _flow(h=5, w=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-40, 40, size=(h, w, 2)).astype(np.float32)


def test_flo_byte_layout(tmp_path):
    flow = _flow()
    path = str(tmp_path / "a.flo")
    formats.write_flo(path, flow)
    data = open(path, "rb").read()
    assert data[:4] == b"PIEH"  # float32 202021.25, little-endian
    assert struct.unpack("<f", data[:4])[0] == 202021.25
    assert struct.unpack("<ii", data[4:12]) == (7, 5)  # width, height
    assert len(data) == 12 + 5 * 7 * 2 * 4
    # u, v interleaved, row-major, top row first
    assert struct.unpack("<ff", data[12:20]) == (float(flow[0, 0, 0]), float(flow[0, 0, 1]))
    assert struct.unpack("<f", data[12 + 8 * 7: 16 + 8 * 7])[0] == float(flow[1, 0, 0])
    np.testing.assert_array_equal(formats.read_flo(path), flow)


def test_flo_unknown_pixels(tmp_path):
    flow = _flow()
    valid = np.ones(flow.shape[:2], bool)
    valid[2, 3] = False
    flow[0, 0, 1] = np.nan
    path = str(tmp_path / "b.flo")
    formats.write_flo(path, flow, valid)
    raw = np.frombuffer(open(path, "rb").read()[12:], "<f4").reshape(5, 7, 2)
    assert np.all(np.abs(raw[2, 3]) > 1e9) and np.all(np.abs(raw[0, 0]) > 1e9)
    back = formats.read_flo(path)
    assert np.isnan(back[2, 3]).all() and np.isnan(back[0, 0]).all()
    assert np.isfinite(back[1:, :][np.arange(4) != 1]).all()


def test_flo_rejects_other_files(tmp_path):
    path = tmp_path / "c.flo"
    path.write_bytes(b"not a flow file at all")
    with pytest.raises(PairgenError, match="PIEH"):
        formats.read_flo(str(path))


def test_kitti_flow_encoding(tmp_path):
    flow = _flow()
    flow[0, 0] = (1.0, -2.5)
    valid = np.ones(flow.shape[:2], bool)
    valid[4, 6] = False
    path = str(tmp_path / "k.png")
    formats.write_kitti_flow(path, flow, valid)
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)  # OpenCV: B, G, R = valid, v, u
    assert raw.dtype == np.uint16 and raw.shape == (5, 7, 3)
    assert raw[0, 0, 2] == 2**15 + 64 and raw[0, 0, 1] == 2**15 - 160 and raw[0, 0, 0] == 1
    assert raw[4, 6, 0] == 0
    back, back_valid = formats.read_kitti_flow(path)
    np.testing.assert_array_equal(back_valid, valid)
    assert np.abs(back - flow)[valid].max() <= 0.5 / 64 + 1e-6  # 1/64 px quantisation


def test_kitti_flow_out_of_range_is_invalid_not_clipped(tmp_path):
    flow = np.array([[[1000.0, -1000.0], [np.nan, 0.0], [511.9, -512.0], [512.0, 3.0], [-512.01, 0.0]]], np.float32)
    encoded = formats.kitti_flow_array(flow)
    assert list(encoded[0, :, 2]) == [0, 0, 1, 0, 0]  # only the pixel that fits is valid
    assert tuple(encoded[0, 0, :2]) == (2**15, 2**15) and encoded[0, 2, 1] == 0  # -512 px is the lowest code
    path = str(tmp_path / "range.png")
    assert formats.write_kitti_flow(path, flow) == 4  # out of range or not finite
    noc = np.array([[True, True, True, True, False]])
    assert formats.write_kitti_flow(path, flow, valid=noc) == 3  # pixels already invalid are not counted
    back, valid = formats.read_kitti_flow(path)
    assert list(valid[0]) == [False, False, True, False, False] and back[0, 2, 0] == pytest.approx(511.90625)


def test_pfm_layout_single_channel(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = str(tmp_path / "d.pfm")
    formats.write_pfm(path, depth)
    data = open(path, "rb").read()
    assert data.startswith(b"Pf\n4 3\n-1.0\n")
    body = data[len(b"Pf\n4 3\n-1.0\n"):]
    # rows bottom-to-top: the first stored row is the image's last row
    np.testing.assert_array_equal(np.frombuffer(body[:16], "<f4"), depth[2])
    np.testing.assert_array_equal(formats.read_pfm(path), depth)


def test_pfm_flow_gets_third_channel_and_big_endian_reads(tmp_path):
    flow = _flow(3, 4)
    path = str(tmp_path / "f.pfm")
    formats.write_pfm(path, flow)
    back = formats.read_pfm(path)
    assert back.shape == (3, 4, 3)
    np.testing.assert_array_equal(back[..., :2], flow)
    assert not back[..., 2].any()
    big = tmp_path / "big.pfm"
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    big.write_bytes(b"Pf\n3 2\n1.0\n" + image[::-1].astype(">f4").tobytes())
    np.testing.assert_array_equal(formats.read_pfm(str(big)), image)


def test_pfm_rejects_truncated(tmp_path):
    path = tmp_path / "t.pfm"
    path.write_bytes(b"Pf\n3 2\n-1.0\n" + b"\0" * 8)
    with pytest.raises(PairgenError, match="3x2"):
        formats.read_pfm(str(path))


def test_export_sample_writes_every_format(tmp_path):
    flow = _flow()
    occ = np.zeros(flow.shape[:2], np.uint8)
    occ[1, 1] = 255
    fields = {"flow.npy": flow, "flow_bwd.npy": -flow, "occ.png": occ,
              "depth0.npy": np.ones(flow.shape[:2], np.float32), "img0.png": np.zeros((5, 7, 3), np.uint8)}
    specs = {"flow.npy": {"role": "target", "view": "flow"}, "flow_bwd.npy": {"role": "aux", "view": "flow"},
             "occ.png": {"role": "aux", "view": "occlusion"}, "depth0.npy": {"role": "aux", "view": "depth"},
             "img0.png": {"role": "input", "view": "rgb"}}
    flow[0, 0] = (600.0, 0.0)  # beyond KITTI's range
    written = formats.export_sample(fields, str(tmp_path), "000000001", specs=specs)
    names = sorted(p.split("/")[-1] for p in written)
    assert written[str(tmp_path / "000000001_flow_kitti.png")] == 1 and sum(written.values()) == 2  # flow_kitti and flow_noc_kitti
    assert names == sorted([
        "000000001_flow.flo", "000000001_flow_kitti.png", "000000001_flow_noc_kitti.png", "000000001_flow.pfm",
        "000000001_flow_bwd.flo", "000000001_flow_bwd_kitti.png", "000000001_flow_bwd.pfm", "000000001_depth0.pfm",
    ])
    _, valid = formats.read_kitti_flow(str(tmp_path / "000000001_flow_noc_kitti.png"))
    assert not valid[1, 1] and not valid[0, 0] and valid.sum() == valid.size - 2
    with pytest.raises(PairgenError, match="unknown export format"):
        formats.export_sample(fields, str(tmp_path), "1", formats=("exr",))
