"""Fit a recipe's sampling settings to a user's real images (`pairgen calibrate`).

1. Measure every real image (``pairgen.estimators``; superres recipes: JPEG quality, noise,
   blur of low-quality photos; colorize recipes: tone, tint, grain, fading of old prints);
   images of the other kind are skipped with a reason. Split them in two halves by name order:
   one to fit on, one held out for the report.
2. Make a small batch of outputs through the recipe's own step pipeline (the task's
   ``make_crop``) for each candidate setting, on fixed clean crops with fixed generators
   (common random numbers: candidates differ only by their settings, not by luck).
3. Score of a candidate: per fitted statistic the 1-D Wasserstein distance between its
   outputs' and the real fit half's statistics (on the circle for hue), relative to the default
   recipe's distance; the worst ratio plus the mean ratio, so no statistic is traded away.
4. Coordinate search over a grid of values per "knob" (a setting shared by the recipe's steps of
   one kind, e.g. every JPEG step's quality range, a toner's weight), deterministic, for a few
   passes.
5. Write the recipe YAML with the fitted settings and a comment block saying what it was fitted
   on; report per statistic the real, default and calibrated distributions on fresh outputs
   against the held-out half (PNG histograms and JSON).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import yaml

from . import estimators
from .errors import PairgenError, UsageError
from .recipes import Recipe, load_recipe
from .ops.film import TONERS
from .sources import DecodeError, display_path, list_sources, load_rgb, read_bytes

MIN_REAL_IMAGES = 8  # 4 to fit on, 4 held out: fewer give no distribution to match
MAX_SIDE = 512  # superres statistics are measured on the central 512x512 (on the 8x8 grid): same statistics, bounded time


# ----------------------------------------------------------------------------- real images


@dataclass(frozen=True)
class RealSet:
    """paths and statistics of the usable real images (name order), what was skipped and why,
    and notes on mixed kinds (JPEG and not)."""

    paths: list
    statistics: list
    skipped: list
    notes: list


def central_crop(image: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """The central side x side window of an image (whole when smaller), its corner on the 8x8
    JPEG grid so that compression blocks stay aligned."""
    h, w = image.shape[:2]
    y0 = max(0, (h - side) // 2) // 8 * 8
    x0 = max(0, (w - side) // 2) // 8 * 8
    return np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])


def _is_gray(image: np.ndarray) -> bool:
    """R, G and B equal within 2 levels at 99% of (every 4th) pixels: a gray image saved as RGB."""
    small = image[::4, ::4].astype(np.int16)
    return bool(np.percentile(small.max(axis=2) - small.min(axis=2), 99) <= 2)


@dataclass(frozen=True)
class Measured:
    """One real image measured: its statistics, or why it was skipped."""

    path: str
    statistics: object  # the family's statistics; None when skipped
    reason: str | None  # why it was skipped
    gray: bool = False  # R = G = B (within 2 levels)
    other_kind: bool = False  # skipped as not the kind the recipe is fitted on


def _measure_one(job) -> Measured:
    """One real image; a worker's unit."""
    task, ref = job
    family = FAMILIES[task]
    try:
        data = read_bytes(ref)
        image = load_rgb(ref)
    except DecodeError as exc:
        return Measured(display_path(ref), None, str(exc))
    if min(image.shape[:2]) < 16:
        return Measured(display_path(ref), None, f"too small to measure: {image.shape[1]}x{image.shape[0]} px (16 px needed)")
    stat = family.measure(image, data)
    problem = family.kind_problem(image, stat)
    return Measured(display_path(ref), None if problem else stat, problem, _is_gray(image), problem is not None)


