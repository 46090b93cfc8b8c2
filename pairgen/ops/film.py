"""Black-and-white film and darkroom operations: an old photo made the way it was made.

A film chain runs in this order (recipes/colorize.yaml); what the pipeline image holds between
steps is said per op, and every op works in linear light where the physics is linear:

1. ``film_sensitivity``: sRGB photo -> the emulsion's latent image (gray, sRGB-encoded): linear
   light weighted by the emulsion's spectral weights (``pairgen.ops.spectra``).
2. ``lens_softness``, ``vignetting``: camera optics, on the latent image's linear exposure.
3. ``film_negative``: latent image -> the developed negative, held as its transmittance
   T = 10^-D (linear, in (0, 1]) through the characteristic (H&D) curve: fog, toe, straight
   part of slope gamma, shoulder; exposure and development drawn per sample.
4. ``uneven_development``, ``film_grain``: on the negative's density.
5. ``paper_print``: negative -> print (sRGB-encoded): enlarger exposure placed on the densest
   part of the negative, paper of a contrast grade (ISO 6846 log-exposure ranges).
6. ``toning``: a tone -> colour gradient per toner, one hue, within the sRGB gamut.
7. ``fading``, ``base_yellowing``: ageing of the print.

Colour choices a task makes per sample (emulsion, illuminant, toner) reach the samplers through
``Context.extra["film"]``; without it (a step used on its own) they are drawn uniformly.
"""
from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import cv2
import numpy as np

from pairgen.ops.base import Context, register, to_float
from pairgen.ops.noise import draw_seed, standard_normal_field
from pairgen.ops.spectra import EMULSIONS, ILLUMINANTS, emulsion_weights
from pairgen.ops.util import check_prob, check_probs, check_range, clip_unit, uniform

LOG2 = math.log10(2.0)
MIN_TRANSMITTANCE = 1e-4  # density 4: beyond any negative or print here
MIDDLE_GRAY = 0.18


# ----------------------------------------------------------------------------- helpers


# OpenCV's exp and log are 2-3x numpy's on float32 (errors 3e-7 relative, 1e-6 absolute) but
# 10-100x slower on ln 0 and on results below float32's normal range: for values in [0, 1] the
# callers keep log's input >= TINY and exp's input >= MIN_EXPONENT (what is cut off is below
# 1e-30 either way).
TINY = np.float32(1e-30)
MIN_EXPONENT = np.float32(-30 * math.log(10.0))


def _rows(x: np.ndarray) -> np.ndarray:
    """A 2-D view of a C-contiguous array for OpenCV: one long row (an (N,) array would be N
    rows of one value, which some OpenCV functions walk row by row)."""
    return x.reshape(1, -1)


def _exp(x: np.ndarray) -> np.ndarray:
    """e^x of a float32 array, any shape."""
    return cv2.exp(_rows(x)).reshape(x.shape)


def _log(x: np.ndarray) -> np.ndarray:
    """ln x of a float32 array, any shape."""
    return cv2.log(_rows(x)).reshape(x.shape)


