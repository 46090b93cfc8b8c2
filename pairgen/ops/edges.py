"""Edge detectors and edge-map clean-up, for edges-to-image pairs.

Each detector takes the RGB image (float32 in [0, 1]) and returns a binary edge map, 1.0 where
an edge is, 0.0 elsewhere, in all three channels (the pipeline's image contract), at the
image's own pixel positions: no padding offset, no shift, no flip. The edges task passes the
8-bit gray photo instead, uint8 (H, W) (the same gray the detectors would compute, without two
float RGB copies per step); then every op returns a uint8 (H, W) map of 0 / 1. Gray is BT.601 luma of the
8-bit values (OpenCV's RGB2GRAY). Thresholds that depend on the image (Canny's median rule)
are computed in ``apply`` from the image, so the record stays exact for replay.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import register
from .util import check_prob, check_range, uniform, unit_to_uint8


def _gray8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(unit_to_uint8(image), cv2.COLOR_RGB2GRAY)


def _edges_of(image: np.ndarray) -> np.ndarray:
    """The current edge map as bool (H, W)."""
    return image > 0 if image.ndim == 2 else image[..., 0] > 0.5


def _blurred(gray: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else gray


def _median8(gray: np.ndarray) -> float:
    """np.median of a uint8 image, from its histogram (several times faster, same value)."""
    cumulative = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    n = gray.size
    lower = int(np.searchsorted(cumulative, (n - 1) // 2 + 1))
    upper = int(np.searchsorted(cumulative, n // 2 + 1))
    return (lower + upper) / 2.0


def _as_rgb(edges: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A boolean (H, W) map -> the pipeline's kind of image: float32 (H, W, 3) of 0 / 1, or
    uint8 (H, W) of 0 / 1 when ``like`` is a uint8 (H, W) image."""
    if like.ndim == 2:
        return edges.view(np.uint8) if edges.dtype == bool else edges.astype(np.uint8)
    return cv2.cvtColor(edges.astype(np.float32), cv2.COLOR_GRAY2RGB)


# ----------------------------------------------------------------------------- Canny


@dataclass(frozen=True)
class CannyConfig:
    """auto_prob: probability of the median rule (thresholds (1 -/+ auto_sigma) x the median of
    the blurred gray, clipped to [0, 255]); otherwise random thresholds: low ~ U(low_range),
    high = low x U(ratio_range). blur_sigma_range: Gaussian pre-blur, pixels (0: none)."""

    auto_prob: float = 0.5
    auto_sigma: float = 0.33
    low_range: tuple = (20.0, 100.0)
    ratio_range: tuple = (1.5, 3.0)
    blur_sigma_range: tuple = (0.0, 1.5)

    def __post_init__(self):
        check_range("canny", "low_range", self.low_range, low=0)
        check_range("canny", "ratio_range", self.ratio_range, low=1)
        check_range("canny", "blur_sigma_range", self.blur_sigma_range, low=0)


@dataclass(frozen=True)
class CannyParams:
    mode: str  # "auto" (median rule) or "random"
    low: float | None  # random mode: thresholds on the 8-bit gradient magnitude (L2); auto: None
    high: float | None
    auto_sigma: float
    blur_sigma: float


def _canny_sample(rng, config: CannyConfig, image_shape, ctx) -> CannyParams:
    auto = bool(rng.random() < config.auto_prob)
    low = uniform(rng, config.low_range)
    high = low * uniform(rng, config.ratio_range)
    blur = uniform(rng, config.blur_sigma_range)
    if auto:
        return CannyParams("auto", None, None, config.auto_sigma, round(blur, 4))
    return CannyParams("random", round(low, 4), round(high, 4), config.auto_sigma, round(blur, 4))


def _canny_apply(image: np.ndarray, params: CannyParams) -> np.ndarray:
    gray = _blurred(_gray8(image), params.blur_sigma)
    low, high = params.low, params.high
    if params.mode == "auto":
        median = _median8(gray)
        low = max(0.0, (1.0 - params.auto_sigma) * median)
        high = min(255.0, (1.0 + params.auto_sigma) * median)
    return _as_rgb(cv2.Canny(gray, low, high, L2gradient=True) > 0, image)


