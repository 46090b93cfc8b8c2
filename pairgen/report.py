"""`pairgen inspect FOLDER --html DIR`: a static report a person opens from disk.

What DIR holds (all paths relative; the page reads its data through ``<script src>``, which
``file://`` allows, never through fetch(), which Chromium blocks there):

    index.html, assets/          the page, its CSS and JS (copied from pairgen/report_assets/)
    data/report.js               card summary, columns (fields and their views), legends, histograms
    data/pages/p000001.js        one page of samples: key, shard, tiles, drawn parameters, record
    data/columns/c0000.js        one drawn parameter over every sample (loaded when a filter needs it)
    img/p000001/KEY.jpg          the sample's thumbnails, one cell per field, side by side
    img/p000001/KEY.png          the same fields at full resolution, lossless, side by side
    legends/                     colour keys of the views in use (flow wheel, depth bar)
    report.json                  what the report was made from; a rerun keeps what still matches

Every picture goes through the field's view (``pairgen.preview.VIEWS``, named by the card), so a
new task gets its report with no code here. Samples stream shard by shard and page by page:
memory holds one sample's arrays and one page's records, whatever the dataset's size. A page's
data file is written last (atomically, fsynced) after its images: a rerun skips every page whose
data file names the same shard bytes, and does not open a shard whose pages are all done.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources

import cv2
import numpy as np

from . import __version__
from .api import read_card
from .encoding import encode_png
from .errors import UsageError
from .inspection import _collect_parameters, field_views, shard_paths
from .preview import DEPTH_PERCENTILES, UNKNOWN_FLOW_THRESHOLD, VIEWS, depth_to_color, field_to_rgb, guess_view
from .shards import iter_samples, stats_file, write_bytes_atomic

REPORT_FORMAT = 1  # bump when the files' layout changes: older reports are then regenerated
DEFAULT_PAGE_SIZE = 24
THUMB_BOX = 256  # thumbnail cell side in pixels; fields are fitted into it, so all show at one size
THUMB_JPEG_QUALITY = 90  # 4:4:4 chroma: coloured edges (flow, ids) stay crisp
HISTOGRAM_BINS = 30
MAX_CATEGORIES = 40  # a text parameter with more distinct values lumps the rest into "other"
MAX_LISTED_SKIPS = 500  # skipped inputs listed one by one in the report (all are counted)
MAX_PROBLEMS = 200
_LETTERBOX = (22, 23, 27)  # thumbnail cell background around a field of another aspect
_OVERLAY_OPACITY = 0.6
_MASK_TINT = (255, 45, 110)
_OWNED = ("index.html", "assets", "data", "img", "legends", "report.json")
_PAGE_HEADER = "// pairgen report page "


# ------------------------------------------------------------------------------------ per view
# What a tile says under it, and how a view overlays an image. Tables keyed by the card's view
# names, so any task's fields get them; a view not listed simply has no note or overlay.

def _flow_note(value) -> str:
    flow = np.asarray(value, dtype=np.float64)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    magnitude = magnitude[np.isfinite(magnitude) & (magnitude <= UNKNOWN_FLOW_THRESHOLD)]
    return f"max |flow| {magnitude.max():.3g} px" if magnitude.size else "no valid flow"


def _depth_note(value) -> str:
    depth = np.asarray(value, dtype=np.float64)
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if not valid.size:
        return "no surface"
    near, far = np.percentile(valid, DEPTH_PERCENTILES)
    missing = 1 - valid.size / depth.size
    return f"near {near:.3g} .. far {far:.3g}" + (f", {missing:.0%} no surface" if missing >= 0.005 else "")


def _fraction_note(value) -> str:
    mask = np.asarray(value)
    return f"{np.count_nonzero(mask) / max(mask.size, 1):.1%} set"


def _ids_note(value) -> str:
    ids = np.unique(np.asarray(value))
    return f"{np.count_nonzero(ids)} ids"


def _heatmap_note(value) -> str:
    maps = np.asarray(value)
    return f"{maps.shape[0] if maps.ndim == 3 else 1} maps"


NOTES = {"flow": _flow_note, "depth": _depth_note, "mask": _fraction_note, "occlusion": _fraction_note,
         "ids": _ids_note, "heatmap": _heatmap_note}

# view -> tint of its overlay over the sample's image (None: the view's own colours), alpha from
# the view's brightness: a mask shows where it is set, a heatmap where it is strong.
OVERLAYS = {"mask": _MASK_TINT, "occlusion": _MASK_TINT, "heatmap": None}


def _depth_bar() -> np.ndarray:
    """The depth view's colours from near (left, brightest) to far, as a 256 x 16 bar."""
    t = np.linspace(0.0, 1.0, 256)
    depth = 1.0 / (1.0 - 0.5 * t)  # inverse depth linear between near = 1 and far = 2
    return np.repeat(depth_to_color(depth[None, :], near=1.0, far=2.0), 16, axis=0)


