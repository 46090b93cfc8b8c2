"""Real Blender renders at tiny resolutions: closed-form flow and depth, self-consistency,
safety of opening a user's .blend, clear errors, determinism, the worker's crash handling and
the flow/depth task contracts.

Every render goes through one render worker process at a time (the module's ``worker``
fixture; tasks borrow it), so the tests never run two Blender processes at once.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from pairgen import encoding
from pairgen.errors import PairgenError
from pairgen.tasks.depth import DepthTask
from pairgen.tasks.flow import FlowTask, pair_fields
from renderers import truth
from renderers.scene import CameraSpec, LightSpec, MaterialSpec, Motion, ObjectSpec, RoomSpec, SceneSpec
from renderers.worker import RenderFailed, RenderWorker

W, H = 48, 36
LOOK_Y = (math.pi / 2, 0.0, 0.0)  # a Blender camera with this rotation looks along +y, z up


@pytest.fixture(scope="module")
def worker():
    w = RenderWorker(recycle_every=1000, retries=1, timeout=300)
    yield w
    w.close()


def _spec(objects, camera_motion, room=None, frames=(1, 5), resolution=(W, H), lens=35.0):
    return SceneSpec(seed=0, resolution=resolution, frame_start=frames[0], frame_end=frames[1],
                     camera=CameraSpec(motion=camera_motion, lens_mm=lens), objects=tuple(objects),
                     lights=(LightSpec("POINT", (0.0, 1.0, 3.0), energy=300.0),), room=room)


def _render(worker, spec, times, step=1, rgb=False, **kw):
    frames = [{"time": t, "settings": {"samples": 1, "denoise": False, "seed": 0, "threads": 1}, "rgb": rgb} for t in times]
    out = worker.call("render", source={"spec": spec}, frames=frames, step=step, **kw)
    return {t: f for t, f in zip(times, out)}


# ----------------------------------------------------------------------------- analytic ray casting

def _local_hit(shape, origin, direction):
    """Ray parameter of the first hit with a unit shape in local coordinates (inf = miss)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if shape == "plane":
            t = -origin[..., 2] / direction[..., 2]
            p = origin + t[..., None] * direction
            hit = (t > 0) & (np.abs(p[..., 0]) <= 1) & (np.abs(p[..., 1]) <= 1)
            return np.where(hit, t, np.inf)
        t1 = (-1 - origin) / direction
        t2 = (1 - origin) / direction
        near = np.max(np.minimum(t1, t2), axis=-1)
        far = np.min(np.maximum(t1, t2), axis=-1)
        if shape == "cube":
            return np.where((near <= far) & (near > 0), near, np.inf)
        if shape == "room":  # seen from inside: the exit point
            return np.where((near <= far) & (far > 0), far, np.inf)
    raise ValueError(shape)


def _objects_at(spec, time):
    items = [(i + 2, o.shape, o.motion.matrix_at(time)) for i, o in enumerate(spec.objects)]
    if spec.room is not None:
        m = np.eye(4)
        m[:3, :3] = np.diag(spec.room.half_extent)
        m[:3, 3] = spec.room.center
        items.append((1, "room", m))
    return items


def _cast(spec, time, xy):
    """(planar depth, id, object-local point) of rays through image points xy (..., 2) at time."""
    K = spec.camera_K()
    c2w = truth.blender_to_opencv(spec.camera.motion.matrix_at(time))
    d_cam = np.stack([(xy[..., 0] - K[0, 2]) / K[0, 0], (xy[..., 1] - K[1, 2]) / K[1, 1], np.ones(xy.shape[:-1])], -1)
    d = d_cam @ c2w[:3, :3].T  # the ray parameter is the planar depth (camera z of d_cam is 1)
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    best = np.full(xy.shape[:-1], np.inf)
    ids = np.zeros(xy.shape[:-1], np.int64)
    local = np.zeros(d.shape)
    for oid, shape, m in _objects_at(spec, time):
        inv = np.linalg.inv(m)
        o_l = o @ inv[:3, :3].T + inv[:3, 3]
        d_l = d @ inv[:3, :3].T
        t = _local_hit(shape, o_l, d_l)
        closer = t < best
        best = np.where(closer, t, best)
        ids = np.where(closer, oid, ids)
        local = np.where(closer[..., None], o_l + np.where(np.isfinite(t), t, 0)[..., None] * d_l, local)
    return np.where(np.isfinite(best), best, 0.0), ids, local


