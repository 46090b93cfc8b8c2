"""Super-resolution pairs: an HR crop of a photo and its degraded LR at 1/scale.

Grid convention: LR pixel (i, j) covers HR pixels [s*i, s*(i+1)) x [s*j, s*(j+1)); its centre
is HR position s*(i + 0.5). Every resize in the recipes keeps that (OpenCV's half-pixel
mapping), so the pair has no half-pixel shift.
"""
from __future__ import annotations

import numpy as np

from .. import __version__, ops
from ..errors import RecipeError
from ..recipes import compile_steps, replay_ops, run_steps
from ..sources import DecodeError, SourceRef, display_path, list_sources, load_rgb
from .base import FieldSpec, SkipSample, Task, WorkItem

RECIPE_KEYS = {"task", "description", "scale", "target", "degrade"}
SCALES = (2, 3, 4, 8)


class SuperResTask(Task):
    name = "superres"

    def __init__(self, recipe_name: str, recipe_path: str, raw: dict, srcs: list[str], seed: int = 0,
                 crop: int = 256, crops_per_image: int = 1, scale: int | None = None, limit: int | None = None,
                 max_pixels: int | None = None):
        for key in raw:
            if key not in RECIPE_KEYS:
                line = getattr(raw, "lines", {}).get(key, 0)
                raise RecipeError(f"{recipe_path} line {line}: unknown key {key!r}; allowed: {', '.join(sorted(RECIPE_KEYS))}")
        self.scale = int(scale if scale is not None else raw.get("scale", 4))
        if self.scale not in SCALES:
            raise RecipeError(f"{recipe_path}: scale must be one of {SCALES}, got {self.scale}")
        self.recipe_name = recipe_name
        self.description = str(raw.get("description", ""))
        self.target_steps = compile_steps(raw.get("target"), recipe_path, "target")
        self.degrade_steps = compile_steps(raw.get("degrade"), recipe_path, "degrade")
        self.srcs = list(srcs)
        self.seed = int(seed)
        self.crop = int(crop)
        self.crops_per_image = int(crops_per_image)
        self.limit = limit
        self.max_pixels = max_pixels

    # ------------------------------------------------------------------ planning
    def plan(self):
        kwargs = {"max_pixels": self.max_pixels} if self.max_pixels else {}
        refs, skipped = list_sources(self.srcs, min_side=self.crop or self.scale, **kwargs)
        items, index = [], 0
        for ref in refs:
            n = self.crops_per_image if self.limit is None else min(self.crops_per_image, self.limit - index)
            if n <= 0:
                break
            items.append(WorkItem(f"{index:09d}", ref.identity,
                                  {"source": ref.to_json(), "first_index": index, "first_crop": 0, "samples": n}))
            index += n
        return items, skipped

    # ------------------------------------------------------------------ making
    def make(self, item: WorkItem, rng: np.random.Generator):
        ref = SourceRef.from_json(item.payload["source"])
        try:
            image = load_rgb(ref, **({"max_pixels": self.max_pixels} if self.max_pixels else {}))
        except DecodeError as exc:
            raise SkipSample(display_path(ref), str(exc)) from None
        h, w = image.shape[:2]
        if self.crop and min(h, w) < self.crop:
            raise SkipSample(display_path(ref), f"too small: {w}x{h} px, the crop needs {self.crop}x{self.crop}")
        samples = []
        # One child generator per crop: crop k draws the same numbers whatever --crops-per-image
        # is and whichever shard it lands in.
        first, n = item.payload["first_crop"], item.payload["samples"]
        for k, crop_rng in enumerate(rng.spawn(first + n)[first:], start=first):
            box = self._crop_box(h, w, crop_rng)
            record = {
                "pairgen_version": __version__,
                "recipe": self.recipe_name,
                "seed": self.seed,
                "source": ref.to_json(),
                "source_path": display_path(ref),
                "crop_index": k,
                "crop_box": list(box),
                "scale": self.scale,
            }
            hr, lr = self._degrade(image, box, crop_rng, record)
            key = f"{item.payload['first_index'] + k - first:09d}"
            samples.append((key, {"hr.png": hr, "lr.png": lr, "json": record}))
        return samples

    def split(self, item: WorkItem, first: int):
        p = item.payload
        head = WorkItem(item.key, item.identity, {**p, "samples": first})
        tail_index = p["first_index"] + first
        tail = WorkItem(f"{tail_index:09d}", item.identity,
                        {**p, "first_index": tail_index, "first_crop": p["first_crop"] + first, "samples": p["samples"] - first})
        return head, tail

    def _crop_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in source pixels, end exclusive, x right / y down."""
        if self.crop == 0:
            return (0, 0, w - w % self.scale, h - h % self.scale)
        y0 = int(rng.integers(0, h - self.crop + 1))
        x0 = int(rng.integers(0, w - self.crop + 1))
        return (x0, y0, x0 + self.crop, y0 + self.crop)

    def _degrade(self, image, box, rng, record):
        x0, y0, x1, y1 = box
        hr = ops.to_float(image[y0:y1, x0:x1])
        ctx = ops.Context((y1 - y0, x1 - x0), self.scale)
        record["target_ops"], record["degrade_ops"] = [], []
        target = run_steps(self.target_steps, hr, rng, ctx, record["target_ops"])
        lr = run_steps(self.degrade_steps, hr, rng, ctx, record["degrade_ops"])
        if lr.shape[:2] != ctx.target_size:
            raise RecipeError(
                f"recipe {self.recipe_name!r}: the degrade steps ended at {lr.shape[1]}x{lr.shape[0]} px, "
                f"not the target {ctx.target_size[1]}x{ctx.target_size[0]}; end them with resize_to_target"
            )
        return ops.to_uint8(target), ops.to_uint8(lr)

    # ------------------------------------------------------------------ card
    def fields(self):
        hr = [self.crop or None, self.crop or None, 3]
        lr = [self.crop // self.scale or None, self.crop // self.scale or None, 3]
        return {
            "lr.png": FieldSpec("input", "uint8", lr, f"degraded low-resolution image, 8-bit sRGB RGB, 1/{self.scale} of hr on the same pixel grid (LR pixel i covers HR pixels [s*i, s*(i+1)))"),
            "hr.png": FieldSpec("target", "uint8", hr, "high-resolution crop of the source photo (after the recipe's target steps), 8-bit sRGB RGB"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), scale, seed, recipe, and every applied operation with its drawn parameters (target_ops, degrade_ops)"),
        }

    def card(self):
        return {
            "scale": self.scale,
            "crop": self.crop,
            "conventions": {
                "lr_grid": f"LR pixel (i, j) covers HR pixels [{self.scale}i, {self.scale}(i+1)) x [{self.scale}j, {self.scale}(j+1)); no half-pixel shift",
                "crop_box": "source pixels after EXIF orientation; --crop 0 trims the bottom and right to a multiple of the scale",
            },
            "description": self.description,
            "recipe": {
                "task": self.name,
                "scale": self.scale,
                "description": self.description,
                "target": [s.describe() for s in self.target_steps],
                "degrade": [s.describe() for s in self.degrade_steps],
            },
        }


def replay(record: dict) -> dict[str, np.ndarray]:
    """Regenerate a super-resolution sample bit-exactly from its json record."""
    ref = SourceRef.from_json(record["source"])
    image = load_rgb(ref)
    x0, y0, x1, y1 = record["crop_box"]
    hr = ops.to_float(image[y0:y1, x0:x1])
    target = replay_ops(hr, record["target_ops"])
    lr = replay_ops(hr, record["degrade_ops"])
    return {"hr.png": ops.to_uint8(target), "lr.png": ops.to_uint8(lr)}
