"""Semantic and instance segmentation from COCO instance annotations (polygons and RLE).

Label rules (also in the card):
* classes: 0 = background (no annotation covers the pixel), 1..N = the file's categories in
  order of their COCO id, 255 = ignore: crowd regions, and pixels the warp brought from outside
  the source image.
* overlaps: instances are painted largest first (mask area), so a smaller instance stays on top
  of a larger one it overlaps (ties: lower annotation id first); crowd regions only where no
  instance is. The instance and semantic maps come from the same painting, so they agree.
* instance.png: uint16, 1..M in that paint order (an image's ids, kept in each crop), 0 = none.
* boundary.png: 255 on the band of width d = max(1, round(boundary_ratio x crop diagonal)) px
  inside each instance next to a pixel of another id (Boundary IoU's band, Cheng et al. 2021,
  square (2d+1) window); unlike Boundary IoU the crop's edge is not a boundary (an object cut by
  the crop has no edge there).
Geometry moves image and labels together; labels are resampled nearest-neighbour.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..coco import annotation_runs
from ..errors import PairgenError, RecipeError
from ..ops.geometry import SceneCropConfig, sample_scene_crop, warp_labels
from . import register_task
from .annotated import AnnotatedTask
from .base import FieldSpec

IGNORE = 255
MAX_CLASSES = 254  # 1..254 plus background 0 fit uint8 below the ignore label


def label_layers(height: int, width: int, annotations: list[dict], class_of: dict):
    """(top, semantic_of, instance_of, table): ``top`` ((H, W), uint8 when the layers fit in it,
    else uint16) is the topmost layer of each pixel by the module's rules (0 none, crowd layers
    first, then instances in paint order, larger first); ``semantic_of`` / ``instance_of`` map a
    layer to its class and instance id (one extra last layer: outside the source, 255 / 0);
    ``table`` maps instance ids to their annotations. Labels are looked up after warping ``top``:
    one nearest-neighbour warp, and lookups at the crop's size."""
    runs = [(ann, annotation_runs(ann, height, width)) for ann in annotations]
    crowd = [(a, r) for a, r in runs if a.get("iscrowd", 0)]
    things = sorted(((a, r) for a, r in runs if not a.get("iscrowd", 0)),
                    key=lambda ar: (-int((ar[1][1] - ar[1][0]).sum()), ar[0]["id"]))  # mask area
    layers = 1 + len(crowd) + len(things) + 1
    # painted over the column-major pixels, the runs' own order: one slice per run
    flat = np.zeros(height * width, np.uint8 if layers <= 256 else np.uint16)
    for rank, (_, (starts, stops)) in enumerate(crowd + things, start=1):
        for start, stop in zip(starts.tolist(), stops.tolist()):
            flat[start:stop] = rank
    semantic_of = np.array([0] + [IGNORE] * len(crowd) + [class_of[a["category_id"]] for a, _ in things] + [IGNORE], np.uint8)
    instance_of = np.array([0] * (1 + len(crowd)) + list(range(1, len(things) + 1)) + [0], np.uint16)
    table = {number: ann for number, (ann, _) in enumerate(things, start=1)}
    return cv2.transpose(flat.reshape(width, height)), semantic_of, instance_of, table  # row-major; ~8x numpy's copy


