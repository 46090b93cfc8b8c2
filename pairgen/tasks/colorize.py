"""Colorization pairs: an old black-and-white (or toned) print made from a photo crop by film
emulation (input) and the crop itself (target).

The recipe's ``film`` mapping says which emulsions, lights and toners are drawn per sample and
holds the film ``steps`` (``pairgen.ops.film``): spectral sensitivity, optics, negative, grain,
paper, toning, ageing. ``mono.png`` is 8-bit RGB so that toned prints keep their hue; untoned,
unyellowed prints have R = G = B exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..errors import RecipeError
from ..ops.film import TONERS, photo_image
from ..ops.spectra import EMULSIONS, ILLUMINANTS
from ..ops.util import choose
from ..steps import compile_steps, replay_ops, run_steps
from . import register_task
from .base import FieldSpec
from .photo import PhotoTask

FILM_KEYS = ("emulsion", "emulsion_weights", "illuminant", "tungsten_prob", "toner", "toner_weights", "steps")


@dataclass(frozen=True)
class FilmSetup:
    """A recipe's ``film`` mapping, checked: the names drawn from (with weights), the chance of
    tungsten light, and the compiled film steps."""

    emulsions: tuple
    emulsion_weights: tuple
    illuminant: str  # daylight | tungsten | any
    tungsten_prob: float
    toners: tuple
    toner_weights: tuple
    steps: tuple

    @classmethod
    def from_recipe(cls, recipe) -> "FilmSetup":
        film = recipe.raw.get("film")
        where = f"{recipe.path} line {recipe.line('film')}"
        if not isinstance(film, dict):
            raise RecipeError(f"{where}: 'film' must be a mapping with keys {', '.join(FILM_KEYS)}")
        lines = getattr(film, "lines", {})
        for key in film:
            if key not in FILM_KEYS:
                raise RecipeError(f"{recipe.path} line {lines.get(key, 0)}: unknown key film.{key}; allowed: {', '.join(FILM_KEYS)}")

        def names(key, allowed, weights_key):
            chosen = str(film.get(key, "any"))
            line = f"{recipe.path} line {lines.get(key, 0)}"
            if chosen != "any" and chosen not in allowed:
                raise RecipeError(f"{line}: film.{key} {chosen!r} is not known; allowed: {', '.join(allowed)} or any")
            weights = film.get(weights_key) or {}
            if not isinstance(weights, dict) or any(k not in allowed or not isinstance(v, (int, float)) or v < 0
                                                    for k, v in weights.items()):
                raise RecipeError(f"{recipe.path} line {lines.get(weights_key, 0)}: film.{weights_key} must map names "
                                  f"({', '.join(allowed)}) to weights >= 0")
            if chosen != "any":
                return (chosen,), (1.0,)
            pool = [n for n in allowed if float(weights.get(n, 0.0 if weights else 1.0)) > 0]
            raw = [float(weights.get(n, 1.0)) for n in pool]
            if not pool:
                raise RecipeError(f"{line}: film.{weights_key} gives every {key} weight 0")
            return tuple(pool), tuple(w / sum(raw) for w in raw)

        emulsions, emulsion_weights = names("emulsion", list(EMULSIONS), "emulsion_weights")
        toners, toner_weights = names("toner", list(TONERS), "toner_weights")
        illuminant = str(film.get("illuminant", "any"))
        if illuminant not in ILLUMINANTS + ("any",):
            raise RecipeError(f"{recipe.path} line {lines.get('illuminant', 0)}: film.illuminant {illuminant!r} is not "
                              f"known; allowed: {', '.join(ILLUMINANTS)} or any")
        tungsten_prob = film.get("tungsten_prob", 0.25)
        if not isinstance(tungsten_prob, (int, float)) or not 0 <= tungsten_prob <= 1:
            raise RecipeError(f"{recipe.path} line {lines.get('tungsten_prob', 0)}: film.tungsten_prob must be a probability")
        steps = compile_steps(film.get("steps"), recipe.path, "film.steps")
        if not any(s.op.name == "film_sensitivity" for s in steps if hasattr(s, "op") and s.p == 1.0):
            raise RecipeError(f"{where}: film.steps must start the film chain with `op: film_sensitivity` (p 1), "
                              f"or the input would keep its colours")
        return cls(emulsions, emulsion_weights, illuminant, float(tungsten_prob), toners, toner_weights, steps)

    def draw(self, rng: np.random.Generator) -> dict:
        """The film, light and toner of one sample (recorded; the film ops read it from the context)."""
        emulsion = self.emulsions[choose(rng, self.emulsion_weights)] if len(self.emulsions) > 1 else self.emulsions[0]
        if self.illuminant == "any":
            illuminant = "tungsten" if rng.random() < self.tungsten_prob else "daylight"
        else:
            illuminant = self.illuminant
        toner = self.toners[choose(rng, self.toner_weights)] if len(self.toners) > 1 else self.toners[0]
        return {"emulsion": emulsion, "illuminant": illuminant, "toner": toner}

    def run(self, image: np.ndarray, rng: np.random.Generator, record: dict) -> np.ndarray:
        """Film-emulate ``image`` (float sRGB); adds ``film`` and ``film_ops`` to ``record``."""
        record["film"] = choice = self.draw(rng)
        record["film_ops"] = []
        ctx = ops.Context(image.shape[:2], extra={"film": choice})
        return run_steps(self.steps, image, rng, ctx, record["film_ops"])

    def describe(self) -> dict:
        return {"emulsions": dict(zip(self.emulsions, self.emulsion_weights)), "illuminant": self.illuminant,
                "tungsten_prob": self.tungsten_prob, "toners": dict(zip(self.toners, self.toner_weights)),
                "steps": [s.describe() for s in self.steps]}


FILM_CONVENTIONS = {
    "mono": "8-bit sRGB RGB so toned prints keep their hue; an untoned print without base yellowing has R = G = B",
    "film": "spectral weights on linear sRGB derived from each emulsion's sensitivity curve under D65 or CIE A "
            "(pairgen/ops/spectra.py); negative and print through H&D curves in linear light",
}


@register_task
class ColorizeTask(PhotoTask):
    name = "colorize"
    recipe_keys = frozenset({"film"})
    train_kind = "image"

    def __init__(self, recipe, options, inputs):
        super().__init__(recipe, options, inputs)
        self.film = FilmSetup.from_recipe(recipe)

    def make_crop(self, crop, rng, record):
        mono = ops.to_uint8(self.film.run(photo_image(crop), rng, record))
        record["summary"] = dict(record["film"])
        return {"mono.png": mono, "color.png": np.ascontiguousarray(crop)}

    @classmethod
    def replay_crop(cls, crop, record):
        return {"mono.png": ops.to_uint8(replay_ops(photo_image(crop), record["film_ops"])),
                "color.png": np.ascontiguousarray(crop)}

    def fields(self):
        side = self.crop or None
        return {
            "mono.png": FieldSpec("input", "uint8", [side, side, 3], "the crop as an old black-and-white print (film "
                                  "emulation: emulsion, negative, grain, paper, toning, ageing), 8-bit sRGB RGB: toned "
                                  "prints keep their one hue; untoned ones have R = G = B", "rgb"),
            "color.png": FieldSpec("target", "uint8", [side, side, 3], "the photo crop, 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "source, crop box (x0, y0, x1, y1; pixels, x right, y down, end "
                              "exclusive), seed, film (emulsion, illuminant, toner) and every film operation with its "
                              "drawn parameters (film_ops), summary"),
        }

    def card(self):
        return {**super().card(), "conventions": FILM_CONVENTIONS,
                "recipe": {"task": self.name, "description": self.description, "film": self.film.describe()}}

