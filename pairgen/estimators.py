"""Per-image statistics of low-quality photos: what `pairgen calibrate` measures on a user's real
images and on a recipe's outputs alike. Every estimator is a pure function of its input (no
random draws); units are in each docstring. Images are uint8 RGB arrays (H, W, 3), x right,
y down, 8-bit sRGB values; "levels" are 8-bit code values (0..255).

- JPEG quality: exactly from the file's quantization tables when it is a JPEG
  (``jpeg_quality_from_tables``); from the pixels otherwise (``jpeg_quality_from_pixels``: the
  8x8 DCT coefficients of a decoded JPEG sit on multiples of its quantization steps).
- Noise: standard deviation in levels, measured in the flattest blocks; gray vs colour (the
  correlation of the noise between channels); signal dependence (bright vs dark noise).
- Blur: the Gaussian blur sigma (pixels) that best explains the fall-off of the power spectrum
  under the natural-image prior P(f) ~ f^-alpha.
- Resolution: width, height, megapixels.
- Old photos (``film_statistics``): tone percentiles, black level and contrast in CIELAB L*;
  tint hue (degrees, averaged as a vector, so circular) and chroma of the mid-tones; grain as
  print-density RMS in flat mid-tone blocks; the colour spread that tells a print from a colour photo.
"""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from PIL import Image

