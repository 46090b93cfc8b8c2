"""Unpaired style transfer data: a content crop and a style image crop per sample.

Nothing pairs them: ``style.png`` is an example of the style, not the stylised content (the card
says ``"paired": false``). Content photos come from --src (default: the embedded photos that are
not default styles), style images from --style (a folder, glob, list or tar like --src; default:
the embedded immunohistochemistry stain). Each sample draws its style image uniformly from the
styles; a fast style network (Johnson et al.) learns one style, so give it one style image (or a
folder of one artist's images); several distinct styles need a style-conditioned model.

Style rule (AdaIN, Huang & Belongie 2017): the style image is resized so its shorter side is
``style_side`` px (area when shrinking, bicubic when enlarging), then a random crop of the
content crop's size is taken. Style files are checked like any source: huge ones are refused from
their header at plan time. Up to ``DECODE_AT_PLAN`` style images are also decoded at plan time,
so a broken one is reported once and never drawn; beyond that (a large style collection) a broken
file skips each sample that drew it, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..errors import PairgenError, RecipeError, UsageError
from ..sources import DecodeError, Skip, SourceRef, display_path, list_sources, load_rgb
from . import register_task
from .base import FieldSpec, SkipSample, option
from .photo import PhotoOptions, PhotoTask

# The embedded photo used as the style when --style is not given (a fast style network learns one
# style, as in Johnson et al.), and therefore left out of the default content photos.
DEFAULT_STYLES = ("immunohistochemistry",)
# Style sets up to this size are decoded once at plan time (a few seconds at most), so that no
# sample is lost to a broken style file.
DECODE_AT_PLAN = 64


@dataclass(frozen=True)
class StyleOptions(PhotoOptions):
    style: str | None = option(str, "Style images: a file, folder, glob, list or .tar (default: the embedded "
                                    + ", ".join(DEFAULT_STYLES) + " photo).")


@lru_cache(maxsize=8)  # a worker draws from few styles: decode and resize each once
def resized_style(ref: SourceRef, side: int, max_pixels: int | None) -> np.ndarray:
    image = load_rgb(ref, **({"max_pixels": max_pixels} if max_pixels else {}))
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    resized.flags.writeable = False
    return resized


@register_task
class StyleTask(PhotoTask):
    name = "style"
    train_kind = "style"
    Options = StyleOptions
    recipe_keys = frozenset({"style_side"})

    def __init__(self, recipe, options, inputs):
        super().__init__(recipe, options, inputs)
        self.style_src = options.style
        self.style_side = int(recipe.raw.get("style_side", 512))
        if self.crop == 0:
            raise UsageError("--crop 0 (whole images) is not possible for style: content and style crops share one size")
        if self.style_side < self.crop:
            raise RecipeError(f"{recipe.path} line {recipe.line('style_side')}: style_side {self.style_side} is smaller "
                              f"than the crop {self.crop}; style crops are taken from the resized style image")
        self.styles: list[SourceRef] = []

    def plan(self):
        limits = self._decode_limits()
        if self.style_src:
            styles, style_skips = list_sources([self.style_src], **limits)
        else:
            styles, style_skips = list_sources([], **limits)
            styles = [r for r in styles if r.path in DEFAULT_STYLES]
        if len(styles) <= DECODE_AT_PLAN:
            styles, broken = self._decodable(styles)
            style_skips = list(style_skips) + broken
        if not styles:
            raise PairgenError(f"--style {self.style_src}: no usable style image ("
                               + "; ".join(f"{s.path}: {s.reason}" for s in style_skips[:5]) + ")")
        self.styles = styles
        items, skipped = super().plan()
        return items, list(style_skips) + skipped

    def _decodable(self, styles: list[SourceRef]):
        usable, broken = [], []
        for ref in styles:
            try:
                resized_style(ref, self.style_side, self.max_pixels)
            except DecodeError as exc:
                broken.append(Skip(display_path(ref), f"style image: {exc}"))
                continue
            usable.append(ref)
        return usable, broken

    def sources(self):
        refs, skipped = super().sources()
        if not self.srcs:  # the default styles are not content too
            refs = [r for r in refs if r.path not in DEFAULT_STYLES]
        return refs, skipped

    def make_crop(self, crop, rng, record):
        index = int(rng.integers(len(self.styles)))
        ref = self.styles[index]
        try:
            style = resized_style(ref, self.style_side, self.max_pixels)
        except DecodeError as exc:
            raise SkipSample(display_path(ref), f"style image: {exc}") from None
        h, w = style.shape[:2]
        y0 = int(rng.integers(0, h - self.crop + 1))
        x0 = int(rng.integers(0, w - self.crop + 1))
        record["style"] = {"index": index, "source": ref.to_json(), "path": display_path(ref), "side": self.style_side,
                           "crop_box": [x0, y0, x0 + self.crop, y0 + self.crop]}
        return {"content.png": np.ascontiguousarray(crop), "style.png": np.ascontiguousarray(style[y0:y0 + self.crop, x0:x0 + self.crop])}

    @classmethod
    def replay_crop(cls, crop, record):
        info = record["style"]
        style = resized_style(SourceRef.from_json(info["source"]), info["side"], None)
        x0, y0, x1, y1 = info["crop_box"]
        return {"content.png": np.ascontiguousarray(crop), "style.png": np.ascontiguousarray(style[y0:y1, x0:x1])}

    def fields(self):
        side = self.crop
        return {
            "content.png": FieldSpec("input", "uint8", [side, side, 3], "a content photo crop, 8-bit sRGB RGB", "rgb"),
            "style.png": FieldSpec("target", "uint8", [side, side, 3], "a crop of the style image this sample drew (not the "
                                   "stylised content: the data are unpaired), 8-bit sRGB RGB", "rgb"),
            "json": FieldSpec("meta", "json", [], "content source and crop box; style: index into the card's styles, its "
                              "source, the resize side and the crop box in the resized style image"),
        }

    def options_record(self):
        return {**super().options_record(), "style": self.style_src}

    def card(self):
        return {
            **super().card(),
            "paired": False,
            "styles": [{"index": i, "path": display_path(r), "width": r.width, "height": r.height}
                       for i, r in enumerate(self.styles)],
            "conventions": {"style": f"unpaired: style.png is an example of the style, not the answer. Each sample draws "
                                     f"one style image uniformly (json style.index into 'styles'); it is resized so its "
                                     f"shorter side is {self.style_side} px (area down, bicubic up), then cropped at random "
                                     f"to the content crop's size (AdaIN's rule)"},
            "recipe": {"task": self.name, "description": self.description, "style_side": self.style_side},
        }
