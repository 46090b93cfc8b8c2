"""Blur operations: the Real-ESRGAN random kernel mix (``blur``) and the final circular
low-pass (``sinc``).

Kernels are rebuilt in ``apply`` from their generating parameters (see ``kernels.py`` for the
shapes and the angle convention) and applied with reflect-101 borders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pairgen.ops import kernels
from pairgen.ops.base import Context, register
from pairgen.ops.util import cap_unit, check_probs, check_range, check_sizes, choose, clip_unit, uniform

_ODD_SIZES = tuple(range(7, 22, 2))  # 7, 9, ..., 21
_MIN_SIGMA = 1e-3  # pixels: narrower than this is a delta on any grid (and keeps S invertible)

def _draw_beta(rng: np.random.Generator, bounds: tuple) -> float:
    """BasicSR's rule (``random_bivariate_generalized_Gaussian`` / ``_plateau``): when the range
    holds 1, draw from [low, 1] or [1, high] with p=.5 each, so that heavy-tailed (beta < 1) and
    flat-topped (beta > 1) shapes are equally likely; else uniform over the range.

    With the plateau range [1, 2] this gives beta = 1 exactly half the time, U(1, 2) otherwise:
    what Real-ESRGAN trained on, so we keep it.
    """
    low, high = bounds
    if low <= 1.0 <= high:
        return uniform(rng, (low, 1.0)) if rng.random() < 0.5 else uniform(rng, (1.0, high))
    return uniform(rng, bounds)


# --------------------------------------------------------------------------------------- blur


@dataclass(frozen=True)
class BlurConfig:
    """Sampling settings of ``blur`` (defaults: Real-ESRGAN stage 1; stage 2 uses sigma_range
    [0.2, 1.5]).

    kernel_sizes: odd kernel sizes in pixels, drawn uniformly.
    kernel_kinds / kernel_probs: the mix of shapes (see pairgen.ops.kernels).
    sigma_range: Gaussian sigma along each principal axis, pixels (iso kinds draw one).
    rotation_range: angle of the sigma_x axis, radians (aniso kinds only).
    variance_range: if set, aniso kinds draw the variance along each principal axis,
        l ~ U[variance_range] (pixels squared), and use sigma = sqrt(l) (BSRGAN: [0, 4 + scale]);
        iso kinds still draw sigma from sigma_range. None: aniso sigmas ~ U[sigma_range].
    generalized_beta_range / plateau_beta_range: shape exponents (drawn by BasicSR's rule, see
        _draw_beta).
    sinc_prob: probability of a circular low-pass kernel instead of the mix.
    sinc_cutoff_range_small_kernel: cutoff for sizes < 13, radians per pixel (pi = Nyquist).
    sinc_cutoff_range_large_kernel: cutoff for sizes >= 13 (lower cutoffs need larger kernels).
    """

    kernel_sizes: tuple[int, ...] = _ODD_SIZES
    kernel_kinds: tuple[str, ...] = kernels.KERNEL_KINDS
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma_range: tuple[float, float] = (0.2, 3.0)
    rotation_range: tuple[float, float] = (-math.pi, math.pi)
    variance_range: tuple[float, float] | None = None
    generalized_beta_range: tuple[float, float] = (0.5, 4.0)
    plateau_beta_range: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    sinc_cutoff_range_small_kernel: tuple[float, float] = (math.pi / 3, math.pi)
    sinc_cutoff_range_large_kernel: tuple[float, float] = (math.pi / 5, math.pi)

    def __post_init__(self):
        check_sizes("blur", self.kernel_sizes)
        unknown = [k for k in self.kernel_kinds if k not in kernels.KERNEL_KINDS]
        if unknown:
            raise ValueError(f"blur.kernel_kinds: unknown kind {unknown[0]!r}; expected some of {kernels.KERNEL_KINDS}")
        check_probs("blur", "kernel_probs", self.kernel_probs, len(self.kernel_kinds))
        check_range("blur", "sigma_range", self.sigma_range, low=1e-3)
        check_range("blur", "rotation_range", self.rotation_range)
        if self.variance_range is not None:
            check_range("blur", "variance_range", self.variance_range, low=0.0)
        check_range("blur", "generalized_beta_range", self.generalized_beta_range, low=1e-3)
        check_range("blur", "plateau_beta_range", self.plateau_beta_range, low=1e-3)
        check_range("blur", "sinc_cutoff_range_small_kernel", self.sinc_cutoff_range_small_kernel, low=1e-3)
        check_range("blur", "sinc_cutoff_range_large_kernel", self.sinc_cutoff_range_large_kernel, low=1e-3)
        if not 0.0 <= self.sinc_prob <= 1.0:
            raise ValueError(f"blur.sinc_prob: expected a probability in [0, 1], got {self.sinc_prob}")


@dataclass(frozen=True)
class BlurParams:
    """One drawn kernel. kind: a kernels.KERNEL_KINDS name or "sinc"; size: odd, pixels;
    sigma_x, sigma_y: pixels; theta: radians (see kernels.py); beta: shape exponent
    (generalized / plateau kinds); cutoff: radians per pixel (sinc). Unused fields are None."""

    kind: str
    size: int
    sigma_x: float | None = None
    sigma_y: float | None = None
    theta: float | None = None
    beta: float | None = None
    cutoff: float | None = None


def sample_blur(rng: np.random.Generator, config: BlurConfig, image_shape, ctx: Context) -> BlurParams:
    size = int(config.kernel_sizes[int(rng.integers(len(config.kernel_sizes)))])
    if rng.random() < config.sinc_prob:
        bounds = config.sinc_cutoff_range_small_kernel if size < 13 else config.sinc_cutoff_range_large_kernel
        return BlurParams(kind="sinc", size=size, cutoff=uniform(rng, bounds))
    kind = str(config.kernel_kinds[choose(rng, config.kernel_probs)])
    if kind.endswith("aniso"):
        if config.variance_range is None:
            sigma_x, sigma_y = uniform(rng, config.sigma_range), uniform(rng, config.sigma_range)
        else:  # BSRGAN: eigenvalues of the covariance uniform; a zero variance is a delta axis
            sigma_x = max(math.sqrt(uniform(rng, config.variance_range)), _MIN_SIGMA)
            sigma_y = max(math.sqrt(uniform(rng, config.variance_range)), _MIN_SIGMA)
        theta = uniform(rng, config.rotation_range)
    else:
        sigma_x = uniform(rng, config.sigma_range)
        sigma_y, theta = sigma_x, 0.0
    beta = None
    if kind.startswith("generalized"):
        beta = _draw_beta(rng, config.generalized_beta_range)
    elif kind.startswith("plateau"):
        beta = _draw_beta(rng, config.plateau_beta_range)
    return BlurParams(kind=kind, size=size, sigma_x=sigma_x, sigma_y=sigma_y, theta=theta, beta=beta)


def blur_kernel(params: BlurParams) -> np.ndarray:
    """The (size, size) float64 kernel that ``params`` describes, summing to 1."""
    return kernels.make_kernel(
        params.kind, params.size, params.sigma_x, params.sigma_y, params.theta, params.beta, params.cutoff
    )


def apply_blur(image: np.ndarray, params: BlurParams) -> np.ndarray:
    # Only the circular low-pass has negative lobes; the other shapes average, so their output
    # is never negative and one pass caps it at 1.
    clip = clip_unit if params.kind == "sinc" else cap_unit
    return clip(kernels.convolve(image, blur_kernel(params)))


register(
    "blur",
    "Real-ESRGAN random blur: iso/aniso/generalized/plateau Gaussian mix or a circular low-pass",
    BlurConfig,
    BlurParams,
    sample_blur,
    apply_blur,
)


# --------------------------------------------------------------------------------------- sinc


@dataclass(frozen=True)
class SincConfig:
    """Sampling settings of ``sinc``, Real-ESRGAN's final circular low-pass (its ringing and
    overshoot mimic over-sharpened and resampled images).

    kernel_sizes: odd sizes in pixels, drawn uniformly; cutoff_range: radians per pixel.
    """

    kernel_sizes: tuple[int, ...] = _ODD_SIZES
    cutoff_range: tuple[float, float] = (math.pi / 3, math.pi)

    def __post_init__(self):
        check_sizes("sinc", self.kernel_sizes)
        check_range("sinc", "cutoff_range", self.cutoff_range, low=1e-3)


@dataclass(frozen=True)
class SincParams:
    """size: odd kernel size, pixels; cutoff: radians per pixel (pi = Nyquist)."""

    size: int
    cutoff: float


def sample_sinc(rng: np.random.Generator, config: SincConfig, image_shape, ctx: Context) -> SincParams:
    size = int(config.kernel_sizes[int(rng.integers(len(config.kernel_sizes)))])
    return SincParams(size=size, cutoff=uniform(rng, config.cutoff_range))


def apply_sinc(image: np.ndarray, params: SincParams) -> np.ndarray:
    return clip_unit(kernels.convolve(image, kernels.sinc_kernel(params.size, params.cutoff)))


register(
    "sinc",
    "circular low-pass (J1 'sinc') filter with random size and cutoff: ringing and overshoot",
    SincConfig,
    SincParams,
    sample_sinc,
    apply_sinc,
)
