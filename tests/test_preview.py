"""Tests for pairgen.preview: each checks what a user would see in the PNG."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pairgen import preview
from pairgen.preview import (
    contact_sheet,
    depth_to_color,
    field_to_rgb,
    flow_to_color,
    flow_wheel_legend,
    gray_to_rgb,
    mask_to_color,
    parameter_histograms,
    segmentation_to_color,
)


def _flow_color(dx: float, dy: float, max_magnitude: float | None = None) -> tuple[int, ...]:
    flow = np.array([[[dx, dy]]], dtype=np.float32)
    return tuple(int(c) for c in flow_to_color(flow, max_magnitude)[0, 0])


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


# --- flow ---------------------------------------------------------------------------------------


def test_flow_wheel_is_the_published_55_colour_wheel():
    wheel = preview._FLOW_WHEEL
    assert wheel.shape == (55, 3)
    # Segment starts: red, yellow, green, cyan, blue, magenta (15, 6, 4, 11, 13, 6 entries).
    starts = {0: (255, 0, 0), 15: (255, 255, 0), 21: (0, 255, 0), 25: (0, 255, 255), 36: (0, 0, 255), 49: (255, 0, 255)}
    for index, rgb in starts.items():
        assert tuple(wheel[index]) == rgb


@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        # Values of the published computeColor at full saturation, y down as in image rows.
        (1.0, 0.0, (255, 0, 0)),  # right: red
        (0.0, 1.0, (255, 229, 0)),  # down: yellow
        (-1.0, 0.0, (0, 209, 255)),  # left: cyan-blue
        (0.0, -1.0, (88, 0, 255)),  # up: blue-violet
    ],
)
def test_flow_axis_directions_match_middlebury_wheel(dx, dy, expected):
    assert _flow_color(5 * dx, 5 * dy, max_magnitude=5.0) == expected


def test_flow_axis_hue_families_in_a_real_field():
    # One field with four pixels: the default max_magnitude is the largest (all equal here).
    flow = np.array([[[3, 0], [0, 3]], [[-3, 0], [0, -3]]], dtype=np.float32)
    rgb = flow_to_color(flow).astype(int)
    right, down, left, up = rgb[0, 0], rgb[0, 1], rgb[1, 0], rgb[1, 1]
    assert right[0] == 255 and right[1] < 40 and right[2] < 60  # red
    assert down[0] == 255 and down[1] > 200 and down[2] < 40  # yellow
    assert left[0] < 40 and left[1] > 150 and left[2] == 255  # cyan / blue
    assert up[2] == 255 and up[1] < 40 and up[0] < up[2]  # blue-violet


def test_zero_flow_is_white_and_invalid_is_black():
    flow = np.zeros((3, 4, 2), dtype=np.float32)
    flow[0, 0] = (np.nan, 0)
    flow[0, 1] = (0, np.inf)
    flow[0, 2] = (2e9, 0)
    flow[1, 1] = (2, 2)
    before = flow.copy()
    rgb = flow_to_color(flow)
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 4, 3)
    np.testing.assert_array_equal(flow, before)  # input untouched
    assert (rgb[0, :3] == 0).all()
    assert (rgb[2] == 255).all()  # zero flow: white
    # The unknown-flow marker does not count toward the default max: (2, 2) is fully saturated.
    assert rgb[1, 1].min() == 0


def test_all_zero_flow_is_white():
    assert (flow_to_color(np.zeros((2, 2, 2), np.float32)) == 255).all()


def test_flow_saturation_grows_with_magnitude():
    flow = np.zeros((1, 5, 2), dtype=np.float32)
    flow[0, :, 0] = [0, 1, 2, 3, 4]
    rgb = flow_to_color(flow, max_magnitude=4).astype(int)
    green = rgb[0, :, 1]  # +x is red: green and blue fall from 255 to 0
    assert list(green) == sorted(green, reverse=True) and green[0] == 255 and green[-1] == 0
    # Beyond max_magnitude: same hue at 75 %.
    assert _flow_color(8, 0, max_magnitude=4) == (191, 0, 0)


def test_flow_to_color_rejects_wrong_shape():
    with pytest.raises(ValueError, match="H, W, 2"):
        flow_to_color(np.zeros((4, 4, 3), np.float32))


def test_flow_wheel_legend():
    legend = flow_wheel_legend(64)
    assert legend.shape == (64, 64, 3) and legend.dtype == np.uint8
    assert legend[32, 32].min() >= 245  # centre (half a pixel off zero flow): near-white
    right, left = legend[32, 62].astype(int), legend[32, 1].astype(int)
    down, up = legend[62, 32].astype(int), legend[1, 32].astype(int)
    assert right[0] > 200 and right[1] < 60  # red
    assert down[0] > 200 and down[1] > 180 and down[2] < 60  # yellow
    assert left[0] < 60 and left[2] > 200  # cyan-blue
    assert up[2] > 200 and up[1] < 60  # blue-violet


# --- depth --------------------------------------------------------------------------------------


def test_depth_no_surface_is_its_own_colour_and_nearer_is_brighter():
    depth = np.linspace(1.0, 20.0, 64, dtype=np.float32).reshape(1, 64)
    depth = np.concatenate([depth, np.zeros_like(depth)], axis=0)
    depth[1, 5] = np.nan
    rgb = depth_to_color(depth)
    assert rgb.shape == (2, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[1] == preview.NO_SURFACE_COLOR).all()  # no surface: teal, not a shade of magma
    assert not (np.abs(preview._MAGMA.astype(int) - preview.NO_SURFACE_COLOR).sum(axis=1) < 60).any()
    luma = _luma(rgb[0])
    # Farther is never brighter (0.5: 8-bit rounding of OpenCV's magma table wobbles by 0.06).
    assert np.all(np.diff(luma) <= 0.5)
    assert luma[0] > luma[-1] + 100
    assert luma[-1] > 10  # the farthest surface is not mistaken for "no surface"


def test_depth_magma_lut_is_monotonic_in_lightness():
    luma = _luma(preview._MAGMA)
    assert np.all(np.diff(luma) >= -0.5)


def test_depth_explicit_range_clips():
    depth = np.array([[0.5, 1.0, 10.0, 100.0]], dtype=np.float64)
    rgb = depth_to_color(depth, near=1.0, far=10.0)
    np.testing.assert_array_equal(rgb[0, 0], rgb[0, 1])  # nearer than near: clipped
    np.testing.assert_array_equal(rgb[0, 2], rgb[0, 3])  # farther than far: clipped
    assert _luma(rgb[0, 1]) > _luma(rgb[0, 2])


def test_depth_robust_range_ignores_far_outliers():
    depth = np.tile(np.linspace(1.0, 2.0, 100), (10, 1))
    depth[0, 0] = 1e10  # a sliver of sky
    rgb = depth_to_color(depth)
    luma = _luma(rgb[5])
    assert luma[0] - luma[-1] > 100  # the real range still spans the colormap


def test_depth_all_invalid_is_no_surface():
    assert (depth_to_color(np.zeros((3, 3))) == preview.NO_SURFACE_COLOR).all()


def test_flow_and_depth_tiles_carry_their_scale_and_keys_are_in_the_sheet():
    flow = np.zeros((4, 4, 2), np.float32)
    flow[1, 2] = (3.0, 4.0)
    flow[0, 0] = (np.nan, 0.0)
    assert preview.field_caption(flow, "flow") == "max 5 px"
    depth = np.tile(np.linspace(1.0, 3.0, 101), (2, 1))
    assert preview.field_caption(depth, "depth") == "1.04 - 2.96"  # the 2nd-98th percentile colour range
    assert preview.field_caption(np.zeros((2, 2)), "depth") == "no surface"
    assert preview.field_caption(depth, "rgb") is None
    rows = [[preview.field_to_rgb("f", flow, "flow")]]
    plain = contact_sheet(rows, ["flow"], None, cell=32)
    keyed = contact_sheet(rows, ["flow"], None, cell=32, captions=[["max 5 px"]],
                          legends=[("key", preview.VIEWS["flow"].legend()), ("depth", preview.depth_colorbar())])
    assert keyed.shape[0] > plain.shape[0] + 32 and keyed.shape[1] >= plain.shape[1]
    wheel = preview._fit_to_cell(preview.VIEWS["flow"].legend(), 32)
    found = [(y, x) for y in range(keyed.shape[0] - 31) for x in range(keyed.shape[1] - 31)
             if np.array_equal(keyed[y:y + 32, x:x + 32], wheel)]
    assert found and found[0][0] > plain.shape[0]  # the wheel is drawn under the grid


# --- segmentation, masks, gray --------------------------------------------------------------


def test_segmentation_palette_deterministic_and_distinct():
    ids = np.arange(65, dtype=np.uint16).reshape(5, 13)
    rgb = segmentation_to_color(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 13, 3)
    colors = rgb.reshape(-1, 3).astype(float)
    assert (colors[0] == 0).all()  # background
    palette = colors[1:]
    distances = np.sqrt(((palette[:, None] - palette[None]) ** 2).sum(-1))
    distances[np.eye(64, dtype=bool)] = np.inf
    assert distances.min() >= 15  # 64 ids, 64 visibly different colors
    assert palette.max(axis=1).min() >= 150  # none reads as background black


def test_segmentation_same_id_same_color_across_images():
    a = segmentation_to_color(np.array([[7, 300]], dtype=np.uint16))
    b = segmentation_to_color(np.array([[300], [5], [7]], dtype=np.uint16))
    np.testing.assert_array_equal(a[0, 0], b[2, 0])
    np.testing.assert_array_equal(a[0, 1], b[0, 0])


def test_segmentation_same_across_processes():
    # Nothing salted (hash()) or seeded by a global RNG: a fresh interpreter agrees.
    code = (
        "import numpy as np; from pairgen.preview import segmentation_to_color;"
        "print(segmentation_to_color(np.array([[1, 2, 65535]], np.uint16)).tolist())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = segmentation_to_color(np.array([[1, 2, 65535]], np.uint16)).tolist()
    assert result.stdout.strip() == str(here)


def test_mask_and_gray_helpers():
    mask = np.array([[0, 1], [1, 0]], dtype=bool)
    np.testing.assert_array_equal(mask_to_color(mask)[..., 0], [[0, 255], [255, 0]])
    np.testing.assert_array_equal(mask_to_color(mask.astype(np.uint8) * 255, color=(255, 0, 0))[0, 1], [255, 0, 0])
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    rgb = gray_to_rgb(gray)
    assert rgb.shape == (1, 3, 3) and (rgb == gray[..., None]).all()
    np.testing.assert_array_equal(gray_to_rgb(np.array([[0.0, 0.5, 2.0]]))[0, :, 0], [0, 128, 255])


# --- field_to_rgb ---------------------------------------------------------------------------


def test_field_to_rgb_follows_the_view_not_the_name():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(field_to_rgb("hr.png", rgb, "rgb"), rgb)
    gray = np.full((8, 8), 77, np.uint8)
    assert (field_to_rgb("lr.png", gray, "gray") == 77).all()
    ids = np.array([[0, 3]], dtype=np.uint16)
    np.testing.assert_array_equal(field_to_rgb("anything.png", ids, "ids"), segmentation_to_color(ids))
    flow = np.ones((4, 4, 2), np.float32)
    np.testing.assert_array_equal(field_to_rgb("motion.npy", flow, "flow"), flow_to_color(flow))
    depth = np.linspace(1, 5, 16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(field_to_rgb("z.npy", depth, "depth"), depth_to_color(depth))
    # A uint16 depth (millimetres) is depth, not instance ids, because its card says so.
    depth_mm = (depth * 1000).astype(np.uint16)
    np.testing.assert_array_equal(field_to_rgb("depth.png", depth_mm, "depth"), depth_to_color(depth_mm))
    np.testing.assert_array_equal(field_to_rgb("depth.png", depth_mm, "ids"), segmentation_to_color(depth_mm))
    occ = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(field_to_rgb("occ.png", occ, "occlusion"), [[[0, 0, 0], [255, 255, 255]]])
    assert field_to_rgb("meta.json", {"ops": []}) is None
    assert field_to_rgb("meta.json", b"{}") is None
    assert field_to_rgb("__key__", "sample-000001") is None
    with pytest.raises(ValueError, match="x.npy.*unknown view 'sparkle'"):
        field_to_rgb("x.npy", depth, "sparkle")


def test_views_guessed_from_the_array_when_the_card_has_none():
    assert preview.guess_view(np.zeros((4, 4, 3), np.uint8)) == "rgb"
    assert preview.guess_view(np.zeros((4, 4, 2), np.float32)) == "flow"
    assert preview.guess_view(np.zeros((4, 4), np.uint16)) == "ids"
    assert preview.guess_view(np.zeros((4, 4), np.uint8)) == "gray"
    assert preview.guess_view(np.zeros((4, 4), np.float32)) == "depth"
    assert preview.guess_view(np.zeros((4, 4), bool)) == "mask"
    float_rgb = np.full((2, 2, 3), 0.5, np.float32)
    assert (field_to_rgb("hr.npy", float_rgb) == 128).all()


def test_every_view_shows_its_kind_of_array():
    """Each view of the table turns a typical field into an (H, W, 3) uint8 picture."""
    examples = {
        "rgb": np.zeros((6, 5, 3), np.uint8), "gray": np.zeros((6, 5), np.uint8),
        "flow": np.ones((6, 5, 2), np.float32), "depth": np.ones((6, 5), np.float32),
        "ids": np.arange(30, dtype=np.uint16).reshape(6, 5), "mask": np.zeros((6, 5), np.uint8),
        "occlusion": np.zeros((6, 5), np.uint8), "heatmap": np.zeros((17, 6, 5), np.float32),
        "normals": np.zeros((6, 5, 3), np.float32), "ab": np.zeros((6, 5, 2), np.float32),
        "hole": np.zeros((6, 5), np.uint8),
        "classes": np.full((6, 5), 255, np.uint8), "boundary": np.zeros((6, 5), np.uint8),
    }
    assert set(examples) == set(preview.VIEWS)
    for view, value in examples.items():
        picture = field_to_rgb(f"x.{view}", value, view)
        assert picture.dtype == np.uint8 and picture.shape == (6, 5, 3), view


def test_heatmap_normals_and_chroma_views():
    heat = np.zeros((2, 4, 4), np.float32)
    heat[0, 1, 1] = 1.0
    heat[1, 2, 3] = 0.5
    picture = preview.heatmaps_to_color(heat)
    assert picture[0, 0].tolist() == [0, 0, 0]
    colors = preview._id_colors(np.array([1, 2]))
    assert picture[1, 1].tolist() == colors[0].tolist()
    assert picture[2, 3].tolist() == np.rint(colors[1] * 0.5).astype(int).tolist()
    normals = np.zeros((1, 3, 3), np.float32)
    normals[0, 0] = (0, 0, -1)  # facing the camera (OpenCV frame)
    normals[0, 1] = (1, 0, 0)
    np.testing.assert_array_equal(preview.normals_to_color(normals)[0], [[128, 128, 0], [255, 128, 128], [0, 0, 0]])
    ab = np.array([[[0, 0], [60, 0], [0, 60]]], np.float32)  # neutral, red-magenta, yellow
    picture = preview.ab_to_color(ab).astype(int)
    assert abs(picture[0, 0, 0] - picture[0, 0, 2]) <= 1  # neutral is gray
    assert picture[0, 1, 0] > picture[0, 1, 1] + 60  # +a*: red over green
    assert picture[0, 2, 0] > picture[0, 2, 2] + 60 and picture[0, 2, 1] > picture[0, 2, 2] + 60  # +b*: yellow


def test_field_to_rgb_decodes_png_bytes_in_rgb_order():
    import io

    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    buffer = io.BytesIO()
    Image.fromarray(red).save(buffer, format="PNG")
    np.testing.assert_array_equal(field_to_rgb("hr.png", buffer.getvalue()), red)


def test_field_to_rgb_names_the_field_it_cannot_show():
    with pytest.raises(ValueError, match="weird.npy"):
        field_to_rgb("weird.npy", np.zeros((4, 4, 5), np.float32))
    with pytest.raises(ValueError, match="weird.npy"):
        field_to_rgb("weird.npy", np.zeros((4, 4, 5), np.float32), "flow")


# --- contact sheet --------------------------------------------------------------------------


def _cell_origin(row: int, column: int, cell: int) -> tuple[int, int]:
    gap, header = preview._SHEET_GAP, preview._SHEET_HEADER
    return header + row * (cell + gap), gap + column * (cell + gap)


def test_contact_sheet_dimensions_and_nearest_upsampling(tmp_path):
    rng = np.random.default_rng(1)
    hr = rng.integers(100, 256, (64, 64, 3), dtype=np.uint8)
    lr = rng.integers(100, 256, (16, 16, 3), dtype=np.uint8)
    cell = 64
    rows = [[lr, hr], [lr, hr], [lr, hr]]
    path = tmp_path / "sheet.png"
    sheet = contact_sheet(rows, ["lr", "hr"], path, cell=cell)
    gap, header = preview._SHEET_GAP, preview._SHEET_HEADER
    assert sheet.dtype == np.uint8
    assert sheet.shape == (header + 3 * (cell + gap), gap + 2 * (cell + gap), 3)

    top, left = _cell_origin(1, 0, cell)
    shown_lr = sheet[top:top + cell, left:left + cell]
    # Nearest: every LR pixel is a clean 4x4 block of its own color (no blending).
    np.testing.assert_array_equal(shown_lr, np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))
    top, left = _cell_origin(2, 1, cell)
    np.testing.assert_array_equal(sheet[top:top + cell, left:left + cell], hr)  # same size: as is

    on_disk = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(on_disk, sheet)  # RGB order on disk


def test_contact_sheet_downsamples_with_area_and_keeps_aspect(tmp_path):
    # A 1-pixel checkerboard, 4x wider than tall: area averaging gives flat gray, not aliasing.
    board = ((np.indices((32, 128)).sum(0) % 2) * 255).astype(np.uint8)
    sheet = contact_sheet([[board]], ["wide"], None, cell=32, row_labels=["sample 0"])
    gap, header = preview._SHEET_GAP, preview._SHEET_HEADER
    left = sheet.shape[1] - gap - 32
    cell = sheet[header:header + 32, left:left + 32]
    shown = cell[12:20]  # 32x8 image centred vertically in the cell
    assert np.abs(shown.astype(int) - 128).max() <= 1
    np.testing.assert_array_equal(cell[:12], 32)  # background above and below: aspect kept
    np.testing.assert_array_equal(cell[20:], 32)
    assert sheet.shape[1] > gap + 32 + gap  # a band for the row labels


def test_contact_sheet_missing_cells_and_bad_input(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    sheet = contact_sheet([[image, None], [image]], ["a", "b"], None, cell=16)
    top, left = _cell_origin(1, 1, 16)
    assert (sheet[top:top + 16, left:left + 16] == preview._EMPTY_CELL).all()
    with pytest.raises(ValueError, match="row 0, column 0"):
        contact_sheet([[np.zeros((8, 8, 2), np.float32)]], ["flow"], None, cell=16)
    with pytest.raises(ValueError, match="column labels"):
        contact_sheet([[image, image]], ["a"], None, cell=16)


# --- histograms -----------------------------------------------------------------------------


def test_parameter_histograms_writes_a_png(tmp_path):
    values = {
        "blur.sigma_x": [0.2, 1.5, 3.0, 2.2, None],
        "jpeg.quality": [30, 95, 60, 60],
        "resize.mode": ["area", "bilinear", "bicubic", "area"],
        "noise.gray": [True, False, True],
        "empty": [],
    }
    path = tmp_path / "params" / "hist.png"
    parameter_histograms(values, path, title="x4 superres")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 150


def test_parameter_histograms_empty(tmp_path):
    path = tmp_path / "none.png"
    parameter_histograms({}, path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert np.asarray(image.convert("L")).min() < 128  # the "no parameters" text is drawn


def test_importing_preview_does_not_import_matplotlib():
    code = "import sys, pairgen.preview; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
