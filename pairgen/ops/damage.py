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
    """Pixel coordinates (x, y; pixel centres at +0.5) -> cv2 fixed-point points on the 4x canvas."""
    return np.rint(xy * SUPERSAMPLE * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _coverage(canvas: np.ndarray, height: int, width: int) -> np.ndarray:
    cover = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(height, width)
    cover *= np.float32(1 / 255)
    cover[cover < MIN_COVERAGE] = 0.0
    return cover


def _polyline(canvas: np.ndarray, xy: np.ndarray, width_px: float) -> None:
    thickness = max(1, int(round(width_px * SUPERSAMPLE)))
    cv2.polylines(canvas, [_points(xy)], False, 255, thickness, cv2.LINE_AA, _SHIFT)


def _paint(image: np.ndarray, coverage: np.ndarray, value: float) -> np.ndarray:
    """image where coverage is 0, else blended towards the gray ``value``."""
    out = image.copy()
    hit = coverage > 0
    if np.any(hit):
        a = coverage[hit][:, None]
        out[hit] = image[hit] * (1.0 - a) + np.float32(value) * a
    return clip_unit(out)


def _bezier(p0, p1, control, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(control) + t**2 * np.asarray(p1)


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
    h, w = image.shape[:2]
    out = image
    for x0, y0, x1, y1, cx, cy, width_px, value, opacity in params.scratches:
        canvas = _canvas(h, w)
        _polyline(canvas, _bezier((x0, y0), (x1, y1), (cx, cy)), width_px)
        out = _paint(out, _coverage(canvas, h, w) * np.float32(opacity), value)
    return out.copy() if out is image else out


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
    for _ in range(params.fibres):
        x, y, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-math.pi, math.pi)
        length = rng.uniform(3, 15)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        control = (x + rng.normal(0, length / 3), y + rng.normal(0, length / 3))
        _polyline(dark if rng.random() < params.dark_prob else bright, _bezier((x, y), end, control, 16), rng.uniform(0.4, 1.0))
    out = _paint(image, _coverage(dark, h, w), 0.08)
    return _paint(out, _coverage(bright, h, w), 0.95)


register("dust", "dust specks and fibres, dark or white", DustConfig, DustParams, _sample_dust, _apply_dust)


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
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    linear = srgb_to_linear(image)
    touched = np.zeros((h, w), bool)
    for x, y, angle, width_px, band_px, shade in params.folds:
        d = (xs - x) * np.float32(-math.sin(angle)) + (ys - y) * np.float32(math.cos(angle))  # signed distance
        relief = np.maximum(np.exp(-np.abs(d) / np.float32(band_px)) - np.float32(0.1), 0.0) / np.float32(0.9)  # ends at 0
        factor = np.where(d > 0, 1.0 - shade * relief, 1.0 + 0.5 * shade * relief).astype(np.float32)
        linear = linear * factor[..., None]
        crack = np.clip(width_px / 2 + 0.5 - np.abs(d), 0.0, 1.0) * 0.85  # cracked emulsion: white fibres
        linear = linear * (1 - crack[..., None]) + 0.8 * crack[..., None]
        touched |= relief > 0
    out = linear_to_srgb(linear)
    return clip_unit(np.where(touched[..., None], out, image).astype(np.float32))


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
    walks = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-math.pi, math.pi), params.steps) for _ in range(params.cracks)]
    # the hot loop's lookups; 0.5 * standard_normal() is the value and draw rng.normal(0.0, 0.5) makes
    normal, uniform_draw, random, side = rng.standard_normal, rng.uniform, rng.random, rng.integers
    step_px, branch_prob, cos, sin = params.step_px, params.branch_prob, math.cos, math.sin
    paths = []
    while walks:
        x, y, heading, steps = walks.pop()
        path = [(x, y)]
        for _ in range(steps):
            heading += 0.5 * normal()
            x, y = x + step_px * cos(heading), y + step_px * sin(heading)
            path.append((x, y))
            if random() < branch_prob and steps > 4:
                # (-1, 1)[integers(0, 2)]: the draw rng.choice((-1, 1)) makes, 9x cheaper
                walks.append((x, y, heading + (-1, 1)[int(side(0, 2))] * uniform_draw(0.5, 1.2), steps // 3))
        paths.append(path)
    # one polylines call draws the paths in the same order as one call per path
    points = _points(np.concatenate([np.asarray(p) for p in paths]))
    canvas = _canvas(h, w)
    thickness = max(1, int(round(params.width_px * SUPERSAMPLE)))
    cv2.polylines(canvas, np.split(points, np.cumsum([len(p) for p in paths])[:-1]), False, 255, thickness, cv2.LINE_AA, _SHIFT)
    return _paint(image, _coverage(canvas, h, w), params.value)


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
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    linear = srgb_to_linear(image)
    touched = np.zeros((h, w), bool)
    for cx, cy, radius, opacity, tide, tr, tg, tb, seed in params.stains:
        rng = np.random.default_rng(int(seed))
        theta = np.arctan2(ys - cy, xs - cx)
        outline = np.ones_like(theta)
        for k in range(2, 6):  # an irregular outline: a few low harmonics
            outline += np.float32(rng.uniform(0, 0.25 / k)) * np.cos(k * theta + np.float32(rng.uniform(0, 2 * math.pi)))
        r = np.hypot(xs - cx, ys - cy) / (np.float32(max(radius, 0.5)) * outline)
        alpha = np.clip((1.0 - r) * 4.0, 0.0, 1.0) * (0.6 + 0.4 * r)  # soft edge, denser towards the rim
        if tide:
            alpha = alpha + 1.5 * np.exp(-(((r - 1.0) / 0.04) ** 2))
        alpha = np.clip(alpha * np.float32(opacity), 0.0, 1.0).astype(np.float32)
        alpha[alpha < MIN_COVERAGE] = 0.0
        tint = np.array([tr, tg, tb], np.float32)
        linear = linear * (1.0 - alpha[..., None] * (1.0 - tint))
        touched |= alpha > 0
    return clip_unit(np.where(touched[..., None], linear_to_srgb(linear), image).astype(np.float32))


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


def _apply_torn(image, params: TornCornersParams):
    h, w = image.shape[:2]
    out = image
    for corner, size_px, fill, seed in params.corners:
        rng = np.random.default_rng(int(seed))
        # a ragged tear from one edge to the other around the corner
        angles = np.linspace(0.0, math.pi / 2, 12)
        radius = size_px * (1.0 + rng.uniform(-0.25, 0.25, angles.size))
        sx, sy = (1, 1) if corner == 0 else (-1, 1) if corner == 1 else (-1, -1) if corner == 2 else (1, -1)
        ox, oy = (0 if sx > 0 else w), (0 if sy > 0 else h)
        edge = np.stack([ox + sx * radius * np.cos(angles), oy + sy * radius * np.sin(angles)], axis=1)
        missing, fibres = _canvas(h, w), _canvas(h, w)
        cv2.fillPoly(missing, [_points(np.concatenate([[[ox, oy]], edge], axis=0))], 255, cv2.LINE_AA, _SHIFT)
        _polyline(fibres, edge, 1.0)  # torn paper shows white fibres along the tear
        out = _paint(out, _coverage(fibres, h, w) * np.float32(0.7), 0.92)
        out = _paint(out, _coverage(missing, h, w), fill)
    return out.copy() if out is image else out


register("torn_corners", "torn or missing corners: the background shows through a ragged tear", TornCornersConfig,
         TornCornersParams, _sample_torn, _apply_torn)
