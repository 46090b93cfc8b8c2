"""`pairgen calibrate`: the proof that a calibrated recipe matches a "real" set better than the
default does, on held-out images, and that what it writes builds; bad input reported."""
import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy.stats import wasserstein_distance

from conftest import run_cli
from pairgen import calibration, estimators
from pairgen.api import build
from pairgen.errors import UsageError
from pairgen.recipes import load_recipe
from pairgen.sources import load_embedded

# A one-stage superres recipe: the proof runs in seconds. Its defaults play "the default recipe".
RECIPE = """\
task: superres
description: one-stage test degradation
scale: 2
degrade:
  - {op: blur, sigma_range: [0.2, 3.0], sinc_prob: 0.0}
  - {op: resize_to_target}
  - {op: gaussian_noise, sigma_range: [1, 30], gray_prob: 0.0}
  - {op: jpeg, quality_range: [30, 95]}
"""
# The hidden settings of the "real" camera: milder everything, gray (luminance) noise where the
# default recipe has colour noise.
HIDDEN = {"blur": {"sigma_range": [0.2, 1.0]}, "gaussian_noise": {"sigma_range": [2, 6], "gray_prob": 1.0},
          "jpeg": {"quality_range": [75, 90]}}
LR = 64


def _hidden_real_set(folder, recipe_path, count=48):
    """LR outputs of the recipe with HIDDEN settings, on other crops and draws than calibration
    uses, saved the way a camera would: JPEG files at a hidden quality (their tables say it)."""
    recipe = load_recipe(str(recipe_path))
    raw = calibration.plain(recipe.raw)
    for step in raw["degrade"]:
        step.update(HIDDEN.get(step["op"], {}))
    jpeg = raw["degrade"].pop()  # the file's own compression, below
    simulator = calibration.Simulator(calibration.FAMILIES["superres"], recipe, calibration.clean_crops([], count, 2 * LR, seed=1000),
                                      seed=1000)
    rng = np.random.default_rng(5)
    low, high = jpeg["quality_range"]
    for index, (lr, _) in enumerate(simulator.outputs(raw)):
        Image.fromarray(lr).save(folder / f"real_{index:03d}.jpg", quality=int(rng.integers(low, high + 1)))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    recipe_path = root / "simple.yaml"
    recipe_path.write_text(RECIPE)
    real = root / "real"
    real.mkdir()
    _hidden_real_set(real, recipe_path)
    (real / "notes.txt").write_text("not an image")
    (real / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = root / "out" / "my.yaml"
    result = calibration.calibrate(str(real), str(recipe_path), str(out), samples=24, lr_side=LR, seed=0, passes=2)
    return root, result


def test_calibrated_recipe_is_closer_than_the_default_on_every_statistic(calibrated):
    _, result = calibrated
    for name in estimators.FITTED_STATISTICS:
        assert result.distances_calibrated[name] < result.distances_default[name], (name, result.distances_default,
                                                                                      result.distances_calibrated)
    # and by a clear margin where the hidden settings are far from the default
    assert result.distances_calibrated["jpeg_quality"] < 0.5 * result.distances_default["jpeg_quality"]
    assert result.distances_calibrated["noise_sigma"] < 0.5 * result.distances_default["noise_sigma"]


def test_the_written_recipe_says_what_it_was_fitted_on_and_builds(calibrated):
    root, result = calibrated
    text = open(result.recipe_path).read()
    assert text.startswith("# Calibrated by `pairgen calibrate`")
    assert "Fitted on 48 real images" in text and "2 skipped" in text
    raw = yaml.safe_load(text)
    jpeg = [s for s in raw["degrade"] if s["op"] == "jpeg"][0]
    assert jpeg["quality_range"][0] >= 50  # moved up towards the hidden [75, 90] from 30
    built = build(result.recipe_path, out=str(root / "shards"), limit=3, workers=1, crop=128, progress=False, log=False)
    assert built.card["samples"] == 3 if "samples" in built.card else (root / "shards" / "dataset.json").exists()


def test_report_has_histograms_and_distances_per_statistic(calibrated):
    _, result = calibrated
    report = json.load(open(result.report_json))
    assert set(report["statistics"]) == set(estimators.FITTED_STATISTICS)
    for name, entry in report["statistics"].items():
        assert entry["units"] and len(entry["real_held_out"]) == 24 and len(entry["default"]) == 24
        assert entry["wasserstein_calibrated"] == pytest.approx(result.distances_calibrated[name])
    reasons = {item["path"].split("/")[-1]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"notes.txt", "broken.jpg"}
    # real JPEG files: quality read from their tables, exactly the hidden range
    qualities = [s["jpeg_quality"] for s in report["real_images_statistics"]]
    assert all(s["jpeg_quality_source"] == "tables" for s in report["real_images_statistics"])
    assert min(qualities) >= 75 and max(qualities) <= 90
    image = Image.open(result.report_png)
    assert image.format == "PNG" and image.size[0] > 4 * image.size[1] / 2


def test_wasserstein_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.7, 2, 200)
    assert calibration.wasserstein_1d(a, b) == pytest.approx(wasserstein_distance(a, b), abs=0.01)
    assert calibration.wasserstein_1d([1.0, float("nan")], [3.0]) == pytest.approx(2.0)


