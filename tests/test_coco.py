"""The COCO loader: clear errors for unusable files, a reported skip (with the annotation id)
for every kind of bad entry while the build goes on, and pycocotools' mask conventions."""
import json

import cv2
import numpy as np
import pytest

from pairgen.api import build
from pairgen.coco import annotation_mask, coco_from_id_maps, load_coco, mask_to_rle
from pairgen.errors import PairgenError

from conftest import run_cli

SQUARE = [10, 10, 50, 10, 50, 50, 10, 50]


def write_coco(folder, annotations, images=None, categories=None, name="instances.json"):
    images = images if images is not None else [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}]
    for image in images:
        if not (folder / image["file_name"]).exists():
            rng = np.random.default_rng(image["id"])
            cv2.imwrite(str(folder / image["file_name"]), rng.integers(0, 256, (image["height"], image["width"], 3), dtype=np.uint8))
    categories = categories or [{"id": 3, "name": "thing"}, {"id": 5, "name": "other"}]
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def ann(id_, segmentation=None, **extra):
    return {"id": id_, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": segmentation or [SQUARE], **extra}


def test_unusable_files_are_errors_naming_the_file(tmp_path):
    with pytest.raises(PairgenError, match="missing.json: annotations file not found"):
        load_coco(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PairgenError, match=r"bad.json: not a COCO JSON file \(line 1"):
        load_coco(str(bad))
    bad.write_text("[1, 2]")
    with pytest.raises(PairgenError, match="bad.json: not a COCO JSON file"):
        load_coco(str(bad))
    bad.write_text(json.dumps({"images": [], "annotations": {}, "categories": []}))
    with pytest.raises(PairgenError, match="'annotations' must be a list"):
        load_coco(str(bad))
    result = run_cli("build", "segment", "--annotations", tmp_path / "missing.json", "--out", tmp_path / "out")
    assert result.returncode == 1 and "missing.json: annotations file not found" in result.stderr


def test_src_without_annotations_is_a_usage_error(tmp_path):
    result = run_cli("build", "keypoints", "--src", tmp_path, "--out", tmp_path / "out")
    assert result.returncode == 2 and "needs --annotations" in result.stderr


def test_every_bad_annotation_is_reported_and_the_build_goes_on(tmp_path):
    path = write_coco(tmp_path, [
        ann(1),
        ann(2, [[10, 10, 20, 20]]),  # 4 values: pycocotools would take a box
        ann(3, [[10, 10, 20, 20, 30, 30]]),  # collinear: zero area
        ann(4, [[10, 10]]),  # one point (two points are the 4-value case above)
        ann(5, [[10, 10, 20]]),  # odd count
        {**ann(6), "image_id": 99},  # no such image
        {**ann(7), "category_id": 42},  # unknown category
        ann(8, {"size": [32, 32], "counts": [1024]}),  # RLE of another size
        ann(9, {"size": [64, 64], "counts": [5, 6]}),  # runs that do not cover the image
        ann(10, {"size": [64, 64], "counts": 17}),
        ann(11), ann(11),  # duplicate id
    ])
    data = load_coco(str(path))
    reasons = {s.path.rsplit(" ", 1)[-1]: s.reason for s in data.skipped}
    assert [a["id"] for a in data.annotations[1]] == [1, 11]
    assert "4 values" in reasons["2"] and "box" in reasons["2"]
    assert "zero area" in reasons["3"]
    assert "2 values" in reasons["4"] and ">= 3 (x, y) points" in reasons["4"]
    assert "3 (x, y) points" in reasons["5"]
    assert "image id 99" in reasons["6"]
    assert "unknown category id 42" in reasons["7"]
    assert "RLE size 32x32 does not match" in reasons["8"]
    assert "run lengths summing" in reasons["9"]
    assert "compressed string" in reasons["10"]
    assert reasons["11"] == "duplicate annotation id"
    result = build("segment", src=[str(tmp_path)], annotations=str(path), out=str(tmp_path / "out"), progress=False,
                   log=False, crop=32)
    skipped = {s["path"] for s in result.card["skipped"]}
    assert {f"{path}: annotation {i}" for i in range(2, 12)} <= skipped
    assert result.card["counts"]["samples"] == 1


def test_keypoint_arrays_of_the_wrong_length_and_missing_images_are_skipped(tmp_path):
    person = {"id": 1, "name": "person", "keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]}
    images = [{"id": 1, "file_name": "a.png", "width": 64, "height": 64},
              {"id": 2, "file_name": "gone.png", "width": 64, "height": 64},
              {"id": 3, "file_name": "b.png", "width": 64, "height": 64}]
    path = write_coco(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [20, 20, 2, 30, 20, 2, 10, 20, 2], "bbox": [5, 5, 40, 40]},
        {"id": 2, "image_id": 1, "category_id": 1, "keypoints": [20, 20, 2], "bbox": [5, 5, 40, 40]},
        {"id": 3, "image_id": 1, "category_id": 1, "keypoints": [20, 20, 7, 30, 20, 2, 10, 20, 2]},
        {"id": 4, "image_id": 2, "category_id": 1, "keypoints": [20, 20, 2, 30, 20, 2, 10, 20, 2]},
        {"id": 5, "image_id": 3, "category_id": 1, "keypoints": [20, 20, 2, 30, 20, 2, 10, 20, 2]},
    ], images=images, categories=[person], name="kp.json")
    (tmp_path / "gone.png").unlink()
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((40, 64, 3), np.uint8))  # not the size the labels are for
    result = build("keypoints", src=[str(tmp_path)], annotations=str(path), out=str(tmp_path / "out"), progress=False,
                   log=False, crop=32)
    reasons = {s["path"].split(": ")[-1]: s["reason"] for s in result.card["skipped"]}
    assert "must be 9 values" in reasons["annotation 2"] and "got 3" in reasons["annotation 2"]
    assert "visibility" in reasons["annotation 3"]
    assert "image file missing" in reasons["image 2"]
    assert "b.png is 64x40 px, the annotations are for 64x64" in reasons["image 3"]
    assert result.card["counts"]["samples"] == 1


