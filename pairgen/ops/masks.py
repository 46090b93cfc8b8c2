"""Inpainting hole generators.

A mask pipeline carries the mask drawn so far as the pipeline image: float32 (H, W, 3), 1.0 =
hole, 0.0 = kept (all three channels equal), the op contract's image; or, what the inpaint
task passes because it is ten times cheaper at 512 px, a uint8 (H, W) mask of 0 / 1. Every
operation here adds its holes to it (the union) and returns a new array of the same kind, so a
recipe composes families with ``one_of`` (a mixture) or by listing several (a union). The
inpaint task starts each sample from an empty canvas.

Coordinates are continuous pixels, x right, y down, pixel (i, j) centred at (j + 0.5, i + 0.5);
strokes are drawn by OpenCV with 1/16 px sub-pixel positions and round caps. Sizes written
"at ``reference_size``" are scaled by min(H, W) / reference_size, so a published 256-px preset
keeps its look on other crops (and is exact at 256).

Differences from the public generators, on purpose (see README, "Inpainting masks"):
LaMa's stroke angles take 4 values (0.01 + randint(4) rad): here they are uniform on
[0, 2 pi); LaMa and DeepFill clip stroke vertices to the image, piling strokes onto the border:
here strokes may leave the frame and only their visible part is drawn; DeepFill's flips are
thrown away (and its width/height swapped): here they are applied, on any aspect ratio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import cv2
import numpy as np

from .base import register
from .util import check_prob, check_range

SUBPIXEL_SHIFT = 4  # OpenCV drawing: coordinates in 1/16 px
_ONE = 1 << SUBPIXEL_SHIFT


def holes_of(image: np.ndarray) -> np.ndarray:
    """The pipeline image -> a new uint8 (H, W): 1 where a hole is, else 0."""
    if image.ndim == 2:
        return image.copy()
    return (image[..., 0] > 0.5).view(np.uint8)


def as_canvas(holes: np.ndarray, like: np.ndarray) -> np.ndarray:
    """uint8 (H, W) of 0 / 1 -> a pipeline image of the kind of ``like``."""
    if like.ndim == 2:
        return holes
    return cv2.cvtColor(holes.astype(np.float32), cv2.COLOR_GRAY2RGB)


def _scale(image_shape, reference_size: int) -> float:
    return min(image_shape[0], image_shape[1]) / float(reference_size)


def _fixed(x: float) -> int:
    """A continuous pixel coordinate -> OpenCV's fixed point (its integer coordinates are pixel centres)."""
    return int(round((x - 0.5) * _ONE))


def _draw_polyline(holes: np.ndarray, points, width: int) -> None:
    pts = [(_fixed(x), _fixed(y)) for x, y in points]
    if len(pts) == 1:
        pts = pts * 2
    for a, b in zip(pts[:-1], pts[1:]):
        cv2.line(holes, a, b, 1, max(1, int(width)), cv2.LINE_8, SUBPIXEL_SHIFT)


def _q(x: float) -> float:
    """Round a coordinate to the drawing grid (1/16 px), so the record says exactly what is drawn."""
    return round(x * _ONE) / _ONE


def _resolve(config, presets: dict, defaults: dict, op: str) -> None:
    """Fill a config's unset (None) fields from its preset, then from the op's defaults; a
    preset and explicit values of the fields it sets together are an error."""
    chosen = {}
    if config.preset:
        if config.preset not in presets:
            raise ValueError(f"{op}.preset: unknown preset {config.preset!r}; known: {', '.join(presets)}")
        chosen = presets[config.preset]
        clash = [k for k in chosen if getattr(config, k) is not None]
        if clash:
            raise ValueError(f"{op}: preset {config.preset!r} sets {', '.join(clash)}; give either the preset or the values")
    for f in fields(config):
        if getattr(config, f.name) is None:
            object.__setattr__(config, f.name, chosen.get(f.name, defaults.get(f.name)))


# ----------------------------------------------------------------------------- irregular strokes (LaMa)

