"""What the film operations mean: spectral weights derived from curves (and checked against
independent numbers), emulsions ordering colours as film does, the characteristic curve, grain
statistics against the Boolean model, paper grades, toning, fading, vignetting."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import color

import pairgen.ops as ops
from pairgen.ops import Context
from pairgen.ops.film import (FadingParams, FilmGrainParams, FilmNegativeParams, FilmSensitivityParams, PaperPrintParams,
                              ToningParams, VignettingParams, PAPER_BASE_DENSITY, PAPER_GRADE_RANGES, TONERS, characteristic_curve,
                              grain_cells_per_pixel, linear_to_srgb, negative_log_exposure, power_of_ten, srgb_to_linear,
                              low_percentile, toning_lut, vignetting_falloff)
from pairgen.ops.spectra import (DARKTABLE_ILFORD, EMULSIONS, REC709_TO_REC2020, emulsion_weights,
                                 sensitivity_curve, spectral_tables)

NEGATIVE = FilmNegativeParams(exposure_stops=0.0, gamma=0.7, fog=0.3, d_max=2.6, toe=0.3, shoulder=0.4)


def gray(value: float, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, np.float32)


def render(emulsion: str, rgb_linear, illuminant: str = "daylight") -> float:
    """sRGB gray that ``emulsion`` records for a patch of linear-sRGB colour ``rgb_linear``."""
    patch = np.broadcast_to(linear_to_srgb(np.asarray(rgb_linear, np.float32)), (4, 4, 3)).copy()
    params = FilmSensitivityParams(emulsion, illuminant, emulsion_weights(emulsion, illuminant))
    out = ops.get("film_sensitivity").apply(patch, params)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    return float(out[0, 0, 0])


# ----------------------------------------------------------------------------- spectral weights


def test_the_derivation_gives_back_rec709_luma_for_the_luminous_efficiency_curve():
    np.testing.assert_allclose(emulsion_weights("luminance", "daylight"), (0.2126, 0.7152, 0.0722), atol=0.005)


def test_the_spectral_basis_adds_up_to_white():
    _, basis, _, _ = spectral_tables()
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=2e-3)


@pytest.mark.parametrize("illuminant", ["daylight", "tungsten"])
@pytest.mark.parametrize("emulsion", sorted(EMULSIONS))
def test_every_emulsion_has_positive_weights_summing_to_one(emulsion, illuminant):
    w = emulsion_weights(emulsion, illuminant)
    assert all(v > 0 for v in w) and abs(sum(w) - 1.0) < 1e-5
    assert np.all(sensitivity_curve(emulsion) >= 0)


def test_tri_x_and_double_x_weights_match_an_independent_computation():
    # shared/notes/recipes-2d.md: computed with colour-science's Mallett-Yuksel basis at 1 nm
    np.testing.assert_allclose(emulsion_weights("kodak_tri_x_400", "daylight"), (0.187, 0.363, 0.450), atol=0.006)
    np.testing.assert_allclose(emulsion_weights("kodak_double_x_5222", "daylight"), (0.142, 0.313, 0.544), atol=0.006)


@pytest.mark.parametrize("film", sorted(DARKTABLE_ILFORD))
def test_ilford_curves_reproduce_the_datasheet_presets_in_daylight(film):
    target = np.asarray(DARKTABLE_ILFORD[film]) @ REC709_TO_REC2020
    np.testing.assert_allclose(emulsion_weights(film, "daylight"), target / target.sum(), atol=1e-5)


@pytest.mark.parametrize("emulsion", sorted(EMULSIONS))
def test_tungsten_light_is_poorer_in_blue(emulsion):
    assert emulsion_weights(emulsion, "tungsten")[2] < emulsion_weights(emulsion, "daylight")[2] - 0.01
    if EMULSIONS[emulsion].kind == "panchromatic":
        assert emulsion_weights(emulsion, "tungsten")[0] > emulsion_weights(emulsion, "daylight")[0] + 0.1


def test_red_prints_dark_on_orthochromatic_and_blue_sensitive_film():
    red, green, blue = (1, 0, 0), (0, 1, 0), (0, 0, 1)
    assert render("orthochromatic", red) < render("panchromatic", red) - 0.15
    assert render("blue_sensitive", red) < 0.35 and render("blue_sensitive", green) < 0.5
    assert render("blue_sensitive", blue) > render("panchromatic", blue) > render("luminance", blue)
    assert render("orthochromatic", green) > render("blue_sensitive", green)
    for emulsion in ("kodak_tri_x_400", "ilford_hp5_plus", "ilford_delta_100"):
        assert render("orthochromatic", red) < render(emulsion, red)


def test_panchromatic_is_closest_to_luminance():
    colours = np.random.default_rng(0).random((200, 3)).astype(np.float32)
    def distance(emulsion):
        return np.mean([abs(render(emulsion, c) - render("luminance", c)) for c in colours[:60]])
    assert distance("panchromatic") < distance("orthochromatic") < distance("blue_sensitive")


def test_the_sensitivity_step_works_in_linear_light():
    # a 50/50 mix of black and white pixels equals, on film, a patch of half the light
    params = FilmSensitivityParams("luminance", "daylight", emulsion_weights("luminance", "daylight"))
    out = ops.get("film_sensitivity").apply(gray(float(linear_to_srgb(np.float32(0.5)))), params)
    assert abs(float(srgb_to_linear(out[0, 0, 0])) - 0.5) < 1e-3


# ----------------------------------------------------------------------------- characteristic curve


def test_characteristic_curve_is_monotone_with_gamma_in_its_straight_part():
    x = np.linspace(-3, 6, 20001)
    d = characteristic_curve(x, 0.7, 0.3, 2.6, 0.3, 0.4)
    assert np.all(np.diff(d) >= -1e-12)
    assert d[0] == pytest.approx(0.3) and d[-1] == pytest.approx(2.6)
    slope = np.gradient(d, x)
    x_top = (2.6 - 0.3) / 0.7
    straight = (x > 0.3 + 0.01) & (x < x_top - 0.4 - 0.01)
    np.testing.assert_allclose(slope[straight], 0.7, atol=1e-6)
    assert np.max(np.abs(np.diff(slope))) < 0.01  # no kinks: the toe and shoulder join smoothly


def test_film_negative_follows_the_curve_and_its_exposure():
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)
    image = np.repeat(np.repeat(ramp[None, :, None], 2, axis=0), 3, axis=2)
    negative = ops.get("film_negative").apply(image, NEGATIVE)
    density = -np.log10(negative[0, :, 0].astype(np.float64))
    assert np.all(np.diff(density) >= -1e-5)  # more light, denser negative
    expected = characteristic_curve(negative_log_exposure(srgb_to_linear(ramp), 0.0), 0.7, 0.3, 2.6, 0.3, 0.4)
    np.testing.assert_allclose(density, expected, atol=2e-5)
    brighter = ops.get("film_negative").apply(image, FilmNegativeParams(1.0, 0.7, 0.3, 2.6, 0.3, 0.4))
    assert np.all(brighter[0, 8:, 0] <= negative[0, 8:, 0])  # one stop more: denser everywhere


# ----------------------------------------------------------------------------- grain


def grain_variance(transmittance: float, params: FilmGrainParams, size: int = 192) -> tuple[float, float]:
    out = ops.get("film_grain").apply(gray(transmittance, size), params)[8:-8, 8:-8, 0].astype(np.float64)
    return float(out.mean()), float(out.var())


def test_grain_variance_follows_the_boolean_model_and_density():
    params = FilmGrainParams(rms_granularity=17.0, pixel_um=10.0, aperture_sigma=0.5, seed=3)
    n = round(grain_cells_per_pixel(params))
    kernel = cv2.getGaussianKernel(int(2 * math.ceil(4 * 0.5) + 1) | 1, 0.5)  # what cv2 uses for sigma 0.5 (float32 images)
    gain = float((kernel @ kernel.T).__pow__(2).sum())
    variances = {}
    for t in (0.8, 0.5, 0.1, 0.02):
        mean, var = grain_variance(t, params)
        c = 1 - t
        assert mean == pytest.approx(t, abs=0.004)
        assert var == pytest.approx(c * (1 - c) / n * gain, rel=0.15), t
        variances[t] = var
    assert variances[0.5] > 2 * variances[0.1] and variances[0.5] > 2 * variances[0.02]
    # in density (what a densitometer reads) the grain grows with density, as Tri-X's RMS curve does
    sigma_d = {t: math.sqrt(v) / (t * math.log(10)) for t, v in variances.items()}
    assert sigma_d[0.8] < sigma_d[0.5] < sigma_d[0.1] < sigma_d[0.02]


def test_faster_film_has_coarser_grain():
    fine = FilmGrainParams(rms_granularity=7.0, pixel_um=10.0, aperture_sigma=0.5, seed=1)
    coarse = FilmGrainParams(rms_granularity=17.0, pixel_um=10.0, aperture_sigma=0.5, seed=1)
    ratio = grain_variance(0.2, coarse)[1] / grain_variance(0.2, fine)[1]
    assert ratio == pytest.approx((17 / 7) ** 2, rel=0.15)
    # grain cells bigger than a pixel (high magnification): the lattice keeps the mean
    big = FilmGrainParams(rms_granularity=17.0, pixel_um=0.2, aperture_sigma=0.5, seed=1)
    mean, var = grain_variance(0.4, big)
    assert mean == pytest.approx(0.4, abs=0.02) and var > 0.05


def test_grain_speed_and_size_come_from_the_chosen_film():
    op = ops.get("film_grain")
    for film in ("kodak_tri_x_400", "ilford_delta_100"):
        params = op.sample(np.random.default_rng(0), op.make_config({}), (32, 32, 3),
                           Context((32, 32), extra={"film": {"emulsion": film}}))
        assert params.rms_granularity == EMULSIONS[film].rms_granularity


# ----------------------------------------------------------------------------- paper, toning, ageing


def test_harder_paper_grades_print_with_more_contrast():
    negative = ops.get("film_negative").apply(np.repeat(np.linspace(0, 1, 128, dtype=np.float32)[None, :, None], 3, 2)
                                              .repeat(4, 0), NEGATIVE)
    tonal_range = []
    for grade in range(6):
        p = ops.get("paper_print").apply(negative, PaperPrintParams(grade, 0.0, 2.0))
        row = p[0, :, 0]
        assert np.all(np.diff(row) >= -1e-6)  # a positive: brighter scene, brighter print
        # exposed for the highlights: the brightest part prints within a trace of paper white
        assert -math.log10(float(srgb_to_linear(row[-1]))) < PAPER_BASE_DENSITY + 0.15
        tonal_range.append(int(np.count_nonzero((row > 0.1) & (row < 0.9))))  # scene tones not crushed
    assert tonal_range == sorted(tonal_range, reverse=True) and tonal_range[0] > 1.5 * tonal_range[5]


@pytest.mark.parametrize("toner", [t for t in TONERS if t != "none"])
def test_toning_is_one_hued_keeps_lightness_and_never_clips(toner):
    hue = TONERS[toner].hue
    lut = toning_lut(toner, 1.0, hue)
    grays = np.linspace(0, 1, 256)
    lab = color.rgb2lab(lut[None].astype(np.float64))[0]  # an independent, exact CIELAB
    gray_l = color.rgb2lab(np.repeat(grays[None, :, None], 3, 2))[0, :, 0]
    np.testing.assert_allclose(lab[:, 0], gray_l, atol=0.2)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    coloured = chroma > 0.5
    assert coloured.sum() > 100
    hues = np.degrees(np.arctan2(lab[coloured, 2], lab[coloured, 1])) % 360
    assert np.max(np.abs((hues - hue + 180) % 360 - 180)) < 1.0
    assert np.all(lut[1:-1] > 0.0) and np.all(lut[1:-1] < 1.0)  # nothing clips
    assert chroma.max() > 0.5 * TONERS[toner].chroma


def test_toning_none_is_the_identity_and_the_sepia_matrix_would_clip():
    image = gray(0.9)
    assert np.array_equal(ops.get("toning").apply(image, ToningParams("none", 0.0, 0.0)), image)
    sepia_matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    assert (sepia_matrix @ np.full(3, 0.9))[0] > 1.0  # the classic matrix: white clips
    toned = ops.get("toning").apply(image, ToningParams("sepia", 1.0, 70.0))
    assert toned.max() < 1.0 and toned[0, 0, 0] > toned[0, 0, 2]


def test_fading_raises_the_black_point_and_lowers_contrast():
    paper_black, paper_white = 10 ** -2.0, 10 ** -0.05
    image = np.concatenate([gray(float(linear_to_srgb(np.float32(paper_black))), 4),
                            gray(float(linear_to_srgb(np.float32(paper_white))), 4)], axis=1)
    faded = ops.get("fading").apply(image, FadingParams(0.3))
    black = float(srgb_to_linear(faded[0, 0, 0]))
    assert black == pytest.approx(10 ** (-2.0 * 0.7), rel=0.01) and black > 3 * paper_black
    assert faded[0, -1, 0] - faded[0, 0, 0] < image[0, -1, 0] - image[0, 0, 0]


def test_vignetting_loses_the_stated_stops_in_the_corners():
    params = VignettingParams(corner_stops=1.0, centre_x=0.5, centre_y=0.5)
    falloff = vignetting_falloff(101, 101, params)
    assert falloff[50, 50] == pytest.approx(1.0, abs=1e-3)
    assert falloff[0, 0] == pytest.approx(0.5, rel=0.03)
    out = ops.get("vignetting").apply(gray(0.5, 101), params)
    assert out[0, 0, 0] < out[50, 50, 0]


def test_yellowing_and_fading_keep_an_untinted_print_one_hued():
    image = np.repeat(np.linspace(0.05, 0.95, 64, dtype=np.float32)[None, :, None], 3, 2).repeat(4, 0)
    yellow = ops.get("base_yellowing").apply(image, ops.get("base_yellowing").Params(0.3))
    lab = cv2.cvtColor(yellow, cv2.COLOR_RGB2Lab)[0]
    hues = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
    assert np.all(lab[:, 2] > 0) and np.ptp(hues) < 12  # yellow, one hue across the tones


def test_unknown_names_are_errors_that_list_the_allowed_ones():
    with pytest.raises(ValueError, match="orthochromatic"):
        ops.get("film_sensitivity").make_config({"emulsions": ["agfa_magic"]})
    with pytest.raises(ValueError, match="sepia"):
        ops.get("toning").make_config({"toners": ["purple"]})
    with pytest.raises(ValueError, match="grade_probs"):
        ops.get("paper_print").make_config({"grade_probs": [1.0]})


# ----------------------------------------------------------------------------- fast paths against float64
# The ops compute in float32 with OpenCV's exp/log (and one plane for gray prints); these tests
# hold each against the textbook formula in float64: within FLOAT64_TOLERANCE, 1/2000 of an
# 8-bit level (measured: under 7e-7).

FLOAT64_TOLERANCE = 2e-6


def decode64(v):
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


def encode64(x):
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def photo(side: int = 96) -> np.ndarray:
    from skimage import data
    return ops.to_float(cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA))


def gray_photo(side: int = 96) -> np.ndarray:
    return np.repeat(photo(side).mean(axis=2, keepdims=True), 3, axis=2).astype(np.float32)


def test_transfer_curves_match_the_formula_in_float64():
    v = np.linspace(-0.1, 1.1, 400001).astype(np.float32)
    assert np.abs(srgb_to_linear(v) - decode64(v)).max() < FLOAT64_TOLERANCE
    assert np.abs(linear_to_srgb(v) - encode64(v)).max() < FLOAT64_TOLERANCE
    x = np.linspace(-4.0, 0.5, 100001).astype(np.float32)
    exact = 10.0 ** x.astype(np.float64)
    assert np.max(np.abs(power_of_ten(x) - exact) / exact) < FLOAT64_TOLERANCE
    for shape in [(), (1,), (3,), (2, 2, 3), (5, 7)]:  # any shape, including what OpenCV reads as scalars
        values = np.full(shape, 0.5, np.float32)
        assert srgb_to_linear(values).shape == shape and linear_to_srgb(values).shape == shape


def test_characteristic_curve_equals_its_piecewise_definition():
    x = np.linspace(-3, 6, 20001)
    gamma, fog, d_max, toe, shoulder = 0.7, 0.3, 2.6, 0.3, 0.4
    x_top = (d_max - fog) / gamma
    piecewise = np.select(
        [x < -toe, x < toe, x <= x_top - shoulder, x <= x_top + shoulder],
        [np.full_like(x, fog), fog + gamma * (x + toe) ** 2 / (4 * toe), fog + gamma * x,
         d_max - gamma * (x_top + shoulder - x) ** 2 / (4 * shoulder)], d_max)
    np.testing.assert_allclose(characteristic_curve(x, gamma, fog, d_max, toe, shoulder), piecewise, atol=1e-12)
    as_float32 = characteristic_curve(x.astype(np.float32), gamma, fog, d_max, toe, shoulder)
    assert as_float32.dtype == np.float32 and np.abs(as_float32 - piecewise).max() < 1e-5


def test_sensitivity_matches_float64_on_and_off_the_eight_bit_levels():
    weights = emulsion_weights("kodak_tri_x_400", "tungsten")
    params = FilmSensitivityParams("kodak_tri_x_400", "tungsten", weights)
    for image in (photo(), photo() + np.float32(1e-4)):  # decoded 8-bit levels (by table), and any other values
        out = ops.get("film_sensitivity").apply(image, params)
        assert np.abs(out[..., 0] - encode64(decode64(image) @ np.asarray(weights))).max() < FLOAT64_TOLERANCE


@pytest.mark.parametrize("negative", [FilmNegativeParams(-1.5, 0.55, 0.1, 2.2, 0.5, 0.6), NEGATIVE,
                                      FilmNegativeParams(1.5, 0.95, 0.4, 3.0, 0.2, 0.2)])
def test_negative_matches_float64(negative):
    image = gray_photo()
    log_exposure = (np.log10(np.maximum(decode64(image[..., 0]), 1e-5)) + 1 + negative.exposure_stops * math.log10(2)
                    - math.log10(0.18))
    exact = 10.0 ** -characteristic_curve(log_exposure, negative.gamma, negative.fog, negative.d_max, negative.toe,
                                          negative.shoulder)
    out = ops.get("film_negative").apply(image, negative)
    assert np.abs(out[..., 0] - exact).max() < FLOAT64_TOLERANCE
    toned = ops.get("film_negative").apply(photo(), negative)  # colour input: every channel through the same curve
    assert toned.shape == (96, 96, 3) and not np.array_equal(toned[..., 0], toned[..., 2])


@pytest.mark.parametrize("grade", range(6))
def test_print_matches_float64(grade):
    negative = ops.get("film_negative").apply(gray_photo(), NEGATIVE)
    params = PaperPrintParams(grade, 0.3, 1.9)
    transmittance = np.maximum(negative[..., 0], np.float32(1e-4))
    densest = float(np.percentile(transmittance, 0.5))  # a 96 px image: the 64 x 64 subsample is all of it
    log_exposure = np.log10(transmittance.astype(np.float64)) + 0.3 * math.log10(2) - math.log10(densest)
    span = PAPER_GRADE_RANGES[grade]
    density = characteristic_curve(log_exposure, 0.9 * (1.9 - PAPER_BASE_DENSITY) / span, PAPER_BASE_DENSITY, 1.9,
                                   0.15 * span, 0.15 * span)
    out = ops.get("paper_print").apply(negative, params)
    assert np.abs(out[..., 0] - encode64(10.0 ** -density)).max() < FLOAT64_TOLERANCE


def test_ageing_and_optics_match_float64():
    image = photo()
    for amount in (0.05, 0.5):
        faded = ops.get("fading").apply(image, FadingParams(amount))
        assert np.abs(faded - encode64(np.maximum(decode64(image), 1e-4) ** (1 - amount))).max() < FLOAT64_TOLERANCE
    for picture in (image, gray_photo()):  # colour, and the gray print's one-plane path
        yellow = ops.get("base_yellowing").apply(picture, ops.get("base_yellowing").Params(0.3))
        base = 1 - 0.3 * np.array([0.0, 0.35, 1.0])
        assert np.abs(yellow - encode64(decode64(picture) * base)).max() < FLOAT64_TOLERANCE
    params = VignettingParams(corner_stops=1.2, centre_x=0.45, centre_y=0.55)
    y = ((np.arange(96) + 0.5) / 96 - 0.55) * 96
    x = ((np.arange(96) + 0.5) / 96 - 0.45) * 96
    k = 2 ** (1.2 / 2) - 1
    falloff = (1 + k * (x[None, :] ** 2 + y[:, None] ** 2) / (0.25 * 2 * 96**2)) ** -2
    vignetted = ops.get("vignetting").apply(image, params)
    assert np.abs(vignetted - encode64(decode64(image) * falloff[..., None])).max() < FLOAT64_TOLERANCE


def test_low_percentile_is_numpys_percentile():
    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 7, 199, 200, 201, 4096, 65 * 65]:
        for _ in range(10):
            values = (rng.random(n, dtype=np.float32) ** 3).reshape(-1, 1) if n % 2 else rng.random(n, dtype=np.float32) ** 3
            for q in (0.5, 50.0, 99.5):
                assert low_percentile(values, q) == float(np.percentile(values, q)), (n, q)


# ----------------------------------------------------------------------------- what a film image remembers


def film_chain(toner: str) -> list[tuple[str, object]]:
    """Ops and params of a whole print: every film op, so that each sees what the one before made."""
    film = ops.get
    return [("film_sensitivity", FilmSensitivityParams("kodak_tri_x_400", "daylight", emulsion_weights("kodak_tri_x_400", "daylight"))),
            ("lens_softness", film("lens_softness").Params(0.8)), ("vignetting", VignettingParams(0.8, 0.45, 0.55)),
            ("film_negative", NEGATIVE), ("uneven_development", film("uneven_development").Params(0.1, 3, 7)),
            ("film_grain", FilmGrainParams(12.0, 20.0, 0.5, 11)), ("paper_print", PaperPrintParams(2, 0.2, 1.9)),
            ("toning", ToningParams(toner, 0.8, (TONERS[toner].hue + 3.0) % 360)), ("fading", FadingParams(0.3)),
            ("base_yellowing", film("base_yellowing").Params(0.2))]


@pytest.mark.parametrize("toner", ["none", "sepia", "cyanotype"])
def test_what_film_ops_remember_gives_the_pixels_of_the_plain_path(toner):
    """Each op's output from a remembered image (gray plane, toned print's 256 colours, the photo's
    8-bit levels) equals its output from a plain copy, which has to be checked pixel by pixel."""
    from pairgen.ops.film import photo_image
    from skimage import data

    crop = cv2.resize(data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
    remembered, plain = photo_image(crop), ops.to_float(crop)
    assert np.array_equal(remembered, plain)
    for name, params in film_chain(toner):
        remembered = ops.get(name).apply(remembered, params)
        plain = ops.get(name).apply(np.array(plain), params)  # a fresh copy: nothing remembered
        assert remembered.dtype == np.float32 and remembered.flags.c_contiguous
        assert np.array_equal(remembered, plain), name


def test_remembered_images_are_read_only_and_the_gray_check_stays_exact():
    from pairgen.ops.film import gray_plane, indexed_image

    negative = ops.get("film_negative").apply(gray_photo(), NEGATIVE)
    with pytest.raises(ValueError, match="read-only"):
        negative[0, 0, 0] = 0.5  # the fact "three equal channels" cannot go stale
    assert np.array_equal(gray_plane(negative), negative[..., 0])
    levels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    table = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[:, None], 3, axis=1)
    table[200] = (1.0, 0.5, 0.25)  # a coloured level that the image does not use: still gray
    assert np.array_equal(gray_plane(indexed_image(levels, table)), table[levels, 0])
    levels = levels.copy()  # indexed_image made the first read-only
    levels[0, 0] = 200
    toned = indexed_image(levels, table)
    assert gray_plane(toned) is None and gray_plane(np.array(toned)) is None
