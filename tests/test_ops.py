"""Tests of the degradation operations: the contract over every registered op, then what each op
means (a blur lowers high frequencies, JPEG goes through a real decoder, LR stays on the HR grid).

Images are small (<= 256 px) so the whole file runs in a few seconds on one core.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import random

import cv2
import numpy as np
import pytest
from PIL import Image

import pairgen.ops as ops
from pairgen.ops import Context, kernels, to_float, to_uint8
from pairgen.ops.blur import BlurParams, SincParams, blur_kernel
from pairgen.ops.jpeg import JpegParams, jpeg_bytes
from pairgen.ops.noise import (
    GaussianNoiseParams,
    PoissonNoiseParams,
    SpeckleNoiseParams,
    standard_normal_field,
)
from pairgen.ops.resize import ResizeParams, StrideDownsampleParams
from pairgen.ops.sharpen import UnsharpMaskParams

# Ops whose output size differs from their input's; every other op must keep the shape.
RESHAPING = {"resize", "resize_to_target", "stride_downsample"}
# Ops that draw nothing (their Params restate the Config).
NOT_RANDOM = {"unsharp_mask"}
EXPECTED_OPS = {
    "blur", "sinc", "resize", "resize_to_target", "gaussian_noise", "poisson_noise",
    "speckle_noise", "jpeg", "unsharp_mask", "stride_downsample",
}


def texture(height: int, width: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """Smooth random RGB texture in [0.05, 0.95], float32."""
    noise = np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    smooth -= smooth.min()
    smooth /= smooth.max()
    return np.ascontiguousarray(0.05 + 0.9 * smooth, dtype=np.float32)


def high_freq_energy(image: np.ndarray) -> float:
    lap = cv2.Laplacian(image.astype(np.float64), cv2.CV_64F)
    return float(np.mean(lap[4:-4, 4:-4] ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(1.0 / mse)


def measured_shift(reference: np.ndarray, moved: np.ndarray, smooth: float = 1.5, margin: int = 12) -> tuple[float, float]:
    """(dx, dy) in pixels such that moved(x) ~ reference(x - d), by least squares on the
    gradient of the mean image (accurate to ~2 % of the shift below 1 px; checked below).

    Not cv2.phaseCorrelate: on smooth textures its sub-pixel estimate is biased several times
    over here (a 0.1 px shift reads 0.38 px, 1 px reads 1.35 px), too coarse for a 0.05 px test.
    Not an iterative warp either: cv2.warpAffine snaps sub-pixel positions to 1/32 px.
    """
    a = cv2.GaussianBlur(reference.mean(axis=2).astype(np.float64), (0, 0), smooth)
    b = cv2.GaussianBlur(moved.mean(axis=2).astype(np.float64), (0, 0), smooth)
    mean = 0.5 * (a + b)
    inner = (slice(margin, -margin),) * 2
    gradients = np.c_[np.gradient(mean, axis=1)[inner].ravel(), np.gradient(mean, axis=0)[inner].ravel()]
    d = np.linalg.lstsq(gradients, -(b - a)[inner].ravel(), rcond=None)[0]
    return float(d[0]), float(d[1])


def fourier_shift(image: np.ndarray, dx: float) -> np.ndarray:
    """image(x - dx), exact for a periodic image."""
    spectrum = np.fft.fft2(image, axes=(0, 1))
    ramp = np.exp(-2j * np.pi * np.fft.fftfreq(image.shape[1]) * dx)
    return np.real(np.fft.ifft2(spectrum * ramp[None, :, None], axes=(0, 1))).astype(np.float32)


def periodic_texture(size: int, sigma: float, seed: int = 0) -> np.ndarray:
    spectrum = np.fft.fft2(np.random.default_rng(seed).random((size, size, 3)), axes=(0, 1))
    f = np.fft.fftfreq(size)
    gauss = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    out = np.real(np.fft.ifft2(spectrum * gauss[:, :, None], axes=(0, 1)))
    return ((out - out.min()) / (out.max() - out.min())).astype(np.float32)


# ---------------------------------------------------------------------------- the contract

CTX = Context(input_size=(96, 80), scale=4)
CONTRACT_IMAGE = texture(48, 40, seed=1, sigma=1.0)
CONTRACT_IMAGE[0, :4] = 0.0  # exact bounds must survive too
CONTRACT_IMAGE[1, :4] = 1.0
SEEDS = range(6)


def test_registry_holds_the_expected_ops():
    assert EXPECTED_OPS <= set(ops.REGISTRY)
    assert RESHAPING <= set(ops.REGISTRY) and NOT_RANDOM <= set(ops.REGISTRY)


@pytest.fixture(params=sorted(ops.REGISTRY), name="op")
def _op(request):
    return ops.REGISTRY[request.param]


def _draw(op, seed: int, shape=CONTRACT_IMAGE.shape):
    return op.sample(np.random.default_rng(seed), op.make_config({}), shape, CTX)


def test_contract_apply(op):
    for seed in SEEDS:
        params = _draw(op, seed)
        image = CONTRACT_IMAGE.copy()
        out = op.apply(image, params)
        assert np.array_equal(image, CONTRACT_IMAGE), f"{op.name} modified its input"
        assert out is not image and not np.shares_memory(out, image)
        assert out.dtype == np.float32 and out.flags.c_contiguous and out.ndim == 3 and out.shape[2] == 3
        assert np.all(out >= 0.0) and np.all(out <= 1.0) and np.all(np.isfinite(out))
        if op.name not in RESHAPING:
            assert out.shape == image.shape, f"{op.name} changed the shape with {params}"
        again = op.apply(CONTRACT_IMAGE, params)
        assert again.tobytes() == out.tobytes(), f"{op.name} is not deterministic for {params}"


def test_contract_params_json_round_trip(op):
    for seed in SEEDS:
        params = _draw(op, seed)
        text = json.dumps(op.params_to_json(params))
        restored = op.params_from_json(json.loads(text))
        assert restored == params
        assert op.apply(CONTRACT_IMAGE, restored).tobytes() == op.apply(CONTRACT_IMAGE, params).tobytes()


def test_contract_sampling_uses_only_its_generator(op):
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    drawn = [_draw(op, seed) for seed in SEEDS]
    for params in drawn:
        op.apply(CONTRACT_IMAGE, params)
    after = np.random.get_state()
    assert all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(np_state, after))
    assert random.getstate() == py_state
    assert drawn == [_draw(op, seed) for seed in SEEDS], "same seed, different params"
    distinct = {json.dumps(op.params_to_json(p), sort_keys=True) for p in drawn}
    if op.name in NOT_RANDOM:
        assert len(distinct) == 1
    else:
        assert len(distinct) > 1, f"{op.name} drew the same params for {len(drawn)} seeds"


def test_contract_config_keys(op):
    config = op.make_config({})
    assert dataclasses.is_dataclass(config) and config == op.Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, op.config_keys()[0], None)
    with pytest.raises(KeyError):
        op.make_config({"no_such_setting": 1})


def test_contract_tiny_images(op):
    for shape in [(1, 1, 3), (3, 2, 3)]:
        image = texture(*shape[:2], sigma=0.5) if min(shape[:2]) > 1 else np.full(shape, 0.5, np.float32)
        for seed in range(3):
            out = op.apply(image, _draw(op, seed, shape))
            assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="blur.kernel_probs"):
        ops.get("blur").make_config({"kernel_probs": [0.5, 0.5]})
    with pytest.raises(ValueError, match="jpeg.quality_range"):
        ops.get("jpeg").make_config({"quality_range": [95, 30]})
    with pytest.raises(ValueError, match="resize.relative_to"):
        ops.get("resize").make_config({"relative_to": "hr"})


# ---------------------------------------------------------------------------- kernels / blur

KERNEL_CASES = [
    ("iso", dict(sigma_x=1.7)),
    ("aniso", dict(sigma_x=2.8, sigma_y=0.6, theta=0.7)),
    ("generalized_iso", dict(sigma_x=1.5, beta=0.6)),
    ("generalized_aniso", dict(sigma_x=2.0, sigma_y=1.0, theta=-1.0, beta=3.0)),
    ("plateau_iso", dict(sigma_x=1.2, beta=1.5)),
    ("plateau_aniso", dict(sigma_x=2.5, sigma_y=0.8, theta=2.0, beta=1.2)),
    ("sinc", dict(cutoff=1.1)),
]


@pytest.mark.parametrize("kind,args", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernels_sum_to_one_and_are_symmetric(kind, args):
    k = kernels.make_kernel(kind, 21, **args)
    assert k.shape == (21, 21)
    assert abs(k.sum() - 1.0) < 1e-12
    assert np.allclose(k, k[::-1, ::-1], atol=1e-15), "not point-symmetric"
    if kind.endswith("iso") and not kind.endswith("aniso") or kind == "sinc":
        assert np.allclose(k, k.T, atol=1e-15) and np.allclose(k, k[:, ::-1], atol=1e-15)
        assert np.argmax(k) == 21 * 10 + 10
    else:
        assert not np.allclose(k, k.T, atol=1e-6)


@pytest.mark.parametrize("theta", [0.0, 0.5, math.pi / 4, 1.3, -2.2, 3.0])
def test_aniso_principal_axis_follows_theta(theta):
    k = kernels.gaussian_kernel(21, 3.0, 1.0, theta)
    ax = np.arange(21) - 10.0
    xx, yy = np.meshgrid(ax, ax)
    cov = np.array([[np.sum(k * xx * xx), np.sum(k * xx * yy)], [np.sum(k * xx * yy), np.sum(k * yy * yy)]])
    w, v = np.linalg.eigh(cov)
    major = v[:, 1]  # (x, y) with y down
    angle = math.atan2(major[1], major[0])
    diff = (angle - theta + math.pi / 2) % math.pi - math.pi / 2  # an axis, not a direction
    assert abs(diff) < 1e-3
    # theta = pi/4 means the long axis runs down-right on screen (y points down)
    if theta == math.pi / 4:
        assert k[14, 14] > k[14, 6]


@pytest.mark.parametrize("kind,args", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_fast_convolution_matches_dense_filter(kind, args):
    image = texture(64, 72, seed=3, sigma=0.7)
    k = kernels.make_kernel(kind, 21, **args)
    exact = cv2.filter2D(image.astype(np.float64), -1, k, borderType=cv2.BORDER_REFLECT_101)
    assert np.abs(kernels.convolve(image, k) - exact).max() <= kernels.APPLY_TOLERANCE
    # each method on its own, whatever the cost model picks
    terms = kernels.separable_terms(k)
    for col, row in terms:
        for v in (col, row):
            assert np.array_equal(v, v[::-1]) or np.array_equal(v, -v[::-1]), "parity not exact"
    separable = sum(cv2.sepFilter2D(image, cv2.CV_32F, r, c, borderType=cv2.BORDER_REFLECT_101) for c, r in terms)
    assert np.abs(separable - exact).max() <= kernels.APPLY_TOLERANCE
    fft = kernels._fft_filter(image, k.astype(np.float32))
    assert np.abs(fft - exact).max() <= 1e-5


def test_isotropic_gaussian_is_one_separable_term():
    assert len(kernels.separable_terms(kernels.gaussian_kernel(21, 2.0))) == 1


def test_blur_lowers_high_frequency_energy():
    image = texture(96, 96, seed=4, sigma=0.8)
    op = ops.get("blur")
    config = op.make_config({})
    before = high_freq_energy(image)
    for seed in range(12):
        params = op.sample(np.random.default_rng(seed), config, image.shape, CTX)
        if params.kind == "sinc" or (params.sigma_x or 0) < 0.5:
            continue  # a sinc keeps its pass band; a sigma-0.2 kernel is nearly a delta
        assert high_freq_energy(op.apply(image, params)) < 0.8 * before, params
    strong = BlurParams(kind="iso", size=21, sigma_x=3.0, sigma_y=3.0, theta=0.0)
    assert high_freq_energy(op.apply(image, strong)) < 0.05 * before
    np.testing.assert_allclose(blur_kernel(strong).sum(), 1.0)


def test_blur_sampling_follows_the_config():
    op = ops.get("blur")
    config = op.make_config({"sinc_prob": 0.0, "kernel_kinds": ["aniso"], "kernel_probs": [1.0], "kernel_sizes": [9]})
    for seed in range(10):
        p = op.sample(np.random.default_rng(seed), config, (32, 32, 3), CTX)
        assert p.kind == "aniso" and p.size == 9 and 0.2 <= p.sigma_y <= 3 and -math.pi <= p.theta <= math.pi
    shapes = op.make_config({"sinc_prob": 0.0, "kernel_kinds": ["generalized_iso", "plateau_iso"], "kernel_probs": [0.5, 0.5]})
    rng = np.random.default_rng(1)
    drawn = [op.sample(rng, shapes, (32, 32, 3), CTX) for _ in range(200)]
    generalized = [p.beta for p in drawn if p.kind == "generalized_iso"]
    plateau = [p.beta for p in drawn if p.kind == "plateau_iso"]
    assert 0.3 < np.mean(np.array(generalized) < 1) < 0.7  # BasicSR: half below 1, half above
    assert min(generalized) >= 0.5 and max(generalized) <= 4 and max(generalized) > 2
    assert min(plateau) >= 1 and max(plateau) <= 2 and np.std(plateau) > 0.2
    sinc_only = op.make_config({"sinc_prob": 1.0, "kernel_sizes": [7]})
    p = op.sample(np.random.default_rng(0), sinc_only, (32, 32, 3), CTX)
    assert p.kind == "sinc" and math.pi / 3 <= p.cutoff <= math.pi


def test_sinc_frequency_response():
    cutoff = math.pi / 2
    k = kernels.sinc_kernel(21, cutoff)
    n = 256
    padded = np.zeros((n, n))
    padded[:21, :21] = k
    response = np.abs(np.fft.fft2(padded))
    f = np.fft.fftfreq(n) * 2 * math.pi  # radians per pixel
    radius = np.hypot(*np.meshgrid(f, f))
    # a truncated ideal low-pass: Gibbs ripple of up to ~15 % near the square window's edges
    passband = np.abs(response[radius < 0.6 * cutoff] - 1.0)
    stopband = response[(radius > 1.4 * cutoff) & (radius < math.pi)]
    assert passband.max() < 0.2 and passband.mean() < 0.08
    assert stopband.max() < 0.1 and stopband.mean() < 0.03
    # the op filters accordingly: a pass-band stripe survives, a stop-band stripe is removed
    x = np.arange(128, dtype=np.float32)
    for freq, kept in [(0.3 * cutoff, True), (1.8 * cutoff, False)]:
        stripe = np.ascontiguousarray(np.broadcast_to((0.5 + 0.3 * np.cos(freq * x))[None, :, None], (32, 128, 3)))
        out = ops.get("sinc").apply(stripe, SincParams(size=21, cutoff=cutoff))
        amplitude = np.std(out[:, 20:-20]) * math.sqrt(2)
        assert (abs(amplitude - 0.3) < 0.03) if kept else (amplitude < 0.03)


# ---------------------------------------------------------------------------- resize


def test_resize_output_size_is_as_drawn():
    op = ops.get("resize")
    image = texture(60, 50)
    config = op.make_config({})
    for seed in range(10):
        p = op.sample(np.random.default_rng(seed), config, image.shape, CTX)
        scale_h = p.out_height / 60
        assert 0.15 - 1 / 60 <= scale_h <= 1.5 and p.mode in ("area", "bilinear", "bicubic")
        assert op.apply(image, p).shape == (p.out_height, p.out_width, 3)
    target = op.make_config({"relative_to": "target", "up_prob": 0, "down_prob": 0, "keep_prob": 1})
    p = op.sample(np.random.default_rng(0), target, image.shape, CTX)
    assert (p.out_height, p.out_width) == CTX.target_size
    tiny = op.make_config({"down_range": [0.001, 0.002], "up_prob": 0, "down_prob": 1, "keep_prob": 0})
    p = op.sample(np.random.default_rng(0), tiny, image.shape, CTX)
    assert (p.out_height, p.out_width) == (1, 1)


ALIGN_HR = texture(256, 256, seed=7, sigma=3.0)
ALIGN_CTX = Context(input_size=(256, 256), scale=4)


def _upsampled_shift(lr: np.ndarray) -> tuple[float, float]:
    up = cv2.resize(lr, (256, 256), interpolation=cv2.INTER_CUBIC)
    return measured_shift(ALIGN_HR, up)


def test_shift_measurement_is_accurate():
    image = periodic_texture(256, sigma=3.0, seed=7)
    for true_dx in (0.03, 0.1, 0.5):
        dx, dy = measured_shift(image, fourier_shift(image, true_dx))
        assert abs(dx - true_dx) < 0.03 * true_dx + 0.002 and abs(dy) < 0.002
    # the 1.5 px offset a corner-aligned ("LR pixel i = HR pixel 4 i") downscale makes is seen
    dx, dy = _upsampled_shift(np.ascontiguousarray(ALIGN_HR[::4, ::4]))
    assert dx > 1.3 and dy > 1.3


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize("intermediate", [None, 0.37, 0.2, 0.16])
def test_resize_to_target_keeps_the_hr_grid(mode, intermediate):
    image = ALIGN_HR
    if intermediate is not None:  # a random resize first (0.2: the final resize scales up)
        size = int(256 * intermediate)
        image = ops.get("resize").apply(image, ResizeParams(size, size + 3, mode))
    op = ops.get("resize_to_target")
    params = op.sample(np.random.default_rng(0), op.make_config({"modes": [mode], "mode_probs": [1.0]}), image.shape, ALIGN_CTX)
    assert (params.out_height, params.out_width, params.mode) == (64, 64, mode)
    lr = op.apply(image, params)
    assert lr.shape == (64, 64, 3)
    dx, dy = _upsampled_shift(lr)
    assert abs(dx) < 0.05 and abs(dy) < 0.05, (dx, dy)


def test_stride_downsample_size_and_alignment():
    op = ops.get("stride_downsample")
    image = texture(50, 47)
    for stride in (2, 3, 4):
        out = op.apply(image, StrideDownsampleParams(stride=stride, sigma=1.0))
        assert out.shape == (math.ceil(50 / stride), math.ceil(47 / stride), 3)
    # stride 2 with a tiny sigma averages each 2x2 block: exactly an area resize by 1/2
    half = op.apply(ALIGN_HR, StrideDownsampleParams(stride=2, sigma=0.1))
    area = cv2.resize(ALIGN_HR, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(half - area).max() < 1e-5
    for stride in (3, 4):
        lr = op.apply(ALIGN_HR, StrideDownsampleParams(stride=stride, sigma=0.6 * stride))
        n = 256 // stride
        up = cv2.resize(lr[:n, :n], (n * stride, n * stride), interpolation=cv2.INTER_CUBIC)
        dx, dy = measured_shift(ALIGN_HR[: n * stride, : n * stride], up)
        assert abs(dx) < 0.05 and abs(dy) < 0.05, (stride, dx, dy)
    # default config: the stride is the SR scale (BSRGAN)
    p = op.sample(np.random.default_rng(0), op.make_config({}), ALIGN_HR.shape, ALIGN_CTX)
    assert p.stride == 4 and 0.1 <= p.sigma <= 2.4


# ---------------------------------------------------------------------------- noise

GRAY = np.full((128, 128, 3), 0.5, np.float32)


def test_standard_normal_field_is_standard_normal():
    z = standard_normal_field(np.random.default_rng(0), (512, 512)).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.005
    kurtosis = np.mean(z**4) / np.mean(z**2) ** 2
    assert abs(kurtosis - 3.0) < 0.05
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005


@pytest.mark.parametrize("mode", ["color", "gray"])
def test_gaussian_noise_std_and_mode(mode):
    sigma = 12 / 255
    out = ops.get("gaussian_noise").apply(GRAY, GaussianNoiseParams(sigma=sigma, mode=mode, covariance=(), seed=5))
    noise = out.astype(np.float64) - 0.5
    assert abs(noise.std() / sigma - 1) < 0.03
    same = np.allclose(noise[..., 0], noise[..., 1], atol=1e-7) and np.allclose(noise[..., 0], noise[..., 2], atol=1e-7)
    assert same == (mode == "gray")
    if mode == "color":
        assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.03


def test_gaussian_noise_correlated_covariance():
    op = ops.get("gaussian_noise")
    config = op.make_config({"sigma_range": [20, 20], "gray_prob": 0.0, "correlated_prob": 1.0})
    params = op.sample(np.random.default_rng(3), config, GRAY.shape, CTX)
    assert params.mode == "correlated" and len(params.covariance) == 9
    cov = np.array(params.covariance).reshape(3, 3)
    assert np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) >= -1e-12)
    assert np.all(np.diag(cov) <= (20 / 255) ** 2 + 1e-12)
    noise = op.apply(GRAY, params).reshape(-1, 3).astype(np.float64) - 0.5
    measured = np.cov(noise.T)
    assert np.abs(measured - cov).max() < 0.06 * (20 / 255) ** 2


def test_gaussian_noise_mode_probabilities():
    op = ops.get("gaussian_noise")
    config = op.make_config({"gray_prob": 0.4, "correlated_prob": 0.2})
    rng = np.random.default_rng(0)
    modes = [op.sample(rng, config, GRAY.shape, CTX).mode for _ in range(2000)]
    for mode, p in [("gray", 0.4), ("correlated", 0.2), ("color", 0.4)]:
        assert abs(modes.count(mode) / 2000 - p) < 0.04


@pytest.mark.parametrize("gray", [False, True])
def test_poisson_noise_variance_grows_with_intensity(gray):
    ramp = np.linspace(0, 1, 256, dtype=np.float32)  # 256 distinct levels -> vals = 256
    image = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (200, 256, 3)))
    scale = 1.5
    out = ops.get("poisson_noise").apply(image, PoissonNoiseParams(scale=scale, gray=gray, seed=2))
    noise = out.astype(np.float64) - image
    dark, bright = noise[:, 40:60], noise[:, 180:200]  # levels ~0.2 and ~0.75, no clipping
    assert np.var(bright) > 2.5 * np.var(dark)
    for band, cols in [(dark, slice(40, 60)), (bright, slice(180, 200))]:
        expected = scale**2 * np.mean(ramp[cols]) / 256
        assert abs(np.var(band) / expected - 1) < 0.1
    assert np.all(out[:, 0] == 0.0), "black has no shot noise"
    channels_equal = np.array_equal(noise[..., 0], noise[..., 2])
    assert channels_equal == gray


def test_speckle_noise_is_multiplicative():
    sigma = 30 / 255
    image = np.ascontiguousarray(np.broadcast_to(np.array([0.25, 0.5, 0.0], np.float32), (128, 128, 3)))
    out = ops.get("speckle_noise").apply(image, SpeckleNoiseParams(sigma=sigma, seed=1))
    rel = (out.astype(np.float64) - image) / 0.25
    assert abs(rel[..., 0].std() / sigma - 1) < 0.03
    assert abs((out[..., 1] - 0.5).std() / (0.5 * sigma) - 1) < 0.03
    assert np.all(out[..., 2] == 0.0)


# ---------------------------------------------------------------------------- jpeg


def test_jpeg_is_a_real_codec_round_trip():
    image = texture(72, 88, seed=9, sigma=1.5)
    op = ops.get("jpeg")
    for quality in (30, 75):
        out = op.apply(image, JpegParams(quality=quality))
        # independent path: base.to_uint8, BGR for OpenCV, encode, decode
        flags = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
        ok, data = cv2.imencode(".jpg", to_uint8(image)[:, :, ::-1].copy(), flags)
        assert ok
        expected = to_float(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])
        assert out.tobytes() == expected.tobytes()
        # the bytes are a standard JPEG: PIL (its own libjpeg) decodes them to the same pixels
        pil = Image.open(io.BytesIO(jpeg_bytes(to_uint8(image), quality)))
        assert pil.format == "JPEG" and pil.mode == "RGB"
        assert np.abs(to_uint8(out).astype(int) - np.asarray(pil).astype(int)).max() <= 1


def test_jpeg_quality_orders_fidelity_and_makes_blocks():
    image = texture(128, 128, seed=10, sigma=2.0)
    op = ops.get("jpeg")
    scores = [psnr(image, op.apply(image, JpegParams(quality=q))) for q in (10, 30, 60, 95)]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 8
    # blockiness: jumps across the 8-px block borders exceed jumps inside the blocks
    out = op.apply(image, JpegParams(quality=10)).mean(axis=2).astype(np.float64)
    err = out - image.mean(axis=2)
    step = np.abs(np.diff(err, axis=1))  # step[:, j] is between columns j and j+1
    border = step[:, 7::8].mean()
    inside = np.delete(step, np.s_[7::8], axis=1).mean()
    assert border > 1.3 * inside


def test_jpeg_sampling_is_integer_and_inclusive():
    op = ops.get("jpeg")
    config = op.make_config({"quality_range": [40, 42]})
    rng = np.random.default_rng(0)
    drawn = {op.sample(rng, config, (8, 8, 3), CTX).quality for _ in range(200)}
    assert drawn == {40, 41, 42} and all(isinstance(q, int) for q in drawn)


# ---------------------------------------------------------------------------- unsharp mask


def test_unsharp_mask_sharpens_edges_and_leaves_flat_areas():
    op = ops.get("unsharp_mask")
    params = op.sample(np.random.default_rng(0), op.make_config({}), (96, 96, 3), CTX)
    assert params == UnsharpMaskParams(kernel_size=51, sigma=8.0, weight=0.5, threshold=10.0)
    image = texture(96, 96, seed=11, sigma=1.5)
    out = op.apply(image, params)
    assert high_freq_energy(out) > 1.2 * high_freq_energy(image)
    flat = np.full((64, 64, 3), 0.3, np.float32)
    assert np.array_equal(op.apply(flat, params), flat)


def test_bicubic_antialias_matches_known_values_and_does_not_alias():
    from pairgen.ops.resize import resize_image

    # A constant stays constant; a linear ramp stays linear in the interior (cubic reproduces it).
    flat = np.full((64, 64, 3), 0.25, np.float32)
    assert np.allclose(resize_image(flat, 16, 16, "bicubic_antialias"), 0.25, atol=1e-6)
    ramp = np.repeat(np.tile(np.linspace(0.1, 0.9, 64, dtype=np.float32), (64, 1))[:, :, None], 3, axis=2)
    small = resize_image(ramp, 16, 16, "bicubic_antialias")
    expected = np.interp((np.arange(16) + 0.5) * 4 - 0.5, np.arange(64), np.linspace(0.1, 0.9, 64))
    assert np.allclose(small[8, 3:13, 0], expected[3:13], atol=1e-5)
    # A stripe pattern above the LR Nyquist rate: aliased by cv2's bicubic, removed by ours.
    x = np.arange(256, dtype=np.float32)
    stripes = 0.5 + 0.4 * np.sin(2 * np.pi * x / 2.6)
    image = np.repeat(np.tile(stripes, (256, 1))[:, :, None], 3, axis=2).astype(np.float32)
    aa = resize_image(image, 64, 64, "bicubic_antialias")
    plain = resize_image(image, 64, 64, "bicubic")
    assert aa[:, 4:-4].std() < 0.02 and plain[:, 4:-4].std() > 0.1


def test_bicubic_antialias_borders_are_symmetric_as_matlab():
    """MATLAB's imresize (and BSRGAN's imresize_np, its halving step) pads by repeating the edge
    pixel (-1 -> 0, -2 -> 1); output pixel 0 of a halving is centred at input position 0.5."""
    from pairgen.ops.resize import resize_image

    row = np.random.default_rng(4).random(16)
    image = np.ascontiguousarray(np.broadcast_to(row[None, :, None], (4, 16, 3)), dtype=np.float32)
    out = resize_image(image, 2, 8, "bicubic_antialias")[0, :, 0]
    padded = np.pad(row, 8, mode="symmetric")
    positions = np.arange(-8, 24)
    for i in (0, 1, 6, 7):  # both borders and two interior pixels
        centre = (i + 0.5) * 2 - 0.5
        x = np.abs(0.5 * (centre - positions))
        cubic = np.where(x <= 1, 1.5 * x**3 - 2.5 * x**2 + 1, np.where(x < 2, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2, 0))
        expected = np.clip((cubic * padded).sum() / cubic.sum(), 0, 1)
        assert abs(out[i] - expected) < 1e-5, (i, out[i], expected)


@pytest.mark.parametrize("stride,sigma", [(4, 2.4), (2, 0.3), (3, 1.0)])
def test_stride_downsample_equals_full_blur_then_decimation(stride, sigma):
    """The fast path (rows, drop columns, then columns) gives the full separable blur's values."""
    from pairgen.ops.resize import shifted_gaussian_1d

    image = texture(61, 50, seed=2)
    taps = shifted_gaussian_1d(sigma, (stride - 1) / 2)
    full = cv2.sepFilter2D(image, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT_101)[::stride, ::stride]
    fast = ops.get("stride_downsample").apply(image, StrideDownsampleParams(stride=stride, sigma=sigma))
    np.testing.assert_allclose(fast, np.clip(full, 0, 1), atol=1e-6)