# LaMa's published evaluation masks (configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml):
# strokes drawn min..max times (inclusive), each 1-5 segments of length 10 + randint(max_length)
# and width 5 + randint(max_width) px. The medium and thick presets mix in boxes (box_mask).
IRREGULAR_PRESETS = {
    "thin_256": {"min_strokes": 4, "max_strokes": 50, "max_width": 10, "max_length": 40, "reference_size": 256},
    "medium_256": {"min_strokes": 4, "max_strokes": 5, "max_width": 50, "max_length": 100, "reference_size": 256},
    "thick_256": {"min_strokes": 1, "max_strokes": 5, "max_width": 100, "max_length": 200, "reference_size": 256},
    "thin_512": {"min_strokes": 4, "max_strokes": 70, "max_width": 20, "max_length": 100, "reference_size": 512},
    "medium_512": {"min_strokes": 4, "max_strokes": 10, "max_width": 100, "max_length": 200, "reference_size": 512},
    "thick_512": {"min_strokes": 1, "max_strokes": 5, "max_width": 250, "max_length": 450, "reference_size": 512},
}
# LaMa's training masks (big-lama): 1-5 strokes, max width 100, max length 200 at 256 px.
_IRREGULAR_DEFAULTS = {"min_strokes": 1, "max_strokes": 5, "max_width": 100, "max_length": 200, "max_segments": 5,
                       "reference_size": 256}


@dataclass(frozen=True)
class IrregularConfig:
    """preset: one of IRREGULAR_PRESETS (thin/medium/thick at 256 or 512 px) or "" for the
    values given. Strokes: min..max (inclusive), each of 1..max_segments segments from a uniform
    start; segment length 10 + randint(max_length), width 5 + randint(max_width), pixels at
    reference_size; segment angle uniform on [0, 2 pi)."""

    preset: str = ""
    min_strokes: int | None = None
    max_strokes: int | None = None
    max_width: int | None = None
    max_length: int | None = None
    max_segments: int | None = None
    reference_size: int | None = None

    def __post_init__(self):
        _resolve(self, IRREGULAR_PRESETS, _IRREGULAR_DEFAULTS, "irregular_mask")
        check_range("irregular_mask", "strokes", (self.min_strokes, self.max_strokes), low=0)
        if min(self.max_width, self.max_length, self.max_segments, self.reference_size) < 1:
            raise ValueError("irregular_mask: max_width, max_length, max_segments and reference_size must be >= 1")


@dataclass(frozen=True)
class StrokeSegmentsParams:
    """segments: (x0, y0, x1, y1, width) per segment, continuous pixels and whole pixels."""

    segments: tuple


def _irregular_sample(rng, config: IrregularConfig, image_shape, ctx) -> StrokeSegmentsParams:
    h, w = image_shape[:2]
    s = _scale(image_shape, config.reference_size)
    strokes = int(rng.integers(config.min_strokes, config.max_strokes + 1))
    starts = rng.uniform((0, 0), (w, h), size=(strokes, 2))
    counts = 1 + rng.integers(config.max_segments, size=strokes)  # segments per stroke
    total = int(counts.sum())
    angle = rng.uniform(0.0, 2.0 * math.pi, total)
    length = (10 + rng.integers(config.max_length, size=total)) * s
    width = np.maximum(1, np.round((5 + rng.integers(config.max_width, size=total)) * s)).astype(int)
    steps = np.stack([length * np.cos(angle), length * np.sin(angle)], axis=1)
    # A segment ends at its stroke's start plus the stroke's steps so far: a running sum over all
    # segments minus the sum before the stroke's first segment; it begins where the last ended.
    first = np.cumsum(counts) - counts  # index of each stroke's first segment
    stroke = np.repeat(np.arange(strokes), counts)
    running = np.cumsum(steps, axis=0)
    ends = starts[stroke] + running - (running[first] - steps[first])[stroke]
    begins = np.empty_like(ends)
    begins[1:] = ends[:-1]
    begins[first] = starts
    grid = lambda a: np.round(a * _ONE) / _ONE  # noqa: E731  (the 1/16-px drawing grid)
    table = np.hstack([grid(begins), grid(ends)]).tolist()
    return StrokeSegmentsParams(tuple((x0, y0, x1, y1, wd) for (x0, y0, x1, y1), wd in zip(table, width.tolist())))


def _segments_apply(image: np.ndarray, params: StrokeSegmentsParams) -> np.ndarray:
    holes = holes_of(image)
    if params.segments:
        table = np.asarray(params.segments, np.float64)
        fixed = np.round((table[:, :4] - 0.5) * _ONE).astype(np.int64).tolist()
        for (x0, y0, x1, y1), width in zip(fixed, table[:, 4].astype(int).tolist()):
            cv2.line(holes, (x0, y0), (x1, y1), 1, max(1, width), cv2.LINE_8, SUBPIXEL_SHIFT)
    return as_canvas(holes, image)


