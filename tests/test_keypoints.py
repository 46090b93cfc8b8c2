"""Keypoint heatmaps: unbiased peaks at any stride, image / points / heatmaps moving together
through every augmentation, flips that swap left and right, points leaving the crop, and the
annotations left out by rule."""
import io
import json
import tarfile

import cv2
import numpy as np
import pytest

from pairgen.api import build
from pairgen.errors import PairgenError
from pairgen.tasks.keypoints import flip_permutation, heatmap_peak, render_heatmaps

NAMES = ["nose", "left_eye", "right_eye", "left_hand", "right_hand"]
# source keypoints (COCO integer pixel indices) of one person in a 96x96 image
POINTS = [(48, 30), (60, 24), (36, 24), (66, 62), (28, 60)]
COLOURS = {"left": (255, 0, 0), "right": (0, 0, 255), "": (0, 255, 0)}
AUGMENTATIONS = {
    "none": {},
    "flip": {"flip_prob": 1.0},
    "rotate": {"rotate_prob": 1.0, "rotate_factor": 80.0},
    "shift": {"shift_prob": 1.0},
    "scale": {"scale_range": [0.5, 1.5]},
}
STILL = {"padding": 1.25, "shift_prob": 0.0, "scale_range": [1.0, 1.0], "rotate_prob": 0.0, "flip_prob": 0.0}


def side_of(name):
    return name.split("_")[0] if "_" in name else ""


def person_image():
    """Gray background, a colour blob (Gaussian, sigma 1.5 px) centred on each keypoint's pixel."""
    yy, xx = np.mgrid[0:96, 0:96] + 0.5
    image = np.full((96, 96, 3), 40.0)
    for name, (x, y) in zip(NAMES, POINTS):
        blob = np.exp(-((xx - x - 0.5) ** 2 + (yy - y - 0.5) ** 2) / (2 * 1.5**2))[..., None]
        image = image * (1 - blob) + np.asarray(COLOURS[side_of(name)], float) * blob
    return np.rint(image).astype(np.uint8)


def write_set(folder, annotations=None, categories=None):
    cv2.imwrite(str(folder / "person.png"), person_image()[:, :, ::-1])
    keypoints = [v for x, y in POINTS for v in (x, y, 2)]
    annotations = annotations or [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 5,
                                   "keypoints": keypoints, "bbox": [24, 18, 48, 50]}]
    categories = categories or [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": [[1, 2], [1, 3]]}]
    path = folder / "kp.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "person.png", "width": 96, "height": 96}],
                                "annotations": annotations, "categories": categories}))
    return path