def measure_real(folder: str, family: "Family" = None, workers: int = 1) -> RealSet:
    """Statistics of every image under ``folder`` (``workers`` processes); non-images,
    undecodable files and images of another kind than the recipe is fitted on (colour photos
    for colorize) are skipped with a reason, never fatal; gray photos given to superres are
    kept and reported in the notes."""
    family = family or FAMILIES["superres"]
    if not os.path.isdir(folder):
        raise UsageError(f"--real {folder}: not a folder; give the folder of your real {family.real_kind}")
    try:
        refs, skips = list_sources([folder])
    except PairgenError as exc:
        raise UsageError(f"--real {folder}: {exc}") from None
    jobs = [(family.task, ref) for ref in refs]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_measure_one, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
    else:
        results = [_measure_one(job) for job in jobs]
    kept = [m for m in results if m.statistics is not None]
    skipped = [(s.path, s.reason) for s in skips] + [(m.path, m.reason) for m in results if m.statistics is None]
    notes = []
    gray = sum(m.gray for m in kept)
    if gray and family.notes_gray:
        notes.append(f"mixed kinds: {gray} gray and {len(kept) - gray} colour images (gray ones have noise channel "
                     "correlation 1 by construction); fit them separately if they come from different sources, and "
                     "calibrate scans of monochrome prints with --recipe colorize")
    jpeg = sum(getattr(m.statistics, "jpeg_quality_source", "") == "tables" for m in kept)
    if 0 < jpeg < len(kept):
        notes.append(f"mixed kinds: {jpeg} JPEG files (quality read from their tables) and {len(kept) - jpeg} "
                     "others (quality estimated from their pixels)")
    others = sum(m.other_kind for m in results)
    if others and kept:
        notes.append(f"mixed kinds: {others} {family.other_kind}s skipped, {len(kept)} kept")
    return RealSet([m.path for m in kept], [m.statistics for m in kept], skipped, notes)


def _superres_measure(image: np.ndarray, data: bytes | None):
    return estimators.image_statistics(central_crop(image), data)


def _superres_kind_problem(image: np.ndarray, stat) -> str | None:
    return None  # every photo is of the kind; gray ones are reported in the notes (Family.notes_gray)


def _film_kind_problem(image: np.ndarray, stat) -> str | None:
    if stat.colour_spread > estimators.MAX_PRINT_COLOUR_SPREAD:
        return (f"colour photo: its colours spread {stat.colour_spread:.1f} C*ab around each tone's mean colour, "
                f"a monochrome or toned print stays under {estimators.MAX_PRINT_COLOUR_SPREAD:g}; the colorize "
                "calibration fits scans of old prints (use --recipe superres for colour photos)")
    return None


@dataclass(frozen=True)
class Family:
    """What calibration measures and moves for the recipes of one task."""

    task: str
    field: str  # the output field the user's real images correspond to
    statistics: dict  # the fitted statistics -> their units
    spread_floor: dict  # statistic -> the smallest spread (its units) a real set is taken to have
    measure: Callable  # (uint8 RGB, file bytes or None) -> statistics (a dataclass with the fields above)
    measure_output: Callable  # (simulated output, its record) -> statistics
    kind_problem: Callable  # (uint8 RGB, statistics) -> why the image is not of the kind the recipe makes, or None
    knobs: Callable  # () -> [Knob]
    real_kind: str  # what --real should hold, in words
    other_kind: str  # what an image skipped by kind_problem is, in words
    default_side: int  # side of the simulated outputs, pixels
    default_samples: int  # simulated outputs per candidate (tone and tint vary with the scene: prints need more)
    notes_gray: bool  # gray images are kept but noted (their noise colour is gray by construction)
    output_scaled: bool  # outputs are 1/scale of the input crop (the recipe's ``scale``)

    def input_side(self, raw: dict, side: int) -> int:
        """Side of the clean crops that give outputs of ``side`` px."""
        return side * int(raw.get("scale", 4)) if self.output_scaled else side


# ----------------------------------------------------------------------------- knobs


@dataclass(frozen=True)
class Knob:
    """One fitted setting: its name (in the report and the YAML comment), the candidate values,
    and how a value is written into a raw recipe (in place; False when it does not apply)."""

    name: str
    values: tuple
    write: Callable[[dict, object], bool]  # (raw recipe, a value: a number or a (low, high) window)


def _recipe_steps(raw: dict) -> list:
    """The step lists knobs act on: a superres recipe's ``degrade``, a colorize recipe's ``film.steps``."""
    film = raw.get("film")
    return list(raw.get("degrade") or ()) + list((film.get("steps") if isinstance(film, dict) else None) or ())


def _op_steps(raw_steps, op_name: str):
    """Every step mapping of operation ``op_name`` in a raw step list, nested one_of/shuffle too."""
    for step in raw_steps or ():
        if not isinstance(step, dict):
            continue
        if step.get("op") == op_name:
            yield step
        for branch in step.get("one_of", ()) or ():
            yield from _op_steps(branch.get("steps"), op_name)
        body = step.get("shuffle")
        if body is not None:
            yield from _op_steps(body if isinstance(body, list) else body.get("steps"), op_name)


