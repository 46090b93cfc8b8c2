"""Ground truth from rendered passes: plain numpy, no bpy (testable without Blender).

Conventions used everywhere in pairgen's rendered data:

* Image coordinates: x right, y down, in pixels; pixel (row i, column j) has its centre at
  (x, y) = (j + 0.5, i + 0.5); the image covers [0, W] x [0, H].
* Flow t -> t+K at frame t's pixel centres: (dx, dy) such that the surface point seen at p in
  frame t is at p + (dx, dy) in frame t+K.
* Depth: planar depth (camera-space z, distance along the optical axis) in scene units; 0 where
  no surface (world background).
* Cameras: ``K`` 3x3 in pixels; camera-to-world 4x4 in the OpenCV convention (x right, y down,
  z forward). Blender cameras look down -z with y up: ``c2w_cv = c2w_blender @ diag(1, -1, -1, 1)``.
* Blender's Vector pass (measured, see shared/notes/blender.md) holds, in raster pixels with y
  up: X, Y = position at t-1 minus position at t; Z, W = position at t minus position at t+1.
"""
from __future__ import annotations

import math

import numpy as np

# Depth at or above this is Blender's world background (the pass holds 1e10 there).
BACKGROUND_DEPTH = 1e9

BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# Rotations and poses (Blender's Euler 'XYZ' order: R = Rz @ Ry @ Rx)


def euler_to_matrix(euler) -> np.ndarray:
    """3x3 rotation of Blender's 'XYZ' Euler angles (radians): R = Rz(z) @ Ry(y) @ Rx(x)."""
    x, y, z = (float(a) for a in euler)
    cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def matrix_to_euler(rotation) -> tuple[float, float, float]:
    """Inverse of ``euler_to_matrix`` (angles in radians, y in [-pi/2, pi/2])."""
    r = np.asarray(rotation, dtype=np.float64)
    y = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    if abs(r[2, 0]) < 1 - 1e-12:
        x = math.atan2(r[2, 1], r[2, 2])
        z = math.atan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: put everything in x
        x = math.atan2(-r[1, 2], r[1, 1])
        z = 0.0
    return (x, y, z)


