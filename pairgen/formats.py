"""Files that existing flow and depth training code reads: Middlebury .flo, KITTI flow PNG, PFM.

Byte layouts (shared/notes/degradations.md):

* Middlebury ``.flo``: float32 202021.25 (the bytes "PIEH"), int32 width, int32 height, then
  H*W*2 float32 (u, v interleaved, row-major, top row first), all little-endian; a component
  with magnitude above 1e9 means unknown.
* KITTI flow PNG: 16-bit, 3 channels (u, v, valid) in R, G, B order; u = (value - 2^15) / 64
  pixels; valid is 1 or 0 (invalid pixels also store 0 flow). OpenCV reads and writes BGR, so
  the channels are reversed on disk access through it.
* PFM: a text header "PF" (3 channels) or "Pf" (1 channel), newline, "W H", newline, the scale
  (negative = little-endian), newline, then float32 rows stored bottom-to-top.

Flow is (H, W, 2) float32 (u = dx right, v = dy down) in pixels, as in pairgen's samples.
"""
from __future__ import annotations

import os
import re

import numpy as np

from .errors import PairgenError
from .shards import write_bytes_atomic

FLO_MAGIC = 202021.25
FLO_UNKNOWN = 1e10  # written for invalid pixels; readers treat |value| > 1e9 as unknown
KITTI_SCALE = 64.0
KITTI_OFFSET = 2.0**15


def _check_flow(flow: np.ndarray, what: str) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{what}: flow must be (H, W, 2), got shape {flow.shape}")
    return flow.astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- Middlebury .flo


def flo_bytes(flow: np.ndarray, valid: np.ndarray | None = None) -> bytes:
    """The .flo file of ``flow``; pixels where ``valid`` is False (or not finite) become unknown."""
    flow = _check_flow(flow, "flo").copy()
    bad = ~np.isfinite(flow).all(axis=2)
    if valid is not None:
        bad |= ~np.asarray(valid, dtype=bool)
    flow[bad] = FLO_UNKNOWN
    h, w = flow.shape[:2]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    return header + np.ascontiguousarray(flow, dtype="<f4").tobytes()


