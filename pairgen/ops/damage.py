"""Physical damage to an old print: scratches, dust and fibres, folds and creases, cracks, stains
and water marks, torn or missing corners.

Each op changes the pixels of its damage and no other (a coverage map with a hard floor: below
1/64 it is 0), so a task can label exactly the changed pixels (``restore``'s ``damage_mask``).
Geometry is in pixels of the image the op sees, x right, y down; shapes that need many numbers
(dust specks, crack paths, stain outlines) are drawn in ``apply`` from a recorded seed, so apply
stays pure and replay bit-exact. Lines and dots are rasterised antialiased at 4x and averaged
down (area), so sub-pixel widths come out as partial coverage.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from pairgen.ops.base import register
from pairgen.ops.film import linear_to_srgb, srgb_to_linear
from pairgen.ops.noise import draw_seed
from pairgen.ops.util import check_prob, check_range, clip_unit, uniform

SUPERSAMPLE = 4
MIN_COVERAGE = 1.0 / 64.0
_SHIFT = 4  # cv2 drawing: fixed-point bits for sub-pixel coordinates


def _count(rng, bounds) -> int:
    return int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))


def _canvas(height: int, width: int) -> np.ndarray:
    return np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), np.uint8)


def _points(xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2: x, y; pixel centres at +0.5) -> cv2 fixed-point points on the 4x
    canvas, shape (..., 1, 2)."""
    return np.rint(xy * SUPERSAMPLE * (1 << _SHIFT)).astype(np.int32).reshape(*xy.shape[:-1], 1, 2)


def _thickness(width_px: float) -> int:
    return max(1, int(round(width_px * SUPERSAMPLE)))


# coverage of an 8-bit canvas mean (an INTER_AREA level), with the floor: level / 255, 0 below MIN_COVERAGE
_LEVEL_COVERAGE = np.arange(256, dtype=np.float32) * np.float32(1 / 255)
_LEVEL_COVERAGE[_LEVEL_COVERAGE < MIN_COVERAGE] = 0.0


def _paint(out: np.ndarray, canvas: np.ndarray, value: float, opacity: float = 1.0) -> None:
    """Blend ``out`` (float32, in [0, 1]; in place) towards the gray ``value`` by the canvas's
    coverage times ``opacity``, clipped to [0, 1]. Only the LR pixels under the box of the canvas's
    drawn pixels are computed: elsewhere the coverage is 0 and the pixel stays as it is. Coverage is
    the area mean of each 4x4 block (one block per LR pixel, so a box's means are the whole canvas's)."""
    x, y, box_w, box_h = cv2.boundingRect(canvas)
    if box_w == 0:
        return
    x0, y0, x1, y1 = x // SUPERSAMPLE, y // SUPERSAMPLE, -(-(x + box_w) // SUPERSAMPLE), -(-(y + box_h) // SUPERSAMPLE)
    levels = cv2.resize(canvas[y0 * SUPERSAMPLE:y1 * SUPERSAMPLE, x0 * SUPERSAMPLE:x1 * SUPERSAMPLE], (x1 - x0, y1 - y0),
                        interpolation=cv2.INTER_AREA)
    alpha = _rgb(cv2.LUT(levels, _LEVEL_COVERAGE * np.float32(opacity)))
    region = out[y0:y1, x0:x1]
    # x (1 - a) + value a: where a is 0 that is x itself, the same as leaving the pixel alone
    mixed = region * (1.0 - alpha)
    mixed += np.float32(value) * alpha
    region[...] = clip_unit(mixed)


def _rgb(gray: np.ndarray) -> np.ndarray:
    """(H, W) float32 -> (H, W, 3), the value repeated: numpy broadcasts a trailing axis of 3 slowly."""
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


@functools.cache
def _bezier_weights(n: int) -> tuple:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2, 2 * (1 - t) * t, t**2


