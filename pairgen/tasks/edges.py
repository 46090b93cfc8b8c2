"""Edges-to-image pairs: an edge map of a photo crop (input) and the crop (target).

The recipe names its edge pipelines under ``detectors`` (name -> steps of edge operations,
``pairgen.ops.edges``) and picks one with ``detector``: a name, or ``any`` to draw one per
sample by ``detector_weights`` (default: equal). The map is quantized to 0 / 255 at the end, so
no gray copy of the photo can leak into the input whatever the steps do. Edges sit on the
image's own pixels (no padding offset, no flip).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import RecipeError
from ..ops.util import choose
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec
from .photo import PhotoTask


@register_task
class EdgesTask(PhotoTask):
    name = "edges"
    recipe_keys = frozenset({"detector", "detectors", "detector_weights", "target"})
    train_kind = "image"

    def __init__(self, recipe, options, inputs):
        super().__init__(recipe, options, inputs)
        raw = recipe.raw
        detectors = raw.get("detectors")
        if not isinstance(detectors, dict) or not detectors:
            raise RecipeError(f"{recipe.path} line {recipe.line('detectors')}: 'detectors' must map names to step lists")
        self.detectors = {str(name): compile_steps(steps, recipe.path, f"detectors.{name}") for name, steps in detectors.items()}
        chosen = str(raw.get("detector", "any"))
        if chosen != "any" and chosen not in self.detectors:
            raise RecipeError(f"{recipe.path} line {recipe.line('detector')}: detector {chosen!r} is not one of "
                              f"the recipe's detectors ({', '.join(self.detectors)}) or 'any'")
        self.chosen = list(self.detectors) if chosen == "any" else [chosen]
        weights = raw.get("detector_weights") or {}
        if not isinstance(weights, dict) or any(k not in self.detectors or not isinstance(v, (int, float)) or v < 0
                                                for k, v in weights.items()):
            raise RecipeError(f"{recipe.path} line {recipe.line('detector_weights')}: detector_weights must map "
                              f"detector names ({', '.join(self.detectors)}) to weights >= 0")
        raw_weights = [float(weights.get(name, 1.0)) for name in self.chosen]
        if sum(raw_weights) <= 0:
            raise RecipeError(f"{recipe.path}: the chosen detectors' weights sum to 0")
        self.weights = [w / sum(raw_weights) for w in raw_weights]
        self.detector_setting = chosen
        self.target_steps = compile_steps(raw.get("target"), recipe.path, "target")

    def make_crop(self, crop, rng, record):
        image = ops.to_float(crop)
        ctx = ops.Context(image.shape[:2])
        name = self.chosen[choose(rng, self.weights)] if len(self.chosen) > 1 else self.chosen[0]
        record["detector"] = name
        record["target_ops"], record["edge_ops"] = [], []
        target = run_steps(self.target_steps, image, rng, ctx, record["target_ops"])
        edges = quantize(run_steps(self.detectors[name], image, rng, ctx, record["edge_ops"]))
        record["summary"] = {"detector": name, "edge_fraction": round(float((edges > 0).mean()), 5)}
        return {"edges.png": edges, "image.png": ops.to_uint8(target)}

    @classmethod
    def replay_crop(cls, crop, record):
        image = ops.to_float(crop)
        return {"edges.png": quantize(replay_ops(image, record["edge_ops"])),
                "image.png": ops.to_uint8(replay_ops(image, record["target_ops"]))}

    def fields(self):
        side = self.crop or None
        return {
            "edges.png": FieldSpec("input", "uint8", [side, side], "edge map of image.png, 8-bit gray: 255 = edge, 0 = none "
                                   "(nothing in between), on image.png's pixels", "gray"),
            "image.png": FieldSpec("target", "uint8", [side, side, 3], "the photo crop (after the recipe's target steps), 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), seed, "
                              "the detector drawn, every applied operation with its parameters (edge_ops, target_ops), summary"),
        }

    def card(self):
        return {
            **super().card(),
            "conventions": {"edges": "edges.png: 255 where an edge is, 0 elsewhere; quantized after the edge steps, so no "
                                     "gray value of the photo reaches the input; same pixel grid as image.png, no shift or flip"},
            "recipe": {
                "task": self.name,
                "description": self.description,
                "detector": self.detector_setting,
                "detector_weights": dict(zip(self.chosen, self.weights)),
                "detectors": {name: [s.describe() for s in steps] for name, steps in self.detectors.items()},
                "target": [s.describe() for s in self.target_steps],
            },
        }


def quantize(edge_image: np.ndarray) -> np.ndarray:
    """The edge steps' float image -> uint8 (H, W): 255 where channel 0 is above 0.5, else 0."""
    return np.where(edge_image[..., 0] > 0.5, np.uint8(255), np.uint8(0))