def write_recipe(folder, stride, geometry, photometric=False):
    lines = ["task: keypoints", f"stride: {stride}", "sigma: 2.0", "heatmap_dtype: float32",
             f"geometry: {json.dumps({**STILL, **geometry})}"]
    if photometric:
        lines.append("photometric: [{op: photometric_distortion, p_each: 1.0}]")
    path = folder / f"kp_{stride}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def samples_of(out):
    found = []
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as archive:
            fields = {}
            for member in archive:
                key, field = member.name.split(".", 1)
                fields.setdefault(key, {})[field] = archive.extractfile(member).read()
        for key, f in sorted(fields.items()):
            image = cv2.imdecode(np.frombuffer(f["image.png"], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
            found.append((image, np.load(io.BytesIO(f["heatmaps.npy"])), json.loads(f["json"])))
    return found


@pytest.mark.parametrize("stride", [1, 4])
def test_heatmap_peaks_sit_on_the_keypoint_at_any_stride(stride):
    rng = np.random.default_rng(stride)
    points = np.column_stack([rng.uniform(8, 56, 40), rng.uniform(8, 56, 40), np.full(40, 2)])
    for dtype, tolerance in (("float32", 1e-3), ("float16", 0.05)):
        heatmaps = render_heatmaps(points, 64 // stride, 64 // stride, stride, 2.0, dtype)
        for (x, y, _), heatmap in zip(points, heatmaps):
            px, py = heatmap_peak(heatmap)
            assert abs(px * stride - x) < tolerance and abs(py * stride - y) < tolerance, (x, y, px * stride, py * stride)
    # the classic int(x + 0.5) centre is off by up to half a heatmap pixel: this test would see it
    x = 10.3
    classic = np.exp(-((np.arange(16) + 0.5 - int(x / 4 + 0.5)) ** 2) / 8.0)
    assert abs(heatmap_peak(np.outer(classic, classic))[0] * 4 - x) > 0.5


def test_keypoints_follow_coco_plus_half_without_augmentation(tmp_path):
    annotations = write_set(tmp_path)
    recipe = write_recipe(tmp_path, 1, {"padding": 1.0})
    data = json.loads(json.dumps(json.loads(annotations.read_text())))
    data["annotations"][0]["bbox"] = [0, 0, 96, 96]
    annotations.write_text(json.dumps(data))
    build(str(recipe), src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out"), progress=False,
          log=False, crop=96, crops_per_image=1)
    image, heatmaps, record = samples_of(tmp_path / "out")[0]
    assert np.array_equal(image, person_image())  # the identity warp
    assert record["keypoints"] == [[x + 0.5, y + 0.5, 2] for x, y in POINTS]
    assert record["keypoint_names"] == NAMES and record["skeleton"] == [[1, 2], [1, 3]]


@pytest.mark.parametrize("stride", [1, 4])
@pytest.mark.parametrize("augmentation", sorted(AUGMENTATIONS) + ["photometric"])
def test_image_points_and_heatmaps_move_together(tmp_path, stride, augmentation):
    annotations = write_set(tmp_path)
    recipe = write_recipe(tmp_path, stride, AUGMENTATIONS.get(augmentation, {}), photometric=augmentation == "photometric")
    build(str(recipe), src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out"), progress=False,
          log=False, crop=64, crops_per_image=6)
    samples = samples_of(tmp_path / "out")
    assert len(samples) == 6
    for image, heatmaps, record in samples:
        assert heatmaps.shape == (5, 64 // stride, 64 // stride)
        for k, (x, y, v) in enumerate(record["keypoints"]):
            if v == 0:
                assert k in record["left_image"] and not heatmaps[k].any()
                continue
            px, py = heatmap_peak(heatmaps[k])
            assert abs(px * stride - x) < 0.1 and abs(py * stride - y) < 0.1, (augmentation, k, x, y, px * stride, py * stride)
            if augmentation == "photometric":
                continue
            # the blob drawn at the source keypoint is where the json says, in its side's colour
            expected = np.asarray(COLOURS[side_of(NAMES[k])], float)
            flip = record["geometry"]["flip"]
            if flip and side_of(NAMES[k]):  # the mirrored left eye is the source right eye, drawn in its colour
                expected = np.asarray(COLOURS["right" if side_of(NAMES[k]) == "left" else "left"], float)
            window = image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].reshape(-1, 3).astype(float)
            if window.shape[0] == 9 and record["geometry"]["scale"] > 0.4:
                best = window[np.argmax(window.max(axis=1))]
                assert np.argmax(best) == np.argmax(expected), (augmentation, NAMES[k], best, flip)
                centre = _blob_centre(image, x, y, radius=max(2, int(3 * record["geometry"]["scale"])))
                assert np.hypot(centre[0] - x, centre[1] - y) < 0.35, (augmentation, NAMES[k], centre, (x, y))


def _blob_centre(image, x, y, radius):
    """Intensity-weighted centre (continuous coordinates) of the blob around (x, y)."""
    gray = image.max(axis=2).astype(float) - 40.0
    x0, y0 = max(0, int(x) - radius), max(0, int(y) - radius)
    patch = np.clip(gray[y0:int(y) + radius + 1, x0:int(x) + radius + 1], 0, None)
    yy, xx = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
    return (x0 + (patch * (xx + 0.5)).sum() / patch.sum(), y0 + (patch * (yy + 0.5)).sum() / patch.sum())


def test_flip_swaps_left_and_right_by_name():
    assert flip_permutation(NAMES) == [0, 2, 1, 4, 3]
    assert flip_permutation(["left_x", "middle", "right_x", "left_lonely"]) == [2, 1, 0, 3]


def test_points_leaving_the_crop_are_unlabelled_not_dropped(tmp_path):
    keypoints = [v for x, y in POINTS for v in (x, y, 2)]
    keypoints[9:12] = [90, 90, 2]  # left_hand, far outside the face box below
    annotations = write_set(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": keypoints,
                                        "bbox": [30, 18, 36, 16]}])
    recipe = write_recipe(tmp_path, 4, {"padding": 1.0})
    result = build(str(recipe), src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out"),
                   progress=False, log=False, crop=32, crops_per_image=1)
    _, heatmaps, record = samples_of(tmp_path / "out")[0]
    assert record["keypoints"][3] == [0.0, 0.0, 0] and record["left_image"] == [3, 4]
    assert not heatmaps[3].any() and not heatmaps[4].any() and heatmaps[1].max() > 0.5
    assert len(record["keypoints"]) == 5 and result.card["counts"]["samples"] == 1


def test_crowd_and_unlabelled_people_are_left_out_and_counted(tmp_path):
    keypoints = [v for x, y in POINTS for v in (x, y, 2)]
    annotations = write_set(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 1, "keypoints": keypoints, "bbox": [24, 18, 48, 50]},
        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "keypoints": keypoints, "bbox": [24, 18, 48, 50]},
        {"id": 3, "image_id": 1, "category_id": 1, "num_keypoints": 0, "keypoints": [0] * 15, "bbox": [24, 18, 48, 50]},
    ])
    result = build("keypoints", src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out"),
                   progress=False, log=False, crop=32)
    assert result.card["annotations"]["left_out_by_rule"] == {"crowd": 1, "num_keypoints == 0": 1}
    assert result.card["counts"]["samples"] == 1  # default: one crop per usable person
    assert result.card["keypoints"]["names"] == NAMES