def _beziers(p0: np.ndarray, p1: np.ndarray, control: np.ndarray, n: int) -> np.ndarray:
    """Quadratic Bezier curves at n evenly spaced t: (k, 2) ends and controls -> (k, n, 2) points,
    (1 - t)^2 p0 + 2 (1 - t) t control + t^2 p1."""
    a, b, c = _bezier_weights(n)
    return a * p0[:, None] + b * control[:, None] + c * p1[:, None]


def _uniform(u: float, low: float, high: float) -> float:
    """The value rng.uniform(low, high) gives for the double u = rng.random() it draws (numpy
    computes low + (high - low) u): a block of rng.random() stands for a run of uniform draws."""
    return low + (high - low) * u


# ----------------------------------------------------------------------------- scratches


@dataclass(frozen=True)
class ScratchesConfig:
    count_range: tuple = (1, 6)
    width_range: tuple = (0.5, 2.5)  # pixels
    length_range: tuple = (0.3, 1.0)  # fraction of the image diagonal
    bend_range: tuple = (0.0, 0.15)  # sideways bow of the curve, fraction of its length
    bright_prob: float = 0.7  # emulsion scraped off a print shows the white base; a negative's scratch prints dark
    opacity_range: tuple = (0.6, 1.0)

    def __post_init__(self):
        check_range("scratches", "count_range", self.count_range, low=1)
        check_range("scratches", "width_range", self.width_range, low=0.1)
        check_range("scratches", "length_range", self.length_range, low=0.0)
        check_range("scratches", "bend_range", self.bend_range)
        check_range("scratches", "opacity_range", self.opacity_range, low=0.0)
        check_prob("scratches", "bright_prob", self.bright_prob)


@dataclass(frozen=True)
class ScratchesParams:
    # each: (x0, y0, x1, y1, control_x, control_y, width_px, value, opacity), pixels
    scratches: tuple


