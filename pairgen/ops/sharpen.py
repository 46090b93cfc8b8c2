"""Unsharp masking of the HR target (Real-ESRGAN trains on a sharpened HR: "USM")."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pairgen.ops.base import Context, register
from pairgen.ops.util import clip_unit


@dataclass(frozen=True)
class UnsharpMaskConfig:
    """Settings of ``unsharp_mask`` (defaults: Real-ESRGAN's USMSharp). Nothing is random.

    kernel_size: odd Gaussian kernel size, pixels (Real-ESRGAN: radius 50 -> 51).
    sigma: Gaussian sigma, pixels (OpenCV's default for a 51 kernel is 8.0).
    weight: amount of the residual (image - blur) added back.
    threshold: 8-bit levels; only where |residual| exceeds it (softened by the same Gaussian)
        is the sharpened image used, so flat regions and noise stay as they are.
    """

    kernel_size: int = 51
    sigma: float = 8.0
    weight: float = 0.5
    threshold: float = 10.0

    def __post_init__(self):
        if int(self.kernel_size) != self.kernel_size or self.kernel_size < 1 or self.kernel_size % 2 != 1:
            raise ValueError(f"unsharp_mask.kernel_size: expected an odd positive integer, got {self.kernel_size}")
        if not self.sigma > 0:
            raise ValueError(f"unsharp_mask.sigma: expected > 0 pixels, got {self.sigma}")


@dataclass(frozen=True)
class UnsharpMaskParams:
    """The Config's values, recorded so that the sample's json says what was done."""

    kernel_size: int
    sigma: float
    weight: float
    threshold: float


def sample_unsharp_mask(rng: np.random.Generator, config: UnsharpMaskConfig, image_shape, ctx: Context) -> UnsharpMaskParams:
    return UnsharpMaskParams(
        kernel_size=int(config.kernel_size), sigma=float(config.sigma),
        weight=float(config.weight), threshold=float(config.threshold),
    )


def apply_unsharp_mask(image: np.ndarray, params: UnsharpMaskParams) -> np.ndarray:
    """out = m * clip(x + w (x - G x)) + (1 - m) x, m = G [|x - G x| > threshold / 255]
    (per channel; G = Gaussian blur with reflect-101 borders)."""
    ksize = (int(params.kernel_size), int(params.kernel_size))
    blurred = cv2.GaussianBlur(image, ksize, params.sigma, borderType=cv2.BORDER_REFLECT_101)
    residual = image - blurred
    mask = (np.abs(residual) > np.float32(params.threshold / 255.0)).astype(np.float32)
    soft = cv2.GaussianBlur(mask, ksize, params.sigma, borderType=cv2.BORDER_REFLECT_101)
    if soft.ndim == 2:
        soft = soft[:, :, None]
    residual *= np.float32(params.weight)
    sharp = clip_unit(image + residual)
    # soft * sharp + (1 - soft) * image == image + soft * (sharp - image)
    sharp -= image
    sharp *= soft
    sharp += image
    return clip_unit(sharp)


register(
    "unsharp_mask",
    "unsharp masking with a soft threshold mask (Real-ESRGAN's sharpened HR)",
    UnsharpMaskConfig,
    UnsharpMaskParams,
    sample_unsharp_mask,
    apply_unsharp_mask,
)
