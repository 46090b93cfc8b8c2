"""The restore recipe: every stage aligned on one grid, damage_mask exactly the pixels the damage
changed, each damage op doing what it says, --scale and --set, one stage trained at a time."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import pairgen.ops as ops
from pairgen.api import build
from pairgen.errors import RecipeError
from pairgen.ops.resize import resize_image
from pairgen.steps import replay_ops
from pairgen.tasks.restore import LR_RESIZE

from conftest import run_cli
from test_colorize import read

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import fit  # noqa: E402

STAGES = ("damaged.png", "damage_mask.png", "mono.png", "color_lr.png", "hr.png")


@pytest.fixture(scope="module")
def built(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("restore") / "shards"
    build("restore", src=[str(photos)], out=str(out), crop=96, crops_per_image=3, scale=2, workers=1, progress=False,
          seed=5, shard_size=8, overrides=["damage.scratches.p=1", "damage.dust.p=1"])
    return out, *read(out)


def test_stages_have_their_sizes_and_the_card_says_the_chain(built):
    out, card, samples = built
    assert set(card["fields"]) == set(STAGES) | {"json"} and card["scale"] == 2
    assert card["preview"]["order"] == list(STAGES)
    for s in samples:
        assert s["hr.png"].shape == (96, 96, 3)
        assert s["damaged.png"].shape == s["mono.png"].shape == s["color_lr.png"].shape == (48, 48, 3)
        assert s["damage_mask.png"].shape == (48, 48) and set(np.unique(s["damage_mask.png"])) <= {0, 255}


def test_low_resolution_stages_sit_on_the_hr_grid(built):
    _, _, samples = built
    scores = {}
    for s in samples:
        expected = ops.to_uint8(resize_image(ops.to_float(s["hr.png"]), 48, 48, LR_RESIZE))
        assert np.array_equal(s["color_lr.png"], expected)
        # the film print and the damaged input show the scene at the same place: over all
        # samples, their edges match the colour image's best with no shift
        reference = edges(s["color_lr.png"])
        for name in ("mono.png", "damaged.png"):
            for shift, score in shift_scores(reference, edges(s[name]) * (s["damage_mask.png"] == 0)).items():
                scores[name, shift] = scores.get((name, shift), 0.0) + score
    for name in ("mono.png", "damaged.png"):
        mine = {shift: v for (n, shift), v in scores.items() if n == name}
        assert max(mine, key=mine.get) == (0, 0), name


def edges(image: np.ndarray) -> np.ndarray:
    lum = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lum = cv2.GaussianBlur(lum, (0, 0), 1.0)
    gx, gy = cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy)
    return (magnitude - magnitude.mean()) / (magnitude.std() + 1e-6)


def shift_scores(a: np.ndarray, b: np.ndarray, reach: int = 3) -> dict:
    m = reach
    return {(dx, dy): float((a[m:-m, m:-m] * np.roll(b, (dy, dx), axis=(0, 1))[m:-m, m:-m]).mean())
            for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)}


def test_damage_mask_is_exactly_where_the_damage_changed_the_pixels(built):
    _, _, samples = built
    covered = []
    for s in samples:
        record = s["json"]
        color_lr = resize_image(ops.to_float(s["hr.png"]), 48, 48, LR_RESIZE)
        mono_f = replay_ops(color_lr, record["film_ops"])
        assert np.array_equal(ops.to_uint8(mono_f), s["mono.png"])
        damaged = ops.to_uint8(replay_ops(mono_f, record["damage_ops"]))
        changed = np.any(damaged != s["mono.png"], axis=2)
        assert np.array_equal(s["damage_mask.png"] == 255, changed)
        assert np.array_equal(damaged[~changed], s["mono.png"][~changed])
        covered.append(changed.mean())
        assert record["summary"]["damaged_fraction"] == pytest.approx(changed.mean(), abs=1e-5)
    assert min(covered) > 0.0  # scratches and dust always ran
    assert max(covered) < 0.9


# ----------------------------------------------------------------------------- each damage op


def damage(name: str, seed: int = 0, size: int = 128, **config):
    op = ops.get(name)
    image = np.full((size, size, 3), 0.5, np.float32)
    params = op.sample(np.random.default_rng(seed), op.make_config(config), image.shape, ops.Context((size, size)))
    out = op.apply(image, params)
    return params, out, np.any(out != image, axis=2)


def test_scratches_are_long_thin_curves_of_the_drawn_length_and_width():
    params, out, changed = damage("scratches", count_range=[1, 1], width_range=[1.0, 1.0], length_range=[0.5, 0.5],
                                  bend_range=[0, 0], opacity_range=[1, 1])
    (x0, y0, x1, y1, *_rest), = params.scratches
    length = math.hypot(x1 - x0, y1 - y0)
    assert length == pytest.approx(0.5 * math.hypot(128, 128))
    inside = [(x0 + t * (x1 - x0), y0 + t * (y1 - y0)) for t in np.linspace(0.05, 0.95, 30)]
    on_image = [(x, y) for x, y in inside if 0 <= x < 128 and 0 <= y < 128]
    assert on_image and all(changed[int(y), int(x)] for x, y in on_image)
    visible = len(on_image) / len(inside) * length
    assert 0.8 * visible < changed.sum() < 3.5 * visible  # about one pixel wide (antialiased edges included)


def test_dust_specks_are_small_separate_spots_dark_and_white():
    params, out, changed = damage("dust", count_range=[40, 40], fibre_range=[0, 0], radius_range=[0.5, 1.5],
                                  dark_prob_range=[0.5, 0.5])
    n, labels, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    assert 25 <= n - 1 <= 40  # some specks touch
    assert np.median(stats[1:, cv2.CC_STAT_AREA]) <= 16
    assert out[changed].min() < 0.3 and out[changed].max() > 0.7


def test_folds_cross_the_print_with_a_crack_and_shaded_relief():
    params, out, changed = damage("folds", count_range=[1, 1], width_range=[2, 2], band_range=[3, 3], shade_range=[0.2, 0.2])
    x, y, angle, *_ = params.folds[0]
    d = (np.arange(128)[None, :] + 0.5 - x) * -math.sin(angle) + (np.arange(128)[:, None] + 0.5 - y) * math.cos(angle)
    assert changed[np.abs(d) < 1].all() and not changed[np.abs(d) > 12].any()
    on_crack = out[np.abs(d) < 0.5].mean()
    shadow, lit = out[(d > 1.5) & (d < 4)].mean(), out[(d < -1.5) & (d > -4)].mean()
    assert on_crack > 0.6 and shadow < 0.5 < lit


def test_cracks_are_thin_connected_lines():
    _, out, changed = damage("cracks", count_range=[2, 2], steps_range=[30, 30], branch_prob=0.3, width_range=[0.6, 0.6])
    assert 60 < changed.sum() and changed.mean() < 0.2
    n, _ = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
    assert n - 1 <= 2 + 1  # two cracks, their branches attached (one may leave the image and come back)
    core = cv2.erode(changed.astype(np.uint8), np.ones((3, 3), np.uint8))
    assert core.sum() < 0.5 * changed.sum()  # lines, not blobs


def test_stains_are_yellow_brown_blobs():
    _, out, changed = damage("stains", count_range=[1, 1], opacity_range=[0.5, 0.5], radius_range=[0.2, 0.2])
    stained = out[changed]
    assert 0.02 < changed.mean() < 0.5
    assert np.all(stained[:, 2] <= stained[:, 0]) and stained[:, 2].mean() < 0.48  # blue absorbed most


def test_torn_corners_show_the_background_in_the_corner():
    params, out, changed = damage("torn_corners", count_range=[1, 1], size_range=[0.25, 0.25], fill_range=[0.0, 0.0])
    corner = params.corners[0][0]
    y, x = {0: (0, 0), 1: (0, 127), 2: (127, 127), 3: (127, 0)}[corner]
    assert out[y, x].max() < 0.02 and changed[y, x]
    assert out[64, 64, 0] == 0.5  # the middle is untouched


# ----------------------------------------------------------------------------- options, errors, trainer


def test_scale_option_and_damage_overrides(photos, tmp_path):
    out = tmp_path / "x4"
    result = run_cli("build", "restore", "--src", photos, "--out", out, "--scale", "4", "--crop", "64", "--limit", "3",
                     "--workers", "1", "--set", "damage.tears.p=1")
    assert result.returncode == 0, result.stderr
    card, samples = read(out)
    assert card["scale"] == 4 and samples[0]["damaged.png"].shape == (16, 16, 3)
    assert all(any(e["op"] == "torn_corners" for e in s["json"]["damage_ops"]) for s in samples)
    bad = run_cli("build", "restore", "--src", photos, "--out", tmp_path / "bad", "--set", "damage.0.op=mould")
    assert bad.returncode == 2 and "scratches" in bad.stderr and "torn_corners" in bad.stderr
    odd = run_cli("build", "restore", "--src", photos, "--out", tmp_path / "odd", "--scale", "4", "--crop", "66")
    assert odd.returncode == 2 and "multiple" in odd.stderr


def test_an_unknown_emulsion_in_restore_names_the_allowed_ones(photos, tmp_path):
    with pytest.raises(RecipeError, match="ilford_hp5_plus"):
        build("restore", src=[str(photos)], out=str(tmp_path / "e"), overrides=["film.emulsion=velvia"], progress=False)


def test_trains_one_stage_chosen_on_the_command_line(built, tmp_path, one_torch_thread):
    out, _, _ = built
    args = [str(out), "--out", str(tmp_path / "run"), "--input", "damaged", "--target", "mono", "--crop", "32", "--depth", "4",
            "--width", "8", "--batch-size", "2", "--no-progress", "--val-samples", "2", "--num-workers", "0", "--steps", "2",
            "--eval-every", "2", "--log-every", "1"]
    assert fit.main(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r.get("split") == "val"][-1]
    assert np.isfinite(val["psnr"]) and np.isfinite(val["baseline_psnr"])  # baseline: the damaged input itself
    assert fit.main([str(out), "--out", str(tmp_path / "bad"), "--target", "sky", "--steps", "1", "--no-progress"]) != 0


# ----------------------------------------------------------------------------- fast paths = plain definitions
# Each damage op as first written: full-image canvases, coverage and blends, one scalar draw at a time.
# The ops compute only the boxes their damage can reach, draw numbers in blocks from the same stream and
# batch curves; these check that they give the same bytes.

S, SHIFT = 4, 4


def plain_points(xy):
    return np.rint(np.asarray(xy) * S * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def plain_coverage(canvas, h, w):
    cover = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(h, w) * np.float32(1 / 255)
    cover[cover < 1 / 64] = 0.0
    return cover


def plain_paint(image, coverage, value):
    out = image.copy()
    hit = coverage > 0
    a = coverage[hit][:, None]
    out[hit] = image[hit] * (1.0 - a) + np.float32(value) * a
    return np.clip(out, 0.0, 1.0)


def plain_bezier(p0, p1, control, n=48):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(control) + t**2 * np.asarray(p1)


def plain_polyline(canvas, xy, width_px):
    cv2.polylines(canvas, [plain_points(xy)], False, 255, max(1, int(round(width_px * S))), cv2.LINE_AA, SHIFT)


def plain_scratches(image, p):
    h, w = image.shape[:2]
    out = image
    for x0, y0, x1, y1, cx, cy, width_px, value, opacity in p.scratches:
        canvas = np.zeros((h * S, w * S), np.uint8)
        plain_polyline(canvas, plain_bezier((x0, y0), (x1, y1), (cx, cy)), width_px)
        out = plain_paint(out, plain_coverage(canvas, h, w) * np.float32(opacity), value)
    return out


def plain_dust(image, p):
    h, w = image.shape[:2]
    rng = np.random.default_rng(p.seed)
    dark, bright = np.zeros((h * S, w * S), np.uint8), np.zeros((h * S, w * S), np.uint8)
    for _ in range(p.specks):
        centre = plain_points([rng.uniform(0, w), rng.uniform(0, h)])[0, 0]
        radius = int(round(rng.uniform(p.radius_min, p.radius_max) * S * (1 << SHIFT)))
        target = dark if rng.random() < p.dark_prob else bright
        cv2.circle(target, (int(centre[0]), int(centre[1])), max(radius, 1 << SHIFT), 255, -1, cv2.LINE_AA, SHIFT)
    for _ in range(p.fibres):
        x, y, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-math.pi, math.pi)
        length = rng.uniform(3, 15)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        control = (x + rng.normal(0, length / 3), y + rng.normal(0, length / 3))
        plain_polyline(dark if rng.random() < p.dark_prob else bright, plain_bezier((x, y), end, control, 16),
                       rng.uniform(0.4, 1.0))
    return plain_paint(plain_paint(image, plain_coverage(dark, h, w), 0.08), plain_coverage(bright, h, w), 0.95)


def plain_cracks(image, p):
    h, w = image.shape[:2]
    rng = np.random.default_rng(p.seed)
    canvas = np.zeros((h * S, w * S), np.uint8)
    walks = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-math.pi, math.pi), p.steps) for _ in range(p.cracks)]
    while walks:
        x, y, heading, steps = walks.pop()
        path = [(x, y)]
        for _ in range(steps):
            heading += rng.normal(0.0, 0.5)
            x, y = x + p.step_px * math.cos(heading), y + p.step_px * math.sin(heading)
            path.append((x, y))
            if rng.random() < p.branch_prob and steps > 4:
                walks.append((x, y, heading + rng.choice((-1, 1)) * rng.uniform(0.5, 1.2), steps // 3))
        plain_polyline(canvas, np.asarray(path), p.width_px)
    return plain_paint(image, plain_coverage(canvas, h, w), p.value)


def plain_folds(image, p):
    from pairgen.ops.film import linear_to_srgb, srgb_to_linear
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    linear = srgb_to_linear(image)
    touched = np.zeros((h, w), bool)
    for x, y, angle, width_px, band_px, shade in p.folds:
        d = (xs - x) * np.float32(-math.sin(angle)) + (ys - y) * np.float32(math.cos(angle))
        relief = np.maximum(np.exp(-np.abs(d) / np.float32(band_px)) - np.float32(0.1), 0.0) / np.float32(0.9)
        factor = np.where(d > 0, 1.0 - shade * relief, 1.0 + 0.5 * shade * relief).astype(np.float32)
        linear = linear * factor[..., None]
        crack = np.clip(width_px / 2 + 0.5 - np.abs(d), 0.0, 1.0) * 0.85
        linear = linear * (1 - crack[..., None]) + 0.8 * crack[..., None]
        touched |= relief > 0
    return np.clip(np.where(touched[..., None], linear_to_srgb(linear), image), 0.0, 1.0)


def plain_stains(image, p):
    from pairgen.ops.film import linear_to_srgb, srgb_to_linear
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    linear = srgb_to_linear(image)
    touched = np.zeros((h, w), bool)
    for cx, cy, radius, opacity, tide, tr, tg, tb, seed in p.stains:
        rng = np.random.default_rng(int(seed))
        theta = np.arctan2(ys - cy, xs - cx)
        outline = np.ones_like(theta)
        for k in range(2, 6):
            outline += np.float32(rng.uniform(0, 0.25 / k)) * np.cos(k * theta + np.float32(rng.uniform(0, 2 * math.pi)))
        r = np.hypot(xs - cx, ys - cy) / (np.float32(max(radius, 0.5)) * outline)
        alpha = np.clip((1.0 - r) * 4.0, 0.0, 1.0) * (0.6 + 0.4 * r)
        if tide:
            alpha = alpha + 1.5 * np.exp(-(((r - 1.0) / 0.04) ** 2))
        alpha = np.clip(alpha * np.float32(opacity), 0.0, 1.0).astype(np.float32)
        alpha[alpha < 1 / 64] = 0.0
        linear = linear * (1.0 - alpha[..., None] * (1.0 - np.array([tr, tg, tb], np.float32)))
        touched |= alpha > 0
    return np.clip(np.where(touched[..., None], linear_to_srgb(linear), image), 0.0, 1.0)


def plain_torn_corners(image, p):
    h, w = image.shape[:2]
    out = image
    for corner, size_px, fill, seed in p.corners:
        rng = np.random.default_rng(int(seed))
        angles = np.linspace(0.0, math.pi / 2, 12)
        radius = size_px * (1.0 + rng.uniform(-0.25, 0.25, angles.size))
        sx, sy = (1, 1) if corner == 0 else (-1, 1) if corner == 1 else (-1, -1) if corner == 2 else (1, -1)
        ox, oy = (0 if sx > 0 else w), (0 if sy > 0 else h)
        edge = np.stack([ox + sx * radius * np.cos(angles), oy + sy * radius * np.sin(angles)], axis=1)
        missing, fibres = np.zeros((h * S, w * S), np.uint8), np.zeros((h * S, w * S), np.uint8)
        cv2.fillPoly(missing, [plain_points(np.concatenate([[[ox, oy]], edge], axis=0))], 255, cv2.LINE_AA, SHIFT)
        plain_polyline(fibres, edge, 1.0)
        out = plain_paint(out, plain_coverage(fibres, h, w) * np.float32(0.7), 0.92)
        out = plain_paint(out, plain_coverage(missing, h, w), fill)
    return out


PLAIN = {"scratches": plain_scratches, "dust": plain_dust, "cracks": plain_cracks, "folds": plain_folds,
         "stains": plain_stains, "torn_corners": plain_torn_corners}
CONFIGS = {  # the restore recipe's, the defaults, and wide ones (folds' crack wider than its relief, big tide-lined stains)
    "scratches": [{"count_range": [1, 6], "width_range": [0.4, 1.5]}, {}, {"width_range": [3, 6], "opacity_range": [1, 1]}],
    "dust": [{"count_range": [3, 60], "radius_range": [0.3, 1.2]}, {}, {"fibre_range": [4, 8], "radius_range": [2, 4]}],
    "cracks": [{}, {"width_range": [2, 3], "step_px_range": [5, 9]}],
    "folds": [{}, {"width_range": [6, 9], "band_range": [0.1, 0.5]}, {"count_range": [3, 3], "band_range": [5, 9]}],
    "stains": [{}, {"radius_range": [0.3, 0.6], "opacity_range": [0.9, 1.0], "tide_line_prob": 1.0}],
    "torn_corners": [{"size_range": [0.08, 0.3]}, {"count_range": [4, 4], "size_range": [0.4, 0.6]}],
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_damage_ops_give_the_bytes_of_their_plain_definitions(name):
    op = ops.get(name)
    for shape in ((64, 64, 3), (48, 40, 3), (16, 16, 3)):
        image = np.random.default_rng(shape[1]).random(shape, dtype=np.float32)
        for config in CONFIGS[name]:
            for seed in range(25):
                params = op.sample(np.random.default_rng(seed), op.make_config(config), shape, ops.Context(shape[:2]))
                fast, plain = op.apply(image, params), PLAIN[name](image, params)
                assert fast.dtype == np.float32 and np.array_equal(fast, plain), (name, shape, config, seed)
