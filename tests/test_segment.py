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
