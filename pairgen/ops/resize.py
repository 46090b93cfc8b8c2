"""Resizing: a random rescale (``resize``), the exact resize to the LR size
(``resize_to_target``) and BSRGAN's blur-then-stride decimation (``stride_downsample``).

Pixel grid convention (alignment): every op here maps the whole input extent onto the whole
output extent with pixel centres at integer + 0.5, so output pixel i of an s-times smaller image
covers input pixels [s i, s (i + 1)) with no half-pixel shift. ``cv2.resize`` uses exactly this
mapping for INTER_AREA, INTER_LINEAR and INTER_CUBIC (torch's ``align_corners=False`` is the
same). A chain of such resizes therefore keeps LR and HR on one grid as long as the HR size is a
multiple of the scale (``Context.target_size`` floors otherwise; crop the HR to a multiple).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pairgen.ops.base import Context, register
from pairgen.ops.util import cap_unit, check_probs, check_range, choose, clip_unit, uniform

INTERPOLATIONS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_MODES = tuple(INTERPOLATIONS)  # the random-resize defaults (Real-ESRGAN's three)
# "bicubic_antialias": MATLAB imresize's bicubic (Keys, a = -0.5) with the kernel stretched by the
# downscale factor, the classical "BI" degradation of SR benchmarks. cv2's INTER_CUBIC does not
# stretch its kernel and aliases when shrinking.
ALL_MODES = _MODES + ("bicubic_antialias",)


def _check_modes(op: str, modes: tuple, probs: tuple) -> None:
    unknown = [m for m in modes if m not in ALL_MODES]
    if not modes or unknown:
        raise ValueError(f"{op}.modes: expected a non-empty list from {ALL_MODES}, got {modes}")
    check_probs(op, "mode_probs", probs, len(modes))


def _draw_mode(rng: np.random.Generator, modes: tuple, probs: tuple) -> str:
    return str(modes[choose(rng, probs)])


def resize_image(image: np.ndarray, out_height: int, out_width: int, mode: str) -> np.ndarray:
    """cv2.resize with the module's grid convention; a new float32 array clipped to [0, 1]."""
    if mode not in ALL_MODES:
        raise ValueError(f"resize mode: expected one of {ALL_MODES}, got {mode!r}")
    if out_height < 1 or out_width < 1:
        raise ValueError(f"resize: output size must be at least 1x1 px, got {out_height}x{out_width}")
    if (out_height, out_width) == image.shape[:2]:
        return image.copy()
    if mode == "bicubic_antialias":
        return clip_unit(_resize_antialiased_cubic(image, int(out_height), int(out_width)))
    out = cv2.resize(image, (int(out_width), int(out_height)), interpolation=INTERPOLATIONS[mode])
    if out.ndim == 2:  # cv2 drops a trailing channel axis of size 1
        out = out[:, :, None]
    # area and bilinear weights are convex (never negative); bicubic overshoots at edges
    clip = clip_unit if mode == "bicubic" else cap_unit
    return clip(np.ascontiguousarray(out))


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's and PIL's bicubic)."""
    x = np.abs(x)
    return np.where(x <= 1, 1.5 * x**3 - 2.5 * x**2 + 1, np.where(x < 2, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2, 0.0))


def _cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(index, weights), both (n_out, taps): output pixel i is sum_t weights[i, t] *
    input[index[i, t]] (index before mirroring). Pixel centres are mapped as everywhere in this
    module, the kernel is stretched by 1/scale when shrinking, rows sum to 1."""
    scale = n_out / n_in
    stretch = min(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) / scale - 0.5
    support = 2.0 / stretch
    taps = np.arange(-math.ceil(support), math.ceil(support) + 1)
    index = (np.floor(centres)[:, None] + taps[None, :]).astype(np.int64)
    weights = stretch * _cubic(stretch * (centres[:, None] - index))
    weights /= weights.sum(axis=1, keepdims=True)
    return index, weights


