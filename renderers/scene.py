"""Procedural scenes as plain data: dataclasses sampled from a numpy Generator (no bpy here).

A ``SceneSpec`` says everything the renderer builds: a closed room (so every pixel hits a
surface), textured primitives with linear 3D trajectories (translation and Euler-angle
rotation, constant rates), a moving camera and lights. Motion is linear in the frame number,
so the state at any (sub)frame is known in closed form and Blender reproduces it exactly with
LINEAR keyframes and LINEAR extrapolation.

Units: scene units (metres) for lengths, radians for angles, frames for time, watts for
light energy, millimetres for lens and sensor. World z is up.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from renderers import truth

# RGB render settings a build uses unless told otherwise (see benchmarks/bench_render.py):
# samples per pixel ("auto": a per-scene budget, ``auto_samples``), OpenImageDenoise on, its
# quality and its albedo/normal prefilter, and the clamp of indirect light samples (Blender's
# factory value is 10). Clamping at 5 takes +0.15 dB at 8 samples in area-lit rooms; its bias is
# 50 dB below the image (128 samples clamped vs unclamped, same seed), so the converged image
# stays the scene's. A user's .blend keeps its own clamp.
DEFAULT_RENDER = {"samples": "auto", "denoise": True, "quality": "HIGH", "prefilter": "FAST", "clamp_indirect": 5.0}

# The per-scene sample budget. A pilot renders the scene's first frame twice (different seeds) at
# 1/4 of the width and height, 4 samples, no denoising, the scene's own clamp; half the mean
# squared difference of the two 8-bit sRGB images times 4 is the noise of one sample, sigma
# (8-bit levels, RMS). The budget grows as sigma^2.5: on the benchmark scenes (bench_render.py
# --lighting ...) the denoised error falls only as about samples^-0.3. The least samples with
# 35 dB against 512 there: point-lit rooms (sigma ~45) 4, point + area (~48) 5, area-lit (~59) 8,
# dim (~19) 2 or fewer.
PILOT = {"scale": 4, "min_side": 32, "samples": 4}
AUTO_SAMPLES = {"reference_samples": 4, "reference_noise": 46.0, "power": 2.5, "min": 2, "max": 16}


def auto_samples(noise: float) -> int:
    """RGB samples per pixel for a scene whose pilot measured one-sample noise ``noise``."""
    a = AUTO_SAMPLES
    budget = a["reference_samples"] * (max(float(noise), 0.0) / a["reference_noise"]) ** a["power"]
    return int(min(a["max"], max(a["min"], math.ceil(budget))))

SHAPES = ("cube", "sphere", "icosphere", "cylinder", "cone", "torus", "blob", "monkey")

# Semantic classes of procedural scenes (cls*.png): 0 = no object, the room 1, then each shape
# (the primitive or mesh category) in this order; "plane" is the tests' flat panel.
CLASS_NAMES = ("room", *SHAPES, "plane")
CLASS_IDS = {name: i + 1 for i, name in enumerate(CLASS_NAMES)}

# Keypoints of each shape in its local (unscaled) coordinates: the renderer adds an empty named
# kp_<object>_<point> parented to the object at each of these.
SHAPE_KEYPOINTS: dict[str, tuple[tuple[str, tuple[float, float, float]], ...]] = {
    "cube": tuple(
        (f"c{i}", (sx, sy, sz))
        for i, (sx, sy, sz) in enumerate(
            (x, y, z) for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)
        )
    ),
    "sphere": (("top", (0.0, 0.0, 1.0)), ("bottom", (0.0, 0.0, -1.0))),
    "icosphere": (("top", (0.0, 0.0, 1.0)),),
    "cylinder": (("top", (0.0, 0.0, 1.0)), ("bottom", (0.0, 0.0, -1.0))),
    "cone": (("tip", (0.0, 0.0, 1.0)), ("base", (0.0, 0.0, -1.0))),
    "torus": (("east", (1.35, 0.0, 0.0)), ("west", (-1.35, 0.0, 0.0))),
    "blob": (),
    "monkey": (),
}


@dataclass(frozen=True)
class Motion:
    """Linear trajectory: the pose at frame f is location + velocity * (f - origin) and Euler
    XYZ angles rotation + angular_velocity * (f - origin). scale is constant."""

    location: tuple[float, float, float]
    rotation: tuple[float, float, float]
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: float = 1.0

    def location_at(self, frame: float) -> tuple[float, float, float]:
        dt = float(frame) - self.origin
        return tuple(float(p + v * dt) for p, v in zip(self.location, self.velocity))

    def rotation_at(self, frame: float) -> tuple[float, float, float]:
        dt = float(frame) - self.origin
        return tuple(float(r + w * dt) for r, w in zip(self.rotation, self.angular_velocity))

    def matrix_at(self, frame: float) -> np.ndarray:
        """4x4 object-to-world (Blender convention) at ``frame``."""
        return truth.pose_matrix(self.location_at(frame), self.rotation_at(frame), self.scale)


@dataclass(frozen=True)
class MaterialSpec:
    """Principled BSDF. photo: index into SceneSpec.photos (-1 = plain colour). color: linear
    RGB base colour (multiplies the photo). uv_*: texture placement on the mesh's UVs."""

    photo: int = -1
    color: tuple[float, float, float] = (0.8, 0.8, 0.8)
    roughness: float = 0.5
    metallic: float = 0.0
    uv_scale: float = 1.0
    uv_offset: tuple[float, float] = (0.0, 0.0)
    uv_rotation: float = 0.0