def _analytic(spec, t0, t1):
    """Closed-form depth, ids and flow t0 -> t1 at frame t0's pixel centres."""
    x, y = truth.pixel_grid(spec.resolution[1], spec.resolution[0])
    depth, ids, local = _cast(spec, t0, np.stack([x, y], -1))
    moved = np.zeros_like(local)
    for oid, _, m in _objects_at(spec, t1):
        sel = ids == oid
        moved[sel] = local[sel] @ m[:3, :3].T + m[:3, 3]
    K = spec.camera_K()
    xy1, z1 = truth.project(moved, K, truth.blender_to_opencv(spec.camera.motion.matrix_at(t1)))
    flow = np.stack([xy1[..., 0] - x, xy1[..., 1] - y], -1)
    flow[ids == 0] = truth.background_flow(depth.shape, K, truth.blender_to_opencv(spec.camera.motion.matrix_at(t0)),
                                           K, truth.blender_to_opencv(spec.camera.motion.matrix_at(t1)))[ids == 0]
    return depth, ids, flow, xy1, z1


def _interior(ids):
    """Pixels whose 3x3 neighbourhood has one id (edges are where a pixel centre may fall on
    either side of a silhouette by float rounding)."""
    pad = np.pad(ids, 1, mode="edge")
    same = np.ones(ids.shape, bool)
    for dy in range(3):
        for dx in range(3):
            same &= pad[dy:dy + ids.shape[0], dx:dx + ids.shape[1]] == ids
    return same


def _check_frame_pair(spec, f0, f1, t0, t1):
    depth, ids, flow, _, _ = _analytic(spec, t0, t1)
    assert (f0["seg"] == ids).mean() > 0.995
    inner = _interior(ids) & (f0["seg"] == ids)
    surface = inner & (ids > 0)
    rel = np.abs(f0["depth"] - depth)[surface] / depth[surface]
    assert rel.max() < 1e-4, f"depth relative error {rel.max():.2e}"
    fields, _ = pair_fields(f0, f1)
    epe = np.linalg.norm(fields["flow.npy"] - flow, axis=-1)[inner]
    assert epe.mean() < 0.01 and np.percentile(epe, 99) < 0.05, f"EPE mean {epe.mean():.4f} p99 {np.percentile(epe, 99):.4f}"
    # backward flow at frame t1's pixels against the closed form t1 -> t0
    _, ids1, back, _, _ = _analytic(spec, t1, t0)
    inner1 = _interior(ids1) & (f1["seg"] == ids1)
    epe_b = np.linalg.norm(fields["flow_bwd.npy"] - back, axis=-1)[inner1]
    assert epe_b.mean() < 0.01, f"backward EPE mean {epe_b.mean():.4f}"
    np.testing.assert_array_equal(f0["K"], spec.camera_K())  # K exact
    return fields, inner


MOVING = [  # a tilted plane and a box, both translating and rotating (flows of ~1-6 px at 48 px)
    ObjectSpec("wall", "plane", Motion((0.3, 6.0, 0.2), (math.pi / 2 + 0.3, 0.2, 0.1), (0.15, -0.3, 0.08), (0.04, 0.0, 0.05),
                                       scale=(2.5, 2.0, 1.0)), MaterialSpec()),
    ObjectSpec("box", "cube", Motion((-0.7, 4.0, -0.3), (0.4, 0.3, 0.8), (0.2, 0.1, 0.06), (0.15, 0.25, 0.0),
                                     scale=(0.4, 0.5, 0.3)), MaterialSpec(color=(0.8, 0.1, 0.1))),
]


def test_moving_plane_and_cube_closed_form(worker):
    spec = _spec(MOVING, Motion((0.0, 0.0, 0.0), LOOK_Y))
    frames = _render(worker, spec, [1.0, 2.0])
    fields, _ = _check_frame_pair(spec, frames[1.0], frames[2.0], 1.0, 2.0)
    background = frames[1.0]["seg"] == 0
    assert background.any() and not fields["flow.npy"][background].any()  # static camera: background does not move
    assert (fields["depth0.npy"][background] == 0).all()


