"""Ground-truth math and procedural scene sampling, without Blender."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pairgen.records import to_jsonable
from renderers import scene as scene_module
from renderers import truth


# ----------------------------------------------------------------------------- passes


def test_vector_pass_signs():
    v = np.zeros((2, 3, 4), np.float32)
    v[..., 0], v[..., 1], v[..., 2], v[..., 3] = 1.0, 2.0, 3.0, 4.0  # X, Y, Z, W (raster, y up)
    forward, backward = truth.flow_from_vector(v)
    assert forward.dtype == np.float32 and forward.shape == (2, 3, 2)
    np.testing.assert_array_equal(forward[0, 0], [-3.0, 4.0])  # (-Z, +W)
    np.testing.assert_array_equal(backward[0, 0], [1.0, -2.0])  # (+X, -Y)
    assert not np.signbit(truth.flow_from_vector(np.zeros((1, 1, 4)))[0]).any()  # no -0.0 bytes


def test_depth_background_and_ids():
    z = np.array([[1.5, 1e10], [np.inf, 3.0]], np.float32)
    np.testing.assert_array_equal(truth.depth_from_z(z), [[1.5, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(truth.instance_ids(np.array([[0.0, 2.0], [65535.0, 7.0]])), [[0, 2], [65535, 7]])
    assert truth.instance_ids(np.zeros((1, 1))).dtype == np.uint16


# ----------------------------------------------------------------------------- cameras


@pytest.mark.parametrize("fit,w,h,expect_f", [
    ("HORIZONTAL", 64, 48, 35 / 36 * 64),
    ("AUTO", 64, 48, 35 / 36 * 64),  # landscape: sensor width spans the width
    ("AUTO", 48, 64, 35 / 36 * 64),  # portrait: sensor width spans the height
    ("VERTICAL", 64, 48, 35 / 24 * 48),
])
def test_intrinsics_sensor_fit(fit, w, h, expect_f):
    K = truth.intrinsics(w, h, 35.0, 36.0, 24.0, fit)
    assert K[0, 0] == pytest.approx(expect_f, rel=1e-12) and K[1, 1] == pytest.approx(expect_f, rel=1e-12)
    assert (K[0, 2], K[1, 2]) == (w / 2, h / 2)


def test_intrinsics_shift_and_pixel_aspect():
    K = truth.intrinsics(100, 50, 50.0, 36.0, 24.0, "HORIZONTAL", shift_x=0.1, shift_y=0.2)
    # Blender shifts the view plane by shift * the fitted image side: the principal point moves the other way
    assert K[0, 2] == pytest.approx(50 - 10) and K[1, 2] == pytest.approx(25 + 20)
    K2 = truth.intrinsics(100, 50, 50.0, 36.0, 24.0, "HORIZONTAL", pixel_aspect_x=1.0, pixel_aspect_y=2.0)
    assert K2[1, 1] == pytest.approx(K2[0, 0] / 2)


def test_euler_roundtrip_and_look_at():
    rng = np.random.default_rng(1)
    for _ in range(20):
        e = rng.uniform(-1.4, 1.4, 3)
        np.testing.assert_allclose(truth.euler_to_matrix(truth.matrix_to_euler(truth.euler_to_matrix(e))), truth.euler_to_matrix(e), atol=1e-12)
    eye, target = np.array([1.0, 2.0, 0.5]), np.array([4.0, -1.0, 1.0])
    c2w = truth.blender_to_opencv(truth.pose_matrix(eye, truth.look_at_euler(eye, target)))
    K = truth.intrinsics(64, 64, 35.0)
    xy, z = truth.project(target, K, c2w)
    np.testing.assert_allclose(xy, [32.0, 32.0], atol=1e-9)  # straight ahead: principal point
    assert z == pytest.approx(np.linalg.norm(target - eye))
    above = target + np.array([0.0, 0.0, 1.0])
    assert truth.project(above, K, c2w)[0][1] < 32.0  # world up is image up (y down)


def test_unproject_project_roundtrip():
    rng = np.random.default_rng(2)
    depth = rng.uniform(1, 5, (6, 8))
    K = truth.intrinsics(8, 6, 30.0)
    c2w = truth.blender_to_opencv(truth.pose_matrix((1, 2, 3), (0.3, -0.2, 1.0)))
    xy, z = truth.project(truth.unproject(depth, K, c2w), K, c2w)
    x, y = truth.pixel_grid(6, 8)
    np.testing.assert_allclose(xy[..., 0], x, atol=1e-9)
    np.testing.assert_allclose(xy[..., 1], y, atol=1e-9)
    np.testing.assert_allclose(z, depth, rtol=1e-12)


def test_pure_rotation_flow_is_the_background_flow():
    """Under camera rotation only, flow does not depend on depth: reprojection == points at infinity."""
    rng = np.random.default_rng(3)
    depth = rng.uniform(1, 5, (12, 16))
    K = truth.intrinsics(16, 12, 30.0)
    c0 = truth.blender_to_opencv(truth.pose_matrix((0, 0, 0), (1.5, 0, 0.2)))
    c1 = truth.blender_to_opencv(truth.pose_matrix((0, 0, 0), (1.52, 0.01, 0.25)))
    np.testing.assert_allclose(truth.reprojection_flow(depth, K, c0, K, c1), truth.background_flow(depth.shape, K, c0, K, c1), atol=1e-4)
    flow_bg = truth.reprojection_flow(np.zeros_like(depth), K, c0, K, c1)  # depth 0: background rule
    np.testing.assert_allclose(flow_bg, truth.background_flow(depth.shape, K, c0, K, c1), atol=1e-4)


def test_rigid_motion_static_equals_reprojection_and_translation_closed_form():
    h, w = 10, 12
    K = truth.intrinsics(w, h, 35.0)
    depth = np.full((h, w), 4.0)
    seg = np.ones((h, w), np.uint16)
    c0 = truth.blender_to_opencv(truth.pose_matrix((0, 0, 0), (math.pi / 2, 0, 0)))  # looking along +y
    c1 = truth.blender_to_opencv(truth.pose_matrix((0.1, 0, 0), (math.pi / 2, 0, 0)))
    identity = {1: np.eye(4)}
    flow, z1 = truth.rigid_motion(depth, seg, K, c0, K, c1, identity, identity)
    np.testing.assert_allclose(flow, truth.reprojection_flow(depth, K, c0, K, c1), atol=1e-5)
    # camera moves 0.1 to the right at distance 4: everything moves left by f * 0.1 / 4
    np.testing.assert_allclose(flow[..., 0], -K[0, 0] * 0.1 / 4, rtol=1e-9)
    np.testing.assert_allclose(flow[..., 1], 0, atol=1e-9)
    np.testing.assert_allclose(z1, 4.0)
    unknown, _ = truth.rigid_motion(depth, seg, K, c0, K, c1, {}, {})
    assert np.isnan(unknown).all()  # ids without known rigid motion: no prediction


# ----------------------------------------------------------------------------- occlusion


def _square_scene(shift=5, size=(20, 30)):
    """A static background (id 1) and a square (id 2) moving right by ``shift`` px."""
    h, w = size
    seg0 = np.ones((h, w), np.uint16)
    seg1 = np.ones((h, w), np.uint16)
    seg0[5:12, 5:12] = 2
    seg1[5:12, 5 + shift:12 + shift] = 2
    fwd = np.zeros((h, w, 2), np.float32)
    bwd = np.zeros((h, w, 2), np.float32)
    fwd[seg0 == 2, 0] = shift
    bwd[seg1 == 2, 0] = -shift
    return seg0, seg1, fwd, bwd


def test_occlusion_moving_square():
    seg0, seg1, fwd, bwd = _square_scene()
    occ = truth.occlusion(fwd, bwd, seg0, seg1)
    expected = np.zeros_like(occ)
    expected[5:12, 12:17] = True  # background that the square covers in frame t+K; the square stays visible
    np.testing.assert_array_equal(occ, expected)


def test_occlusion_out_of_view_and_fb_inconsistency():
    h, w = 8, 10
    seg = np.ones((h, w), np.uint16)
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = 3.0  # everything moves right: the last 3 columns leave the image
    bwd = -fwd
    occ = truth.occlusion(fwd, bwd, seg, seg)
    assert occ[:, -3:].all() and not occ[:, :-3].any()
    bad_bwd = bwd.copy()
    bad_bwd[2, 5] = (4.0, 4.0)  # the point seen there came from elsewhere (self-occlusion)
    occ2 = truth.occlusion(fwd, bad_bwd, seg, seg)
    assert occ2[2, 2] and occ2.sum() == occ.sum() + 1


def test_occlusion_depth_test():
    h, w = 6, 6
    seg = np.ones((h, w), np.uint16)
    zero = np.zeros((h, w, 2), np.float32)
    depth1 = np.full((h, w), 2.0)
    pred = np.full((h, w), 2.0)
    pred[1, 1] = 3.0  # behind what frame t+K sees there
    pred[2, 2] = -1.0  # behind the camera
    pred[3, 3] = np.nan  # unknown: not judged by depth
    occ = truth.occlusion(zero, zero, seg, seg, depth1=depth1, depth_pred=pred)
    assert occ[1, 1] and occ[2, 2] and occ.sum() == 2


def test_keypoints_visibility():
    K = truth.intrinsics(32, 32, 35.0)
    c2w = np.eye(4)  # OpenCV camera at the origin looking along +z
    depth = np.full((32, 32), 5.0)
    points = {"front": [0.0, 0.0, 3.0], "behind_wall": [0.0, 0.0, 8.0], "outside": [100.0, 0.0, 3.0], "back": [0, 0, -2.0]}
    kp = truth.project_keypoints(points, K, c2w, depth)
    assert kp["front"]["visible"] and kp["front"]["in_view"]
    assert kp["front"]["xy"] == pytest.approx([16.0, 16.0])
    assert kp["behind_wall"]["in_view"] and not kp["behind_wall"]["visible"]
    assert not kp["outside"]["in_view"] and not kp["back"]["in_view"]
    json.dumps(kp)


# ----------------------------------------------------------------------------- scenes


def test_scene_sampling_is_deterministic_and_serialisable():
    a, used_a = scene_module.sample_scene(np.random.default_rng(7), 5, (64, 48), seed=7)
    b, used_b = scene_module.sample_scene(np.random.default_rng(7), 5, (64, 48), seed=7)
    assert a == b and used_a == used_b
    c, _ = scene_module.sample_scene(np.random.default_rng(8), 5, (64, 48))
    assert c != a
    text = json.dumps(to_jsonable(a.to_json()))
    assert scene_module.SceneSpec.from_json(json.loads(text)) == a
    assert all(0 <= m.photo < len(used_a) for o in a.objects for m in [o.material] if m.photo >= 0)


@pytest.mark.parametrize("seed", range(8))
def test_scene_objects_in_view_inside_room_away_from_camera(seed):
    cfg = scene_module.SceneConfig()
    spec, _ = scene_module.sample_scene(np.random.default_rng(seed), 3, (64, 64), frames=(1, 4), config=cfg)
    assert cfg.objects[0] <= len(spec.objects) <= cfg.objects[1]
    K = spec.camera_K()
    room_lo = np.array(spec.room.center) - np.array(spec.room.half_extent)
    room_hi = np.array(spec.room.center) + np.array(spec.room.half_extent)
    in_view = 0
    for frame in (1, 4):
        cam = np.array(spec.camera.motion.location_at(frame))
        assert np.all(cam > room_lo) and np.all(cam < room_hi)
    for obj in spec.objects:
        start = np.array(obj.motion.location_at(1))
        for frame in (1, 4):
            p = np.array(obj.motion.location_at(frame))
            assert np.all(p > room_lo) and np.all(p < room_hi)
        c2w = truth.blender_to_opencv(spec.camera.motion.matrix_at(1))
        xy, z = truth.project(start, K, c2w)
        in_view += bool(z > 0 and 0 <= xy[0] < 64 and 0 <= xy[1] < 64)
    assert in_view >= len(spec.objects) - 2  # placed in view (clipping to the room may push a few out)


def test_motion_is_linear_in_time():
    m = scene_module.Motion(location=(1.0, 2.0, 3.0), rotation=(0.1, 0.2, 0.3), velocity=(0.5, 0, -1),
                            angular_velocity=(0.01, 0, 0), origin=1.0)
    assert m.location_at(3) == (2.0, 2.0, 1.0)
    assert m.rotation_at(1.5) == pytest.approx((0.105, 0.2, 0.3))
    np.testing.assert_allclose(m.matrix_at(1)[:3, 3], (1, 2, 3))


def test_distance_from_depth_is_the_ray_length_to_the_camera_centre():
    K = truth.intrinsics(40, 30, 30.0, shift_x=0.1)
    c2w = truth.blender_to_opencv(truth.pose_matrix((1.0, -2.0, 0.5), (1.3, 0.2, -0.4)))
    depth = np.random.default_rng(0).uniform(0.5, 9.0, size=(30, 40))
    depth[3, 4] = 0.0  # no surface
    points = truth.unproject(depth, K, c2w)
    expected = np.linalg.norm(points - c2w[:3, 3], axis=-1)
    distance = truth.distance_from_depth(depth, K)
    assert distance.dtype == np.float32 and distance[3, 4] == 0
    np.testing.assert_allclose(distance, expected, rtol=1e-6)


def test_class_ids_map_instances_and_leave_unknown_at_zero():
    seg = np.array([[0, 1, 2], [3, 300, 2]], np.uint16)
    cls = truth.class_ids(seg, {1: 5, 2: 9, 300: 1000})
    assert cls.dtype == np.uint16 and cls.tolist() == [[0, 5, 9], [0, 1000, 9]]