def _float32(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v if v.flags.c_contiguous else np.ascontiguousarray(v)


def _writable(v) -> np.ndarray:
    """float32, C-contiguous, and writable: a function's fresh result as is, a copy of a
    read-only one (an input plane handed back)."""
    v = _float32(v)
    return v if v.flags.writeable else v.copy()


def _at_least(x: np.ndarray, low: float) -> np.ndarray:
    """max(x, low), a fresh array; float32 arrays by OpenCV (3x numpy 1.26's float32 maximum)."""
    if x.dtype != np.float32 or x.size <= 4 or not x.flags.c_contiguous:
        return np.maximum(x, x.dtype.type(low))
    return cv2.max(_rows(x), float(np.float32(low))).reshape(x.shape)


def _clamp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """min(max(x, low), high), a fresh array (as ``_at_least``)."""
    if x.dtype != np.float32 or x.size <= 4 or not x.flags.c_contiguous:
        return np.minimum(np.maximum(x, x.dtype.type(low)), x.dtype.type(high))
    return cv2.min(cv2.max(_rows(x), float(np.float32(low))), float(np.float32(high))).reshape(x.shape)


def _where_low(out: np.ndarray, v: np.ndarray, threshold: float, low: np.ndarray) -> np.ndarray:
    """out, with ``low`` where v <= threshold (cv2.compare and copyTo: ~5x np.copyto(where=);
    OpenCV reads arrays of up to 4 values as scalars, so those take numpy)."""
    if v.size <= 4:
        np.copyto(out, low, where=v <= np.float32(threshold))
        return out
    mask = cv2.compare(_rows(v), float(threshold), cv2.CMP_LE)
    cv2.copyTo(_rows(low), mask, _rows(out))
    return out


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """The sRGB decoding (IEC 61966-2-1), float32; x^2.4 as exp(2.4 ln x) by OpenCV (tests/test_film.py
    bounds the error against float64). Values below -0.055 give NaN in the power branch, which
    the linear branch replaces."""
    v = _float32(v)
    base = v + np.float32(0.055)
    base *= np.float32(1 / 1.055)
    out = _log(base)
    out *= np.float32(2.4)
    out = _exp(out)
    return _where_low(out, v, 0.04045, v * np.float32(1 / 12.92))


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """The sRGB encoding, float32; values clipped to [0, 1] first."""
    v = np.array(v, dtype=np.float32)
    v = clip_unit(v) if v.size > 4 else np.clip(v, np.float32(0.0), np.float32(1.0))
    out = _log(v + TINY)
    out *= np.float32(1 / 2.4)
    out = _exp(out)
    out *= np.float32(1.055)
    out -= np.float32(0.055)
    return _where_low(out, v, 0.0031308, v * np.float32(12.92))


def power_of_ten(exponent: np.ndarray) -> np.ndarray:
    """10^x, float32 (x below -30 counts as -30)."""
    return _exp(_at_least(_float32(exponent) * np.float32(math.log(10.0)), MIN_EXPONENT))


# ----------------------------------------------------------------------------- what a film image is

# The film ops hand (H, W, 3) images on, but most are gray prints (three equal channels) and a
# toned print holds one colour per 8-bit level. An image a film op makes remembers which, read-only
# so that the fact cannot go stale: the next op takes the gray plane without checking every pixel
# (the check costs as much as a pointwise op on the plane) and a pointwise op on a toned print
# maps its 256 colours, not H x W x 3 values. Keyed by id(image), dropped when the image dies.
_MADE: dict[int, tuple] = {}


def _remember(image: np.ndarray, **facts) -> np.ndarray:
    """Mark ``image`` (and the arrays in ``facts``) read-only and remember the facts for it:
    gray=(H, W) plane of its equal channels, or levels=(H, W) uint8 with table=(256, 3) float32,
    image = table[levels]."""
    for array in (image, *facts.values()):
        array.flags.writeable = False
    key = id(image)
    _MADE[key] = (weakref.ref(image, lambda _, key=key: _MADE.pop(key, None)), facts)
    return image


def _facts(image: np.ndarray) -> dict:
    entry = _MADE.get(id(image))
    return entry[1] if entry is not None and entry[0]() is image else {}


def gray_image(plane: np.ndarray) -> np.ndarray:
    """A fresh read-only (H, W, 3) float32 image with ``plane`` in every channel, remembered as gray."""
    return _remember(three_channels(plane), gray=_float32(plane))


def indexed_image(levels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """A fresh read-only (H, W, 3) float32 image table[levels], remembered as such: levels (H, W)
    uint8, table (256, 3) float32 (both become read-only: pass arrays nobody else writes)."""
    table = np.ascontiguousarray(table, dtype=np.float32)
    image = cv2.LUT(cv2.merge([levels, levels, levels]), table.reshape(256, 1, 3)).reshape(*levels.shape, 3)
    return _remember(image, levels=levels, table=table)


def photo_image(photo: np.ndarray) -> np.ndarray:
    """``to_float`` of an 8-bit (H, W, 3) photo, read-only, remembered as its 8-bit levels: the
    sensitivity step decodes it by table without recovering the levels from the floats."""
    levels = np.array(photo, dtype=np.uint8, order="C")  # a copy: the caller's array stays writable
    return _remember(to_float(levels), photo_levels=levels)


def gray_plane(image: np.ndarray) -> np.ndarray | None:
    """The (H, W) plane of an (H, W, 3) image whose three channels are equal (a black-and-white
    print), else None. Exact: from what a film op remembered of the image, else checked by
    OpenCV (channel planes and cv2.norm of their difference: no boolean images)."""
    if image.ndim != 3 or image.shape[2] != 3:
        return None
    facts = _facts(image)
    if "gray" in facts:
        return facts["gray"]
    if "levels" in facts:
        table, levels = facts["table"], facts["levels"]
        colored = np.flatnonzero((table[:, 0] != table[:, 1]) | (table[:, 0] != table[:, 2]))
        if colored.size and np.bincount(levels.ravel(), minlength=256)[colored].any():
            return None
        return cv2.LUT(levels, np.ascontiguousarray(table[:, 0]))
    image = _float32(image)
    first = cv2.extractChannel(image, 0)
    for c in (1, 2):
        if cv2.norm(first, cv2.extractChannel(image, c), cv2.NORM_INF) != 0:
            return None
    return first


def three_channels(plane: np.ndarray) -> np.ndarray:
    """(H, W) -> a fresh (H, W, 3) float32 image with the plane in every channel."""
    plane = _float32(plane)
    return cv2.merge([plane, plane, plane]).reshape(*plane.shape, 3)


def per_plane(image: np.ndarray, fn, pointwise: bool = False) -> np.ndarray:
    """fn on the (H, W) plane of a gray image (three equal channels: computed once), else on each
    channel (``pointwise`` fns, which treat every value alone: on the whole image at once, or on
    the 256 colours of a toned print); a fresh (H, W, 3) float32 array clipped to [0, 1]."""
    plane = gray_plane(image)
    if plane is not None:
        return gray_image(clip_unit(_writable(fn(plane))))
    facts = _facts(image)
    if pointwise and "levels" in facts:
        return indexed_image(facts["levels"], clip_unit(_writable(fn(facts["table"]))))
    if pointwise:
        return clip_unit(np.array(fn(_float32(image)), dtype=np.float32))
    return clip_unit(np.ascontiguousarray(np.stack([fn(image[..., c]) for c in range(image.shape[2])], axis=2), dtype=np.float32))


def _density(transmittance: np.ndarray) -> np.ndarray:
    return _log(_at_least(_float32(transmittance), MIN_TRANSMITTANCE)) * np.float32(-1 / math.log(10.0))


def _film_choice(ctx: Context, key: str):
    return (ctx.extra.get("film") or {}).get(key)


def characteristic_curve(log_exposure: np.ndarray, gamma: float, fog: float, d_max: float, toe: float,
                         shoulder: float) -> np.ndarray:
    """Density of a negative (or a paper) at log10 exposure x: fog up to x = -toe, a quadratic
    toe into the straight line D = fog + gamma x (x = 0 is the inertia point), the line itself,
    a quadratic shoulder of half-width ``shoulder`` into d_max. Continuous with a continuous
    slope, non-decreasing; slope exactly ``gamma`` between the toe and the shoulder."""
    x = np.asarray(log_exposure)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    x_top = (d_max - fog) / gamma  # where the straight line reaches d_max
    toe = min(toe, 0.45 * x_top)
    shoulder = min(shoulder, 0.45 * x_top)
    # D = fog + gamma g(x), g a smoothed clip of x to [0, x_top], summed from three clamped
    # pieces (no branch per pixel): the toe's quadratic, the straight part, the shoulder's quadratic
    toe_part = _clamp(x, -toe, toe) + toe
    toe_part *= toe_part
    toe_part *= 1 / (4 * toe)
    straight = _clamp(x, toe, x_top - shoulder) - toe
    shoulder_part = (x_top + shoulder) - _clamp(x, x_top - shoulder, x_top + shoulder)
    shoulder_part *= shoulder_part
    shoulder_part *= -1 / (4 * shoulder)
    shoulder_part += shoulder
    g = toe_part + straight
    g += shoulder_part
    g *= gamma
    g += fog
    return g


# ----------------------------------------------------------------------------- film_sensitivity


@dataclass(frozen=True)
class FilmSensitivityConfig:
    """emulsions: the names drawn from when the task chooses none (empty: all);
    tungsten_prob: how often the scene was lit by tungsten (CIE A) rather than daylight (D65)."""

    emulsions: tuple = ()
    tungsten_prob: float = 0.25

    def __post_init__(self):
        unknown = [e for e in self.emulsions if e not in EMULSIONS]
        if unknown:
            raise ValueError(f"film_sensitivity.emulsions: unknown {unknown}; allowed: {', '.join(EMULSIONS)}")
        check_prob("film_sensitivity", "tungsten_prob", self.tungsten_prob)


@dataclass(frozen=True)
class FilmSensitivityParams:
    emulsion: str
    illuminant: str
    weights: tuple  # (r, g, b) on linear sRGB, derived from the emulsion's curve under the illuminant


def _sample_sensitivity(rng, config: FilmSensitivityConfig, image_shape, ctx: Context) -> FilmSensitivityParams:
    names = list(config.emulsions or EMULSIONS)
    emulsion = _film_choice(ctx, "emulsion") or names[int(rng.integers(len(names)))]
    illuminant = _film_choice(ctx, "illuminant") or ("tungsten" if rng.random() < config.tungsten_prob else "daylight")
    return FilmSensitivityParams(emulsion, illuminant, emulsion_weights(emulsion, illuminant))


# The 256 values ``to_float`` gives 8-bit levels, and their linear light (same formula, tabulated):
# the sensitivity step usually sees a decoded photo, whose values are all such levels.
_LEVELS = np.arange(256, dtype=np.float32).reshape(256, 1) * np.float32(1.0 / 255.0)
_LINEAR_LEVELS = srgb_to_linear(_LEVELS)


def _clip_levels(scaled: np.ndarray) -> np.ndarray:
    """A fresh float32 array clipped to [0, 255] in place (cv2.threshold), safe to cast to uint8."""
    cv2.threshold(_rows(scaled), 255.0, 255.0, cv2.THRESH_TRUNC, dst=_rows(scaled))
    cv2.threshold(_rows(scaled), 0.0, 0.0, cv2.THRESH_TOZERO, dst=_rows(scaled))
    return scaled


def _decode_levels(image: np.ndarray) -> np.ndarray | None:
    """Linear light of an (H, W, 3) image whose every value is one of ``_LEVELS`` (by table, exact),
    else None."""
    facts = _facts(image)
    if "photo_levels" in facts:
        return cv2.LUT(facts["photo_levels"], _LINEAR_LEVELS)
    image = _float32(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size <= 4:
        return None
    probe = image[0, :8].ravel()  # a resized or graded image fails here, cheaply
    if not np.array_equal(_LEVELS[np.clip(probe * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8), 0], probe):
        return None
    scaled = image * np.float32(255.0)
    scaled += np.float32(0.5)
    levels = _clip_levels(scaled).astype(np.uint8)  # values off [0, 1] become 0 or 255 and fail the check below
    if cv2.norm(cv2.LUT(levels, _LEVELS), image, cv2.NORM_INF) != 0:
        return None
    return cv2.LUT(levels, _LINEAR_LEVELS)


def _apply_sensitivity(image, params: FilmSensitivityParams):
    if params.illuminant not in ILLUMINANTS:
        raise ValueError(f"film_sensitivity.illuminant: expected one of {ILLUMINANTS}, got {params.illuminant!r}")
    linear = _decode_levels(image)
    if linear is None:
        linear = srgb_to_linear(image)
    exposure = cv2.transform(linear, np.asarray(params.weights, dtype=np.float32).reshape(1, 3)).reshape(linear.shape[:2])
    return gray_image(linear_to_srgb(exposure))


register("film_sensitivity", "B&W emulsion: linear light weighted by the emulsion's spectral weights (gray latent image)",
         FilmSensitivityConfig, FilmSensitivityParams, _sample_sensitivity, _apply_sensitivity)


# ----------------------------------------------------------------------------- lens_softness


@dataclass(frozen=True)
class LensSoftnessConfig:
    sigma_range: tuple = (0.3, 1.5)  # pixels

    def __post_init__(self):
        check_range("lens_softness", "sigma_range", self.sigma_range, low=0.0)


@dataclass(frozen=True)
class LensSoftnessParams:
    sigma: float


def _sample_softness(rng, config, image_shape, ctx):
    return LensSoftnessParams(uniform(rng, config.sigma_range))


def _apply_softness(image, params: LensSoftnessParams):
    def soften(plane):
        if params.sigma <= 0:
            return plane.copy()
        return linear_to_srgb(cv2.GaussianBlur(srgb_to_linear(plane), (0, 0), params.sigma, borderType=cv2.BORDER_REFLECT_101))
    return per_plane(image, soften)


register("lens_softness", "soft old lens: Gaussian blur of linear light", LensSoftnessConfig, LensSoftnessParams,
         _sample_softness, _apply_softness)


# ----------------------------------------------------------------------------- vignetting


@dataclass(frozen=True)
class VignettingConfig:
    corner_stops_range: tuple = (0.2, 1.5)  # exposure lost in the corners, stops
    centre_shift_range: tuple = (-0.1, 0.1)  # optical centre offset, fraction of width / height

    def __post_init__(self):
        check_range("vignetting", "corner_stops_range", self.corner_stops_range, low=0.0)
        check_range("vignetting", "centre_shift_range", self.centre_shift_range)


@dataclass(frozen=True)
class VignettingParams:
    corner_stops: float
    centre_x: float  # fraction of the width (0.5 = centre), x right
    centre_y: float  # fraction of the height, y down


def _sample_vignetting(rng, config, image_shape, ctx):
    return VignettingParams(uniform(rng, config.corner_stops_range), 0.5 + uniform(rng, config.centre_shift_range),
                            0.5 + uniform(rng, config.centre_shift_range))


def vignetting_falloff(height: int, width: int, params: VignettingParams) -> np.ndarray:
    """(H, W) exposure factor: (1 + k r^2)^-2 (the cos^4 law's shape), r = distance from the
    optical centre over the half-diagonal; k makes r = 1 lose ``corner_stops``."""
    k = 2.0 ** (params.corner_stops / 2.0) - 1.0
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height - params.centre_y) * height
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width - params.centre_x) * width
    scale = np.float32(k / (0.25 * (width**2 + height**2)))
    lift = (x * x * scale)[None, :] + (y * y * scale + np.float32(1.0))[:, None]  # 1 + k r^2
    return np.float32(1.0) / (lift * lift)


def _apply_vignetting(image, params: VignettingParams):
    falloff = vignetting_falloff(image.shape[0], image.shape[1], params).astype(np.float32)
    return per_plane(image, lambda plane: linear_to_srgb(srgb_to_linear(plane) * falloff))


register("vignetting", "lens vignetting: exposure falls off towards the corners (linear light)", VignettingConfig,
         VignettingParams, _sample_vignetting, _apply_vignetting)


# ----------------------------------------------------------------------------- film_negative


@dataclass(frozen=True)
class FilmNegativeConfig:
    """Defaults: development from Kodak Tri-X 400's datasheet curves (gamma 0.59-0.92 over 6-11
    min, fog 0.31-0.38, computed from the digitized curves), widened for older emulsions."""

    exposure_stops_range: tuple = (-1.5, 1.5)  # error of the camera exposure, stops
    gamma_range: tuple = (0.55, 0.95)
    fog_range: tuple = (0.1, 0.4)
    d_max_range: tuple = (2.2, 3.0)
    toe_range: tuple = (0.2, 0.5)  # half-width of the toe, log10 exposure
    shoulder_range: tuple = (0.2, 0.6)

    def __post_init__(self):
        for name in ("exposure_stops_range", "gamma_range", "fog_range", "d_max_range", "toe_range", "shoulder_range"):
            check_range("film_negative", name, getattr(self, name), low=None if name == "exposure_stops_range" else 0.0)
        if self.gamma_range[0] <= 0 or self.toe_range[0] <= 0 or self.shoulder_range[0] <= 0:
            raise ValueError("film_negative: gamma, toe and shoulder must be > 0")


@dataclass(frozen=True)
class FilmNegativeParams:
    exposure_stops: float
    gamma: float
    fog: float
    d_max: float
    toe: float
    shoulder: float


def _sample_negative(rng, config, image_shape, ctx):
    return FilmNegativeParams(*(uniform(rng, getattr(config, n)) for n in
                                ("exposure_stops_range", "gamma_range", "fog_range", "d_max_range", "toe_range", "shoulder_range")))


def negative_log_exposure(linear: np.ndarray, exposure_stops: float) -> np.ndarray:
    """log10 exposure relative to the inertia point: a normally exposed middle gray (linear 0.18)
    sits 1.0 above it (about ISO's speed point + 10x), so scene black falls into the toe."""
    offset = np.float32(1.0 + exposure_stops * LOG2 - math.log10(MIDDLE_GRAY))
    log_exposure = _log(_at_least(_float32(linear), 1e-5))
    log_exposure *= np.float32(1 / math.log(10.0))
    log_exposure += offset
    return log_exposure


def _apply_negative(image, params: FilmNegativeParams):
    def develop(plane):
        d = characteristic_curve(negative_log_exposure(srgb_to_linear(plane), params.exposure_stops), params.gamma,
                                 params.fog, params.d_max, params.toe, params.shoulder)
        return power_of_ten(-d)
    return per_plane(image, develop, pointwise=True)


register("film_negative", "develop: latent image -> negative transmittance through the H&D curve (fog, toe, gamma, shoulder)",
         FilmNegativeConfig, FilmNegativeParams, _sample_negative, _apply_negative)


# ----------------------------------------------------------------------------- uneven_development


@dataclass(frozen=True)
class UnevenDevelopmentConfig:
    amplitude_range: tuple = (0.03, 0.15)  # relative density variation
    cells_range: tuple = (2, 6)  # low-frequency grid cells across the image

    def __post_init__(self):
        check_range("uneven_development", "amplitude_range", self.amplitude_range, low=0.0)
        check_range("uneven_development", "cells_range", self.cells_range, low=1)


@dataclass(frozen=True)
class UnevenDevelopmentParams:
    amplitude: float
    cells: int
    seed: int


def _sample_uneven(rng, config, image_shape, ctx):
    return UnevenDevelopmentParams(uniform(rng, config.amplitude_range),
                                   int(rng.integers(int(config.cells_range[0]), int(config.cells_range[1]) + 1)), draw_seed(rng))


def _apply_uneven(image, params: UnevenDevelopmentParams):
    h, w = image.shape[:2]
    coarse = np.random.default_rng(params.seed).standard_normal((params.cells + 1, params.cells + 1)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w)
    factor = 1.0 + params.amplitude * np.clip(field, -2.5, 2.5)
    return per_plane(image, lambda plane: power_of_ten(-_density(plane) * factor))


register("uneven_development", "uneven development: smooth random density variation on the negative",
         UnevenDevelopmentConfig, UnevenDevelopmentParams, _sample_uneven, _apply_uneven)


# ----------------------------------------------------------------------------- film_grain

# Selwyn's law ties RMS granularity to grain size: a Boolean layer of opaque cells of area a,
# covering a fraction c, seen through an aperture of area A has transmittance variance
# c (1 - c) a / A. The datasheet figure is sigma_D x 1000 at D = 1 (c = 0.9) in a 48 um aperture;
# sigma_T = T ln10 sigma_D, so a = (0.1 ln10 sigma_D)^2 A / 0.09.
_APERTURE_UM2 = math.pi * 24.0**2


def grain_cell_um(rms_granularity: float) -> float:
    """Side (um) of the opaque grain cells that give RMS granularity ``rms_granularity``."""
    sigma_t = 0.1 * math.log(10.0) * rms_granularity / 1000.0
    return math.sqrt(sigma_t**2 * _APERTURE_UM2 / 0.09)


@dataclass(frozen=True)
class FilmGrainConfig:
    """pixel_um_range: how much negative one pixel spans (log-uniform): 5 um is a fine scan of a
    small negative, 40 um a whole frame at a few hundred pixels. rms_range: the granularity drawn
    when no emulsion is chosen (Pan F 5 to Tri-X 17). aperture_sigma_range: the enlarger / scan
    blur over the grain, pixels (Newson et al. 2017 filter the Boolean layer the same way)."""

    pixel_um_range: tuple = (5.0, 40.0)
    rms_range: tuple = (5.0, 17.0)
    aperture_sigma_range: tuple = (0.3, 0.7)

    def __post_init__(self):
        check_range("film_grain", "pixel_um_range", self.pixel_um_range, low=0.1)
        check_range("film_grain", "rms_range", self.rms_range, low=0.1)
        check_range("film_grain", "aperture_sigma_range", self.aperture_sigma_range, low=0.0)


@dataclass(frozen=True)
class FilmGrainParams:
    rms_granularity: float
    pixel_um: float
    aperture_sigma: float  # pixels
    seed: int


def _sample_grain(rng, config, image_shape, ctx):
    emulsion = _film_choice(ctx, "emulsion")
    rms = float(EMULSIONS[emulsion].rms_granularity) if emulsion else uniform(rng, config.rms_range)
    lo, hi = config.pixel_um_range
    pixel_um = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return FilmGrainParams(rms, pixel_um, uniform(rng, config.aperture_sigma_range), draw_seed(rng))


# Above this many cells per pixel the binomial count is drawn by its normal limit (same mean and
# variance; the skew left out is below 1/sqrt(64 c (1 - c)) of a standard deviation).
BINOMIAL_CELLS = 64


def grain_cells_per_pixel(params: FilmGrainParams) -> float:
    return (params.pixel_um / grain_cell_um(params.rms_granularity)) ** 2


def _apply_grain(image, params: FilmGrainParams):
    rng = np.random.default_rng(params.seed)
    cells = grain_cells_per_pixel(params)

    def grain(plane):
        coverage = clip_unit(np.float32(1.0) - _float32(plane))  # developed silver fraction
        h, w = plane.shape
        if cells >= BINOMIAL_CELLS:  # many cells per pixel: the binomial count, by its normal limit
            spread = np.sqrt(coverage * (1.0 - coverage) * np.float32(1.0 / round(cells)))
            developed = coverage + spread * standard_normal_field(rng, (h, w))
        elif cells >= 1.0:  # a few cells per pixel: their count is binomial
            n = int(round(cells))
            developed = rng.binomial(n, coverage.astype(np.float64)) / n
        else:  # cells larger than a pixel: a Bernoulli lattice, each cell several pixels
            step = 1.0 / math.sqrt(cells)
            gh, gw = max(1, int(math.ceil(h / step))), max(1, int(math.ceil(w / step)))
            lattice_coverage = cv2.resize(coverage, (gw, gh), interpolation=cv2.INTER_AREA).reshape(gh, gw)
            lattice = (rng.random((gh, gw)) < lattice_coverage).astype(np.float32)
            developed = cv2.resize(lattice, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w)
        developed = np.ascontiguousarray(developed, dtype=np.float32)
        if params.aperture_sigma > 0:
            developed = cv2.GaussianBlur(developed, (0, 0), params.aperture_sigma, borderType=cv2.BORDER_REFLECT_101)
        return _at_least(np.float32(1.0) - developed, MIN_TRANSMITTANCE)
    return per_plane(image, grain)


register("film_grain", "silver grain on the negative: a Boolean layer of grain cells sized by the film's RMS granularity",
         FilmGrainConfig, FilmGrainParams, _sample_grain, _apply_grain)


# ----------------------------------------------------------------------------- paper_print

# ISO 6846 log-exposure ranges of grades 0-5 (midpoints of 140-170, 120-140, 100-120, 80-100,
# 65-80, 50-65, in log10 units).
PAPER_GRADE_RANGES = (1.55, 1.30, 1.10, 0.90, 0.72, 0.57)
PAPER_BASE_DENSITY = 0.05


@dataclass(frozen=True)
class PaperPrintConfig:
    grade_probs: tuple = (0.05, 0.15, 0.3, 0.3, 0.15, 0.05)  # grades 0..5
    exposure_stops_range: tuple = (-0.5, 0.5)  # printing exposure error, stops
    d_max_range: tuple = (1.6, 2.1)  # matte to glossy paper

    def __post_init__(self):
        check_probs("paper_print", "grade_probs", self.grade_probs, len(PAPER_GRADE_RANGES))
        check_range("paper_print", "exposure_stops_range", self.exposure_stops_range)
        check_range("paper_print", "d_max_range", self.d_max_range, low=0.5)


@dataclass(frozen=True)
class PaperPrintParams:
    grade: int
    exposure_stops: float
    d_max: float


def _sample_print(rng, config, image_shape, ctx):
    u, total, grade = rng.random(), 0.0, len(config.grade_probs) - 1
    for g, p in enumerate(config.grade_probs):
        total += p
        if u < total:
            grade = g
            break
    return PaperPrintParams(grade, uniform(rng, config.exposure_stops_range), uniform(rng, config.d_max_range))


def low_percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (its default, linear interpolation; the same value) by one
    np.partition, without np.percentile's ~40 us of overhead."""
    flat = np.ravel(values)
    position = q / 100 * (flat.size - 1)
    below = int(math.floor(position))
    above = min(below + 1, flat.size - 1)
    fraction = position - below
    part = np.partition(flat, (below, above))
    low, high = part[below], part[above]
    step = high - low
    return float(low + step * fraction) if fraction < 0.5 else float(high - step * (1 - fraction))


def print_density(negative_transmittance: np.ndarray, params: PaperPrintParams) -> np.ndarray:
    """Paper density for a negative. The printer exposes for the highlights: the densest part of
    the negative (its 99.5th percentile of density, the scene's brightest) prints just at paper
    white; the grade's log-exposure range then spans the paper from white to 90 % of d_max."""
    t = _at_least(_float32(negative_transmittance), MIN_TRANSMITTANCE)
    densest = low_percentile(t[:: max(1, t.shape[0] // 64), :: max(1, t.shape[1] // 64)], 0.5)
    log_exposure = -_density(t) + np.float32(params.exposure_stops * LOG2 - math.log10(densest))
    span = PAPER_GRADE_RANGES[params.grade]
    gamma = 0.9 * (params.d_max - PAPER_BASE_DENSITY) / span
    return characteristic_curve(log_exposure, gamma, PAPER_BASE_DENSITY, params.d_max, 0.15 * span, 0.15 * span)


def _apply_print(image, params: PaperPrintParams):
    if not 0 <= params.grade < len(PAPER_GRADE_RANGES):
        raise ValueError(f"paper_print.grade: expected 0..{len(PAPER_GRADE_RANGES) - 1}, got {params.grade}")
    return per_plane(image, lambda plane: linear_to_srgb(power_of_ten(-print_density(plane, params))))


register("paper_print", "enlarge the negative onto paper of a contrast grade (exposed for the highlights)",
         PaperPrintConfig, PaperPrintParams, _sample_print, _apply_print)


# ----------------------------------------------------------------------------- toning

@dataclass(frozen=True)
class Toner:
    """hue: CIELAB hue angle, degrees; chroma: the largest C*ab it reaches; where: which tones
    take the colour (lightness L* in [0, 1] -> weight), as the chemistry converts silver."""

    hue: float
    chroma: float
    where: str


# Empirical tints (little is published; cyanotype near hue 259 deg, sepia a warm brown).
TONERS = {
    "none": Toner(0.0, 0.0, "all"),
    "sepia": Toner(70.0, 24.0, "mid_high"),  # bleach and sulphide: warm brown, strongest in mid-tones
    "selenium": Toner(20.0, 8.0, "low"),  # purple-brown in the shadows, highlights stay neutral
    "gold": Toner(265.0, 7.0, "low"),  # blue-black
    "cyanotype": Toner(259.0, 38.0, "all"),  # Prussian blue, not silver: the whole scale is blue
    "red_brown": Toner(40.0, 30.0, "mid_high"),  # copper toner
}
_WHERE = {
    "all": lambda l: np.sin(np.pi * l) ** 0.5,
    "mid_high": lambda l: np.sin(np.pi * l) * (0.4 + 0.6 * l),
    "low": lambda l: np.sin(np.pi * l) * (1.0 - l),
}


@dataclass(frozen=True)
class ToningConfig:
    toners: tuple = ("sepia", "selenium", "gold", "cyanotype", "red_brown")  # drawn when the task chose none
    strength_range: tuple = (0.5, 1.0)
    hue_jitter: float = 6.0  # degrees

    def __post_init__(self):
        unknown = [t for t in self.toners if t not in TONERS]
        if not self.toners or unknown:
            raise ValueError(f"toning.toners: expected names from {', '.join(TONERS)}, got {self.toners}")
        check_range("toning", "strength_range", self.strength_range, low=0.0)


@dataclass(frozen=True)
class ToningParams:
    toner: str
    strength: float
    hue: float  # CIELAB hue angle of the toned print, degrees


def _sample_toning(rng, config: ToningConfig, image_shape, ctx):
    toner = _film_choice(ctx, "toner") or config.toners[int(rng.integers(len(config.toners)))]
    jitter = uniform(rng, (-config.hue_jitter, config.hue_jitter))
    strength = uniform(rng, config.strength_range)
    if toner == "none":
        return ToningParams("none", 0.0, 0.0)
    return ToningParams(toner, strength, (TONERS[toner].hue + jitter) % 360.0)


_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_LINEAR_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                                [0.0556434, -0.2040259, 1.0572252]])


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> linear sRGB, float64, exact formulas (not clipped)."""
    fy = (lab[:, 0] + 16.0) / 116.0
    f = np.stack([fy + lab[:, 1] / 500.0, fy, fy - lab[:, 2] / 200.0], axis=1)
    xyz = _lab_f_inverse(f) * _D65_WHITE
    return xyz @ _XYZ_TO_LINEAR_SRGB.T


def _lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> sRGB, float64, exact formulas (not clipped)."""
    linear = _lab_to_linear(lab)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055)


# The toned colours stay within sRGB values [0.002, 0.998], tested on linear light (the same set:
# the encoding is monotone)
_GAMUT_LINEAR = (0.002 / 12.92, ((0.998 + 0.055) / 1.055) ** 2.4)


@functools.lru_cache(maxsize=1)
def _gray_lightness() -> np.ndarray:
    """CIELAB L* of the 256 8-bit gray levels (exact sRGB decoding, float64)."""
    v = np.linspace(0.0, 1.0, 256)
    y = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return np.where(y > (6 / 29) ** 3, 116.0 * np.cbrt(y) - 16.0, y * (29 / 3) ** 3)


# CIELAB -> linear sRGB along one hue, split by what varies: per level, f_y (and so Y) is fixed
# and f_x, f_z move linearly with the chroma; the linear RGB is X, Y, Z times these columns.
_LINEAR_FROM_XYZ_COLUMNS = (_XYZ_TO_LINEAR_SRGB * _D65_WHITE).T  # rows: the RGB of X/Xn = 1, Y = 1, Z/Zn = 1


def _lab_f_inverse(f: np.ndarray) -> np.ndarray:
    """CIELAB's f^-1: t^3 above 6/29, its linear extension below."""
    return np.where(f > 6 / 29, f * f * f, 3 * (6 / 29) ** 2 * (f - 4 / 29))


@functools.lru_cache(maxsize=64)
def toning_lut(toner: str, strength: float, hue: float) -> np.ndarray:
    """(256, 3) float32: the toned sRGB colour of each 8-bit gray level. Lightness is
    kept, the chroma follows the toner's profile and is cut to what sRGB holds at that L* and
    hue (bisection, on the levels whose wanted chroma is outside), so nothing clips and every
    level has the one hue."""
    lightness = _gray_lightness()
    spec = TONERS[toner]
    wanted = strength * spec.chroma * _WHERE[spec.where](lightness / 100.0)
    cos_h, sin_h = math.cos(math.radians(hue)), math.sin(math.radians(hue))
    fy = (lightness + 16.0) / 116.0
    x_col, y_col, z_col = _LINEAR_FROM_XYZ_COLUMNS
    gray_part = _lab_f_inverse(fy)[:, None] * y_col  # the Y term: the same for every chroma

    def in_gamut(chroma, fy, gray_part, f_inverse=_lab_f_inverse):
        linear = (f_inverse(fy + chroma * (cos_h / 500.0))[:, None] * x_col + gray_part
                  + f_inverse(fy - chroma * (sin_h / 200.0))[:, None] * z_col)
        return ((linear >= _GAMUT_LINEAR[0]) & (linear <= _GAMUT_LINEAR[1])).all(axis=1)
    chroma = wanted.copy()
    outside = np.flatnonzero(~(in_gamut(wanted, fy, gray_part) | (wanted == 0)))
    fy, gray_part = fy[outside], gray_part[outside]
    lo, hi = np.zeros(outside.size), wanted[outside]
    # f_x and f_z move linearly with the chroma: above 6/29 at both ends, f^-1 is the cube throughout
    ends = np.concatenate([fy, fy + hi * (cos_h / 500.0), fy - hi * (sin_h / 200.0)])
    f_inverse = (lambda f: f * f * f) if ends.size and ends.min() > 6 / 29 else _lab_f_inverse
    for _ in range(10 if outside.size else 0):  # mid > 0 here: every level outside wants some chroma
        mid = 0.5 * (lo + hi)
        inside = in_gamut(mid, fy, gray_part, f_inverse)
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    chroma[outside] = lo
    rgb = _lab_to_srgb(np.stack([lightness, chroma * cos_h, chroma * sin_h], axis=1))
    rgb[0], rgb[-1] = 0.0, 1.0  # black stays black, paper white stays white
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def _apply_toning(image, params: ToningParams):
    if params.toner not in TONERS:
        raise ValueError(f"toning.toner: expected one of {', '.join(TONERS)}, got {params.toner!r}")
    if params.toner == "none" or params.strength <= 0:
        return _remember(image.copy(), **_facts(image))
    luminance = gray_plane(image)
    if luminance is None:
        luminance = linear_to_srgb(srgb_to_linear(image) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32))
    index = np.rint(np.minimum(np.maximum(luminance, np.float32(0.0)), np.float32(1.0)) * np.float32(255)).astype(np.uint8)
    lut = toning_lut(params.toner, params.strength, params.hue)
    return indexed_image(index, lut)


