"""Pictures for people: what ``pairgen inspect`` writes so a user can look at a dataset.

Every function here is pure apart from the PNG it is asked to write: it returns a uint8 RGB
array of shape (H, W, 3), draws no random numbers and never modifies its input. Arrays are in
RGB order everywhere, on disk too (OpenCV's BGR is converted at the single write below).

Conventions (the same as the rest of pairgen):

* optical flow is float (H, W, 2) holding (dx, dy) in pixels, x right, y down;
* depth is planar depth (camera-space z along the optical axis), float (H, W); 0 means
  "no surface" (background, invalid);
* instance ids are unsigned integers (H, W), 0 = background.

matplotlib is imported inside ``parameter_histograms`` only, through its object-oriented Agg
canvas (no pyplot, no global backend switch), so importing this module stays cheap.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .encoding import decode_image

__all__ = [
    "flow_to_color",
    "flow_wheel_legend",
    "depth_to_color",
    "segmentation_to_color",
    "mask_overlay",
    "mask_to_color",
    "hole_overlay",
    "gray_to_rgb",
    "normals_to_color",
    "heatmaps_to_color",
    "ab_to_color",
    "VIEWS",
    "guess_view",
    "field_to_rgb",
    "field_caption",
    "depth_colorbar",
    "contact_sheet",
    "parameter_histograms",
    "bin_chart",
]

# ---------------------------------------------------------------------------------------------
# Optical flow: the Middlebury color code (Baker et al., "A Database and Evaluation Methodology
# for Optical Flow", IJCV 2011; the colorcode.cpp / computeColor.m of the benchmark).
# ---------------------------------------------------------------------------------------------

# Segment lengths of the wheel, chosen by Baker et al. so that perceptually similar hues
# (red-yellow, blue-magenta) get more entries: red -> yellow -> green -> cyan -> blue -> magenta.
_WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))

# The benchmark's UNKNOWN_FLOW_THRESH: larger vectors mark "no flow known" in .flo files.
UNKNOWN_FLOW_THRESHOLD = 1e9


def _make_flow_wheel() -> np.ndarray:
    """The 55 x 3 wheel of the published scheme, RGB values 0..255 (float64)."""
    rows = []
    for segment, length in _WHEEL_SEGMENTS:
        for i in range(length):
            ramp = math.floor(255 * i / length)
            rows.append({
                "RY": (255, ramp, 0),
                "YG": (255 - ramp, 255, 0),
                "GC": (0, 255, ramp),
                "CB": (0, 255 - ramp, 255),
                "BM": (ramp, 0, 255),
                "MR": (255, 0, 255 - ramp),
            }[segment])
    return np.asarray(rows, dtype=np.float64)


_FLOW_WHEEL = _make_flow_wheel()


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Color optical flow with the Middlebury wheel; returns uint8 RGB (H, W, 3).

    flow: float (H, W, 2), (dx, dy) in pixels, x right, y down.
    max_magnitude: the magnitude, in pixels, drawn fully saturated. Default: the largest finite
        magnitude in ``flow``, so the strongest motion is fully saturated.

    Hue gives the direction (standard orientation, y down as in image rows): +x (right) red,
    +y (down) yellow, -x (left) cyan-blue, -y (up) blue-violet. Saturation grows with
    magnitude / max_magnitude: zero flow is white. As in the published code, vectors longer than
    max_magnitude keep their hue at 75 % brightness. NaN, inf and vectors longer than
    1e9 px (the benchmark's "unknown flow") are black.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow_to_color: expected flow of shape (H, W, 2), got {flow.shape}")
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        magnitude = np.hypot(u, v)
    valid = np.isfinite(magnitude) & (magnitude <= UNKNOWN_FLOW_THRESHOLD)
    u = np.where(valid, u, 0.0)
    v = np.where(valid, v, 0.0)
    magnitude = np.where(valid, magnitude, 0.0)

    if max_magnitude is None:
        scale = float(magnitude.max()) if magnitude.size else 0.0
    else:
        scale = float(max_magnitude)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"flow_to_color: max_magnitude must be a positive number, got {max_magnitude!r}")
    if scale <= 0:  # all-zero (or all-invalid) flow: everything is the white centre
        scale = 1.0
    radius = magnitude / scale

    n = len(_FLOW_WHEEL)
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; -1 and +1 are both "+x" (red)
    position = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % n
    frac = (position - k0)[..., None]
    color = ((1 - frac) * _FLOW_WHEEL[k0] + frac * _FLOW_WHEEL[k1]) / 255.0
    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), color * 0.75)
    rgb = np.floor(255 * color).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def flow_wheel_legend(size: int = 64) -> np.ndarray:
    """The flow color code as a square legend image, uint8 RGB (size, size, 3).

    Each pixel shows the color of a flow vector pointing from the image centre to that pixel
    (x right, y down), with max_magnitude = size / 2: the inscribed disk is the saturating
    range and the corners show the darker out-of-range colors, like the benchmark's legend.
    """
    if size < 1:
        raise ValueError(f"flow_wheel_legend: size must be >= 1, got {size}")
    coords = np.arange(size, dtype=np.float32) + 0.5 - size / 2  # pixel centres
    dx, dy = np.meshgrid(coords, coords)
    return flow_to_color(np.stack([dx, dy], axis=-1), max_magnitude=size / 2)


# ---------------------------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------------------------

# Percentiles of the valid depths that bound the default range: robust to a few far outliers
# (a sliver of sky at 1e10) and to a few near ones.
DEPTH_PERCENTILES = (2.0, 98.0)
# The first entries of magma are nearly black; valid surfaces start above them so that the
# farthest surface never looks like "no surface".
_DEPTH_LUT_START = 40
# "No surface" (depth 0, NaN, background): a teal that magma never reaches, so it cannot be
# read as "very far".
NO_SURFACE_COLOR = (0, 150, 150)


def _magma_lut() -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, cv2.COLORMAP_MAGMA)  # (256, 1, 3) BGR
    return np.ascontiguousarray(bgr[:, 0, ::-1])


_MAGMA = _magma_lut()


def depth_range(depth: np.ndarray) -> tuple[float, float] | None:
    """(near, far): the ``DEPTH_PERCENTILES`` of the valid depths, the default colour range;
    None without a surface."""
    z = np.asarray(depth, dtype=np.float64)
    valid = z[np.isfinite(z) & (z > 0)]
    if not valid.size:
        return None
    low, high = np.percentile(valid, DEPTH_PERCENTILES)
    return float(low), float(high)


def depth_colorbar(width: int = 192) -> np.ndarray:
    """The depth colour key: a bar from near (bright, left) to far (dark, right), linear in
    inverse depth, labelled, with the "no surface" swatch; uint8 RGB."""
    height = 58
    key = np.empty((height, width, 3), np.uint8)
    key[:] = _SHEET_BACKGROUND
    bar = np.linspace(255, _DEPTH_LUT_START, width - 8).round().astype(np.intp)
    key[4:22, 4:width - 4] = _MAGMA[bar][None]
    _put_text(key, "near", 4, 30)
    far = "far"
    _put_text(key, far, width - 4 - cv2.getTextSize(far, _FONT, _FONT_SCALE, 1)[0][0], 30)
    key[40:54, 4:22] = NO_SURFACE_COLOR
    _put_text(key, _fit_text("no surface", width - 30), 28, 47)
    return key


def depth_to_color(depth: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """Color planar depth with magma over inverse depth; returns uint8 RGB (H, W, 3).

    depth: (H, W) or (H, W, 1), planar z in scene units; 0, negative and non-finite = no surface.
    near, far: the depths mapped to the brightest and the darkest colors; values outside are
        clipped. Default: the 2nd and 98th percentiles of the valid depths of this image.

    Inverse depth (1/z) is what a viewer reads as "how near": it is linear in disparity and
    keeps nearby detail apart while a far background shares a few dark colors. magma is
    perceptually uniform and its lightness rises monotonically, so nearer is always brighter;
    no surface is ``NO_SURFACE_COLOR`` (teal), a colour magma never takes.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth_to_color: expected depth of shape (H, W), got {depth.shape}")
    z = depth.astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    rgb = np.empty(z.shape + (3,), dtype=np.uint8)
    rgb[:] = NO_SURFACE_COLOR
    if not valid.any():
        return rgb
    if near is None or far is None:
        low, high = depth_range(z)
        near = float(low) if near is None else float(near)
        far = float(high) if far is None else float(far)
    if not (near > 0 and far > 0):
        raise ValueError(f"depth_to_color: near and far must be positive, got near={near}, far={far}")
    far = max(far, near)
    inv_near, inv_far = 1.0 / near, 1.0 / far
    inverse = 1.0 / z[valid]
    if inv_near > inv_far:
        t = np.clip((inverse - inv_far) / (inv_near - inv_far), 0.0, 1.0)
    else:  # a flat range: every surface at the same (brightest) color
        t = np.ones_like(inverse)
    index = np.rint(_DEPTH_LUT_START + t * (255 - _DEPTH_LUT_START)).astype(np.intp)
    rgb[valid] = _MAGMA[index]
    return rgb


