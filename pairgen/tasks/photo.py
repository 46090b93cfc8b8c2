"""What every photo task shares: source listing, the crop plan, one generator per crop,
splitting an image's crops across shards, skip reporting, and replay from the record.

A photo task subclasses ``PhotoTask`` and writes ``make_crop`` (one crop -> its fields) and
``replay_crop`` (the same from a record, without random draws); the crop is taken here.
Crop boxes are ``(x0, y0, x1, y1)`` in source pixels after EXIF orientation, x right, y down,
end exclusive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..errors import UsageError
from ..sources import DecodeError, SourceRef, display_path, list_sources, load_rgb
from .base import BuildInputs, SkipSample, Task, WorkItem, option

DEFAULT_CROP = 256


def split_crops(item: WorkItem, first: int) -> tuple[WorkItem, WorkItem]:
    """An item of several crops of one input as its first ``first`` crops and the rest (payload
    keys first_index, first_crop, samples), for tasks whose crops draw from one child rng each."""
    p = item.payload
    head = WorkItem(item.key, item.identity, {**p, "samples": first})
    tail_index = p["first_index"] + first
    tail = WorkItem(f"{tail_index:09d}", item.identity,
                    {**p, "first_index": tail_index, "first_crop": p["first_crop"] + first, "samples": p["samples"] - first})
    return head, tail


@dataclass(frozen=True)
class PhotoOptions:
    crop: int | None = option(int, "Crop side in pixels (default 256, rounded down to the task's grid, e.g. 255 at x3); "
                                   "smaller images are skipped; 0 keeps the whole image (trimmed to the grid).", minimum=0)
    crops_per_image: int | None = option(int, "Random crops taken from each image (default 1).", minimum=1)


class PhotoTask(Task):
    """Samples are random crops of photos. Subclasses set ``crop_grid`` (crop sides are
    multiples of it) before calling ``PhotoTask.__init__``."""

    Options = PhotoOptions
    replayable = True
    crop_grid: int = 1

    def __init__(self, recipe, options: PhotoOptions, inputs: BuildInputs):
        self.recipe_name = recipe.name
        self.description = str(recipe.raw.get("description", ""))
        self.srcs = list(inputs.src)
        self.seed = int(inputs.seed)
        self.limit = inputs.limit
        self.max_pixels = inputs.max_pixels
        self.exclude = tuple(inputs.exclude)
        grid = self.crop_grid
        if options.crop is None:  # the default crop, rounded down to the task's grid (x3: 255)
            self.crop = DEFAULT_CROP - DEFAULT_CROP % grid
        elif options.crop % grid:
            raise UsageError(f"--crop {options.crop} is not a multiple of the scale {grid}: the LR would not sit on the "
                             f"HR grid; use e.g. --crop {options.crop - options.crop % grid}")
        else:
            self.crop = int(options.crop)
        self.crops_per_image = int(options.crops_per_image or 1)

    @classmethod
    def from_recipe(cls, recipe, options, inputs):
        return cls(recipe, options, inputs)

    # ------------------------------------------------------------------ planning
    def _decode_limits(self) -> dict:
        return {"max_pixels": self.max_pixels} if self.max_pixels else {}

    def sources(self):
        """(usable SourceRefs, skipped) of the photos to crop."""
        return list_sources(self.srcs, min_side=self.crop or self.crop_grid, exclude=self.exclude, **self._decode_limits())

    def plan(self):
        refs, skipped = self.sources()
        items, index = [], 0
        for ref in refs:
            n = self.crops_per_image if self.limit is None else min(self.crops_per_image, self.limit - index)
            if n <= 0:
                break
            items.append(WorkItem(f"{index:09d}", ref.identity,
                                  {"source": ref.to_json(), "first_index": index, "first_crop": 0, "samples": n}))
            index += n
        return items, skipped

    def split(self, item: WorkItem, first: int):
        return split_crops(item, first)

    # ------------------------------------------------------------------ making
    def make(self, item: WorkItem, rng: np.random.Generator):
        ref = SourceRef.from_json(item.payload["source"])
        try:
            image = load_rgb(ref, **self._decode_limits())
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
            x0, y0, x1, y1 = box = self._crop_box(h, w, crop_rng)
            record = {
                "pairgen_version": __version__,
                "task": self.name,
                "recipe": self.recipe_name,
                "seed": self.seed,
                "source": ref.to_json(),
                "source_path": display_path(ref),
                "crop_index": k,
                "crop_box": list(box),
            }
            fields = self.make_crop(image[y0:y1, x0:x1], crop_rng, record)
            fields["json"] = record
            samples.append((f"{item.payload['first_index'] + k - first:09d}", fields))
        return samples

    def _crop_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        if self.crop == 0:
            return (0, 0, w - w % self.crop_grid, h - h % self.crop_grid)
        y0 = int(rng.integers(0, h - self.crop + 1))
        x0 = int(rng.integers(0, w - self.crop + 1))
        return (x0, y0, x0 + self.crop, y0 + self.crop)

    def make_crop(self, crop: np.ndarray, rng: np.random.Generator, record: dict) -> dict:
        """One sample's fields (without ``json``) from a uint8 RGB crop view (do not modify it);
        add what was drawn to ``record``."""
        raise NotImplementedError

    @classmethod
    def replay_crop(cls, crop: np.ndarray, record: dict) -> dict:
        """The fields ``make_crop`` made, from the record alone."""
        raise NotImplementedError

    @classmethod
    def replay(cls, record: dict) -> dict:
        image = load_rgb(SourceRef.from_json(record["source"]))
        x0, y0, x1, y1 = record["crop_box"]
        return cls.replay_crop(image[y0:y1, x0:x1], record)

    # ------------------------------------------------------------------ card
    def options_record(self) -> dict:
        return {"crop": self.crop, "crops_per_image": self.crops_per_image}

    def card(self) -> dict:
        return {"crop": self.crop, "description": self.description}
