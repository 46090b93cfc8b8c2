"""Super-resolution pairs: an HR crop of a photo and its degraded LR at 1/scale.

Grid convention: LR pixel (i, j) covers HR pixels [s*i, s*(i+1)) x [s*j, s*(j+1)); its centre
is HR position s*(i + 0.5). Every resize in the recipes keeps that (OpenCV's half-pixel
mapping), so the pair has no half-pixel shift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..errors import RecipeError
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec, option
from .photo import PhotoOptions, PhotoTask

SCALES = (2, 3, 4, 8)


@dataclass(frozen=True)
class SuperResOptions(PhotoOptions):
    scale: int | None = option(int, "Super-resolution factor (default: the recipe's).", choices=SCALES)


@register_task
class SuperResTask(PhotoTask):
    name = "superres"
    Options = SuperResOptions
    recipe_keys = frozenset({"scale", "target", "degrade"})
    train_kind = "image"

    def __init__(self, recipe, options: SuperResOptions, inputs):
        raw = recipe.raw
        self.scale = options.scale if options.scale is not None else recipe.value("scale", int, 4)
        if self.scale not in SCALES:
            raise RecipeError(f"{recipe.where('scale')}: scale must be one of {SCALES}, got {self.scale}")
        self.crop_grid = self.scale
        super().__init__(recipe, options, inputs)
        self.target_steps = compile_steps(raw.get("target"), recipe.path, "target")
        self.degrade_steps = compile_steps(raw.get("degrade"), recipe.path, "degrade")

    def make_crop(self, crop, rng, record):
        record["scale"] = self.scale
        hr = ops.to_float(crop)
        ctx = ops.Context(hr.shape[:2], self.scale)
        record["target_ops"], record["degrade_ops"] = [], []
        target = run_steps(self.target_steps, hr, rng, ctx, record["target_ops"]) if self.target_steps else None
        lr = run_steps(self.degrade_steps, hr, rng, ctx, record["degrade_ops"])
        if lr.shape[:2] != ctx.target_size:
            raise RecipeError(
                f"recipe {self.recipe_name!r}: the degrade steps ended at {lr.shape[1]}x{lr.shape[0]} px, "
                f"not the target {ctx.target_size[1]}x{ctx.target_size[0]}; end them with resize_to_target"
            )
        # No target steps: the HR is the crop itself (to_uint8(to_float(x)) == x for every value).
        return {"hr.png": np.ascontiguousarray(crop) if target is None else ops.to_uint8(target), "lr.png": ops.to_uint8(lr)}

    @classmethod
    def replay_crop(cls, crop, record):
        hr = ops.to_float(crop)
        target = replay_ops(hr, record["target_ops"])
        lr = replay_ops(hr, record["degrade_ops"])
        return {"hr.png": ops.to_uint8(target), "lr.png": ops.to_uint8(lr)}

    # ------------------------------------------------------------------ card
    def fields(self):
        hr = [self.crop or None, self.crop or None, 3]
        lr = [self.crop // self.scale or None, self.crop // self.scale or None, 3]
        return {
            "lr.png": FieldSpec("input", "uint8", lr, f"degraded low-resolution image, 8-bit sRGB RGB, 1/{self.scale} of hr on the same pixel grid (LR pixel i covers HR pixels [s*i, s*(i+1)))", "rgb"),
            "hr.png": FieldSpec("target", "uint8", hr, "high-resolution crop of the source photo (after the recipe's target steps), 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), scale, seed, recipe, and every applied operation with its drawn parameters (target_ops, degrade_ops)"),
        }

    def options_record(self):
        return {**super().options_record(), "scale": self.scale}

    def card(self):
        return {
            **super().card(),
            "scale": self.scale,
            "conventions": {
                "lr_grid": f"LR pixel (i, j) covers HR pixels [{self.scale}i, {self.scale}(i+1)) x [{self.scale}j, {self.scale}(j+1)); no half-pixel shift",
                "crop_box": "source pixels after EXIF orientation; --crop 0 trims the bottom and right to a multiple of the scale",
            },
            "recipe": {
                "task": self.name,
                "scale": self.scale,
                "description": self.description,
                "target": [s.describe() for s in self.target_steps],
                "degrade": [s.describe() for s in self.degrade_steps],
            },
        }