# ---------------------------------------------------------------------------------------------
# Instance ids, masks, gray
# ---------------------------------------------------------------------------------------------

# Fibonacci hashing: id * (2**16 / golden ratio) modulo 2**16 spreads consecutive ids around
# the hue circle (three-distance theorem), in exact integer arithmetic, the same on every run.
_GOLDEN_HUE_STEP = 40503
_ID_SATURATIONS = np.array([0.95, 0.55])
_ID_VALUES = np.array([1.0, 0.7])


def _id_colors(ids: np.ndarray) -> np.ndarray:
    """Colors for integer ids >= 1 (any shape) -> uint8 RGB (..., 3)."""
    ids = ids.astype(np.int64)
    hue = ((ids * _GOLDEN_HUE_STEP) & 0xFFFF).astype(np.float32) * np.float32(360 / 65536)
    # Cycling saturation and value separates ids whose hues come close.
    saturation = _ID_SATURATIONS[(ids // 2) % 2].astype(np.float32)
    value = _ID_VALUES[ids % 2].astype(np.float32)
    hsv = np.stack([hue, saturation, value], axis=-1).reshape(-1, 1, 3)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).reshape(ids.shape + (3,))
    return np.rint(rgb * 255).astype(np.uint8)


def segmentation_to_color(ids: np.ndarray) -> np.ndarray:
    """Color instance ids; returns uint8 RGB (H, W, 3).

    ids: integer (H, W) or (H, W, 1), usually uint16; 0 = background = black.
    Each id has one fixed color (it depends on the id alone, not on the image or the run):
    hues step by the golden angle so neighbouring ids differ strongly, and saturation and
    brightness alternate; no color is darker than 70 % value, so none reads as background.
    """
    ids = np.asarray(ids)
    if ids.ndim == 3 and ids.shape[2] == 1:
        ids = ids[..., 0]
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"segmentation_to_color: expected integer ids of shape (H, W), got {ids.dtype} {ids.shape}")
    unique, inverse = np.unique(ids, return_inverse=True)
    palette = _id_colors(unique)
    palette[unique <= 0] = 0
    return palette[inverse.reshape(ids.shape)]