# Colour keys for views whose VIEWS entry has no legend of its own.
EXTRA_LEGENDS = {"depth": (_depth_bar, "near (bright) to far (dark), over inverse depth; black: no surface")}


# ------------------------------------------------------------------------------------ result


@dataclass
class ReportResult:
    out: str
    index: str
    samples: int
    pages: int
    pages_written: int
    pages_reused: int
    shards_read: int
    problems: list = field(default_factory=list)
    note: str = ""

    def text(self) -> str:
        lines = [f"report: {self.index}",
                 f"  {self.samples} samples on {self.pages} pages: {self.pages_written} written, "
                 f"{self.pages_reused} kept from an earlier run; {self.shards_read} shards read"]
        if self.note:
            lines.append(f"  {self.note}")
        for problem in self.problems[:10]:
            lines.append(f"  problem: {problem}")
        if len(self.problems) > 10:
            lines.append(f"  ... {len(self.problems) - 10} more problems listed in the report")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Layout:
    """The gallery's columns (picture fields: inputs, targets, aux) and their views."""

    columns: tuple
    fields: tuple  # every field the card lists, records too: a sample without one is damaged
    views: dict
    page_size: int
    samples: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.samples / self.page_size))

    def page_of(self, index: int) -> int:
        return index // self.page_size + 1

    def page_range(self, page: int) -> range:
        return range((page - 1) * self.page_size, min(self.samples, page * self.page_size))


# ------------------------------------------------------------------------------------ entry point


