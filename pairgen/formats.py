"""Files that existing flow and depth training code reads: Middlebury .flo, KITTI flow PNG, PFM.

Byte layouts (shared/notes/degradations.md):

* Middlebury ``.flo``: float32 202021.25 (the bytes "PIEH"), int32 width, int32 height, then
  H*W*2 float32 (u, v interleaved, row-major, top row first), all little-endian; a component
  with magnitude above 1e9 means unknown.
* KITTI flow PNG: 16-bit, 3 channels (u, v, valid) in R, G, B order; u = (value - 2^15) / 64
  pixels; valid is 1 or 0 (invalid pixels also store 0 flow). Flow that does not fit 16 bits
  (beyond about +-512 px) is stored invalid, never clipped, and counted. OpenCV reads and writes BGR, so
  the channels are reversed on disk access through it.
* PFM: a text header "PF" (3 channels) or "Pf" (1 channel), newline, "W H", newline, the scale
  (negative = little-endian), newline, then float32 rows stored bottom-to-top.

Flow is (H, W, 2) float32 (u = dx right, v = dy down) in pixels, as in pairgen's samples.
"""
from __future__ import annotations

import glob
import json
import os
import re

import numpy as np

from .errors import PairgenError
from .shards import write_bytes_atomic, write_json_atomic

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


def kitti_storable(flow: np.ndarray) -> np.ndarray:
    """bool (H, W): finite flow whose two components fit KITTI's 16 bits (flow * 64 + 2^15 rounds
    into 0..65535, i.e. -512 <= u, v < 512 px)."""
    flow = _check_flow(flow, "KITTI").astype(np.float64)
    with np.errstate(invalid="ignore"):
        encoded = np.rint(flow * KITTI_SCALE + KITTI_OFFSET)
        return (np.isfinite(flow) & (encoded >= 0) & (encoded <= 65535)).all(axis=2)


def kitti_flow_array(flow: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """uint16 (H, W, 3) in R, G, B = (u, v, valid) order: value = flow * 64 + 2^15, rounded.
    A pixel is stored valid only where ``valid`` allows and its flow fits the format (finite,
    |flow| within about 512 px, ``kitti_storable``); every other pixel stores (2^15, 2^15, 0):
    flow beyond the range is never clipped into a wrong valid value."""
    flow = _check_flow(flow, "KITTI")
    ok = kitti_storable(flow)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    safe = np.where(ok[..., None], flow, 0.0).astype(np.float64)
    encoded = np.rint(safe * KITTI_SCALE + KITTI_OFFSET).astype(np.uint16)
    return np.dstack([encoded, ok.astype(np.uint16)])


def write_kitti_flow(path: str, flow: np.ndarray, valid: np.ndarray | None = None) -> int:
    """Write a KITTI flow PNG; returns how many pixels that ``valid`` allowed were stored invalid
    because their flow does not fit the format (out of range or not finite)."""
    import cv2

    rgb = kitti_flow_array(flow, valid)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise PairgenError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, buffer.tobytes())
    wanted = np.ones(rgb.shape[:2], bool) if valid is None else np.asarray(valid, dtype=bool)
    return int((wanted & (rgb[:, :, 2] == 0)).sum())


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

EXPORT_FORMATS = ("flo", "kitti", "pfm")  # per sample; "blenderproc" (per frame) is BlenderProcWriter