def mask_to_color(mask: np.ndarray, color: Sequence[int] = (255, 255, 255)) -> np.ndarray:
    """A mask as uint8 RGB (H, W, 3): ``color`` where set, black elsewhere.

    mask: (H, W) or (H, W, 1); bool, uint8 with values 0/1 or 0..255, or float in [0, 1]
    (soft masks blend from black to ``color``).
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"mask_to_color: expected a mask of shape (H, W), got {mask.shape}")
    if mask.dtype == bool:
        weight = mask.astype(np.float32)
    elif mask.dtype == np.uint8:
        weight = mask.astype(np.float32) / (1.0 if mask.max(initial=0) <= 1 else 255.0)
    else:
        weight = np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0)
    rgb = weight[..., None] * np.asarray(color, dtype=np.float32)
    return np.rint(rgb).astype(np.uint8)


def mask_overlay(image: np.ndarray, mask: np.ndarray, color: Sequence[int] = (255, 40, 40)) -> np.ndarray:
    """uint8 RGB ``image`` with ``mask`` (as in ``mask_to_color``) painted over it in ``color``
    at 60 %; a mask of another size is resized (nearest) to the image."""
    weight = mask_to_color(mask)[..., 0].astype(np.float32) / 255.0
    if weight.shape != image.shape[:2]:
        weight = cv2.resize(weight, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    weight = 0.6 * weight[..., None]
    return np.rint(image * (1.0 - weight) + np.asarray(color, np.float32) * weight).astype(np.uint8)


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """A single-channel image as uint8 RGB (H, W, 3).

    gray: (H, W) or (H, W, 1); uint8 as is, uint16 scaled by 1/257, bool to 0/255, float
    taken as [0, 1] and clipped (NaN -> 0).
    """
    gray = np.asarray(gray)
    if gray.ndim == 3 and gray.shape[2] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2:
        raise ValueError(f"gray_to_rgb: expected a gray image of shape (H, W), got {gray.shape}")
    if gray.dtype == np.uint8:
        gray8 = gray
    elif gray.dtype == bool:
        gray8 = gray.astype(np.uint8) * 255
    elif gray.dtype == np.uint16:
        gray8 = np.rint(gray / 257.0).astype(np.uint8)
    else:
        gray8 = np.rint(np.clip(np.nan_to_num(gray.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(gray8[..., None], 3, axis=2)


# ---------------------------------------------------------------------------------------------
# Normals, heatmaps, chroma
# ---------------------------------------------------------------------------------------------


def normals_to_color(normals: np.ndarray) -> np.ndarray:
    """Unit normals (H, W, 3), any frame, as uint8 RGB: (n + 1) / 2 per axis (x -> R, y -> G,
    z -> B); zero vectors (no surface) are black."""
    normals = np.asarray(normals, dtype=np.float32)
    if normals.ndim != 3 or normals.shape[2] != 3:
        raise ValueError(f"normals_to_color: expected normals of shape (H, W, 3), got {normals.shape}")
    n = np.nan_to_num(normals)
    rgb = np.rint(np.clip((n + 1.0) * 0.5, 0.0, 1.0) * 255).astype(np.uint8)
    rgb[~np.any(n != 0, axis=2)] = 0
    return rgb


def heatmaps_to_color(heatmaps: np.ndarray) -> np.ndarray:
    """Keypoint heatmaps (K, H, W), values in [0, 1], as uint8 RGB: heatmap k in the fixed colour
    of id k + 1 (the id palette), scaled by its value; where maps overlap the strongest wins."""
    heatmaps = np.nan_to_num(np.asarray(heatmaps, dtype=np.float32))
    if heatmaps.ndim == 2:
        heatmaps = heatmaps[None]
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps_to_color: expected heatmaps of shape (K, H, W), got {heatmaps.shape}")
    k, h, w = heatmaps.shape
    if k == 0:
        return np.zeros((h, w, 3), np.uint8)
    strongest = heatmaps.argmax(axis=0)
    value = np.clip(heatmaps.max(axis=0), 0.0, 1.0)
    colors = _id_colors(np.arange(1, k + 1)).astype(np.float32)
    return np.rint(colors[strongest] * value[..., None]).astype(np.uint8)


def _class_palette() -> np.ndarray:
    """(256, 3) uint8: the PASCAL VOC colour map (each id's bits spread over the high bits of
    R, G and B), 0 black; 255, the ignore label, white."""
    ids = np.arange(256)
    palette = np.zeros((256, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * shift + channel)) & 1) << (7 - shift)
    palette[255] = 255
    return palette.astype(np.uint8)


_CLASS_PALETTE = _class_palette()


def classes_to_color(classes: np.ndarray) -> np.ndarray:
    """Semantic class ids (H, W) uint8 as uint8 RGB: one fixed colour per class (the PASCAL VOC
    colour map, a different palette from instance ids), 0 background black, 255 ignore white."""
    classes = _single(np.asarray(classes))
    if classes.ndim != 2 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"classes_to_color: expected integer class ids of shape (H, W), got {classes.dtype} {classes.shape}")
    return _CLASS_PALETTE[np.clip(classes, 0, 255).astype(np.intp)]


_BOUNDARY_COLOR = (255, 220, 0)
_SKELETON_COLOR = (255, 255, 255)
_OVERLAY_SIDE = 384  # annotated previews are drawn at least this large, so thin lines stay visible


def _upscaled(image: np.ndarray) -> tuple[np.ndarray, int]:
    factor = max(1, _OVERLAY_SIDE // max(image.shape[:2]))
    return (cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST) if factor > 1 else image.copy()), factor


def draw_keypoints(image: np.ndarray, keypoints, skeleton=(), heatmaps: np.ndarray | None = None) -> np.ndarray:
    """The image (uint8 RGB) with its heatmaps summed over K as a red-yellow overlay, the
    skeleton (1-based COCO pairs) and the keypoints (continuous pixel coordinates [x, y, v]; v 2
    filled dots, v 1 rings, v 0 not drawn) on top; drawn upscaled for legibility."""
    canvas, factor = _upscaled(image)
    if heatmaps is not None and np.asarray(heatmaps).size:
        heat = np.clip(np.asarray(heatmaps, np.float32).sum(axis=0), 0.0, 1.0)
        heat = cv2.resize(heat, (canvas.shape[1], canvas.shape[0]), interpolation=cv2.INTER_LINEAR)[..., None]
        colour = np.concatenate([np.ones_like(heat), heat, np.zeros_like(heat)], axis=2) * 255.0
        canvas = np.rint(canvas * (1.0 - 0.6 * heat) + colour * (0.6 * heat)).astype(np.uint8)
    points = [(float(x) * factor, float(y) * factor, int(v)) for x, y, v in keypoints]
    shift = 4  # cv2 draws at sub-pixel positions with fixed-point coordinates

    def at(p):
        return int(round(p[0] * 16 - 8)), int(round(p[1] * 16 - 8))  # continuous -> OpenCV pixel-centre coordinates

    for a, b in skeleton:
        pa, pb = points[a - 1], points[b - 1]
        if pa[2] > 0 and pb[2] > 0:
            cv2.line(canvas, at(pa), at(pb), _SKELETON_COLOR, 1, cv2.LINE_AA, shift)
    colours = _id_colors(np.arange(1, len(points) + 1))
    for p, colour in zip(points, colours):
        if p[2] > 0:
            cv2.circle(canvas, at(p), 3 * 16, tuple(int(c) for c in colour), -1 if p[2] == 2 else 1, cv2.LINE_AA, shift)
    return canvas


def draw_boundaries(image: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """The image with boundary pixels (non-zero) painted in yellow."""
    out = image.copy()
    out[_single(np.asarray(boundary)) > 0] = _BOUNDARY_COLOR
    return out


def annotate(pictures: dict, sample: dict, views: dict) -> dict:
    """Preview pictures (field -> uint8 RGB) with what the sample's labels add, drawn on its
    first RGB input: keypoints and skeleton (where the json has ``keypoints``) over the summed
    heatmaps, and boundaries (fields with view ``boundary``)."""
    record = sample.get("json") if isinstance(sample.get("json"), dict) else {}
    image_field = next((n for n in pictures if views.get(n) == "rgb"), None)
    if image_field is None:
        return pictures
    out = dict(pictures)
    for name, view in views.items():
        if view == "boundary" and isinstance(sample.get(name), np.ndarray):
            out[image_field] = draw_boundaries(out[image_field], sample[name])
    if isinstance(record.get("keypoints"), list) and record["keypoints"]:
        heat = next((sample[n] for n, v in views.items() if v == "heatmap" and isinstance(sample.get(n), np.ndarray)), None)
        out[image_field] = draw_keypoints(out[image_field], record["keypoints"], record.get("skeleton", ()), heat)
    return out


# Lightness of the chroma preview: a mid gray, so every a*b* pair has a displayable colour.
_AB_LIGHTNESS = 65.0


def ab_to_color(ab: np.ndarray) -> np.ndarray:
    """CIELAB chroma (H, W, 2), a* and b* in their usual units (about -128..127), as uint8 RGB
    at a fixed lightness L* = 65: the hue and colourfulness a colorization model predicts."""
    ab = np.asarray(ab, dtype=np.float32)
    if ab.ndim != 3 or ab.shape[2] != 2:
        raise ValueError(f"ab_to_color: expected chroma of shape (H, W, 2), got {ab.shape}")
    lab = np.concatenate([np.full(ab.shape[:2] + (1,), _AB_LIGHTNESS, np.float32), np.nan_to_num(ab)], axis=2)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def rgb_to_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB(A) image as uint8 RGB: uint8 as is, alpha dropped, uint16 / 257, float as [0, 1]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
            return gray_to_rgb(image)
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    rgb = image[..., :3]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype == np.uint16:
        return np.rint(rgb / 257.0).astype(np.uint8)
    return np.rint(np.clip(np.nan_to_num(rgb.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The table of views: how every field is shown, by its card's ``view``
# ---------------------------------------------------------------------------------------------


def _single(array: np.ndarray) -> np.ndarray:
    return array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array


def _flow_view(value, reference=None):
    top = None
    if reference is not None:  # the reference's largest motion saturates, so both share a scale
        top = _flow_scale(reference) or None
    return flow_to_color(value, max_magnitude=top)


def _flow_scale(value, reference=None) -> float:
    """The magnitude (px) a flow picture saturates at: the reference's largest, else its own."""
    source = value if reference is None else reference
    magnitude = np.hypot(*np.moveaxis(np.nan_to_num(np.asarray(source, np.float64), posinf=0, neginf=0), -1, 0))
    magnitude = magnitude[magnitude <= UNKNOWN_FLOW_THRESHOLD]
    return float(magnitude.max()) if magnitude.size else 0.0