def _set_range_end(op_name: str, key: str, end: int, default: tuple, integer: bool = False, scaled: bool = False,
                   limit: float = math.inf):
    """A writer that sets one end (0 low, 1 high) of ``key`` in every ``op_name`` step. scaled:
    the value is a factor on each step's own end (stages keep their ratio); else the value
    itself. Refuses (False) when it would put low above high or an end above ``limit``."""

    def write(raw: dict, value: float) -> bool:
        found = False
        for step in _op_steps(_recipe_steps(raw), op_name):
            low, high = (float(v) for v in step.get(key, default))
            own = (low, high)[end]
            new = own * value if scaled else value
            new = int(round(new)) if integer else round(float(new), 4)
            pair = [new, high] if end == 0 else [low, new]
            if pair[0] > pair[1] or pair[1] > limit:
                return False
            step[key] = [int(v) for v in pair] if integer else [float(v) for v in pair]
            found = True
        return found

    return write


def _set_key(op_names: tuple, key: str):
    def write(raw: dict, value: float) -> bool:
        steps = [s for name in op_names for s in _op_steps(_recipe_steps(raw), name)]
        for step in steps:
            step[key] = float(value)
        return bool(steps)

    return write


def _set_jpeg_last_weight(raw: dict, value: float) -> bool:
    """In every top-level one_of of degrade with a branch that ends in a JPEG step (Real-ESRGAN's
    final stage), give those branches weight ``value`` in all and the others the rest: how often
    the output is a JPEG as it left the encoder, as a real JPEG file is."""
    found = False
    for step in raw.get("degrade") or ():
        branches = step.get("one_of") if isinstance(step, dict) else None
        if not branches:
            continue
        last = [bool(b.get("steps")) and b["steps"][-1].get("op") == "jpeg" for b in branches]
        if not any(last) or all(last):
            continue
        for branch, ends_in_jpeg in zip(branches, last):
            share = value / sum(last) if ends_in_jpeg else (1.0 - value) / (len(last) - sum(last))
            branch["weight"] = round(float(share), 4)
        found = True
    return found


_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
_FACTORS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)


_QUALITY_WINDOWS = ((10, 30), (20, 40), (30, 50), (40, 60), (50, 70), (60, 80), (70, 90), (80, 95), (90, 100), (30, 95),
                    (50, 95))


def _scale_noise(raw: dict, factor: float) -> bool:
    """Both ends of every noise step's level times ``factor`` (Gaussian sigma, Poisson scale)."""
    gaussian = _scale_range("gaussian_noise", "sigma_range", (1, 30))(raw, factor)
    return _scale_range("poisson_noise", "scale_range", (0.05, 3.0))(raw, factor) | gaussian


def superres_knobs() -> list[Knob]:
    """The settings fitted for superres recipes, in search order: the noise's colour and level
    first (it decides what a JPEG leaves visible), then the JPEG quality as a whole window, how
    often the output ends in a JPEG, then each range end on its own, then blur. Whole-range
    knobs come before the end knobs, so a wanted range wholly outside the recipe's is reachable."""
    return [
        Knob("noise gray_prob", (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), _set_key(("gaussian_noise", "poisson_noise"), "gray_prob")),
        Knob("noise level (x recipe's, both ends)", _FACTORS, _scale_noise),
        Knob("jpeg.quality_range", _QUALITY_WINDOWS, _set_window("jpeg", "quality_range", integer=True)),
        Knob("weight of final branches ending in JPEG", (0.0, 0.25, 0.5, 0.75, 1.0), _set_jpeg_last_weight),
        Knob("jpeg.quality_range[1]", _QUALITIES, _set_range_end("jpeg", "quality_range", 1, (30, 95), integer=True)),
        Knob("jpeg.quality_range[0]", _QUALITIES, _set_range_end("jpeg", "quality_range", 0, (30, 95), integer=True)),
        Knob("noise level high (x recipe's)", _FACTORS,
             lambda raw, v: _set_range_end("gaussian_noise", "sigma_range", 1, (1, 30), scaled=True)(raw, v)
             | _set_range_end("poisson_noise", "scale_range", 1, (0.05, 3.0), scaled=True)(raw, v)),
        Knob("noise level low (x recipe's)", _FACTORS,
             lambda raw, v: _set_range_end("gaussian_noise", "sigma_range", 0, (1, 30), scaled=True)(raw, v)
             | _set_range_end("poisson_noise", "scale_range", 0, (0.05, 3.0), scaled=True)(raw, v)),
        Knob("blur.sigma_range[1] (x recipe's)", (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0),
             _set_range_end("blur", "sigma_range", 1, (0.2, 3.0), scaled=True)),
    ]