def pose_matrix(location, euler, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """4x4 object-to-world matrix of a Blender object: T @ R(euler) @ S."""
    m = np.eye(4)
    m[:3, :3] = euler_to_matrix(euler) @ np.diag([float(s) for s in scale])
    m[:3, 3] = [float(v) for v in location]
    return m


def look_at_euler(eye, target, roll: float = 0.0) -> tuple[float, float, float]:
    """Euler angles of a Blender camera at ``eye`` looking at ``target`` (world +z up), then
    rolled by ``roll`` radians about its optical axis."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    up_hint = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up_hint)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    # Blender camera axes: x = right, y = up, z = -forward.
    rot = np.stack([right, up, -forward], axis=1)
    c, s = math.cos(roll), math.sin(roll)
    rot = rot @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return matrix_to_euler(rot)


def blender_to_opencv(c2w_blender) -> np.ndarray:
    """Camera-to-world of a Blender camera (looks down -z, y up) in the OpenCV convention."""
    return np.asarray(c2w_blender, dtype=np.float64) @ BLENDER_TO_OPENCV


# ---------------------------------------------------------------------------------------------
# Intrinsics


def intrinsics(
    width: int,
    height: int,
    lens_mm: float,
    sensor_width_mm: float = 36.0,
    sensor_height_mm: float = 24.0,
    sensor_fit: str = "AUTO",
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    pixel_aspect_x: float = 1.0,
    pixel_aspect_y: float = 1.0,
) -> np.ndarray:
    """3x3 K in pixels of a Blender perspective camera rendering ``width`` x ``height`` pixels.

    Follows Blender's view-plane computation (BKE_camera_params_compute_viewplane): the sensor
    dimension chosen by ``sensor_fit`` spans the image width (HORIZONTAL) or height (VERTICAL);
    AUTO fits the sensor width to the larger image dimension; shift is in units of that span.
    """
    ycor = pixel_aspect_y / pixel_aspect_x
    fit = sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if pixel_aspect_x * width >= pixel_aspect_y * height else "VERTICAL"
        sensor = sensor_width_mm
    else:
        sensor = sensor_width_mm if fit == "HORIZONTAL" else sensor_height_mm
    viewfac = float(width) if fit == "HORIZONTAL" else ycor * float(height)
    fx = lens_mm * viewfac / sensor
    fy = fx / ycor
    cx = width / 2.0 - shift_x * viewfac
    cy = height / 2.0 + shift_y * viewfac / ycor
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y of every pixel centre, float64 arrays of shape (H, W)."""
    x, y = np.meshgrid(np.arange(width, dtype=np.float64) + 0.5, np.arange(height, dtype=np.float64) + 0.5)
    return x, y


# ---------------------------------------------------------------------------------------------
# Passes -> ground truth


def flow_from_vector(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split Blender's 4-channel Vector pass (H, W, 4; X, Y, Z, W) into image-convention flows.

    Returns (forward t -> t+1, backward t -> t-1), each float32 (H, W, 2) in pixels, x right,
    y down, at frame t's pixel centres: forward = (-Z, +W), backward = (+X, -Y).
    """
    v = np.asarray(vector, dtype=np.float32)
    forward = np.stack([-v[..., 2], v[..., 3]], axis=-1)
    backward = np.stack([v[..., 0], -v[..., 1]], axis=-1)
    return forward + 0.0, backward + 0.0  # + 0.0 turns -0.0 into 0.0 (stable bytes)


def depth_from_z(z: np.ndarray) -> np.ndarray:
    """Planar depth float32 (H, W) from the Depth pass, 0 where no surface (world background)."""
    z = np.asarray(z, dtype=np.float32)
    return np.where((z >= BACKGROUND_DEPTH) | ~np.isfinite(z), np.float32(0), z).astype(np.float32)


def instance_ids(object_index: np.ndarray) -> np.ndarray:
    """uint16 instance ids from the Object Index pass (object.pass_index; 0 = no object)."""
    ids = np.rint(np.asarray(object_index, dtype=np.float64))
    return np.clip(ids, 0, 65535).astype(np.uint16)


def class_ids(instance: np.ndarray, classes: dict[int, int]) -> np.ndarray:
    """uint16 class ids of an instance-id image: ``classes`` maps instance -> class; 0 and
    unlisted instances -> 0."""
    table = np.zeros(int(max([int(instance.max()) if instance.size else 0, *classes])) + 1, np.uint16)
    for oid, cid in classes.items():
        table[int(oid)] = int(cid)
    return table[instance]


def distance_from_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Euclidean distance from the camera centre float32 (H, W), scene units, along the ray
    through each pixel centre (j + 0.5, i + 0.5): depth * |K^-1 (x, y, 1)|; 0 where depth is 0."""
    h, w = depth.shape
    x, y = pixel_grid(h, w)
    K = np.asarray(K, dtype=np.float64)
    norm = np.sqrt(((x - K[0, 2]) / K[0, 0]) ** 2 + ((y - K[1, 2]) / K[1, 1]) ** 2 + 1.0)
    return (np.asarray(depth, dtype=np.float64) * norm).astype(np.float32)


def unproject(depth: np.ndarray, K: np.ndarray, c2w_cv: np.ndarray) -> np.ndarray:
    """World points (H, W, 3) float64 of every pixel centre at its planar depth."""
    h, w = depth.shape
    x, y = pixel_grid(h, w)
    z = depth.astype(np.float64)
    cam = np.stack([(x - K[0, 2]) / K[0, 0] * z, (y - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    return cam @ c2w_cv[:3, :3].T + c2w_cv[:3, 3]


def project(points_world: np.ndarray, K: np.ndarray, c2w_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (..., 3) with an OpenCV camera: returns (xy (..., 2) pixels, z (...))."""
    w2c = np.linalg.inv(c2w_cv)
    cam = points_world @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.stack([K[0, 0] * cam[..., 0] / z + K[0, 2], K[1, 1] * cam[..., 1] / z + K[1, 2]], axis=-1)
    return xy, z


def reprojection_flow(depth0, K0, c2w0, K1, c2w1) -> np.ndarray:
    """Flow t -> t+K of a static scene: frame t's depth reprojected into camera t+K.

    float32 (H, W, 2); pixels without a surface (depth 0) get the flow of points at infinity
    (``background_flow``)."""
    h, w = depth0.shape
    x, y = pixel_grid(h, w)
    xy1, _ = project(unproject(depth0, K0, c2w0), K1, c2w1)
    flow = np.stack([xy1[..., 0] - x, xy1[..., 1] - y], axis=-1)
    bg = depth0 <= 0
    if bg.any():
        flow[bg] = background_flow((h, w), K0, c2w0, K1, c2w1)[bg]
    return flow.astype(np.float32)


def background_flow(shape, K0, c2w0, K1, c2w1) -> np.ndarray:
    """Flow of points at infinity (the world background) from the camera motion alone.

    A direction d = R0 K0^-1 x is seen in frame t+K at K1 R1^T d (the camera translation does
    not move points at infinity). float64 (H, W, 2); NaN where the direction is behind camera t+K.
    """
    h, w = shape
    relative = np.asarray(c2w1)[:3, :3].T @ np.asarray(c2w0)[:3, :3]
    if np.array_equal(np.asarray(K0), np.asarray(K1)) and np.abs(relative - np.eye(3)).max() < 1e-12:
        return np.zeros((h, w, 2))  # no rotation: exactly no background motion
    x, y = pixel_grid(h, w)
    rays = np.stack([(x - K0[0, 2]) / K0[0, 0], (y - K0[1, 2]) / K0[1, 1], np.ones_like(x)], axis=-1)
    cam1 = rays @ relative.T  # R1^T R0 ray, row-vector form
    z = cam1[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x1 = K1[0, 0] * cam1[..., 0] / z + K1[0, 2]
        y1 = K1[1, 1] * cam1[..., 1] / z + K1[1, 2]
    flow = np.stack([x1 - x, y1 - y], axis=-1)
    flow[z <= 0] = np.nan
    return flow


def rigid_motion(depth0, seg0, K0, c2w0, K1, c2w1, object_to_world0: dict, object_to_world1: dict):
    """3D motion of frame t's visible points when every object moves rigidly.

    object_to_world0/1: {instance id: 4x4 world matrix at t and t+K} of the objects known to
    move rigidly (static geometry: equal matrices). Pixels of other ids (deforming objects) and
    pixels without a surface (depth0 == 0) are NaN.
    Returns (flow float64 (H, W, 2), depth at t+K float64 (H, W)).
    """
    h, w = depth0.shape
    x, y = pixel_grid(h, w)
    pts = unproject(depth0, K0, c2w0)
    moved = np.full_like(pts, np.nan)
    for oid in np.unique(seg0):
        if int(oid) not in object_to_world0 or int(oid) not in object_to_world1:
            continue
        m = np.asarray(object_to_world1[int(oid)]) @ np.linalg.inv(np.asarray(object_to_world0[int(oid)]))
        sel = seg0 == oid
        moved[sel] = pts[sel] @ m[:3, :3].T + m[:3, 3]
    xy1, z1 = project(moved, K1, c2w1)
    flow = np.stack([xy1[..., 0] - x, xy1[..., 1] - y], axis=-1)
    none = (depth0 <= 0) | ~np.isfinite(z1)
    flow[none] = np.nan
    z1 = np.where(none, np.nan, z1)
    return flow, z1


# ---------------------------------------------------------------------------------------------
# Occlusion


def occlusion(
    flow_fwd: np.ndarray,
    flow_bwd: np.ndarray,
    seg0: np.ndarray,
    seg1: np.ndarray,
    depth1: np.ndarray | None = None,
    depth_pred: np.ndarray | None = None,
    fb_tolerance: float = 0.5,
    fb_relative: float = 0.01,
    depth_tolerance: float = 1e-2,
    min_weight: float = 0.5,
) -> np.ndarray:
    """Pixels of frame t not visible in frame t+K: bool (H, W), True = occluded or out of view.

    With q = p + flow_fwd(p), a pixel p is occluded when any of these holds:

    1. out of view: q lies outside [0, W) x [0, H), or its flow is not finite;
    2. instance test: the 2x2 pixel centres of frame t+K around q that show p's instance id
       carry less than ``min_weight`` of the bilinear weight (q falls on another object's side
       of the silhouette: the discrete form of "another surface is seen at q");
    3. forward-backward consistency: with B the backward flow bilinearly interpolated at q over
       those same-id neighbours, |flow_fwd(p) + B| > fb_tolerance + fb_relative * |flow_fwd(p)|
       pixels (another part of the same object covers the point: self-occlusion);
    4. depth test (when ``depth_pred``, the point's predicted depth in camera t+K, is known, i.e.
       for rigidly moving objects): 1 / depth_pred < (1 - depth_tolerance) / depth1(q), with the
       inverse depth of frame t+K interpolated like B (inverse depth is affine on a plane, so the
       interpolation is exact on flat faces): the point is behind the surface seen there; or
       depth_pred <= 0 (behind the camera).
    """
    h, w = seg0.shape
    x, y = pixel_grid(h, w)
    qx = x + flow_fwd[..., 0]
    qy = y + flow_fwd[..., 1]
    finite = np.isfinite(qx) & np.isfinite(qy)
    qx = np.where(finite, qx, -1.0)
    qy = np.where(finite, qy, -1.0)
    occluded = ~finite | (qx < 0) | (qx >= w) | (qy < 0) | (qy >= h)

    # Bilinear neighbours in pixel-centre coordinates, clamped to the image.
    fx = qx - 0.5
    fy = qy - 0.5
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.floor(fy).astype(np.int64)
    ax = fx - x0
    ay = fy - y0
    weight_sum = np.zeros((h, w))
    bwd_sum = np.zeros((h, w, 2))
    inverse_depth_sum = np.zeros((h, w))
    for dy, dx, wgt in ((0, 0, (1 - ax) * (1 - ay)), (0, 1, ax * (1 - ay)), (1, 0, (1 - ax) * ay), (1, 1, ax * ay)):
        xi = np.clip(x0 + dx, 0, w - 1)
        yi = np.clip(y0 + dy, 0, h - 1)
        same = seg1[yi, xi] == seg0
        wgt = np.where(same, wgt, 0.0)
        weight_sum += wgt
        bwd_sum += wgt[..., None] * flow_bwd[yi, xi]
        if depth1 is not None:
            d = depth1[yi, xi]
            inverse_depth_sum += wgt * np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
    no_match = ~(weight_sum >= min_weight)
    occluded |= no_match
    safe = np.where(weight_sum > 0, weight_sum, 1.0)
    bwd = bwd_sum / safe[..., None]
    fb_error = np.linalg.norm(flow_fwd + bwd, axis=-1)
    fb_limit = fb_tolerance + fb_relative * np.linalg.norm(flow_fwd, axis=-1)
    occluded |= ~no_match & ~(fb_error <= fb_limit)
    if depth_pred is not None and depth1 is not None:
        seen_inverse = inverse_depth_sum / safe
        known = np.isfinite(depth_pred)
        with np.errstate(divide="ignore", invalid="ignore"):
            pred_inverse = np.where(known & (depth_pred > 0), 1.0 / depth_pred, 0.0)
        behind = known & ((depth_pred <= 0) | ((seen_inverse > 0) & (pred_inverse < seen_inverse * (1 - depth_tolerance))))
        occluded |= ~no_match & behind
    return occluded


# ---------------------------------------------------------------------------------------------
# Keypoints


def project_keypoints(points: dict, K, c2w_cv, depth, tolerance: float = 1e-2) -> dict:
    """Project named 3D points (world coordinates) into a frame.

    Returns {name: {"xy": [x, y] pixels (image convention), "z": planar depth, "in_view": bool,
    "visible": bool}}. visible: in view, in front of the camera and not behind the rendered
    surfaces around it: z <= (1 + tolerance) * the largest depth of the 3x3 pixels around its
    pixel (world background counts as infinitely far). The neighbourhood keeps points on an
    object's silhouette (cube corners) visible although the pixel centre nearest to them may
    see a surface slightly in front.
    """
    h, w = depth.shape
    out = {}
    for name in sorted(points):
        p = np.asarray(points[name], dtype=np.float64)
        xy, z = project(p[None], K, c2w_cv)
        px, py, z = float(xy[0, 0]), float(xy[0, 1]), float(z[0])
        in_view = z > 0 and 0 <= px < w and 0 <= py < h
        visible = False
        if in_view:
            i, j = int(py), int(px)
            patch = depth[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            visible = bool((patch <= 0).any()) or z <= float(patch.max()) * (1 + tolerance)
        out[name] = {
            "xy": [px if math.isfinite(px) else None, py if math.isfinite(py) else None],
            "z": z,
            "in_view": bool(in_view),
            "visible": bool(visible),
        }
    return out