def _flow_caption(value, reference=None) -> str:
    return f"max {_flow_scale(value, reference):.3g} px"


def _depth_view(value, reference=None):
    value = _single(np.asarray(value))
    span = depth_range(_single(np.asarray(reference))) if reference is not None else None
    if span is None:
        return depth_to_color(value)
    return depth_to_color(value, near=span[0], far=span[1])


def _depth_caption(value, reference=None) -> str:
    span = depth_range(_single(np.asarray(value if reference is None else reference)))
    return "no surface" if span is None else f"{span[0]:.3g} - {span[1]:.3g}"


@dataclass(frozen=True)
class View:
    """How one kind of field becomes a picture. ``show(value, reference=None)`` -> uint8 RGB
    (H, W, 3); ``reference`` (optional) is the target a prediction is compared with, so both
    share a colour scale. ``legend()``: a key picture that ``inspect`` draws in the contact
    sheet under ``legend_title``, or None. ``caption(value, reference=None)``: the text under
    each tile that gives its scale (flow: the magnitude that saturates; depth: its near - far
    range in scene units), or None."""

    show: Callable[..., np.ndarray]
    summary: str
    legend: Callable[[], np.ndarray] | None = None
    legend_title: str = ""
    caption: Callable[..., str] | None = None  # (value, reference=None) -> the tile's scale, e.g. "max 3.2 px"
    # Shown over the sample's first target (inspect passes it as ``reference``), e.g. a hole mask.
    over_target: bool = False