register("irregular_mask", "irregular strokes (LaMa / NVIDIA style, thin/medium/thick presets)",
         IrregularConfig, StrokeSegmentsParams, _irregular_sample, _segments_apply)


# ----------------------------------------------------------------------------- boxes (LaMa)

BOX_PRESETS = {
    "medium_256": {"min_size": 10, "max_size": 50, "reference_size": 256},
    "thick_256": {"min_size": 30, "max_size": 150, "reference_size": 256},
    "medium_512": {"min_size": 30, "max_size": 150, "reference_size": 512},
    "thick_512": {"min_size": 30, "max_size": 300, "reference_size": 512},
}
_BOX_DEFAULTS = {"min_boxes": 1, "max_boxes": 5, "min_size": 30, "max_size": 150, "margin": 0, "reference_size": 256}


@dataclass(frozen=True)
class BoxConfig:
    """Axis-aligned boxes, min..max_boxes (inclusive); each side randint(min_size, max_size) px
    at reference_size (LaMa: end exclusive), at least ``margin`` px from the border."""

    preset: str = ""
    min_boxes: int | None = None
    max_boxes: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    margin: int | None = None
    reference_size: int | None = None

    def __post_init__(self):
        _resolve(self, BOX_PRESETS, _BOX_DEFAULTS, "box_mask")
        check_range("box_mask", "boxes", (self.min_boxes, self.max_boxes), low=0)
        check_range("box_mask", "size", (self.min_size, self.max_size), low=1)


@dataclass(frozen=True)
class BoxParams:
    boxes: tuple  # (x0, y0, x1, y1) per box, whole pixels, end exclusive


def _box_sample(rng, config: BoxConfig, image_shape, ctx) -> BoxParams:
    h, w = image_shape[:2]
    s = _scale(image_shape, config.reference_size)
    margin = round(config.margin * s)
    top = max(1, min(round(config.max_size * s), h - 2 * margin, w - 2 * margin))
    low = max(1, min(round(config.min_size * s), top))
    boxes = []
    for _ in range(int(rng.integers(config.min_boxes, config.max_boxes + 1))):
        bw = int(rng.integers(low, top)) if top > low else low
        bh = int(rng.integers(low, top)) if top > low else low
        x0 = int(rng.integers(margin, max(margin, w - margin - bw) + 1))
        y0 = int(rng.integers(margin, max(margin, h - margin - bh) + 1))
        boxes.append((x0, y0, min(w, x0 + bw), min(h, y0 + bh)))
    return BoxParams(tuple(boxes))


def _box_apply(image: np.ndarray, params: BoxParams) -> np.ndarray:
    holes = holes_of(image)
    for x0, y0, x1, y1 in params.boxes:
        holes[y0:y1, x0:x1] = 1
    return as_canvas(holes, image)


register("box_mask", "axis-aligned boxes (LaMa presets)", BoxConfig, BoxParams, _box_sample, _box_apply)


# ----------------------------------------------------------------------------- free-form brush (DeepFill v2)


@dataclass(frozen=True)
class BrushConfig:
    """DeepFill v2 free-form strokes: strokes_range (inclusive), each of vertices_range
    vertices (inclusive); turning angles alternate around mean_angle +- up to angle_spread
    (radians); steps ~ N(r, r/2) clipped to [0, 2r], r = image diagonal / 8; width drawn in
    width_range px at reference_size. The whole mask is flipped left-right and up-down with
    probability 1/2 each (DeepFill intended this; its code discards the flips)."""

    strokes_range: tuple = (1, 3)
    vertices_range: tuple = (4, 11)
    mean_angle: float = 2 * math.pi / 5
    angle_spread: float = 2 * math.pi / 15
    width_range: tuple = (12.0, 40.0)
    reference_size: int = 256

    def __post_init__(self):
        check_range("brush_mask", "strokes_range", self.strokes_range, low=0)
        check_range("brush_mask", "vertices_range", self.vertices_range, low=1)
        check_range("brush_mask", "width_range", self.width_range, low=1)


@dataclass(frozen=True)
class PolylinesParams:
    """lines: (width, ((x, y), ...)) per stroke, continuous pixels."""

    lines: tuple


