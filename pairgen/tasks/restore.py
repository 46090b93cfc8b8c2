"""Old-photo restoration: one clean crop gives every stage of the restoration chain, aligned.

    hr.png        the crop (super-resolution target)
    color_lr.png  hr downscaled by --scale, the mean of each s x s block (colorization target)
    mono.png      color_lr through the recipe's film steps (inpainting target: no damage)
    damaged.png   mono with physical damage (recipe ``damage``), then the ``degrade`` steps
                  (blur, noise, JPEG) at the low resolution (the model input)
    damage_mask.png  255 exactly where the damage steps changed mono.png's 8-bit pixels, else 0

LR grid as in ``superres``: LR pixel (i, j) covers HR pixels [s i, s (i + 1)) x [s j, s (j + 1)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..errors import RecipeError
from ..ops.resize import resize_image
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec, option
from .colorize import FILM_CONVENTIONS, FilmSetup
from .photo import PhotoOptions, PhotoTask
from .superres import SCALES

LR_RESIZE = "area"  # the mean of the s x s HR pixels an LR pixel covers: the grid convention itself


@dataclass(frozen=True)
class RestoreOptions(PhotoOptions):
    scale: int | None = option(int, "Factor between hr.png and the low-resolution stages (default: the recipe's).", choices=SCALES)


def damage_mask(mono: np.ndarray, damaged: np.ndarray) -> np.ndarray:
    """uint8 (H, W): 255 where any channel of the 8-bit damaged image differs from mono, else 0."""
    return np.where(np.any(mono != damaged, axis=2), np.uint8(255), np.uint8(0))


@register_task
class RestoreTask(PhotoTask):
    name = "restore"
    Options = RestoreOptions
    recipe_keys = frozenset({"scale", "film", "damage", "degrade"})
    train_kind = "image"

    def __init__(self, recipe, options: RestoreOptions, inputs):
        raw = recipe.raw
        self.scale = int(options.scale if options.scale is not None else raw.get("scale", 4))
        if self.scale not in SCALES:
            raise RecipeError(f"{recipe.path} line {recipe.line('scale')}: scale must be one of {SCALES}, got {self.scale}")
        self.crop_grid = self.scale
        super().__init__(recipe, options, inputs)
        self.film = FilmSetup.from_recipe(recipe)
        self.damage_steps = compile_steps(raw.get("damage"), recipe.path, "damage")
        self.degrade_steps = compile_steps(raw.get("degrade"), recipe.path, "degrade")

    def make_crop(self, crop, rng, record):
        record["scale"] = self.scale
        h, w = crop.shape[0] // self.scale, crop.shape[1] // self.scale
        color_lr = resize_image(ops.to_float(crop), h, w, LR_RESIZE)
        mono_f = self.film.run(color_lr, rng, record)
        ctx = ops.Context((h, w))
        record["damage_ops"], record["degrade_ops"] = [], []
        damaged_f = run_steps(self.damage_steps, mono_f, rng, ctx, record["damage_ops"])
        degraded = run_steps(self.degrade_steps, damaged_f, rng, ctx, record["degrade_ops"])
        if degraded.shape[:2] != (h, w):
            raise RecipeError(f"recipe {self.recipe_name!r}: the degrade steps changed the size to "
                              f"{degraded.shape[1]}x{degraded.shape[0]}; they must keep the low resolution {w}x{h}")
        mono = ops.to_uint8(mono_f)
        mask = damage_mask(mono, ops.to_uint8(damaged_f))
        # list-valued damage parameters (one entry per scratch, fold, stain, corner) as counts, for the histograms
        counts = {f"{e['label']}.count": len(v) for e in record["damage_ops"] for v in e["params"].values() if isinstance(v, list)}
        record["summary"] = {**record["film"], **counts, "damaged_fraction": round(float((mask > 0).mean()), 5)}
        return {"damaged.png": ops.to_uint8(degraded), "damage_mask.png": mask, "mono.png": mono,
                "color_lr.png": ops.to_uint8(color_lr), "hr.png": np.ascontiguousarray(crop)}

    @classmethod
    def replay_crop(cls, crop, record):
        s = record["scale"]
        color_lr = resize_image(ops.to_float(crop), crop.shape[0] // s, crop.shape[1] // s, LR_RESIZE)
        mono_f = replay_ops(color_lr, record["film_ops"])
        damaged_f = replay_ops(mono_f, record["damage_ops"])
        mono = ops.to_uint8(mono_f)
        return {"damaged.png": ops.to_uint8(replay_ops(damaged_f, record["degrade_ops"])),
                "damage_mask.png": damage_mask(mono, ops.to_uint8(damaged_f)), "mono.png": mono,
                "color_lr.png": ops.to_uint8(color_lr), "hr.png": np.ascontiguousarray(crop)}

    # ------------------------------------------------------------------ card
    def fields(self):
        hr = self.crop or None
        lr = self.crop // self.scale or None
        grid = f"1/{self.scale} of hr.png on its pixel grid (LR pixel i covers HR pixels [s*i, s*(i+1)))"
        return {
            "damaged.png": FieldSpec("input", "uint8", [lr, lr, 3], f"the old print with physical damage, blurred, noisy "
                                     f"and JPEG-compressed, 8-bit sRGB RGB, {grid}", "rgb"),
            "damage_mask.png": FieldSpec("target", "uint8", [lr, lr], "8-bit gray: 255 exactly where the damage steps "
                                         "changed mono.png's 8-bit pixels (scratches, dust, folds, cracks, stains, tears), "
                                         "0 elsewhere: the segmentation target", "mask"),
            "mono.png": FieldSpec("aux", "uint8", [lr, lr, 3], "the same film print without physical damage or degradation "
                                  "(the inpainting target), 8-bit sRGB RGB; toned prints keep their hue", "rgb"),
            "color_lr.png": FieldSpec("aux", "uint8", [lr, lr, 3], f"the colour photo at low resolution (the colorization "
                                      f"target), the mean of each s x s block of hr.png, {grid}", "rgb"),
            "hr.png": FieldSpec("aux", "uint8", [hr, hr, 3], "the full-resolution colour crop (the super-resolution "
                                "target), 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), "
                              "scale, seed, film (emulsion, illuminant, toner), every applied operation with its drawn "
                              "parameters (film_ops, damage_ops, degrade_ops), summary"),
        }

    def options_record(self):
        return {**super().options_record(), "scale": self.scale}

    def card(self):
        return {
            **super().card(),
            "scale": self.scale,
            "preview": {"order": ["damaged.png", "damage_mask.png", "mono.png", "color_lr.png", "hr.png"],
                        "overlays": {"damage_mask.png": "damaged.png"}},
            "conventions": {
                **FILM_CONVENTIONS,
                "stages": "damaged.png -> damage_mask.png (detect) -> mono.png (inpaint) -> color_lr.png (colorize) -> "
                          "hr.png (super-resolve); train one stage with train/fit.py --input FIELD --target FIELD",
                "lr_grid": f"LR pixel (i, j) covers HR pixels [{self.scale}i, {self.scale}(i+1)) x [{self.scale}j, "
                           f"{self.scale}(j+1)); no half-pixel shift",
                "damage_mask": "255 where a damage step changed the 8-bit pixel, 0 elsewhere; blur, noise and JPEG after "
                               "it are not damage",
            },
            "recipe": {"task": self.name, "scale": self.scale, "description": self.description,
                       "film": self.film.describe(), "damage": [s.describe() for s in self.damage_steps],
                       "degrade": [s.describe() for s in self.degrade_steps]},
        }
