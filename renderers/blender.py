"""The only module that imports bpy: build or open a scene, render RGB and ground-truth passes.

It runs inside the render worker process (``renderers.worker``), never in the build's own
processes. One ``Session`` holds one loaded scene (a procedural ``SceneSpec`` or a user's
``.blend``) and renders frames of it:

* The ground-truth render: 1 sample, no denoising, motion blur off, a near-zero pixel filter,
  no light bounces; passes Depth, Vector, Object Index (and Normal) written to a multilayer
  EXR and read with OpenEXR. Depth, ids and vectors are therefore taken at pixel centres and
  never blended across edges. A procedural scene's materials are replaced there by a black
  emission (``_truth_material``) unless normals are asked for.
* The RGB render: the requested samples with OpenImageDenoise, written by Blender's own PNG
  writer through the scene's colour management (8-bit sRGB). "auto" samples are the scene's
  budget from a pilot render (``Session.sample_budget``).

Both renders use ``render.use_persistent_data``: the second render of a frame (and the next
frame) reuses Cycles' synced scene, BVH and textures, so the ground truth does not pay a second
scene set-up.

Step K: with Blender's time remapping (frame_map_old = K x, frame_map_new = 1 x the scene's own
values), Blender frame f shows the scene at time K f, and the Vector pass spans t-K .. t+K
exactly (measured; subframes are used when t is not a multiple of K). Only the ground-truth
render is remapped: the RGB render runs at the scene's own mapping, so its motion blur shutter
spans the scene's own frames and frame t's RGB is the same for every K.

The user's compositor is not applied (``render.use_compositing`` off): the RGB is the render
layer through the view transform, and ``describe`` reports the node tree it skipped.
"""
from __future__ import annotations

import math
import os
import tempfile

import bpy  # noqa: I001 - bpy first: it puts bmesh on the path
import bmesh
import numpy as np

from renderers import truth
from renderers.scene import CLASS_IDS, PILOT, MaterialSpec, SceneSpec, auto_samples

RENDERABLE_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME"}
MAX_IDS = 65535
# Blender 5 writes .blend files starting with "BLENDER"; compressed files start with zstd or gzip magic.
BLEND_MAGICS = (b"BLENDER", b"\x28\xb5\x2f\xfd", b"\x1f\x8b")


class SceneError(Exception):
    """A problem with the user's scene or options (reported to the user, not retried)."""


# ---------------------------------------------------------------------------------------------
# Opening a user's file safely


def check_blend_file(path: str) -> None:
    """Raise SceneError unless ``path`` looks like a readable .blend file."""
    if not os.path.exists(path):
        raise SceneError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SceneError(f"{path}: is a directory, not a .blend file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise SceneError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not head:
        raise SceneError(f"{path}: empty file, not a .blend file")
    if not head.startswith(BLEND_MAGICS):
        raise SceneError(f"{path}: not a .blend file (no BLENDER header)")


def open_blend(path: str) -> None:
    """Open a user's .blend without running any of its Python.

    Registered text blocks and scripted drivers run only when auto-run is allowed; it is turned
    off in the preferences (a user's userpref.blend may have it on) and for this load."""
    check_blend_file(path)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    try:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path), load_ui=False, use_scripts=False)
    except RuntimeError as exc:
        raise SceneError(f"{path}: Blender cannot read this file ({str(exc).strip()})") from None
    if bpy.context.preferences.filepaths.use_scripts_auto_execute:  # never: the file cannot turn it on
        raise SceneError(f"{path}: script auto-execution got enabled while loading; refusing to render")


# ---------------------------------------------------------------------------------------------
# Building a procedural scene


def _keyframe_linear(obj) -> None:
    """Make every F-curve of ``obj`` linear, with linear extrapolation (closed-form motion)."""
    anim = obj.animation_data
    if anim is None or anim.action is None:
        return
    for layer in anim.action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(anim.action_slot)
            if bag is None:
                continue
            for curve in bag.fcurves:
                curve.extrapolation = "LINEAR"
                for key in curve.keyframe_points:
                    key.interpolation = "LINEAR"


def _animate(obj, motion, first: int, last: int) -> None:
    obj.scale = motion.scale
    obj.rotation_mode = "XYZ"
    for frame in sorted({first, last if last != first else first + 1}):
        obj.location = motion.location_at(frame)
        obj.rotation_euler = motion.rotation_at(frame)
        obj.keyframe_insert("location", frame=frame)
        obj.keyframe_insert("rotation_euler", frame=frame)
    _keyframe_linear(obj)