def hole_overlay(mask: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """An inpainting mask (H, W), nonzero = hole, over ``image`` (uint8 RGB): holes tinted red
    (half red, half the image) with a 1-px red outline; without an image, white on black."""
    mask = _single(np.asarray(mask))
    if image is None or np.asarray(image).shape[:2] != mask.shape:
        return mask_to_color(mask)
    picture = rgb_to_rgb(image).copy()
    hole = mask > 0
    picture[hole] = (picture[hole] // 2 + np.array([127, 0, 0], np.uint8)).astype(np.uint8)
    edge = hole & ~(cv2.erode(hole.view(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) > 0)
    picture[edge] = (255, 0, 0)
    return picture


# Views whose arrays are stored channels first, (C, H, W); every other view's are (H, W[, C]).
CHANNELS_FIRST_VIEWS = frozenset({"heatmap"})

VIEWS: dict[str, View] = {
    "rgb": View(lambda v, reference=None: rgb_to_rgb(v), "8-bit (or 16-bit, or [0, 1] float) RGB as is"),
    "gray": View(lambda v, reference=None: gray_to_rgb(_single(np.asarray(v))), "one channel as gray"),
    "flow": View(_flow_view, "optical flow (dx, dy), Middlebury colour wheel, saturated at the tile's max",
                 lambda: flow_wheel_legend(128), "flow (rim = tile's max)", _flow_caption),
    "depth": View(_depth_view, "planar depth, magma over inverse depth (near bright), no surface teal",
                  depth_colorbar, "depth (range under tiles)", _depth_caption),
    "ids": View(lambda v, reference=None: segmentation_to_color(np.asarray(v)), "integer ids, one fixed colour per id, 0 = black"),
    "mask": View(lambda v, reference=None: mask_to_color(np.asarray(v)), "mask, white where set"),
    "hole": View(lambda v, reference=None: hole_overlay(v, reference), "inpainting hole mask: red over the image "
                 "(white on black alone)", over_target=True),
    "occlusion": View(lambda v, reference=None: mask_to_color(np.asarray(v)), "occlusion mask, white where occluded"),
    "heatmap": View(lambda v, reference=None: heatmaps_to_color(v), "(K, H, W) heatmaps, one id colour per channel"),
    "classes": View(lambda v, reference=None: classes_to_color(v), "semantic class ids, PASCAL VOC palette, 0 black, 255 (ignore) white"),
    "boundary": View(lambda v, reference=None: mask_to_color(np.asarray(v), _BOUNDARY_COLOR), "boundary mask, yellow where set (also drawn on the image)"),
    "normals": View(lambda v, reference=None: normals_to_color(v), "unit normals, (n + 1) / 2 as RGB, no surface black"),
    "ab": View(lambda v, reference=None: ab_to_color(v), "CIELAB a*b* chroma at L* = 65"),
}


def guess_view(value: np.ndarray) -> str:
    """The view of an array whose card says none (cards written before views, hand-made ones),
    from its shape and dtype alone: RGB(A) -> rgb, (H, W, 2) -> flow, bool -> mask, uint8 ->
    gray, other integers -> ids, float -> depth."""
    value = np.asarray(value)
    single = _single(value)
    if value.ndim == 3 and value.shape[2] in (3, 4):
        return "rgb"
    if value.ndim == 3 and value.shape[2] == 2:
        return "flow"
    if single.ndim == 2:
        if single.dtype == bool:
            return "mask"
        if single.dtype == np.uint8:
            return "gray"
        if np.issubdtype(single.dtype, np.integer):
            return "ids"
        if np.issubdtype(single.dtype, np.floating):
            return "depth"
    raise ValueError(f"cannot guess a view for an array of dtype {value.dtype} and shape {value.shape}; "
                     f"give the field a view ({', '.join(VIEWS)})")


_ENCODED_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def field_to_rgb(name: str, value: Any, view: str | None = None, reference: Any = None) -> np.ndarray | None:
    """A sample field as uint8 RGB (H, W, 3) for a preview, or None if it is not a picture.

    name: the field's key (for messages, and to tell encoded image bytes: .png, .jpg, ...).
    value: the decoded field (an array or parsed json), or encoded image bytes.
    view: the card's ``view`` of the field (a key of ``VIEWS``); None: guessed from the array
        (``guess_view``). reference: see ``View``.
    Records (json, text, anything that is not an array of 2+ dimensions) give None.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not name.lower().endswith(_ENCODED_IMAGE_SUFFIXES):
            return None
        try:
            value = decode_image(bytes(value))
        except ValueError as exc:
            raise ValueError(f"field {name!r}: {exc}") from None
    if not isinstance(value, np.ndarray) or value.ndim < 2:
        return None
    try:
        chosen = view or guess_view(value)
        if chosen not in VIEWS:
            raise ValueError(f"unknown view {chosen!r} (known: {', '.join(VIEWS)})")
        return VIEWS[chosen].show(value, reference=reference)
    except ValueError as exc:
        raise ValueError(f"field {name!r}: {exc}") from None


def field_caption(value: Any, view: str | None) -> str | None:
    """The scale text of a field's tile (``View.caption``), or None for views without one."""
    chosen = VIEWS.get(view) if view else None
    if chosen is None or chosen.caption is None or not isinstance(value, np.ndarray):
        return None
    return chosen.caption(value)


# ---------------------------------------------------------------------------------------------
# Contact sheet
# ---------------------------------------------------------------------------------------------

_SHEET_GAP = 4  # pixels between cells and around the grid
_SHEET_HEADER = 24  # height of the column-label band
_SHEET_CAPTION = 18  # height of the caption band under each row of cells
_SHEET_BACKGROUND = (32, 32, 32)
_EMPTY_CELL = (64, 64, 64)  # a missing field: visibly not an image
_TEXT_COLOR = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45


def _fit_to_cell(image: np.ndarray, cell: int) -> np.ndarray:
    """Resize to fit a cell x cell box keeping aspect: nearest up (pixels stay visible), area down."""
    height, width = image.shape[:2]
    scale = min(cell / height, cell / width)
    new_width = min(cell, max(1, round(width * scale)))
    new_height = min(cell, max(1, round(height * scale)))
    if (new_height, new_width) == (height, width):
        return image
    interpolation = cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA
    return cv2.resize(image, (new_width, new_height), interpolation=interpolation)


def _fit_text(text: str, max_width: int) -> str:
    """ASCII text (Hershey fonts have no other glyphs) shortened with '..' to fit max_width px."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))
    if cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0][0] <= max_width:
        return text
    while text and cv2.getTextSize(text + "..", _FONT, _FONT_SCALE, 1)[0][0] > max_width:
        text = text[:-1]
    return text + ".." if text else ""


def _put_text(canvas: np.ndarray, text: str, x: int, y_centre: int) -> None:
    (_, text_height), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    cv2.putText(canvas, text, (x, y_centre + text_height // 2), _FONT, _FONT_SCALE, _TEXT_COLOR, 1, cv2.LINE_AA)


def _as_cell_image(image: Any, row: int, column: int) -> np.ndarray | None:
    if image is None:
        return None
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
        return gray_to_rgb(image)
    raise ValueError(
        f"contact_sheet: cell (row {row}, column {column}) must be uint8 RGB (H, W, 3) or gray (H, W), "
        f"got {image.dtype} {image.shape}; convert fields with field_to_rgb first"
    )


def contact_sheet(
    rows: list[list[np.ndarray | None]],
    column_labels: list[str],
    path: str | os.PathLike | None,
    cell: int = 192,
    row_labels: list[str] | None = None,
    captions: list[list[str | None]] | None = None,
    legends: Sequence[tuple[str, np.ndarray]] = (),
) -> np.ndarray:
    """A grid of images, one row per sample and one column per field; returns uint8 RGB.

    rows: rows[i][j] is sample i's field j as uint8 RGB (H, W, 3) or gray (H, W); None (or a
        short row) leaves a gray empty cell.
    column_labels: one label per column, drawn in a header band.
    path: where to write the PNG (RGB on disk; parent folders are created); None writes nothing.
    cell: each image is resized to fit a cell x cell box keeping its aspect ratio, centred in
        it. Upsampling uses nearest neighbour so an LR image's pixels stay visible as blocks
        next to its HR; downsampling uses area averaging (no aliasing).
    row_labels: optional, one per row, drawn in a band on the left.
    captions: optional, captions[i][j] drawn in a band under cell (i, j) (a tile's scale).
    legends: (title, uint8 RGB key picture) drawn in a band under the grid (colour keys).
    """
    if cell < 8:
        raise ValueError(f"contact_sheet: cell must be >= 8 pixels, got {cell}")
    if not rows:
        raise ValueError("contact_sheet: no rows to draw")
    n_columns = len(column_labels)
    longest = max(len(row) for row in rows)
    if longest > n_columns:
        raise ValueError(f"contact_sheet: a row has {longest} images but there are {n_columns} column labels")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"contact_sheet: {len(row_labels)} row labels for {len(rows)} rows")

    label_width = 0
    if row_labels is not None:
        widest = max(cv2.getTextSize(_fit_text(t, cell), _FONT, _FONT_SCALE, 1)[0][0] for t in row_labels)
        label_width = min(cell, widest + 2 * _SHEET_GAP)
    left = _SHEET_GAP + label_width
    caption_band = _SHEET_CAPTION if captions and any(any(c for c in row) for row in captions) else 0
    pitch_y = cell + caption_band + _SHEET_GAP
    pitch = cell + _SHEET_GAP
    keys = [(title, _fit_to_cell(np.asarray(image, np.uint8), cell)) for title, image in legends]
    legend_band = (_SHEET_HEADER + max(k.shape[0] for _, k in keys) + _SHEET_GAP) if keys else 0
    height = _SHEET_HEADER + len(rows) * pitch_y + legend_band
    width = max(left + n_columns * pitch, left + len(keys) * pitch)
    sheet = np.empty((height, width, 3), dtype=np.uint8)
    sheet[:] = _SHEET_BACKGROUND

    for j, label in enumerate(column_labels):
        _put_text(sheet, _fit_text(label, cell), left + j * pitch, _SHEET_HEADER // 2)
    for i, row in enumerate(rows):
        top = _SHEET_HEADER + i * pitch_y
        for j, text in enumerate(captions[i] if captions and i < len(captions) else []):
            if text:
                _put_text(sheet, _fit_text(text, cell), left + j * pitch, top + cell + caption_band // 2)
        if row_labels is not None:
            _put_text(sheet, _fit_text(row_labels[i], label_width - _SHEET_GAP), _SHEET_GAP, top + cell // 2)
        for j in range(n_columns):
            x0 = left + j * pitch
            image = _as_cell_image(row[j], i, j) if j < len(row) else None
            if image is None:
                sheet[top:top + cell, x0:x0 + cell] = _EMPTY_CELL
                continue
            fitted = _fit_to_cell(image, cell)
            dy = (cell - fitted.shape[0]) // 2
            dx = (cell - fitted.shape[1]) // 2
            sheet[top + dy:top + dy + fitted.shape[0], x0 + dx:x0 + dx + fitted.shape[1]] = fitted
    top = _SHEET_HEADER + len(rows) * pitch_y
    for j, (title, key) in enumerate(keys):
        _put_text(sheet, _fit_text(title, cell), left + j * pitch, top + _SHEET_HEADER // 2)
        sheet[top + _SHEET_HEADER:top + _SHEET_HEADER + key.shape[0], left + j * pitch:left + j * pitch + key.shape[1]] = key

    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OSError(f"contact_sheet: could not write {path}")
    return sheet


# ---------------------------------------------------------------------------------------------
# Parameter histograms
# ---------------------------------------------------------------------------------------------

_HISTOGRAM_COLUMNS = 4
_MAX_BINS = 30


def _split_values(values: list) -> tuple[list, int, bool]:
    """-> (present values, count of missing ones (None / NaN), whether they are categorical)."""
    present = []
    for value in values:
        if value is None or (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                             and math.isnan(float(value))):
            continue
        present.append(value)
    categorical = any(not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)) for v in present)
    return present, len(values) - len(present), categorical


def parameter_histograms(values: dict[str, list], path: str | os.PathLike, title: str = "") -> None:
    """Write a PNG with one small histogram per parameter.

    values: parameter name (e.g. "blur.sigma_x", "jpeg.quality") -> the values drawn across the
        dataset. Numbers give a histogram; strings and booleans (or a mix) give bar counts per
        category; None / NaN (the op was not applied) are left out and counted in the subplot
        title. An empty dict gives a figure saying "no parameters".
    path: the PNG to write (parent folders are created).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(values)
    n_columns = max(1, min(_HISTOGRAM_COLUMNS, len(names)))
    n_rows = max(1, math.ceil(len(names) / n_columns))
    figure = Figure(figsize=(3.2 * n_columns, 2.4 * n_rows + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title)

    if not names:
        axes = figure.add_subplot(1, 1, 1)
        axes.text(0.5, 0.5, "no parameters", ha="center", va="center", fontsize=14)
        axes.set_axis_off()
    for index, name in enumerate(names):
        axes = figure.add_subplot(n_rows, n_columns, index + 1)
        present, missing, categorical = _split_values(list(values[name]))
        heading = f"{name} (n={len(present)}" + (f", {missing} none)" if missing else ")")
        axes.set_title(heading, fontsize=9)
        axes.tick_params(labelsize=7)
        if not present:
            axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes)
            axes.set_xticks([])
            axes.set_yticks([])
            continue
        if categorical:
            labels, counts = np.unique(np.asarray([str(v) for v in present]), return_counts=True)
            axes.bar(np.arange(len(labels)), counts, color="tab:orange")
            axes.set_xticks(np.arange(len(labels)))
            axes.set_xticklabels(labels, rotation=45 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
        else:
            numeric = np.asarray(present, dtype=np.float64)
            finite = numeric[np.isfinite(numeric)]
            bins: Any = min(_MAX_BINS, max(1, len(np.unique(finite))))
            if finite.size and np.all(finite == np.round(finite)) and finite.max() - finite.min() < _MAX_BINS:
                bins = np.arange(finite.min(), finite.max() + 2) - 0.5  # integers: one bar each
            axes.hist(finite, bins=bins, color="tab:blue")
        axes.set_ylabel("count", fontsize=7)

    # Leave the title its own band: tight_layout alone lets the first row's titles run into it.
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()) if title else None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(str(path), format="png")


def bin_chart(bins: dict[str, int], path: str | os.PathLike, title: str = "") -> None:
    """Write a PNG bar chart of counts per named bin (e.g. hole ratio per standard bin), in the
    given order, each bar labelled with its count."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(4.0, 0.9 * len(bins)), 3.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(bins))
    bars = axes.bar(positions, list(bins.values()), color="tab:red")
    axes.bar_label(bars, fontsize=8)
    axes.set_xticks(positions)
    axes.set_xticklabels(list(bins), fontsize=8)
    axes.set_ylabel("samples", fontsize=8)
    if title:
        axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(str(path), format="png")
