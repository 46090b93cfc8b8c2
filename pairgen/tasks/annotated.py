"""What the COCO tasks (keypoints, segment) share: where the annotations and images are, the
plan (one item per annotated image), one generator per crop, the geometric warp and the
photometric steps, and replay from the record.

Inputs: ``--annotations FILE`` (a COCO JSON) with ``--src FOLDER`` (the folder its file names
are relative to; default: the JSON's own folder). Neither: the demo set shipped in the package
(``pairgen/data/demo_coco``: scikit-image's embedded photos with hand-measured labels).
A subclass says which annotations of an image it uses (``select``), what it decodes once per
image (``prepare``) and how one crop becomes fields (``make_crop``, ``replay_crop``).
"""
from __future__ import annotations

import os
import posixpath
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import __version__, ops, storage
from ..coco import DEMO_PREFIX, image_refs, load_coco
from ..errors import RecipeError, UsageError
from ..ops.geometry import Affine, affine_from_json, warp_image
from ..records import to_jsonable
from .photo import split_crops
from ..sources import DecodeError, SourceRef, display_path, load_rgb
from ..steps import compile_steps, replay_ops, run_steps
from .base import BuildInputs, SkipSample, Task, WorkItem, option

DEFAULT_SIDE = 256


@dataclass(frozen=True)
class AnnotatedOptions:
    annotations: str | None = option(str, "A COCO JSON (instances or person keypoints); its images are in --src "
                                          "(default: the JSON's folder). Without it: the demo set in the package.")
    crop: int | None = option(int, "Output side in pixels (default 256).", minimum=8)
    crops_per_image: int | None = option(int, "Augmented crops per annotated image (keypoints default: one per "
                                              "person, crop k centred on person k mod n; segment default: 1).", minimum=1)


