"""The colorize recipe built for real and read back with webdataset: mono.png one-hued (exactly
gray when untoned and unyellowed, the recorded toner's hue when toned), --set film.* choices,
errors that name the allowed values."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import webdataset as wds
from skimage import color

from pairgen.api import build
from pairgen.errors import RecipeError

from conftest import run_cli


def rgb(image: np.ndarray) -> np.ndarray:
    return image[..., ::-1] if image.ndim == 3 else image  # OpenCV decodes BGR


def read(out):
    card = json.loads((out / "dataset.json").read_text())
    urls = [str(out / s["file"]) for s in card["shards"]]
    samples = []
    for s in wds.WebDataset(urls, shardshuffle=False):
        decoded = {k: rgb(cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_UNCHANGED)) for k, v in s.items() if k.endswith("png")}
        decoded["json"] = json.loads(s["json"])
        samples.append(decoded)
    return card, samples


@pytest.fixture(scope="module")
def built(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("colorize") / "shards"
    build("colorize", src=[str(photos)], out=str(out), crop=64, crops_per_image=6, workers=1, progress=False, seed=3)
    return read(out)


def ran(record, label):
    return any(e["label"] == label for e in record["film_ops"])


def test_card_fields_say_mono_is_rgb_so_tints_keep_their_hue(built):
    card, samples = built
    assert set(card["fields"]) == {"mono.png", "color.png", "json"}
    assert card["fields"]["mono.png"]["role"] == "input" and card["fields"]["color.png"]["role"] == "target"
    assert "hue" in card["fields"]["mono.png"]["meaning"] and "8-bit" in card["fields"]["mono.png"]["meaning"]
    assert all(s["mono.png"].shape == (64, 64, 3) and s["mono.png"].dtype == np.uint8 for s in samples)


def test_untoned_prints_are_exactly_gray_and_toned_prints_have_one_hue(built):
    _, samples = built
    untoned = toned = 0
    for s in samples:
        record, mono = s["json"], s["mono.png"]
        toning = next(e for e in record["film_ops"] if e["op"] == "toning")["params"]
        if toning["toner"] == "none" and not ran(record, "yellowing"):
            untoned += 1
            assert np.array_equal(mono[..., 0], mono[..., 1]) and np.array_equal(mono[..., 0], mono[..., 2])
        elif toning["toner"] != "none" and not ran(record, "yellowing"):
            lab = color.rgb2lab(mono)
            chroma = np.hypot(lab[..., 1], lab[..., 2])
            tinted = chroma > 4.0  # below that the 8-bit rounding decides the hue
            if tinted.sum() < 50:
                continue
            toned += 1
            hues = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))[tinted] % 360
            spread = np.abs((hues - toning["hue"] + 180) % 360 - 180)
            assert np.percentile(spread, 95) < 8.0, (toning, np.percentile(spread, 95))
            assert np.all(mono.max(axis=2)[tinted] < 255) and np.all(mono.min(axis=2)[tinted] > 0)  # no clipped channel
    assert untoned >= 2 and toned >= 2, (untoned, toned)


def test_every_sample_records_its_film_and_every_drawn_parameter(built):
    _, samples = built
    for s in samples:
        record = s["json"]
        assert set(record["film"]) == {"emulsion", "illuminant", "toner"}
        labels = [e["label"] for e in record["film_ops"]]
        assert labels[0] == "sensitivity" and {"negative", "print", "toning"} <= set(labels)
        sensitivity = record["film_ops"][0]["params"]
        assert sensitivity["emulsion"] == record["film"]["emulsion"] and len(sensitivity["weights"]) == 3
    assert len({s["json"]["film"]["emulsion"] for s in samples}) >= 4  # the recipe's mix is drawn


def test_set_film_emulsion_and_toner(photos, tmp_path):
    out = tmp_path / "ortho"
    result = run_cli("build", "colorize", "--src", photos, "--out", out, "--crop", "64", "--limit", "4", "--workers", "1",
                     "--set", "film.emulsion=orthochromatic", "--set", "film.toner=none", "--set", "film.steps.yellowing.p=0")
    assert result.returncode == 0, result.stderr
    _, samples = read(out)
    for s in samples:
        assert s["json"]["film"] == {"emulsion": "orthochromatic", "illuminant": s["json"]["film"]["illuminant"], "toner": "none"}
        mono = s["mono.png"]
        assert np.array_equal(mono[..., 0], mono[..., 2])


def test_orthochromatic_prints_red_darker_than_panchromatic(photos, tmp_path):
    # the same crops (coffee's red cup, the astronaut's suit), only the emulsion differs
    crops, checked = {}, False
    for emulsion in ("orthochromatic", "panchromatic"):
        out = tmp_path / emulsion
        build("colorize", src=[str(photos)], out=str(out), crop=64, crops_per_image=3, workers=1, progress=False,
              overrides=[f"film.emulsion={emulsion}", "film.toner=none", "film.illuminant=daylight",
                         *(f"film.steps.{label}.p=0" for label in ("softness", "vignetting", "uneven", "grain", "fading", "yellowing"))])
        crops[emulsion] = read(out)[1]
    for ortho, pan in zip(crops["orthochromatic"], crops["panchromatic"]):
        colour = ortho["color.png"].astype(np.int16)
        red = (colour[..., 0] > 120) & (colour[..., 1] < 70) & (colour[..., 2] < 70)
        if red.sum() < 30:
            continue
        assert ortho["mono.png"][red, 0].mean() < pan["mono.png"][red, 0].mean() - 10
        checked = True
    assert checked, "no crop with a red area"


@pytest.mark.parametrize("setting,allowed", [("film.emulsion=agfa_magic", "orthochromatic"),
                                             ("film.toner=purple", "cyanotype"),
                                             ("film.illuminant=moonlight", "tungsten"),
                                             ("film.grain=5", "emulsion_weights")])
def test_unknown_film_names_are_usage_errors_naming_the_allowed_ones(photos, tmp_path, setting, allowed):
    result = run_cli("build", "colorize", "--src", photos, "--out", tmp_path / "x", "--set", setting)
    assert result.returncode == 2 and allowed in result.stderr, result.stderr
    with pytest.raises(RecipeError, match=allowed):
        build("colorize", src=[str(photos)], out=str(tmp_path / "y"), overrides=[setting], progress=False)


def test_film_steps_must_start_with_the_emulsion(photos, tmp_path):
    with pytest.raises(RecipeError, match="film_sensitivity"):
        build("colorize", src=[str(photos)], out=str(tmp_path / "z"), overrides=["film.steps.sensitivity.p=0.5"], progress=False)