def export_sample(fields: dict, out_dir: str, key: str, formats=EXPORT_FORMATS, specs: dict | None = None) -> dict[str, int]:
    """Write one decoded sample's flow and depth fields in the given formats; returns {path:
    pixels invalidated because their flow does not fit the file (KITTI range; 0 for others)}.

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
    written: dict[str, int] = {}

    def target(name):
        path = os.path.join(out_dir, f"{key}_{name}")
        written[path] = 0
        return path

    occluded = fields[by_view["occlusion"][0]] if by_view.get("occlusion") else None
    for name in by_view.get("flow", []):
        flow = fields[name]
        stem = name.rsplit(".", 1)[0]
        if "flo" in formats:
            write_flo(target(f"{stem}.flo"), flow)
        if "kitti" in formats:
            path = target(f"{stem}_kitti.png")
            written[path] = write_kitti_flow(path, flow)
            if specs[name].get("role") == "target" and occluded is not None:
                path = target(f"{stem}_noc_kitti.png")
                written[path] = write_kitti_flow(path, flow, valid=np.asarray(occluded) == 0)
        if "pfm" in formats:
            write_pfm(target(f"{stem}.pfm"), flow)
    if "pfm" in formats:
        for name in by_view.get("depth", []):
            write_pfm(target(f"{name.rsplit('.', 1)[0]}.pfm"), fields[name])
    return written


# ----------------------------------------------------------------------------- BlenderProc layout

# BlenderProc's depth and distance come from half-float EXR files: the background reads as the
# largest half float, and its loaders test ``>= 65504``.
BLENDERPROC_BACKGROUND = 65504.0


def blenderproc_frames(fields: dict, record: dict, task: str) -> list[tuple[float, dict]]:
    """The BlenderProc datasets of the frames in one pairgen sample: [(frame number, {key: array})].

    Encodings as BlenderProc's writer stores them (blenderproc/python/writer/WriterUtility.py,
    renderer/RendererUtility.py, FlowRendererUtility.py, SegMapRendererUtility.py):
    ``colors`` uint8 (H, W, 3) RGB; ``depth`` float32 (H, W) planar z and ``distance`` float32
    Euclidean ray length, both 65504 where no surface; ``normals`` float32 (H, W, 3) = (n + 1) / 2
    with n in Blender's camera frame (x right, y up, z towards the viewer), 0.5 where no surface;
    ``forward_flow`` float32 (H, W, 2) t -> t+K and ``backward_flow`` t -> t-K, both (dx, dy) in
    pixels, x right, y down, at the frame's own pixels; ``instance_segmaps`` and
    ``category_id_segmaps`` (H, W) in the smallest of uint8 / uint16 that holds the ids; and
    ``instance_attribute_maps``, json bytes of [{"idx", "name", "category_id"}]. Extras (not
    BlenderProc keys): ``cam_K`` 3x3 and ``cam2world`` 4x4 in Blender's camera convention (looks
    down -z, y up), BlenderProc's own pose convention.
    """
    from renderers import truth

    objects = {int(k): v for k, v in record.get("objects", {}).items()}
    if task == "flow":
        frames = [(record["frames"][0], "0", record["cameras"][0]), (record["frames"][1], "1", record["cameras"][1])]
        image = {"0": "img0.png", "1": "img1.png"}
    else:
        frames = [(record["frame"], "", record["camera"])]
        image = {"": "rgb.png"}
    out = []
    for frame, suffix, camera in frames:
        K = np.asarray(camera["K"], dtype=np.float64)
        depth = np.asarray(fields[f"depth{suffix}.npy"], dtype=np.float32)
        surface = depth > 0
        distance = fields.get(f"distance{suffix}.npy")
        distance = truth.distance_from_depth(depth, K) if distance is None else np.asarray(distance, np.float32)
        seg = np.asarray(fields[f"seg{suffix}.png"])
        cls = np.asarray(fields[f"cls{suffix}.png"]) if f"cls{suffix}.png" in fields else np.zeros_like(seg)
        classes = {}
        for oid in objects:
            hit = cls[seg == oid]
            classes[oid] = int(hit[0]) if hit.size else None
        id_type = np.uint8 if max([0, *objects, int(cls.max(initial=0))]) <= 255 else np.uint16
        data = {
            "colors": np.asarray(fields[image[suffix]], dtype=np.uint8),
            "depth": np.where(surface, depth, np.float32(BLENDERPROC_BACKGROUND)).astype(np.float32),
            "distance": np.where(surface, distance, np.float32(BLENDERPROC_BACKGROUND)).astype(np.float32),
            "instance_segmaps": seg.astype(id_type),
            "category_id_segmaps": cls.astype(id_type),
            "instance_attribute_maps": json.dumps(
                [{"idx": 0, "name": "background", "category_id": 0}]
                + [{"idx": oid, "name": name, "category_id": classes[oid]} for oid, name in sorted(objects.items())]
            ).encode(),
            "cam_K": K,
            "cam2world": np.asarray(camera["camera_to_world"], dtype=np.float64) @ truth.BLENDER_TO_OPENCV,
        }
        if task == "depth" and "normal.npy" in fields:
            n = np.asarray(fields["normal.npy"], dtype=np.float32) * np.array([1.0, -1.0, -1.0], np.float32)
            data["normals"] = (n * 0.5 + 0.5).astype(np.float32)
        if task == "flow":
            if suffix == "0":
                data["forward_flow"] = np.asarray(fields["flow.npy"], dtype=np.float32)
            else:
                data["backward_flow"] = np.asarray(fields["flow_bwd.npy"], dtype=np.float32)
        out.append((frame, data))
    return out


class BlenderProcWriter:
    """Writes samples as BlenderProc's per-frame HDF5 files: ``OUT/<scene>/<index>.hdf5``, one
    folder per scene (procedural: ``scene_<n>``; a .blend: its file and scene name), index 0, 1,
    ... in frame order (frame - first frame, divided by the stride of depth datasets), and
    ``frames.json`` beside them mapping each index to its frame number. A frame shared by two
    flow pairs gets both flows (forward from the pair it starts, backward from the pair it ends).
    Arrays are gzip-compressed as BlenderProc writes them."""

    def __init__(self, out_dir: str, card: dict):
        self.out_dir = out_dir
        self.task = card.get("task")
        if self.task not in ("flow", "depth"):
            raise PairgenError(f"--to blenderproc exports flow or depth datasets, not {self.task!r}")
        frames = card.get("frames") or [0, 0]
        self.first = frames[0]
        step = int((card.get("render") or {}).get("step") or 1)
        self.stride = step if self.task == "depth" else 1
        if glob.glob(os.path.join(out_dir, "*", "*.hdf5")):  # frames are merged into files: never into old ones
            raise PairgenError(f"{out_dir}: already holds a BlenderProc export; choose an empty --out folder")
        self.frame_lists: dict[str, dict[int, float]] = {}
        self.files = 0

    @staticmethod
    def scene_folder(record: dict) -> str:
        scene = record.get("scene", {})
        if scene.get("procedural"):
            return f"scene_{int(scene['scene_index']):06d}"
        name = f"{os.path.splitext(scene.get('blend') or 'blend')[0]}_{scene.get('scene') or 'scene'}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name)

    def add(self, fields: dict) -> None:
        import h5py

        record = fields["json"]
        folder = self.scene_folder(record)
        os.makedirs(os.path.join(self.out_dir, folder), exist_ok=True)
        for frame, data in blenderproc_frames(fields, record, self.task):
            index = int(round((frame - self.first) / self.stride))
            path = os.path.join(self.out_dir, folder, f"{index}.hdf5")
            if not os.path.exists(path):
                self.files += 1
            self.frame_lists.setdefault(folder, {})[index] = frame
            with h5py.File(path, "a") as handle:
                for key, value in data.items():
                    if key in handle:  # the frame's images from the other pair it belongs to
                        continue
                    if isinstance(value, bytes):
                        handle.create_dataset(key, data=np.bytes_(value))
                    else:
                        handle.create_dataset(key, data=value, compression="gzip")

    def close(self) -> None:
        for folder, frames in self.frame_lists.items():
            write_json_atomic(os.path.join(self.out_dir, folder, "frames.json"),
                              {str(i): frames[i] for i in sorted(frames)})