def write_report(folder: str, out: str, page_size: int = DEFAULT_PAGE_SIZE, progress: bool = False) -> ReportResult:
    """Write (or bring up to date) the static report of shard folder FOLDER in OUT."""
    if page_size < 1:
        raise UsageError(f"--page-size must be at least 1, got {page_size}")
    card = read_card(folder)
    fields = card.get("fields", {})
    columns = tuple(n for role in ("input", "target", "aux") for n, f in fields.items() if f.get("role") == role)
    rows = card.get("shards", [])
    layout = _Layout(columns, tuple(fields), field_views(card), page_size, sum(int(r.get("samples", 0)) for r in rows))
    fingerprint = {"report_format": REPORT_FORMAT, "pairgen_version": __version__, "page_size": page_size,
                   "thumb_box": THUMB_BOX, "card_sha256": _sha256(json.dumps(card, sort_keys=True).encode())}
    note = _prepare_out(folder, out, fingerprint)

    shards, offset = [], 0
    for path, row in zip(shard_paths(folder, card), rows):
        shards.append((path, int(row.get("samples", 0)), offset, _shard_signature(folder, path)))
        offset += int(row.get("samples", 0))

    done = {p for p in range(1, layout.pages + 1) if _page_done(out, p, _page_sources(layout, shards, p))}
    written, shards_read = _write_pages(out, layout, shards, done, progress)
    params, problems, has_keypoints = _write_columns(out, layout)
    _write_site(out, folder, card, layout, params, problems, has_keypoints)
    write_bytes_atomic(os.path.join(out, "report.json"), (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode())
    return ReportResult(out, os.path.join(out, "index.html"), layout.samples, layout.pages, written,
                        layout.pages - written, shards_read, problems, note)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _prepare_out(folder: str, out: str, fingerprint: dict) -> str:
    """Refuse a folder that is not ours; start over where an earlier report was of other data."""
    manifest = os.path.join(out, "report.json")
    if os.path.abspath(out) == os.path.abspath(folder):
        raise UsageError(f"--html {out}: that is the dataset folder itself; give the report a folder of its own")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--html {out}: exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not os.path.exists(manifest):
        raise UsageError(f"--html {out}: the folder is not empty and holds no pairgen report; "
                         f"choose a new or empty folder (nothing in it was changed)")
    note = ""
    if os.path.exists(manifest):
        try:
            with open(manifest, encoding="utf-8") as handle:
                earlier = json.load(handle)
        except (OSError, ValueError):
            earlier = None
        if earlier != fingerprint:
            note = "the dataset or the report settings changed since the report in this folder was made: written anew"
            for name in _OWNED:
                path = os.path.join(out, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.unlink(path)
    for sub in ("data/pages", "data/columns", "img", "legends", "assets"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    return note


def _shard_signature(folder: str, path: str) -> list:
    """What a page made from this shard depends on: its name, size and stats file."""
    try:
        with open(os.path.join(folder, stats_file(os.path.basename(path))), "rb") as handle:
            stats = _sha256(handle.read())
    except OSError:
        stats = None
    return [os.path.basename(path), os.path.getsize(path), stats]


def _page_sources(layout: _Layout, shards: list, page: int) -> list:
    span = layout.page_range(page)
    return [sig for _, count, offset, sig in shards if count and offset < span.stop and offset + count > span.start]


# ------------------------------------------------------------------------------------ pages


def _page_file(out: str, page: int) -> str:
    return os.path.join(out, "data", "pages", f"p{page:06d}.js")


def _page_done(out: str, page: int, sources: list) -> bool:
    """A finished page made from these same shards (its first line says what it came from)."""
    try:
        with open(_page_file(out, page), encoding="utf-8") as handle:
            header = handle.readline()
    except OSError:
        return False
    if not header.startswith(_PAGE_HEADER):
        return False
    try:
        meta = json.loads(header[len(_PAGE_HEADER):].split(" ", 1)[1])
    except (IndexError, ValueError):
        return False
    return meta.get("sources") == sources and meta.get("complete") is True


def _read_page(out: str, page: int) -> dict:
    with open(_page_file(out, page), encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    return json.loads(lines[2])


def _write_page(out: str, page: int, entries: list, sources: list, problems: list) -> None:
    complete = not problems  # a page with a damaged shard is retried by the next run
    meta = json.dumps({"sources": sources, "complete": complete}, separators=(",", ":"))
    body = json.dumps({"page": page, "samples": entries, "problems": problems}, separators=(",", ":"))
    text = f"{_PAGE_HEADER}{page} {meta}\npairgenPage(\n{body}\n);\n"
    write_bytes_atomic(_page_file(out, page), text.encode("utf-8"))


def _write_pages(out: str, layout: _Layout, shards: list, done: set, progress: bool) -> tuple[int, int]:
    """Stream every shard that feeds an unfinished page; write each page once it is whole."""
    from tqdm import tqdm

    todo = sum(len(layout.page_range(p)) for p in range(1, layout.pages + 1) if p not in done)
    bar = tqdm(total=todo, unit="sample", desc="report", disable=not progress, dynamic_ncols=True)
    pending: dict[int, list] = defaultdict(list)
    page_problems: dict[int, list] = defaultdict(list)
    written = shards_read = 0

    def finish(index: int) -> None:
        nonlocal written
        page = layout.page_of(index)
        if index == layout.page_range(page).stop - 1:
            _write_page(out, page, pending.pop(page), _page_sources(layout, shards, page), page_problems.pop(page, []))
            written += 1

    for path, count, offset, _ in shards:
        pages = range(layout.page_of(offset), layout.page_of(offset + count - 1) + 1) if count else range(0)
        if all(p in done for p in pages):
            continue
        shards_read += 1
        name = os.path.basename(path)
        seen, broken = 0, False
        try:
            for key, sample in iter_samples(path):
                if seen >= count:
                    page_problems[layout.page_of(offset + count - 1)].append(
                        f"{name}: holds more samples than dataset.json lists ({count}); the rest are not shown")
                    break
                index = offset + seen
                seen += 1
                page = layout.page_of(index)
                if page in done:
                    continue
                absent = [f for f in layout.fields if f not in sample]
                if absent:
                    page_problems[page].append(f"{name} key {key}: lacks {', '.join(absent)}")
                try:
                    entry = _sample_entry(out, layout, index, key, name, sample)
                except (ValueError, OSError) as exc:
                    entry = {"i": index, "key": key, "shard": name, "missing": f"cannot show it: {exc}"}
                    page_problems[page].append(f"{name} key {key}: {exc}")
                pending[page].append(entry)
                bar.update()
                finish(index)
        except Exception as exc:  # noqa: BLE001 - a damaged shard of any kind is reported, not fatal
            reason = f"{name}: unreadable after {seen} of {count} samples ({type(exc).__name__}: {exc})"
            page_problems[layout.page_of(offset + min(seen, count - 1))].append(reason)
            broken = True
        if seen < count and not broken:
            page_problems[layout.page_of(offset + seen)].append(f"{name}: gave {seen} of the {count} samples dataset.json lists")
        for index in range(offset + seen, offset + count):  # samples the shard did not give
            page = layout.page_of(index)
            if page in done:
                continue
            if not page_problems[page]:  # the page is unfinished, whichever page the message went to
                page_problems[page].append(f"{name}: samples {offset + seen}..{offset + count - 1} are missing")
            pending[page].append({"i": index, "key": None, "shard": name, "missing": "not readable from its shard"})
            bar.update()
            finish(index)
    bar.close()
    return written, shards_read


# ------------------------------------------------------------------------------------ one sample


def _view_of(layout: _Layout, name: str, value) -> str | None:
    view = layout.views.get(name)
    if view:
        return view
    try:
        return guess_view(value)
    except ValueError:
        return None


def _sample_entry(out: str, layout: _Layout, index: int, key: str, shard: str, sample: dict) -> dict:
    """Write one sample's thumbnail strip and full-resolution strip; return its page entry."""
    record = sample.get("json") if isinstance(sample.get("json"), dict) else {}
    tiles, cells, pictures = [], [], {}
    for name in layout.columns:
        if name not in sample:
            tiles.append({"field": name, "absent": True})
            continue
        try:
            rgb = field_to_rgb(name, sample[name], layout.views.get(name))
        except ValueError as exc:
            tiles.append({"field": name, "error": str(exc)})
            continue
        if rgb is None:
            tiles.append({"field": name, "error": "not a picture"})
            continue
        view = _view_of(layout, name, sample[name])
        note_of = NOTES.get(view)
        h, w = rgb.shape[:2]
        tile = {"field": name, "view": view, "w": w, "h": h, "note": note_of(sample[name]) if note_of else ""}
        tile["cell"] = len(cells)
        cells.append(rgb)
        pictures[name] = (view, rgb)
        tiles.append(tile)

    for tile in tiles:  # overlays go after the plain cells, so cell numbers of fields stay put
        if tile.get("view") in OVERLAYS:
            base = _overlay_base(pictures, tile)
            if base is not None:
                tile["over"] = base
                tile["overlay_cell"] = len(cells)
                cells.append(_overlay(pictures[base][1], pictures[tile["field"]][1], OVERLAYS[tile["view"]]))

    page = layout.page_of(index)
    folder = os.path.join(out, "img", f"p{page:06d}")
    os.makedirs(folder, exist_ok=True)
    thumb, full, offsets = _strips(cells)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, THUMB_JPEG_QUALITY,
                             cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise OSError(f"could not encode the thumbnails of sample {key}")
    _write_atomic(os.path.join(folder, f"{key}.jpg"), jpeg.tobytes())
    _write_atomic(os.path.join(folder, f"{key}.png"), encode_png(full))
    cell_sizes = [(c.shape[1], c.shape[0]) for c in cells]
    for tile in tiles:
        for which in ("cell", "overlay_cell"):
            if which in tile:
                n = tile[which]
                tile[which] = {"n": n, "x": offsets[n], "w": cell_sizes[n][0], "h": cell_sizes[n][1]}

    keypoints = _keypoints_by_field(record, [t for t in tiles if t.get("view") == "rgb"])
    values = defaultdict(list)
    _collect_parameters(record, values)
    params = {}
    for name, found in values.items():
        for k, value in enumerate(found):
            params[name if k == 0 else f"{name} #{k + 1}"] = value
    return {"i": index, "key": key, "shard": shard, "thumb": f"img/p{page:06d}/{key}.jpg",
            "full": f"img/p{page:06d}/{key}.png", "size": [thumb.shape[1], full.shape[1], full.shape[0]],
            "tiles": tiles, "keypoints": keypoints, "params": params, "record": record}


def _overlay_base(pictures: dict, tile: dict) -> str | None:
    """The sample's first RGB field of the tile's aspect (inputs first): what a mask is laid on."""
    for name, (view, rgb) in pictures.items():
        h, w = rgb.shape[:2]
        if view == "rgb" and name != tile["field"] and abs(w / h - tile["w"] / tile["h"]) < 0.01:
            return name
    return None


def _overlay(base: np.ndarray, picture: np.ndarray, tint) -> np.ndarray:
    """picture laid over base (resized to it): its brightness is the overlay's opacity."""
    h, w = base.shape[:2]
    if picture.shape[:2] != (h, w):
        picture = cv2.resize(picture, (w, h), interpolation=cv2.INTER_NEAREST)
    alpha = picture.max(axis=2, keepdims=True).astype(np.float32) / 255.0 * _OVERLAY_OPACITY
    colour = np.asarray(tint, np.float32) if tint is not None else picture.astype(np.float32)
    return np.rint(base * (1 - alpha) + colour * alpha).astype(np.uint8)


def _fit_into(cell: np.ndarray, image: np.ndarray) -> None:
    """image fitted into the square ``cell`` and centred: nearest up (pixels stay visible blocks,
    an LR beside its HR shows at the HR's size), area down (no aliasing)."""
    box = cell.shape[0]
    h, w = image.shape[:2]
    scale = min(box / h, box / w)
    size = (min(box, max(1, round(w * scale))), min(box, max(1, round(h * scale))))
    if size != (w, h):
        image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
    if size != (box, box):
        cell[:] = _LETTERBOX
    y, x = (box - size[1]) // 2, (box - size[0]) // 2
    cell[y:y + size[1], x:x + size[0]] = image


def _strips(cells: list) -> tuple[np.ndarray, np.ndarray, list]:
    """(thumbnail strip of box-sized cells, full-resolution strip, x offset of each full cell)."""
    thumb = np.empty((THUMB_BOX, THUMB_BOX * max(1, len(cells)), 3), np.uint8)
    if not cells:
        thumb[:] = _LETTERBOX
        return thumb, thumb[:1, :1], []
    for k, cell in enumerate(cells):
        _fit_into(thumb[:, k * THUMB_BOX:(k + 1) * THUMB_BOX], cell)
    height = max(c.shape[0] for c in cells)
    offsets = np.cumsum([0] + [c.shape[1] for c in cells]).tolist()
    full = np.zeros((height, offsets[-1], 3), np.uint8)
    for cell, x in zip(cells, offsets):
        full[:cell.shape[0], x:x + cell.shape[1]] = cell
    return thumb, full, offsets[:-1]


def _write_atomic(path: str, data: bytes) -> None:
    """Readers (a browser open on a report being made) see the old file or the whole new one.
    Not fsynced: the page file that lists an image is, and is written after it."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------ keypoints


def _keypoint_sets(value, found: list) -> None:
    """Every "keypoints" entry of a record, depth first in key order: a list of [x, y, v] (COCO:
    v 0 unlabelled, 1 hidden, 2 visible; or a bool) or a mapping name -> {"xy", "visible"}."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == "keypoints":
                points = _points(inner)
                if points is not None:
                    found.append(points)
                    continue
            _keypoint_sets(inner, found)
    elif isinstance(value, list):
        for inner in value:
            if isinstance(inner, (dict, list)):
                _keypoint_sets(inner, found)


def _finite(*numbers) -> bool:
    return all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers)


def _points(value) -> list | None:
    points = []
    if isinstance(value, dict):
        for name, point in value.items():
            xy = point.get("xy") if isinstance(point, dict) else None
            if not (isinstance(xy, list) and len(xy) >= 2 and _finite(*xy[:2])):
                return None
            points.append([round(xy[0], 3), round(xy[1], 3), int(bool(point.get("visible", True))), str(name)])
        return points
    if isinstance(value, list):
        for k, point in enumerate(value):
            if not (isinstance(point, list) and len(point) >= 2 and _finite(*point[:2])):
                return None
            flag = point[2] if len(point) > 2 else 2
            if flag is False or flag is True:
                flag = 2 if flag else 1
            if flag == 0:  # COCO: not labelled, its position means nothing
                continue
            points.append([round(point[0], 3), round(point[1], 3), int(flag >= 2), str(k)])
        return points
    return None


def _keypoints_by_field(record: dict, rgb_tiles: list) -> dict:
    """The record's i-th keypoint set goes with the sample's i-th RGB field (frame t, frame t+K)."""
    sets: list = []
    _keypoint_sets(record, sets)
    return {tile["field"]: points for tile, points in zip(rgb_tiles, sets) if points}


# ------------------------------------------------------------------------------------ parameters


class _Spool:
    """One parameter's values over the dataset, appended page by page to a file of (index, value,
    is-text) rows, so memory holds one page of values whatever the dataset's size."""

    ROW = np.dtype([("index", "<i8"), ("value", "<f8"), ("text", "u1")])

    def __init__(self, path: str):
        self.path = path
        self.rows: list = []
        self.categories: dict[str, int] = {}

    def add(self, index: int, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.rows.append((index, float(value), 0))
        else:
            label = str(value)
            code = self.categories.setdefault(label, len(self.categories))
            self.rows.append((index, code, 1))

    def flush(self) -> None:
        if self.rows:
            with open(self.path, "ab") as handle:
                np.asarray(self.rows, dtype=self.ROW).tofile(handle)
            self.rows = []

    def load(self) -> np.ndarray:
        self.flush()
        return np.fromfile(self.path, dtype=self.ROW)


def _write_columns(out: str, layout: _Layout) -> tuple[list, list, bool]:
    """Read the pages back in order; write one column file and one histogram per parameter.
    -> (parameters with their histograms, problems, whether any sample has keypoints)."""
    work = os.path.join(out, "data", ".spool")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    spools: dict[str, _Spool] = {}
    problems: list = []
    has_keypoints = False
    try:
        for page in range(1, layout.pages + 1):
            data = _read_page(out, page)
            problems.extend(data.get("problems", []))
            for entry in data["samples"]:
                has_keypoints = has_keypoints or bool(entry.get("keypoints"))
                for name, value in entry.get("params", {}).items():
                    if name not in spools:
                        spools[name] = _Spool(os.path.join(work, f"{len(spools)}.bin"))
                    spools[name].add(entry["i"], value)
            for spool in spools.values():
                spool.flush()
        params = []
        for number, name in enumerate(sorted(spools)):
            params.append(_write_column(out, layout.samples, number, name, spools[name]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(problems) > MAX_PROBLEMS:
        problems = problems[:MAX_PROBLEMS] + [f"... and {len(problems) - MAX_PROBLEMS} more"]
    return params, problems, has_keypoints


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else format(value, ".6g")


def _code_text(code: int) -> str:
    return "null" if code < 0 else str(code)


def _value_text(value: float) -> str:
    return _number_text(value) if math.isfinite(value) else "null"


COLUMN_CHUNK = 8192  # values formatted at a time: a column file is streamed, never one big string


def _write_column(out: str, samples: int, number: int, name: str, spool: _Spool) -> dict:
    rows = spool.load()
    file = f"data/columns/c{number:04d}.js"
    info = {"name": name, "column": file, "index": number, "n": int(len(rows)), "missing": samples - int(len(rows))}
    if rows["text"].any():  # text (or a mix): categories; numbers among them count by their text
        labels = rows["value"].astype(np.int64)
        for k in np.flatnonzero(rows["text"] == 0):
            labels[k] = spool.categories.setdefault(_number_text(rows["value"][k]), len(spool.categories))
        names = sorted(spool.categories, key=spool.categories.get)
        counts = np.bincount(labels, minlength=len(names))
        ranked = sorted(range(len(names)), key=lambda c: (-counts[c], names[c]))
        kept = ranked[:MAX_CATEGORIES]
        new_code = np.full(len(names), len(kept), np.int64)  # beyond the kept ones: "(other)"
        new_code[kept] = np.arange(len(kept))
        categories, tallies = [names[c] for c in kept], [int(counts[c]) for c in kept]
        if len(ranked) > MAX_CATEGORIES:
            categories.append("(other)")
            tallies.append(int(counts[ranked[MAX_CATEGORIES:]].sum()))
        column = np.full(samples, -1, np.int64)
        column[rows["index"]] = new_code[labels]
        info.update(kind="text", categories=categories, counts=tallies)
        text_of = _code_text
    else:
        column = np.full(samples, np.nan)
        column[rows["index"]] = rows["value"]
        info.update(kind="number", **_histogram(rows["value"][np.isfinite(rows["value"])]))
        text_of = _value_text
    path = os.path.join(out, file)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(f"pairgenColumn({number},[")
        for start in range(0, samples, COLUMN_CHUNK):
            handle.write(("," if start else "") + ",".join(map(text_of, column[start:start + COLUMN_CHUNK].tolist())))
        handle.write("]);\n")
    os.replace(path + ".tmp", path)
    return info


def _histogram(values: np.ndarray) -> dict:
    """Bins for a numeric parameter: one per integer when few, log-spaced when it spans decades."""
    if not values.size:
        return {"edges": [], "counts": [], "log": False}
    low, high = float(values.min()), float(values.max())
    log = False
    if np.all(values == np.round(values)) and high - low < 2 * HISTOGRAM_BINS:
        edges = np.arange(low, high + 2) - 0.5
    elif low == high:
        edges = np.array([low - 0.5, high + 0.5])
    elif low > 0 and high / low > 100:
        edges, log = np.geomspace(low, high, HISTOGRAM_BINS + 1), True
    else:
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [float(format(e, ".6g")) for e in edges], "counts": counts.tolist(), "log": log,
            "min": low, "max": high, "mean": float(values.mean()), "median": float(np.median(values))}


# ------------------------------------------------------------------------------------ the site


def _write_site(out: str, folder: str, card: dict, layout: _Layout, params: list, problems: list,
                has_keypoints: bool) -> None:
    assets = resources.files("pairgen") / "report_assets"
    for name in ("report.css", "report.js"):
        _write_atomic(os.path.join(out, "assets", name), (assets / name).read_bytes())
    legends = _write_legends(out, {layout.views.get(n) for n in layout.columns} - {None})
    fields = card.get("fields", {})
    columns = [{"field": n, "role": fields[n].get("role"), "view": layout.views.get(n), "dtype": fields[n].get("dtype"),
                "shape": fields[n].get("shape"), "meaning": fields[n].get("meaning", "")} for n in layout.columns]
    summary = {k: v for k, v in card.items() if k not in ("shards", "fields", "skipped")}
    skipped = card.get("skipped", [])
    reasons: dict[str, int] = defaultdict(int)
    for skip in skipped:
        reasons[str(skip.get("reason", "")).split(":")[0]] += 1
    data = {
        "title": str(card.get("recipe_name", "?")),
        "dataset": os.path.abspath(folder),
        "pairgen_version": __version__,
        "samples": layout.samples, "pages": layout.pages, "page_size": layout.page_size, "box": THUMB_BOX,
        "columns": columns, "legends": legends, "has_keypoints": has_keypoints, "params": params, "problems": problems,
        "card": summary, "meta_fields": {n: f for n, f in fields.items() if f.get("role") == "meta"},
        "skipped": {"count": len(skipped), "by_reason": sorted(reasons.items(), key=lambda r: -r[1]),
                    "listed": skipped[:MAX_LISTED_SKIPS]},
        "shards": len(card.get("shards", [])),
    }
    text = "window.PAIRGEN_REPORT = " + json.dumps(data, separators=(",", ":")) + ";\n"
    _write_atomic(os.path.join(out, "data", "report.js"), text.encode("utf-8"))
    _write_atomic(os.path.join(out, "index.html"), (assets / "index.html").read_bytes())


def _write_legends(out: str, views: set) -> dict:
    legends = {}
    for view in sorted(views):
        spec = VIEWS.get(view)
        if spec is not None and spec.legend is not None:
            picture, caption = spec.legend(), spec.summary
        elif view in EXTRA_LEGENDS:
            make, caption = EXTRA_LEGENDS[view]
            picture = make()
        else:
            continue
        file = f"legends/{view}.png"
        _write_atomic(os.path.join(out, file), encode_png(picture))
        legends[view] = {"file": file, "caption": caption, "w": picture.shape[1], "h": picture.shape[0]}
    return legends


__all__ = ["write_report", "ReportResult", "DEFAULT_PAGE_SIZE", "NOTES", "OVERLAYS", "EXTRA_LEGENDS"]
