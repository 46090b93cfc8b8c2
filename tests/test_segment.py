"""Segmentation from COCO: the label rules (background, ignore, overlaps), semantic and
instance agreeing, boundaries on instance edges, and labels that move with the image."""
import io
import json
import tarfile

import cv2
import numpy as np
import pytest

from pairgen.api import build
from pairgen.coco import mask_to_rle
from pairgen.tasks.segment import IGNORE, boundary_band, label_maps

BIG = [8, 8, 88, 8, 88, 88, 8, 88]  # continuous corners: pixels 8..87
SMALL = [30, 30, 50, 30, 50, 50, 30, 50]  # inside BIG
CATEGORIES = [{"id": 7, "name": "table"}, {"id": 3, "name": "cup"}, {"id": 90, "name": "crowd thing"}]


def scene(folder):
    """A 96x96 photo whose colours are its labels: BIG red, SMALL (on top) blue, a crowd region green."""
    image = np.full((96, 96, 3), 128, np.uint8)
    image[8:88, 8:88] = (255, 0, 0)
    image[30:50, 30:50] = (0, 0, 255)
    image[60:80, 60:80] = (0, 255, 0)
    cv2.imwrite(str(folder / "scene.png"), image[:, :, ::-1])
    crowd = np.zeros((96, 96), bool)
    crowd[60:80, 60:80] = True
    annotations = [
        {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": [SMALL]},  # listed first, painted last
        {"id": 12, "image_id": 1, "category_id": 7, "iscrowd": 0, "segmentation": [BIG]},
        {"id": 13, "image_id": 1, "category_id": 90, "iscrowd": 1, "segmentation": mask_to_rle(crowd)},
    ]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "scene.png", "width": 96, "height": 96}],
                                "annotations": annotations, "categories": CATEGORIES}))
    return image, path


def samples_of(out):
    found = []
    for shard in sorted(out.glob("*.tar")):
        fields = {}
        with tarfile.open(shard) as archive:
            for member in archive:
                key, field = member.name.split(".", 1)
                fields.setdefault(key, {})[field] = archive.extractfile(member).read()
        for key, f in sorted(fields.items()):
            decoded = {n: cv2.imdecode(np.frombuffer(f[n], np.uint8), cv2.IMREAD_UNCHANGED)
                       for n in ("image.png", "semantic.png", "instance.png", "boundary.png")}
            decoded["image.png"] = decoded["image.png"][:, :, ::-1]
            decoded["json"] = json.loads(f["json"])
            found.append(decoded)
    return found


def test_label_rules_background_ignore_and_overlaps(tmp_path):
    _, path = scene(tmp_path)
    data = json.loads(path.read_text())
    class_of = {3: 1, 7: 2, 90: 3}  # COCO id order
    semantic, instance, table = label_maps(96, 96, data["annotations"], class_of)
    assert semantic[0, 0] == 0 and instance[0, 0] == 0  # background
    assert semantic[40, 40] == 1 and table[instance[40, 40]]["id"] == 11  # the small cup stays on top
    assert semantic[20, 20] == 2 and table[instance[20, 20]]["id"] == 12
    assert (semantic[60:80, 60:80] == 2).all()  # the crowd region under an instance: the instance wins
    assert [table[i]["id"] for i in (1, 2)] == [12, 11]  # ids in paint order, larger first
    only_crowd = [a for a in data["annotations"] if a["iscrowd"]]
    semantic, instance, _ = label_maps(96, 96, only_crowd, class_of)
    assert (semantic[60:80, 60:80] == IGNORE).all() and not instance.any()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment")
    image, path = scene(folder)
    recipe = folder / "seg.yaml"
    recipe.write_text("task: segment\nboundary_ratio: 0.02\n"
                      "geometry: {ratio_range: [0.5, 2.0], rotate_max: 30.0, rotate_prob: 0.5, flip_prob: 0.5}\n")
    result = build(str(recipe), src=[str(folder)], annotations=str(path), out=str(folder / "out"), progress=False,
                   log=False, crop=64, crops_per_image=12)
    return result.card, samples_of(folder / "out")