def _scale_range(op_name: str, key: str, default: tuple, limit: float = math.inf):
    """A writer that multiplies both ends of ``key`` in every ``op_name`` step by the value."""

    def write(raw: dict, factor: float) -> bool:
        steps = list(_op_steps(_recipe_steps(raw), op_name))
        for step in steps:
            low, high = (float(v) * factor for v in step.get(key, default))
            if high > limit:
                return False
            step[key] = [round(low, 4), round(high, 4)]
        return bool(steps)

    return write


def _set_window(op_name: str, key: str, integer: bool = False):
    """A writer that sets ``key`` of every ``op_name`` step to the value, a (low, high) window:
    both ends move together, which a search over one end at a time cannot do when the wanted
    range lies wholly above or below the recipe's."""

    def write(raw: dict, window: tuple) -> bool:
        steps = list(_op_steps(_recipe_steps(raw), op_name))
        for step in steps:
            step[key] = [int(v) if integer else float(v) for v in window]
        return bool(steps)

    return write


def _shift_range(op_name: str, key: str, default: tuple):
    """A writer that adds the value to both ends of ``key`` in every ``op_name`` step."""

    def write(raw: dict, delta: float) -> bool:
        steps = list(_op_steps(_recipe_steps(raw), op_name))
        for step in steps:
            step[key] = [round(float(v) + delta, 4) for v in step.get(key, default)]
        return bool(steps)

    return write


def _tilt_probs(op_name: str, key: str, default: tuple):
    """A writer that tilts a probability list over ordered classes (paper grades 0..5) by
    exp(value x class): > 0 moves weight to the high classes (harder papers), < 0 to the low."""

    def write(raw: dict, tilt: float) -> bool:
        steps = list(_op_steps(_recipe_steps(raw), op_name))
        for step in steps:
            weights = [float(p) * math.exp(tilt * index) for index, p in enumerate(step.get(key, default))]
            probs = [round(w / sum(weights), 6) for w in weights]
            probs[int(np.argmax(probs))] += round(1.0 - sum(probs), 6)  # rounding remainder: sums stay 1
            step[key] = probs
        return bool(steps)

    return write


def _scale_toner_weight(toner: str):
    """A writer that multiplies film.toner_weights[toner] by the value (the task normalizes the
    weights); it applies when the recipe draws its toner (film.toner any) and gives this one a
    weight."""

    def write(raw: dict, factor: float) -> bool:
        film = raw.get("film")
        if not isinstance(film, dict) or str(film.get("toner", "any")) != "any":
            return False
        weights = dict(film.get("toner_weights") or {name: 1.0 for name in TONERS})  # none given: all equal
        own = float(weights.get(toner, 0.0))
        if own <= 0:
            return False
        weights[toner] = round(own * factor, 4)
        if sum(float(w) for w in weights.values()) <= 0:
            return False
        film["toner_weights"] = weights
        return True

    return write


_PROBS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_WEIGHT_FACTORS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
_FADING_WINDOWS = ((0.02, 0.1), (0.05, 0.2), (0.1, 0.3), (0.2, 0.4), (0.3, 0.5), (0.4, 0.6), (0.5, 0.7), (0.6, 0.8),
                   (0.05, 0.5), (0.2, 0.8))
_YELLOWING_WINDOWS = ((0.01, 0.05), (0.03, 0.1), (0.05, 0.15), (0.1, 0.25), (0.2, 0.4), (0.3, 0.6), (0.03, 0.3))
_GRAIN_WINDOWS = ((1.0, 3.0), (2.0, 6.0), (4.0, 12.0), (8.0, 24.0), (16.0, 48.0), (32.0, 96.0), (5.0, 40.0), (2.0, 80.0))


def film_knobs() -> list[Knob]:
    """The settings fitted for colorize recipes (their film.steps and toner weights), in search
    order: fading first (it sets tones and the tint's chroma at once), then the toners, the
    base's yellowing, the grain and the tone curve.
    Ranges are searched as whole windows (amounts and strengths absolute, grain in um per
    pixel log-spaced by 2x-3x), so a wanted range wholly outside the recipe's is reachable."""
    toners = [Knob(f"toner_weights.{name} (x recipe's)", _WEIGHT_FACTORS, _scale_toner_weight(name)) for name in TONERS]
    return [
        Knob("fading.p", _PROBS, _set_key(("fading",), "p")),
        Knob("fading.amount_range", _FADING_WINDOWS, _set_window("fading", "amount_range")),
    ] + toners + [
        Knob("base_yellowing.p", _PROBS, _set_key(("base_yellowing",), "p")),
        Knob("base_yellowing.strength_range", _YELLOWING_WINDOWS, _set_window("base_yellowing", "strength_range")),
        Knob("film_grain.p", _PROBS, _set_key(("film_grain",), "p")),
        Knob("film_grain.pixel_um_range", _GRAIN_WINDOWS, _set_window("film_grain", "pixel_um_range")),
        Knob("film_negative.exposure_stops_range (+ stops)", (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5),
             _shift_range("film_negative", "exposure_stops_range", (-1.5, 1.5))),
        Knob("film_negative.gamma_range (x recipe's)", (0.6, 0.8, 1.0, 1.25, 1.5),
             _scale_range("film_negative", "gamma_range", (0.55, 0.95))),
        Knob("paper_print.grade_probs tilt (> 0: harder)", (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5),
             _tilt_probs("paper_print", "grade_probs", (0.05, 0.15, 0.3, 0.3, 0.15, 0.05))),
    ]