def write_flo(path: str, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    write_bytes_atomic(path, flo_bytes(flow, valid))


def read_flo(path: str) -> np.ndarray:
    """(H, W, 2) float32; unknown pixels (|value| > 1e9) are returned as NaN."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 12 or np.frombuffer(data[:4], "<f4")[0] != np.float32(FLO_MAGIC):
        raise PairgenError(f"{path}: not a Middlebury .flo file (no PIEH magic)")
    w, h = (int(v) for v in np.frombuffer(data[4:12], "<i4"))
    if w <= 0 or h <= 0 or len(data) != 12 + w * h * 8:
        raise PairgenError(f"{path}: .flo header says {w}x{h} but the file holds {len(data) - 12} bytes of flow")
    flow = np.frombuffer(data[12:], "<f4").reshape(h, w, 2).astype(np.float32)
    flow[np.abs(flow) > 1e9] = np.nan
    return flow


# ----------------------------------------------------------------------------- KITTI flow PNG


def kitti_flow_array(flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """uint16 (H, W, 3) in R, G, B = (u, v, valid) order: value = flow * 64 + 2^15, rounded and
    clipped to 16 bits (|flow| up to 512 px); invalid or non-finite pixels store (2^15, 2^15, 0)."""
    flow = _check_flow(flow, "KITTI")
    ok = np.isfinite(flow).all(axis=2)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    safe = np.where(ok[..., None], flow, 0.0).astype(np.float64)
    encoded = np.clip(np.rint(safe * KITTI_SCALE + KITTI_OFFSET), 0, 65535).astype(np.uint16)
    return np.dstack([encoded, ok.astype(np.uint16)])


def write_kitti_flow(path: str, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    import cv2

    rgb = kitti_flow_array(flow, valid)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise PairgenError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, buffer.tobytes())


def read_kitti_flow(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(flow (H, W, 2) float32 in pixels, valid (H, W) bool) from a KITTI 16-bit flow PNG."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise PairgenError(f"{path}: not a KITTI flow PNG (expected 16-bit, 3 channels)")
    rgb = image[:, :, ::-1].astype(np.float64)
    flow = ((rgb[:, :, :2] - KITTI_OFFSET) / KITTI_SCALE).astype(np.float32)
    valid = rgb[:, :, 2] > 0
    return flow, valid


# ----------------------------------------------------------------------------- PFM


def pfm_bytes(array: np.ndarray) -> bytes:
    """PFM of a (H, W) array ("Pf") or (H, W, 3) array ("PF"); (H, W, 2) flow gets a third
    channel of zeros (the FlyingThings3D convention). Little-endian, rows bottom-to-top."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 2:
        a = np.dstack([a, np.zeros(a.shape[:2], np.float32)])
    if a.ndim == 2:
        kind = b"Pf"
    elif a.ndim == 3 and a.shape[2] == 3:
        kind = b"PF"
    else:
        raise ValueError(f"PFM holds (H, W), (H, W, 2) or (H, W, 3) arrays, got shape {a.shape}")
    h, w = a.shape[:2]
    header = kind + b"\n" + f"{w} {h}".encode() + b"\n-1.0\n"
    return header + np.ascontiguousarray(a[::-1], dtype="<f4").tobytes()


def write_pfm(path: str, array: np.ndarray) -> None:
    write_bytes_atomic(path, pfm_bytes(array))


def read_pfm(path: str) -> np.ndarray:
    """(H, W) or (H, W, 3) float32, top row first; either byte order."""
    with open(path, "rb") as handle:
        data = handle.read()
    match = re.match(rb"(P[Ff])\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s", data)
    if not match:
        raise PairgenError(f"{path}: not a PFM file (expected a PF or Pf header)")
    kind, w, h, scale = match.group(1), int(match.group(2)), int(match.group(3)), float(match.group(4))
    channels = 3 if kind == b"PF" else 1
    body = data[match.end():]
    if len(body) != w * h * channels * 4:
        raise PairgenError(f"{path}: PFM header says {w}x{h}x{channels} but the file holds {len(body)} bytes of data")
    values = np.frombuffer(body, "<f4" if scale < 0 else ">f4").reshape((h, w, channels) if channels == 3 else (h, w))
    return values[::-1].astype(np.float32)


# ----------------------------------------------------------------------------- export of samples

EXPORT_FORMATS = ("flo", "kitti", "pfm")


def export_sample(fields: dict, out_dir: str, key: str, formats=EXPORT_FORMATS, specs: dict | None = None) -> list[str]:
    """Write one decoded sample's flow and depth fields in the given formats; returns the paths.

    fields: a sample's decoded fields. specs: the card's field entries (``role``, ``view``):
    fields whose view is ``flow`` or ``depth`` are exported, others ignored; the ``occlusion``
    field marks the target flow's occluded pixels. Names: ``<key>_<stem>.flo`` (e.g.
    ``KEY_flow.flo``, ``KEY_flow_bwd.flo``); ``<key>_<stem>_kitti.png`` with every pixel valid
    (KITTI "flow_occ") and, for the target flow, ``<key>_<stem>_noc_kitti.png`` valid only where
    the occlusion field is 0 (KITTI "flow_noc"); ``<key>_<stem>.pfm`` for flow and depth.
    """
    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise PairgenError(f"unknown export format(s) {', '.join(sorted(unknown))}; choose from {', '.join(EXPORT_FORMATS)}")
    specs = specs or {}
    by_view = {}
    for name, spec in specs.items():
        if name in fields:
            by_view.setdefault(spec.get("view"), []).append(name)
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def target(name):
        path = os.path.join(out_dir, f"{key}_{name}")
        written.append(path)
        return path

    occluded = fields[by_view["occlusion"][0]] if by_view.get("occlusion") else None
    for name in by_view.get("flow", []):
        flow = fields[name]
        stem = name.rsplit(".", 1)[0]
        if "flo" in formats:
            write_flo(target(f"{stem}.flo"), flow)
        if "kitti" in formats:
            write_kitti_flow(target(f"{stem}_kitti.png"), flow)
            if specs[name].get("role") == "target" and occluded is not None:
                write_kitti_flow(target(f"{stem}_noc_kitti.png"), flow, valid=np.asarray(occluded) == 0)
        if "pfm" in formats:
            write_pfm(target(f"{stem}.pfm"), flow)
    if "pfm" in formats:
        for name in by_view.get("depth", []):
            write_pfm(target(f"{name.rsplit('.', 1)[0]}.pfm"), fields[name])
    return written
