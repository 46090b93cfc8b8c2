"""The edges task: edge maps sit on the image's true edges (no shift, no flip), are binary, follow
the recipe's detector choice, and every draw is recorded (replay is in tests/test_tasks.py)."""
import json
import math

import cv2
import numpy as np
import pytest
import webdataset as wds

from pairgen import ops
from pairgen.api import build, make_task
from pairgen.errors import RecipeError
from pairgen.rng import sample_rng
from pairgen.tasks.base import SkipSample
from pairgen.tasks.edges import quantize


def known_edges(height=96, width=128):
    """An asymmetric picture of flat regions (so any shift or mirror shows) and its label map."""
    labels = np.zeros((height, width), np.int32)
    labels[10:40, 15:70] = 1
    cv2.circle(labels, (95, 60), 22, 2, -1)
    cv2.fillPoly(labels, [np.array([[20, 85], [60, 55], [65, 90]])], 3)
    # Detectors see luma (BT.601): neighbouring regions differ by >= 0.3 in it (a colour edge
    # of equal luma is invisible to them, as to every gray-based edge detector).
    colors = np.array([[0.5, 0.5, 0.5], [1.0, 0.95, 0.85], [0.3, 0.12, 0.1], [0.75, 0.9, 0.95]], np.float32)
    return np.ascontiguousarray(colors[labels]), labels


def true_edge_pixels(labels):
    """Pixels with a 4-neighbour of another region (both sides of every boundary)."""
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    return edge


def within(mask, radius):
    size = 2 * radius + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


DETECTOR_CASES = [
    ("canny", {"auto_prob": 1.0}, 1),
    ("canny", {"auto_prob": 0.0}, 1),
    ("sobel_edges", {}, 1),
    ("xdog", {}, None),  # lines on the dark side, about 2 k sigma wide: checked at that radius
]


@pytest.mark.parametrize("name, settings, radius", DETECTOR_CASES)
def test_edges_sit_on_the_true_edges(name, settings, radius):
    image, labels = known_edges()
    truth = true_edge_pixels(labels)
    op = ops.REGISTRY[name]
    config = op.make_config(settings)
    for seed in range(8):
        params = op.sample(np.random.default_rng(seed), config, image.shape, ops.Context(image.shape[:2]))
        found = op.apply(image, params)[..., 0] > 0.5
        r = radius or math.ceil(2 * params.k * params.sigma)
        assert found.sum() > 0.3 * truth.sum(), (name, params)
        stray = found & ~within(truth, r)
        assert not stray.any(), (name, params, np.argwhere(stray)[:5])
        recall = (truth & within(found, r)).sum() / truth.sum()
        assert recall > 0.9, (name, params, recall)
        # the same map mirrored or moved by 3 px is caught by the same check
        assert (np.fliplr(found) & ~within(truth, r)).any() and (np.roll(found, 3, axis=1) & ~within(truth, r)).any()


def test_cleanup_ops():
    edges = np.zeros((20, 20), bool)
    edges[5, 2:15] = True  # a 13-px line
    edges[15, 15] = True  # a speck
    rgb = np.repeat(edges.astype(np.float32)[..., None], 3, axis=2)
    remove = ops.REGISTRY["remove_small_edges"]
    kept = remove.apply(rgb, remove.Params(min_size=3))[..., 0] > 0.5
    assert kept[5, 2:15].all() and not kept[15, 15] and kept.sum() == 13
    thicken = ops.REGISTRY["thicken_edges"]
    thick = thicken.apply(rgb, thicken.Params(radius=1))[..., 0] > 0.5
    assert thick[4:7, 2:15].all() and thick.sum() == 3 * 13 + 2 + 5  # radius 1: a cross at each pixel


def test_quantize_leaves_no_gray():
    soft = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert set(np.unique(quantize(soft))) <= {0, 255}