register("canny", "Canny edges (median-rule or random thresholds, optional pre-blur)",
         CannyConfig, CannyParams, _canny_sample, _canny_apply)


# ----------------------------------------------------------------------------- XDoG


@dataclass(frozen=True)
class XDoGConfig:
    """Winnemoeller et al. 2012: S = (1 + p) G_sigma - p G_(k sigma) of the gray in [0, 1]; a
    pixel is a line where S < eps (the dark side of an edge, about sigma wide). Implementations
    disagree on the constants, so all are drawn from ranges and recorded."""

    sigma_range: tuple = (0.6, 1.2)
    k: float = 1.6
    p_range: tuple = (15.0, 25.0)
    eps_range: tuple = (0.02, 0.1)

    def __post_init__(self):
        check_range("xdog", "sigma_range", self.sigma_range, low=0.1)
        check_range("xdog", "p_range", self.p_range, low=0)
        check_range("xdog", "eps_range", self.eps_range)


@dataclass(frozen=True)
class XDoGParams:
    sigma: float
    k: float
    p: float
    eps: float


def _xdog_sample(rng, config: XDoGConfig, image_shape, ctx) -> XDoGParams:
    return XDoGParams(round(uniform(rng, config.sigma_range), 4), config.k, round(uniform(rng, config.p_range), 4),
                      round(uniform(rng, config.eps_range), 4))


def _xdog_apply(image: np.ndarray, params: XDoGParams) -> np.ndarray:
    gray = _gray8(image).astype(np.float32) / np.float32(255.0)
    g1 = _blurred(gray, params.sigma)
    g2 = _blurred(gray, params.sigma * params.k)
    sharpened = (1.0 + params.p) * g1 - params.p * g2
    return _as_rgb(sharpened < params.eps, image)


register("xdog", "XDoG lines (extended difference of Gaussians, hard threshold)",
         XDoGConfig, XDoGParams, _xdog_sample, _xdog_apply)


# ----------------------------------------------------------------------------- Sobel


@dataclass(frozen=True)
class SobelConfig:
    """Edges where the Sobel gradient magnitude (3x3, of the pre-blurred gray) is above its
    ``quantile`` over the image, and above ``floor`` x its maximum (so flat images stay empty)."""

    quantile_range: tuple = (0.85, 0.95)
    floor: float = 0.2
    blur_sigma_range: tuple = (0.0, 1.0)

    def __post_init__(self):
        check_range("sobel_edges", "quantile_range", self.quantile_range, low=0)
        check_range("sobel_edges", "blur_sigma_range", self.blur_sigma_range, low=0)


@dataclass(frozen=True)
class SobelParams:
    quantile: float
    floor: float
    blur_sigma: float


def _sobel_sample(rng, config: SobelConfig, image_shape, ctx) -> SobelParams:
    return SobelParams(round(uniform(rng, config.quantile_range), 4), config.floor,
                       round(uniform(rng, config.blur_sigma_range), 4))


def _sobel_apply(image: np.ndarray, params: SobelParams) -> np.ndarray:
    gray = _blurred(_gray8(image).astype(np.float32), params.blur_sigma)
    dx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    dy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    magnitude = cv2.magnitude(dx, dy)
    top = float(magnitude.max())
    if top <= 0:
        return _as_rgb(np.zeros(gray.shape, bool), image)
    threshold = max(float(np.quantile(magnitude, params.quantile)), params.floor * top)
    return _as_rgb(magnitude > threshold, image)


register("sobel_edges", "Sobel gradient magnitude above an image quantile",
         SobelConfig, SobelParams, _sobel_sample, _sobel_apply)


# ----------------------------------------------------------------------------- clean-up


@dataclass(frozen=True)
class RemoveSmallConfig:
    """Drop 8-connected edge components of fewer than ``min_size`` pixels (drawn, inclusive)."""

    min_size_range: tuple = (3, 8)

    def __post_init__(self):
        check_range("remove_small_edges", "min_size_range", self.min_size_range, low=1)


@dataclass(frozen=True)
class RemoveSmallParams:
    min_size: int