def test_step_k_with_time_remapping_closed_form(worker):
    spec = _spec(MOVING, Motion((0.0, 0.0, 0.0), LOOK_Y, (0.02, 0.01, 0.0), (0.0, 0.0, 0.01)))
    frames = _render(worker, spec, [2.0, 4.0], step=2)  # t/K integer
    _check_frame_pair(spec, frames[2.0], frames[4.0], 2.0, 4.0)
    frames = _render(worker, spec, [1.0, 4.0], step=3)  # t/K = 1/3: a subframe
    _check_frame_pair(spec, frames[1.0], frames[4.0], 1.0, 4.0)


ROOM = RoomSpec(center=(0.0, 3.0, 0.5), half_extent=(4.0, 6.0, 3.0), materials=(MaterialSpec(),) * 6)
STATIC = [
    ObjectSpec("box", "cube", Motion((0.8, 4.0, 0.0), (0.3, 0.5, 0.2), scale=(0.5, 0.5, 0.5)), MaterialSpec()),
    ObjectSpec("panel", "plane", Motion((-1.0, 5.0, 0.5), (1.2, 0.0, 0.4)), MaterialSpec()),
]


def test_camera_translation_and_rotation_closed_form_and_self_consistency(worker):
    spec = _spec(STATIC, Motion((0.0, 0.0, 0.0), LOOK_Y, (0.06, 0.1, 0.03), (0.01, 0.006, 0.02)), room=ROOM)
    frames = _render(worker, spec, [1.0, 2.0])
    fields, inner = _check_frame_pair(spec, frames[1.0], frames[2.0], 1.0, 2.0)
    assert (frames[1.0]["seg"] > 0).all()  # closed room: every pixel hits a surface
    # static scene: reprojecting frame t's rendered depth with K and the two poses gives the flow
    f0, f1 = frames[1.0], frames[2.0]
    reprojected = truth.reprojection_flow(f0["depth"], f0["K"], f0["c2w"], f1["K"], f1["c2w"])
    visible = inner & (fields["occ.png"] == 0)
    epe = np.linalg.norm(reprojected - fields["flow.npy"], axis=-1)[visible]
    assert epe.mean() < 0.01, f"self-consistency EPE {epe.mean():.4f}"
    # the rendered poses are the scene's
    np.testing.assert_allclose(f0["c2w"], truth.blender_to_opencv(spec.camera.motion.matrix_at(1.0)), atol=1e-5)


def test_camera_rotation_background_flow(worker):
    """World background: the Vector pass is 0 there; the sample gets the rotation's flow."""
    objects = [ObjectSpec("panel", "plane", Motion((0.0, 6.0, 0.0), (math.pi / 2, 0.0, 0.0), scale=(1.0, 1.0, 1.0)), MaterialSpec())]
    spec = _spec(objects, Motion((0.0, 0.0, 0.0), LOOK_Y, angular_velocity=(0.01, 0.0, 0.03)))
    frames = _render(worker, spec, [1.0, 2.0])
    fields, _ = _check_frame_pair(spec, frames[1.0], frames[2.0], 1.0, 2.0)
    background = frames[1.0]["seg"] == 0
    assert background.mean() > 0.3 and np.abs(fields["flow.npy"][background]).max() > 1.0


def test_occlusion_matches_closed_form(worker):
    spec = _spec(MOVING, Motion((0.0, 0.0, 0.0), LOOK_Y, (0.1, 0.0, 0.0)), room=ROOM)
    frames = _render(worker, spec, [1.0, 3.0], step=2)
    fields, _ = pair_fields(frames[1.0], frames[3.0])
    _, ids, _, xy1, z1 = _analytic(spec, 1.0, 3.0)
    depth_seen, ids_seen, _ = _cast(spec, 3.0, xy1)
    inside = (xy1[..., 0] >= 0) & (xy1[..., 0] < W) & (xy1[..., 1] >= 0) & (xy1[..., 1] < H)
    visible = inside & (ids_seen == ids) & (np.abs(depth_seen - z1) <= 1e-6 * np.maximum(z1, 1))
    occ = fields["occ.png"] == 255
    assert occ.any() and (~occ).any()
    agreement = (occ == ~visible)[_interior(ids)].mean()
    assert agreement > 0.99, f"occlusion agrees with the closed form on {agreement:.3f} of interior pixels"


