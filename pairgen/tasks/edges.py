"""Edges-to-image pairs: an edge map of a photo crop (input) and the crop (target).

The recipe names its edge pipelines under ``detectors`` (name -> steps of edge operations,
``pairgen.ops.edges``) and picks one with ``detector``: a name, or ``any`` to draw one per
sample by ``detector_weights`` (default: equal). The map is quantized to 0 / 255 at the end, so
no gray copy of the photo can leak into the input whatever the steps do. Edges sit on the
image's own pixels (no padding offset, no flip).

Empty-map guard: a map with fewer edge pixels than ``min_edge_fraction`` of the crop is drawn
again (new parameters, same detector) up to ``max_draws`` times; then Canny with ever lower
fixed thresholds (FALLBACK_LOW, high = 2 x low) is tried; the first map that reaches the
fraction (or the last non-empty one) is kept, and ``edge_fit`` in the record says which. A crop
with no edge even at the lowest thresholds (a flat picture) is skipped with that reason.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import ops
from ..errors import RecipeError
from ..ops.util import choose
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec, SkipSample
from .photo import PhotoTask

FALLBACK_LOW = (20.0, 8.0, 3.0, 1.0)  # Canny low thresholds tried when redraws stay (nearly) empty


@register_task
class EdgesTask(PhotoTask):
    name = "edges"
    recipe_keys = frozenset({"detector", "detectors", "detector_weights", "target", "min_edge_fraction", "max_draws"})
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
        self.min_edge_fraction = float(raw.get("min_edge_fraction", 0.002))
        self.max_draws = int(raw.get("max_draws", 5))
        if not 0 <= self.min_edge_fraction < 1 or self.max_draws < 1:
            raise RecipeError(f"{recipe.path}: min_edge_fraction must be in [0, 1) and max_draws >= 1")

    def make_crop(self, crop, rng, record):
        image = ops.to_float(crop) if self.target_steps else None
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)  # what every detector reads (BT.601 luma of the 8-bit values)
        ctx = ops.Context(crop.shape[:2])
        name = self.chosen[choose(rng, self.weights)] if len(self.chosen) > 1 else self.chosen[0]
        record["detector"] = name
        record["target_ops"] = []
        target = run_steps(self.target_steps, image, rng, ctx, record["target_ops"]) if self.target_steps else None
        needed = self.min_edge_fraction * crop.shape[0] * crop.shape[1]
        for draw in range(1, self.max_draws + 1):
            applied = []
            edges = quantize(run_steps(self.detectors[name], gray, rng, ctx, applied))
            if np.count_nonzero(edges) >= max(needed, 1):
                record["edge_fit"] = {"draws": draw, "fallback": None}
                break
        else:
            applied, edges, low = _fallback(gray, needed, record.get("source_path", ""))
            record["edge_fit"] = {"draws": self.max_draws, "fallback": {"canny_low": low}}
        record["edge_ops"] = applied
        record["summary"] = {"detector": name, "edge_fraction": round(float((edges > 0).mean()), 5)}
        # No target steps: the target is the crop itself (to_uint8(to_float(x)) == x for every value).
        return {"edges.png": edges, "image.png": np.ascontiguousarray(crop) if target is None else ops.to_uint8(target)}

    @classmethod
    def replay_crop(cls, crop, record):
        gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
        target = ops.to_uint8(replay_ops(ops.to_float(crop), record["target_ops"])) if record["target_ops"] else np.ascontiguousarray(crop)
        return {"edges.png": quantize(replay_ops(gray, record["edge_ops"])), "image.png": target}

    def fields(self):
        side = self.crop or None
        return {
            "edges.png": FieldSpec("input", "uint8", [side, side], "edge map of image.png, 8-bit gray: 255 = edge, 0 = none "
                                   "(nothing in between), on image.png's pixels", "gray"),
            "image.png": FieldSpec("target", "uint8", [side, side, 3], "the photo crop (after the recipe's target steps), 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end exclusive), seed, "
                              "the detector drawn, every applied operation with its parameters (edge_ops, target_ops), the empty-map "
                              "guard's draws and fallback (edge_fit), summary"),
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
                "min_edge_fraction": self.min_edge_fraction,
                "max_draws": self.max_draws,
                "target": [s.describe() for s in self.target_steps],
            },
        }


def _fallback(image: np.ndarray, needed: float, where: str):
    """Canny with fixed, ever lower thresholds: (record entries, map, low) of the first map with
    ``needed`` edge pixels, else of the last non-empty one; SkipSample if all are empty."""
    canny = ops.REGISTRY["canny"]
    kept = None
    for low in FALLBACK_LOW:
        params = canny.Params("random", low, 2 * low, 0.33, 0.0)
        edges = quantize(canny.apply(image, params))
        if np.count_nonzero(edges):
            kept = ([{"op": "canny", "label": "fallback", "params": canny.params_to_json(params)}], edges, low)
            if np.count_nonzero(edges) >= needed:
                break
    if kept is None:
        raise SkipSample(where, f"a crop has no edges even for Canny at {FALLBACK_LOW[-1]}/{2 * FALLBACK_LOW[-1]} (flat picture)")
    return kept


def quantize(edge_image: np.ndarray) -> np.ndarray:
    """The edge steps' image -> uint8 (H, W): 255 where an edge is (a float RGB image's channel 0
    above 0.5; a uint8 (H, W) map's nonzero pixels), else 0."""
    edges = edge_image > 0 if edge_image.ndim == 2 else edge_image[..., 0] > 0.5
    return np.where(edges, np.uint8(255), np.uint8(0))
