"""Each estimator on images degraded with known parameters, with the stated tolerances."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pairgen import estimators
from pairgen.ops.jpeg import jpeg_bytes
from pairgen.sources import load_embedded

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _crop(name, side=256):
    return np.ascontiguousarray(load_embedded(name)[40:40 + side, 40:40 + side])


def _pillow_jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [10, 25, 40, 50, 63, 75, 85, 95])
def test_jpeg_quality_from_tables_is_exact(quality):
    image = _crop("coffee", 64)
    assert estimators.jpeg_quality_of_file(_pillow_jpeg(image, quality)) == quality  # Pillow (libjpeg)
    assert estimators.jpeg_quality_of_file(jpeg_bytes(image, quality)) == quality  # OpenCV (libjpeg-turbo)


def test_jpeg_quality_of_non_jpegs_and_foreign_tables_is_none():
    png = io.BytesIO()
    Image.fromarray(_crop("coffee", 32)).save(png, "PNG")
    assert estimators.jpeg_quality_of_file(png.getvalue()) is None
    assert estimators.jpeg_quality_of_file(b"not an image") is None
    flat = {0: [3] * 64, 1: [5] * 64}  # a custom (non-IJG) table set
    assert estimators.jpeg_quality_from_tables(flat) is None


def test_jpeg_quality_from_pixels_is_exact_at_256_px():
    """Decoded JPEGs (saved as pixels, no tables): exact for 256x256 crops of four photos at
    qualities 10..95 step 15; uncompressed pixels read as 96..100 (no compression visible)."""
    for name in PHOTOS:
        image = _crop(name)
        for quality in range(10, 100, 15):
            decoded = np.array(Image.open(io.BytesIO(_pillow_jpeg(image, quality))).convert("RGB"))
            assert estimators.jpeg_quality_from_pixels(decoded) == quality, (name, quality)
        assert estimators.jpeg_quality_from_pixels(image) >= 96, name


def _smooth_image(size=128):
    y, x = np.mgrid[0:size, 0:size]
    shade = 60 + 100 * x / size + 30 * np.sin(y / 20)
    return shade[..., None] * np.array([1.0, 0.9, 0.8])


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0, 20.0])
def test_noise_sigma_within_10_percent_and_gray_vs_colour(sigma):
    rng = np.random.default_rng(int(sigma))
    base = _smooth_image()
    colour = np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).round().astype(np.uint8)
    gray = np.clip(base + rng.normal(0, sigma, base.shape[:2])[..., None], 0, 255).round().astype(np.uint8)
    est_colour, est_gray = estimators.estimate_noise(colour), estimators.estimate_noise(gray)
    assert est_colour.sigma == pytest.approx(sigma, rel=0.10)
    assert est_gray.sigma == pytest.approx(sigma, rel=0.10)
    assert est_colour.channel_correlation < 0.1 and est_gray.channel_correlation > 0.95


def test_noise_signal_dependence_tells_shot_noise_from_additive():
    rng = np.random.default_rng(3)
    base = _smooth_image(192)
    additive = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).round().astype(np.uint8)
    shot = np.clip(rng.poisson(base / 4.0) * 4.0, 0, 255).round().astype(np.uint8)  # variance = 4 x level
    assert abs(estimators.estimate_noise(additive).signal_dependence) < 0.1
    assert estimators.estimate_noise(shot).signal_dependence > 0.2


def _one_over_f_texture(size=256, seed=0):
    """Gray texture with a 1/f^2 power spectrum (the natural-image prior the blur fit assumes)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(f[:, None], f[None, :])
    radius[0, 0] = 1.0
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / radius))
    field = (field - field.mean()) / field.std() * 40 + 128
    return np.repeat(np.clip(field, 0, 255)[..., None], 3, axis=2)


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_blur_sigma_within_10_percent_on_natural_spectra(sigma):
    blurred = cv2.GaussianBlur(_one_over_f_texture(), (0, 0), sigma).round().astype(np.uint8)
    assert estimators.estimate_blur_sigma(blurred) == pytest.approx(sigma, rel=0.10)


def test_blur_sigma_grows_with_blur_on_photos():
    image = _crop("astronaut").astype(np.float64)
    values = [estimators.estimate_blur_sigma(cv2.GaussianBlur(image, (0, 0), s).round().astype(np.uint8)) for s in (0.5, 1.5, 3.0)]
    assert values[0] < values[1] < values[2]


def test_image_statistics_reads_tables_when_given_the_file():
    image = _crop("chelsea", 128)
    data = _pillow_jpeg(image, 42)
    decoded = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    stats = estimators.image_statistics(decoded, data)
    assert (stats.jpeg_quality, stats.jpeg_quality_source) == (42, "tables")
    assert (stats.width, stats.height) == (128, 128)
    assert estimators.image_statistics(decoded).jpeg_quality_source == "pixels"