def _brush_sample(rng, config: BrushConfig, image_shape, ctx) -> PolylinesParams:
    h, w = image_shape[:2]
    radius = math.hypot(h, w) / 8
    s = _scale(image_shape, config.reference_size)
    strokes = []
    for _ in range(int(rng.integers(config.strokes_range[0], config.strokes_range[1] + 1))):
        n = int(rng.integers(config.vertices_range[0], config.vertices_range[1] + 1))
        a_min = config.mean_angle - rng.uniform(0, config.angle_spread)
        a_max = config.mean_angle + rng.uniform(0, config.angle_spread)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        points = [(x, y)]
        for i in range(n):
            angle = rng.uniform(a_min, a_max)
            angle = 2 * math.pi - angle if i % 2 == 0 else angle
            step = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            x, y = x + step * math.cos(angle), y + step * math.sin(angle)
            points.append((x, y))
        width = max(1, int(rng.uniform(config.width_range[0], config.width_range[1]) * s))
        strokes.append((width, points))
    flip_x, flip_y = rng.random() < 0.5, rng.random() < 0.5
    lines = tuple((width, tuple((_q(w - x if flip_x else x), _q(h - y if flip_y else y)) for x, y in points))
                  for width, points in strokes)
    return PolylinesParams(lines)


def _polylines_apply(image: np.ndarray, params: PolylinesParams) -> np.ndarray:
    holes = holes_of(image)
    for width, points in params.lines:
        _draw_polyline(holes, points, width)
    return as_canvas(holes, image)


register("brush_mask", "free-form brush strokes (DeepFill v2 style)", BrushConfig, PolylinesParams,
         _brush_sample, _polylines_apply)


# ----------------------------------------------------------------------------- scratches and cracks


@dataclass(frozen=True)
class ScratchConfig:
    """Long thin scratches (as on prints and film): count_range (inclusive) quadratic curves of
    length length_range x the image diagonal, centred uniformly, at a uniform angle, bent by
    up to bend x their length, width_range px at reference_size (whole pixels)."""

    count_range: tuple = (1, 6)
    length_range: tuple = (0.3, 1.0)
    bend: float = 0.15
    width_range: tuple = (1, 4)
    reference_size: int = 256

    def __post_init__(self):
        check_range("scratch_mask", "count_range", self.count_range, low=0)
        check_range("scratch_mask", "length_range", self.length_range, low=0)
        check_range("scratch_mask", "width_range", self.width_range, low=1)


@dataclass(frozen=True)
class CurvesParams:
    """curves: (x0, y0, cx, cy, x1, y1, width): quadratic Bezier end points and control point."""

    curves: tuple


CURVE_POINTS = 24  # polyline vertices per drawn curve


def _scratch_sample(rng, config: ScratchConfig, image_shape, ctx) -> CurvesParams:
    h, w = image_shape[:2]
    diagonal = math.hypot(h, w)
    s = _scale(image_shape, config.reference_size)
    curves = []
    for _ in range(int(rng.integers(config.count_range[0], config.count_range[1] + 1))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, math.pi)
        length = rng.uniform(*config.length_range) * diagonal
        bend = rng.uniform(-config.bend, config.bend) * length
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        width = max(1, round(int(rng.integers(config.width_range[0], config.width_range[1] + 1)) * s))
        curves.append((_q(cx - dx), _q(cy - dy), _q(cx - 2 * bend * math.sin(angle)), _q(cy + 2 * bend * math.cos(angle)),
                       _q(cx + dx), _q(cy + dy), width))
    return CurvesParams(tuple(curves))


def _curves_apply(image: np.ndarray, params: CurvesParams) -> np.ndarray:
    holes = holes_of(image)
    t = np.linspace(0.0, 1.0, CURVE_POINTS)[:, None]
    for x0, y0, cx, cy, x1, y1, width in params.curves:
        p0, c, p1 = np.array([x0, y0]), np.array([cx, cy]), np.array([x1, y1])
        points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1
        _draw_polyline(holes, points.tolist(), width)
    return as_canvas(holes, image)


register("scratch_mask", "long thin scratches (bent curves)", ScratchConfig, CurvesParams, _scratch_sample, _curves_apply)


@dataclass(frozen=True)
class CrackConfig:
    """Cracks: count_range (inclusive) jagged walks of steps_range steps of step_range px (at
    reference_size), each step turning up to +-jitter rad from the crack's heading, branching
    with branch_prob per step (a branch leaves at 0.3-1.2 rad and runs half the remaining
    steps); width_range px (whole pixels)."""

    count_range: tuple = (1, 3)
    steps_range: tuple = (20, 80)
    step_range: tuple = (3.0, 8.0)
    jitter: float = 0.7
    branch_prob: float = 0.05
    width_range: tuple = (1, 3)
    reference_size: int = 256

    def __post_init__(self):
        check_range("crack_mask", "count_range", self.count_range, low=0)
        check_range("crack_mask", "steps_range", self.steps_range, low=1)
        check_range("crack_mask", "step_range", self.step_range, low=0)
        check_range("crack_mask", "width_range", self.width_range, low=1)
        check_prob("crack_mask", "branch_prob", self.branch_prob)


