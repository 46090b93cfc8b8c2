"""Noise: additive Gaussian (color / gray / channel-correlated), signal-dependent "Poisson"
noise and multiplicative speckle.

Noise fields are drawn in ``apply`` from ``np.random.default_rng(params.seed)``, so replay is
bit-exact. Standard normal fields come from ``standard_normal_field``: a 65536-entry quantile
table of N(0, 1) indexed by 16 random bits per value (four per raw 64-bit output of the
generator). It is 5x faster than ``Generator.standard_normal`` (1.3 vs 7.1 ms per 512x512x3
float32 on one core); the
distribution is N(0, 1) quantized to 65536 equiprobable values (largest CDF error 1/131072,
tails cut at |z| = 4.32, variance rescaled to exactly 1), invisible after 8-bit quantization.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from pairgen.ops.base import Context, register
from pairgen.ops.util import check_prob, check_range, clip_unit, uniform

_SEED_BOUND = 2**53  # seeds stay exact in any JSON reader (IEEE doubles)
# torchvision's rgb_to_grayscale weights, as used by Real-ESRGAN's gray Poisson noise
_GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)


def draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _SEED_BOUND))


@functools.lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    # NormalDist.inv_cdf (Wichura's AS241, C in CPython 3.11: ~14 ms for the table, where
    # importing scipy.special would add ~0.1 s to every process start); agrees with ndtri to 2e-15
    inverse_cdf = NormalDist().inv_cdf
    table = np.array([inverse_cdf((i + 0.5) / 65536.0) for i in range(65536)], dtype=np.float64)
    table /= math.sqrt(np.mean(table**2))  # mean is 0 by symmetry; make the variance exactly 1
    table = table.astype(np.float32)
    table.flags.writeable = False
    return table


def standard_normal_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """float32 array of ~N(0, scale^2) values (see the module docstring), C-contiguous.

    Scaling the 65536-entry table instead of the field saves a pass over the image."""
    n = int(np.prod(shape))
    # 16 uniform bits per value, four from each raw 64-bit output (~1.3x faster than integers())
    index = rng.bit_generator.random_raw((n + 3) // 4).view(np.uint16)[:n]
    table = _normal_quantiles()
    if scale != 1.0:
        table = table * np.float32(scale)
    return table.take(index).reshape(shape)


# ----------------------------------------------------------------------------- gaussian_noise


@dataclass(frozen=True)
class GaussianNoiseConfig:
    """Sampling settings of ``gaussian_noise`` (defaults: Real-ESRGAN stage 1; stage 2 uses
    sigma_range [1, 25]; BSRGAN uses sigma_range [2, 25], gray_prob .4, correlated_prob .2).

    sigma_range: noise standard deviation in 8-bit levels (sigma / 255 in image units).
    integer_levels: draw the level as an integer, uniform over sigma_range with both ends
        included (BSRGAN: ``random.randint(2, 25)``); else continuous U[sigma_range].
    gray_prob: probability of one noise field shared by all channels (luminance-like noise).
    correlated_prob: probability of BSRGAN's channel-correlated noise (random 3x3 covariance).
    correlated_level: 8-bit level L of the correlated mode's covariance L^2 |U^T D U|; None
        uses the drawn level (BSRGAN always uses its upper level, 25, whatever was drawn).
    The remaining probability gives independent noise per channel ("color").
    """

    sigma_range: tuple[float, float] = (1.0, 30.0)
    integer_levels: bool = False
    gray_prob: float = 0.4
    correlated_prob: float = 0.0
    correlated_level: float | None = None

    def __post_init__(self):
        check_range("gaussian_noise", "sigma_range", self.sigma_range, low=0.0)
        check_prob("gaussian_noise", "gray_prob", self.gray_prob)
        check_prob("gaussian_noise", "correlated_prob", self.correlated_prob)
        if self.integer_levels and any(int(v) != v for v in self.sigma_range):
            raise ValueError(f"gaussian_noise.sigma_range: integer_levels needs integer ends, got {self.sigma_range}")
        if self.correlated_level is not None and not self.correlated_level >= 0:
            raise ValueError(f"gaussian_noise.correlated_level: expected >= 0 (8-bit levels), got {self.correlated_level}")
        if self.gray_prob + self.correlated_prob > 1.0 + 1e-9:
            raise ValueError(
                f"gaussian_noise: gray_prob + correlated_prob must be <= 1, got {self.gray_prob} + {self.correlated_prob}"
            )


@dataclass(frozen=True)
class GaussianNoiseParams:
    """sigma: standard deviation in image units ([0, 1] scale; in correlated mode the level L of
    the covariance); mode: color | gray | correlated; covariance: correlated mode's 3x3 channel
    covariance, row-major, image units squared, PSD, entries at most sigma^2, else empty;
    seed: of the noise field."""

    sigma: float
    mode: str
    covariance: tuple[float, ...]
    seed: int


def _random_covariance(rng: np.random.Generator, level: float) -> np.ndarray:
    """BSRGAN's channel covariance: level^2 |U^T D U|, U = orthonormal basis of a U[0, 1]^(3x3)
    matrix (scipy's ``orth``, i.e. the left singular vectors), D = diag(U[0, 1]^3), and |.|
    elementwise, which makes every channel pair positively correlated. Should that matrix not be
    positive semi-definite (none was in 20,000 draws), numpy's SVD-based ``multivariate_normal``
    samples from the one with the same eigenvectors and absolute eigenvalues; so do we."""
    eigenvalues = rng.random(3)
    u, _, _ = np.linalg.svd(rng.random((3, 3)))
    c = np.abs(level * level * (u.T @ np.diag(eigenvalues) @ u))
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    return (v * np.abs(w)) @ v.T


def sample_gaussian_noise(
    rng: np.random.Generator, config: GaussianNoiseConfig, image_shape, ctx: Context
) -> GaussianNoiseParams:
    if config.integer_levels:
        sigma = int(rng.integers(int(config.sigma_range[0]), int(config.sigma_range[1]) + 1)) / 255.0
    else:
        sigma = uniform(rng, config.sigma_range) / 255.0
    u = rng.random()
    covariance: tuple[float, ...] = ()
    if u < config.correlated_prob:
        mode = "correlated"
        if config.correlated_level is not None:
            sigma = float(config.correlated_level) / 255.0
        covariance = tuple(float(v) for v in _random_covariance(rng, sigma).ravel())
    elif u < config.correlated_prob + config.gray_prob:
        mode = "gray"
    else:
        mode = "color"
    return GaussianNoiseParams(sigma=sigma, mode=mode, covariance=covariance, seed=draw_seed(rng))


def _covariance_factor(covariance: tuple[float, ...]) -> np.ndarray:
    """A with A A^T = covariance (symmetric square root; works for singular matrices too)."""
    c = np.asarray(covariance, dtype=np.float64).reshape(3, 3)
    w, v = np.linalg.eigh(0.5 * (c + c.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def apply_gaussian_noise(image: np.ndarray, params: GaussianNoiseParams) -> np.ndarray:
    h, w, c = image.shape
    rng = np.random.default_rng(params.seed)
    if params.mode == "color":
        noise = standard_normal_field(rng, (h, w, c), params.sigma)
        noise += image  # in place: fresh pages are costly (see kernels._fft_filter)
        return clip_unit(noise)
    if params.mode == "gray":
        noise = standard_normal_field(rng, (h, w, 1), params.sigma)
    elif params.mode == "correlated":
        if c != 3 or len(params.covariance) != 9:
            raise ValueError("gaussian_noise: correlated mode needs a 3-channel image and a 9-value covariance")
        z = standard_normal_field(rng, (h * w, 3))
        noise = (z @ _covariance_factor(params.covariance).astype(np.float32).T).reshape(h, w, 3)
    else:
        raise ValueError(f"gaussian_noise.mode: expected color | gray | correlated, got {params.mode!r}")
    return clip_unit(image + noise)


register(
    "gaussian_noise",
    "additive Gaussian noise: per channel, gray (shared by channels) or channel-correlated",
    GaussianNoiseConfig,
    GaussianNoiseParams,
    sample_gaussian_noise,
    apply_gaussian_noise,
)


# ------------------------------------------------------------------------------ poisson_noise


@dataclass(frozen=True)
class PoissonNoiseConfig:
    """Sampling settings of ``poisson_noise`` (defaults: Real-ESRGAN stage 1; stage 2 uses
    scale_range [0.05, 2.5]).

    scale_range: multiplier of the shot noise (1 = photon counts as below).
    gray_prob: probability of computing the noise on the luminance and sharing it.
    """

    scale_range: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4

    def __post_init__(self):
        check_range("poisson_noise", "scale_range", self.scale_range, low=0.0)
        check_prob("poisson_noise", "gray_prob", self.gray_prob)


@dataclass(frozen=True)
class PoissonNoiseParams:
    """scale: noise multiplier; gray: one luminance noise field for all channels; seed."""

    scale: float
    gray: bool
    seed: int


def sample_poisson_noise(
    rng: np.random.Generator, config: PoissonNoiseConfig, image_shape, ctx: Context
) -> PoissonNoiseParams:
    scale = uniform(rng, config.scale_range)
    gray = bool(rng.random() < config.gray_prob)
    return PoissonNoiseParams(scale=scale, gray=gray, seed=draw_seed(rng))


def apply_poisson_noise(image: np.ndarray, params: PoissonNoiseParams) -> np.ndarray:
    """Real-ESRGAN's Poisson noise with a Gaussian approximation of the counts.

    As in Real-ESRGAN, the (gray or color) image is rounded to 8 bits, q, and the number of
    photon counts at full scale is vals = 2^ceil(log2(number of distinct 8-bit values)) (256
    for most photos); noise = scale * (Poisson(q vals) / vals - q). We draw
    Poisson(q vals) ~ N(q vals, q vals) instead: same mean and variance (noise variance
    scale^2 q / vals, zero at black), but continuous and symmetric, which matters only where
    q vals is small (darkest ~5 % of levels). Exact ``Generator.poisson`` costs ~35 ms per
    512x512x3 image on one core, this ~3 ms.
    """
    h, w, _ = image.shape
    src = image @ _GRAY_WEIGHTS if params.gray else image
    levels = cv2.convertScaleAbs(src, alpha=255.0)  # round(255 x), saturated; x >= 0 here
    flat = levels.reshape(h, -1)
    distinct = int(np.count_nonzero(cv2.calcHist([flat], [0], None, [256], [0, 256])))
    vals = 2.0 ** math.ceil(math.log2(max(distinct, 1)))
    # per-level noise std, looked up by the 8-bit level
    std_lut = (np.float32(params.scale) * np.sqrt(np.arange(256, dtype=np.float32) / np.float32(255.0 * vals)))
    std = cv2.LUT(flat, std_lut.astype(np.float32)).reshape(levels.shape)
    rng = np.random.default_rng(params.seed)
    noise = standard_normal_field(rng, std.shape)
    noise *= std
    if params.gray:
        return clip_unit(image + noise[:, :, None])
    noise += image
    return clip_unit(noise)


register(
    "poisson_noise",
    "signal-dependent shot noise (Real-ESRGAN Poisson model, Gaussian approximation)",
    PoissonNoiseConfig,
    PoissonNoiseParams,
    sample_poisson_noise,
    apply_poisson_noise,
)


# ------------------------------------------------------------------------------ speckle_noise


@dataclass(frozen=True)
class SpeckleNoiseConfig:
    """Sampling settings of ``speckle_noise`` (defaults: "Bringing Old Photos Back to Life").

    sigma_range: std of the multiplicative noise n, in 8-bit levels / 255 (out = x (1 + n)).
    """

    sigma_range: tuple[float, float] = (5.0, 50.0)

    def __post_init__(self):
        check_range("speckle_noise", "sigma_range", self.sigma_range, low=0.0)


@dataclass(frozen=True)
class SpeckleNoiseParams:
    """sigma: std of n in out = image * (1 + n), image units; seed: of the noise field."""

    sigma: float
    seed: int


def sample_speckle_noise(
    rng: np.random.Generator, config: SpeckleNoiseConfig, image_shape, ctx: Context
) -> SpeckleNoiseParams:
    return SpeckleNoiseParams(sigma=uniform(rng, config.sigma_range) / 255.0, seed=draw_seed(rng))


def apply_speckle_noise(image: np.ndarray, params: SpeckleNoiseParams) -> np.ndarray:
    rng = np.random.default_rng(params.seed)
    noise = standard_normal_field(rng, image.shape)
    noise *= np.float32(params.sigma)
    noise *= image
    noise += image
    return clip_unit(noise)


register(
    "speckle_noise",
    "multiplicative Gaussian noise: image * (1 + n)",
    SpeckleNoiseConfig,
    SpeckleNoiseParams,
    sample_speckle_noise,
    apply_speckle_noise,
)