def test_keypoints_visibility(worker):
    cube = ObjectSpec("box", "cube", Motion((0.0, 4.0, 0.0), (0.0, 0.0, 0.0), scale=(0.5, 0.5, 0.5)), MaterialSpec())
    spec = _spec([cube], Motion((0.0, 0.0, 0.0), LOOK_Y))
    frame = _render(worker, spec, [1.0])[1.0]
    kp = truth.project_keypoints(frame["keypoints"], frame["K"], frame["c2w"], frame["depth"])
    assert len(kp) == 8
    for name, point in kp.items():
        local = dict(cube.keypoints)[name.rsplit("_", 1)[1]]
        front = local[1] < 0  # local -y faces the camera
        assert point["in_view"] and point["visible"] == front, (name, point)


# ----------------------------------------------------------------------------- user files

MAKE_BLEND = """
import bmesh, math
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 4
scene.render.resolution_x, scene.render.resolution_y = 40, 30
if with_camera:
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
mesh = bpy.data.meshes.new("box")
bm = bmesh.new(); bmesh.ops.create_cube(bm, size=1.0); bm.to_mesh(mesh); bm.free()
box = bpy.data.objects.new("box", mesh)
scene.collection.objects.link(box)
for frame, x in ((1, 0.0), (4, 0.3)):
    box.location = (x, 5.0, 0.0)
    box.keyframe_insert("location", frame=frame)
anim = box.animation_data
for curve in anim.action.layers[0].strips[0].channelbag(anim.action_slot).fcurves:
    for key in curve.keyframe_points:
        key.interpolation = "LINEAR"
empty = bpy.data.objects.new("kp_corner", None)
scene.collection.objects.link(empty)
empty.location = (0.5, 4.5, 0.5)
if marker:
    text = bpy.data.texts.new("evil.py")
    text.write("open(%r, 'w').write('text block ran')\\n" % marker)
    text.use_module = True  # "Register": runs on load when auto-run is allowed
    driver = box.driver_add("scale", 2).driver
    driver.type = "SCRIPTED"
    driver.expression = "__import__('pathlib').Path(%r).touch() or 1.0" % (marker + ".driver")
bpy.ops.wm.save_as_mainfile(filepath=path)
result = path
"""

TRUSTED_OPEN = """
bpy.ops.wm.open_mainfile(filepath=path, use_scripts=True)
bpy.context.evaluated_depsgraph_get().update()
result = True
"""


