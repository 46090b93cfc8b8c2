"""Example inputs, so that every command of the README's quick start runs as written on a fresh
clone: ``pairgen example-photos photos/`` (the photos embedded in scikit-image, as JPEG files)
and ``pairgen example-scene scene.blend`` (a small animated scene made in Blender)."""
from __future__ import annotations

import os

from .errors import PairgenError

# A camera looking along +y at a cube that slides right and a sphere that moves away, under a
# sun and an area light, on a floor plane: flow in both directions, occlusion, depth changes.
SCENE_SCRIPT = """
import math
import bmesh
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, frames
scene.render.resolution_x, scene.render.resolution_y = 320, 240
cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
scene.collection.objects.link(cam)
scene.camera = cam
cam.location = (0.0, -6.0, 1.5)
cam.rotation_euler = (math.radians(80), 0.0, 0.0)

def material(name, rgb):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1.0)
    return mat

def solid(name, make, rgb):
    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new(); make(bm); bm.to_mesh(mesh); bm.free()
    obj = bpy.data.objects.new(name, mesh)
    obj.data.materials.append(material(name, rgb))
    scene.collection.objects.link(obj)
    return obj

floor = solid("floor", lambda bm: bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=8.0), (0.55, 0.5, 0.45))
cube = solid("cube", lambda bm: bmesh.ops.create_cube(bm, size=1.0), (0.8, 0.2, 0.1))
sphere = solid("sphere", lambda bm: bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=0.6), (0.1, 0.3, 0.8))
for frame, (cx, sy) in ((1, (-1.2, 0.5)), (frames, (1.0, 2.5))):
    cube.location = (cx, 0.0, 0.5)
    cube.rotation_euler = (0.0, 0.0, math.radians(30 * frame / frames))
    sphere.location = (0.8, sy, 0.6)
    for obj, paths in ((cube, ("location", "rotation_euler")), (sphere, ("location",))):
        for path_ in paths:
            obj.keyframe_insert(path_, frame=frame)
sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
sun.data.energy = 3.0
sun.rotation_euler = (math.radians(40), math.radians(20), 0.0)
area = bpy.data.objects.new("area", bpy.data.lights.new("area", "AREA"))
area.data.energy = 300.0
area.location = (-2.0, -3.0, 4.0)
for light in (sun, area):
    scene.collection.objects.link(light)
world = bpy.data.worlds.new("world")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.06, 0.08, 1.0)
scene.world = world
bpy.ops.wm.save_as_mainfile(filepath=path)
result = path
"""


def write_example_photos(folder: str) -> list[str]:
    """Write the embedded photos as JPEG files (quality 95) into ``folder``; returns their paths."""
    import cv2

    from .sources import EMBEDDED_PHOTOS, load_embedded, to_rgb8

    os.makedirs(folder, exist_ok=True)
    written = []
    for name in EMBEDDED_PHOTOS:
        path = os.path.join(folder, f"{name}.jpg")
        rgb = to_rgb8(load_embedded(name))
        if not cv2.imwrite(path, rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise PairgenError(f"cannot write {path}")
        written.append(path)
    return written


def write_example_scene(path: str, frames: int = 12) -> str:
    """Make the example .blend (Blender runs in its own process, as for renders)."""
    from renderers.worker import RenderWorker

    if not path.endswith(".blend"):
        raise PairgenError(f"{path}: the example scene is a .blend file; give a path ending in .blend")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    worker = RenderWorker(retries=0, timeout=600)
    try:
        return worker.call("script", code=SCENE_SCRIPT, path=os.path.abspath(path), frames=int(frames))
    finally:
        worker.close()
