"""What rendered tasks (flow, depth) share: their sources, the render worker, photos, settings,
their command options and the conventions of the fields they both write.

A .blend is probed at plan time (a clear error for a missing or corrupt file, a scene without a
camera, frames outside the scene); procedural scenes are sampled per item from the item's
generator; photos come from the same sources as every other task (``pairgen.sources``: --src
directories, globs, lists, tars, or the embedded scikit-image photos). Blender runs in a render
worker process (``renderers.worker``), never in the build's own processes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
from renderers.scene import CLASS_IDS, CLASS_NAMES

from ..errors import PairgenError, UsageError
from ..records import to_jsonable
from .base import SkipSample, Task, WorkItem, option

# Photos are shrunk before Blender sees them: to the render's larger side (at least 256, at most
# 1024). Cycles has no texture mip-maps on the CPU, so a minified photo aliases and makes
# low-sample renders noisy (measured +0.4 dB at 256 px vs 512 px textures); it also saves memory.
MIN_TEXTURE_SIDE, MAX_TEXTURE_SIDE = 256, 1024

# Conventions of the fields every rendered task writes (flow and depth add their own).
RENDER_CONVENTIONS = {
    "depth": "planar depth (camera-space z, distance along the optical axis) in scene units, float32 (H, W); 0 where "
             "no surface",
    "segmentation": "uint16 instance ids from the Object Index pass, 0 = no object; names per id in the json "
                    "(procedural: room = 1, objects 2..; .blend: renderable objects sorted by name, 1..N)",
    "distance": "with --distance: Euclidean distance from the camera centre along each pixel centre's ray, scene "
                "units, float32 (H, W) = depth * |K^-1 (x, y, 1)|; 0 where no surface",
    "classes": "uint16 semantic class ids, 0 = no object; names per id in the json's classes (procedural: room 1, then "
               "the primitive or mesh category: " + ", ".join(f"{n} {i}" for n, i in CLASS_IDS.items() if n != "room")
               + "; .blend: an object's integer custom property category_id, else one class per collection (its first "
               "by name), numbered after the largest category_id)",
    "compositor": "the scene's compositor is not applied: RGB is the render layer through the scene's view transform "
                  "(json render.compositor names a node tree that was skipped; null = none)",
    "motion_blur": "RGB keeps the scene's motion blur (json render.motion_blur, render.shutter in the scene's frames; the "
                   "same for every --step); depth, flow, ids and normals come from a motion-blur-free pass",
    "missing_data": "with --allow-missing: json missing (and the card's source.missing) lists image textures (rendered "
                    "magenta) and linked libraries (their objects absent) that were not found",
    "keypoints": "objects named kp_* (their origin) and vertex groups named kp_* (weighted vertex mean), projected "
                 "to pixels per frame; visible = in view, in front of the camera and not behind the rendered surface "
                 "(depth test over the 3x3 pixels around it, 1% tolerance)",
    "rgb": "8-bit sRGB through the scene's view transform (procedural: Standard); Cycles on the CPU, seeded per frame",
}


@dataclass(frozen=True)
class RenderOptions:
    blend: str | None = option(str, "A .blend file to render instead of procedural scenes (it brings its own "
                                    "textures, frames, resolution and camera).")
    scenes: int | None = option(int, "Procedural scenes to render (default 100).", minimum=1)
    frames: str | None = option(str, "Frames A-B to render (default: the .blend's own range; procedural: the recipe's).")
    step: int | None = option(int, "Pairs (t, t+K) for flow; the frame stride for depth (default 1).", minimum=1)
    resolution: str | None = option(str, "WxH in pixels (default: the .blend's own; procedural: the recipe's).")
    samples: int | None = option(int, "Cycles RGB samples per pixel, denoised (default: a per-scene budget from a pilot render, 2-16).", minimum=1)
    threads: int | None = option(int, "Blender threads per worker (default: the cores shared among the workers; "
                                      "0 = all cores).", minimum=0)
    allow_missing: bool | None = option(bool, "Render a .blend whose image textures or linked libraries are missing "
                                              "(default: refuse, listing them); the missing list goes into every "
                                              "sample's json and the card.")
    distance: bool | None = option(bool, "Also write Euclidean distance from the camera centre (distance*.npy).")


def parse_resolution(value) -> tuple[int, int] | None:
    """None, (w, h), [w, h] or "WxH" -> (w, h), both positive."""
    if value is None:
        return None
    try:
        w, h = (int(v) for v in (value.lower().split("x") if isinstance(value, str) else value))
        if w < 1 or h < 1:
            raise ValueError
    except (ValueError, TypeError):
        raise UsageError(f"--resolution must look like 256x256 (width x height in pixels), got {value!r}") from None
    return w, h

def _texture_cache_dir() -> str:
    global _TEXTURE_DIR
    if _TEXTURE_DIR is None or _TEXTURE_PID != os.getpid():
        _set_texture_dir(tempfile.mkdtemp(prefix="pairgen-textures-"))
    return _TEXTURE_DIR


_TEXTURE_DIR = None
_TEXTURE_PID = None


def _set_texture_dir(path: str) -> None:
    global _TEXTURE_DIR, _TEXTURE_PID
    import atexit

    _TEXTURE_DIR, _TEXTURE_PID = path, os.getpid()
    atexit.register(shutil.rmtree, path, True)


def frame_seed(run_seed: int, source_identity: str, time: float) -> int:
    """Cycles seed of one rendered frame: the same frame gets the same noise in every pair it
    belongs to, whatever the chunking or the worker."""
    digest = hashlib.blake2b(f"{int(run_seed)}|{source_identity}|{float(time)!r}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def parse_frames(frames) -> tuple[int, int] | None:
    """None, (a, b), [a, b] or "A-B" -> (a, b) with a <= b."""
    if frames is None:
        return None
    if isinstance(frames, str):
        text = frames.strip()
        try:
            # "A-B" where A may be negative: split at the '-' that follows a digit.
            cut = next(i for i in range(1, len(text)) if text[i] == "-" and text[i - 1].isdigit())
            a, b = int(text[:cut]), int(text[cut + 1:])
        except (StopIteration, ValueError):
            raise UsageError(f"--frames must look like A-B (first and last frame), got {frames!r}") from None
    else:
        a, b = (int(v) for v in frames)
    if b < a:
        raise UsageError(f"--frames {a}-{b}: the last frame is before the first")
    return a, b


class RenderedTask(Task):
    """What flow and depth share: sources (a .blend or procedural scenes), the render worker,
    photos and the render settings.

    blend: path of a .blend (None: procedural scenes). scene_name: which scene of the file
    (default: the file's active scene). photos: --src values for procedural textures (empty:
    the embedded photos). scenes: number of procedural scenes. frames: (first, last) or "A-B";
    default: the .blend's own range, procedural (1, 1 + step). step: K. resolution: (W, H);
    default: the .blend's own, procedural 256x256. samples: RGB samples per pixel (default
    ``renderers.scene.DEFAULT_RENDER``: "auto", a per-scene budget from a pilot render; with
    OpenImageDenoise, denoise=False turns it off). threads: Blender threads (0 = all cores).
    recycle_every: jobs per render process. scene_config: overrides of
    ``renderers.scene.SceneConfig`` (e.g. {"objects": [4, 10]}). chunk: pairs/frames of a .blend
    rendered by one job (consecutive pairs share frames). seed: the run seed (per-frame Cycles
    seeds derive from it). limit: at most this many samples.
    """

    name = "rendered"
    Options = RenderOptions
    recipe_keys = frozenset({"scene", "render", "frames", "step", "resolution"})
    default_shard_size = 32  # ~60 MB of flow samples at 256x256; 100 scenes keep 2+ workers busy
    pairs = True  # flow: samples are frame pairs; depth: single frames
    not_replayable = "rendered samples are replayed by rendering their scene again"

    def __init__(self, blend: str | None = None, photos=(), scenes: int | None = None, frames=None, step: int = 1,
                 resolution=None, samples: int | None = None, denoise: bool = True, seed: int = 0,
                 limit: int | None = None, scene_name: str | None = None, threads: int = 0, recycle_every: int = 20,
                 retries: int = 2, timeout: float | None = 3600.0, scene_config: dict | None = None, chunk: int = 8,
                 max_pixels: int | None = None, allow_missing: bool = False, distance: bool = False):
        from renderers.scene import DEFAULT_RENDER, SceneConfig

        self.blend = os.path.abspath(blend) if blend else None
        self.scene_name = scene_name
        self.photos = [str(p) for p in photos]
        if self.blend and self.photos:
            raise UsageError("--src photos are for procedural scenes; a .blend brings its own textures")
        self.scenes = int(scenes) if scenes is not None else (None if self.blend else 100)
        if self.blend and scenes is not None:
            raise UsageError("--scenes is for procedural scenes, not a .blend")
        self.frames = parse_frames(frames)
        self.step = int(step)
        if self.step < 1:
            raise UsageError(f"--step must be at least 1, got {step}")
        self.resolution = parse_resolution(resolution)
        if samples == "auto":
            samples = None
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
            raise UsageError(f"--samples must be a whole number of at least 1 (or auto), got {samples!r}")
        self.render_settings = {**DEFAULT_RENDER, "denoise": bool(denoise), "threads": int(threads)}
        if self.blend:
            self.render_settings["clamp_indirect"] = None  # the scene's own
        if samples is not None:
            self.render_settings["samples"] = int(samples)
        self.seed = int(seed)
        self.limit = limit
        self.recycle_every = recycle_every
        self.retries = retries
        self.timeout = timeout
        try:
            self.scene_config = SceneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in (scene_config or {}).items()})
        except TypeError as exc:
            raise UsageError(f"scene settings: {exc}") from None
        self.chunk = max(1, int(chunk))
        self.max_pixels = max_pixels
        self.allow_missing = bool(allow_missing)
        self.distance = bool(distance)
        self.info = None  # the .blend's describe() after plan()
        self.photo_refs = []
        self._worker = None
        self._blend_identity = None

    @classmethod
    def from_recipe(cls, recipe, options, inputs):
        """Recipe keys: ``scene`` (SceneConfig overrides), ``render`` (samples, denoise),
        ``frames``, ``step``, ``resolution`` (and what a subclass adds); command options win. A
        .blend keeps its own frames, size and scene: the recipe's describe procedural scenes."""
        raw = recipe.raw
        render = dict(raw.get("render") or {})
        settings = {
            "frames": raw.get("frames"), "step": raw.get("step", 1), "resolution": raw.get("resolution"),
            "samples": render.get("samples"), "denoise": render.get("denoise", True), "scene_config": raw.get("scene"),
            **cls.recipe_settings(raw),
        }
        given = {k: v for k, v in vars(options).items() if v is not None}
        if given.get("blend"):
            settings.update(frames=None, resolution=None, scene_config=None)
        settings.update(given)
        if inputs.workers > 1 and settings.get("threads") is None:
            # Each worker drives its own Blender: share the cores instead of each taking all.
            settings["threads"] = max(1, (os.cpu_count() or 1) // inputs.workers)
        return cls(photos=list(inputs.src), seed=inputs.seed, limit=inputs.limit, max_pixels=inputs.max_pixels, **settings)

    @classmethod
    def recipe_settings(cls, raw: dict) -> dict:
        """Constructor settings from a subclass's own recipe keys."""
        return {}

    def options_record(self) -> dict:
        return {"blend": self.blend, "scenes": self.scenes, "frames": list(self.frames) if self.frames else None,
                "step": self.step, "resolution": list(self.resolution) if self.resolution else None,
                "samples": self.render_settings["samples"], "allow_missing": self.allow_missing,
                "distance": self.distance}

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_worker"] = None  # each process starts its own render process
        return state

    def worker(self):
        from renderers.worker import RenderWorker

        if self._worker is not None and self._worker._owner != os.getpid():
            self._worker = None  # inherited through fork: that render process belongs to the parent
        if self._worker is None:
            self._worker = RenderWorker(recycle_every=self.recycle_every, retries=self.retries, timeout=self.timeout)
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    # ------------------------------------------------------------------ planning
    def source(self) -> dict:
        return {"blend": self.blend, "scene": self.scene_name, "allow_missing": self.allow_missing}

    def probe(self) -> dict:
        """Open the .blend in a render process and report what it offers (the process is
        closed afterwards unless it was given to the task: the main process renders nothing)."""
        from renderers.worker import RenderFailed

        created = self._worker is None
        try:
            return self.worker().call("describe", source=self.source())
        except RenderFailed as exc:
            raise PairgenError(f"{self.blend}: Blender could not open this file: {exc}") from None
        finally:
            if created:
                self.close()

    def times(self) -> list[float]:
        """Frame times of the samples: pair starts t (flow) or frames (depth)."""
        first, last = self.frames
        if self.pairs:
            return [float(t) for t in range(first, last - self.step + 1)]
        return [float(t) for t in range(first, last + 1, self.step)]

    def plan(self):
        import importlib.util

        if importlib.util.find_spec("bpy") is None:  # looked up, not imported: Blender runs in the worker
            raise PairgenError("rendering needs Blender as a Python module (bpy 5.0.1, Python 3.11): "
                               "pip install -e '.[render]' (make installs it)")
        if self.blend:
            return self._plan_blend()
        return self._plan_procedural()

    def _plan_blend(self):
        self.info = self.probe()
        start, end = self.info["frame_start"], self.info["frame_end"]
        if self.frames is None:
            self.frames = (start, end)
        first, last = self.frames
        if first < start or last > end:
            raise PairgenError(f"{self.blend}: --frames {first}-{last} is outside the scene's frame range {start}-{end}")
        if self.resolution is None:
            self.resolution = tuple(self.info["resolution"])
        where = f"{self.blend}: scene {self.info['scene']!r}"
        if self.info["compositor"]:
            print(f"pairgen: {where} has a compositor node tree ({self.info['compositor']!r}); it is not applied "
                  "(RGB is the render layer through the view transform)", file=sys.stderr)
        missing = self.info["missing"]
        if missing["images"] or missing["libraries"]:  # only here with --allow-missing (else the probe refused)
            print(f"pairgen: {where}: rendering with {len(missing['images'])} missing image(s) and "
                  f"{len(missing['libraries'])} missing librar(ies) (--allow-missing); listed in every sample's json",
                  file=sys.stderr)
        times = self.times()
        if not times:
            need = "at least two frames" if self.step == 1 else f"frames at least {self.step} apart (--step {self.step})"
            raise PairgenError(f"{self.blend}: frames {first}-{last} hold no pair; a flow sample needs {need}")
        if self.limit:
            times = times[: self.limit]
        with open(self.blend, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()[:16]
        self._blend_identity = f"blend:{os.path.basename(self.blend)}:{digest}:{self.info['scene']}"
        items = []
        for start_index in range(0, len(times), self.chunk):
            chunk_times = times[start_index:start_index + self.chunk]
            items.append(WorkItem(f"{start_index:09d}", f"{self._blend_identity}:{chunk_times[0]!r}:{self.step}",
                                  {"first_index": start_index, "times": chunk_times, "samples": len(chunk_times)}))
        return items, []

    def _plan_procedural(self):
        from ..sources import list_sources

        kwargs = {"max_pixels": self.max_pixels} if self.max_pixels else {}
        self.photo_refs, skipped = list_sources(self.photos, **kwargs)
        if self.photos and not self.photo_refs:
            raise PairgenError("no usable photo in --src for the textures: " + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
        if self.frames is None:
            self.frames = (1, 1 + self.step) if self.pairs else (1, 1)
        if self.resolution is None:
            self.resolution = (256, 256)
        per_scene = len(self.times())
        if per_scene == 0:
            raise UsageError(f"--frames {self.frames[0]}-{self.frames[1]} hold no pair at --step {self.step}")
        items, index = [], 0
        for scene in range(self.scenes):
            n = per_scene if self.limit is None else min(per_scene, self.limit - index)
            if n <= 0:
                break
            items.append(WorkItem(f"{index:09d}", f"procedural:{self.name}:scene:{scene}",
                                  {"scene": scene, "first_index": index, "offset": 0, "samples": n}))
            index += n
        return items, list(skipped)

    def split(self, item: WorkItem, first: int):
        p = item.payload
        if first <= 0 or first >= p["samples"]:
            return None
        head = WorkItem(item.key, item.identity, {**p, "samples": first})
        tail_index = p["first_index"] + first
        if "times" in p:  # .blend chunk: the tail renders its own frames (a new identity, same seeds)
            tail_times = p["times"][first:]
            head = WorkItem(item.key, item.identity, {**p, "times": p["times"][:first], "samples": first})
            tail = WorkItem(f"{tail_index:09d}", f"{self._blend_identity}:{tail_times[0]!r}:{self.step}",
                            {**p, "first_index": tail_index, "times": tail_times, "samples": len(tail_times)})
        else:  # procedural: the same scene (same identity, same generator), later pairs
            tail = WorkItem(f"{tail_index:09d}", item.identity,
                            {**p, "first_index": tail_index, "offset": p["offset"] + first, "samples": p["samples"] - first})
        return head, tail

    # ------------------------------------------------------------------ making
    def item_source(self, item: WorkItem, rng: np.random.Generator):
        """What one item renders: (source for the render worker, identity for frame seeds,
        the item's frame times (pair starts for flow), object names per id, the json's scene
        record)."""
        from renderers import scene as scene_module

        p = item.payload
        if self.blend:
            names = {int(k): v for k, v in self.info["objects"].items()}
            scene_record = {"blend": os.path.basename(self.blend), "scene": self.info["scene"]}
            return self.source(), self._blend_identity, p["times"], names, scene_record
        spec, scene_seed, photo_ids = self._scene(item, rng)
        times = self.times()[p["offset"]:p["offset"] + p["samples"]]
        scene_record = {"procedural": True, "scene_index": p["scene"], "scene_seed": scene_seed,
                        "photos": photo_ids, "spec": to_jsonable(spec.to_json())}
        scene_record["spec"]["photos"] = photo_ids  # identities, not this machine's cache paths
        return {"spec": spec}, item.identity, times, scene_module.object_names(spec), scene_record

    def _scene(self, item: WorkItem, rng: np.random.Generator):
        """The item's procedural scene (with texture files ready) and its seed."""
        from renderers import scene as scene_module

        scene_seed = int(rng.integers(2**63))
        spec, used = scene_module.sample_scene(np.random.default_rng(scene_seed), len(self.photo_refs), self.resolution,
                                               frames=self.frames, config=self.scene_config, seed=scene_seed)
        paths = [self._texture(self.photo_refs[i]) for i in used]
        return scene_module.with_photos(spec, paths), scene_seed, [self.photo_refs[i].identity for i in used]

    def _texture(self, ref) -> str:
        """A PNG of the photo, at most MAX_TEXTURE_SIDE px, decoded by pairgen's safe rules."""
        import cv2

        from ..encoding import encode_png
        from ..sources import DecodeError, display_path, load_rgb

        side = min(MAX_TEXTURE_SIDE, max(MIN_TEXTURE_SIDE, *self.resolution))
        name = hashlib.sha256(f"{ref.identity}|{side}".encode()).hexdigest()[:24] + ".png"
        path = os.path.join(_texture_cache_dir(), name)
        if not os.path.exists(path):
            try:
                image = load_rgb(ref, **({"max_pixels": self.max_pixels} if self.max_pixels else {}))
            except DecodeError as exc:
                raise SkipSample(display_path(ref), f"texture photo: {exc}") from None
            h, w = image.shape[:2]
            scale = side / max(h, w)
            if scale < 1:
                image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(encode_png(image))
            os.replace(tmp, path)
        return path

    def _render(self, source: dict, times: list[float], identity: str, normals: bool = False, vector: bool = True):
        """Render frames (truth + RGB) in the worker; returns {time: frame dict} and new events."""
        from renderers.worker import RenderFailed

        worker = self.worker()
        before = len(worker.events)
        pilot = self.pilot_settings(identity)
        frames = [{"time": t, "settings": {**self.render_settings, "seed": frame_seed(self.seed, identity, t),
                                           "resolution": self.resolution, **pilot}} for t in times]
        try:
            rendered = worker.call("render", source=source, frames=frames, step=self.step, normals=normals, vector=vector)
        except RenderFailed as exc:
            raise SkipSample(identity, str(exc)) from None
        events = worker.events[before:]
        for event in events:
            print(f"pairgen: {event}", file=sys.stderr)
        return {f["time"]: r for f, r in zip(frames, rendered)}, events

    def pilot_settings(self, identity: str) -> dict:
        """With "auto" samples: the pilot every frame of the source shares (its first frame, its
        own seed), so all frames of a scene, in any chunk or worker, get the same budget."""
        if self.render_settings["samples"] != "auto":
            return {}
        first = float(self.frames[0])
        return {"pilot_time": first, "pilot_seed": frame_seed(self.seed, f"{identity}|pilot", first)}

    def frame_render_record(self, frame: dict) -> dict:
        """What the json adds to ``render_record`` for one rendered frame: the RGB samples it got
        (and, with "auto", the pilot's noise of one sample in 8-bit levels)."""
        record = {"samples_used": frame["samples"]}
        if frame.get("pilot_noise") is not None:
            record["pilot_noise"] = round(float(frame["pilot_noise"]), 4)
        return record

    def render_record(self) -> dict:
        """Render settings of every sample (json ``render``) and of the card: with a .blend, also
        its motion blur (on/off, shutter in the scene's frames) and the compositor that was skipped."""
        from renderers.scene import AUTO_SAMPLES, PILOT

        scene = self.info or {}
        record = {"engine": "CYCLES", "device": "CPU", **{k: v for k, v in self.render_settings.items() if k != "threads"}}
        if record["clamp_indirect"] is None:  # a .blend: its own clamp
            record["clamp_indirect"] = scene.get("clamp_indirect")
        if self.render_settings["samples"] == "auto":
            record["auto_samples"] = {
                "rule": "samples = clip(ceil(reference_samples * (pilot_noise / reference_noise) ** power), min, max); "
                        "pilot_noise: RMS noise of one sample (8-bit levels) from two renders of the first frame "
                        "at 1/scale of the size, pilot samples each, no denoising, different seeds",
                **{f"pilot_{k}": v for k, v in PILOT.items()}, **AUTO_SAMPLES}
        return {**record,
                "resolution": list(self.resolution) if self.resolution else None, "step": self.step,
                "truth_pass": "1 sample, pixel filter 0.01 px, no motion blur, no denoising"
                              + ("" if self.blend else "; procedural scenes without normals: materials replaced by "
                                 "black emission (depth, vectors and ids do not depend on them)"),
                "motion_blur": bool(scene.get("motion_blur", False)),
                "shutter": scene.get("shutter") if scene.get("motion_blur") else None,
                "compositor": scene.get("compositor")}

    def missing_record(self) -> dict | None:
        """What --allow-missing rendered without (None: nothing missing)."""
        missing = (self.info or {}).get("missing")
        return missing if missing and (missing["images"] or missing["libraries"]) else None

    def class_names(self) -> dict[str, str]:
        """Class id -> name of the json's ``classes``."""
        if self.blend:
            return dict(self.info["class_names"])
        return {str(i + 1): name for i, name in enumerate(CLASS_NAMES)}

    def sample_record(self, names: dict, scene_record: dict, events: list) -> dict:
        """The json entries every rendered sample shares (objects, classes, scene, missing data, events)."""
        record = {"objects": {str(k): v for k, v in sorted(names.items())}, "classes": self.class_names(),
                  "scene": scene_record}
        if self.missing_record():
            record["missing"] = self.missing_record()
        if events:
            record["render_events"] = events
        return record

    def card(self) -> dict:
        source = ({"blend": self.blend, "scene": self.info["scene"] if self.info else self.scene_name,
                   "missing": self.missing_record()}
                  if self.blend else {"procedural": True, "scenes": self.scenes, "photos": len(self.photo_refs),
                                      "scene_config": to_jsonable(self.scene_config)})
        return {"render": self.render_record(), "source": source, "classes": self.class_names(),
                "frames": list(self.frames) if self.frames else None}


def frame_record(frame: dict, frame_number: float) -> dict:
    from renderers import truth

    return {
        "frame": frame_number,
        "K": frame["K"].tolist(),
        "camera_to_world": frame["c2w"].tolist(),
        "keypoints": truth.project_keypoints(frame["keypoints"], frame["K"], frame["c2w"], frame["depth"]),
    }


def frame_number(t: float):
    return int(t) if float(t).is_integer() else float(t)