def label_maps(height: int, width: int, annotations: list[dict], class_of: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Source-resolution (semantic uint8, instance uint16, {instance id: annotation})."""
    top, semantic_of, instance_of, table = label_layers(height, width, annotations, class_of)
    return semantic_of.take(top), instance_of.take(top), table


def boundary_band(instance: np.ndarray, band: int) -> np.ndarray:
    """uint8 255 where an instance pixel has a pixel of another id within ``band`` px (square
    window); the map's edge is not a boundary (replicated)."""
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    grown = cv2.dilate(instance, kernel, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(instance, kernel, borderType=cv2.BORDER_REPLICATE)
    # another id in the window <=> its max and min differ (the pixel's own id lies between them)
    return cv2.bitwise_and(cv2.compare(grown, shrunk, cv2.CMP_NE), cv2.compare(instance, 0, cv2.CMP_GT))


@register_task
class SegmentTask(AnnotatedTask):
    name = "segment"
    train_kind = "segment"
    demo_file = "instances.json"
    geometry_config = SceneCropConfig
    recipe_keys = frozenset({"geometry", "photometric", "boundary_ratio"})

    def __init__(self, recipe, options, inputs):
        super().__init__(recipe, options, inputs)
        self.boundary_ratio = float(recipe.raw.get("boundary_ratio", 0.02))
        if not self.boundary_ratio >= 0:
            raise RecipeError(f"{recipe.path} line {recipe.line('boundary_ratio')}: boundary_ratio must be >= 0")
        self.classes: list[str] = []
        self.class_of: dict[int, int] = {}

    def dataset_ready(self, dataset):
        ordered = sorted(dataset.categories.values(), key=lambda c: c.id)
        if len(ordered) > MAX_CLASSES:
            raise PairgenError(f"{dataset.path}: {len(ordered)} categories; semantic.png holds at most {MAX_CLASSES} "
                               f"(uint8 with 0 = background and {IGNORE} = ignore)")
        self.classes = ["background"] + [c.name for c in ordered]
        self.class_of = {c.id: i for i, c in enumerate(ordered, start=1)}

    def select(self, dataset, annotations, skipped):
        chosen = []
        for ann in annotations:
            if "segmentation" not in ann:
                self.counts["no segmentation"] += 1
                continue
            chosen.append({"id": ann["id"], "category_id": ann["category_id"], "iscrowd": int(ann.get("iscrowd", 0)),
                           "segmentation": ann["segmentation"]})
        return chosen

    # ------------------------------------------------------------------ making
    def prepare(self, image, annotations):
        return label_layers(image.shape[0], image.shape[1], annotations, self.class_of)

    def sample_geometry(self, rng, image, annotations, k, record):
        record["source_annotations"] = annotations
        record["category_to_class"] = {str(c): i for c, i in self.class_of.items()}
        record["classes"] = {str(i): name for i, name in enumerate(self.classes)}
        record["boundary_ratio"] = self.boundary_ratio
        return sample_scene_crop(rng, self.geometry, image.shape[0], image.shape[1], self.side, self.side)

    def make_crop(self, warped, affine, prepared, record):
        return crop_fields(warped, affine, prepared, record)

    @classmethod
    def replay_crop(cls, image, warped, affine, record):
        class_of = {int(c): i for c, i in record["category_to_class"].items()}
        prepared = label_layers(image.shape[0], image.shape[1], record["source_annotations"], class_of)
        return crop_fields(warped, affine, prepared, dict(record))

    # ------------------------------------------------------------------ card
    def fields(self):
        side = self.side
        return {
            "image.png": FieldSpec("input", "uint8", [side, side, 3], "the crop (warped, photometric steps applied), 8-bit "
                                   "sRGB RGB; black where the warp left the source", "rgb"),
            "semantic.png": FieldSpec("target", "uint8", [side, side], "class ids: 0 background, 1..N the categories in COCO "
                                      "id order (card 'classes'), 255 ignore (crowd, outside the source)", "classes"),
            "instance.png": FieldSpec("aux", "uint16", [side, side], "instance ids 1..M (paint order: larger first), 0 none; "
                                      "json 'instances' maps each id to its class and COCO annotation", "ids"),
            "boundary.png": FieldSpec("aux", "uint8", [side, side], "255 on instance boundaries: a band of boundary_px inside "
                                      "each instance next to another id (card 'conventions.boundary'), 0 elsewhere", "boundary"),
            "json": FieldSpec("meta", "json", [], "classes (id -> name), category_to_class (COCO category id -> class id), "
                              "instances (id -> class, name, annotation id), boundary_px, geometry (the warp), photometric_ops, "
                              "source_annotations (what was painted)"),
        }

    def card(self):
        card = super().card()
        card["classes"] = self.classes
        card["num_classes"] = len(self.classes)
        card["ignore_index"] = IGNORE
        card["category_to_class"] = {str(c): i for c, i in self.class_of.items()}
        card["conventions"] = {
            "semantic": "uint8: 0 background (no annotation), 1..N categories in COCO id order, 255 ignore (crowd regions "
                        "not covered by an instance; pixels from outside the source image)",
            "instance": "uint16 1..M, painted largest mask first so smaller overlapping instances stay on top; 0 none; "
                        "semantic and instance come from one painting and agree",
            "boundary": f"255 where an instance pixel has a pixel of another id within d px (square window), d = max(1, "
                        f"round({self.boundary_ratio} x crop diagonal)) (Boundary IoU's band, inside the object); the crop "
                        "edge is not a boundary",
            "resampling": "image bilinear; semantic and instance nearest-neighbour, with the same warp",
        }
        return card

    def recipe_card(self):
        return {"boundary_ratio": self.boundary_ratio}


def lookup(table: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """``table[layers]``: by cv2.LUT for uint8 layers (~3x faster than take), else take."""
    if layers.dtype != np.uint8:
        return table.take(layers)
    padded = np.zeros(256, table.dtype)
    padded[:len(table)] = table
    return cv2.LUT(layers, padded)


def crop_fields(warped, affine, prepared, record) -> dict:
    top, semantic_of, instance_of, table = prepared
    layers = warp_labels(top, affine, len(semantic_of) - 1)  # outside the source: the last layer
    semantic, instance = lookup(semantic_of, layers), lookup(instance_of, layers)
    band = max(1, round(record["boundary_ratio"] * float(np.hypot(affine.width, affine.height))))
    # the same ids as bytes where they fit: cv2's 8-bit dilate and erode are ~2x faster
    boundary = boundary_band(lookup(instance_of.astype(np.uint8), layers) if layers.dtype == np.uint8 else instance, band)
    class_of = {int(c): i for c, i in record["category_to_class"].items()}
    seen = cv2.calcHist([layers], [0], None, [len(semantic_of)], [0, len(semantic_of)]).ravel() > 0  # the layers in the crop
    present = sorted(int(i) for i in instance_of[seen] if i > 0)
    record["instances"] = {str(i): {"class": class_of[table[i]["category_id"]], "name": record["classes"][str(class_of[table[i]["category_id"]])],
                                    "annotation_id": table[i]["id"]} for i in present}
    record["boundary_px"] = band
    ignored = cv2.countNonZero(cv2.compare(semantic, IGNORE, cv2.CMP_EQ))
    record["summary"] = {"instances": len(present), "ignore_fraction": round(ignored / semantic.size, 5),
                         "flip": affine.flip, "scale": affine.scale}
    return {"image.png": warped, "semantic.png": semantic, "instance.png": instance, "boundary.png": boundary}
