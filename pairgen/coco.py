"""The COCO loader: read and validate a COCO JSON (instances or person keypoints), find its
images, decode its masks. Tasks (keypoints, segment, inpaint object holes) build on it.

Coordinates follow COCO and pycocotools 2.0.11: polygons and boxes are continuous, with pixel
(i, j) covering [j, j + 1) x [i, i + 1) (a polygon (0,0)-(10,10) rasterizes to 100 px);
keypoints are integer pixel indices, so ``keypoint_position`` adds 0.5 to put them on the
pixel's centre in pairgen's continuous coordinates (as detectron2 does).

Bad entries never stop a build: ``load_coco`` returns them as ``Skip`` records naming the file
and the annotation (or image) id, and keeps the rest. A missing or unreadable file, or one that
is not a COCO JSON object, is a ``PairgenError`` naming the file.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import storage
from .errors import PairgenError
from .sources import EMBEDDED_PHOTOS, DecodeError, Skip, SourceRef, load_embedded, probe_size

DEMO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo_coco")
DEMO_PREFIX = "demo:"  # how a record names a file of the shipped demo set (movable with the package)


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class Category:
    """keypoints: the names of a keypoint category's points (COCO order); skeleton: pairs of
    1-based indices into them, as COCO writes them."""

    id: int
    name: str
    supercategory: str = ""
    keypoints: tuple = ()
    skeleton: tuple = ()


@dataclass
class CocoDataset:
    """A validated COCO file: ``annotations`` maps image id -> its valid annotations (dicts as
    in the file, file order); ``skipped`` the entries left out, with reasons."""

    path: str
    images: dict[int, CocoImage]
    categories: dict[int, Category]
    annotations: dict[int, list[dict]]
    skipped: list[Skip] = field(default_factory=list)

    def annotation(self, annotation_id: int) -> dict:
        for anns in self.annotations.values():
            for ann in anns:
                if ann["id"] == annotation_id:
                    return ann
        raise PairgenError(f"{self.path}: no valid annotation with id {annotation_id}")


def resolve_path(path: str) -> str:
    """A recorded annotation path -> a file path (``demo:NAME`` is the package's demo set)."""
    return os.path.join(DEMO_DIR, path[len(DEMO_PREFIX):]) if path.startswith(DEMO_PREFIX) else path


def keypoint_position(x: float, y: float) -> tuple[float, float]:
    """COCO keypoint (integer pixel indices) -> continuous coordinates: the pixel's centre."""
    return float(x) + 0.5, float(y) + 0.5


# ----------------------------------------------------------------------------- reading


def load_coco(path: str) -> CocoDataset:
    """Read and validate a COCO JSON file (see the module docstring for what is an error and what
    is a skip)."""
    where = resolve_path(path)
    try:
        raw = json.loads(storage.read_text_input(where))  # a local path or an s3:// URL
    except FileNotFoundError:
        raise PairgenError(f"{path}: annotations file not found") from None
    except IsADirectoryError:
        raise PairgenError(f"{path}: is a folder; --annotations takes a COCO JSON file") from None
    except UnicodeDecodeError:
        raise PairgenError(f"{path}: not a COCO JSON file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise PairgenError(f"{path}: not a COCO JSON file (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise PairgenError(f"{path}: cannot read the annotations file ({exc.strerror or exc})") from None
    if not isinstance(raw, dict):
        raise PairgenError(f"{path}: not a COCO JSON file (expected an object with images, annotations, categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(raw.get(key), list):
            raise PairgenError(f"{path}: not a COCO JSON file: '{key}' must be a list")

    skipped: list[Skip] = []
    images: dict[int, CocoImage] = {}
    for entry in raw["images"]:
        image, reason = _image(entry)
        if reason:
            skipped.append(Skip(f"{path}: image {_id_text(entry)}", reason))
        elif image.id in images:
            skipped.append(Skip(f"{path}: image {image.id}", "duplicate image id"))
        else:
            images[image.id] = image
    categories: dict[int, Category] = {}
    for entry in raw["categories"]:
        category, reason = _category(entry)
        if reason:
            skipped.append(Skip(f"{path}: category {_id_text(entry)}", reason))
        else:
            categories[category.id] = category
    annotations: dict[int, list[dict]] = {i: [] for i in images}
    seen: set[int] = set()
    for entry in raw["annotations"]:
        reason = annotation_problem(entry, images, categories)
        if not reason and entry["id"] in seen:
            reason = "duplicate annotation id"
        if reason:
            skipped.append(Skip(f"{path}: annotation {_id_text(entry)}", reason))
            continue
        seen.add(entry["id"])
        annotations[entry["image_id"]].append(entry)
    return CocoDataset(path, images, categories, annotations, skipped)


def _id_text(entry) -> str:
    return str(entry.get("id", "?")) if isinstance(entry, dict) else "?"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image(entry) -> tuple[CocoImage | None, str]:
    if not isinstance(entry, dict) or not _is_int(entry.get("id")):
        return None, "an image entry needs an integer 'id'"
    if not isinstance(entry.get("file_name"), str) or not entry["file_name"]:
        return None, "no 'file_name'"
    w, h = entry.get("width"), entry.get("height")
    if not (_is_int(w) and _is_int(h) and w > 0 and h > 0):
        return None, f"'width' and 'height' must be positive integers, got {w!r} x {h!r}"
    return CocoImage(entry["id"], entry["file_name"], w, h), ""


def _category(entry) -> tuple[Category | None, str]:
    if not isinstance(entry, dict) or not _is_int(entry.get("id")) or not isinstance(entry.get("name"), str):
        return None, "a category needs an integer 'id' and a 'name'"
    names = entry.get("keypoints") or []
    skeleton = entry.get("skeleton") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None, "'keypoints' must be a list of names"
    if not isinstance(skeleton, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(_is_int(i) and 1 <= i <= len(names) for i in p) for p in skeleton):
        return None, f"'skeleton' must be pairs of 1-based keypoint indices (1..{len(names)})"
    return Category(entry["id"], entry["name"], str(entry.get("supercategory", "")), tuple(names),
                    tuple(tuple(p) for p in skeleton)), ""


def annotation_problem(ann, images: dict[int, CocoImage], categories: dict[int, Category]) -> str:
    """Why an annotation cannot be used ("" when it can)."""
    if not isinstance(ann, dict) or not _is_int(ann.get("id")):
        return "an annotation needs an integer 'id'"
    if ann.get("image_id") not in images:
        return f"refers to image id {ann.get('image_id')!r}, which is not in 'images'"
    if ann.get("category_id") not in categories:
        return f"unknown category id {ann.get('category_id')!r}"
    if ann.get("iscrowd", 0) not in (0, 1):
        return f"'iscrowd' must be 0 or 1, got {ann.get('iscrowd')!r}"
    image, category = images[ann["image_id"]], categories[ann["category_id"]]
    if "bbox" in ann:
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box) and box[2] >= 0 and box[3] >= 0):
            return f"'bbox' must be [x, y, width, height] with width, height >= 0, got {box!r}"
    if "segmentation" in ann:
        reason = segmentation_problem(ann["segmentation"], image)
        if reason:
            return reason
    if "keypoints" in ann:
        reason = keypoints_problem(ann["keypoints"], category)
        if reason:
            return reason
    return ""


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def segmentation_problem(seg, image: CocoImage) -> str:
    """Degenerate or malformed polygons / RLE ("" when the mask can be decoded)."""
    if isinstance(seg, list):
        if not seg:
            return "empty segmentation (no polygon)"
        for i, poly in enumerate(seg):
            if not isinstance(poly, list) or not all(_finite(v) for v in poly):
                return f"polygon {i}: expected a list of numbers [x1, y1, x2, y2, ...]"
            if len(poly) == 4:
                return f"polygon {i} has 4 values: pycocotools would read it as a box; a polygon needs >= 3 points"
            if len(poly) % 2 or len(poly) < 6:
                return f"polygon {i} has {len(poly)} values: a polygon needs >= 3 (x, y) points"
            x, y = np.asarray(poly[0::2], np.float64), np.asarray(poly[1::2], np.float64)
            if abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) < 1e-9:
                return f"polygon {i} has zero area"
        return ""
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
            return "RLE 'size' must be [height, width]"
        if list(size) != [image.height, image.width]:
            return f"RLE size {size[1]}x{size[0]} does not match the image's {image.width}x{image.height}"
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != size[0] * size[1]:
                return "uncompressed RLE 'counts' must be non-negative run lengths summing to height x width"
            return ""
        if isinstance(counts, str):
            parsed = rle_counts(counts.encode("ascii")) if counts.isascii() else None
            if parsed is not None and parsed.sum() == size[0] * size[1]:
                return ""  # runs that fill the image exactly: pycocotools decodes them (without the 1 ms decode)
            try:
                _decode_rle({"size": size, "counts": counts})
            except Exception as exc:  # pycocotools raises bare errors on broken strings
                return f"compressed RLE 'counts' cannot be decoded ({exc})"
            return ""
        return "RLE 'counts' must be a list of run lengths or a compressed string"
    return "'segmentation' must be a list of polygons or an RLE object"


def keypoints_problem(values, category: Category) -> str:
    k = len(category.keypoints)
    if not k:
        return f"has keypoints but category {category.id} ({category.name}) names none"
    if not isinstance(values, list) or len(values) != 3 * k:
        got = len(values) if isinstance(values, list) else type(values).__name__
        return f"keypoints must be {3 * k} values ({k} x [x, y, v]) for category {category.name}, got {got}"
    if not all(_finite(v) for v in values) or any(v not in (0, 1, 2) for v in values[2::3]):
        return "keypoints must be numbers with visibility v in {0, 1, 2}"
    return ""


# ----------------------------------------------------------------------------- masks


def _decode_rle(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle["counts"], str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle)


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """An annotation's mask as bool (height, width), by pycocotools' rasterization (polygon
    parts are united). Column-major, as pycocotools decodes it (no copy)."""
    from pycocotools import mask as mask_utils

    seg = ann["segmentation"]
    if isinstance(seg, list):
        rles = mask_utils.frPyObjects([list(map(float, p)) for p in seg], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).view(bool)
    return _decode_rle(seg).view(bool)


def rle_counts(counts: bytes) -> np.ndarray | None:
    """The run lengths (int64) of a compressed RLE string, read as pycocotools' ``rleFrString``
    reads it: 5-bit groups (+48, bit 0x20 = more follow, bit 0x10 of the last = negative), counts
    after the second stored as the difference to the count two before, uint32. None for a string
    pycocotools does not write (characters outside '0'..'o', a count of more than 6 characters, a
    dangling group): its reading there is left to pycocotools."""
    chars = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if not chars.size or chars.min() < 0 or chars.max() > 63 or chars[-1] & 0x20:
        return None
    last = np.flatnonzero((chars & 0x20) == 0)  # each count's last character
    first = np.concatenate(([0], last[:-1] + 1))
    if (last - first).max() > 5:  # beyond 30 bits pycocotools' sign extension (an int shift) is undefined
        return None
    digit = np.arange(chars.size) - np.repeat(first, last - first + 1)
    values = np.add.reduceat((chars & 0x1F) << (5 * digit), first)
    negative = (chars[last] & 0x10) != 0
    values[negative] |= np.left_shift(-1, 5 * (digit[last][negative] + 1))
    values[3::2] = np.cumsum(values[1::2])[1:]  # count j > 2 = value j + count j - 2
    values[2::2] = np.cumsum(values[2::2])
    return values & 0xFFFFFFFF


def annotation_runs(ann: dict, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """An annotation's mask as runs of 1s over its column-major pixels (the order of COCO's
    RLE): (starts, stops), int64, [start, stop); the pixels of ``annotation_mask`` without
    decoding a (height, width) array (a COCO-sized polygon: ~10x faster)."""
    from pycocotools import mask as mask_utils

    seg = ann["segmentation"]
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, p)) for p in seg], height, width))
        counts = rle_counts(rle["counts"])
    elif isinstance(seg["counts"], list):
        counts = np.asarray(seg["counts"], np.int64)
    else:
        counts = rle_counts(seg["counts"].encode("ascii")) if seg["counts"].isascii() else None
    if counts is None or counts.sum() != height * width:  # not runs that fill the image: as pycocotools decodes it
        decoded = annotation_mask(ann, height, width).view(np.uint8).ravel(order="F") != 0
        column_major = np.concatenate(([False], decoded, [False]))
        change = np.flatnonzero(column_major[1:] != column_major[:-1])
        return change[0::2], change[1::2]
    ends = np.cumsum(counts)
    return ends[0:len(counts) - 1:2], ends[1::2]


