"""Rendered depth: single frames of a user's .blend or of procedural scenes.

One sample per frame: ``rgb.png``, ``depth.npy``, ``seg.png``, ``cls.png``, ``normal.npy`` (with
``normals=True``), ``distance.npy`` (with ``distance=True``) and ``json``. Options and sources as in ``rendered.RenderedTask``; ``step`` is
the stride between rendered frames of a .blend.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import __version__
from . import register_task
from .base import FieldSpec, WorkItem, option
from .rendered import RENDER_CONVENTIONS, RenderedTask, RenderOptions, frame_number, frame_record, frame_seed

DEPTH_CONVENTIONS = dict(RENDER_CONVENTIONS)
DEPTH_CONVENTIONS["normals"] = ("normal.npy: unit surface normals in the camera frame of the OpenCV convention (x right, "
                                "y down, z forward; surfaces facing the camera have negative z), float32 (H, W, 3); 0 "
                                "where no surface. From Blender's Normal pass (shading normals, first sample)")
DEPTH_CONVENTIONS["cameras"] = ("json K: 3x3 intrinsics in pixels (also camera.K); camera.camera_to_world: 4x4 "
                                "camera-to-world in the OpenCV convention (x right, y down, z forward); camera.frame "
                                "its frame number, camera.keypoints")
DEPTH_CONVENTIONS["background"] = ("procedural scenes are closed rooms: every pixel has depth; in a .blend, world-"
                                   "background pixels have depth 0 and id 0")


@dataclass(frozen=True)
class DepthOptions(RenderOptions):
    normals: bool | None = option(bool, "Also write camera-space normals (normal.npy) (default: the recipe's).")


@register_task
class DepthTask(RenderedTask):
    """Depth frames; normals: also write camera-space normals (``normal.npy``)."""

    name = "depth"
    pairs = False
    Options = DepthOptions
    recipe_keys = RenderedTask.recipe_keys | {"normals"}
    train_kind = "depth"
    command = ("render-depth", "blend", "Render planar depth, instance ids (and normals with --normals) for every "
               "frame of BLEND. The file's scripts never run.")

    def __init__(self, *args, normals: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.normals = bool(normals)

    @classmethod
    def recipe_settings(cls, raw):
        return {"normals": bool(raw["normals"])} if "normals" in raw else {}

    def options_record(self):
        return {**super().options_record(), "normals": self.normals}

    def fields(self):
        w, h = self.resolution if self.resolution else (None, None)
        fields = {
            "rgb.png": FieldSpec("input", "uint8", [h, w, 3], "rendered RGB frame, 8-bit sRGB", "rgb"),
            "depth.npy": FieldSpec("target", "float32", [h, w], "planar depth (distance along the optical axis), scene units, 0 = no surface", "depth"),
            "seg.png": FieldSpec("aux", "uint16", [h, w], "instance ids, 0 = no object", "ids"),
            "cls.png": FieldSpec("aux", "uint16", [h, w], "semantic class ids, 0 = no object (names in json classes)", "ids"),
            "json": FieldSpec("meta", "json", [], "K, camera-to-world (OpenCV), frame number, scene seed, render settings, object and class names per id, keypoints"),
        }
        if self.distance:
            fields["distance.npy"] = FieldSpec("aux", "float32", [h, w], "Euclidean distance from the camera centre, scene units, 0 = no surface", "depth")
        if self.normals:
            fields["normal.npy"] = FieldSpec("aux", "float32", [h, w, 3], "unit normals in the OpenCV camera frame (x right, y down, z forward), 0 = no surface", "normals")
        return fields

    def card(self):
        card = super().card()
        card["conventions"] = dict(DEPTH_CONVENTIONS)
        card["normals"] = self.normals
        fields = self.fields()  # the contact sheet's columns in reading order (the card's fields are sorted by name)
        card["preview"] = {"order": [n for n in ("rgb.png", "depth.npy", "distance.npy", "normal.npy", "seg.png", "cls.png") if n in fields]}
        return card

    def make(self, item: WorkItem, rng: np.random.Generator):
        from renderers import truth

        source, identity, times, names, scene_record = self.item_source(item, rng)
        frames, events = self._render(source, times, identity, normals=self.normals, vector=False)
        samples = []
        for j, t in enumerate(times):
            frame = frames[t]
            record = {
                "pairgen_version": __version__,
                "task": self.name,
                "seed": self.seed,
                "frame": frame_number(t),
                "K": frame["K"].tolist(),
                "camera": frame_record(frame, frame_number(t)),
                "render": {**self.render_record(), **self.frame_render_record(frame), "blender": frame.get("blender"),
                           "frame_seed": frame_seed(self.seed, identity, t)},
                **self.sample_record(names, scene_record, events),
            }
            depth = frame["depth"].astype(np.float32)
            surface = depth[depth > 0]
            record["summary"] = {  # per-sample scalars that `pairgen inspect` histograms
                "depth_min": round(float(surface.min()), 4) if surface.size else 0.0,
                "depth_median": round(float(np.median(surface)), 4) if surface.size else 0.0,
                "depth_max": round(float(surface.max()), 4) if surface.size else 0.0,
                "surface_fraction": round(float(surface.size / depth.size), 4),
            }
            fields = {"rgb.png": frame["rgb"], "depth.npy": depth, "seg.png": frame["seg"], "cls.png": frame["cls"],
                      "json": record}
            if self.distance:
                fields["distance.npy"] = truth.distance_from_depth(depth, frame["K"])
            if self.normals:
                fields["normal.npy"] = camera_normals(frame["normal"], frame["c2w"], frame["depth"])
            samples.append((f"{item.payload['first_index'] + j:09d}", fields))
        return samples


def camera_normals(normal_world: np.ndarray, c2w_cv: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World-space normals (H, W, 3) -> unit normals in the OpenCV camera frame; 0 where no surface."""
    rotation = np.asarray(c2w_cv, dtype=np.float64)[:3, :3]
    n = np.asarray(normal_world, dtype=np.float64) @ rotation  # R^T n, row-vector form
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where(length > 0, n / np.where(length > 0, length, 1.0), 0.0)
    n[depth <= 0] = 0.0
    return n.astype(np.float32)
