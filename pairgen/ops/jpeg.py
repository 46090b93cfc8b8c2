"""JPEG compression through a real codec (OpenCV's libjpeg-turbo)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pairgen.ops.base import Context, register, to_float


@dataclass(frozen=True)
class JpegConfig:
    """Sampling settings of ``jpeg`` (defaults: Real-ESRGAN; BSRGAN and old photos differ only
    in range).

    quality_range: [low, high] libjpeg quality factor, integers, both ends included.
    """

    quality_range: tuple[int, int] = (30, 95)

    def __post_init__(self):
        low, high = self.quality_range
        if int(low) != low or int(high) != high or not 1 <= low <= high <= 100:
            raise ValueError(f"jpeg.quality_range: expected integers 1 <= low <= high <= 100, got {self.quality_range}")


@dataclass(frozen=True)
class JpegParams:
    """quality: libjpeg quality factor, 1..100 (4:2:0 chroma subsampling, baseline)."""

    quality: int


def sample_jpeg(rng: np.random.Generator, config: JpegConfig, image_shape, ctx: Context) -> JpegParams:
    low, high = config.quality_range
    return JpegParams(quality=int(rng.integers(int(low), int(high) + 1)))


def jpeg_bytes(image_u8_rgb: np.ndarray, quality: int) -> bytes:
    """Encode a uint8 RGB image as a baseline 4:2:0 JPEG at the given quality."""
    flags = [
        cv2.IMWRITE_JPEG_QUALITY, int(quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image_u8_rgb, cv2.COLOR_RGB2BGR), flags)
    if not ok:
        raise RuntimeError(f"jpeg: OpenCV failed to encode a {image_u8_rgb.shape} image")
    return buffer.tobytes()


def apply_jpeg(image: np.ndarray, params: JpegParams) -> np.ndarray:
    """Round to 8 bits, encode, decode (deterministic: same bytes in, same pixels out).

    The rounding is to nearest with ties to even, saturated (OpenCV's float -> uint8, what
    BasicSR's cv2 JPEG path does with ``img * 255``); images here are in [0, 1]."""
    if not 1 <= params.quality <= 100:
        raise ValueError(f"jpeg.quality: expected 1..100, got {params.quality}")
    data = jpeg_bytes(cv2.convertScaleAbs(image, alpha=255.0), params.quality)
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return to_float(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


register(
    "jpeg",
    "JPEG round trip through libjpeg at a random quality",
    JpegConfig,
    JpegParams,
    sample_jpeg,
    apply_jpeg,
)
