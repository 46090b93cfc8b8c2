"""Rendered data that never lies silently: each offending .blend is built here with bpy (in the
render worker's process) and rendered through the flow/depth tasks or the CLI.

Missing image textures and linked libraries are refused with their paths (--allow-missing
records them), --step K keeps the scene's own motion blur shutter, a compositor node tree is
reported, class ids follow category_id / collections, and every json path the card's
conventions name exists in a real sample."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from pairgen.errors import PairgenError
from pairgen.tasks.depth import DepthTask
from pairgen.tasks.flow import FlowTask
from renderers.worker import RenderWorker

from conftest import run_cli

# A 40x30 scene, frames 1-4: a camera looking along +y at a box moving right (0.1 units per
# frame at distance 5) in front of a textured wall; options add the offending parts.
MAKE_SCENE = """
import bmesh, math
if library:  # a second file holding one linked object
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mesh = bpy.data.meshes.new("libmesh"); bm = bmesh.new(); bmesh.ops.create_cube(bm, size=0.6); bm.to_mesh(mesh); bm.free()
    bpy.context.scene.collection.objects.link(bpy.data.objects.new("libcube", mesh))
    bpy.ops.wm.save_as_mainfile(filepath=library)
if texture:
    image = bpy.data.images.new("wall_texture", 8, 8)
    image.pixels = [0.2, 0.6, 0.3, 1.0] * 64
    image.filepath_raw = texture; image.file_format = "PNG"; image.save()
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 4
scene.render.resolution_x, scene.render.resolution_y = 40, 30
cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
scene.collection.objects.link(cam); scene.camera = cam
cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
light = bpy.data.objects.new("light", bpy.data.lights.new("light", "POINT"))
light.data.energy = 500.0; light.location = (0.0, 1.0, 2.0); scene.collection.objects.link(light)
props = bpy.data.collections.new("Props"); scene.collection.children.link(props)
def add_box(name, size, location, collection):
    mesh = bpy.data.meshes.new(name); bm = bmesh.new(); bmesh.ops.create_cube(bm, size=size); bm.to_mesh(mesh); bm.free()
    obj = bpy.data.objects.new(name, mesh); collection.objects.link(obj); obj.location = location
    return obj
box = add_box("box", 1.0, (0.0, 5.0, 0.0), props)
add_box("crate", 0.5, (-1.2, 5.0, -0.6), props)
wall = add_box("wall", 1.0, (0.0, 9.0, 0.0), scene.collection)
wall.scale = (12.0, 0.2, 12.0)
wall["category_id"] = 7
for frame, x in ((1, 0.0), (4, 0.3)):
    box.location = (x, 5.0, 0.0)
    box.keyframe_insert("location", frame=frame)
anim = box.animation_data
for curve in anim.action.layers[0].strips[0].channelbag(anim.action_slot).fcurves:
    for key in curve.keyframe_points:
        key.interpolation = "LINEAR"