# ----------------------------------------------------------------------------- simulating


@dataclass(frozen=True)
class Simulator:
    """Makes the outputs of a raw recipe of ``family`` on fixed clean crops with fixed generators
    (common random numbers: candidate recipes differ only by their settings, not by luck)."""

    family: "Family"
    recipe: Recipe
    crops: tuple  # uint8 clean crops (the task's input crops)
    seed: int

    def outputs(self, raw: dict) -> list:
        """(output uint8 image, its record) per crop: the field the real images correspond to."""
        from .tasks import get_task
        from .tasks.base import BuildInputs

        task_class = get_task(self.family.task)
        task = task_class(Recipe(self.recipe.name, self.recipe.path, raw),
                          task_class.Options(crop=self.crops[0].shape[0]), BuildInputs(seed=self.seed))
        out = []
        for index, crop in enumerate(self.crops):
            rng = np.random.default_rng([self.seed, index])
            record: dict = {}
            out.append((task.make_crop(crop, rng, record)[self.family.field], record))
        return out

    def statistics(self, raw: dict) -> list:
        return [self.family.measure_output(image, record) for image, record in self.outputs(raw)]


def _superres_output_statistics(lr: np.ndarray, record: dict):
    """An output whose last step was a JPEG round trip is what a real JPEG file is, so its
    quality is the recorded one (what the file's tables would say), as for real JPEG files;
    the others are estimated from their pixels, as for real PNGs."""
    stat = estimators.image_statistics(lr)
    last = record["degrade_ops"][-1] if record["degrade_ops"] else {}
    if last.get("op") == "jpeg":
        stat = dataclasses.replace(stat, jpeg_quality=int(last["params"]["quality"]), jpeg_quality_source="record")
    return stat


def _film_output_statistics(mono: np.ndarray, record: dict):
    return estimators.film_statistics(mono)


FAMILIES = {
    "superres": Family(
        "superres", "lr.png", estimators.FITTED_STATISTICS,
        {"jpeg_quality": 2.0, "noise_sigma": 0.5, "noise_channel_correlation": 0.05, "blur_sigma": 0.1},
        _superres_measure, _superres_output_statistics, _superres_kind_problem,
        superres_knobs, "low-quality photos", "", 64, 24, True, True),
    "colorize": Family(
        "colorize", "mono.png", estimators.FILM_STATISTICS,
        {"tone_p10": 1.0, "tone_p50": 1.0, "tone_p90": 1.0, "black_level": 1.0, "contrast": 0.5, "tint_hue": 5.0,
         "tint_chroma": 0.5, "grain": 2.0},
        estimators.film_statistics, _film_output_statistics, _film_kind_problem,
        film_knobs, "scans of old prints", "colour photo", 128, 48, False, False),
}


def clean_crops(src: list, count: int, side: int, seed: int) -> tuple:
    """``count`` random side x side crops of the clean photos (``src``; empty: the embedded
    photos), drawn from a generator of ``seed``, cycling over the photos in name order."""
    refs, _ = list_sources(list(src), min_side=side)
    if not refs:
        raise UsageError(f"no clean photo of at least {side}x{side} px to simulate the recipe on; pass --src or a smaller --crop")
    rng = np.random.default_rng([seed, 7])
    images, crops = {}, []
    for index in range(count):
        ref = refs[index % len(refs)]
        if ref.identity not in images:
            images[ref.identity] = load_rgb(ref)
        image = images[ref.identity]
        y0 = int(rng.integers(0, image.shape[0] - side + 1))
        x0 = int(rng.integers(0, image.shape[1] - side + 1))
        crops.append(np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side]))
    return tuple(crops)


# ----------------------------------------------------------------------------- distances

_QUANTILES = (np.arange(2048) + 0.5) / 2048  # quantile levels: exact enough for samples of any size


