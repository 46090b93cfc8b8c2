"""Helpers shared by the op modules: config validation, uniform draws, fast clipping."""
from __future__ import annotations

import cv2
import numpy as np


def check_sizes(op: str, sizes) -> None:
    if not sizes or any(int(s) != s or s < 1 or s % 2 != 1 for s in sizes):
        raise ValueError(f"{op}.kernel_sizes: expected a non-empty list of odd positive integers, got {sizes}")


def check_range(op: str, field: str, rng_: tuple, low: float | None = None) -> None:
    if len(rng_) != 2 or rng_[0] > rng_[1] or (low is not None and rng_[0] < low):
        bound = f" with low >= {low}" if low is not None else ""
        raise ValueError(f"{op}.{field}: expected [low, high] with low <= high{bound}, got {rng_}")


def check_probs(op: str, field: str, probs: tuple, n: int) -> None:
    if len(probs) != n or any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
        raise ValueError(f"{op}.{field}: expected {n} non-negative probabilities summing to 1, got {probs}")


def uniform(rng: np.random.Generator, bounds: tuple) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def choose(rng: np.random.Generator, probs) -> int:
    """Index drawn with the given probabilities (summing to 1) from one uniform draw; ~8x
    cheaper than Generator.choice(p=...), which validates its arguments on every call."""
    u = rng.random()
    total = 0.0
    for i, p in enumerate(probs):
        total += p
        if u < total:
            return i
    return len(probs) - 1  # u just below 1 with probabilities that sum to 1 - epsilon


def check_prob(op: str, field: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}.{field}: expected a probability in [0, 1], got {p}")


def _c_strides(array: np.ndarray) -> tuple[int, ...]:
    strides, step = [], array.itemsize
    for n in reversed(array.shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def clip_unit(image: np.ndarray) -> np.ndarray:
    """Clip a fresh float32 array to [0, 1] in place and return it (cv2.threshold: ~5x faster
    than np.clip on numpy 1.26; same values)."""
    if image.strides != _c_strides(image):  # e.g. size-1 axes of a slice: OpenCV rejects them
        image = image.copy()
    image = cv2.threshold(image, 1.0, 1.0, cv2.THRESH_TRUNC, dst=image)[1]
    return cv2.threshold(image, 0.0, 0.0, cv2.THRESH_TOZERO, dst=image)[1]


def cap_unit(image: np.ndarray) -> np.ndarray:
    """Clip a fresh float32 array that cannot be negative (a convex combination of values in
    [0, 1]: a non-negative kernel, area or bilinear resampling) to at most 1 in place: one pass
    where ``clip_unit`` takes two. Float rounding can lift such sums a few ulps above 1."""
    if image.strides != _c_strides(image):
        image = image.copy()
    return cv2.threshold(image, 1.0, 1.0, cv2.THRESH_TRUNC, dst=image)[1]


def unit_to_uint8(image: np.ndarray) -> np.ndarray:
    """Same values as ``pairgen.ops.base.to_uint8`` (floor(255 x + 0.5), clipped), ~10x faster."""
    scaled = image * np.float32(255.0)
    scaled += np.float32(0.5)
    scaled = cv2.threshold(scaled, 255.0, 255.0, cv2.THRESH_TRUNC, dst=scaled)[1]
    scaled = cv2.threshold(scaled, 0.0, 0.0, cv2.THRESH_TOZERO, dst=scaled)[1]
    return scaled.astype(np.uint8)
