"""Geometric augmentation that moves an image, its points and its label maps together.

One ``Affine`` (frozen, JSON-able) describes the whole warp: the source point ``centre`` lands
on the output's centre, ``scale`` output pixels per source pixel, rotated by ``angle`` degrees
(counter-clockwise as seen on screen, y down), then mirrored left-right when ``flip``. All of it
is in continuous pixel coordinates (pixel (i, j) has its centre at (j + 0.5, i + 0.5)), so a
point and the pixel content under it move exactly together; ``warp_image`` interpolates
bilinearly, ``warp_labels`` takes the nearest source pixel (ids are never blended).

Two samplers draw it: ``sample_instance_crop`` (top-down pose crops, mmpose 1.x
``RandomBBoxTransform`` + ``RandomFlip`` + bbox padding 1.25) and ``sample_scene_crop``
(mmseg's ``RandomResize`` ratio 0.5-2.0 + ``RandomCrop`` + ``RandomFlip``). These are not
pipeline steps (they need the annotation's box), so they are not in the op registry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .util import check_prob, check_range


@dataclass(frozen=True)
class Affine:
    centre: tuple  # (x, y) in source pixels, continuous
    scale: float  # output pixels per source pixel
    angle: float  # degrees
    flip: bool
    width: int  # output size, pixels
    height: int

    def matrix(self) -> np.ndarray:
        """2x3 float64: output (x, y) = M @ (x, y, 1) of a source point, continuous coordinates."""
        a = math.radians(self.angle)
        cos, sin = math.cos(a) * self.scale, math.sin(a) * self.scale
        # rotate about the centre (screen counter-clockwise with y down: x' = cos x + sin y, y' = -sin x + cos y)
        m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
        cx, cy = self.centre
        m[:, 2] = np.array([self.width / 2.0, self.height / 2.0]) - m[:, :2] @ np.array([cx, cy])
        if self.flip:
            m[0] = -m[0]
            m[0, 2] += self.width
        return m

    def cv2_matrix(self) -> np.ndarray:
        """The same map in OpenCV's convention (pixel centres at integers): shift by 0.5 on both sides."""
        m = self.matrix()
        m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
        return m


def warp_image(image: np.ndarray, affine: Affine, fill=0) -> np.ndarray:
    """Bilinear warp of an (H, W[, C]) image into the output; outside the source: ``fill``."""
    return cv2.warpAffine(image, affine.cv2_matrix(), (affine.width, affine.height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def warp_labels(labels: np.ndarray, affine: Affine, fill: int) -> np.ndarray:
    """Nearest-neighbour warp of an (H, W) id map (uint8 or uint16); outside the source: ``fill``."""
    return cv2.warpAffine(labels, affine.cv2_matrix(), (affine.width, affine.height), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=int(fill))


def warp_points(points: np.ndarray, affine: Affine) -> np.ndarray:
    """(N, 2) continuous source coordinates -> output coordinates."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    m = affine.matrix()
    return points @ m[:, :2].T + m[:, 2]


def _truncated_normal(rng: np.random.Generator) -> float:
    """Standard normal truncated to [-1, 1] (scipy ``truncnorm(-1, 1)``, as mmpose draws), by rejection."""
    while True:
        value = float(rng.standard_normal())
        if -1.0 <= value <= 1.0:
            return value


# ----------------------------------------------------------------------------- pose crops


@dataclass(frozen=True)
class InstanceCropConfig:
    """mmpose 1.x defaults for COCO top-down training: the box padded by ``padding`` and fitted
    to the output's aspect; shift with probability ``shift_prob`` by ``shift_factor`` x the box
    size x truncnorm(-1, 1) per axis; scale the box by ``mean + half_range`` x truncnorm(-1, 1)
    of ``scale_range`` (probability 1); rotation truncnorm x ``rotate_factor`` degrees with
    probability ``rotate_prob``; left-right flip with ``flip_prob``."""

    padding: float = 1.25
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_range: tuple = (0.5, 1.5)
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6
    flip_prob: float = 0.5

    def __post_init__(self):
        check_range("geometry", "scale_range", self.scale_range, low=1e-3)
        for name in ("shift_prob", "rotate_prob", "flip_prob"):
            check_prob("geometry", name, getattr(self, name))
        if self.padding <= 0 or self.shift_factor < 0 or self.rotate_factor < 0:
            raise ValueError("geometry: padding must be > 0, shift_factor and rotate_factor >= 0")


def sample_instance_crop(rng: np.random.Generator, config: InstanceCropConfig, bbox, width: int, height: int) -> Affine:
    """An output of width x height px around a COCO box [x, y, w, h] (continuous pixels)."""
    x, y, w, h = (float(v) for v in bbox)
    cx, cy = x + w / 2.0, y + h / 2.0
    aspect = width / height
    w, h = max(w, h * aspect, 1.0), max(h, w / aspect, 1.0)  # fit the output's aspect, then pad
    w, h = w * config.padding, h * config.padding
    if rng.random() < config.shift_prob:
        cx += _truncated_normal(rng) * config.shift_factor * w
        cy += _truncated_normal(rng) * config.shift_factor * h
    low, high = config.scale_range
    factor = (low + high) / 2.0 + (high - low) / 2.0 * _truncated_normal(rng)
    angle = _truncated_normal(rng) * config.rotate_factor if rng.random() < config.rotate_prob else 0.0
    flip = bool(rng.random() < config.flip_prob)
    return Affine((round(cx, 4), round(cy, 4)), round(width / (w * factor), 6), round(angle, 4), flip, width, height)


# ----------------------------------------------------------------------------- scene crops


@dataclass(frozen=True)
class SceneCropConfig:
    """mmseg-style: resize so the shorter side is ``ratio`` x the crop side, ratio ~
    U(``ratio_range``) (mmseg: 0.5-2.0), a crop at a uniform position (an image smaller than the
    crop is centred; its margin is outside the source), rotation U(+-``rotate_max``) degrees with
    ``rotate_prob`` (mmseg: off), left-right flip with ``flip_prob``."""

    ratio_range: tuple = (0.5, 2.0)
    rotate_max: float = 0.0
    rotate_prob: float = 0.0
    flip_prob: float = 0.5

    def __post_init__(self):
        check_range("geometry", "ratio_range", self.ratio_range, low=1e-3)
        check_prob("geometry", "rotate_prob", self.rotate_prob)
        check_prob("geometry", "flip_prob", self.flip_prob)


def sample_scene_crop(rng: np.random.Generator, config: SceneCropConfig, image_height: int, image_width: int,
                      width: int, height: int) -> Affine:
    ratio = float(rng.uniform(*config.ratio_range))
    scale = ratio * min(width, height) / min(image_height, image_width)
    centre = []
    for source, out in ((image_width, width), (image_height, height)):
        half = out / (2.0 * scale)  # half the crop in source pixels
        low, high = half, source - half
        centre.append(float(rng.uniform(low, high)) if high > low else source / 2.0)
    angle = float(rng.uniform(-config.rotate_max, config.rotate_max)) if rng.random() < config.rotate_prob else 0.0
    flip = bool(rng.random() < config.flip_prob)
    return Affine((round(centre[0], 4), round(centre[1], 4)), round(scale, 6), round(angle, 4), flip, width, height)


def affine_from_json(values: dict) -> Affine:
    return Affine(tuple(values["centre"]), values["scale"], values["angle"], bool(values["flip"]), values["width"], values["height"])