def _square_uvs(bm) -> None:
    """Every quad face gets the whole [0, 1]^2 texture square (boxes and walls)."""
    uv = bm.loops.layers.uv.verify()
    corners = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    for face in bm.faces:
        if len(face.loops) == 4:
            for loop, corner in zip(face.loops, corners):
                loop[uv].uv = corner


def _torus(bm, major: float = 1.0, minor: float = 0.35, segments: int = 40, rings: int = 16) -> None:
    uv = bm.loops.layers.uv.verify()
    verts = []
    for i in range(segments):
        a = 2 * math.pi * i / segments
        row = []
        for j in range(rings):
            b = 2 * math.pi * j / rings
            r = major + minor * math.cos(b)
            row.append(bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
        verts.append(row)
    for i in range(segments):
        for j in range(rings):
            i2, j2 = (i + 1) % segments, (j + 1) % rings
            face = bm.faces.new((verts[i][j], verts[i2][j], verts[i2][j2], verts[i][j2]))
            for loop, (u, v) in zip(face.loops, ((i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1))):
                loop[uv].uv = (u / segments * 3.0, v / rings)


def _canonical_order(bm):
    """A copy of ``bm`` whose vertex and face order depends only on its geometry.

    ``bmesh.ops.create_uvsphere`` (Blender 5.0) returns the same vertices and faces (each with
    the same first corner) in every process, but the faces in an order that changes from one
    process to the next. Vertex normals are sums over a vertex's faces in face order, so they
    came out some float ulps apart; the noisy render then differed in the last bits at a few
    pixels, the denoiser spread that over most of the image and about one build in three had
    a pixel one 8-bit level apart. Here vertices are sorted by position and faces by their
    vertices; each face keeps its corners (so its triangulation) and their UVs."""
    uv = bm.loops.layers.uv.active
    order = sorted(bm.verts, key=lambda v: tuple(v.co))
    new_index = {v: i for i, v in enumerate(order)}
    faces = []
    for face in bm.faces:
        indices = tuple(new_index[loop.vert] for loop in face.loops)
        uvs = [tuple(loop[uv].uv) for loop in face.loops] if uv else None
        faces.append((tuple(sorted(indices)), indices, uvs, face.smooth, face.material_index))
    faces.sort(key=lambda f: f[0])
    out = bmesh.new()
    out_uv = out.loops.layers.uv.new(uv.name) if uv else None
    verts = [out.verts.new(v.co) for v in order]
    for _, indices, uvs, smooth, material in faces:
        face = out.faces.new([verts[i] for i in indices])
        face.smooth, face.material_index = smooth, material
        if out_uv:
            for loop, value in zip(face.loops, uvs):
                loop[out_uv].uv = value
    bm.free()
    return out


def _make_mesh(name: str, shape: str, seed: int):
    bm = bmesh.new()
    bm.loops.layers.uv.new("UVMap")
    if shape == "cube":
        bmesh.ops.create_cube(bm, size=2.0, calc_uvs=True)
        _square_uvs(bm)
    elif shape == "sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=1.0, calc_uvs=True)
        bm = _canonical_order(bm)  # its face order is not the same in every process
    elif shape == "icosphere":
        bmesh.ops.create_icosphere(bm, subdivisions=2, radius=1.0, calc_uvs=True)
    elif shape == "cylinder":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=1.0, radius2=1.0, depth=2.0, calc_uvs=True)
    elif shape == "cone":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=1.0, radius2=0.0, depth=2.0, calc_uvs=True)
    elif shape == "torus":
        _torus(bm)
    elif shape == "blob":
        bmesh.ops.create_icosphere(bm, subdivisions=3, radius=1.0, calc_uvs=True)
        rng = np.random.Generator(np.random.PCG64(seed))
        freqs = rng.normal(size=(4, 3)) * 1.5
        phases = rng.uniform(0, 2 * math.pi, size=4)
        amps = rng.uniform(0.05, 0.2, size=4)
        for v in bm.verts:
            p = np.array(v.co)
            v.co = p * (1.0 + float(np.sum(amps * np.sin(freqs @ p + phases))))
    elif shape == "plane":  # a 2 x 2 square in the local xy plane, facing +z
        bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=1.0, calc_uvs=True)
    elif shape == "monkey":
        bmesh.ops.create_monkey(bm, calc_uvs=True)
    else:
        raise SceneError(f"unknown shape {shape!r}")
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    return mesh