class AnnotatedTask(Task):
    """Subclasses set ``demo_file`` (the demo JSON), ``geometry_config`` (the config class of
    their crop sampler) and write ``select``, ``prepare``, ``sample_geometry``, ``make_crop``
    and ``replay_crop``."""

    Options = AnnotatedOptions
    replayable = True
    demo_file = ""
    geometry_config: type = object
    default_crops_per_image: int | None = 1  # None: one per selected annotation

    def __init__(self, recipe, options: AnnotatedOptions, inputs: BuildInputs):
        self.recipe_name = recipe.name
        self.description = str(recipe.raw.get("description", ""))
        self.seed = int(inputs.seed)
        self.limit = inputs.limit
        self.max_pixels = inputs.max_pixels
        srcs = list(inputs.src)
        if len(srcs) > 1:
            raise UsageError("--src takes one image folder here (the folder the COCO file names are relative to)")
        if srcs and not options.annotations:
            raise UsageError(f"--src {srcs[0]} needs --annotations FILE.json (the COCO labels of those images); "
                             "without both, the demo set is used")
        if srcs and not storage.is_remote(srcs[0]) and not os.path.isdir(srcs[0]):
            raise UsageError(f"--src {srcs[0]}: not a folder; give the folder the COCO 'file_name's are relative to")
        if options.annotations:
            self.annotations = _absolute(options.annotations)
            self.image_root = _absolute(srcs[0]) if srcs else _parent(self.annotations)
        else:
            self.annotations, self.image_root = DEMO_PREFIX + self.demo_file, None
        self.side = int(options.crop or DEFAULT_SIDE)
        self.crops_per_image = options.crops_per_image or self.default_crops_per_image
        raw = recipe.raw
        try:
            self.geometry = self.geometry_config(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in (raw.get("geometry") or {}).items()})
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"{recipe.path} line {recipe.line('geometry')}: geometry: {exc}") from None
        self.photometric = compile_steps(raw.get("photometric"), recipe.path, "photometric")
        self.counts: Counter = Counter()  # annotations left out by rule (crowd, ...), counted not listed

    @classmethod
    def from_recipe(cls, recipe, options, inputs):
        return cls(recipe, options, inputs)

    # ------------------------------------------------------------------ planning
    def plan(self):
        dataset = load_coco(self.annotations)
        self.dataset_ready(dataset)
        refs, skipped = image_refs(dataset, self.image_root, self.max_pixels)
        skipped = list(dataset.skipped) + skipped
        items, index = [], 0
        for image_id in sorted(refs, key=lambda i: refs[i].identity):
            chosen = self.select(dataset, dataset.annotations[image_id], skipped)
            if not chosen:
                self.counts["images without usable annotations"] += 1
                continue
            n = self.crops_per_image or len(chosen)
            n = n if self.limit is None else min(n, self.limit - index)
            if n <= 0:
                break
            ref = refs[image_id]
            items.append(WorkItem(f"{index:09d}", ref.identity,
                                  {"source": ref.to_json(), "image_id": image_id, "annotations": chosen,
                                   "first_index": index, "first_crop": 0, "samples": n}))
            index += n
        return items, skipped

    def dataset_ready(self, dataset) -> None:
        """Hook: learn what the whole file says (categories) before images are selected."""

    def select(self, dataset, annotations: list[dict], skipped: list) -> list[dict]:
        """The annotations of one image this task uses, as compact JSON-able dicts."""
        raise NotImplementedError

    def split(self, item: WorkItem, first: int):
        return split_crops(item, first)

    # ------------------------------------------------------------------ making
    def make(self, item: WorkItem, rng: np.random.Generator):
        p = item.payload
        ref = SourceRef.from_json(p["source"])
        try:
            image = load_rgb(ref, **({"max_pixels": self.max_pixels} if self.max_pixels else {}))
        except DecodeError as exc:
            raise SkipSample(display_path(ref), str(exc)) from None
        prepared = self.prepare(image, p["annotations"])
        samples = []
        first, n = p["first_crop"], p["samples"]
        # one child generator per crop: crop k draws the same numbers wherever it is made
        for k, crop_rng in enumerate(rng.spawn(first + n)[first:], start=first):
            record = {
                "pairgen_version": __version__, "task": self.name, "recipe": self.recipe_name, "seed": self.seed,
                "source": ref.to_json(), "source_path": display_path(ref), "annotations_file": self.annotations,
                "image_id": p["image_id"], "crop_index": k,
            }
            affine = self.sample_geometry(crop_rng, image, p["annotations"], k, record)
            record["geometry"] = to_jsonable(affine)
            warped = warp_image(image, affine)
            record["photometric_ops"] = []
            if self.photometric:
                ctx = ops.Context(warped.shape[:2])
                warped = ops.to_uint8(run_steps(self.photometric, ops.to_float(warped), crop_rng, ctx, record["photometric_ops"]))
            fields = self.make_crop(warped, affine, prepared, record)
            fields["json"] = record
            samples.append((f"{p['first_index'] + k - first:09d}", fields))
        return samples

    def prepare(self, image: np.ndarray, annotations: list[dict]):
        """What every crop of one image needs, decoded once (e.g. its label maps)."""
        return None

    def sample_geometry(self, rng, image: np.ndarray, annotations: list[dict], k: int, record: dict) -> Affine:
        raise NotImplementedError

    def make_crop(self, warped: np.ndarray, affine: Affine, prepared, record: dict) -> dict:
        """The fields (without json) of one crop from the warped, photometrically changed image;
        adds what it used to ``record``."""
        raise NotImplementedError

    @classmethod
    def replay(cls, record: dict) -> dict:
        image = load_rgb(SourceRef.from_json(record["source"]))
        affine = affine_from_json(record["geometry"])
        warped = warp_image(image, affine)
        if record["photometric_ops"]:
            warped = ops.to_uint8(replay_ops(ops.to_float(warped), record["photometric_ops"]))
        fields = cls.replay_crop(image, warped, affine, record)
        return fields

    @classmethod
    def replay_crop(cls, image: np.ndarray, warped: np.ndarray, affine: Affine, record: dict) -> dict:
        raise NotImplementedError

    # ------------------------------------------------------------------ card
    def options_record(self) -> dict:
        return {"annotations": self.annotations, "crop": self.side, "crops_per_image": self.crops_per_image}

    def card(self) -> dict:
        return {
            "description": self.description,
            "annotations": {"file": self.annotations, "images": self.image_root or "embedded scikit-image photos (demo)",
                            "left_out_by_rule": dict(sorted(self.counts.items()))},
            "recipe": {"task": self.name, "description": self.description, "geometry": to_jsonable(self.geometry),
                       "photometric": [s.describe() for s in self.photometric], **self.recipe_card()},
        }

    def recipe_card(self) -> dict:
        return {}


def _absolute(path: str) -> str:
    """A local path made absolute; a remote URL (s3://...) as given."""
    return path.rstrip("/") if storage.is_remote(path) else os.path.abspath(path)


def _parent(path: str) -> str:
    return posixpath.dirname(path) if storage.is_remote(path) else os.path.dirname(path)
