"""Blur kernels of the Real-ESRGAN / BSRGAN families, and a fast way to apply them.

Conventions: a kernel is a float64 (k, k) array, k odd, centred on index k // 2, summing to 1.
Row index = y (down), column index = x (right). ``theta`` (radians) is the angle of the kernel's
``sigma_x`` axis measured from +x towards +y, i.e. clockwise on screen because y points down.
All kernels here are point-symmetric (k[-y, -x] == k[y, x]), so correlation (what
``cv2.filter2D`` computes) equals convolution.

The shapes follow BasicSR's ``degradations.py`` (the Real-ESRGAN reference):

* Gaussian:             exp(-0.5 * q)
* generalized Gaussian: exp(-0.5 * q ** beta)
* plateau:              1 / (1 + q ** beta)
* circular low-pass ("sinc"): wc * J1(wc * r) / (2 pi r), an ideal disc low-pass with cutoff
  wc (radians per pixel, pi = Nyquist) windowed by the kernel square,

with q = [x y] S^-1 [x y]^T and S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size < 1 or size % 2 != 1:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")
    ax = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(ax, ax)  # xx varies along columns (x), yy along rows (y)
    return xx, yy


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """q(x, y) = [x y] S^-1 [x y]^T on the kernel grid (see module docstring)."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"sigmas must be positive, got sigma_x={sigma_x}, sigma_y={sigma_y}")
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy  # coordinate along the sigma_x axis
    v = -s * xx + c * yy  # coordinate along the sigma_y axis
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def _normalized(kernel: np.ndarray) -> np.ndarray:
    total = kernel.sum()
    if not total > 0:
        raise ValueError("kernel sums to zero or less; check its parameters")
    return kernel / total


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Anisotropic (or, with sigma_y None, isotropic) Gaussian; sigmas in pixels."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    return _normalized(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """exp(-0.5 q^beta): beta < 1 heavy-tailed, beta > 1 flatter top (Real-ESRGAN eq. 3)."""
    return _normalized(np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta)))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """1 / (1 + q^beta): a flat top with polynomial tails (Real-ESRGAN eq. 4)."""
    return _normalized(1.0 / (np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta) + 1.0))


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1(x) for x >= 0 (float64), from Bessel's integral J1(x) = 1/(2 pi) int_0^{2 pi}
    cos(t - x sin t) dt by the trapezoid rule: exact to ~1e-15 once the number of nodes exceeds
    x by a margin (the error falls like (e x / 2n)^n). Here rather than scipy.special.j1 so that
    importing the ops does not import SciPy (~0.1 s of every build's start)."""
    x = np.asarray(x, dtype=np.float64)
    values, inverse = np.unique(x, return_inverse=True)  # a kernel grid has few distinct radii
    n = 40 + int(math.ceil(1.5 * float(values.max(initial=0.0))))
    t = np.arange(n, dtype=np.float64) * (2.0 * math.pi / n)
    j1 = np.cos(t[None, :] - values[:, None] * np.sin(t)[None, :]).mean(axis=1)
    return j1[inverse].reshape(x.shape)


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass kernel, cutoff in radians per pixel (pi = Nyquist); J1-based."""
    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * bessel_j1(cutoff * r) / (2.0 * np.pi * r)
    kernel[size // 2, size // 2] = cutoff**2 / (4.0 * np.pi)  # the limit at r = 0
    return _normalized(kernel)


def make_kernel(
    kind: str,
    size: int,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    theta: float | None = None,
    beta: float | None = None,
    cutoff: float | None = None,
) -> np.ndarray:
    """Build a kernel from its generating parameters (the fields of ``blur``'s Params).

    kind: one of KERNEL_KINDS or "sinc". Iso kinds use sigma_x only (sigma_y and theta ignored).
    """
    if kind == "sinc":
        return sinc_kernel(size, cutoff)
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; expected one of {KERNEL_KINDS + ('sinc',)}")
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sigma_y, theta = sigma_x, 0.0
    if kind in ("iso", "aniso"):
        return gaussian_kernel(size, sigma_x, sigma_y, theta)
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, beta)
    return plateau_kernel(size, sigma_x, sigma_y, theta, beta)


# ---------------------------------------------------------------------------------------------
# Applying a kernel quickly.
#
# On a 512x512 RGB float32 image on one core (OpenCV 4.11), a dense cv2.filter2D costs ~2 ms for
# a 7x7 kernel, ~5 ms for 11x11 and ~10 ms from 13x13 on (its DFT path). We pick the cheapest of
# three exact-enough methods with a small cost model:
#
# * "separable": the kernel as a short sum of rank-1 terms, one cv2.sepFilter2D each (~0.1 ms
#   per tap). All kernels here are point-symmetric, so they split into an even-even and an
#   odd-odd part whose singular vectors are exactly symmetric / antisymmetric; we make them so
#   bit for bit, which lets OpenCV use its symmetric filter loops (2-3x faster). An isotropic
#   Gaussian is one term.
# * "dense": cv2.filter2D, for small kernels of high rank.
# * "fft": per channel cv2.dft, spectrum product, inverse (~6-8 ms whatever the kernel).
#
# Border rings and 1-D tails that carry (almost) no mass are cropped first. Everything dropped
# (cropped mass, truncated SVD terms) is counted against an L1 budget, so the output differs from
# the exact dense filter by at most APPLY_TOLERANCE per pixel for images in [0, 1], a fraction of
# an 8-bit level (1/255 = 3.9e-3). The method depends only on the kernel, so replay is bit-exact.

APPLY_TOLERANCE = 5e-4  # max |output - exact dense filter| for images in [0, 1]

# Cost model, ms for a 512x512x3 float32 image on one core (fitted to timings of 120 kernels
# drawn from the default ``blur`` config at 128, 256, 512 and 768 px; only the ratios matter).
# Filtering costs scale with the pixel count; the FFT's with the padded size, plus a fixed
# overhead (seven DFT calls) that makes it a poor choice on small images.
_SEP_TERM_MS, _SEP_TAP_MS = 0.29, 0.059  # per rank-1 term, per 1-D tap
_DENSE_TAP_MS, _DENSE_DFT_MIN, _DENSE_DFT_MS = 0.04, 13, 10.0  # filter2D: 0.04 k^2 below 13x13, its DFT path above
_FFT_MS, _FFT_OVERHEAD_MS = 7.0, 0.15  # at a padded size of 532x532
_CALL_MS = 0.02  # per OpenCV call, whatever the size


def _crop(kernel: np.ndarray, budget: float) -> tuple[np.ndarray, float]:
    """Drop symmetric border rings while the dropped absolute mass stays within budget."""
    k = kernel
    dropped = 0.0
    while k.shape[0] > 1:
        ring = np.abs(k).sum() - np.abs(k[1:-1, 1:-1]).sum()
        if dropped + ring > budget:
            break
        dropped += ring
        k = k[1:-1, 1:-1]
    return k, dropped


def _crop_1d(v: np.ndarray, weight: float, budget: float) -> np.ndarray:
    """Drop symmetric end taps of v while sum(|dropped|) * weight stays within budget."""
    a, b = 0, len(v)
    dropped = 0.0
    while b - a > 1:
        mass = (abs(v[a]) + abs(v[b - 1])) * weight
        if dropped + mass > budget:
            break
        dropped += mass
        a, b = a + 1, b - 1
    return v[a:b]


def _exact_parity(v: np.ndarray, even: bool) -> np.ndarray:
    return 0.5 * (v + v[::-1]) if even else 0.5 * (v - v[::-1])


def separable_terms(kernel: np.ndarray, tolerance: float = APPLY_TOLERANCE) -> list[tuple[np.ndarray, np.ndarray]]:
    """(column, row) float32 1-D kernels, odd-length, centred and each exactly symmetric or
    antisymmetric, whose outer products sum to the (point-symmetric) kernel within an L1 error
    of ``tolerance``."""
    k, dropped = _crop(kernel, tolerance / 2)
    flip_y, flip_x, flip_both = k[::-1, :], k[:, ::-1], k[::-1, ::-1]
    candidates = []  # (singular value, col, row)
    for even, part in ((True, k + flip_y + flip_x + flip_both), (False, k - flip_y - flip_x + flip_both)):
        u, s, vt = np.linalg.svd(0.25 * part)
        for i in range(len(s)):
            if s[i] > 1e-12:
                root = math.sqrt(s[i])
                candidates.append((s[i], _exact_parity(u[:, i] * root, even), _exact_parity(vt[i] * root, even)))
    candidates.sort(key=lambda c: -c[0])
    approx = np.zeros_like(k)
    pairs = []
    for _, col, row in candidates:
        approx += np.outer(col, row)
        pairs.append((col, row))
        if dropped + np.abs(approx - k).sum() <= 0.75 * tolerance:
            break
    dropped += np.abs(approx - k).sum()
    # the rest of the budget goes to trimming each term's tails (split evenly over terms)
    budget = max(tolerance - dropped, 0.0) / (2 * len(pairs))
    terms = []
    for col, row in pairs:
        col = _crop_1d(col, np.abs(row).sum(), budget)
        row = _crop_1d(row, np.abs(col).sum(), budget)
        terms.append((col.astype(np.float32), row.astype(np.float32)))
    return terms


def _separable_cost(terms, area: float) -> float:
    return sum(_CALL_MS + area * (_SEP_TERM_MS + _SEP_TAP_MS * (len(c) + len(r))) for c, r in terms)


def _dense_cost(size: int, area: float) -> float:
    return _CALL_MS + area * (_DENSE_TAP_MS * size * size if size < _DENSE_DFT_MIN else _DENSE_DFT_MS)


def _fft_cost(shape: tuple[int, ...], size: int) -> float:
    channels = shape[2] if len(shape) > 2 else 1
    padded = (shape[0] + size - 1) * (shape[1] + size - 1) / (532.0 * 532.0) * channels / 3.0
    return _FFT_OVERHEAD_MS + _FFT_MS * padded


def choose_method(kernel: np.ndarray, shape: tuple[int, ...], tolerance: float = APPLY_TOLERANCE) -> str:
    """"separable", "dense" or "fft": the cheapest by the cost model above for this kernel and
    image shape (H, W, C). A function of both alone, so replay picks the same method."""
    return _plan(kernel, shape, tolerance)[0]


def _plan(kernel: np.ndarray, shape: tuple[int, ...], tolerance: float):
    terms = separable_terms(kernel, tolerance)
    cropped, _ = _crop(kernel, tolerance / 2)
    area = shape[0] * shape[1] * (shape[2] if len(shape) > 2 else 1) / (512.0 * 512.0 * 3.0)
    costs = {"separable": _separable_cost(terms, area), "dense": _dense_cost(cropped.shape[0], area),
             "fft": _fft_cost(shape, cropped.shape[0])}
    return min(costs, key=costs.get), terms, cropped


def _fft_filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of a reflect-101 padded copy; equals the padded linear filter."""
    h, w, channels = image.shape
    r = kernel.shape[0] // 2
    rows, cols = cv2.getOptimalDFTSize(h + 2 * r), cv2.getOptimalDFTSize(w + 2 * r)
    # Few, reused buffers: in this VM a freshly touched page costs ~1.5 us, ~1 ms per 512x512
    # float plane, as much as the DFT itself.
    plane = np.zeros((rows, cols), np.float32)
    # kernel centre moved to (0, 0), wrapping around (exact for a point-symmetric kernel)
    plane[: r + 1, : r + 1] = kernel[r:, r:]
    plane[: r + 1, cols - r :] = kernel[r:, :r]
    plane[rows - r :, : r + 1] = kernel[:r, r:]
    plane[rows - r :, cols - r :] = kernel[:r, :r]
    kspec = cv2.dft(plane)
    # Zero the negligible stop-band: products that small become float32 denormals, which slow
    # the inverse DFT down several times. The change is below 1e-9 per frequency.
    kspec[np.abs(kspec) < 1e-9] = 0.0
    channel = np.empty((h, w), np.float32)
    spec = np.empty((rows, cols), np.float32)
    out = np.empty(image.shape, np.float32)
    for c in range(channels):
        cv2.extractChannel(image, c, dst=channel)
        # Rows and columns beyond h + 2r get more reflected pixels rather than zeros: only the
        # outputs we keep must not wrap, and each of them reads rows [y - r, y + r] of the pad.
        cv2.copyMakeBorder(channel, r, rows - h - r, r, cols - w - r, cv2.BORDER_REFLECT_101, dst=plane)
        cv2.dft(plane, dst=spec)
        cv2.mulSpectrums(spec, kspec, 0, c=spec)
        cv2.dft(spec, dst=plane, flags=cv2.DFT_INVERSE | cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
        out[:, :, c] = plane[r : r + h, r : r + w]
    return out


def convolve(image: np.ndarray, kernel: np.ndarray, tolerance: float = APPLY_TOLERANCE) -> np.ndarray:
    """Filter an (H, W, C) float32 image with a point-symmetric kernel, reflect-101 borders.

    Returns a new float32 array (not clipped), within ``tolerance`` per pixel of the exact
    dense filter for inputs in [0, 1] (see the note above).
    """
    method, terms, cropped = _plan(kernel, image.shape, tolerance)
    if method == "dense":
        return cv2.filter2D(image, cv2.CV_32F, cropped.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    if method == "fft":
        return _fft_filter(image, cropped.astype(np.float32))
    out = cv2.sepFilter2D(image, cv2.CV_32F, terms[0][1], terms[0][0], borderType=cv2.BORDER_REFLECT_101)
    part = None
    for col, row in terms[1:]:  # one scratch buffer for all further terms (see _fft_filter)
        part = cv2.sepFilter2D(image, cv2.CV_32F, row, col, dst=part, borderType=cv2.BORDER_REFLECT_101)
        out += part
    return out