def test_several_keypoint_categories_need_a_choice(tmp_path):
    categories = [{"id": 1, "name": "person", "keypoints": NAMES}, {"id": 2, "name": "dog", "keypoints": ["nose", "tail"]}]
    annotations = write_set(tmp_path, categories=categories)
    with pytest.raises(PairgenError, match="2 keypoint categories .*--set category=NAME"):
        build("keypoints", src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out"),
              progress=False, log=False, crop=32)
    result = build("keypoints", src=[str(tmp_path)], annotations=str(annotations), out=str(tmp_path / "out2"),
                   progress=False, log=False, crop=32, overrides=["category=person"])
    assert result.card["counts"]["samples"] == 1


def test_heatmaps_for_all_keypoints_at_once_equal_one_gaussian_per_channel():
    """render_heatmaps computes every channel in one array operation (for speed): the same
    bytes as each channel's outer product of its row and column Gaussians, converted as float32."""
    rng = np.random.default_rng(0)
    for stride, sigma, dtype in ((1, 2.0, "float32"), (4, 2.0, "float16"), (4, 0.3, "float16"), (2, 7.0, "float32")):
        size = 128 // stride
        points = np.column_stack([rng.uniform(-20, 148, 17), rng.uniform(-20, 148, 17), rng.integers(0, 3, 17)])
        expected = np.zeros((17, size, size), np.float32)
        centres = np.arange(size) + 0.5
        for k, (x, y, v) in enumerate(points):
            if v > 0:
                gx = np.where(np.abs(centres - x / stride) <= 3 * sigma, np.exp(-(centres - x / stride) ** 2 / (2 * sigma**2)), 0)
                gy = np.where(np.abs(centres - y / stride) <= 3 * sigma, np.exp(-(centres - y / stride) ** 2 / (2 * sigma**2)), 0)
                expected[k] = np.outer(gy, gx)
        out = render_heatmaps(points, size, size, stride, sigma, dtype)
        assert out.dtype == dtype and out.tobytes() == expected.astype(dtype).tobytes()


def test_photometric_hue_wrap_equals_np_mod():
    """The hue shift wraps by two masked adds instead of np.mod (5x faster): the same values."""
    from skimage import data

    import pairgen.ops as ops

    op = ops.get("photometric_distortion")
    image = ops.to_float(cv2.resize(data.coffee(), (64, 48), interpolation=cv2.INTER_AREA))
    for hue in range(-18, 19):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(2 * hue), np.float32(360.0))
        expected = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
        assert np.array_equal(op.apply(image, op.Params(None, None, True, None, hue)), expected), hue