def mask_to_rle(mask: np.ndarray) -> dict:
    """bool (H, W) -> COCO compressed RLE ({"size", "counts": str}), e.g. to write rendered ids
    as COCO annotations."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_from_id_maps(id_maps: dict[str, np.ndarray], names: dict[str, dict[int, str]],
                      categories: dict[str, int]) -> dict:
    """A COCO instances dict from instance-id images (e.g. a rendered flow/depth dataset's
    ``segmentation.png`` with its json's names per id): one RLE annotation per id > 0 whose name
    has a category in ``categories`` (object name -> category id; ids without one are left out).
    ``id_maps``: file name -> uint16 (H, W); ``names``: file name -> {id: object name}."""
    images, annotations = [], []
    for image_id, (file_name, ids) in enumerate(sorted(id_maps.items()), start=1):
        h, w = ids.shape
        images.append({"id": image_id, "file_name": file_name, "width": int(w), "height": int(h)})
        for object_id in np.unique(ids):
            name = names.get(file_name, {}).get(int(object_id))
            if object_id == 0 or name not in categories:
                continue
            mask = ids == object_id
            ys, xs = np.nonzero(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": categories[name],
                                "iscrowd": 0, "area": int(mask.sum()), "segmentation": mask_to_rle(mask),
                                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]})
    cats = [{"id": cid, "name": name} for name, cid in sorted(categories.items(), key=lambda kv: kv[1])]
    return {"images": images, "annotations": annotations, "categories": cats}


# ----------------------------------------------------------------------------- images


def image_refs(dataset: CocoDataset, image_root: str | None, max_pixels: int | None = None):
    """(image id -> SourceRef, skipped) for the images that have annotations. ``image_root``:
    the folder file names are relative to; None: the photos embedded in scikit-image, by file
    name stem (the demo set). An image whose file is missing or unreadable, or whose size is not
    the one the annotations were made for, is skipped with its id and reason."""
    wanted = [img for img in dataset.images.values() if dataset.annotations.get(img.id)]
    limits = {"max_pixels": max_pixels} if max_pixels else {}

    def probe(image: CocoImage):
        if image_root is None:
            stem = os.path.splitext(os.path.basename(image.file_name))[0]
            if stem not in EMBEDDED_PHOTOS:
                return None, f"{image.file_name}: not one of the embedded photos ({', '.join(EMBEDDED_PHOTOS)})"
            h, w = load_embedded(stem).shape[:2]
            ref = SourceRef(f"embedded:{stem}", "embedded", stem, height=h, width=w)
        else:
            remote = storage.is_remote(image_root)
            path = storage.join(image_root, image.file_name) if remote else os.path.join(image_root, image.file_name)
            if not remote and not os.path.isfile(path):  # remote: a missing object fails the probe below
                return None, f"image file missing: {path}"
            ref = SourceRef(os.path.normpath(image.file_name), "file", path)
            try:
                h, w = probe_size(ref, **limits)
            except DecodeError as exc:
                return None, f"{path}: {exc}"
            ref = SourceRef(ref.identity, "file", path, height=h, width=w)
        if (h, w) != (image.height, image.width):
            return None, f"{image.file_name} is {w}x{h} px, the annotations are for {image.width}x{image.height}"
        return ref, ""

    with ThreadPoolExecutor(max_workers=8) as pool:  # header reads; network storage latency dominates
        probed = list(pool.map(probe, wanted))
    refs, skipped = {}, []
    for image, (ref, reason) in zip(wanted, probed):
        if reason:
            skipped.append(Skip(f"{dataset.path}: image {image.id}", reason))
        else:
            refs[image.id] = ref
    return refs, skipped