@pytest.mark.parametrize("shape,out", [((64, 48), (32, 24)), ((64, 64), (16, 16)), ((37, 51), (18, 25)), ((8, 8), (1, 1))])
def test_bicubic_antialias_fast_path_equals_the_resampling_matrix(shape, out):
    from pairgen.ops.resize import _cubic_weights, resize_image

    image = texture(*shape, seed=3)
    h, w = shape
    rows = (_cubic_weights(h, out[0]).astype(np.float64) @ image.reshape(h, -1)).reshape(out[0], w, 3)
    ref = np.einsum("ow,hwc->hoc", _cubic_weights(w, out[1]).astype(np.float64), rows)
    np.testing.assert_allclose(resize_image(image, out[0], out[1], "bicubic_antialias"), np.clip(ref, 0, 1), atol=1e-6)


def test_bessel_j1_matches_scipy():
    """The sinc kernel's J1 (Bessel's integral, no SciPy import at run time) against SciPy's."""
    from scipy import special

    x = np.concatenate([np.linspace(0, 60, 20001), [0.0, 1e-9, 3.8317059702075125, 100.0]])
    np.testing.assert_allclose(kernels.bessel_j1(x), special.j1(x), atol=1e-13)
    assert kernels.bessel_j1(np.zeros((2, 3))).shape == (2, 3)