@dataclass(frozen=True)
class ObjectSpec:
    """One textured primitive. Its mesh spans about [-1, 1] in local coordinates (before
    motion.scale). shape_seed drives the blob's random displacement."""

    name: str
    shape: str
    motion: Motion
    material: MaterialSpec
    smooth: bool = False
    shape_seed: int = 0

    @property
    def keypoints(self) -> tuple[tuple[str, tuple[float, float, float]], ...]:
        return SHAPE_KEYPOINTS.get(self.shape, ())


@dataclass(frozen=True)
class CameraSpec:
    """Perspective camera (Blender convention: looks down its local -z, y up); the sensor
    width spans the larger image dimension (sensor fit AUTO)."""

    motion: Motion
    lens_mm: float = 35.0
    sensor_width_mm: float = 36.0
    clip_start: float = 0.05
    clip_end: float = 1000.0


@dataclass(frozen=True)
class LightSpec:
    """kind: POINT | AREA | SUN. size: radius (POINT), side (AREA), angle in radians (SUN)."""

    kind: str
    location: tuple[float, float, float]
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    energy: float = 1000.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size: float = 0.5


@dataclass(frozen=True)
class RoomSpec:
    """A closed box around everything, seen from inside: every camera ray hits a wall, so every
    pixel has depth and flow. materials: walls -x, +x, -y, +y, floor (-z), ceiling (+z)."""

    center: tuple[float, float, float]
    half_extent: tuple[float, float, float]
    materials: tuple[MaterialSpec, ...]


@dataclass(frozen=True)
class SceneSpec:
    """Everything the renderer needs to build one procedural scene. frame_start..frame_end is
    the rendered range (Blender frame numbers); photos: texture file paths used by materials."""

    seed: int
    resolution: tuple[int, int]
    frame_start: int
    frame_end: int
    camera: CameraSpec
    objects: tuple[ObjectSpec, ...]
    lights: tuple[LightSpec, ...]
    room: RoomSpec | None
    photos: tuple[str, ...] = ()
    ambient: float = 0.05

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict) -> "SceneSpec":
        def motion(d):
            return Motion(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

        def material(d):
            return MaterialSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

        cam = dict(data["camera"])
        cam["motion"] = motion(cam["motion"])
        objects = []
        for o in data["objects"]:
            o = dict(o)
            o["motion"] = motion(o["motion"])
            o["material"] = material(o["material"])
            objects.append(ObjectSpec(**o))
        lights = [LightSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in l.items()}) for l in data["lights"]]
        room = None
        if data.get("room"):
            r = data["room"]
            room = RoomSpec(tuple(r["center"]), tuple(r["half_extent"]), tuple(material(m) for m in r["materials"]))
        return SceneSpec(
            seed=data["seed"],
            resolution=tuple(data["resolution"]),
            frame_start=data["frame_start"],
            frame_end=data["frame_end"],
            camera=CameraSpec(**cam),
            objects=tuple(objects),
            lights=tuple(lights),
            room=room,
            photos=tuple(data.get("photos", ())),
            ambient=data.get("ambient", 0.05),
        )

    def camera_K(self) -> np.ndarray:
        w, h = self.resolution
        return truth.intrinsics(w, h, self.camera.lens_mm, self.camera.sensor_width_mm)


