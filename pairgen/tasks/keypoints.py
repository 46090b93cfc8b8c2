"""Keypoint heatmaps from COCO person keypoints (top-down: one crop around one person).

Coordinates: a COCO keypoint (integer pixel indices x, y) is the centre of that pixel, (x + 0.5,
y + 0.5) in continuous coordinates (pixel (i, j) covers [j, j + 1) x [i, i + 1)); the crop's
warp moves it exactly as it moves the pixels. The json's ``keypoints`` are [x, y, v] in the
output image's continuous coordinates, v as COCO (0 not labelled, 1 labelled but hidden, 2
visible). A keypoint that leaves the output (or falls within ``margin`` px of its edge) becomes
[0, 0, 0], as COCO writes unlabelled points, and its index is listed in ``left_image``.

Heatmaps (unbiased, the "UDP" convention of Huang et al. 2020 in continuous coordinates): the
heatmap at output stride s has pixel (i, j) centred at image point ((j + 0.5) s, (i + 0.5) s);
channel k holds exp(-d^2 / (2 sigma^2)) with d the distance in heatmap pixels from that centre
to (x / s, y / s), within a square window of +-3 sigma (0 outside), so the peak of the
continuous Gaussian is exactly at the keypoint at any stride. Unlabelled keypoints: all zeros.
A flip swaps each left_* keypoint with its right_* partner (by name).
"""
from __future__ import annotations

import numpy as np

from ..coco import keypoint_position
from ..errors import PairgenError, RecipeError, UsageError
from ..ops.geometry import InstanceCropConfig, sample_instance_crop, warp_points
from . import register_task
from .annotated import AnnotatedTask
from .base import FieldSpec, Skip

HEATMAP_DTYPES = ("float16", "float32")


