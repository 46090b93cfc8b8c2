"""Photometric augmentation of annotated photos (the labels do not change with it)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import register
from .util import check_prob, check_range, clip_unit, uniform


@dataclass(frozen=True)
class PhotometricConfig:
    """mmseg/mmdet ``PhotoMetricDistortion``: brightness + U(+-``brightness_delta``) 8-bit
    levels, contrast x U(``contrast_range``), saturation x U(``saturation_range``), hue +
    integer U(+-``hue_delta``) OpenCV hue units (2 degrees each); each with probability ``p_each``
    (mmseg: 0.5), contrast before saturation/hue or after them (drawn, 1/2 each). Like mmseg it
    works on the sRGB values. Difference: values stay float between steps (mmseg rounds to 8 bit
    after each), clipped to [0, 1] after each step as mmseg clips."""

    brightness_delta: float = 32.0
    contrast_range: tuple = (0.5, 1.5)
    saturation_range: tuple = (0.5, 1.5)
    hue_delta: int = 18
    p_each: float = 0.5

    def __post_init__(self):
        check_range("photometric_distortion", "contrast_range", self.contrast_range, low=0)
        check_range("photometric_distortion", "saturation_range", self.saturation_range, low=0)
        check_prob("photometric_distortion", "p_each", self.p_each)
        if self.brightness_delta < 0 or self.hue_delta < 0:
            raise ValueError("photometric_distortion: brightness_delta and hue_delta must be >= 0")


@dataclass(frozen=True)
class PhotometricParams:
    """None: that step is not applied. brightness: 8-bit levels added; hue: OpenCV hue units."""

    brightness: float | None
    contrast: float | None
    contrast_first: bool
    saturation: float | None
    hue: int | None


def _sample(rng, config: PhotometricConfig, image_shape, ctx) -> PhotometricParams:
    def maybe(draw):
        value = draw()  # drawn whether used or not: the stream stays aligned for every setting
        return value if rng.random() < config.p_each else None

    brightness = maybe(lambda: round(uniform(rng, (-config.brightness_delta, config.brightness_delta)), 4))
    contrast_first = bool(rng.random() < 0.5)
    contrast = maybe(lambda: round(uniform(rng, config.contrast_range), 4))
    saturation = maybe(lambda: round(uniform(rng, config.saturation_range), 4))
    hue = maybe(lambda: int(rng.integers(-config.hue_delta, config.hue_delta + 1)))
    return PhotometricParams(brightness, contrast, contrast_first, saturation, hue)


def _apply(image: np.ndarray, params: PhotometricParams) -> np.ndarray:
    out = np.array(image, dtype=np.float32, copy=True)
    if params.brightness is not None:
        out = clip_unit(out + np.float32(params.brightness / 255.0))
    if params.contrast is not None and params.contrast_first:
        out = clip_unit(out * np.float32(params.contrast))
    if params.saturation is not None or params.hue is not None:
        # float: H in degrees [0, 360), S and V in [0, 1]; on split planes (strided channel
        # views cost numpy ~4x)
        hue, saturation, value = cv2.split(cv2.cvtColor(out, cv2.COLOR_RGB2HSV))
        if params.saturation is not None:
            saturation = clip_unit(saturation * np.float32(params.saturation))
        if params.hue is not None:  # np.mod(hue + shift, 360) for hue in [0, 360], |shift| < 360, exactly (5x faster)
            hue = hue + np.float32(2 * params.hue)
            np.subtract(hue, np.float32(360.0), out=hue, where=hue >= np.float32(360.0))
            np.add(hue, np.float32(360.0), out=hue, where=hue < 0)  # after: -1e-5 + 360 rounds to 360, as np.mod
        out = clip_unit(cv2.cvtColor(cv2.merge([hue, saturation, value]), cv2.COLOR_HSV2RGB))
    if params.contrast is not None and not params.contrast_first:
        out = clip_unit(out * np.float32(params.contrast))
    return np.ascontiguousarray(out)


register("photometric_distortion", "brightness, contrast, saturation and hue jitter (mmseg PhotoMetricDistortion)",
         PhotometricConfig, PhotometricParams, _sample, _apply)