@dataclass(frozen=True)
class SceneConfig:
    """Sampling settings of procedural scenes (ranges are inclusive (low, high)).

    Speeds are drawn log-uniformly so that small and large displacements are both common:
    at 256 px and a 35 mm lens, 0.005..0.6 units/frame at 4 units' distance is ~0.3..40 px."""

    objects: tuple[int, int] = (4, 10)
    shapes: tuple[str, ...] = SHAPES
    lens_mm: tuple[float, float] = (18.0, 50.0)
    room_half_extent: tuple[float, float] = (6.0, 12.0)
    object_scale: tuple[float, float] = (0.25, 1.2)
    object_distance: tuple[float, float] = (1.5, 7.0)
    object_speed: tuple[float, float] = (0.005, 0.6)
    object_spin: tuple[float, float] = (0.0, 0.25)
    camera_speed: tuple[float, float] = (0.002, 0.3)
    camera_spin: tuple[float, float] = (0.0, 0.06)
    p_static_camera: float = 0.2
    p_photo: float = 0.85
    p_metal: float = 0.15
    lights: tuple[int, int] = (1, 3)
    # Small point lights: soft area-light shadows are what makes low-sample renders noisy
    # (measured: all-point lighting +1.1 dB at 2 spp + denoise).
    p_area_light: float = 0.1


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / max(np.linalg.norm(v), 1e-12)


def _material(rng: np.random.Generator, n_photos: int, cfg: SceneConfig) -> tuple[MaterialSpec, int]:
    """A random material and the photo index it uses (-1 for none, indexing the caller's list)."""
    photo = int(rng.integers(n_photos)) if n_photos and rng.random() < cfg.p_photo else -1
    if photo >= 0:
        color = tuple(float(c) for c in rng.uniform(0.75, 1.0, size=3))
    else:
        color = tuple(float(c) for c in rng.uniform(0.05, 0.9, size=3))
    metallic = float(rng.uniform(0.6, 1.0)) if rng.random() < cfg.p_metal else 0.0
    return (
        MaterialSpec(
            photo=photo,
            color=color,
            roughness=float(rng.uniform(0.15, 1.0)),
            metallic=metallic,
            uv_scale=float(rng.uniform(0.6, 2.0)),
            uv_offset=(float(rng.random()), float(rng.random())),
            uv_rotation=float(rng.uniform(-math.pi, math.pi)),
        ),
        photo,
    )


