"""Rendered optical flow: frame pairs (t, t+K) of a user's .blend or of procedural scenes.

One sample per pair: ``img0.png``, ``img1.png``, ``flow.npy``, ``flow_bwd.npy``, ``occ.png``,
``depth0.npy``, ``depth1.npy``, ``seg0.png``, ``seg1.png``, ``cls0.png``, ``cls1.png``,
``distance0.npy`` and ``distance1.npy`` (with ``distance=True``) and ``json`` (conventions in
``FLOW_CONVENTIONS``; the numbers come from ``renderers.truth``).
"""
from __future__ import annotations

import numpy as np

from .. import __version__
from . import register_task
from .base import FieldSpec, WorkItem
from .rendered import RENDER_CONVENTIONS, RenderedTask, frame_number, frame_record, frame_seed

FLOW_CONVENTIONS = {
    "flow": "flow.npy: forward flow t -> t+K, float32 (H, W, 2), (dx, dy) in pixels, x right, y down, at frame t's "
            "pixel centres (pixel (i, j) at (j + 0.5, i + 0.5)); flow_bwd.npy: t+K -> t at frame t+K's pixel centres. "
            "From Blender's Vector pass of a 1-sample, motion-blur-free render (forward = (-Z, +W), backward = (+X, -Y) "
            "of the pass in its y-up raster), so edges are never blended",
    "flow_step": "pairs (t, t+K): Blender's time remapping (frame_map_old/new) makes one Blender frame span K scene "
                 "frames, so the Vector pass gives t -> t+K directly (subframes where t is not a multiple of K); exact for "
                 "any animation Blender evaluates at fractional time (keyframes, drivers, constraints, armatures)",
    "background_flow": "procedural scenes are closed rooms: every pixel sees a surface. In a .blend, world-background "
                       "pixels (depth 0, seg 0) get the flow of points at infinity under the camera motion "
                       "(rotation and intrinsics only: x1 ~ K1 R1^T R0 K0^-1 x0); a background direction that falls "
                       "behind camera t+K has no image there: flow (0, 0) and occ = 255",
    "cameras": "json K: 3x3 intrinsics in pixels of frame t; per frame of the pair, cameras[i].K (3x3) and "
               "cameras[i].camera_to_world (4x4 camera-to-world in the OpenCV convention: x right, y down, z forward), "
               "cameras[i].frame its frame number, cameras[i].keypoints",
    "occlusion": "occ.png: 255 where the point seen at pixel p of frame t is not visible in frame t+K, with "
                 "q = p + flow(p): (1) q leaves the image [0, W) x [0, H); (2) instance test: the 2x2 pixels of frame "
                 "t+K around q that show p's instance id carry less than half of the bilinear weight (q is on another "
                 "surface's side of a silhouette); (3) forward-backward consistency: |flow(p) + flow_bwd(q)| > 0.5 px + "
                 "1% of |flow(p)|, flow_bwd interpolated over those same-id pixels (self-occlusion); (4) depth test, for "
                 "rigidly moving objects (the point's depth in camera t+K follows from the object and camera "
                 "transforms): its inverse depth is more than 1% below the inverse depth frame t+K sees at q "
                 "(interpolated like flow_bwd; exact on flat faces), or it is behind the camera. Deforming objects get "
                 "tests 1-3 only",
    **RENDER_CONVENTIONS,
}


@register_task
class FlowTask(RenderedTask):
    """Optical flow pairs (t, t+K); see the module docstring and RenderedTask for options."""

    name = "flow"
    pairs = True
    train_kind = "flow"
    command = ("render-flow", "blend", "Render optical flow ground truth for every frame pair (t, t+K) of BLEND: "
               "frames, flow both ways, occlusion, planar depth, instance ids, cameras and keypoints. "
               "The file's scripts never run.")

    def fields(self):
        w, h = self.resolution if self.resolution else (None, None)
        fields = {
            "img0.png": FieldSpec("input", "uint8", [h, w, 3], "frame t, rendered RGB, 8-bit sRGB", "rgb"),
            "img1.png": FieldSpec("input", "uint8", [h, w, 3], "frame t+K, rendered RGB, 8-bit sRGB", "rgb"),
            "flow.npy": FieldSpec("target", "float32", [h, w, 2], "forward flow t -> t+K, (dx, dy) pixels, x right, y down, at frame t's pixel centres", "flow"),
            "flow_bwd.npy": FieldSpec("aux", "float32", [h, w, 2], "backward flow t+K -> t at frame t+K's pixel centres", "flow"),
            "occ.png": FieldSpec("aux", "uint8", [h, w], "255 where frame t's pixel is not visible in frame t+K (occluded or out of view), else 0", "occlusion"),
            "depth0.npy": FieldSpec("aux", "float32", [h, w], "planar depth of frame t, scene units, 0 = no surface", "depth"),
            "depth1.npy": FieldSpec("aux", "float32", [h, w], "planar depth of frame t+K, scene units, 0 = no surface", "depth"),
            "seg0.png": FieldSpec("aux", "uint16", [h, w], "instance ids of frame t, 0 = no object", "ids"),
            "seg1.png": FieldSpec("aux", "uint16", [h, w], "instance ids of frame t+K, 0 = no object", "ids"),
            "cls0.png": FieldSpec("aux", "uint16", [h, w], "semantic class ids of frame t, 0 = no object (names in json classes)", "ids"),
            "cls1.png": FieldSpec("aux", "uint16", [h, w], "semantic class ids of frame t+K, 0 = no object", "ids"),
            "json": FieldSpec("meta", "json", [], "K, per-frame camera-to-world (OpenCV), frame numbers, scene seed, render settings, object and class names per id, keypoints"),
        }
        if self.distance:
            fields["distance0.npy"] = FieldSpec("aux", "float32", [h, w], "Euclidean distance from camera t's centre, scene units, 0 = no surface", "depth")
            fields["distance1.npy"] = FieldSpec("aux", "float32", [h, w], "Euclidean distance from camera t+K's centre, scene units, 0 = no surface", "depth")
        return fields

    def card(self):
        card = super().card()
        card["conventions"] = dict(FLOW_CONVENTIONS)
        # the contact sheet's columns: the pair, its flow and occlusion, then each field of frame t beside frame t+K's
        fields = self.fields()
        card["preview"] = {"order": [n for n in PREVIEW_ORDER if n in fields]}
        return card

    def make(self, item: WorkItem, rng: np.random.Generator):
        from renderers import truth

        source, identity, starts, names, scene_record = self.item_source(item, rng)
        times = sorted({t for t in starts} | {t + self.step for t in starts})
        frames, events = self._render(source, times, identity)
        samples = []
        for j, t0 in enumerate(starts):
            f0, f1 = frames[t0], frames[t0 + self.step]
            fields, extra = pair_fields(f0, f1)
            record = {
                "pairgen_version": __version__,
                "task": self.name,
                "seed": self.seed,
                "frames": [frame_number(t0), frame_number(t0 + self.step)],
                "step": self.step,
                "K": f0["K"].tolist(),
                "cameras": [frame_record(f0, frame_number(t0)), frame_record(f1, frame_number(t0 + self.step))],
                "render": {**self.render_record(), **self.frame_render_record(f0), "blender": f0.get("blender"),
                           "frame_seeds": [frame_seed(self.seed, identity, t0), frame_seed(self.seed, identity, t0 + self.step)]},
                **self.sample_record(names, scene_record, events),
                "occlusion": extra,
                "summary": flow_summary(fields["flow.npy"], fields["occ.png"]),
            }
            if self.distance:
                fields["distance0.npy"] = truth.distance_from_depth(fields["depth0.npy"], f0["K"])
                fields["distance1.npy"] = truth.distance_from_depth(fields["depth1.npy"], f1["K"])
            fields["json"] = record
            samples.append((f"{item.payload['first_index'] + j:09d}", fields))
        return samples