def test_detectors_are_drawn_by_their_weights():
    _, task = make_task("edges", crop=32)
    image = (known_edges(32, 32)[0] * 255).astype(np.uint8)
    draws = [task.make_crop(image, sample_rng(0, f"draw{i}"), {}) for i in range(400)]
    assert all(set(np.unique(d["edges.png"])) <= {0, 255} for d in draws)
    counts = {}
    for i in range(400):
        record = {}
        task.make_crop(image, sample_rng(0, f"draw{i}"), record)
        counts[record["detector"]] = counts.get(record["detector"], 0) + 1
    for name, weight in zip(task.chosen, task.weights):
        assert abs(counts.get(name, 0) / 400 - weight) < 4 * math.sqrt(weight * (1 - weight) / 400), (name, counts)


def test_build_with_one_detector_records_it(tmp_path):
    out = tmp_path / "edges"
    build("edges", out=str(out), crop=64, limit=6, workers=1, progress=False, overrides=["detector=xdog"])
    card = json.loads((out / "dataset.json").read_text())
    assert card["recipe"]["detector"] == "xdog" and card["fields"]["edges.png"]["view"] == "gray"
    samples = list(wds.WebDataset([str(out / r["file"]) for r in card["shards"]], shardshuffle=False).decode())
    assert len(samples) == 6
    for sample in samples:
        record = sample["json"]
        assert record["detector"] == "xdog"
        if record["edge_fit"]["fallback"] is None:  # a nearly blank crop falls back to low-threshold Canny
            assert [e["op"] for e in record["edge_ops"]][0] == "xdog"
            assert set(record["edge_ops"][0]["params"]) == {"sigma", "k", "p", "eps"}
            assert 0.6 <= record["edge_ops"][0]["params"]["sigma"] <= 1.2


def test_recipe_errors_name_the_detectors(tmp_path):
    with pytest.raises(RecipeError, match="detector 'hed' is not one of the recipe's detectors \\(canny, multiscale, xdog, sobel, scribble\\)"):
        make_task("edges", overrides=["detector=hed"])
    with pytest.raises(RecipeError, match="detector_weights"):
        make_task("edges", overrides=["detector_weights={nope: 1}"])


# ----------------------------------------------------------------------------- the recipe's pipelines

# Detector pipeline -> how far (pixels) from a true edge its pixels may lie. XDoG inks the dark
# side of an edge, about 2 k sigma wide (its radius comes from the drawn sigma); scribbles are
# thickened and blurred on purpose.
PIPELINE_RADIUS = {"canny": 1, "multiscale": 1, "sobel": 1, "xdog": None, "scribble": 5}


@pytest.mark.parametrize("name", sorted(PIPELINE_RADIUS))
def test_recipe_pipelines_sit_on_the_true_edges(name):
    image, labels = known_edges()
    truth = true_edge_pixels(labels)
    crop = (image * 255 + 0.5).astype(np.uint8)
    _, task = make_task("edges", crop=0, overrides=[f"detector={name}"])
    for seed in range(10):
        record = {}
        found = task.make_crop(crop, sample_rng(0, f"{name}{seed}"), record)["edges.png"] > 0
        radius = PIPELINE_RADIUS[name] or math.ceil(2 * record["edge_ops"][0]["params"]["k"] * record["edge_ops"][0]["params"]["sigma"])
        stray = found & ~within(truth, radius)
        assert not stray.any(), (name, record["edge_ops"], np.argwhere(stray)[:5])
        recall = (truth & within(found, radius)).sum() / truth.sum()
        assert recall > (0.6 if name == "scribble" else 0.9), (name, recall, record["edge_ops"])