if texture:
    mat = bpy.data.materials.new("wall"); mat.use_nodes = True
    node = mat.node_tree.nodes.new("ShaderNodeTexImage"); node.image = bpy.data.images.load(texture)
    mat.node_tree.links.new(node.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    wall.data.materials.append(mat)
if library:
    with bpy.data.libraries.load(library, link=True) as (source, linked):
        linked.objects = ["libcube"]
    for obj in linked.objects:
        scene.collection.objects.link(obj)
if compositor:
    scene.compositing_node_group = bpy.data.node_groups.new("grade", "CompositorNodeTree")
if motion_blur:
    scene.render.use_motion_blur = True
    scene.render.motion_blur_shutter = 0.8
bpy.ops.wm.save_as_mainfile(filepath=path)
result = path
"""


@pytest.fixture(scope="module")
def worker():
    w = RenderWorker(recycle_every=1000, retries=0, timeout=300)
    yield w
    w.close()


@pytest.fixture(scope="module")
def blends(worker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")

    def make(name, texture=False, library=False, compositor=False, motion_blur=False):
        return worker.call("script", code=MAKE_SCENE, path=str(folder / f"{name}.blend"),
                           texture=str(folder / f"{name}_texture.png") if texture else "",
                           library=str(folder / f"{name}_lib.blend") if library else "",
                           compositor=compositor, motion_blur=motion_blur)

    files = {
        "texture": make("texture", texture=True),
        "library": make("library", library=True),
        "blurred": make("blurred", texture=True, compositor=True, motion_blur=True),
    }
    os.unlink(folder / "texture_texture.png")  # the offending parts: gone after saving
    os.unlink(folder / "library_lib.blend")
    worker.close()
    return files, folder


def _task(worker, cls=FlowTask, **options):
    task = cls(threads=1, samples=1, retries=0, **options)
    task._worker = worker
    return task


def _render_all(task):
    items, _ = task.plan()
    return [s for item in items for s in task.make(item, np.random.default_rng(0))]


def test_missing_texture_is_an_error_listing_it(worker, blends):
    files, folder = blends
    with pytest.raises(PairgenError) as error:
        _task(worker, blend=files["texture"], frames="1-2").plan()
    message = str(error.value)
    assert "texture_texture.png at " in message and str(folder / "texture_texture.png") in message and "--allow-missing" in message


def test_missing_library_is_an_error_listing_it(worker, blends):
    files, folder = blends
    with pytest.raises(PairgenError) as error:
        _task(worker, blend=files["library"], frames="1-2").plan()
    message = str(error.value)
    assert "librar" in message and str(folder / "library_lib.blend") in message and "object:libcube" in message


def test_allow_missing_renders_and_records_the_list(worker, blends, capsys):
    files, folder = blends
    task = _task(worker, blend=files["texture"], frames="1-2", allow_missing=True)
    (_, fields), = _render_all(task)
    assert "1 missing image" in capsys.readouterr().err
    expected = {"images": [{"name": "texture_texture.png", "path": str(folder / "texture_texture.png")}], "libraries": []}
    assert fields["json"]["missing"] == expected and task.card()["source"]["missing"] == expected
    assert fields["img0.png"].shape == (30, 40, 3)
    task = _task(worker, cls=DepthTask, blend=files["library"], frames="1-1", allow_missing=True)
    (_, fields), = _render_all(task)
    (library,) = fields["json"]["missing"]["libraries"]
    assert library["path"] == str(folder / "library_lib.blend") and library["missing_ids"] == ["object:libcube"]


def test_step_keeps_the_scenes_shutter_and_records_motion_blur(worker, blends, capsys):
    files, _ = blends
    one = _render_all(_task(worker, blend=files["blurred"], frames="1-4", allow_missing=True))
    three = _render_all(_task(worker, blend=files["blurred"], frames="1-4", step=3, allow_missing=True))
    assert three[0][1]["json"]["frames"] == [1, 4] and one[0][1]["json"]["frames"] == [1, 2]
    np.testing.assert_array_equal(one[0][1]["img0.png"], three[0][1]["img0.png"])  # frame 1, whatever K
    np.testing.assert_array_equal(one[2][1]["img1.png"], three[0][1]["img1.png"])  # frame 4
    # the ground truth still spans t -> t+3: the box moves 3 x 0.1 units at distance 4.5
    record = three[0][1]["json"]
    seg = three[0][1]["seg0.png"]
    box_id = int(next(k for k, v in record["objects"].items() if v == "box"))
    inner = seg == box_id
    inner[1:-1] &= (seg[:-2] == box_id) & (seg[2:] == box_id)
    np.testing.assert_allclose(three[0][1]["flow.npy"][inner][:, 0], record["K"][0][0] * 0.3 / 4.5, rtol=1e-3)
    render = record["render"]
    assert render["motion_blur"] is True and render["shutter"] == pytest.approx(0.8)
    assert render["compositor"] == "grade"
    assert "compositor node tree ('grade'); it is not applied" in capsys.readouterr().err


def test_class_ids_from_category_id_and_collections(worker, blends):
    files, _ = blends
    (_, fields), = _render_all(_task(worker, cls=DepthTask, blend=files["blurred"], frames="1-1", allow_missing=True))
    record = fields["json"]
    objects = {v: int(k) for k, v in record["objects"].items()}
    seg, cls = fields["seg.png"], fields["cls.png"]
    assert cls.dtype == np.uint16 and ((seg == 0) == (cls == 0)).all()
    assert (cls[seg == objects["wall"]] == 7).all()
    props = cls[seg == objects["box"]]
    assert props.size and (props == 8).all() and (cls[seg == objects["crate"]] == 8).all()  # both in "Props"
    assert record["classes"] == {"7": "category_id 7", "8": "collection Props"}


def test_procedural_class_ids_are_the_shapes(worker):
    from renderers.scene import CLASS_IDS

    task = _task(worker, cls=DepthTask, scenes=1, resolution=(32, 24), distance=True)
    (_, fields), = _render_all(task)
    spec = fields["json"]["scene"]["spec"]
    classes = {1: CLASS_IDS["room"], **{i + 2: CLASS_IDS[o["shape"]] for i, o in enumerate(spec["objects"])}}
    for oid in np.unique(fields["seg.png"]):
        assert (fields["cls.png"][fields["seg.png"] == oid] == classes[int(oid)]).all()
    assert fields["json"]["classes"]["1"] == "room"
    distance, depth = fields["distance.npy"], fields["depth.npy"]
    assert distance.dtype == np.float32 and (distance >= depth * (1 - 1e-6)).all() and (distance <= depth * 2).all()


def _json_paths(text: str) -> list[str]:
    """Dotted json paths a conventions text names (e.g. cameras[i].K, render.shutter); file names
    (flow.npy) and the card's own entries ("the card's source.missing") are not json paths."""
    paths = []
    for match in re.finditer(r"(?<![\w.'])([a-z_]+(?:\[i\])?(?:\.[a-z_A-Z]+(?:\[i\])?)+)", text):
        path = match.group(1)
        if path.rsplit(".", 1)[-1] in ("npy", "png", "json", "yaml", "blend") or text[:match.start()].endswith("card's "):
            continue
        paths.append(path)
    return paths


def _resolve(record, path: str):
    value = record
    for part in path.split("."):
        name, indexed = (part[:-3], True) if part.endswith("[i]") else (part, False)
        assert isinstance(value, dict) and name in value, f"{path}: no {name!r} in the sample's json"
        value = value[name][0] if indexed else value[name]
    return value


def test_every_json_path_in_the_card_exists(worker, blends):
    files, _ = blends
    cameras = {FlowTask: "cameras[i].camera_to_world", DepthTask: "camera.camera_to_world"}
    for cls, options in ((FlowTask, {}), (DepthTask, {"normals": True})):
        task = _task(worker, cls=cls, blend=files["blurred"], frames="1-2", allow_missing=True, **options)
        record = json.loads(json.dumps(_render_all(task)[0][1]["json"]))
        paths = [p for text in task.card()["conventions"].values() for p in _json_paths(text)]
        assert {"render.shutter", "render.compositor", cameras[cls]} <= set(paths), paths
        for path in paths:
            _resolve(record, path)


def test_cli_refuses_missing_data_with_exit_1(blends, tmp_path):
    files, folder = blends
    result = run_cli("render-flow", files["library"], "--out", tmp_path / "out", "--samples", "1", "--workers", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(folder / "library_lib.blend") in result.stderr and "--allow-missing" in result.stderr