def test_masks_follow_pycocotools_conventions(tmp_path):
    # polygons are continuous, pixel (i, j) covers [j, j+1) x [i, i+1): a 10x10 square is 100 px
    square = annotation_mask({"segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}, 20, 20)
    assert square.sum() == 100 and square[:10, :10].all()
    mask = np.zeros((20, 30), bool)
    mask[3:9, 5:25] = True
    rle = mask_to_rle(mask)
    assert np.array_equal(annotation_mask({"segmentation": rle}, 20, 30), mask)
    column_major = mask.T.ravel()  # uncompressed RLE: runs over the column-major pixels, starting with 0s
    change = np.flatnonzero(np.diff(column_major.astype(int))) + 1
    counts = np.diff(np.concatenate([[0], change, [column_major.size]])).tolist()
    assert np.array_equal(annotation_mask({"segmentation": {"size": [20, 30], "counts": counts}}, 20, 30), mask)


def test_rendered_ids_become_coco_annotations(tmp_path):
    ids = np.zeros((16, 24), np.uint16)
    ids[2:6, 3:9] = 2
    ids[8:14, 10:20] = 5
    coco = coco_from_id_maps({"frame.png": ids}, {"frame.png": {2: "cube", 5: "sphere", 7: "room"}}, {"cube": 1, "sphere": 2})
    path = tmp_path / "rendered.json"
    path.write_text(json.dumps(coco))
    data = load_coco(str(path))
    assert not data.skipped
    masks = {a["category_id"]: annotation_mask(a, 16, 24) for a in data.annotations[1]}
    assert np.array_equal(masks[1], ids == 2) and np.array_equal(masks[2], ids == 5)
    assert [a["bbox"] for a in data.annotations[1]] == [[3, 2, 6, 4], [10, 8, 10, 6]]


def test_annotation_runs_are_the_pixels_pycocotools_decodes():
    """The run-length reading (polygons, compressed and uncompressed RLE) covers exactly the
    pixels of the decoded mask."""
    from pycocotools import mask as mask_utils

    from pairgen.coco import annotation_mask, annotation_runs

    rng = np.random.default_rng(3)
    height, width = 37, 53
    for trial in range(60):
        if trial % 3 == 0:
            points = rng.uniform(0, [width, height], (int(rng.integers(3, 12)), 2)).ravel().tolist()
            seg = [points]
        else:
            mask = np.asfortranarray((rng.random((height, width)) < rng.uniform(0.05, 0.95)).astype(np.uint8))
            rle = mask_utils.encode(mask)
            seg = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
            if trial % 3 == 2:  # uncompressed: the run lengths themselves
                flat = np.concatenate(([0], mask.ravel(order="F"), [1 - mask.ravel(order="F")[-1]]))
                change = np.flatnonzero(flat[1:] != flat[:-1])
                seg = {"size": [height, width], "counts": np.diff(np.concatenate(([0], change[:-1], [height * width]))).tolist()}
        ann = {"segmentation": seg}
        expected = annotation_mask(ann, height, width).ravel(order="F")
        starts, stops = annotation_runs(ann, height, width)
        got = np.zeros(height * width, bool)
        for start, stop in zip(starts, stops):
            got[start:stop] = True
        assert np.array_equal(got, expected), trial