# IJG (libjpeg) base tables, ITU-T T.81 Annex K, row-major (natural) order.
_LUMA_BASE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)
_CHROMA_BASE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99], dtype=np.int64)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's ``jpeg_quality_scaling`` applied to a base table (baseline: steps 1..255)."""
    quality = min(max(int(quality), 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


_LUMA_TABLES = np.stack([ijg_table(_LUMA_BASE, q) for q in range(1, 101)])  # row q-1: quality q
_CHROMA_TABLES = np.stack([ijg_table(_CHROMA_BASE, q) for q in range(1, 101)])


def jpeg_quality_from_tables(tables: dict) -> int | None:
    """The IJG quality factor (1..100) whose standard tables equal ``tables`` exactly (Pillow's
    ``Image.quantization``: table id -> 64 steps, row-major), or None when the tables are not
    the scaled IJG ones (another encoder's, e.g. a camera's or Photoshop's)."""
    luma = np.asarray(tables.get(0, ()), dtype=np.int64)
    if luma.shape != (64,):
        return None
    matches = np.flatnonzero((_LUMA_TABLES == luma).all(axis=1))
    if 1 in tables and len(tables[1]) == 64:
        chroma = np.asarray(tables[1], dtype=np.int64)
        matches = [q for q in matches if (_CHROMA_TABLES[q] == chroma).all()]
    # Several qualities can give the same tables (e.g. 98..100 saturate at 1); report the lowest.
    return int(matches[0]) + 1 if len(matches) else None


def jpeg_quality_of_file(data: bytes) -> int | None:
    """Quality from the quantization tables of encoded image bytes; None when not a JPEG or the
    tables are not IJG-standard."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "MPO"):
                return None
            return jpeg_quality_from_tables(image.quantization)
    except Exception:  # noqa: BLE001 - not an image Pillow reads: no tables to read
        return None


def _luma_levels(image: np.ndarray) -> np.ndarray:
    """JFIF Y of uint8 RGB, float64 levels 0..255 (what libjpeg encodes)."""
    rgb = image.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.sqrt(2 / 8) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    d[0] /= np.sqrt(2)
    return d  # orthonormal: JPEG's FDCT scaling exactly


_DCT = _dct_matrix()
_MAX_RESIDUAL = 0.6  # levels: median distance of a position's coefficients to its step grid accepted as "on it"
_MIN_PER_POSITION = 16  # non-zero coefficients a DCT position needs to be judged
_MAX_BLOCKS = 4096  # blocks read per image (evenly spaced): enough to judge, bounded cost
_MIN_FITTING_POSITIONS = 0.9  # fraction of the judged positions that must fit (smooth gradients can miss one)


def block_dct(gray: np.ndarray) -> np.ndarray:
    """8x8 block DCT (JPEG's, orthonormal) of the whole blocks of a 2-D array, aligned at (0, 0):
    (n_blocks, 64) coefficients in row-major order, in the input's units."""
    h, w = (gray.shape[0] // 8) * 8, (gray.shape[1] // 8) * 8
    blocks = gray[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    return (_DCT @ (blocks - 128.0) @ _DCT.T).reshape(-1, 64)


def jpeg_quality_from_pixels(image: np.ndarray) -> int:
    """The quality of the last JPEG compression visible in decoded pixels (1..100; 100 when the
    pixels show none), from the 8x8 grid aligned at (0, 0).

    A decoded JPEG's luma DCT coefficients lie within rounding of multiples of the IJG steps of
    its quality, at every position of the 8x8 block; a lower quality (a larger step somewhere)
    does not fit them. So the estimate is the lowest quality whose steps fit every judged
    position (90% of them: a smooth gradient can push one off): median residual under 0.6
    levels over that position's non-zero coefficients
    (zeros fit every step; a position needs 16 of them to be judged; blocks with a clipped
    pixel are left out). Exact for IJG-standard
    JPEGs of 256x256 px or more saved at their own size (tested at 10..95); smaller images hold
    too few coefficients to tell neighbouring qualities apart; a resize, noise or blur after the compression hides
    it (then 100 or a high value: the compression no longer shows)."""
    coeffs = block_dct(_luma_levels(image))[:, 1:]  # AC positions only
    # Blocks with a clipped pixel (0 or 255) were moved off the grid by the clipping: left out.
    h, w = (image.shape[0] // 8) * 8, (image.shape[1] // 8) * 8
    pixels = image[:h, :w].reshape(h // 8, 8, w // 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(len(coeffs), -1)
    coeffs = coeffs[(pixels.min(axis=1) > 0) & (pixels.max(axis=1) < 255)]
    if len(coeffs) > _MAX_BLOCKS:
        coeffs = coeffs[np.linspace(0, len(coeffs) - 1, _MAX_BLOCKS).astype(np.int64)]
    if coeffs.size == 0:
        return 100
    for quality in range(1, 101):
        steps = _LUMA_TABLES[quality - 1][1:].astype(np.float64)
        if steps.max() <= 2:
            break  # steps of 1-2 levels: rounding alone fits them; nothing left to tell
        used = np.abs(coeffs) > 0.5 * steps  # coefficients that quantize to a non-zero multiple
        judged = used.sum(axis=0) >= _MIN_PER_POSITION
        if judged.sum() < 2:
            continue  # too few non-zero coefficients to judge these steps (a flat image)
        ratio = coeffs / steps
        near = (np.abs(ratio - np.round(ratio)) * steps < _MAX_RESIDUAL) & used
        # a position's median residual is under the bound when more than half of its used coefficients are
        median_fits = near.sum(axis=0)[judged] * 2 > used.sum(axis=0)[judged]
        if median_fits.mean() >= _MIN_FITTING_POSITIONS:
            return quality
    return 100


# ----------------------------------------------------------------------------- noise

_ROOT_HALF_PI = math.sqrt(math.pi / 2)  # E|x| = sigma sqrt(2 / pi) for Gaussian x
_FLAT_FRACTION = 0.25  # of the 8x8 blocks, the flattest are used for noise
# Immerkaer's mask: zero on planes, so it sees noise, not smooth shading; on white noise of
# std sigma its output has std 6 sigma.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0


@dataclass(frozen=True)
class NoiseEstimate:
    """sigma: noise standard deviation, 8-bit levels (mean over channels);
    channel_correlation: correlation of the noise between colour channels (1: gray / luminance
    noise, 0: independent colour noise), unitless;
    signal_dependence: log(sigma in bright flat blocks / sigma in dark flat blocks), natural log
    units: 0 for additive noise, about +0.5 * log(brightness ratio) for shot (Poisson) noise."""

    sigma: float
    channel_correlation: float
    signal_dependence: float


def _flat_residuals(rgb: np.ndarray):
    """(Immerkaer residuals of the flattest quarter of the usable 8x8 blocks, (n, 64, 3); their
    blocks' mean levels, (n,)), or None when the image holds no whole block. Flatness is judged
    on a smoothed copy, so the noise itself does not decide; clipped blocks are left out."""
    residual = np.stack([cv2.filter2D(rgb[..., c], -1, _NOISE_MASK, borderType=cv2.BORDER_REFLECT_101)
                         for c in range(3)], axis=-1)[1:-1, 1:-1]
    smooth = cv2.GaussianBlur(rgb.mean(axis=2), (0, 0), 2.0)
    gy, gx = np.gradient(smooth)
    structure = np.hypot(gx, gy)[1:-1, 1:-1]
    h, w = (residual.shape[0] // 8) * 8, (residual.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return None
    blocks = residual[:h, :w].reshape(h // 8, 8, w // 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 64, 3)
    flatness = structure[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3)).ravel()
    means = rgb[1:-1, 1:-1][:h, :w].mean(axis=2).reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3)).ravel()
    # Clipped blocks (black or white) hide their noise: leave them out.
    usable = (means > 8) & (means < 247)
    if usable.sum() < 4:
        usable = np.ones_like(usable)
    order = np.argsort(np.where(usable, flatness, np.inf))
    flat = order[:max(4, int(usable.sum() * _FLAT_FRACTION))]
    return blocks[flat], means[flat]


def estimate_noise(image: np.ndarray) -> NoiseEstimate:
    """Noise of a uint8 RGB image, from the high-pass residual (Immerkaer's mask) in the flattest
    quarter of its 8x8 blocks. sigma = sqrt(pi / 2) * mean |residual| (Immerkaer 1996; a median
    would be quantized by the 8-bit levels at the low noise of small LR images). Valid for noise
    on smooth regions; texture everywhere biases sigma up. The channel correlation is judged
    on a 2x area-averaged copy: a JPEG's 4:2:0 chroma subsampling removes colour noise at full
    resolution (there every noise reads gray) and keeps it at the chroma's own scale."""
    rgb = image.astype(np.float32)
    found = _flat_residuals(rgb)
    if found is None:
        return NoiseEstimate(0.0, 0.0, 0.0)
    values, levels = found  # (n, 64, 3), (n,)
    sigma = float((_ROOT_HALF_PI * np.abs(values.reshape(-1, 3)).mean(axis=0)).mean())
    half = None
    if min(image.shape[:2]) >= 32:
        half = _flat_residuals(cv2.resize(rgb, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA))
    correlation = _channel_correlation((half[0] if half is not None else values).reshape(-1, 3))
    # Bright vs dark halves of the flat blocks (by their mean level).
    by_level = np.argsort(levels)
    count = len(by_level) // 2
    dark = _ROOT_HALF_PI * np.abs(values[by_level[:count]]).mean()
    bright = _ROOT_HALF_PI * np.abs(values[by_level[count:]]).mean()
    dependence = float(math.log((bright + 0.05) / (dark + 0.05))) if count else 0.0
    return NoiseEstimate(sigma, correlation, dependence)


def _channel_correlation(values: np.ndarray) -> float:
    """Mean pairwise Pearson correlation of the three channels' residuals (0 when flat)."""
    std = values.std(axis=0)
    if np.any(std < 1e-6):
        return 0.0
    c = np.corrcoef(values.T)
    return float((c[0, 1] + c[0, 2] + c[1, 2]) / 3.0)


# ----------------------------------------------------------------------------- blur

_FIT_BAND = (0.04, 0.45)  # cycles per pixel used by the blur fit (0.5 = Nyquist)


def radial_power_spectrum(gray: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a 2-D array (Hann-windowed, mean removed):
    (frequencies in cycles per pixel, bin centres in (0, 0.5]; power per frequency bin, in
    (input units)^2 per pixel: white noise of std s gives s^2 at every frequency)."""
    g = gray.astype(np.float64)
    g = g - g.mean()
    window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    spectrum = np.abs(np.fft.fft2(g * window)) ** 2 / (window**2).sum()
    fy = np.fft.fftfreq(g.shape[0])[:, None]
    fx = np.fft.fftfreq(g.shape[1])[None, :]
    radius = np.hypot(fy, fx).ravel()
    edges = np.linspace(0, 0.5, bins + 1)
    index = np.digitize(radius, edges) - 1
    keep = (index >= 0) & (index < bins) & (radius > 0)
    total = np.bincount(index[keep], spectrum.ravel()[keep], bins)
    count = np.bincount(index[keep], minlength=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, np.where(count > 0, total / np.maximum(count, 1), np.nan)


def estimate_blur_sigma(image: np.ndarray, noise_sigma: float | None = None) -> float:
    """Gaussian blur sigma in pixels (0 = sharp at this pixel size) that explains the luma power
    spectrum under the natural-image prior: log P(f) = c - 2 log f - 4 pi^2 sigma^2 f^2, fitted by
    least squares over 0.04..0.45 cycles per pixel after subtracting the white-noise floor
    (noise_sigma, levels; estimated when None), on the bins where the signal stays above half
    that floor. The slope is fixed at 2 (natural images: 1.6..2.4) because a free slope absorbs
    the fall-off of a blur seen over a narrow band; content steeper or flatter than 1/f^2 shifts
    the estimate, the same for real images and a recipe's outputs. It measures the effective
    resolution: every low-pass (lens, resize, sinc, JPEG) counts. NaN when no bin is usable."""
    if noise_sigma is None:
        noise_sigma = estimate_noise(image).sigma
    gray = _luma_levels(image)
    if min(gray.shape) < 16:
        return float("nan")
    f, power = radial_power_spectrum(gray)
    floor = noise_sigma**2
    signal = power - floor
    keep = (f >= _FIT_BAND[0]) & (f <= _FIT_BAND[1]) & np.isfinite(power) & (signal > 0.5 * floor) & (signal > 0)
    if keep.sum() < 3:
        return float("nan")  # the noise hides the spectrum above the lowest frequencies
    # log(signal) + 2 log f = c - 4 pi^2 sigma^2 f^2: a line in f^2
    design = np.stack([np.ones(keep.sum()), -4 * np.pi**2 * f[keep] ** 2], axis=1)
    solution, *_ = np.linalg.lstsq(design, np.log(signal[keep]) + 2 * np.log(f[keep]), rcond=None)
    return float(math.sqrt(max(solution[1], 0.0)))


# ----------------------------------------------------------------------------- all of them


@dataclass(frozen=True)
class ImageStatistics:
    """One image's statistics (see the module docstring for each one's units)."""

    width: int  # pixels
    height: int  # pixels
    megapixels: float
    jpeg_quality: int  # 1..100: the file's tables when it is a JPEG, else from the pixels
    jpeg_quality_source: str  # "tables" | "pixels"
    noise_sigma: float  # 8-bit levels
    noise_channel_correlation: float  # unitless, 1 = gray noise
    noise_signal_dependence: float  # natural log ratio, bright vs dark
    blur_sigma: float  # pixels

    def to_json(self) -> dict:
        return asdict(self)


# The statistics that calibration matches, with their units (for the report).
FITTED_STATISTICS = {
    "jpeg_quality": "IJG quality (1..100)",
    "noise_sigma": "8-bit levels",
    "noise_channel_correlation": "correlation (1 = gray noise)",
    "blur_sigma": "pixels (Gaussian sigma)",
}


def image_statistics(image: np.ndarray, data: bytes | None = None) -> ImageStatistics:
    """All statistics of a uint8 RGB image; ``data`` (its file's bytes) lets JPEG quality come
    exactly from the quantization tables."""
    h, w = image.shape[:2]
    quality = jpeg_quality_of_file(data) if data is not None else None
    source = "tables"
    if quality is None:
        quality, source = jpeg_quality_from_pixels(image), "pixels"
    noise = estimate_noise(image)
    return ImageStatistics(
        width=int(w), height=int(h), megapixels=round(w * h / 1e6, 6),
        jpeg_quality=int(quality), jpeg_quality_source=source,
        noise_sigma=noise.sigma, noise_channel_correlation=noise.channel_correlation,
        noise_signal_dependence=noise.signal_dependence,
        blur_sigma=estimate_blur_sigma(image, noise.sigma),
    )


# ----------------------------------------------------------------------------- old photos (film)

_TINT_TONES = (25.0, 85.0)  # L*: the mid-tones where every toner shows (toners vanish at black and white)
_MIN_TINT_CHROMA = 1.5  # C*ab: below it a print is neutral and its tint hue is undefined (NaN)
_GRAIN_TONES = (20.0, 90.0)  # L*: grain judged where one 8-bit level is a small density step
_TONE_SIDE = 256  # tone and tint are judged on an area-averaged copy at most this side: same percentiles, less time
_GRAIN_SIDE = 512  # grain is judged on the central window of this side: the grain's own pixels, bounded time
_SPREAD_BIN = 5.0  # L* width of the tone bins of the colour-spread check


def lab_of(image: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of uint8 sRGB: (H, W, 3) float32, L* 0..100, a*, b* (OpenCV's exact float
    conversion, sRGB decoding included)."""
    return cv2.cvtColor(image.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def circular_mean_degrees(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(hue, chroma) of the mean (a*, b*) vector: the hue of a set of colours averaged as
    vectors, so 350 and 10 degrees average to 0, not 180; hue in [0, 360)."""
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    return math.degrees(math.atan2(mean_b, mean_a)) % 360.0, math.hypot(mean_a, mean_b)


@dataclass(frozen=True)
class FilmStatistics:
    """One old photo's statistics. Tones are CIELAB L* (0 black .. 100 white) of the print as
    it is, toning and base colour included."""

    width: int  # pixels
    height: int  # pixels
    megapixels: float
    tone_p10: float  # L*: 10th percentile (the tone curve's low end)
    tone_p50: float  # L*: median
    tone_p90: float  # L*: 90th percentile
    black_level: float  # L*: 1st percentile; fading lifts it
    contrast: float  # L*: standard deviation over the image (RMS contrast); fading lowers it
    tint_hue: float  # degrees, CIELAB hue of the mid-tones' mean colour; NaN when neutral
    tint_chroma: float  # C*ab of the mid-tones' mean colour (0 = an untoned print)
    grain: float  # print density x 1000: RMS of the density noise in flat mid-tone blocks
    colour_spread: float  # C*ab: 90th percentile of the colour off each tone's mean colour (a print has one per tone)

    def to_json(self) -> dict:
        return asdict(self)


FILM_STATISTICS = {
    "tone_p10": "L* (CIELAB lightness, 0..100)",
    "tone_p50": "L*",
    "tone_p90": "L*",
    "black_level": "L* (1st percentile)",
    "contrast": "L* (standard deviation)",
    "tint_hue": "degrees (CIELAB hue, circular)",
    "tint_chroma": "C*ab (chroma of the tint)",
    "grain": "print density x 1000 (RMS)",
}
CIRCULAR_STATISTICS = {"tint_hue": 360.0}  # statistic -> period: distances taken on the circle
MAX_PRINT_COLOUR_SPREAD = 6.0  # C*ab: above it an image has colours a monochrome print has not


def _area_downsample(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    factor = max(h, w) / side
    if factor <= 1:
        return image
    return cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)


def _central(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])


def colour_spread(a: np.ndarray, b: np.ndarray, lightness: np.ndarray) -> float:
    """C*ab: 90th percentile, over pixels, of the distance of (a*, b*) to the mean (a*, b*) of
    its tone (L* bins of 5). A print, toned or yellowed, has one colour per tone: a few units
    (grain, JPEG); a colour photo has tens."""
    index = np.clip((lightness / _SPREAD_BIN).astype(np.intp), 0, int(100 / _SPREAD_BIN)).ravel()
    bins = int(100 / _SPREAD_BIN) + 1
    count = np.maximum(np.bincount(index, minlength=bins), 1)
    mean_a = np.bincount(index, a.ravel(), bins) / count
    mean_b = np.bincount(index, b.ravel(), bins) / count
    off = np.hypot(a.ravel() - mean_a[index], b.ravel() - mean_b[index])
    return float(np.percentile(off, 90))


_SRGB_TO_LINEAR = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                           ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)
_LIGHTNESS_OF_LEVEL = np.where(_SRGB_TO_LINEAR > (6 / 29) ** 3, 116 * np.cbrt(_SRGB_TO_LINEAR) - 16,
                               _SRGB_TO_LINEAR * (29 / 3) ** 3).astype(np.float32)


def print_density_grain(image: np.ndarray) -> float:
    """Grain: RMS of the print's density noise (D = -log10 of linear luminance), x 1000, in the
    flattest quarter of the 8x8 blocks whose L* lies in 20..90 and that hold more than one level
    (a block of one level is clipped paper; Immerkaer's residual on the density image, as for
    estimate_noise). In density units the grain of a film stays about the same in light and
    dark tones, where in 8-bit levels it would follow the tone curve's slope. Grains much
    coarser than a block read low (the residual sees only their edges). 0 when no block is
    usable."""
    luminance = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.shape[2] == 3 else image[..., 0]
    linear = _SRGB_TO_LINEAR[luminance]  # the JFIF luma of an sRGB image, decoded: close to Y for a print
    density = -np.log10(np.maximum(linear, np.float32(1e-4))).astype(np.float32)
    residual = cv2.filter2D(density, -1, _NOISE_MASK, borderType=cv2.BORDER_REFLECT_101)[1:-1, 1:-1]
    smooth = cv2.GaussianBlur(density, (0, 0), 2.0)
    gy, gx = np.gradient(smooth)
    structure = np.hypot(gx, gy)[1:-1, 1:-1]
    tone = _LIGHTNESS_OF_LEVEL[luminance][1:-1, 1:-1]
    h, w = (residual.shape[0] // 8) * 8, (residual.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return 0.0

    def blocks(x):
        return x[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    tones = blocks(tone).mean(axis=1)
    levels = blocks(luminance[1:-1, 1:-1])
    # A block of one level is clipped paper (white or maximum black): no grain can show there.
    textured = levels.max(axis=1) > levels.min(axis=1)
    usable = np.flatnonzero((tones >= _GRAIN_TONES[0]) & (tones <= _GRAIN_TONES[1]) & textured)
    if len(usable) < 4:
        return 0.0
    flatness = blocks(structure).mean(axis=1)[usable]
    flat = usable[np.argsort(flatness)[:max(4, int(len(usable) * _FLAT_FRACTION))]]
    return float(1000.0 * _ROOT_HALF_PI * np.abs(blocks(residual)[flat]).mean())


def film_statistics(image: np.ndarray, data: bytes | None = None) -> FilmStatistics:
    """All old-photo statistics of a uint8 RGB image (a scan of a print). Tone and tint on an
    area-averaged copy of at most 256 px a side (percentiles and mean colours keep), grain on
    the central 512x512 pixels (not resampled: grain lives at the pixel scale). ``data`` is
    accepted for the same call as image_statistics."""
    h, w = image.shape[:2]
    small = _area_downsample(image, _TONE_SIDE)
    lab = lab_of(small)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    p1, p10, p50, p90 = (float(v) for v in np.percentile(lightness, [1, 10, 50, 90]))
    mid = (lightness >= _TINT_TONES[0]) & (lightness <= _TINT_TONES[1])
    hue, chroma = circular_mean_degrees(a[mid], b[mid]) if mid.sum() >= 16 else (float("nan"), 0.0)
    return FilmStatistics(
        width=int(w), height=int(h), megapixels=round(w * h / 1e6, 6),
        tone_p10=p10, tone_p50=p50, tone_p90=p90, black_level=p1, contrast=float(lightness.std()),
        tint_hue=hue if chroma >= _MIN_TINT_CHROMA else float("nan"), tint_chroma=chroma,
        grain=print_density_grain(_central(image, _GRAIN_SIDE)), colour_spread=colour_spread(a, b, lightness),
    )
