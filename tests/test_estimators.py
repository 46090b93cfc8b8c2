"""Each estimator on images degraded with known parameters, with the stated tolerances."""
import io
import math

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


# ----------------------------------------------------------------------------- old photos (the colorize recipe's film ops)

from pairgen.ops import film  # noqa: E402
from pairgen.ops.base import to_float, to_uint8  # noqa: E402


def _gray_print(name="astronaut", side=192, grade=3, exposure=0.0):
    """A print made by the film ops with fixed parameters: sensitivity, negative, paper (no grain)."""
    image = to_float(_crop(name, side))
    latent = film._apply_sensitivity(image, film.FilmSensitivityParams("panchromatic", "daylight", (0.2126, 0.7152, 0.0722)))
    negative = film._apply_negative(latent, film.FilmNegativeParams(0.0, 0.7, 0.2, 2.6, 0.3, 0.4))
    return film._apply_print(negative, film.PaperPrintParams(grade, exposure, 1.9))


def _ramp(height=64, width=256):
    return np.repeat(np.repeat(np.linspace(0, 1, width, dtype=np.float32)[None, :, None], height, 0), 3, 2)


def _hue_gap(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("toner", [t for t in film.TONERS if t != "none"])
def test_tint_hue_within_2_degrees_and_chroma_within_10_percent(toner):
    """Hue within 2 degrees (5 for a faint tint under C*ab 5, which 8-bit rounding turns)."""
    params = film.ToningParams(toner, 1.0, film.TONERS[toner].hue)
    toned = to_uint8(film._apply_toning(_ramp(), params))
    stats = estimators.film_statistics(toned)
    assert _hue_gap(stats.tint_hue, params.hue) < (2.0 if stats.tint_chroma >= 5 else 5.0), (toner, stats.tint_hue)
    # the chroma the toner puts into the mid-tones (L* 25..85), from its own colour table
    lab = estimators.lab_of(toned)
    mid = (lab[..., 0] >= 25) & (lab[..., 0] <= 85)
    expected = float(np.hypot(lab[..., 1][mid].mean(), lab[..., 2][mid].mean()))
    assert stats.tint_chroma == pytest.approx(expected, rel=0.10)
    assert stats.colour_spread < estimators.MAX_PRINT_COLOUR_SPREAD


def test_tint_hue_is_circular_and_neutral_prints_have_none():
    # a hue next to 0/360: averaged as a vector it stays there (an average of angles would give ~180)
    toned = to_uint8(film._apply_toning(_ramp(), film.ToningParams("red_brown", 1.0, 355.0)))
    assert _hue_gap(estimators.film_statistics(toned).tint_hue, 355.0) < 2.0
    gray = estimators.film_statistics(to_uint8(_ramp()))
    assert np.isnan(gray.tint_hue) and gray.tint_chroma < 0.5


def test_tone_percentiles_of_a_known_lightness_ramp():
    """An image whose L* runs evenly 0..100: its percentiles are the L* values themselves (within 1)."""
    lightness = np.linspace(0, 100, 1024)
    y = np.where(lightness > 8, ((lightness + 16) / 116) ** 3, lightness / (29 / 3) ** 3)
    srgb = film.linear_to_srgb(y.astype(np.float32))
    image = np.repeat(np.repeat(to_uint8(srgb)[None, :, None], 32, 0), 3, 2)
    stats = estimators.film_statistics(image)
    for value, percent in ((stats.tone_p10, 10), (stats.tone_p50, 50), (stats.tone_p90, 90), (stats.black_level, 1)):
        assert value == pytest.approx(percent, abs=1.0)
    assert stats.contrast == pytest.approx(100 / math.sqrt(12), rel=0.02)  # a uniform distribution's std


def test_tone_follows_paper_grade_and_print_exposure():
    # exposed for the highlights, a harder paper darkens the mid-tones and shadows
    graded = [estimators.film_statistics(to_uint8(_gray_print(grade=g))) for g in (0, 2, 5)]
    assert graded[0].tone_p50 > graded[1].tone_p50 > graded[2].tone_p50
    assert graded[0].tone_p10 > graded[1].tone_p10 > graded[2].tone_p10
    medians = [estimators.film_statistics(to_uint8(_gray_print(exposure=e))).tone_p50 for e in (-0.5, 0.0, 0.5)]
    assert medians[0] > medians[1] > medians[2]  # more printing light: a darker print


@pytest.mark.parametrize("amount", [0.1, 0.3, 0.5])
def test_fading_lifts_the_black_level_as_the_density_law_says(amount):
    """fading multiplies every density by (1 - amount): the faded print's 1st-percentile L* is
    that of the unfaded print's 1st-percentile density times (1 - amount), within 1 L*."""
    printed = _gray_print()
    before = estimators.film_statistics(to_uint8(printed))
    faded = estimators.film_statistics(to_uint8(film._apply_fading(printed, film.FadingParams(amount))))
    y_black = ((before.black_level + 16) / 116) ** 3
    y_faded = 10 ** (math.log10(y_black) * (1 - amount))
    assert faded.black_level == pytest.approx(116 * y_faded ** (1 / 3) - 16, abs=1.0)
    assert faded.contrast < before.contrast


@pytest.mark.parametrize("sigma_density", [0.01, 0.03, 0.06])
def test_grain_within_10_percent_of_known_density_noise(sigma_density):
    rng = np.random.default_rng(int(sigma_density * 1000))
    base = 0.35 + 0.2 * np.linspace(0, 1, 256)[None, :] * np.ones((256, 1))  # smooth print density
    density = base + rng.normal(0, sigma_density, base.shape)
    srgb = film.linear_to_srgb((10 ** -density).astype(np.float32))
    image = np.repeat(to_uint8(srgb)[..., None], 3, axis=2)
    assert estimators.film_statistics(image).grain == pytest.approx(1000 * sigma_density, rel=0.10)


def test_grain_of_the_film_grain_op_grows_as_the_pixel_spans_less_film():
    flat = np.full((192, 192, 3), 0.3, np.float32)  # a negative's transmittance
    grains = []
    for pixel_um in (40.0, 15.0, 5.0):  # fewer grain cells per pixel: stronger grain
        params = film.FilmGrainParams(17.0, pixel_um, 0.5, 3)
        printed = film._apply_print(film._apply_grain(flat, params), film.PaperPrintParams(3, 0.0, 1.9))
        grains.append(estimators.film_statistics(to_uint8(printed)).grain)
    clean = estimators.film_statistics(to_uint8(film._apply_print(flat, film.PaperPrintParams(3, 0.0, 1.9)))).grain
    assert clean < 3 and grains[0] < grains[1] < grains[2], (clean, grains)


def test_colour_spread_tells_colour_photos_from_prints():
    for name in PHOTOS:  # whole photos, as a user gives them
        assert estimators.film_statistics(load_embedded(name)).colour_spread > estimators.MAX_PRINT_COLOUR_SPREAD, name
    sepia = to_uint8(film._apply_toning(_gray_print(), film.ToningParams("sepia", 1.0, 70.0)))
    yellowed = to_uint8(film._apply_yellowing(_gray_print(), film.BaseYellowingParams(0.3)))
    for image in (sepia, yellowed, to_uint8(_gray_print())):
        assert estimators.film_statistics(image).colour_spread < estimators.MAX_PRINT_COLOUR_SPREAD