def _sample_scratches(rng, config: ScratchesConfig, image_shape, ctx):
    h, w = image_shape[:2]
    diagonal = math.hypot(h, w)
    out = []
    for _ in range(_count(rng, config.count_range)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(-math.pi, math.pi)
        length = uniform(rng, config.length_range) * diagonal
        dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
        bend = uniform(rng, config.bend_range) * length * (1 if rng.random() < 0.5 else -1)
        control = (x - bend * math.sin(angle), y + bend * math.cos(angle))
        bright = rng.random() < config.bright_prob
        value = rng.uniform(0.85, 1.0) if bright else rng.uniform(0.0, 0.15)
        out.append(tuple(float(v) for v in (x - dx, y - dy, x + dx, y + dy, *control, uniform(rng, config.width_range),
                                            value, uniform(rng, config.opacity_range))))
    return ScratchesParams(tuple(out))


def _apply_scratches(image, params: ScratchesParams):
    if not params.scratches:
        return image.copy()
    h, w = image.shape[:2]
    table = np.array(params.scratches)
    curves = _points(_beziers(table[:, 0:2], table[:, 2:4], table[:, 4:6], 48))
    out = clip_unit(image.copy())  # in [0, 1] already: what painting clips to
    for curve, (width_px, value, opacity) in zip(curves, table[:, 6:9].tolist()):
        canvas = _canvas(h, w)  # one each: a scratch is painted over the ones before it
        cv2.polylines(canvas, [curve], False, 255, _thickness(width_px), cv2.LINE_AA, _SHIFT)
        _paint(out, canvas, value, opacity)
    return out


register("scratches", "long thin bright or dark curves (scratched emulsion)", ScratchesConfig, ScratchesParams,
         _sample_scratches, _apply_scratches)


# ----------------------------------------------------------------------------- dust


@dataclass(frozen=True)
class DustConfig:
    count_range: tuple = (5, 120)  # specks
    radius_range: tuple = (0.3, 1.8)  # pixels
    dark_prob_range: tuple = (0.2, 0.8)  # dust on the print is dark; on the negative it prints white
    fibre_range: tuple = (0, 4)  # hairs and fibres: short curved strands

    def __post_init__(self):
        check_range("dust", "count_range", self.count_range, low=0)
        check_range("dust", "radius_range", self.radius_range, low=0.1)
        check_range("dust", "dark_prob_range", self.dark_prob_range, low=0.0)
        check_range("dust", "fibre_range", self.fibre_range, low=0)


@dataclass(frozen=True)
class DustParams:
    specks: int
    fibres: int
    radius_min: float
    radius_max: float
    dark_prob: float
    seed: int


def _sample_dust(rng, config: DustConfig, image_shape, ctx):
    return DustParams(_count(rng, config.count_range), _count(rng, config.fibre_range), float(config.radius_range[0]),
                      float(config.radius_range[1]), uniform(rng, config.dark_prob_range), draw_seed(rng))


def _apply_dust(image, params: DustParams):
    h, w = image.shape[:2]
    rng = np.random.default_rng(params.seed)
    dark, bright = _canvas(h, w), _canvas(h, w)
    # per speck x, y, radius and dark-or-white: four uniform doubles, drawn at once (the same
    # stream as four scalar draws per speck, x = w u exactly as rng.uniform(0, w) computes it)
    u = rng.random((params.specks, 4))
    centres = _points(np.column_stack([w * u[:, 0], h * u[:, 1]])).reshape(-1, 2).tolist()
    radii = np.rint((params.radius_min + (params.radius_max - params.radius_min) * u[:, 2]) * SUPERSAMPLE * (1 << _SHIFT))
    for (cx, cy), radius, is_dark in zip(centres, radii.astype(int).tolist(), (u[:, 3] < params.dark_prob).tolist()):
        cv2.circle(dark if is_dark else bright, (cx, cy), max(radius, 1 << _SHIFT), 255, -1, cv2.LINE_AA, _SHIFT)
    if params.fibres:
        # per fibre x, y, angle, length (uniform), the control point's offsets (normal, sd length / 3),
        # dark-or-white and width (uniform): three block draws in the stream's order
        ends, controls, fibres = [], [], []
        for _ in range(params.fibres):
            (x, y, angle, length), (dx, dy), (tone, width_px) = rng.random(4).tolist(), rng.standard_normal(2).tolist(), \
                rng.random(2).tolist()
            x, y, angle, length = w * x, h * y, _uniform(angle, -math.pi, math.pi), _uniform(length, 3, 15)
            ends.append((x, y, x + length * math.cos(angle), y + length * math.sin(angle)))
            controls.append((x + length / 3 * dx, y + length / 3 * dy))
            fibres.append((dark if tone < params.dark_prob else bright, _uniform(width_px, 0.4, 1.0)))
        ends, controls = np.array(ends), np.array(controls)
        for curve, (canvas, width_px) in zip(_points(_beziers(ends[:, 0:2], ends[:, 2:4], controls, 16)), fibres):
            cv2.polylines(canvas, [curve], False, 255, _thickness(width_px), cv2.LINE_AA, _SHIFT)
    out = clip_unit(image.copy())
    _paint(out, dark, 0.08)
    _paint(out, bright, 0.95)
    return out


register("dust", "dust specks and fibres, dark or white", DustConfig, DustParams, _sample_dust, _apply_dust)


# ----------------------------------------------------------------------------- folds, stains: in linear light


def _centres(start: int, stop: int) -> np.ndarray:
    """Pixel centres start + 0.5 .. stop - 0.5, float32."""
    return np.arange(start, stop, dtype=np.float32) + np.float32(0.5)


def _centre_span(low: float, high: float, n: int) -> tuple:
    """(start, stop): the pixels of 0..n - 1 whose centres may lie in [low, high] (one more each side)."""
    start, stop = max(0, math.floor(low - 0.5)), min(n, math.floor(high - 0.5) + 2)
    return (start, max(start, stop))


def _strip_box(x: float, y: float, angle: float, half_width: float, h: int, w: int) -> tuple:
    """(y0, y1, x0, x1): a box holding every pixel centre within ``half_width`` of the line through
    (x, y) at ``angle`` (radians; x right, y down)."""
    c, s = math.cos(angle), math.sin(angle)
    if abs(c) >= abs(s):  # nearer horizontal: the strip's rows over the image's width
        ends = [y + (px - x) * s / c for px in (0.5, w - 0.5)]
        return _centre_span(min(ends) - half_width / abs(c), max(ends) + half_width / abs(c), h) + (0, w)
    ends = [x + (py - y) * c / s for py in (0.5, h - 0.5)]
    return (0, h) + _centre_span(min(ends) - half_width / abs(s), max(ends) + half_width / abs(s), w)


def _with_boxes(items, boxes) -> list:
    """(item, box) pairs, those whose box (y0, y1, x0, x1) holds no pixel left out."""
    return [(item, box) for item, box in zip(items, boxes) if box[0] < box[1] and box[2] < box[3]]


def _keep_untouched(image: np.ndarray, linear: np.ndarray, touched: np.ndarray, boxes) -> np.ndarray:
    """image, with linear (sRGB-encoded, clipped) where touched; touched is False outside the boxes."""
    out = clip_unit(image.copy())
    for y0, y1, x0, x1 in boxes:
        mask = touched[y0:y1, x0:x1, None]
        out[y0:y1, x0:x1] = clip_unit(np.where(mask, linear_to_srgb(linear[y0:y1, x0:x1]), image[y0:y1, x0:x1]))
    return out


# ----------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class FoldsConfig:
    count_range: tuple = (1, 2)
    width_range: tuple = (0.8, 2.5)  # the cracked line itself, pixels
    band_range: tuple = (1.0, 4.0)  # the relief's shading falls off over this many pixels
    shade_range: tuple = (0.05, 0.25)  # linear-light darkening on the shadow side

    def __post_init__(self):
        check_range("folds", "count_range", self.count_range, low=1)
        check_range("folds", "width_range", self.width_range, low=0.1)
        check_range("folds", "band_range", self.band_range, low=0.1)
        check_range("folds", "shade_range", self.shade_range, low=0.0)


@dataclass(frozen=True)
class FoldsParams:
    folds: tuple  # each: (x, y, angle_rad, width_px, band_px, shade): a straight fold through (x, y)


def _sample_folds(rng, config: FoldsConfig, image_shape, ctx):
    h, w = image_shape[:2]
    folds = []
    for _ in range(_count(rng, config.count_range)):
        # folds run roughly across the print: near-horizontal or near-vertical
        angle = (0.0 if rng.random() < 0.5 else math.pi / 2) + rng.normal(0.0, 0.08)
        folds.append(tuple(float(v) for v in (rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h), angle,
                                              uniform(rng, config.width_range), uniform(rng, config.band_range),
                                              uniform(rng, config.shade_range))))
    return FoldsParams(tuple(folds))