def test_card_lists_classes_in_coco_id_order(built):
    card, _ = built
    assert card["classes"] == ["background", "cup", "table", "crowd thing"] and card["num_classes"] == 4
    assert card["category_to_class"] == {"3": 1, "7": 2, "90": 3} and card["ignore_index"] == 255


def test_semantic_and_instance_agree(built):
    _, samples = built
    for s in samples:
        semantic, instance, record = s["semantic.png"], s["instance.png"], s["json"]
        assert instance.dtype == np.uint16 and semantic.dtype == np.uint8
        for i, entry in record["instances"].items():
            assert (semantic[instance == int(i)] == entry["class"]).all()
        assert set(np.unique(semantic[instance == 0])) <= {0, IGNORE}
        assert set(np.unique(instance)) <= {0} | {int(i) for i in record["instances"]}


def test_labels_move_with_the_image_nearest_neighbour(built):
    _, samples = built
    flips = set()
    for s in samples:
        image, semantic, record = s["image.png"].astype(int), s["semantic.png"], s["json"]
        flips.add(record["geometry"]["flip"])
        inner = _inner(semantic == 1)  # cup pixels (away from edges, where bilinear blends) are the blue square
        assert (image[inner] == (0, 0, 255)).all()
        inner = _inner(semantic == 2) & (image[..., 1] == 0)  # table pixels: red, or the crowd's green on top of it
        assert (image[inner] == (255, 0, 0)).all() and (image[_inner(semantic == 2)][:, 2] == 0).all()
        outside = semantic == IGNORE
        if outside.any():  # pixels from outside the source: ignore, black image
            assert (image[_inner(outside)] == 0).all()
    assert flips == {True, False}


def _inner(region):
    """The region without a 2-px rim (the crop's edge counts as a rim: what lies beyond is unknown)."""
    return cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(bool)


def test_boundaries_lie_on_instance_edges(built):
    _, samples = built
    for s in samples:
        instance, boundary, band = s["instance.png"].astype(np.int64), s["boundary.png"] > 0, s["json"]["boundary_px"]
        assert band == max(1, round(0.02 * np.hypot(64, 64)))
        padded = np.pad(instance, band, mode="edge")
        for y, x in zip(*np.nonzero(boundary)):  # within band px of another id, inside an instance
            window = padded[y:y + 2 * band + 1, x:x + 2 * band + 1]
            assert instance[y, x] > 0 and (window != instance[y, x]).any()
        edge = np.zeros_like(boundary)  # every instance pixel 4-adjacent to another id is on the boundary
        edge[:-1] |= instance[:-1] != instance[1:]
        edge[1:] |= instance[1:] != instance[:-1]
        edge[:, :-1] |= instance[:, :-1] != instance[:, 1:]
        edge[:, 1:] |= instance[:, 1:] != instance[:, :-1]
        assert not (edge & (instance > 0) & ~boundary).any()


def test_boundary_band_width_and_crop_edge():
    instance = np.zeros((20, 20), np.uint16)
    instance[5:15, 0:12] = 1  # touches the left edge of the map
    band = boundary_band(instance, 2) > 0
    assert band[10, 10:12].all() and not band[10, 9] and band[5:7, 5].all() and not band[7, 5]
    assert not band[10, 0]  # the map's edge is not an object edge


def _plain_layers(height, width, annotations, class_of):
    """label_layers' plain definition: decoded masks painted largest first (uint16)."""
    from pairgen.coco import annotation_mask
    masks = [(a, annotation_mask(a, height, width)) for a in annotations]
    crowd = [m for a, m in masks if a.get("iscrowd", 0)]
    things = sorted(((a, m) for a, m in masks if not a.get("iscrowd", 0)), key=lambda am: (-int(am[1].sum()), am[0]["id"]))
    top = np.zeros((height, width), np.uint16)
    for rank, mask in enumerate(crowd + [m for _, m in things], start=1):
        top[mask] = rank
    return top