def sample_scene(
    rng: np.random.Generator,
    n_photos: int,
    resolution: tuple[int, int] = (256, 256),
    frames: tuple[int, int] = (1, 2),
    config: SceneConfig = SceneConfig(),
    seed: int = 0,
) -> tuple[SceneSpec, list[int]]:
    """Draw one scene. Returns (spec, photo indices used): spec.photos is left empty and its
    materials index into the returned list; ``with_photos`` fills the paths in.

    n_photos: size of the caller's photo list (0 = plain colours only). frames: the Blender
    frame range (first, last) the trajectories are meant for; the camera and objects stay in the
    room and in front of the camera over it. seed: recorded in the spec (the caller's scene seed).
    """
    cfg = config
    first, last = int(frames[0]), int(frames[1])
    span = max(last - first, 1)
    width, height = resolution
    used: list[int] = []

    def pick_material():
        mat, photo = _material(rng, n_photos, cfg)
        if photo < 0:
            return mat
        if photo not in used:
            used.append(photo)
        return dataclasses.replace(mat, photo=used.index(photo))

    half = tuple(float(v) for v in rng.uniform(*cfg.room_half_extent, size=3))
    half = (half[0], half[1], max(half[2] * 0.6, 4.0))
    center = (0.0, 0.0, half[2] - 1.6)  # floor 1.6 below the camera's start height (z = 0)
    room_materials = tuple(pick_material() for _ in range(6))
    room = RoomSpec(center=center, half_extent=half, materials=room_materials)
    inner = np.array(half) - 0.5  # keep the camera this far from the walls

    # Camera: starts near the origin looking roughly horizontally.
    lens = float(rng.uniform(*cfg.lens_mm))
    eye = rng.uniform(-0.5, 0.5, size=3) * np.array([1.0, 1.0, 0.3])
    yaw = rng.uniform(-math.pi, math.pi)
    pitch = rng.uniform(-0.25, 0.2)
    target = eye + np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)])
    cam_rotation = truth.look_at_euler(eye, target, roll=float(rng.uniform(-0.15, 0.15)))
    if rng.random() < cfg.p_static_camera:
        cam_velocity = np.zeros(3)
        cam_spin = np.zeros(3)
    else:
        speed = min(_log_uniform(rng, *cfg.camera_speed), 2.0 / span)
        cam_velocity = _unit_vector(rng) * speed
        cam_spin = _unit_vector(rng) * float(rng.uniform(*cfg.camera_spin))
    cam_motion = Motion(
        location=tuple(float(v) for v in eye),
        rotation=tuple(float(v) for v in cam_rotation),
        velocity=tuple(float(v) for v in cam_velocity),
        angular_velocity=tuple(float(v) for v in cam_spin),
        origin=float(first),
    )
    camera = CameraSpec(motion=cam_motion, lens_mm=lens)
    K = truth.intrinsics(width, height, lens, camera.sensor_width_mm)
    room_lo = np.array(center) - inner
    room_hi = np.array(center) + inner

    def camera_position(frame):
        return np.array(cam_motion.location_at(frame))

    objects = []
    n_objects = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    for index in range(n_objects):
        shape = str(cfg.shapes[int(rng.integers(len(cfg.shapes)))])
        scale = float(rng.uniform(*cfg.object_scale))
        aspect = rng.uniform(0.6, 1.4, size=3) if shape in ("cube", "cylinder", "blob") else np.ones(3)
        scale3 = tuple(float(scale * a) for a in aspect)
        radius = scale * float(max(aspect)) * (1.75 if shape in ("cube", "torus") else 1.2)
        # Place the object in the camera's view at the first frame.
        c2w = truth.blender_to_opencv(cam_motion.matrix_at(first))
        distance = float(rng.uniform(*cfg.object_distance)) + radius
        px = rng.uniform(0.1, 0.9) * width
        py = rng.uniform(0.1, 0.9) * height
        ray = np.array([(px - K[0, 2]) / K[0, 0], (py - K[1, 2]) / K[1, 1], 1.0])
        position = c2w[:3, :3] @ (ray * distance) + c2w[:3, 3]
        position = np.clip(position, room_lo + radius, room_hi - radius)
        velocity = np.zeros(3)
        for _ in range(20):  # keep the object off the camera and inside the room over the frames
            candidate = _unit_vector(rng) * _log_uniform(rng, *cfg.object_speed)
            ends = [position + candidate * (f - first) for f in (first, last)]
            if all(
                np.all(e >= room_lo + radius) and np.all(e <= room_hi - radius)
                and np.linalg.norm(e - camera_position(f)) > radius + 0.6
                for e, f in zip(ends, (first, last))
            ):
                velocity = candidate
                break
        spin = _unit_vector(rng) * float(rng.uniform(*cfg.object_spin))
        motion = Motion(
            location=tuple(float(v) for v in position),
            rotation=tuple(float(v) for v in rng.uniform(-math.pi, math.pi, size=3)),
            velocity=tuple(float(v) for v in velocity),
            angular_velocity=tuple(float(v) for v in spin),
            scale=scale3,
            origin=float(first),
        )
        objects.append(
            ObjectSpec(
                name=f"obj{index:02d}_{shape}",
                shape=shape,
                motion=motion,
                material=pick_material(),
                smooth=shape in ("sphere", "cylinder", "cone", "torus", "blob", "monkey"),
                shape_seed=int(rng.integers(2**31)),
            )
        )

    lights = []
    n_lights = int(rng.integers(cfg.lights[0], cfg.lights[1] + 1))
    room_size = float(np.mean(half))
    for _ in range(n_lights):
        location = np.array(center) + rng.uniform(-0.8, 0.8, size=3) * inner
        location[2] = center[2] + inner[2] * float(rng.uniform(0.2, 0.9))
        kind = "AREA" if rng.random() < cfg.p_area_light else "POINT"
        energy = 60.0 * room_size**2 * _log_uniform(rng, 0.5, 2.0) / n_lights
        color = tuple(float(c) for c in 1.0 - rng.uniform(0.0, 0.25, size=3))
        lights.append(
            LightSpec(
                kind=kind,
                location=tuple(float(v) for v in location),
                rotation=(0.0, 0.0, float(rng.uniform(-math.pi, math.pi))),  # AREA lights face down
                energy=float(energy),
                color=color,
                size=float(rng.uniform(0.5, 2.0)) if kind == "AREA" else float(rng.uniform(0.02, 0.2)),
            )
        )

    spec = SceneSpec(
        seed=int(seed),
        resolution=(int(width), int(height)),
        frame_start=first,
        frame_end=last,
        camera=camera,
        objects=tuple(objects),
        lights=tuple(lights),
        room=room,
        photos=(),
        ambient=float(rng.uniform(0.02, 0.1)),
    )
    return spec, used


def with_photos(spec: SceneSpec, photo_paths) -> SceneSpec:
    """The spec with its photos tuple filled in (paths in the order of the used indices)."""
    return dataclasses.replace(spec, photos=tuple(str(p) for p in photo_paths))


def object_names(spec: SceneSpec) -> dict[int, str]:
    """Instance id -> name: the room is 1, objects are 2, 3, ... in spec order."""
    names = {}
    if spec.room is not None:
        names[1] = "room"
    for i, obj in enumerate(spec.objects):
        names[i + 2] = obj.name
    return names


def object_classes(spec: SceneSpec) -> dict[int, int]:
    """Instance id -> class id (``CLASS_IDS``) of a procedural scene."""
    classes = {1: CLASS_IDS["room"]} if spec.room is not None else {}
    for i, obj in enumerate(spec.objects):
        classes[i + 2] = CLASS_IDS[obj.shape]
    return classes
