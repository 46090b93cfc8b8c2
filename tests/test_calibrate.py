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
    simulator = calibration.Simulator(recipe, calibration.clean_crops([], count, 2 * LR, seed=1000), seed=1000)
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


def test_too_few_images_say_how_many_are_needed(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((32, 32, 3), 100 + index, np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UsageError, match="3 usable images, calibration needs at least 8"):
        calibration.calibrate(str(tmp_path), "superres", str(tmp_path / "x.yaml"))
    done = run_cli("calibrate", "--real", tmp_path, "--recipe", "superres", "--out", tmp_path / "x.yaml")
    assert done.returncode == 2 and "needs at least 8" in done.stderr and "readme.txt" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--recipe", "superres", "--out", "x.yaml"], "Missing option '--real'"),
    (["--real", "{tmp}", "--recipe", "edges", "--out", "x.yaml"], "superres recipes only"),
    (["--real", "{tmp}", "--recipe", "nope", "--out", "x.yaml"], "unknown recipe"),
    (["--real", "{tmp}/missing", "--recipe", "superres", "--out", "x.yaml"], "not a folder"),
    (["--real", "{tmp}", "--recipe", "superres", "--out", "x.txt"], "YAML file"),
])
def test_wrong_usage_exits_2(tmp_path, args, message):
    done = run_cli("calibrate", *[a.format(tmp=tmp_path) for a in args], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