def _apply_folds(image, params: FoldsParams):
    h, w = image.shape[:2]
    # each fold changes the pixels within its relief (exp(-|d| / band) > 0.1) and its crack; both
    # are computed only in the box of that strip (1 px wider: the float32 rounding), and every other
    # pixel keeps its value
    folds = _with_boxes(params.folds, [_strip_box(x, y, angle, max(band_px * math.log(10.0), width_px / 2 + 0.5) + 1.0, h, w)
                                       for x, y, angle, width_px, band_px, shade in params.folds])
    boxes = [box for _, box in folds]
    linear = np.empty_like(image)  # defined in the boxes
    for y0, y1, x0, x1 in boxes:
        linear[y0:y1, x0:x1] = srgb_to_linear(image[y0:y1, x0:x1])
    touched = np.zeros((h, w), bool)
    for (x, y, angle, width_px, band_px, shade), (y0, y1, x0, x1) in folds:
        ys, xs = _centres(y0, y1)[:, None], _centres(x0, x1)[None, :]
        d = (xs - x) * np.float32(-math.sin(angle)) + (ys - y) * np.float32(math.cos(angle))  # signed distance
        relief = np.maximum(np.exp(-np.abs(d) / np.float32(band_px)) - np.float32(0.1), 0.0) / np.float32(0.9)  # ends at 0
        factor = np.where(d > 0, 1.0 - shade * relief, 1.0 + 0.5 * shade * relief).astype(np.float32)
        crack = _rgb(np.clip(width_px / 2 + 0.5 - np.abs(d), 0.0, 1.0) * 0.85)  # cracked emulsion: white fibres
        region = linear[y0:y1, x0:x1]
        region[...] = region * _rgb(factor) * (1 - crack) + 0.8 * crack
        touched[y0:y1, x0:x1] |= relief > 0
    return _keep_untouched(image, linear, touched, boxes)