def _remove_small_sample(rng, config: RemoveSmallConfig, image_shape, ctx) -> RemoveSmallParams:
    return RemoveSmallParams(int(rng.integers(config.min_size_range[0], config.min_size_range[1] + 1)))


def _remove_small_apply(image: np.ndarray, params: RemoveSmallParams) -> np.ndarray:
    edges = _edges_of(image).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= params.min_size
    keep[0] = False  # the background
    return _as_rgb(keep[labels], image)


register("remove_small_edges", "remove small edge components (specks)",
         RemoveSmallConfig, RemoveSmallParams, _remove_small_sample, _remove_small_apply)


@dataclass(frozen=True)
class ThickenConfig:
    """Scribble style: dilate the edges with a disk of radius drawn from ``radius_range``
    (pixels, inclusive integers; 0 keeps them)."""

    radius_range: tuple = (1, 2)

    def __post_init__(self):
        check_range("thicken_edges", "radius_range", self.radius_range, low=0)


@dataclass(frozen=True)
class ThickenParams:
    radius: int


def _thicken_sample(rng, config: ThickenConfig, image_shape, ctx) -> ThickenParams:
    return ThickenParams(int(rng.integers(config.radius_range[0], config.radius_range[1] + 1)))


def _thicken_apply(image: np.ndarray, params: ThickenParams) -> np.ndarray:
    edges = _edges_of(image).astype(np.uint8)
    if params.radius > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * params.radius + 1, 2 * params.radius + 1))
        edges = cv2.dilate(edges, disk)
    return _as_rgb(edges > 0, image)


register("thicken_edges", "thicken edges (scribble style), a disk dilation",
         ThickenConfig, ThickenParams, _thicken_sample, _thicken_apply)


# ----------------------------------------------------------------------------- multi-scale Canny


@dataclass(frozen=True)
class MultiscaleCannyConfig:
    """Canny at several scales, OR-ed: scales_range (inclusive) Gaussian pre-blurs sigma0 x
    factor^i, sigma0 ~ U(sigma_range) px; each scale's thresholds by the median rule of its own
    blurred gray, (1 -/+ auto_sigma) x median. Fine detail and coarse outlines in one map."""

    scales_range: tuple = (2, 3)
    sigma_range: tuple = (0.8, 1.4)
    factor: float = 1.6
    auto_sigma: float = 0.33

    def __post_init__(self):
        check_range("canny_multiscale", "scales_range", self.scales_range, low=1)
        check_range("canny_multiscale", "sigma_range", self.sigma_range, low=0.1)


@dataclass(frozen=True)
class MultiscaleCannyParams:
    sigmas: tuple
    auto_sigma: float


def _multiscale_sample(rng, config: MultiscaleCannyConfig, image_shape, ctx) -> MultiscaleCannyParams:
    n = int(rng.integers(config.scales_range[0], config.scales_range[1] + 1))
    sigma0 = uniform(rng, config.sigma_range)
    return MultiscaleCannyParams(tuple(round(sigma0 * config.factor**i, 4) for i in range(n)), config.auto_sigma)


def _multiscale_apply(image: np.ndarray, params: MultiscaleCannyParams) -> np.ndarray:
    gray = _gray8(image)
    found = np.zeros(gray.shape, bool)
    for sigma in params.sigmas:
        blurred = _blurred(gray, sigma)
        median = _median8(blurred)
        low, high = max(0.0, (1 - params.auto_sigma) * median), min(255.0, (1 + params.auto_sigma) * median)
        found |= cv2.Canny(blurred, low, high, L2gradient=True) > 0
    return _as_rgb(found, image)


register("canny_multiscale", "Canny at several blur scales (median rule each), combined",
         MultiscaleCannyConfig, MultiscaleCannyParams, _multiscale_sample, _multiscale_apply)


# ----------------------------------------------------------------------------- scribble, thinning


@dataclass(frozen=True)
class BlurThresholdConfig:
    """Scribble style (ControlNet's scribbles: blur, then threshold): blur the binary map with a
    Gaussian of sigma ~ U(sigma_range) px and keep where it is above U(threshold_range): lines
    get rounded, uneven widths and lose their pixel staircase."""

    sigma_range: tuple = (1.0, 3.0)
    threshold_range: tuple = (0.15, 0.35)

    def __post_init__(self):
        check_range("blur_threshold_edges", "sigma_range", self.sigma_range, low=0.1)
        check_range("blur_threshold_edges", "threshold_range", self.threshold_range, low=0)