def _material(name: str, spec: MaterialSpec, images: list):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    links = mat.node_tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Roughness"].default_value = spec.roughness
    bsdf.inputs["Metallic"].default_value = spec.metallic
    color = (*spec.color, 1.0)
    if spec.photo >= 0 and images[spec.photo] is not None:
        coords = nodes.new("ShaderNodeTexCoord")
        mapping = nodes.new("ShaderNodeMapping")
        mapping.inputs["Scale"].default_value = (spec.uv_scale, spec.uv_scale, 1.0)
        mapping.inputs["Location"].default_value = (spec.uv_offset[0], spec.uv_offset[1], 0.0)
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, spec.uv_rotation)
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = images[spec.photo]
        tex.extension = "MIRROR"  # no seams where the UVs leave the unit square
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.blend_type = "MULTIPLY"
        mix.inputs["Factor"].default_value = 1.0
        mix.inputs["B"].default_value = color
        links.new(coords.outputs["UV"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
        links.new(tex.outputs["Color"], mix.inputs["A"])
        links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = color
    return mat


def build_scene(spec: SceneSpec) -> None:
    """Replace everything loaded with the procedural scene ``spec`` (instance ids: room 1,
    objects 2.. in spec order; keypoint empties kp_<object>_<point> parented to objects)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.frame_start = spec.frame_start
    scene.frame_end = spec.frame_end
    width, height = spec.resolution
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    # Blue-noise sample pattern: at 4 spp + denoise it is +0.5 dB over the factory Sobol pattern.
    scene.cycles.sampling_pattern = "AUTOMATIC"
    first, last = spec.frame_start, spec.frame_end

    images = []
    for path in spec.photos:
        try:
            images.append(bpy.data.images.load(path, check_existing=True))
        except RuntimeError:
            images.append(None)

    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    background.inputs["Color"].default_value = (0.5, 0.5, 0.5, 1.0)
    background.inputs["Strength"].default_value = spec.ambient
    scene.world = world

    cam_data = bpy.data.cameras.new("camera")
    cam_data.lens = spec.camera.lens_mm
    cam_data.sensor_width = spec.camera.sensor_width_mm
    cam_data.sensor_fit = "AUTO"
    cam_data.clip_start = spec.camera.clip_start
    cam_data.clip_end = spec.camera.clip_end
    camera = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    _animate(camera, spec.camera.motion, first, last)

    if spec.room is not None:
        room = spec.room
        bm = bmesh.new()
        bm.loops.layers.uv.new("UVMap")
        bmesh.ops.create_cube(bm, size=2.0, calc_uvs=True)
        _square_uvs(bm)
        for v in bm.verts:
            v.co = [c * h + o for c, h, o in zip(v.co, room.half_extent, room.center)]
        bmesh.ops.reverse_faces(bm, faces=list(bm.faces))  # seen from inside
        for face in bm.faces:
            n = face.normal  # inward after the flip
            axis = max(range(3), key=lambda k: abs(n[k]))
            # wall order: -x, +x, -y, +y, -z (floor), +z (ceiling); an inward normal points away from its wall
            face.material_index = 2 * axis + (0 if n[axis] > 0 else 1)
        mesh = bpy.data.meshes.new("room")
        bm.to_mesh(mesh)
        bm.free()
        for i, mat_spec in enumerate(room.materials):
            mesh.materials.append(_material(f"room_{i}", mat_spec, images))
        room_obj = bpy.data.objects.new("room", mesh)
        room_obj.pass_index = 1
        room_obj["pairgen_ids"] = 1
        room_obj["category_id"] = CLASS_IDS["room"]
        scene.collection.objects.link(room_obj)

    for index, obj_spec in enumerate(spec.objects):
        mesh = _make_mesh(obj_spec.name, obj_spec.shape, obj_spec.shape_seed)
        if obj_spec.smooth:
            mesh.shade_smooth()
        mesh.materials.append(_material(obj_spec.name, obj_spec.material, images))
        obj = bpy.data.objects.new(obj_spec.name, mesh)
        obj.pass_index = index + 2
        obj["pairgen_ids"] = 1
        obj["category_id"] = CLASS_IDS[obj_spec.shape]
        scene.collection.objects.link(obj)
        _animate(obj, obj_spec.motion, first, last)
        for kp_name, local in obj_spec.keypoints:
            empty = bpy.data.objects.new(f"kp_{obj_spec.name}_{kp_name}", None)
            empty.empty_display_size = 0.05
            scene.collection.objects.link(empty)
            empty.parent = obj
            empty.location = local

    for i, light_spec in enumerate(spec.lights):
        light = bpy.data.lights.new(f"light{i}", light_spec.kind)
        light.energy = light_spec.energy
        light.color = light_spec.color
        if light_spec.kind == "AREA":
            light.size = light_spec.size
        elif light_spec.kind == "SUN":
            light.angle = light_spec.size
        else:
            light.shadow_soft_size = light_spec.size
        light_obj = bpy.data.objects.new(f"light{i}", light)
        light_obj.location = light_spec.location
        light_obj.rotation_euler = light_spec.rotation
        scene.collection.objects.link(light_obj)
    scene.frame_set(first)


# ---------------------------------------------------------------------------------------------
# Reading a scene


def _image_paths(image) -> list[str]:
    """The files an image data-block reads (one per UDIM tile for tiled images)."""
    path = bpy.path.abspath(image.filepath, library=image.library)
    if image.source == "TILED" and "<UDIM>" in path:
        return [path.replace("<UDIM>", str(tile.number)) for tile in image.tiles]
    return [path]


def missing_external_data() -> dict:
    """Images and linked libraries a loaded .blend refers to but cannot find.

    Blender renders a missing image as magenta and drops the objects of a missing library (they
    load as empty placeholders), both without an error. Returns {"images": [{"name", "path"}],
    "libraries": [{"name", "path", "missing_ids"}]}: images in use (users > 0), read from a file
    (not packed, not generated) that does not exist; libraries whose file does not exist or
    whose data-blocks came back as placeholders."""
    images = []
    for image in bpy.data.images:
        if image.users == 0 or image.packed_file is not None or image.source not in ("FILE", "SEQUENCE", "MOVIE", "TILED"):
            continue
        absent = [path for path in _image_paths(image) if not os.path.isfile(path)]
        if absent:
            images.append({"name": image.name, "path": absent[0] if len(absent) == 1 else absent})
    placeholders: dict[str, list[str]] = {}
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.collections, bpy.data.node_groups):
        for block in collection:
            if block.library is not None and block.is_missing:
                placeholders.setdefault(block.library.name, []).append(f"{block.id_type.lower()}:{block.name}")
    libraries = []
    for library in bpy.data.libraries:
        path = bpy.path.abspath(library.filepath)
        if library.is_missing or not os.path.isfile(path) or library.name in placeholders:
            libraries.append({"name": library.name, "path": path, "missing_ids": sorted(placeholders.get(library.name, []))})
    return {"images": sorted(images, key=lambda i: i["name"]), "libraries": sorted(libraries, key=lambda l: l["name"])}


def missing_message(where: str, missing: dict) -> str:
    """The error of a .blend with missing images or libraries: each one with its path."""
    parts = []
    if missing["images"]:
        parts.append(f"{len(missing['images'])} image texture(s) not found (Blender would render them magenta): "
                     + "; ".join(f"{i['name']} at {i['path']}" for i in missing["images"]))
    if missing["libraries"]:
        parts.append(f"{len(missing['libraries'])} linked librar(ies) not found (their objects would be missing from "
                     "the render): " + "; ".join(f"{l['name']} at {l['path']}"
                                                 + (f" ({', '.join(l['missing_ids'])})" if l["missing_ids"] else "")
                                                 for l in missing["libraries"]))
    return (f"{where}: " + " and ".join(parts) + ". Put the files where the paths say (or pack them into the .blend: "
            "File > External Data > Pack Resources), or pass --allow-missing to render anyway (the missing list is "
            "recorded in every sample's json and the card)")


def object_classes(scene, ids: dict[int, str]) -> tuple[dict[int, int], dict[int, str]]:
    """Semantic class of every instance of a .blend: its integer custom property ``category_id``
    when it has one, else one class per collection (the object's first collection, by name).

    Returns ({instance id: class id}, {class id: class name}); collection classes are numbered
    after the largest category_id, in collection-name order; 0 stays "no object"."""
    explicit, by_collection = {}, {}
    for oid, name in ids.items():
        obj = scene.objects[name]
        value = obj.get("category_id")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and int(value) == value and 0 < value <= MAX_IDS:
            explicit[oid] = int(value)
        else:
            collections = sorted(c.name for c in obj.users_collection)
            by_collection[oid] = collections[0] if collections else scene.collection.name
    start = max(explicit.values(), default=0) + 1
    collection_ids = {name: start + i for i, name in enumerate(sorted(set(by_collection.values())))}
    if collection_ids and max(collection_ids.values()) > MAX_IDS:
        raise SceneError(f"scene {scene.name!r}: too many classes for 16-bit class ids")
    classes = {**explicit, **{oid: collection_ids[c] for oid, c in by_collection.items()}}
    names = {cid: f"category_id {cid}" for cid in sorted(set(explicit.values()))}
    names.update({cid: f"collection {c}" for c, cid in collection_ids.items()})
    return classes, names


def _camera_K(scene, camera_obj, width: int, height: int) -> np.ndarray:
    cam = camera_obj.data
    return truth.intrinsics(
        width, height, cam.lens, cam.sensor_width, cam.sensor_height, cam.sensor_fit,
        cam.shift_x, cam.shift_y, scene.render.pixel_aspect_x, scene.render.pixel_aspect_y,
    )


def assign_ids(scene) -> dict[int, str]:
    """Give every renderable object a unique pass_index 1..N (sorted by name) unless the scene
    was built by ``build_scene`` (its ids are already set). Returns {id: object name}."""
    objects = sorted(
        (o for o in scene.objects if o.type in RENDERABLE_TYPES and not o.hide_render), key=lambda o: o.name
    )
    if len(objects) > MAX_IDS:
        raise SceneError(f"scene {scene.name!r} has {len(objects)} renderable objects; instance ids are 16-bit (at most {MAX_IDS})")
    if objects and all(o.get("pairgen_ids") for o in objects):
        return {o.pass_index: o.name for o in objects}
    for i, obj in enumerate(objects, start=1):
        obj.pass_index = i
        obj["pairgen_ids"] = 1
    return {o.pass_index: o.name for o in objects}


def describe(path: str | None = None) -> dict:
    """What a loaded scene offers: frame range, resolution, camera, motion blur, objects."""
    scene = bpy.context.scene
    where = f"{path}: scene {scene.name!r}" if path else f"scene {scene.name!r}"
    camera = scene.camera
    if camera is None:
        raise SceneError(f"{where} has no active camera; add a camera and make it the scene camera")
    if camera.type != "CAMERA":
        raise SceneError(f"{where}: the scene camera {camera.name!r} is not a camera object")
    if camera.data.type != "PERSP":
        raise SceneError(f"{where}: camera {camera.name!r} is {camera.data.type}; only perspective cameras are supported (K would not be a pinhole)")
    pct = scene.render.resolution_percentage / 100.0
    width = max(1, int(scene.render.resolution_x * pct))
    height = max(1, int(scene.render.resolution_y * pct))
    objects = assign_ids(scene)
    classes, class_names = object_classes(scene, objects)
    compositor = scene.compositing_node_group
    return {
        "scene": scene.name,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
        "fps": scene.render.fps / scene.render.fps_base,
        "resolution": [width, height],
        "camera": camera.name,
        "motion_blur": bool(scene.render.use_motion_blur),
        "clamp_indirect": float(scene.cycles.sample_clamp_indirect),
        "shutter": float(scene.render.motion_blur_shutter),
        "engine": scene.render.engine,
        "frame_map": [scene.render.frame_map_old, scene.render.frame_map_new],
        "objects": {str(k): v for k, v in objects.items()},
        "classes": {str(k): v for k, v in classes.items()},
        "class_names": {str(k): v for k, v in class_names.items()},
        "compositor": compositor.name if compositor is not None and scene.render.use_compositing else None,
        "missing": missing_external_data(),
        "autoexec_blocked": bool(bpy.app.autoexec_fail),
    }


def _keypoints_world(scene, depsgraph) -> dict[str, list[float]]:
    """World positions of keypoints: objects named kp_* (their origin) and vertex groups named
    kp_* (weighted mean of the evaluated mesh's vertices), as "<object>/<group>"."""
    points = {}
    for obj in scene.objects:
        if obj.name.startswith("kp_"):
            points[obj.name] = list(obj.matrix_world.translation)
        if obj.type == "MESH" and any(g.name.startswith("kp_") for g in obj.vertex_groups):
            evaluated = obj.evaluated_get(depsgraph)
            mesh = evaluated.to_mesh()
            try:
                groups = {g.index: g.name for g in obj.vertex_groups if g.name.startswith("kp_")}
                sums = {i: [np.zeros(3), 0.0] for i in groups}
                for v in mesh.vertices:
                    for g in v.groups:
                        if g.group in sums and g.weight > 0:
                            sums[g.group][0] += g.weight * np.array(v.co)
                            sums[g.group][1] += g.weight
                world = np.array(evaluated.matrix_world)
                for i, (total, weight) in sums.items():
                    if weight > 0:
                        p = world[:3, :3] @ (total / weight) + world[:3, 3]
                        points[f"{obj.name}/{groups[i]}"] = [float(c) for c in p]
            finally:
                evaluated.to_mesh_clear()
    return points


def _is_rigid(obj, scene) -> bool:
    """True when the object's surface moves only by its world matrix (no deformation)."""
    if obj.type != "MESH":
        return False
    if obj.data.shape_keys is not None:
        return False
    try:
        return not obj.is_deform_modified(scene, "RENDER")
    except Exception:  # noqa: BLE001 - unknown: treat as deforming (no depth test)
        return False


# ---------------------------------------------------------------------------------------------
# Rendering


def _truth_material():
    """A black emission material for the ground-truth render of a procedural scene.

    Depth, Vector and Object Index come from the first hit whatever the material, and the
    procedural materials are opaque without displacement, so overriding them changes none of
    those passes (tested) while it skips texture lookups, the BSDF and the shadow rays: the
    ground-truth render costs about a third. Not for a user's .blend (alpha cut-outs and
    displacement shape its surfaces), nor with the Normal pass (normals come from the BSDF)."""
    material = bpy.data.materials.new("pairgen_truth")
    tree = material.node_tree
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    emission = tree.nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = 0.0
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def _read_exr(path: str) -> dict[str, np.ndarray]:
    import OpenEXR

    channels = {}
    with OpenEXR.File(path, separate_channels=True) as exr:
        for part in exr.parts:
            for name, channel in part.channels.items():
                channels[name] = np.array(channel.pixels)
    return channels


def _channel(channels: dict, suffix: str) -> np.ndarray:
    for name, values in channels.items():
        if name.endswith(suffix):
            return values
    raise KeyError(f"pass channel *{suffix} missing from the render (have: {', '.join(sorted(channels))})")


def _read_png(path: str) -> np.ndarray:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise RuntimeError(f"Blender did not write {path}")
    if image.dtype != np.uint8:
        raise RuntimeError(f"expected an 8-bit PNG from Blender, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, 2::-1])


class Session:
    """A loaded scene and the render state around it (one per worker process)."""

    def __init__(self, scratch: str | None = None):
        """scratch: a folder for the render files (default: a new temporary folder)."""
        self.source_key = None
        self.ids: dict[int, str] = {}
        self.rigid: dict[int, bool] = {}
        self.classes: dict[int, int] = {}
        self.user = {}
        self.tmp = scratch or tempfile.mkdtemp(prefix="pairgen-render-")
        self.view_layer = None
        self.truth_material = None  # procedural scenes: the material override of the ground-truth render
        self.budgets: dict[tuple, tuple[int, float]] = {}  # "auto" samples per pilot: (samples, noise)

    # -------------------------------------------------------------- loading
    def load(self, source: dict) -> dict:
        """source: {"blend": path, "scene": name or None} or {"spec": SceneSpec}. Loads it unless
        it is already loaded; returns ``describe()``."""
        key = repr((source.get("blend"), source.get("scene"), bool(source.get("allow_missing")))) if "blend" in source else repr(source["spec"])
        if key != self.source_key:
            self.source_key = None
            if "blend" in source:
                open_blend(source["blend"])
                if source.get("scene"):
                    if source["scene"] not in bpy.data.scenes:
                        raise SceneError(f"{source['blend']}: no scene named {source['scene']!r} (has: {', '.join(s.name for s in bpy.data.scenes)})")
                    bpy.context.window.scene = bpy.data.scenes[source["scene"]]
            else:
                build_scene(source["spec"])
            scene = bpy.context.scene
            self.truth_material = _truth_material() if "spec" in source else None
            self.budgets = {}
            self.info = describe(source.get("blend"))
            missing = self.info["missing"]
            if "blend" in source and (missing["images"] or missing["libraries"]) and not source.get("allow_missing"):
                raise SceneError(missing_message(f"{source['blend']}: scene {scene.name!r}", missing))
            self.ids = {int(k): v for k, v in self.info["objects"].items()}
            self.classes = {int(k): v for k, v in self.info["classes"].items()}
            self.rigid = {i: _is_rigid(scene.objects[name], scene) for i, name in self.ids.items()}
            self.view_layer = bpy.context.view_layer
            for layer in scene.view_layers:  # render only the active view layer
                layer.use = layer == self.view_layer
            r = scene.render
            self.user = {
                "motion_blur": bool(r.use_motion_blur),
                "frame_map": (r.frame_map_old, r.frame_map_new),
                "filter_width": scene.cycles.filter_width,
                "max_bounces": scene.cycles.max_bounces,
                "clamp_indirect": scene.cycles.sample_clamp_indirect,
                "sampling_pattern": scene.cycles.sampling_pattern,
                "resolution": tuple(self.info["resolution"]),
            }
            self.source_key = key
        return self.info

    # -------------------------------------------------------------- settings
    def _common(self, scene, settings: dict) -> None:
        r = scene.render
        r.engine = "CYCLES"
        scene.cycles.device = "CPU"
        width, height = settings.get("resolution") or self.user["resolution"]
        r.resolution_x, r.resolution_y, r.resolution_percentage = int(width), int(height), 100
        r.use_border = False
        r.use_persistent_data = True
        r.use_compositing = False
        r.use_sequencer = False
        r.film_transparent = False
        threads = int(settings.get("threads") or 0)
        r.threads_mode = "FIXED" if threads else "AUTO"
        if threads:
            r.threads = threads
        scene.cycles.use_adaptive_sampling = False
        scene.cycles.use_animated_seed = False

    def sample_budget(self, time: float, settings: dict) -> tuple[int, float]:
        """The "auto" RGB samples of the loaded scene, from a pilot (``renderers.scene.PILOT``):
        two low-resolution renders of frame ``pilot_time`` (default ``time``) with seeds
        ``pilot_seed`` (default the frame's seed) and +1. Returns (samples, noise of one sample
        in 8-bit levels); the same pilot settings give the same budget for every frame."""
        width, height = settings.get("resolution") or self.user["resolution"]
        pilot_time = float(settings.get("pilot_time", time))
        seed = int(settings.get("pilot_seed", settings.get("seed", 0)))
        key = (pilot_time, seed, int(width), int(height))
        if key not in self.budgets:
            size = tuple(max(PILOT["min_side"], round(int(n) / PILOT["scale"])) for n in (width, height))
            pilot = {"samples": PILOT["samples"], "denoise": False, "resolution": size, "threads": settings.get("threads", 0)}
            images = [self.render_frame(pilot_time, settings={**pilot, "seed": seed + k}, truth_pass=False)["rgb"].astype(np.float64)
                      for k in (0, 1)]
            noise = float(np.sqrt(np.mean((images[0] - images[1]) ** 2) / 2 * PILOT["samples"]))
            self.budgets[key] = (auto_samples(noise), noise)
        return self.budgets[key]

    def _set_time(self, scene, time: float, step: int) -> None:
        """Show the scene at (possibly fractional) frame ``time``; the Vector pass spans +-step."""
        old, new = self.user["frame_map"]
        if step != 1:
            if old * step > 900:
                raise SceneError(f"--step {step}: too large for Blender's time remapping (frame_map_old {old} x step must stay <= 900)")
            scene.render.frame_map_old = old * step
            scene.render.frame_map_new = new
        else:
            scene.render.frame_map_old, scene.render.frame_map_new = old, new
        f = time / step
        frame = math.floor(f)
        scene.frame_set(int(frame), subframe=float(f - frame))

    def render_frame(self, time: float, step: int = 1, settings: dict | None = None, truth_pass: bool = True,
                     rgb: bool = True, normals: bool = False, vector: bool = True) -> dict:
        """Render the loaded scene at frame ``time`` (scene frame numbers).

        settings: samples (RGB; "auto": ``sample_budget``, with pilot_time and pilot_seed),
        denoise (bool), seed (Cycles seed), resolution (W, H) or None, threads (0 = all cores);
        quality and prefilter of the denoiser; clamp_indirect (None: the scene's own). Returns a
        dict of numpy arrays and metadata: rgb uint8 (H, W, 3);
        depth float32 (H, W); seg uint16 (H, W); flow_fwd / flow_bwd float32 (H, W, 2) to
        time +- step (if vector); cls uint16 (H, W) class ids; normal float32 (H, W, 3) world space (if normals); K, c2w (OpenCV),
        object_to_world {id: 4x4}, rigid {id: bool}, keypoints {name: xyz}; with rgb, samples
        (the RGB's) and pilot_noise (None unless samples was "auto").
        """
        settings = dict(settings or {})
        pilot_noise = None
        if rgb and settings.get("samples") == "auto":
            settings["samples"], pilot_noise = self.sample_budget(time, settings)
        scene = bpy.context.scene
        layer = self.view_layer
        self._common(scene, settings)
        self._set_time(scene, time, step)
        width, height = scene.render.resolution_x, scene.render.resolution_y
        depsgraph = bpy.context.evaluated_depsgraph_get()
        camera = scene.camera
        c2w_blender = np.array(camera.matrix_world, dtype=np.float64)
        out = {
            "time": float(time),
            "blender": bpy.app.version_string,
            "K": _camera_K(scene, camera, width, height),
            "c2w": truth.blender_to_opencv(c2w_blender),
            "object_to_world": {i: np.array(scene.objects[n].matrix_world, dtype=np.float64) for i, n in self.ids.items()},
            "rigid": dict(self.rigid),
            "keypoints": _keypoints_world(scene, depsgraph),
        }
        cycles = scene.cycles
        cycles.seed = int(settings.get("seed", 0)) % (2**31)
        if truth_pass:
            layer.use_pass_z = True
            layer.use_pass_vector = bool(vector)
            layer.use_pass_object_index = True
            layer.use_pass_normal = bool(normals)
            cycles.samples = 1
            cycles.use_denoising = False
            cycles.filter_width = 0.01  # the one sample at the pixel centre
            cycles.max_bounces = 0  # only the passes matter
            cycles.sampling_pattern = "TABULATED_SOBOL"  # its first sample is measured at the pixel centre
            layer.material_override = None if normals else self.truth_material
            scene.render.use_motion_blur = False
            settings_image = scene.render.image_settings
            settings_image.media_type = "MULTI_LAYER_IMAGE"
            settings_image.color_depth = "32"
            settings_image.exr_codec = "NONE"
            path = os.path.join(self.tmp, "truth.exr")
            scene.render.filepath = path
            bpy.ops.render.render(write_still=True)
            channels = _read_exr(path)
            os.unlink(path)
            if vector:
                motion = np.stack([_channel(channels, f".Vector.{c}") for c in "XYZW"], axis=-1)
                out["flow_fwd"], out["flow_bwd"] = truth.flow_from_vector(motion)
            out["depth"] = truth.depth_from_z(_channel(channels, ".Depth.Z"))
            out["seg"] = truth.instance_ids(_channel(channels, ".Object Index.X"))
            out["cls"] = truth.class_ids(out["seg"], self.classes)
            if normals:
                out["normal"] = np.stack([_channel(channels, f".Normal.{c}") for c in "XYZ"], axis=-1).astype(np.float32)
            layer.use_pass_z = layer.use_pass_vector = layer.use_pass_object_index = layer.use_pass_normal = False
            layer.material_override = None
        if rgb:
            cycles.samples = int(settings.get("samples", 2))
            cycles.use_denoising = bool(settings.get("denoise", True))
            if cycles.use_denoising:
                cycles.denoiser = "OPENIMAGEDENOISE"
                cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
                cycles.denoising_prefilter = settings.get("prefilter", "ACCURATE")
                cycles.denoising_quality = settings.get("quality", "HIGH")
            cycles.filter_width = self.user["filter_width"]
            cycles.max_bounces = self.user["max_bounces"]
            clamp = settings.get("clamp_indirect")
            cycles.sample_clamp_indirect = self.user["clamp_indirect"] if clamp is None else float(clamp)
            cycles.sampling_pattern = self.user["sampling_pattern"]
            scene.render.use_motion_blur = self.user["motion_blur"]
            if step != 1:  # the scene's own time mapping: its shutter spans its own frames whatever K is
                self._set_time(scene, time, 1)
            image_settings = scene.render.image_settings
            image_settings.media_type = "IMAGE"
            image_settings.file_format = "PNG"
            image_settings.color_mode = "RGB"
            image_settings.color_depth = "8"
            path = os.path.join(self.tmp, "rgb.png")
            scene.render.filepath = path
            bpy.ops.render.render(write_still=True)
            out["rgb"] = _read_png(path)
            out["samples"], out["pilot_noise"] = int(cycles.samples), pilot_noise
            os.unlink(path)
        return out

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)