def _crack_walk(rng, config, x, y, heading, steps, s, width, lines):
    points = [(_q(x), _q(y))]
    for i in range(steps):
        turn = heading + rng.uniform(-config.jitter, config.jitter)
        step = rng.uniform(*config.step_range) * s
        x, y = x + step * math.cos(turn), y + step * math.sin(turn)
        points.append((_q(x), _q(y)))
        if rng.random() < config.branch_prob and steps - i > 2:
            side = 1 if rng.random() < 0.5 else -1
            _crack_walk(rng, config, x, y, heading + side * rng.uniform(0.3, 1.2), (steps - i) // 2, s,
                        max(1, width - 1), lines)
    lines.append((width, tuple(points)))


def _crack_sample(rng, config: CrackConfig, image_shape, ctx) -> PolylinesParams:
    h, w = image_shape[:2]
    s = _scale(image_shape, config.reference_size)
    lines = []
    for _ in range(int(rng.integers(config.count_range[0], config.count_range[1] + 1))):
        width = max(1, round(int(rng.integers(config.width_range[0], config.width_range[1] + 1)) * s))
        steps = int(rng.integers(config.steps_range[0], config.steps_range[1] + 1))
        _crack_walk(rng, config, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 2 * math.pi), steps, s, width, lines)
    return PolylinesParams(tuple(lines))


register("crack_mask", "branching jagged cracks", CrackConfig, PolylinesParams, _crack_sample, _polylines_apply)


# ----------------------------------------------------------------------------- outpainting borders


@dataclass(frozen=True)
class OutpaintConfig:
    """Holes along the border (outpainting): with all_sides_prob every side loses a strip of
    U(margin_range) / 2 of the image's extent across it; otherwise one side, drawn uniformly,
    loses U(margin_range)."""

    all_sides_prob: float = 0.5
    margin_range: tuple = (0.1, 0.5)

    def __post_init__(self):
        check_prob("outpaint_mask", "all_sides_prob", self.all_sides_prob)
        check_range("outpaint_mask", "margin_range", self.margin_range, low=0)
        if self.margin_range[1] > 1:
            raise ValueError(f"outpaint_mask.margin_range: fractions of the image, at most 1, got {self.margin_range}")


@dataclass(frozen=True)
class OutpaintParams:
    margins: tuple  # (left, top, right, bottom) strip widths, whole pixels


def _outpaint_sample(rng, config: OutpaintConfig, image_shape, ctx) -> OutpaintParams:
    h, w = image_shape[:2]
    extent = (w, h, w, h)
    if rng.random() < config.all_sides_prob:
        margins = tuple(round(rng.uniform(*config.margin_range) / 2 * e) for e in extent)
    else:
        side = int(rng.integers(4))
        fraction = rng.uniform(*config.margin_range)
        margins = tuple(round(fraction * e) if i == side else 0 for i, e in enumerate(extent))
    return OutpaintParams(margins)


def _outpaint_apply(image: np.ndarray, params: OutpaintParams) -> np.ndarray:
    holes = holes_of(image)
    left, top, right, bottom = params.margins
    h, w = holes.shape
    holes[:, :left] = 1
    holes[:top] = 1
    holes[:, w - right:w if right else 0] = 1  # (w - 0: would be the whole width)
    holes[h - bottom:h if bottom else 0] = 1
    return as_canvas(holes, image)


register("outpaint_mask", "border strips (outpainting)", OutpaintConfig, OutpaintParams, _outpaint_sample, _outpaint_apply)


# ----------------------------------------------------------------------------- object-shaped holes


@dataclass(frozen=True)
class MaskShape:
    """One object silhouette of a shape library: its source (file or annotation) and its binary
    mask cropped to its bounding box, as a COCO compressed RLE string of (height, width)."""

    source: str
    rle: str
    height: int
    width: int


def shape_from_mask(source: str, hole: np.ndarray) -> MaskShape | None:
    """A library entry from a boolean (H, W) mask (True = hole), or None if it has no hole."""
    from pycocotools import mask as coco_mask

    ys, xs = np.nonzero(hole)
    if not len(ys):
        return None
    crop = np.asfortranarray(hole[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.uint8))
    rle = coco_mask.encode(crop)
    return MaskShape(source, rle["counts"].decode("ascii"), int(crop.shape[0]), int(crop.shape[1]))