register("folds", "folds and creases: a cracked line with shaded relief on either side", FoldsConfig, FoldsParams,
         _sample_folds, _apply_folds)


# ----------------------------------------------------------------------------- cracks


@dataclass(frozen=True)
class CracksConfig:
    count_range: tuple = (1, 4)
    steps_range: tuple = (10, 40)  # random-walk steps of each crack
    step_px_range: tuple = (2.0, 6.0)
    branch_prob: float = 0.25  # per step
    width_range: tuple = (0.4, 1.5)
    bright_prob: float = 0.5

    def __post_init__(self):
        check_range("cracks", "count_range", self.count_range, low=1)
        check_range("cracks", "steps_range", self.steps_range, low=1)
        check_range("cracks", "step_px_range", self.step_px_range, low=0.1)
        check_range("cracks", "width_range", self.width_range, low=0.1)
        check_prob("cracks", "branch_prob", self.branch_prob)
        check_prob("cracks", "bright_prob", self.bright_prob)


@dataclass(frozen=True)
class CracksParams:
    cracks: int
    steps: int
    step_px: float
    branch_prob: float
    width_px: float
    value: float  # bright (paper showing) or dark (dirt in the crack)
    seed: int


def _sample_cracks(rng, config: CracksConfig, image_shape, ctx):
    bright = rng.random() < config.bright_prob
    return CracksParams(_count(rng, config.count_range), _count(rng, config.steps_range), uniform(rng, config.step_px_range),
                        float(config.branch_prob), uniform(rng, config.width_range),
                        float(rng.uniform(0.8, 1.0) if bright else rng.uniform(0.0, 0.2)), draw_seed(rng))