@pytest.fixture(scope="module")
def blend_files(worker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("blends")
    marker = str(folder / "MARKER")
    files = {
        "plain": worker.call("script", code=MAKE_BLEND, path=str(folder / "plain.blend"), with_camera=True, marker=""),
        "nocam": worker.call("script", code=MAKE_BLEND, path=str(folder / "nocam.blend"), with_camera=False, marker=""),
        "evil": worker.call("script", code=MAKE_BLEND, path=str(folder / "evil.blend"), with_camera=True, marker=marker),
    }
    worker.close()  # a fresh Blender for what follows
    assert not os.path.exists(marker) and not os.path.exists(marker + ".driver")
    return files, marker


def test_user_blend_is_opened_without_running_its_python(worker, blend_files):
    files, marker = blend_files
    task = FlowTask(blend=files["evil"], frames="1-2", samples=1, threads=1)
    task._worker = worker
    items, _ = task.plan()
    samples = task.make(items[0], np.random.default_rng(0))
    assert len(samples) == 1
    assert not os.path.exists(marker), "a registered text block ran when opening a user's .blend"
    assert not os.path.exists(marker + ".driver"), "a scripted driver ran when opening a user's .blend"
    # Control: the same file opened as trusted does leave the markers, so the check above has teeth.
    worker.call("script", code=TRUSTED_OPEN, path=files["evil"])
    worker.close()
    assert os.path.exists(marker) and os.path.exists(marker + ".driver")


def test_user_blend_flow_pairs_and_step(worker, blend_files):
    files, _ = blend_files
    task = FlowTask(blend=files["plain"], samples=1, threads=1, chunk=2)
    task._worker = worker
    items, skipped = task.plan()
    assert task.frames == (1, 4) and task.resolution == (40, 30) and not skipped
    assert [i.payload["times"] for i in items] == [[1.0, 2.0], [3.0]]
    samples = [s for item in items for s in task.make(item, np.random.default_rng(0))]
    assert [k for k, _ in samples] == ["000000000", "000000001", "000000002"]
    key, fields = samples[0]
    record = fields["json"]
    assert record["frames"] == [1, 2] and record["objects"] == {"1": "box"}
    # the box moves 0.1 units per frame to the right at distance 5 (its front face at 4.5)
    f = record["K"][0][0]
    inner = _interior(fields["seg0.png"].astype(np.int64)) & (fields["seg0.png"] == 1)
    np.testing.assert_allclose(fields["flow.npy"][inner][:, 0], f * 0.1 / 4.5, rtol=1e-3)
    assert record["cameras"][0]["keypoints"]["kp_corner"]["visible"]
    task2 = FlowTask(blend=files["plain"], step=3, samples=1, threads=1)
    task2._worker = worker
    items2, _ = task2.plan()
    (key2, fields2), = task2.make(items2[0], np.random.default_rng(0))
    assert fields2["json"]["frames"] == [1, 4]
    inner = _interior(fields2["seg0.png"].astype(np.int64)) & (fields2["seg0.png"] == 1)
    np.testing.assert_allclose(fields2["flow.npy"][inner][:, 0], f * 0.3 / 4.5, rtol=1e-3)


def test_user_file_errors(worker, blend_files, tmp_path):
    files, _ = blend_files
    garbage = tmp_path / "garbage.blend"
    garbage.write_bytes(b"BLENDER-v500" + bytes(range(256)) * 40)
    text = tmp_path / "notes.blend"
    text.write_text("this is not a blend file\n")
    truncated = tmp_path / "truncated.blend"
    truncated.write_bytes(open(files["plain"], "rb").read()[:2000])
    cases = [
        (str(tmp_path / "missing.blend"), {}, "no such file"),
        (str(text), {}, "not a .blend"),
        (str(garbage), {}, "blend"),
        (str(truncated), {}, "blend"),
        (files["nocam"], {}, "no active camera"),
        (files["plain"], {"frames": "0-3"}, "outside the scene's frame range 1-4"),
        (files["plain"], {"frames": "2-9"}, "outside the scene's frame range 1-4"),
        (files["plain"], {"frames": "1-3", "step": 3}, "no pair"),
    ]
    for path, options, message in cases:
        task = FlowTask(blend=path, threads=1, retries=0, **options)
        task._worker = worker
        with pytest.raises(PairgenError, match=message):
            task.plan()


# ----------------------------------------------------------------------------- tasks, determinism, crashes

def _encoded(samples):
    return [(key, {name: encoding.encode(name, value) for name, value in fields.items()}) for key, fields in samples]


def test_procedural_flow_contract_and_determinism(worker):
    def run():
        task = FlowTask(scenes=2, resolution=(32, 32), samples=1, seed=3, threads=1)
        task._worker = worker
        items, _ = task.plan()
        return task, items, task.make(items[1], np.random.default_rng(11))

    task, items, samples = run()
    assert [i.key for i in items] == ["000000000", "000000001"]
    (key, fields), = samples
    assert key == "000000001"
    specs = task.fields()
    assert set(fields) == set(specs)
    assert {n for n, s in specs.items() if s.role == "input"} == {"img0.png", "img1.png"}
    assert specs["flow.npy"].role == "target" and specs["json"].role == "meta"
    assert fields["img0.png"].dtype == np.uint8 and fields["img0.png"].shape == (32, 32, 3)
    assert fields["flow.npy"].dtype == np.float32 and fields["flow.npy"].shape == (32, 32, 2)
    assert fields["seg0.png"].dtype == np.uint16 and fields["occ.png"].dtype == np.uint8
    assert set(np.unique(fields["occ.png"])) <= {0, 255}
    assert (fields["depth0.npy"] > 0).all()  # closed room
    record = fields["json"]
    assert record["scene"]["scene_seed"] >= 0 and record["objects"]["1"] == "room"
    assert np.array(record["cameras"][1]["camera_to_world"]).shape == (4, 4)
    worker.close()  # the second run starts from a fresh Blender process
    _, _, again = run()
    assert _encoded(samples) == _encoded(again), "same seed, different bytes"


_MESH_DUMP = """
import hashlib
import numpy as np
from renderers import blender
result = {}
for shape in shapes:
    mesh = blender._make_mesh("probe_" + shape, shape, 7)
    mesh.shade_smooth()
    parts = []
    for items, attr, dtype, width in ((mesh.vertices, "co", np.float32, 3), (mesh.loops, "vertex_index", np.int32, 1),
                                      (mesh.polygons, "loop_start", np.int32, 1), (mesh.vertex_normals, "vector", np.float32, 3),
                                      (mesh.corner_normals, "vector", np.float32, 3), (mesh.uv_layers.active.data, "uv", np.float32, 2)):
        values = np.empty(len(items) * width, dtype)
        items.foreach_get(attr, values)
        parts.append(hashlib.sha256(values.tobytes()).hexdigest())
    result[shape] = parts
"""


def test_procedural_meshes_are_identical_in_every_process():
    """Vertex, face and corner order, normals (bits) and UVs of every procedural shape are the
    same in fresh Blender processes: bmesh's UV sphere alone used to come out with its faces in
    a per-process order, so its vertex normals differed in the last bits, and so did the
    denoised RGB at times (see blender._canonical_order)."""
    from renderers.scene import SHAPES

    runs = []
    for _ in range(3):
        w = RenderWorker(retries=0, timeout=120)
        try:
            runs.append(w.call("script", code=_MESH_DUMP, shapes=[*SHAPES, "plane"]))
        finally:
            w.close()
    for shape in runs[0]:
        assert runs[0][shape] == runs[1][shape] == runs[2][shape], f"{shape}: mesh differs between processes"


def test_depth_task_with_normals(worker):
    task = DepthTask(scenes=1, resolution=(32, 24), samples=1, threads=1, normals=True)
    task._worker = worker
    items, _ = task.plan()
    (key, fields), = task.make(items[0], np.random.default_rng(0))
    assert set(fields) == set(task.fields()) == {"rgb.png", "depth.npy", "seg.png", "cls.png", "normal.npy", "json"}
    n = fields["normal.npy"]
    assert n.shape == (24, 32, 3) and np.allclose(np.linalg.norm(n, axis=-1), 1, atol=1e-3)
    assert (n[..., 2] < 0.05).mean() > 0.95  # surfaces seen face the camera (OpenCV z forward)


def test_worker_crash_is_retried_and_reported():
    w = RenderWorker(retries=1, timeout=120)
    try:
        with pytest.raises(RenderFailed, match="2 attempts"):
            w.call("crash")
        assert len(w.events) == 2 and all("crashed" in e for e in w.events)
        assert w.call("script", code="result = 41 + 1") == 42  # a fresh process after the crashes
        assert w.started == 3
    finally:
        w.close()


def test_flow_shard_reads_back_with_webdataset(worker, tmp_path):
    """The build machinery writes a flow sample; webdataset reads every field back."""
    import webdataset as wds

    from pairgen.executors import ShardSpec, process_shard

    task = FlowTask(scenes=1, resolution=(32, 24), samples=1, threads=1)
    task._worker = worker
    items, _ = task.plan()
    stats = process_shard(ShardSpec(0, "flow-000000.tar", str(tmp_path), "wds", 0, task, items))
    assert stats["samples"] == 1
    (sample,) = list(wds.WebDataset(str(tmp_path / "flow-000000.tar"), shardshuffle=False).decode())
    assert sample["__key__"] == "000000000"
    assert sample["flow.npy"].shape == (24, 32, 2) and sample["flow.npy"].dtype == np.float32
    import cv2

    seg = cv2.imdecode(np.frombuffer(sample["seg0.png"], np.uint8), cv2.IMREAD_UNCHANGED)  # PNGs stay bytes
    assert seg.dtype == np.uint16 and seg.shape == (24, 32) and seg.min() >= 1
    assert sample["json"]["frames"] == [1, 2] and len(sample["json"]["K"]) == 3
    assert set(k for k in sample if not k.startswith("__")) == set(task.fields())