register("toning", "toner: each gray level -> one colour of the toner's hue (a gradient, never clipping)", ToningConfig,
         ToningParams, _sample_toning, _apply_toning)


# ----------------------------------------------------------------------------- fading


@dataclass(frozen=True)
class FadingConfig:
    amount_range: tuple = (0.05, 0.5)  # fraction of the print's density lost

    def __post_init__(self):
        check_range("fading", "amount_range", self.amount_range, low=0.0)
        if self.amount_range[1] >= 1.0:
            raise ValueError("fading.amount_range: must stay below 1 (1 = a blank sheet)")


@dataclass(frozen=True)
class FadingParams:
    amount: float


def _sample_fading(rng, config, image_shape, ctx):
    return FadingParams(uniform(rng, config.amount_range))


def _apply_fading(image, params: FadingParams):
    """Silver lost from the print: every density shrinks by the same factor, so blacks lift to
    10^-(1 - amount) D_max and contrast drops; per channel, which keeps a toned print's hue."""
    keep = np.float32(-(1.0 - params.amount))
    return per_plane(image, lambda plane: linear_to_srgb(power_of_ten(_density(srgb_to_linear(plane)) * keep)), pointwise=True)


register("fading", "faded print: densities shrink (blacks lift, contrast drops)", FadingConfig, FadingParams,
         _sample_fading, _apply_fading)