def test_fast_label_paths_equal_the_plain_definitions():
    from pairgen.coco import annotation_mask, annotation_runs, rle_counts
    from pairgen.ops.geometry import Affine
    from pairgen.tasks.segment import crop_fields, label_layers
    rng = np.random.default_rng(5)
    for trial in range(60):
        h, w = int(rng.integers(20, 120)), int(rng.integers(20, 120))
        anns = []
        for i in range(int(rng.integers(1, 8))):
            n = int(rng.integers(3, 12))
            poly = np.column_stack([rng.uniform(-5, w + 5, n), rng.uniform(-5, h + 5, n)]).ravel().round(2).tolist()
            seg = [poly]
            if i % 3 == 2:  # crowd as compressed RLE, or plain RLE
                mask = rng.random((h, w)) < 0.3
                seg = mask_to_rle(mask)
                if i % 2:
                    seg = {"size": [h, w], "counts": [int(c) for c in np.diff(np.flatnonzero(np.diff(np.concatenate(
                        ([2], mask.T.ravel().astype(int), [2])))))]} if mask.T.ravel()[0] == 0 else seg
            anns.append({"id": i + 1, "category_id": 1 + i % 3, "iscrowd": int(i % 3 == 2), "segmentation": seg})
        for a in anns:  # runs (parsed RLE) = pycocotools' decoded mask
            starts, stops = annotation_runs(a, h, w)
            flat = np.zeros(h * w, bool)
            for s, e in zip(starts, stops):
                flat[s:e] = True
            assert np.array_equal(flat.reshape(w, h).T, annotation_mask(a, h, w))
        class_of = {1: 1, 2: 2, 3: 3}
        top, semantic_of, instance_of, table = label_layers(h, w, anns, class_of)
        assert top.dtype == np.uint8 and np.array_equal(top, _plain_layers(h, w, anns, class_of))
        affine = Affine((w / 2 + rng.uniform(-9, 9), h / 2 + rng.uniform(-9, 9)), float(rng.uniform(0.5, 2)),
                        float(rng.uniform(-30, 30)) * (trial % 2), bool(trial % 3), 48, 40)
        record = {"boundary_ratio": 0.05, "category_to_class": {"1": 1, "2": 2, "3": 3},
                  "classes": {"0": "background", "1": "a", "2": "b", "3": "c"}}
        fast = crop_fields(None, affine, (top, semantic_of, instance_of, table), dict(record))
        wide = dict(record)  # the uint16 path (take, 16-bit morphology) gives the same maps and records
        plain = crop_fields(None, affine, (top.astype(np.uint16), semantic_of, instance_of, table), wide)
        for name in ("semantic.png", "instance.png", "boundary.png"):
            assert fast[name].dtype == plain[name].dtype and np.array_equal(fast[name], plain[name])
        semantic, instance = plain["semantic.png"], plain["instance.png"]
        assert np.array_equal(semantic, semantic_of[_warp_plain(top, affine, len(semantic_of) - 1)])
        assert wide["summary"]["ignore_fraction"] == round(float((semantic == IGNORE).mean()), 5)
        assert sorted(int(i) for i in wide["instances"]) == [int(i) for i in np.unique(instance) if i > 0]
        kernel = np.ones((2 * wide["boundary_px"] + 1,) * 2, np.uint8)  # the boundary's plain definition
        grown = cv2.dilate(instance, kernel, borderType=cv2.BORDER_REPLICATE)
        shrunk = cv2.erode(instance, kernel, borderType=cv2.BORDER_REPLICATE)
        edge = (instance > 0) & ((grown != instance) | (shrunk != instance))
        assert np.array_equal(plain["boundary.png"], np.where(edge, 255, 0).astype(np.uint8))
    assert rle_counts(b"") is None and rle_counts(b"0\x001") is None


def _warp_plain(top, affine, fill):
    from pairgen.ops.geometry import warp_labels
    return warp_labels(top.astype(np.uint16), affine, fill)