def _apply_cracks(image, params: CracksParams):
    h, w = image.shape[:2]
    rng = np.random.default_rng(params.seed)
    walks = [(w * x, h * y, _uniform(heading, -math.pi, math.pi), params.steps)
             for x, y, heading in rng.random((params.cracks, 3)).tolist()]  # uniform(0, w) is w u
    # the hot loop's lookups. The draws are the definition's, computed from cheaper calls that take
    # the same numbers from the stream: rng.normal(0.0, 0.5) is 0.5 * standard_normal();
    # rng.choice((-1, 1)) is (-1, 1)[integers(0, 2)], the top bit of the next 32-bit output, which is
    # random(dtype=float32) >= 0.5 (the same output, from the same 32-bit buffer); rng.uniform(0.5,
    # 1.2) is 0.5 + (1.2 - 0.5) random()
    normal, random, float32 = rng.standard_normal, rng.random, np.float32
    step_px, branch_prob, cos, sin, turn = params.step_px, params.branch_prob, math.cos, math.sin, 1.2 - 0.5
    points, ends = [], []  # every path's points, one after another, and where each path ends
    while walks:
        x, y, heading, steps = walks.pop()
        points.append((x, y))
        for _ in range(steps):
            heading += 0.5 * normal()
            x, y = x + step_px * cos(heading), y + step_px * sin(heading)
            points.append((x, y))
            if random() < branch_prob and steps > 4:
                side = 1 if random(None, float32) >= 0.5 else -1
                walks.append((x, y, heading + side * (0.5 + turn * random()), steps // 3))
        ends.append(len(points))
    # one polylines call draws the paths in the same order as one call per path
    flat = _points(np.array(points))
    canvas = _canvas(h, w)
    cv2.polylines(canvas, [flat[start:end] for start, end in zip([0] + ends, ends)], False, 255,
                  _thickness(params.width_px), cv2.LINE_AA, _SHIFT)
    out = clip_unit(image.copy())
    _paint(out, canvas, params.value)
    return out


register("cracks", "cracked emulsion: branching random-walk lines", CracksConfig, CracksParams, _sample_cracks, _apply_cracks)


# ----------------------------------------------------------------------------- stains


@dataclass(frozen=True)
class StainsConfig:
    count_range: tuple = (1, 2)
    radius_range: tuple = (0.05, 0.2)  # fraction of the shorter side
    opacity_range: tuple = (0.15, 0.5)
    tide_line_prob: float = 0.6  # water marks: a darker rim where the drying water left its load

    def __post_init__(self):
        check_range("stains", "count_range", self.count_range, low=1)
        check_range("stains", "radius_range", self.radius_range, low=0.0)
        check_range("stains", "opacity_range", self.opacity_range, low=0.0)
        check_prob("stains", "tide_line_prob", self.tide_line_prob)


@dataclass(frozen=True)
class StainsParams:
    # each: (cx, cy, radius_px, opacity, tide_line 0/1, tint_r, tint_g, tint_b, outline seed)
    stains: tuple


def _sample_stains(rng, config: StainsConfig, image_shape, ctx):
    h, w = image_shape[:2]
    stains = []
    for _ in range(_count(rng, config.count_range)):
        brown = rng.uniform(0.0, 1.0)  # pale yellow (0) to foxing brown (1): linear-light transmittance of the stain
        tint = (1.0 - 0.15 * brown, 0.9 - 0.3 * brown, 0.65 - 0.4 * brown)
        stains.append((float(rng.uniform(0, w)), float(rng.uniform(0, h)), uniform(rng, config.radius_range) * min(h, w),
                       uniform(rng, config.opacity_range), float(rng.random() < config.tide_line_prob),
                       *(float(t) for t in tint), draw_seed(rng)))
    return StainsParams(tuple(stains))


def _apply_stains(image, params: StainsParams):
    h, w = image.shape[:2]
    stains, boxes = [], []
    for cx, cy, radius, opacity, tide, tr, tg, tb, seed in params.stains:
        # the outline's harmonics k = 2..5: amplitude uniform(0, 0.25 / k) and phase uniform(0, 2 pi),
        # in that order, drawn at once (uniform(0, b) is b u)
        u = np.random.default_rng(int(seed)).random(8).tolist()
        harmonics = [(k, 0.25 / k * a, 2 * math.pi * phase) for k, a, phase in zip(range(2, 6), u[0::2], u[1::2])]
        # alpha is 0 beyond r = 1 (r = 1 + 0.04 sqrt(ln(96 opacity)) with a tide line: 1.5 opacity e^(-z^2)
        # falls below MIN_COVERAGE = 1/64 there), r the distance over radius * outline, outline at most
        # 1 + the amplitudes: the stain's box, 10% and 1 px wider
        reach = 1.1 + (0.04 * math.sqrt(math.log(max(96 * opacity, 1.0))) if tide else 0.0)
        extent = reach * max(radius, 0.5) * (1 + sum(a for _, a, _ in harmonics)) + 1.0
        stains.append((cx, cy, radius, opacity, tide, np.array([tr, tg, tb], np.float32), harmonics))
        boxes.append(_centre_span(cy - extent, cy + extent, h) + _centre_span(cx - extent, cx + extent, w))
    stains = _with_boxes(stains, boxes)
    boxes = [box for _, box in stains]
    linear = np.empty_like(image)  # defined in the boxes
    for y0, y1, x0, x1 in boxes:
        linear[y0:y1, x0:x1] = srgb_to_linear(image[y0:y1, x0:x1])
    touched = np.zeros((h, w), bool)
    for (cx, cy, radius, opacity, tide, tint, harmonics), (y0, y1, x0, x1) in stains:
        ys, xs = _centres(y0, y1)[:, None], _centres(x0, x1)[None, :]
        theta = np.arctan2(ys - cy, xs - cx)
        outline = np.ones_like(theta)
        for k, amplitude, phase in harmonics:  # an irregular outline: a few low harmonics
            outline += np.float32(amplitude) * np.cos(k * theta + np.float32(phase))
        r = np.hypot(xs - cx, ys - cy) / (np.float32(max(radius, 0.5)) * outline)
        alpha = np.clip((1.0 - r) * 4.0, 0.0, 1.0) * (0.6 + 0.4 * r)  # soft edge, denser towards the rim
        if tide:
            alpha = alpha + 1.5 * np.exp(-(((r - 1.0) / 0.04) ** 2))
        alpha = np.clip(alpha * np.float32(opacity), 0.0, 1.0).astype(np.float32)
        alpha[alpha < MIN_COVERAGE] = 0.0
        region = linear[y0:y1, x0:x1]
        region[...] = region * (1.0 - alpha[..., None] * (1.0 - tint))
        touched[y0:y1, x0:x1] |= alpha > 0
    return _keep_untouched(image, linear, touched, boxes)


register("stains", "stains and water marks: irregular tinted blobs, optionally with a tide line", StainsConfig,
         StainsParams, _sample_stains, _apply_stains)


# ----------------------------------------------------------------------------- torn_corners


@dataclass(frozen=True)
class TornCornersConfig:
    count_range: tuple = (1, 2)
    size_range: tuple = (0.08, 0.3)  # fraction of the shorter side
    fill_range: tuple = (0.0, 1.0)  # gray of what shows through (scanner lid, album page)

    def __post_init__(self):
        check_range("torn_corners", "count_range", self.count_range, low=1)
        check_range("torn_corners", "size_range", self.size_range, low=0.0)
        check_range("torn_corners", "fill_range", self.fill_range, low=0.0)


@dataclass(frozen=True)
class TornCornersParams:
    corners: tuple  # each: (corner 0..3 = top-left, top-right, bottom-right, bottom-left, size_px, fill, edge seed)


def _sample_torn(rng, config: TornCornersConfig, image_shape, ctx):
    h, w = image_shape[:2]
    n = min(4, _count(rng, config.count_range))
    which = rng.permutation(4)[:n]
    return TornCornersParams(tuple((int(c), uniform(rng, config.size_range) * min(h, w), uniform(rng, config.fill_range),
                                    draw_seed(rng)) for c in which))


_TEAR_ANGLES = np.linspace(0.0, math.pi / 2, 12)
_TEAR_COS, _TEAR_SIN = np.cos(_TEAR_ANGLES), np.sin(_TEAR_ANGLES)


def _apply_torn(image, params: TornCornersParams):
    if not params.corners:
        return image.copy()
    h, w = image.shape[:2]
    out = clip_unit(image.copy())  # in [0, 1] already: what painting clips to
    for corner, size_px, fill, seed in params.corners:
        rng = np.random.default_rng(int(seed))
        # a ragged tear from one edge to the other around the corner
        radius = size_px * (1.0 + rng.uniform(-0.25, 0.25, _TEAR_ANGLES.size))
        sx, sy = (1, 1) if corner == 0 else (-1, 1) if corner == 1 else (-1, -1) if corner == 2 else (1, -1)
        ox, oy = (0 if sx > 0 else w), (0 if sy > 0 else h)
        edge = np.stack([ox + sx * radius * _TEAR_COS, oy + sy * radius * _TEAR_SIN], axis=1)
        missing, fibres = _canvas(h, w), _canvas(h, w)
        cv2.fillPoly(missing, [_points(np.concatenate([[[ox, oy]], edge], axis=0))], 255, cv2.LINE_AA, _SHIFT)
        cv2.polylines(fibres, [_points(edge)], False, 255, _thickness(1.0), cv2.LINE_AA, _SHIFT)  # white fibres along the tear
        _paint(out, fibres, 0.92, 0.7)
        _paint(out, missing, fill)
    return out


register("torn_corners", "torn or missing corners: the background shows through a ragged tear", TornCornersConfig,
         TornCornersParams, _sample_torn, _apply_torn)