def test_circular_wasserstein_takes_the_short_way_round():
    assert calibration.circular_wasserstein_1d([355.0], [5.0]) == pytest.approx(10.0, abs=0.2)
    assert calibration.circular_wasserstein_1d([350.0, 10.0], [0.0, 0.0]) == pytest.approx(10.0, abs=0.2)
    # away from the cut it is the plain distance
    rng = np.random.default_rng(1)
    a, b = rng.uniform(100, 140, 200), rng.uniform(120, 170, 150)
    assert calibration.circular_wasserstein_1d(a, b) == pytest.approx(wasserstein_distance(a, b), abs=0.2)


def test_too_few_images_say_how_many_are_needed(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((32, 32, 3), (100 + index, 90, 60), np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UsageError, match="3 usable images, calibration needs at least 8"):
        calibration.calibrate(str(tmp_path), "superres", str(tmp_path / "x.yaml"))
    done = run_cli("calibrate", "--real", tmp_path, "--recipe", "superres", "--out", tmp_path / "x.yaml")
    assert done.returncode == 2 and "needs at least 8" in done.stderr and "readme.txt" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--recipe", "superres", "--out", "x.yaml"], "Missing option '--real'"),
    (["--real", "{tmp}", "--recipe", "edges", "--out", "x.yaml"], "calibration fits superres and colorize recipes"),
    (["--real", "{tmp}", "--recipe", "nope", "--out", "x.yaml"], "unknown recipe"),
    (["--real", "{tmp}/missing", "--recipe", "superres", "--out", "x.yaml"], "not a folder"),
    (["--real", "{tmp}", "--recipe", "superres", "--out", "x.txt"], "YAML file"),
])
def test_wrong_usage_exits_2(tmp_path, args, message):
    done = run_cli("calibrate", *[a.format(tmp=tmp_path) for a in args], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


# ----------------------------------------------------------------------------- the built-in two-stage superres recipe

# Hidden "camera" for the built-in recipe: twice the noise in both stages and gray, JPEG 75..90,
# a third of the blur. Every fitted statistic sits clearly away from the default's (on this
# recipe the final JPEG and resizes bury weaker noise under the 8-bit floor: no set of 24
# images could then tell it from the default's).
def _hide_builtin(raw):
    for step in calibration._op_steps(raw["degrade"], "gaussian_noise"):
        step.update(sigma_range=[2 * v for v in step["sigma_range"]], gray_prob=1.0)
    for step in calibration._op_steps(raw["degrade"], "poisson_noise"):
        step.update(scale_range=[2 * v for v in step["scale_range"]], gray_prob=1.0)
    for step in calibration._op_steps(raw["degrade"], "jpeg"):
        step["quality_range"] = [75, 90]
    for step in calibration._op_steps(raw["degrade"], "blur"):
        step["sigma_range"] = [0.2, round(0.35 * step["sigma_range"][1], 3)]


@pytest.fixture(scope="module")
def calibrated_builtin(tmp_path_factory):
    """48 "real" outputs of the built-in superres recipe with the hidden settings, other crops
    and draws than calibration uses; an output whose last step was a JPEG is saved as the JPEG
    file it is (at its recorded quality), the others as PNG."""
    root = tmp_path_factory.mktemp("calibrate_builtin")
    real = root / "real"
    real.mkdir()
    recipe = load_recipe("superres")
    raw = calibration.plain(recipe.raw)
    _hide_builtin(raw)
    simulator = calibration.Simulator(calibration.FAMILIES["superres"], recipe,
                                      calibration.clean_crops([], 48, 4 * LR, seed=1000), seed=1000)
    for index, (lr, record) in enumerate(simulator.outputs(raw)):
        last = record["degrade_ops"][-1]
        if last["op"] == "jpeg":
            Image.fromarray(lr).save(real / f"real_{index:03d}.jpg", quality=int(last["params"]["quality"]))
        else:
            Image.fromarray(lr).save(real / f"real_{index:03d}.png")
    return calibration.calibrate(str(real), "superres", str(root / "my-superres.yaml"), samples=32, lr_side=LR, seed=0,
                                 passes=2)


def test_builtin_superres_calibrated_is_closer_on_every_statistic(calibrated_builtin):
    result = calibrated_builtin
    for name in estimators.FITTED_STATISTICS:
        assert result.distances_calibrated[name] < result.distances_default[name], (name, result.distances_default,
                                                                                      result.distances_calibrated)


# ----------------------------------------------------------------------------- colorize: old prints

# Hidden settings of the "real" old prints: all sepia, all faded hard, coarse grain, all
# yellowed; the default recipe mixes toners, fades half its prints lightly, yellows 40% of them
# and draws grain from 5..40 um per pixel.
FILM_HIDDEN = {"fading": {"p": 1.0, "amount_range": [0.35, 0.6]}, "film_grain": {"p": 1.0, "pixel_um_range": [2.0, 6.0]},
               "base_yellowing": {"p": 1.0, "strength_range": [0.1, 0.25]}}
FILM_SIDE = 128


@pytest.fixture(scope="module")
def calibrated_film(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate_film")
    real = root / "scans"
    real.mkdir()
    recipe = load_recipe("colorize")
    raw = calibration.plain(recipe.raw)
    raw["film"]["toner_weights"] = {"sepia": 1.0}
    for step in raw["film"]["steps"]:
        step.update(FILM_HIDDEN.get(step["op"], {}))
    simulator = calibration.Simulator(calibration.FAMILIES["colorize"], recipe,
                                      calibration.clean_crops([], 64, FILM_SIDE, seed=1000), seed=1000)
    for index, (mono, _) in enumerate(simulator.outputs(raw)):
        Image.fromarray(mono).save(real / f"scan_{index:03d}.png")
    for name in ("coffee", "astronaut"):  # colour photos among the scans: skipped, reported
        Image.fromarray(load_embedded(name)).save(real / f"colour_{name}.jpg", quality=90)
    (real / "notes.txt").write_text("not an image")
    out = root / "my-film.yaml"
    result = calibration.calibrate(str(real), "colorize", str(out), samples=48, seed=0, passes=2)
    return root, result


def test_colorize_calibrated_is_closer_on_every_statistic(calibrated_film):
    _, result = calibrated_film
    assert set(result.distances_default) == set(estimators.FILM_STATISTICS)
    for name in estimators.FILM_STATISTICS:
        assert result.distances_calibrated[name] < result.distances_default[name], (name, result.distances_default,
                                                                                      result.distances_calibrated)


def test_colorize_report_skips_colour_photos_and_the_recipe_builds(calibrated_film):
    root, result = calibrated_film
    report = json.load(open(result.report_json))
    assert report["task"] == "colorize" and set(report["statistics"]) == set(estimators.FILM_STATISTICS)
    reasons = {item["path"].split("/")[-1]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"colour_coffee.jpg", "colour_astronaut.jpg", "notes.txt"}
    assert reasons["colour_coffee.jpg"].startswith("colour photo")
    assert any("2 colour photos skipped" in note for note in report["notes"])
    assert report["statistics"]["tint_hue"]["units"].startswith("degrees")
    text = open(result.recipe_path).read()
    assert text.startswith("# Calibrated by `pairgen calibrate`") and "Fitted on 64 real images" in text
    raw = yaml.safe_load(text)
    assert raw["task"] == "colorize"
    built = build(result.recipe_path, out=str(root / "shards"), limit=2, workers=1, crop=64, progress=False, log=False)
    assert (root / "shards" / "dataset.json").exists() and built is not None
    image = Image.open(result.report_png)
    assert image.format == "PNG"


def test_colour_photos_given_to_colorize_say_how_many_prints_are_needed(tmp_path):
    for name in ("coffee", "astronaut", "chelsea", "rocket"):
        Image.fromarray(load_embedded(name)).save(tmp_path / f"{name}.png")
    done = run_cli("calibrate", "--real", tmp_path, "--recipe", "colorize", "--out", tmp_path / "x.yaml")
    assert done.returncode == 2, done.stderr
    assert "0 usable images, calibration needs at least 8" in done.stderr and "colour photo" in done.stderr


def test_gray_photos_given_to_superres_are_measured_and_reported(tmp_path):
    for index, name in enumerate(("camera", "moon", "coffee")):
        image = load_embedded(name)
        Image.fromarray(image).save(tmp_path / f"{index}_{name}.png")
    real = calibration.measure_real(str(tmp_path), calibration.FAMILIES["superres"])
    assert len(real.statistics) == 3 and not real.skipped
    assert any("2 gray and 1 colour" in note for note in real.notes), real.notes