def _finite_sorted(values) -> np.ndarray:
    return np.sort(np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64))


def wasserstein_1d(a, b) -> float:
    """1-D Wasserstein (earth mover's) distance between two samples, in their units: the mean
    absolute difference of their quantile functions. NaNs are left out; inf when one is empty."""
    a, b = _finite_sorted(a), _finite_sorted(b)
    if not len(a) or not len(b):
        return math.inf
    return float(np.mean(np.abs(np.quantile(a, _QUANTILES, method="inverted_cdf")
                                - np.quantile(b, _QUANTILES, method="inverted_cdf"))))


def circular_wasserstein_1d(a, b, period: float = 360.0) -> float:
    """1-D Wasserstein distance between two samples of an angle (units of ``period``, e.g.
    degrees): on the circle, W1 = min over c of the integral of |F(t) - G(t) - c| dt (the
    cut point of the circle chosen best; c is the median of F - G), so 355 and 5 degrees are
    10 apart, not 350. NaNs left out; inf when one is empty."""
    a, b = _finite_sorted(np.mod(list(a), period)), _finite_sorted(np.mod(list(b), period))
    if not len(a) or not len(b):
        return math.inf
    grid = (np.arange(3600) + 0.5) * (period / 3600)
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return float(period * np.mean(np.abs(gap - np.median(gap))))


def column(stats: list, name: str) -> list:
    return [float(getattr(s, name)) for s in stats]


def distances(real: list, made: list, family: Family = None) -> dict:
    """statistic -> Wasserstein distance (its units; circular ones on the circle) between real
    and made statistics."""
    family = family or FAMILIES["superres"]
    out = {}
    for name in family.statistics:
        period = estimators.CIRCULAR_STATISTICS.get(name)
        a, b = column(real, name), column(made, name)
        out[name] = circular_wasserstein_1d(a, b, period) if period else wasserstein_1d(a, b)
    return out


def spreads(real: list, family: Family) -> dict:
    """statistic -> the real values' standard deviation, at least the family's floor."""
    out = {}
    for name in family.statistics:
        values = _finite_sorted(column(real, name))
        out[name] = max(float(values.std()) if len(values) else 0.0, family.spread_floor[name])
    return out


def objective(found: dict, reference: dict) -> float:
    """A candidate's score from its distances: each statistic's distance relative to its
    reference (the default recipe's distance, or the sampling noise when that is larger), as
    the root mean square of those ratios plus the mean excess of the ratios above 1. Relative,
    so that no statistic's units or saturation decide; squared and with the excess, so that a
    statistic is not traded away for the others (a plain sum moved noise the wrong way on the
    two-stage superres recipe to gain JPEG quality); soft, because coupled settings (fading and
    toning both set a print's chroma) need a step through a slightly worse statistic that a
    hard rule would refuse. An infinite distance (no value to compare) ranks last."""
    ratios = [found[name] / reference[name] for name in reference if math.isfinite(reference[name])]
    if not ratios:
        return 0.0
    if not all(math.isfinite(r) for r in ratios):
        return math.inf
    return math.sqrt(sum(r * r for r in ratios) / len(ratios)) + sum(max(0.0, r - 1.0) for r in ratios) / len(ratios)


# ----------------------------------------------------------------------------- fitting


@dataclass
class Fit:
    raw: dict  # the calibrated recipe (plain dicts and lists)
    settings: dict  # knob name -> fitted value (knobs left at the recipe's values are absent)
    objective_default: float
    objective_calibrated: float
    evaluations: int
    sampling_noise: dict  # statistic -> distance between the two halves of the fit set (its units)