def decode_shape(rle: str, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": [height, width], "counts": rle.encode("ascii")})


@dataclass(frozen=True)
class ObjectConfig:
    """Object-shaped holes from the task's shape library (``--masks DIR`` or COCO
    ``--annotations``, in ``ctx.extra["mask_shapes"]``): count_range shapes (inclusive), each
    drawn uniformly from the library, resized (aspect kept) so its bounding box's longer side is
    U(scale_range) x the image's shorter side, flipped left-right with flip_prob, and placed
    uniformly with its box inside the image (a box larger than the image: placed uniformly
    over it, the overhang cut off). Without a library the shapes are smooth random blobs
    (star-shaped outlines with 4 random harmonics) of the same sizes."""

    count_range: tuple = (1, 1)
    scale_range: tuple = (0.3, 0.8)
    flip_prob: float = 0.5

    def __post_init__(self):
        check_range("object_mask", "count_range", self.count_range, low=1)
        check_range("object_mask", "scale_range", self.scale_range, low=0)
        check_prob("object_mask", "flip_prob", self.flip_prob)


@dataclass(frozen=True)
class ObjectParams:
    """shapes: (source, rle, height, width, x0, y0, box_width, box_height, flip) per library
    shape: the entry and where its box lands (whole pixels); blobs: the outline ((x, y), ...)
    of each blob drawn instead when there is no library (continuous pixels)."""

    shapes: tuple
    blobs: tuple = ()


def _object_sample(rng, config: ObjectConfig, image_shape, ctx) -> ObjectParams:
    library = ctx.extra.get("mask_shapes") or ()
    h, w = image_shape[:2]
    placed, blobs = [], []
    for _ in range(int(rng.integers(config.count_range[0], config.count_range[1] + 1))):
        side = rng.uniform(*config.scale_range) * min(h, w)
        if not library:
            blobs.append(_blob(rng, side, w, h))
            continue
        shape = library[int(rng.integers(len(library)))]
        factor = side / max(shape.height, shape.width)
        bw, bh = max(1, round(shape.width * factor)), max(1, round(shape.height * factor))
        x0 = int(rng.integers(min(0, w - bw), max(0, w - bw) + 1))
        y0 = int(rng.integers(min(0, h - bh), max(0, h - bh) + 1))
        flip = bool(rng.random() < config.flip_prob)
        placed.append((shape.source, shape.rle, shape.height, shape.width, x0, y0, bw, bh, flip))
    return ObjectParams(tuple(placed), tuple(blobs))


BLOB_VERTICES = 48


def _blob(rng, side: float, w: int, h: int) -> tuple:
    """A smooth star-shaped outline about ``side`` px across, centred uniformly in the image."""
    theta = np.linspace(0, 2 * np.pi, BLOB_VERTICES, endpoint=False)
    radius = np.ones(BLOB_VERTICES)
    for k in range(1, 5):
        radius += rng.uniform(0, 0.5 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = np.maximum(radius, 0.2)
    radius *= side / 2 / radius.max()
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    return tuple((_q(cx + r * math.cos(t)), _q(cy + r * math.sin(t))) for r, t in zip(radius, theta))


def _object_apply(image: np.ndarray, params: ObjectParams) -> np.ndarray:
    holes = holes_of(image)
    h, w = holes.shape
    for _source, rle, sh, sw, x0, y0, bw, bh, flip in params.shapes:
        shape = decode_shape(rle, sh, sw) * np.uint8(255)
        if flip:
            shape = shape[:, ::-1]
        # Linear resize of the 0/255 silhouette, then the 50 % level: smooth outlines at any scale.
        resized = cv2.resize(np.ascontiguousarray(shape), (bw, bh), interpolation=cv2.INTER_LINEAR) > 127
        ys, xs = slice(max(0, y0), min(h, y0 + bh)), slice(max(0, x0), min(w, x0 + bw))
        part = resized[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
        holes[ys, xs] |= part.view(np.uint8)
    for outline in params.blobs:
        cv2.fillPoly(holes, [np.array([(_fixed(x), _fixed(y)) for x, y in outline], np.int32)], 1, cv2.LINE_8,
                     SUBPIXEL_SHIFT)
    return as_canvas(holes, image)


register("object_mask", "object-shaped holes from user masks or COCO segments", ObjectConfig, ObjectParams,
         _object_sample, _object_apply)