# ----------------------------------------------------------------------------- base_yellowing

# Aged paper base reflects less blue, then less green (an empirical yellow-brown; hue ~80 deg).
_YELLOWING_LOSS = np.array([0.0, 0.35, 1.0], dtype=np.float32)


@dataclass(frozen=True)
class BaseYellowingConfig:
    strength_range: tuple = (0.03, 0.3)  # blue reflectance lost by the base

    def __post_init__(self):
        check_range("base_yellowing", "strength_range", self.strength_range, low=0.0)
        if self.strength_range[1] > 0.9:
            raise ValueError("base_yellowing.strength_range: at most 0.9")


@dataclass(frozen=True)
class BaseYellowingParams:
    strength: float


def _sample_yellowing(rng, config, image_shape, ctx):
    return BaseYellowingParams(uniform(rng, config.strength_range))


def _apply_yellowing(image, params: BaseYellowingParams):
    base = 1.0 - np.float32(params.strength) * _YELLOWING_LOSS
    facts = _facts(image)
    if "levels" in facts:  # a toned print: its 256 colours
        return indexed_image(facts["levels"], clip_unit(linear_to_srgb(srgb_to_linear(facts["table"]) * base)))
    plane = gray_plane(image)  # an untoned print: one decoding, then the base's three colours
    linear = srgb_to_linear(image) if plane is None else three_channels(srgb_to_linear(plane))
    linear *= base
    return clip_unit(linear_to_srgb(linear))


register("base_yellowing", "yellowed paper base: linear reflectance times a yellow-brown base colour",
         BaseYellowingConfig, BaseYellowingParams, _sample_yellowing, _apply_yellowing)