PREVIEW_ORDER = ("img0.png", "img1.png", "flow.npy", "occ.png", "flow_bwd.npy", "depth0.npy", "depth1.npy", "seg0.png",
                 "seg1.png", "cls0.png", "cls1.png", "distance0.npy", "distance1.npy")


def flow_summary(flow: np.ndarray, occ: np.ndarray) -> dict:
    """Per-sample scalars that `pairgen inspect` histograms: how far pixels move, how much is hidden."""
    magnitude = np.linalg.norm(flow, axis=-1)
    return {
        "flow_magnitude_mean_px": round(float(magnitude.mean()), 4),
        "flow_magnitude_p95_px": round(float(np.percentile(magnitude, 95)), 4),
        "flow_magnitude_max_px": round(float(magnitude.max()), 4),
        "occluded_fraction": round(float((occ > 0).mean()), 4),
    }


def pair_fields(f0: dict, f1: dict) -> tuple[dict, dict]:
    """The flow sample's arrays from two rendered frames (t and t+K), plus occlusion statistics."""
    from renderers import truth

    h, w = f0["depth"].shape
    flow = f0["flow_fwd"].astype(np.float32).copy()
    flow_bwd = f1["flow_bwd"].astype(np.float32).copy()
    # World-background pixels: the Vector pass holds 0 there; use the camera motion.
    for depth, target, (Ka, ca, Kb, cb) in ((f0["depth"], flow, (f0["K"], f0["c2w"], f1["K"], f1["c2w"])),
                                           (f1["depth"], flow_bwd, (f1["K"], f1["c2w"], f0["K"], f0["c2w"]))):
        bg = depth <= 0
        if bg.any():
            target[bg] = truth.background_flow((h, w), Ka, ca, Kb, cb)[bg].astype(np.float32)
    rigid = {i for i, r in f0["rigid"].items() if r}
    m0 = {i: m for i, m in f0["object_to_world"].items() if i in rigid}
    m1 = {i: m for i, m in f1["object_to_world"].items() if i in rigid}
    _, depth_pred = truth.rigid_motion(f0["depth"], f0["seg"], f0["K"], f0["c2w"], f1["K"], f1["c2w"], m0, m1)
    occluded = truth.occlusion(np.nan_to_num(flow, nan=np.inf), np.nan_to_num(flow_bwd), f0["seg"], f1["seg"],
                               depth1=f1["depth"], depth_pred=depth_pred)
    flow = np.nan_to_num(flow, nan=0.0)  # background directions behind camera t+K: no flow (marked occluded)
    flow_bwd = np.nan_to_num(flow_bwd, nan=0.0)
    fields = {
        "img0.png": f0.get("rgb"),  # None when only the ground truth was rendered (tests)
        "img1.png": f1.get("rgb"),
        "flow.npy": flow,
        "flow_bwd.npy": flow_bwd,
        "occ.png": (occluded * 255).astype(np.uint8),
        "depth0.npy": f0["depth"].astype(np.float32),
        "depth1.npy": f1["depth"].astype(np.float32),
        "seg0.png": f0["seg"],
        "seg1.png": f1["seg"],
        "cls0.png": f0["cls"],
        "cls1.png": f1["cls"],
    }
    extra = {"occluded_fraction": round(float(occluded.mean()), 6),
             "depth_test_fraction": round(float(np.isfinite(depth_pred).mean()), 6)}
    return fields, extra