def test_every_detector_writes_a_binary_map(tmp_path):
    out = tmp_path / "edges"
    build("edges", out=str(out), crop=64, crops_per_image=2, limit=30, workers=1, progress=False)
    card = json.loads((out / "dataset.json").read_text())
    samples = list(wds.WebDataset([str(out / r["file"]) for r in card["shards"]], shardshuffle=False).decode())
    seen = set()
    for sample in samples:
        edges = cv2.imdecode(np.frombuffer(sample["edges.png"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert edges.ndim == 2 and set(np.unique(edges)) <= {0, 255}, sample["json"]["detector"]
        assert (edges == 255).mean() >= 0.002 or sample["json"]["edge_fit"]["fallback"]
        seen.add(sample["json"]["detector"])
    assert len(seen) >= 4, seen


def test_empty_maps_are_redrawn_then_lowered_and_flat_crops_skipped():
    _, task = make_task("edges", crop=0, overrides=["detector=xdog"])
    faint = np.full((48, 48, 3), 120, np.uint8)
    faint[:, 24:] = 124  # a 4-level step: XDoG draws nothing, a low-threshold Canny finds it
    record = {}
    fields = task.make_crop(faint, sample_rng(0, "faint"), record)
    assert record["edge_fit"] == {"draws": 5, "fallback": {"canny_low": record["edge_ops"][0]["params"]["low"]}}
    columns = np.nonzero((fields["edges.png"] > 0).any(axis=0))[0]
    assert set(columns) <= {23, 24}  # on the step, nowhere else
    assert np.array_equal(task.replay_crop(faint, record)["edges.png"], fields["edges.png"])
    with pytest.raises(SkipSample, match="flat"):
        task.make_crop(np.full((32, 32, 3), 90, np.uint8), sample_rng(0, "flat"), {})


def test_scribble_and_thinning_ops():
    edges = np.zeros((40, 40), bool)
    edges[10:16, 5:35] = True  # a 6-px-wide bar
    rgb = np.repeat(edges.astype(np.float32)[..., None], 3, axis=2)
    thin = ops.REGISTRY["thin_edges"]
    line = thin.apply(rgb, thin.Params(0))[..., 0] > 0.5
    assert line[:, 8:32].sum(axis=0).tolist() == [1] * 24  # one pixel wide, inside the bar
    assert not (line & ~edges).any()
    blur = ops.REGISTRY["blur_threshold_edges"]
    soft = blur.apply(rgb, blur.Params(sigma=2.0, threshold=0.3))
    assert set(np.unique(soft)) <= {0.0, 1.0} and (soft[..., 0] > 0.5).sum() > 0.8 * edges.sum()
    multi = ops.REGISTRY["canny_multiscale"]
    image, labels = known_edges()
    both = multi.apply(image, multi.Params((1.0, 2.0), 0.33))[..., 0] > 0.5
    for sigma in (1.0, 2.0):  # the union holds every scale's map
        assert not ((multi.apply(image, multi.Params((sigma,), 0.33))[..., 0] > 0.5) & ~both).any()


@pytest.mark.parametrize("name", ["canny", "canny_multiscale", "xdog", "sobel_edges", "remove_small_edges",
                                  "thicken_edges", "blur_threshold_edges", "thin_edges"])
def test_the_gray_fast_path_gives_the_same_map(name):
    image, _ = known_edges(48, 64)
    gray = cv2.cvtColor(ops.to_uint8(image), cv2.COLOR_RGB2GRAY)
    op = ops.REGISTRY[name]
    if name in ("canny", "canny_multiscale", "xdog", "sobel_edges"):
        start_rgb, start_gray = image, gray
    else:  # clean-up ops take an edge map
        found = ops.REGISTRY["canny"].apply(gray, ops.REGISTRY["canny"].Params("auto", None, None, 0.33, 0.0))
        start_rgb, start_gray = np.repeat(found.astype(np.float32)[..., None], 3, axis=2), found
    for seed in range(4):
        params = op.sample(np.random.default_rng(seed), op.make_config({}), image.shape, ops.Context(image.shape[:2]))
        assert np.array_equal(quantize(op.apply(start_rgb, params)), quantize(op.apply(start_gray, params))), (name, params)


def test_thinning_matches_scikit_image():
    from skimage.morphology import thin

    from pairgen.ops.edges import thin_map

    rng = np.random.default_rng(3)
    for trial in range(6):
        blobs = cv2.GaussianBlur(rng.random((40, 56)).astype(np.float32), (0, 0), 2.0)
        shape = blobs > np.quantile(blobs, 0.6)
        for iterations in (0, 1, 2):
            assert np.array_equal(thin_map(shape, iterations), thin(shape, max_num_iter=iterations or None)), (trial, iterations)


def test_histogram_median_is_numpys():
    from pairgen.ops.edges import _median8

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (2, 1), (5, 5), (4, 6), (3, 7), (64, 64)]:
        for top in (2, 50, 256):
            gray = rng.integers(0, top, shape).astype(np.uint8)
            assert _median8(gray) == float(np.median(gray)), (shape, top)