def flip_permutation(names) -> list[int]:
    """Index of each keypoint's mirror partner (left_x <-> right_x; itself when it has none)."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for name in names:
        if name.startswith("left_"):
            partner = "right_" + name[5:]
        elif name.startswith("right_"):
            partner = "left_" + name[6:]
        else:
            partner = name
        out.append(index.get(partner, index[name]))
    return out


def render_heatmaps(keypoints: np.ndarray, height: int, width: int, stride: int, sigma: float,
                    dtype: str = "float32") -> np.ndarray:
    """(K, height, width) heatmaps of keypoints (K, 3) [x, y, v] in image continuous coordinates
    (module docstring); v == 0: an empty channel."""
    points = np.asarray(keypoints, np.float64).reshape(-1, 3)
    dx = (np.arange(width, dtype=np.float64) + 0.5)[None, :] - points[:, :1] / stride  # (K, W)
    dy = (np.arange(height, dtype=np.float64) + 0.5)[None, :] - points[:, 1:2] / stride  # (K, H)
    gx = np.where(np.abs(dx) <= 3 * sigma, np.exp(-dx * dx / (2 * sigma * sigma)), 0.0)
    gy = np.where(np.abs(dy) <= 3 * sigma, np.exp(-dy * dy / (2 * sigma * sigma)), 0.0)
    gx[points[:, 2] <= 0] = 0.0  # unlabelled: an empty channel
    # all channels at once (the products of each channel's outer(gy, gx)); float32 first, as
    # the maps are defined, then the stored dtype
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32).astype(dtype, copy=False)


def heatmap_peak(heatmap: np.ndarray) -> tuple[float, float] | None:
    """Sub-pixel peak (x, y) of one (H, W) Gaussian heatmap, in heatmap continuous coordinates:
    a parabola fitted to the log values of the row and the column through the maximum (exact
    for a sampled Gaussian). None for an empty map."""
    heatmap = np.asarray(heatmap, np.float64)
    if heatmap.max(initial=0) <= 0:
        return None
    i, j = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    return _axis_peak(heatmap[i, :], j), _axis_peak(heatmap[:, j], i)


def _axis_peak(line: np.ndarray, at: int) -> float:
    lo, hi = max(0, at - 2), min(len(line), at + 3)
    values = line[lo:hi]
    keep = values > values.max() * 1e-3
    positions = np.arange(lo, hi, dtype=np.float64)[keep] + 0.5
    if keep.sum() < 3:
        return float(at + 0.5)
    c2, c1, _ = np.polyfit(positions - (at + 0.5), np.log(values[keep]), 2)
    return float(at + 0.5 - c1 / (2 * c2)) if c2 < 0 else float(at + 0.5)


@register_task
class KeypointsTask(AnnotatedTask):
    name = "keypoints"
    train_kind = "keypoints"
    demo_file = "person_keypoints.json"
    geometry_config = InstanceCropConfig
    default_crops_per_image = None
    recipe_keys = frozenset({"geometry", "photometric", "sigma", "stride", "margin", "heatmap_dtype", "category"})

    def __init__(self, recipe, options, inputs):
        super().__init__(recipe, options, inputs)
        raw = recipe.raw
        self.sigma = float(raw.get("sigma", 2.0))
        self.stride = int(raw.get("stride", 4))
        self.margin = float(raw.get("margin", 0.0))
        self.heatmap_dtype = str(raw.get("heatmap_dtype", "float16"))
        self.category_name = raw.get("category")
        if not self.sigma > 0 or self.stride < 1 or self.margin < 0:
            raise RecipeError(f"{recipe.path}: sigma must be > 0 heatmap px, stride >= 1, margin >= 0 px")
        if self.heatmap_dtype not in HEATMAP_DTYPES:
            raise RecipeError(f"{recipe.path} line {recipe.line('heatmap_dtype')}: heatmap_dtype must be one of {HEATMAP_DTYPES}")
        if self.side % self.stride:
            raise UsageError(f"--crop {self.side} is not a multiple of the heatmap stride {self.stride}; "
                             f"use e.g. --crop {self.side - self.side % self.stride or self.stride}")
        self.category = None  # the keypoint category, known after plan()

    # ------------------------------------------------------------------ planning
    def dataset_ready(self, dataset):
        with_points = [c for c in dataset.categories.values() if c.keypoints]
        if self.category_name is not None:
            with_points = [c for c in with_points if c.name == self.category_name]
        if not with_points:
            wanted = f" named {self.category_name!r}" if self.category_name else ""
            raise PairgenError(f"{dataset.path}: no keypoint category{wanted} (a category with 'keypoints' names); "
                               "is this an instances file? keypoints need e.g. person_keypoints_*.json")
        if len(with_points) > 1:
            names = ", ".join(c.name for c in with_points)
            raise PairgenError(f"{dataset.path}: {len(with_points)} keypoint categories ({names}); heatmaps need one "
                               "keypoint set: choose with --set category=NAME")
        self.category = with_points[0]

    def select(self, dataset, annotations, skipped):
        chosen = []
        for ann in annotations:
            if ann["category_id"] != self.category.id:
                self.counts["not the keypoint category"] += 1
            elif ann.get("iscrowd", 0):
                self.counts["crowd"] += 1
            elif "keypoints" not in ann or not any(v > 0 for v in ann["keypoints"][2::3]):
                self.counts["num_keypoints == 0"] += 1
            else:
                box = ann.get("bbox") or _keypoint_box(ann["keypoints"])
                if box[2] <= 0 or box[3] <= 0:
                    skipped.append(Skip(f"{dataset.path}: annotation {ann['id']}",
                                        "empty box (width or height 0) and keypoints that span no area"))
                    continue
                chosen.append({"id": ann["id"], "bbox": [float(v) for v in box], "keypoints": list(ann["keypoints"])})
        return chosen

    # ------------------------------------------------------------------ making
    def sample_geometry(self, rng, image, annotations, k, record):
        instance = annotations[k % len(annotations)]
        record.update(instance=instance, keypoint_names=list(self.category.keypoints),
                      skeleton=[list(p) for p in self.category.skeleton], category=self.category.name,
                      stride=self.stride, sigma=self.sigma, margin=self.margin, heatmap_dtype=self.heatmap_dtype)
        return sample_instance_crop(rng, self.geometry, instance["bbox"], self.side, self.side)

    def make_crop(self, warped, affine, prepared, record):
        return self.crop_fields(warped, affine, record)

    @classmethod
    def replay_crop(cls, image, warped, affine, record):
        fields = cls.crop_fields(warped, affine, dict(record))
        return fields

    @staticmethod
    def crop_fields(warped, affine, record) -> dict:
        names = record["keypoint_names"]
        source = np.asarray(record["instance"]["keypoints"], np.float64).reshape(-1, 3)
        centres = np.array([keypoint_position(x, y) for x, y, _ in source])
        moved = warp_points(centres, affine)
        if affine.flip:  # the point that was the left eye is now where a right eye is
            order = flip_permutation(names)
            moved, source = moved[order], source[order]
        margin = record["margin"]
        points, left = [], []
        for k, ((x, y), v) in enumerate(zip(moved, source[:, 2])):
            inside = margin <= x < affine.width - margin and margin <= y < affine.height - margin
            if v > 0 and not inside:
                left.append(k)
            points.append([round(float(x), 4), round(float(y), 4), int(v)] if v > 0 and inside else [0.0, 0.0, 0])
        stride = record["stride"]
        heatmaps = render_heatmaps(np.asarray(points, np.float64), affine.height // stride, affine.width // stride,
                                   stride, record["sigma"], record["heatmap_dtype"])
        record["keypoints"], record["left_image"] = points, left
        record["summary"] = {"labelled_keypoints": sum(1 for p in points if p[2] > 0), "left_image": len(left),
                             "flip": affine.flip, "scale": affine.scale, "angle": affine.angle}
        return {"image.png": warped, "heatmaps.npy": heatmaps}

    # ------------------------------------------------------------------ card
    def fields(self):
        side, hm = self.side, self.side // self.stride  # K: the category's keypoint count (card "keypoints")
        return {
            "image.png": FieldSpec("input", "uint8", [side, side, 3], "the person crop (warped, photometric steps applied), "
                                   "8-bit sRGB RGB", "rgb"),
            "heatmaps.npy": FieldSpec("target", self.heatmap_dtype, [None, hm, hm],
                                      f"(K, H, W) keypoint heatmaps at stride {self.stride} (heatmap pixel (i, j) centred at "
                                      f"image ((j + 0.5) {self.stride}, (i + 0.5) {self.stride})), unbiased Gaussians of sigma "
                                      f"{self.sigma} heatmap px peaking exactly at each keypoint, +-3 sigma window, in [0, 1]; "
                                      "all zeros where v = 0", "heatmap"),
            "json": FieldSpec("meta", "json", [], "keypoints [[x, y, v], ...] in image.png's continuous pixel coordinates "
                              "(COCO integer index + 0.5, then warped), keypoint_names, skeleton (1-based pairs, COCO), "
                              "left_image (indices of labelled points that left the crop: v = 0), instance (the source "
                              "annotation), geometry (the warp), photometric_ops"),
        }

    def card(self):
        card = super().card()
        card["keypoints"] = {"category": self.category.name if self.category else None,
                             "names": list(self.category.keypoints) if self.category else [],
                             "skeleton": [list(p) for p in self.category.skeleton] if self.category else [],
                             "flip_pairs": "left_* <-> right_* by name", "stride": self.stride, "sigma": self.sigma}
        card["conventions"] = {
            "keypoints": "json keypoints [x, y, v] in image.png's continuous pixels: a COCO keypoint (integer pixel index) "
                         "is its pixel's centre, index + 0.5; v as COCO; points that leave the crop or fall within "
                         f"margin {self.margin} px of its edge become [0, 0, 0] and are listed in left_image",
            "heatmaps": f"heatmap pixel (i, j) at stride {self.stride} is centred at image ((j + 0.5) * {self.stride}, "
                        f"(i + 0.5) * {self.stride}); each labelled keypoint's Gaussian (sigma {self.sigma} heatmap px) peaks "
                        "exactly at x / stride, y / stride: no int(x + 0.5) rounding, no (size - 1) scale bias",
        }
        return card

    def recipe_card(self):
        return {"sigma": self.sigma, "stride": self.stride, "margin": self.margin, "heatmap_dtype": self.heatmap_dtype,
                "category": self.category_name}


def _keypoint_box(values) -> list[float]:
    points = np.asarray(values, np.float64).reshape(-1, 3)
    labelled = points[points[:, 2] > 0, :2]
    x0, y0 = labelled.min(axis=0)
    x1, y1 = labelled.max(axis=0) + 1.0
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