@dataclass(frozen=True)
class BlurThresholdParams:
    sigma: float
    threshold: float


def _blur_threshold_sample(rng, config: BlurThresholdConfig, image_shape, ctx) -> BlurThresholdParams:
    return BlurThresholdParams(round(uniform(rng, config.sigma_range), 4), round(uniform(rng, config.threshold_range), 4))


def _blur_threshold_apply(image: np.ndarray, params: BlurThresholdParams) -> np.ndarray:
    edges = np.ascontiguousarray(_edges_of(image), dtype=np.float32)
    return _as_rgb(_blurred(edges, params.sigma) > params.threshold, image)


register("blur_threshold_edges", "blur the edge map and threshold it (scribble style)",
         BlurThresholdConfig, BlurThresholdParams, _blur_threshold_sample, _blur_threshold_apply)


@dataclass(frozen=True)
class ThinConfig:
    """Morphological thinning (Guo-Hall, as scikit-image's ``thin``): with full_prob down to 1-px lines,
    otherwise iterations_range passes (inclusive), a partly thinned map."""

    full_prob: float = 0.5
    iterations_range: tuple = (1, 2)

    def __post_init__(self):
        check_prob("thin_edges", "full_prob", self.full_prob)
        check_range("thin_edges", "iterations_range", self.iterations_range, low=1)


@dataclass(frozen=True)
class ThinParams:
    iterations: int  # 0: until nothing changes (1-px lines)


def _thin_sample(rng, config: ThinConfig, image_shape, ctx) -> ThinParams:
    if rng.random() < config.full_prob:
        return ThinParams(0)
    return ThinParams(int(rng.integers(config.iterations_range[0], config.iterations_range[1] + 1)))


# Guo & Hall 1989 ("Parallel thinning with two-subiteration algorithms"), the algorithm of
# scikit-image's ``thin``, run with OpenCV (several times faster at 512 px; the test compares
# the two). Neighbour code: bit k-1 is neighbour x_k, x1 = east, counter-clockwise to x8 = south-east.
_NEIGHBOURS = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], np.float32)


def _guo_hall_lut(first: bool) -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for code in range(256):
        x = [bool(code >> k & 1) for k in range(8)]
        x = x + x[:1]  # x[8] is x1 again
        crossings = sum((not x[2 * i]) and (x[2 * i + 1] or x[2 * i + 2]) for i in range(4))
        n1 = sum(x[2 * k] or x[2 * k + 1] for k in range(4))
        n2 = sum(x[2 * k + 1] or x[2 * k + 2] for k in range(4))
        side = ((x[1] or x[2] or not x[7]) and x[0]) if first else ((x[5] or x[6] or not x[3]) and x[4])
        lut[code] = crossings == 1 and 2 <= min(n1, n2) <= 3 and not side
    return lut


_THIN_LUTS = (_guo_hall_lut(True), _guo_hall_lut(False))


def thin_map(edges: np.ndarray, iterations: int = 0) -> np.ndarray:
    """Thin a boolean (H, W) map: ``iterations`` passes of both subiterations (0: until stable)."""
    skel = edges.astype(np.uint8)
    count, done = int(np.count_nonzero(skel)), 0
    while not iterations or done < iterations:
        for lut in _THIN_LUTS:
            codes = cv2.filter2D(skel, cv2.CV_8U, _NEIGHBOURS, borderType=cv2.BORDER_CONSTANT)
            skel[cv2.LUT(codes, lut).view(bool) & (skel > 0)] = 0
        done += 1
        new_count = int(np.count_nonzero(skel))
        if new_count == count:
            break
        count = new_count
    return skel > 0


def _thin_apply(image: np.ndarray, params: ThinParams) -> np.ndarray:
    return _as_rgb(thin_map(_edges_of(image), params.iterations), image)


register("thin_edges", "thin edge lines (to 1 px, or a few passes)", ThinConfig, ThinParams, _thin_sample, _thin_apply)