def plain(value):
    """LineDict / LineList / tuples -> plain dicts and lists (for YAML and deep copies)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def materialize(raw: dict, knobs: list, settings: dict) -> dict | None:
    """The recipe ``raw`` with every knob in ``settings`` written (in knob order), as plain
    dicts; None when a combination is invalid (a range's low end above its high end). Factors
    are always relative to the recipe's own values, never compounded."""
    out = plain(raw)
    for knob in knobs:
        if knob.name in settings and not knob.write(out, settings[knob.name]):
            return None
    return out


def fit(raw: dict, real: list, simulator: Simulator, knobs: list, passes: int = 2, log=None) -> Fit:
    """Coordinate search: for each knob in turn, every candidate value is tried with the other
    knobs held, the best (lowest objective) kept; ``passes`` rounds. Ties keep the current value,
    so the result is deterministic. Distances are taken relative to the default recipe's, or to
    the sampling noise where that is larger: the distance between the two halves of ``real``
    (a statistic the default already matches within noise may move within noise only)."""
    family = simulator.family
    base = plain(raw)
    knobs = [k for k in knobs if k.write(plain(raw), k.values[0]) or k.write(plain(raw), k.values[-1])]  # those that apply
    spread = spreads(real, family)
    default = distances(real, simulator.statistics(base), family)
    noise = distances(real[0::2], real[1::2], family)
    reference = {name: max(d, noise[name], 0.05 * spread[name]) for name, d in default.items()}
    best = objective(default, reference)
    start, evaluations, settings, current = best, 1, {}, base
    for round_ in range(passes):
        for knob in knobs:
            for value in knob.values:
                if settings.get(knob.name) == value:
                    continue
                trial = materialize(raw, knobs, {**settings, knob.name: value})
                if trial is None or trial == current:
                    continue
                try:
                    score = objective(distances(real, simulator.statistics(trial), family), reference)
                except (PairgenError, ValueError):
                    continue  # a combination the ops refuse (e.g. a range past its bound): not a candidate
                evaluations += 1
                if score < best - 1e-9:
                    best, current, settings = score, trial, {**settings, knob.name: value}
            if log:
                log(f"pass {round_ + 1}, {knob.name}: {settings.get(knob.name, 'recipe value')} (score {best:.3f})")
    # Report the settings in knob order, without those that came back to the recipe's own value.
    settings = {k.name: settings[k.name] for k in knobs if k.name in settings}
    for name in list(settings):
        rest = {k: v for k, v in settings.items() if k != name}
        if materialize(raw, knobs, rest) == current:
            settings = rest
    return Fit(current, settings, start, best, evaluations, noise)


# ----------------------------------------------------------------------------- the command


@dataclass
class Calibration:
    recipe_path: str
    report_json: str
    report_png: str
    distances_default: dict
    distances_calibrated: dict
    real_count: int
    skipped: list
    notes: list
    statistics: dict  # statistic -> units (the family's)
    sampling_noise: dict  # statistic -> distance between the two halves of the fit set: distances below it are noise


def calibrate(real_folder: str, recipe: str, out: str, src=(), samples: int | None = None, lr_side: int | None = None,
              seed: int = 0, passes: int = 2, report: str | None = None, log=None, workers: int = 1) -> Calibration:
    """Fit ``recipe`` (a superres or colorize recipe) to the images in ``real_folder``; write the
    calibrated recipe to ``out`` and the report to ``report`` (default: OUT without .yaml +
    .report.png / .report.json). ``samples`` outputs of ``lr_side`` px per candidate (default:
    the family's: 24 of 64 px for superres LR, 48 of 128 px for colorize prints), from crops of the clean ``src``
    photos (default: the embedded ones); real images measured by ``workers`` processes."""
    recipe_ = load_recipe(recipe)
    family = FAMILIES.get(recipe_.task)
    if family is None:
        raise UsageError(f"--recipe {recipe}: calibration fits {' and '.join(FAMILIES)} recipes (this one is task "
                         f"{recipe_.task!r})")
    if not out.endswith((".yaml", ".yml")):
        raise UsageError(f"--out {out}: the calibrated recipe is a YAML file; name it e.g. my-{family.task}.yaml")
    lr_side = lr_side or family.default_side
    samples = samples or family.default_samples
    if samples < 4 or lr_side < 16:
        raise UsageError(f"--samples must be >= 4 and --lr-size >= 16 (got {samples}, {lr_side})")
    real = measure_real(real_folder, family, workers)
    if len(real.statistics) < MIN_REAL_IMAGES:
        raise UsageError(
            f"--real {real_folder}: {len(real.statistics)} usable images, calibration needs at least {MIN_REAL_IMAGES} "
            f"(half to fit on, half held out to check the fit)"
            + (f"; skipped: " + "; ".join(f"{p}: {r}" for p, r in real.skipped[:5]) if real.skipped else ""))
    fit_half, held_out = real.statistics[0::2], real.statistics[1::2]
    side = family.input_side(recipe_.raw, lr_side)
    simulator = Simulator(family, recipe_, clean_crops(list(src), samples, side, seed), seed)
    result = fit(recipe_.raw, fit_half, simulator, family.knobs(), passes=passes, log=log)
    # Held-out check: fresh clean crops and generators, the held-out real half.
    fresh = Simulator(family, recipe_, clean_crops(list(src), samples, side, seed + 1), seed + 1)
    default_stats = fresh.statistics(plain(recipe_.raw))
    calibrated_stats = fresh.statistics(result.raw)
    d_default = distances(held_out, default_stats, family)
    d_calibrated = distances(held_out, calibrated_stats, family)
    base = report or os.path.splitext(out)[0] + ".report"
    for path in (out, base):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    _write_recipe(out, result, recipe_, family, real_folder, real, samples, lr_side, seed, d_default, d_calibrated)
    payload = {
        "recipe": recipe_.path, "task": family.task, "calibrated_recipe": out, "real": real_folder, "seed": seed,
        "real_images": len(real.statistics), "fit_images": len(fit_half), "held_out_images": len(held_out),
        "simulated_samples": samples, "lr_side": lr_side, "evaluations": result.evaluations,
        "settings": result.settings, "sampling_noise": result.sampling_noise, "skipped": [{"path": p, "reason": r} for p, r in real.skipped], "notes": real.notes,
        "statistics": {
            name: {"units": units, "wasserstein_default": d_default[name], "wasserstein_calibrated": d_calibrated[name],
                   "sampling_noise": result.sampling_noise[name],
                   "real_held_out": column(held_out, name), "default": column(default_stats, name),
                   "calibrated": column(calibrated_stats, name)}
            for name, units in family.statistics.items()
        },
        "real_images_statistics": [{"path": p, **s.to_json()} for p, s in zip(real.paths, real.statistics)],
    }
    with open(base + ".json", "w", encoding="utf-8") as handle:
        json.dump(_finite(payload), handle, indent=1)
    report_histograms(payload["statistics"], base + ".png", title=f"{recipe_.name} calibrated on {real_folder}")
    return Calibration(out, base + ".json", base + ".png", d_default, d_calibrated, len(real.statistics),
                       real.skipped, real.notes, dict(family.statistics), result.sampling_noise)


def _finite(value):
    """JSON without NaN/inf (strict readers refuse them): None instead."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_recipe(out, result: Fit, recipe_: Recipe, family: Family, real_folder, real: RealSet, samples, lr_side, seed,
                  d_default, d_calibrated):
    lines = [
        f"# Calibrated by `pairgen calibrate` from the recipe {recipe_.name} ({recipe_.path}).",
        f"# Fitted on {len(real.statistics)} real images in {real_folder} (every other one by name fitted on, the rest",
        f"# held out), {len(real.skipped)} skipped; {samples} simulated {lr_side}x{lr_side} px outputs per candidate, seed {seed}.",
        "# Settings fitted (coordinate search; per statistic the 1-D Wasserstein distance relative to the default's):",
    ]
    lines += [f"#   {name}: {value}" for name, value in result.settings.items()] or ["#   none: the recipe already fits best"]
    lines.append("# Wasserstein distance to the held-out images, default -> calibrated (sampling noise):")
    for name, units in family.statistics.items():
        lines.append(f"#   {name}: {d_default[name]:.3f} -> {d_calibrated[name]:.3f} ({result.sampling_noise[name]:.3f}; {units})")
    raw = dict(result.raw)
    raw["description"] = f"{raw.get('description', recipe_.name)} (calibrated on {os.path.basename(os.path.normpath(real_folder))})"
    text = "\n".join(lines) + "\n" + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(text)


def report_histograms(statistics: dict, path: str, title: str = "") -> None:
    """One panel per statistic: histograms of the held-out real images, the default recipe and
    the calibrated recipe, with each recipe's Wasserstein distance to the real ones."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(statistics)
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(3.6 * columns, 3.2 * rows), dpi=100)
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=10)
    for index, name in enumerate(names):
        entry = statistics[name]
        axes = figure.add_subplot(rows, columns, index + 1)
        series = [("real (held out)", entry["real_held_out"], "black"), ("default", entry["default"], "tab:red"),
                  ("calibrated", entry["calibrated"], "tab:blue")]
        values = np.asarray([v for _, s, _ in series for v in s if np.isfinite(v)])
        bins = np.linspace(values.min(), values.max() + 1e-9, 16) if len(values) else 10
        for label, data, colour in series:
            finite = [v for v in data if np.isfinite(v)]
            axes.hist(finite, bins=bins, histtype="step", density=True, color=colour, linewidth=1.5, label=label)
        axes.set_title(f"{name}\nW: default {entry['wasserstein_default']:.2f}, calibrated {entry['wasserstein_calibrated']:.2f}",
                       fontsize=8)
        axes.set_xlabel(entry["units"], fontsize=7)
        axes.tick_params(labelsize=7)
        if index == 0:
            axes.legend(fontsize=7)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.08 / rows) if title else None)
    figure.savefig(path, format="png")
