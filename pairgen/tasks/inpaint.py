"""Inpainting pairs: a photo crop (target), the crop with holes filled by a fixed value
(input), and the hole mask (input).

The recipe names mask families under ``families`` (name -> steps of mask operations,
``pairgen.ops.masks``; a ``one_of`` inside a family mixes sub-families) and picks one with
``family``: a name, or ``any`` to draw one per sample by ``family_weights``.

Hole-ratio rule (``hole_ratio`` / ``--hole-ratio LO-HI``, fractions of the crop's pixels,
inclusive): a mask is drawn again, from the same sample generator, until its ratio lies in the
range (rejection sampling: the family's own distribution, cut to the range) for at most
``max_draws`` draws. If none does, the last draw is grown (outside pixels nearest the holes
first, by Euclidean distance, ties in raster order) or shrunk (hole pixels nearest the kept
part first) to exactly round(U(LO, HI) x pixels) hole pixels; an empty draw is grown from a
drawn seed pixel. Every mask is therefore within the range and never empty; the record says
how many draws it took and what was adjusted.

Fill: ``masked.png`` is ``image.png`` with every hole pixel set to ``fill`` (default 0, black:
LaMa's ``image * (1 - mask)`` convention, so the hole carries no trace of the photo); every
other pixel is ``image.png``'s, bit for bit.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .. import ops, storage
from ..errors import PairgenError, RecipeError, UsageError
from ..ops.masks import MaskShape, shape_from_mask
from ..ops.util import choose
from ..sources import Skip, display_path, list_sources, load_rgb
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec, SkipSample, option
from .photo import PhotoOptions, PhotoTask

# The hole-ratio bins inpainting papers report results in (Liu et al. 2018's test masks): (lo, hi].
STANDARD_BINS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
HISTOGRAM_BINS = 50  # the card's hole-ratio histogram: 50 bins of 0.02 over [0, 1]
MIN_OBJECT_AREA = 32 * 32  # COCO annotations smaller than COCO's "small" objects make no useful hole
GRAY_TOLERANCE = 0.05  # a user mask with more mid-gray pixels than this is not a mask


@dataclass(frozen=True)
class InpaintOptions(PhotoOptions):
    hole_ratio: str | None = option(str, "Hole ratio range LO-HI, fractions of the crop with 0 < LO < HI < 1 "
                                         "(default: the recipe's, 0.01-0.6); every mask lands inside it.")
    masks: str | None = option(str, "A folder of user masks (255 = hole; any size): object-shaped holes, "
                                    "resized and placed at random.")
    annotations: str | None = option(str, "A COCO instances JSON: its segmentation polygons / RLE become "
                                          "object-shaped holes, resized and placed at random.")


def parse_hole_ratio(text) -> tuple[float, float]:
    """'LO-HI' (or a [lo, hi] list from a recipe) -> (lo, hi) with 0 < lo < hi < 1; UsageError otherwise."""
    try:
        lo, hi = (float(v) for v in (text.split("-") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise UsageError(f"--hole-ratio: expected LO-HI, two fractions such as 0.1-0.3, got {text!r}") from None
    if not 0.0 < lo < hi < 1.0:
        raise UsageError(f"--hole-ratio {lo}-{hi}: needs 0 < LO < HI < 1 (fractions of the crop's pixels), e.g. 0.1-0.3")
    return lo, hi


@register_task
class InpaintTask(PhotoTask):
    name = "inpaint"
    Options = InpaintOptions
    recipe_keys = frozenset({"family", "families", "family_weights", "hole_ratio", "max_draws", "fill", "user_mask_hole"})
    train_kind = "inpaint"

    def __init__(self, recipe, options: InpaintOptions, inputs):
        super().__init__(recipe, options, inputs)
        raw = recipe.raw
        families = raw.get("families")
        if not isinstance(families, dict) or not families:
            raise RecipeError(f"{recipe.path} line {recipe.line('families')}: 'families' must map names to step lists")
        self.families = {str(n): compile_steps(steps, recipe.path, f"families.{n}") for n, steps in families.items()}
        self.family_setting = str(raw.get("family", "any"))
        if self.family_setting != "any" and self.family_setting not in self.families:
            raise RecipeError(f"{recipe.path} line {recipe.line('family')}: family {self.family_setting!r} is not one of "
                              f"the recipe's families ({', '.join(self.families)}) or 'any'")
        self.chosen = list(self.families) if self.family_setting == "any" else [self.family_setting]
        weights = raw.get("family_weights") or {}
        if not isinstance(weights, dict) or any(k not in self.families or not isinstance(v, (int, float)) or v < 0
                                                for k, v in weights.items()):
            raise RecipeError(f"{recipe.path} line {recipe.line('family_weights')}: family_weights must map family "
                              f"names ({', '.join(self.families)}) to weights >= 0")
        raw_weights = [float(weights.get(n, 1.0)) for n in self.chosen]
        if sum(raw_weights) <= 0:
            raise RecipeError(f"{recipe.path}: the chosen families' weights sum to 0")
        self.weights = [w / sum(raw_weights) for w in raw_weights]
        self.hole_ratio = parse_hole_ratio(options.hole_ratio if options.hole_ratio is not None
                                           else raw.get("hole_ratio", [0.01, 0.6]))
        self.max_draws = int(raw.get("max_draws", 100))
        self.fill = int(raw.get("fill", 0))
        if not 0 <= self.fill <= 255 or self.max_draws < 1:
            raise RecipeError(f"{recipe.path}: fill must be 0..255 and max_draws >= 1")
        if self.crop:
            _pixel_bounds(self.hole_ratio, self.crop * self.crop, f"--crop {self.crop}")
        hole_is = str(raw.get("user_mask_hole", "white"))
        if hole_is not in ("white", "black"):
            raise RecipeError(f"{recipe.path}: user_mask_hole must be white (255 = hole) or black (0 = hole)")
        self.masks_dir, self.annotations = options.masks, options.annotations
        self.shape_skips: list[Skip] = []
        shapes: list = []
        if options.masks:
            folder_shapes, skips = load_mask_folder(options.masks, hole_is == "white")
            shapes += folder_shapes
            self.shape_skips += skips
        if options.annotations:
            coco, skips = load_coco_shapes(options.annotations)
            shapes = _Concat(shapes, coco) if shapes else coco
            self.shape_skips += skips
        self.shapes = shapes
        self.user_mask_hole = hole_is

    def plan(self):
        items, skipped = super().plan()
        return items, self.shape_skips + skipped

    # ------------------------------------------------------------------ making
    def make_crop(self, crop, rng, record):
        h, w = crop.shape[:2]
        holes = self.draw_holes(h, w, rng, record)
        record["fill"] = self.fill
        record["summary"] = {"family": record["family"], "hole_ratio": round(float(np.count_nonzero(holes)) / (h * w), 6)}
        return {"masked.png": _masked(crop, holes, self.fill), "mask.png": holes.view(np.uint8) * np.uint8(255),
                "image.png": np.ascontiguousarray(crop)}

    def draw_holes(self, h: int, w: int, rng: np.random.Generator, record: dict) -> np.ndarray:
        """A boolean (h, w) hole mask within the hole-ratio range (module docstring); adds the
        family, the mask operations and the fit to ``record``."""
        lo_count, hi_count = _pixel_bounds(self.hole_ratio, h * w, f"{w}x{h} px image", skip=True)
        ctx = ops.Context((h, w), extra={"mask_shapes": self.shapes})
        for draw in range(1, self.max_draws + 1):
            name = self.chosen[choose(rng, self.weights)] if len(self.chosen) > 1 else self.chosen[0]
            applied = []
            holes = run_steps(self.families[name], np.zeros((h, w), np.uint8), rng, ctx, applied).view(bool)
            count = int(np.count_nonzero(holes))
            if lo_count <= count <= hi_count:
                fit = {"draws": draw, "adjust": "none"}
                break
        else:
            target = min(hi_count, max(lo_count, round(rng.uniform(*self.hole_ratio) * h * w)))
            fit = {"draws": self.max_draws, "adjust": "grow" if count < lo_count else "shrink", "target_pixels": target}
            if count == 0:
                fit["seed_pixel"] = [int(rng.integers(w)), int(rng.integers(h))]
            holes = fit_holes(holes, fit)
        record.update(family=name, mask_ops=applied, hole_fit=fit)
        return holes

    @classmethod
    def replay_crop(cls, crop, record):
        h, w = crop.shape[:2]
        holes = replay_ops(np.zeros((h, w), np.uint8), record["mask_ops"]).view(bool)
        holes = fit_holes(holes, record["hole_fit"])
        return {"masked.png": _masked(crop, holes, record["fill"]), "mask.png": holes.view(np.uint8) * np.uint8(255),
                "image.png": np.ascontiguousarray(crop)}

    # ------------------------------------------------------------------ card
    def fields(self):
        side = self.crop or None
        return {
            "masked.png": FieldSpec("input", "uint8", [side, side, 3], f"image.png with every hole pixel set to {self.fill} "
                                    "(all channels); identical to image.png outside the hole, 8-bit sRGB RGB", "rgb"),
            "mask.png": FieldSpec("input", "uint8", [side, side], "hole mask, 8-bit gray: 255 = hole (to fill), 0 = kept; "
                                  "same pixel grid as image.png", "hole"),
            "image.png": FieldSpec("target", "uint8", [side, side, 3], "the photo crop, 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), "
                              "seed, the mask family drawn, every mask operation with its parameters (mask_ops), the "
                              "hole-ratio fit (hole_fit), the fill value, summary (family, hole_ratio)"),
        }

    def options_record(self):
        return {**super().options_record(), "hole_ratio": list(self.hole_ratio), "masks": self.masks_dir,
                "annotations": self.annotations}

    def card(self):
        return {
            **super().card(),
            "conventions": {"mask": "mask.png: 255 = hole, 0 = kept. masked.png = image.png where mask is 0 (bit for bit) "
                                    f"and {self.fill} in every channel where it is 255"},
            "recipe": {
                "task": self.name,
                "description": self.description,
                "family": self.family_setting,
                "family_weights": dict(zip(self.chosen, self.weights)),
                "families": {n: [s.describe() for s in steps] for n, steps in self.families.items()},
                "hole_ratio": list(self.hole_ratio),
                "max_draws": self.max_draws,
                "fill": self.fill,
                "user_mask_hole": self.user_mask_hole,
            },
            "mask_shapes": len(self.shapes),
            "input_order": ["masked.png", "mask.png"],  # the trainer's channels: RGB, then the mask
        }

    def shard_summary(self, records):
        ratios = [r["summary"]["hole_ratio"] for r in records if "summary" in r]
        counts = np.histogram(ratios, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0]
        families = {}
        for r in records:
            families[r["family"]] = families.get(r["family"], 0) + 1
        adjusted = sum(1 for r in records if r["hole_fit"]["adjust"] != "none")
        return {"hole_ratio_counts": counts.tolist(), "hole_ratio_sum": float(sum(ratios)), "samples": len(ratios),
                "standard_bins": _bin_counts(ratios), "families": families, "adjusted": adjusted}

    def dataset_summary(self, summaries):
        summaries = [s for s in summaries if s]
        n = sum(s["samples"] for s in summaries)
        counts = np.sum([s["hole_ratio_counts"] for s in summaries], axis=0).tolist() if summaries else [0] * HISTOGRAM_BINS
        bins = {}
        families = {}
        for s in summaries:
            for k, v in s["standard_bins"].items():
                bins[k] = bins.get(k, 0) + v
            for k, v in s["families"].items():
                families[k] = families.get(k, 0) + v
        return {"hole_ratio": {
            "range": list(self.hole_ratio),
            "mean": round(sum(s["hole_ratio_sum"] for s in summaries) / n, 6) if n else None,
            "histogram": {"edges": [round(i / HISTOGRAM_BINS, 4) for i in range(HISTOGRAM_BINS + 1)], "counts": counts},
            "standard_bins": bins or _bin_counts([]),
            "families": families,
            "adjusted": sum(s["adjusted"] for s in summaries),
        }}


# ----------------------------------------------------------------------------- holes


def _pixel_bounds(hole_ratio, pixels: int, what: str, skip: bool = False) -> tuple[int, int]:
    """The hole pixel counts allowed: ceil(lo N) .. floor(hi N); an error if none is."""
    lo, hi = hole_ratio
    lo_count, hi_count = max(1, math.ceil(lo * pixels)), math.floor(hi * pixels)
    if lo_count > hi_count:
        message = f"--hole-ratio {lo}-{hi}: no whole number of hole pixels of a {what} is in that range; widen it"
        if skip:
            raise SkipSample(what, message)
        raise UsageError(message)
    return lo_count, hi_count


def fit_holes(holes: np.ndarray, fit: dict) -> np.ndarray:
    """Apply a record's hole-ratio adjustment (module docstring) to a boolean (H, W) mask."""
    if fit["adjust"] == "none":
        return holes
    holes = holes.copy()
    if "seed_pixel" in fit:
        x, y = fit["seed_pixel"]
        holes[y, x] = True
    if fit["adjust"] == "grow":  # distance of every pixel to the nearest hole (0 on holes)
        key = cv2.distanceTransform((~holes).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    else:  # minus the distance of every hole pixel to the kept part: the deepest first
        key = -cv2.distanceTransform(holes.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        key[~holes] = np.inf
    order = np.argsort(key.ravel(), kind="stable")[: fit["target_pixels"]]
    out = np.zeros(holes.size, bool)
    out[order] = True
    return out.reshape(holes.shape)


def _masked(crop: np.ndarray, holes: np.ndarray, fill: int) -> np.ndarray:
    masked = np.array(crop, copy=True, order="C")
    masked[holes] = fill
    return masked


def _bin_counts(ratios) -> dict:
    r = np.asarray(ratios, np.float64)
    out = {f"{lo}-{hi}": int(np.count_nonzero((r > lo) & (r <= hi))) for lo, hi in STANDARD_BINS}
    out["outside"] = int(len(r) - sum(out.values()))
    return out


# ----------------------------------------------------------------------------- shape libraries


def load_mask_folder(folder: str, hole_is_white: bool = True) -> tuple[list[MaskShape], list[Skip]]:
    """Every image of ``folder`` (recursively) as an object silhouette: hole where its gray is
    above 127 (``hole_is_white``; else below 128). Any size: a mask is cropped to its holes'
    bounding box, which the object_mask op resizes and places. Skipped with a reason: files
    that are not images (as for --src), masks without a hole, masks that are all hole, and
    pictures that are not two-level (over 5 % of pixels mid-gray, 32..223)."""
    remote = storage.is_remote(folder)  # an s3:// prefix: listed and read like a remote --src
    if not remote and not os.path.isdir(folder):
        raise PairgenError(f"--masks {folder}: not a folder")
    refs, skips = list_sources([folder])
    skips = [Skip(s.path, f"mask: {s.reason}") for s in skips]
    shapes = []
    for ref in refs:
        gray = cv2.cvtColor(load_rgb(ref), cv2.COLOR_RGB2GRAY)
        hole = gray > 127 if hole_is_white else gray < 128
        path = display_path(ref)
        mid = float(np.count_nonzero((gray >= 32) & (gray <= 223))) / gray.size
        if mid > GRAY_TOLERANCE:
            skips.append(Skip(path, f"mask: not a two-level mask ({mid:.0%} of pixels are mid-gray)"))
        elif not hole.any():
            skips.append(Skip(path, "mask: empty (no hole pixel; holes are " + ("white" if hole_is_white else "black") + ")"))
        elif hole.all():
            skips.append(Skip(path, "mask: all hole (nothing kept)"))
        else:
            shapes.append(shape_from_mask(path[len(folder.rstrip("/")) + 1:] if remote else os.path.relpath(path, folder), hole))
    if not shapes:
        raise PairgenError(f"--masks {folder}: no usable mask ({len(skips)} skipped: "
                           + "; ".join(f"{s.path}: {s.reason}" for s in skips[:3]) + ")")
    return shapes, skips


class _CocoShapes(Sequence):
    """COCO annotations as MaskShapes, each rasterized (pycocotools) when first drawn."""

    def __init__(self, path: str, entries: list):
        self.path, self.entries, self._cache = path, entries, {}

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        if index not in self._cache:
            from pycocotools import mask as coco_mask

            ann_id, segmentation, height, width = self.entries[index]
            if isinstance(segmentation, list):  # polygons, pixel-corner coordinates
                rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                rle = coco_mask.frPyObjects(segmentation, height, width)
            else:
                rle = segmentation
            self._cache[index] = shape_from_mask(f"coco:{ann_id}", coco_mask.decode(rle) > 0)
        return self._cache[index]


class _Concat(Sequence):
    def __init__(self, first, second):
        self.first, self.second = first, second

    def __len__(self):
        return len(self.first) + len(self.second)

    def __getitem__(self, index):
        return self.first[index] if index < len(self.first) else self.second[index - len(self.first)]


def load_coco_shapes(path: str) -> tuple[_CocoShapes, list[Skip]]:
    """The object annotations of a COCO instances JSON as a shape library. Crowd regions (not
    one object's outline), annotations under 32x32 px of area and degenerate polygons are left
    out, counted in one skip entry."""
    try:
        data = json.loads(storage.read_text_input(path))
    except OSError as exc:
        raise PairgenError(f"--annotations {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise PairgenError(f"--annotations {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) or not isinstance(data.get("images"), list):
        raise PairgenError(f"--annotations {path}: not a COCO instances file (needs 'images' and 'annotations' lists)")
    sizes = {img.get("id"): (img.get("height"), img.get("width")) for img in data["images"] if isinstance(img, dict)}
    entries, left_out = [], {"crowd": 0, "small": 0, "invalid": 0}
    for ann in data["annotations"]:
        seg = ann.get("segmentation") if isinstance(ann, dict) else None
        h, w = sizes.get(ann.get("image_id"), (None, None)) if isinstance(ann, dict) else (None, None)
        if ann.get("iscrowd", 0) if isinstance(ann, dict) else 0:
            left_out["crowd"] += 1
        elif not seg or not h or not w:
            left_out["invalid"] += 1
        elif float(ann.get("area", 0)) < MIN_OBJECT_AREA:
            left_out["small"] += 1
        elif isinstance(seg, list) and not any(isinstance(p, list) and len(p) >= 6 for p in seg):
            left_out["invalid"] += 1
        else:
            if isinstance(seg, list):
                seg = [p for p in seg if isinstance(p, list) and len(p) >= 6]
            entries.append((ann.get("id"), seg, int(h), int(w)))
    if not entries:
        raise PairgenError(f"--annotations {path}: no usable object annotation ({left_out['crowd']} crowd, "
                           f"{left_out['small']} under {MIN_OBJECT_AREA} px, {left_out['invalid']} invalid)")
    skips = []
    if any(left_out.values()):
        skips.append(Skip(path, f"annotations left out as holes: {left_out['crowd']} crowd regions, {left_out['small']} "
                                f"under {MIN_OBJECT_AREA} px of area, {left_out['invalid']} without a usable polygon or image size"))
    return _CocoShapes(path, entries), skips