def _cubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix of _cubic_taps with symmetric (mirror) borders."""
    index, weights = _cubic_taps(n_in, n_out)
    # symmetric padding (MATLAB's and BSRGAN's imresize): -1 -> 0, -2 -> 1, n -> n - 1
    mirrored = np.where(index < 0, -index - 1, index)
    mirrored = np.where(mirrored > n_in - 1, 2 * n_in - 1 - mirrored, mirrored).clip(0, n_in - 1)
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(n_out), index.shape[1]), mirrored.ravel()), weights.ravel())
    return matrix.astype(np.float32)


def _shrink_axis0(image: np.ndarray, n_out: int) -> np.ndarray | None:
    """Axis 0 of (n_in, m) float32 shrunk by an integer factor s = n_in / n_out, or None when the
    factor is not an integer. Then every output row has the same weights, so it is one 1-D
    filter over symmetric-padded rows (OpenCV) and every s-th row: ~10x faster than the
    matrix product, same values to float32 rounding."""
    n_in = image.shape[0]
    if n_in % n_out or n_in == n_out:
        return None
    s = n_in // n_out
    index, weights = _cubic_taps(n_in, n_out)
    pad = index.shape[1]
    if pad > n_in:  # the kernel outgrows the image: the mirror would fold more than once
        return None
    padded = cv2.copyMakeBorder(image, pad, pad, 0, 0, cv2.BORDER_REFLECT)  # symmetric: -1 -> 0
    kernel = weights[0].astype(np.float32)  # a column: filter2D's direct loop (sepFilter2D is 3x slower here)
    # anchor (0, 0): filtered[j] = sum_t kernel[t] * padded[j + t]
    filtered = cv2.filter2D(padded, cv2.CV_32F, kernel.reshape(-1, 1), anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
    if filtered.ndim == 3:
        filtered = filtered.reshape(filtered.shape[0], -1)
    first = int(index[0, 0]) + pad
    return filtered[first : first + s * n_out : s]


def _resize_antialiased_cubic(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    h, w, c = image.shape
    flat = image.reshape(h, w * c)
    rows = _shrink_axis0(flat, out_height)
    if rows is None:
        rows = _cubic_weights(h, out_height) @ flat  # (out_h, w*c)
    rows = np.ascontiguousarray(rows.reshape(out_height, w, c).transpose(1, 0, 2).reshape(w, out_height * c))
    out = _shrink_axis0(rows, out_width)
    if out is None:
        out = _cubic_weights(w, out_width) @ rows  # (out_w, out_h*c)
    return np.ascontiguousarray(out.reshape(out_width, out_height, c).transpose(1, 0, 2))


@dataclass(frozen=True)
class ResizeParams:
    """out_height, out_width: output size in pixels; mode: area | bilinear | bicubic."""

    out_height: int
    out_width: int
    mode: str


def apply_resize(image: np.ndarray, params: ResizeParams) -> np.ndarray:
    return resize_image(image, params.out_height, params.out_width, params.mode)


# ------------------------------------------------------------------------------------- resize


@dataclass(frozen=True)
class ResizeConfig:
    """Sampling settings of ``resize`` (defaults: Real-ESRGAN stage 1; stage 2 uses probs
    .3/.4/.3, up_range [1, 1.2], down_range [0.3, 1], relative_to "target").

    up_prob / down_prob / keep_prob: how the scale factor is drawn (sum to 1).
    up_range / down_range: scale factor (output / input side length) ranges.
    down_divisor_range: if set, a downscale is 1 / d with d ~ U[down_divisor_range] instead of
        U[down_range] (BSRGAN's intermediate downsample: d ~ U[1, 2 * scale], median factor
        0.22 at x4 where U[0.125, 1] has 0.56).
    modes / mode_probs: interpolation choices.
    relative_to: "current" scales the current image size; "target" scales ctx.target_size
        (Real-ESRGAN stage 2: size = target_size * scale). Output side = floor(base * scale),
        at least 1 px.
    """

    up_prob: float = 0.2
    down_prob: float = 0.7
    keep_prob: float = 0.1
    up_range: tuple[float, float] = (1.0, 1.5)
    down_range: tuple[float, float] = (0.15, 1.0)
    down_divisor_range: tuple[float, float] | None = None
    modes: tuple[str, ...] = _MODES
    mode_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    relative_to: str = "current"

    def __post_init__(self):
        check_probs("resize", "up_prob, down_prob, keep_prob", (self.up_prob, self.down_prob, self.keep_prob), 3)
        check_range("resize", "up_range", self.up_range, low=1e-6)
        check_range("resize", "down_range", self.down_range, low=1e-6)
        if self.down_divisor_range is not None:
            check_range("resize", "down_divisor_range", self.down_divisor_range, low=1e-6)
        _check_modes("resize", self.modes, self.mode_probs)
        if self.relative_to not in ("current", "target"):
            raise ValueError(f"resize.relative_to: expected 'current' or 'target', got {self.relative_to!r}")


def sample_resize(rng: np.random.Generator, config: ResizeConfig, image_shape, ctx: Context) -> ResizeParams:
    direction = choose(rng, (config.up_prob, config.down_prob, config.keep_prob))
    if direction == 0:
        scale = uniform(rng, config.up_range)
    elif direction == 1 and config.down_divisor_range is not None:
        scale = 1.0 / uniform(rng, config.down_divisor_range)
    elif direction == 1:
        scale = uniform(rng, config.down_range)
    else:
        scale = 1.0
    mode = _draw_mode(rng, config.modes, config.mode_probs)
    base_h, base_w = ctx.target_size if config.relative_to == "target" else tuple(image_shape[:2])
    return ResizeParams(
        out_height=max(1, int(base_h * scale)), out_width=max(1, int(base_w * scale)), mode=mode
    )


register(
    "resize",
    "random up/down/keep rescale with a random interpolation (area, bilinear, bicubic)",
    ResizeConfig,
    ResizeParams,
    sample_resize,
    apply_resize,
)


# --------------------------------------------------------------------------- resize_to_target


@dataclass(frozen=True)
class ResizeToTargetConfig:
    """Sampling settings of ``resize_to_target``: resize to exactly ctx.target_size (the LR size),
    keeping the LR on the HR pixel grid (see the module docstring).

    modes / mode_probs: interpolation choices (Real-ESRGAN and BSRGAN: all three, equally).
    """

    modes: tuple[str, ...] = _MODES
    mode_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)

    def __post_init__(self):
        _check_modes("resize_to_target", self.modes, self.mode_probs)


def sample_resize_to_target(
    rng: np.random.Generator, config: ResizeToTargetConfig, image_shape, ctx: Context
) -> ResizeParams:
    height, width = ctx.target_size
    if height < 1 or width < 1:
        raise ValueError(f"resize_to_target: target size {ctx.target_size} (hr_size {ctx.hr_size}, scale {ctx.scale}) is empty")
    return ResizeParams(out_height=int(height), out_width=int(width), mode=_draw_mode(rng, config.modes, config.mode_probs))


register(
    "resize_to_target",
    "resize to the LR target size (hr_size // scale), aligned to the HR pixel grid",
    ResizeToTargetConfig,
    ResizeParams,
    sample_resize_to_target,
    apply_resize,
)


# -------------------------------------------------------------------------- stride_downsample


@dataclass(frozen=True)
class StrideDownsampleConfig:
    """Sampling settings of ``stride_downsample`` (BSRGAN's "shifted Gaussian blur, then keep
    every s-th pixel").

    strides: integer strides, drawn uniformly; empty = (ctx.scale,) as in BSRGAN. Only integer
        strides: a fractional stride cannot sample a fixed grid without resampling.
    sigma_range: Gaussian sigma in input pixels; None = [0.1, 0.6 * stride] as in BSRGAN.
    """

    strides: tuple[int, ...] = ()
    sigma_range: tuple[float, float] | None = None

    def __post_init__(self):
        if any(int(s) != s or s < 1 for s in self.strides):
            raise ValueError(f"stride_downsample.strides: expected positive integers, got {self.strides}")
        if self.sigma_range is not None:
            check_range("stride_downsample", "sigma_range", self.sigma_range, low=1e-3)


@dataclass(frozen=True)
class StrideDownsampleParams:
    """stride: integer decimation factor; sigma: Gaussian sigma, input pixels."""

    stride: int
    sigma: float


def sample_stride_downsample(
    rng: np.random.Generator, config: StrideDownsampleConfig, image_shape, ctx: Context
) -> StrideDownsampleParams:
    strides = config.strides or (ctx.scale,)
    stride = int(strides[int(rng.integers(len(strides)))])
    bounds = config.sigma_range if config.sigma_range is not None else (0.1, 0.6 * stride)
    return StrideDownsampleParams(stride=stride, sigma=uniform(rng, bounds))


def shifted_gaussian_1d(sigma: float, shift: float) -> np.ndarray:
    """Odd-length, centred 1-D Gaussian whose peak sits ``shift`` taps right of the centre."""
    radius = max(1, math.ceil(4.0 * sigma + abs(shift)))
    d2 = (np.arange(-radius, radius + 1, dtype=np.float64) - shift) ** 2
    taps = np.exp(-(d2 - d2.min()) / (2.0 * sigma * sigma))  # min-shifted: no underflow for tiny sigma
    return (taps / taps.sum()).astype(np.float32)


def apply_stride_downsample(image: np.ndarray, params: StrideDownsampleParams) -> np.ndarray:
    """Blur with a Gaussian centred (s - 1) / 2 px right and down of each pixel, then keep pixels
    0, s, 2s, ... in each axis. Output pixel i is thus the blur centred on the middle of input
    block [s i, s (i + 1)): the same grid as an area resize by 1/s. Output size ceil(H / s) x
    ceil(W / s); the last row/column is a partial block when H or W is not a multiple of s."""
    s = int(params.stride)
    if s < 1:
        raise ValueError(f"stride_downsample: stride must be >= 1, got {s}")
    taps = shifted_gaussian_1d(float(params.sigma), (s - 1) / 2.0)
    # cv2 filters are correlations: out(x) = sum_u taps[u] in(x + u), so the blur centre is x + shift.
    # Only every s-th output is kept, so filter the rows, drop the unused columns, then filter
    # the columns of what is left: the same values as the full 2-D separable filter (each axis
    # is padded on its own either way), at ~1/3 of its cost.
    rows = cv2.filter2D(image, cv2.CV_32F, taps.reshape(1, -1), borderType=cv2.BORDER_REFLECT_101)
    if rows.ndim == 2:
        rows = rows[:, :, None]
    rows = np.ascontiguousarray(rows[:, ::s])
    blurred = cv2.filter2D(rows, cv2.CV_32F, taps.reshape(-1, 1), borderType=cv2.BORDER_REFLECT_101)
    if blurred.ndim == 2:
        blurred = blurred[:, :, None]
    return clip_unit(blurred[::s].copy())


register(
    "stride_downsample",
    "BSRGAN decimation: Gaussian blur shifted by (s-1)/2 px, then every s-th pixel (grid-aligned)",
    StrideDownsampleConfig,
    StrideDownsampleParams,
    sample_stride_downsample,
    apply_stride_downsample,
)
