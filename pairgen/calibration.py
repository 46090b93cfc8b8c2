"""Fit a recipe's sampling settings to a user's real low-quality photos (`pairgen calibrate`).

1. Measure every real image (``pairgen.estimators``); split them in two halves by name order:
   one to fit on, one held out for the report.
2. Make a small batch of LR outputs through the recipe's own step pipeline (the task's
   ``make_crop``) for each candidate setting, on fixed clean crops with fixed generators
   (common random numbers: candidates differ only by their settings, not by luck).
3. Distance of a candidate: sum over the fitted statistics of the 1-D Wasserstein distance
   between its outputs' and the real fit half's statistics, each divided by the spread (std) of
   the real values so that no unit dominates.
4. Coordinate search over a grid of values per "knob" (a setting shared by the recipe's steps of
   one kind, e.g. every JPEG step's quality range), deterministic, for a few passes.
5. Write the recipe YAML with the fitted settings and a comment block saying what it was fitted
   on; report per statistic the real, default and calibrated distributions on fresh outputs
   against the held-out half (PNG histograms and JSON).

Superres recipes only (the knobs act on blur, resize-free noise and JPEG steps); the film
statistics of old photos are not measured yet.
"""
from __future__ import annotations

import copy
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
from .sources import DecodeError, display_path, list_sources, load_rgb, read_bytes

MIN_REAL_IMAGES = 8  # 4 to fit on, 4 held out: fewer give no distribution to match
MAX_SIDE = 512  # real images are measured on their central 512x512 (on the 8x8 grid): same statistics, bounded time
_SPREAD_FLOOR = {"jpeg_quality": 2.0, "noise_sigma": 0.5, "noise_channel_correlation": 0.05, "blur_sigma": 0.1}


# ----------------------------------------------------------------------------- real images


@dataclass(frozen=True)
class RealSet:
    """paths and statistics of the usable real images (name order), what was skipped and why,
    and notes on mixed kinds (gray and colour, JPEG and not)."""

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


def measure_real(folder: str) -> RealSet:
    """Statistics of every image under ``folder``; non-images and undecodable files are skipped
    with a reason, never fatal."""
    if not os.path.isdir(folder):
        raise UsageError(f"--real {folder}: not a folder; give the folder of your real low-quality photos")
    try:
        refs, skips = list_sources([folder])
    except PairgenError as exc:
        raise UsageError(f"--real {folder}: {exc}") from None
    skipped = [(s.path, s.reason) for s in skips]
    paths, stats = [], []
    gray = jpeg = 0
    for ref in refs:
        try:
            data = read_bytes(ref)
            image = load_rgb(ref)
        except DecodeError as exc:
            skipped.append((display_path(ref), str(exc)))
            continue
        if min(image.shape[:2]) < 16:
            skipped.append((display_path(ref), f"too small to measure: {image.shape[1]}x{image.shape[0]} px (16 px needed)"))
            continue
        stat = estimators.image_statistics(central_crop(image), data)
        gray += bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())
        jpeg += stat.jpeg_quality_source == "tables"
        paths.append(display_path(ref))
        stats.append(stat)
    notes = []
    if 0 < gray < len(stats):
        notes.append(f"mixed kinds: {gray} gray and {len(stats) - gray} colour images (gray ones have noise "
                     "channel correlation 1 by construction); fit them separately if they come from different sources")
    if 0 < jpeg < len(stats):
        notes.append(f"mixed kinds: {jpeg} JPEG files (quality read from their tables) and {len(stats) - jpeg} "
                     "others (quality estimated from their pixels)")
    return RealSet(paths, stats, skipped, notes)


# ----------------------------------------------------------------------------- knobs


@dataclass(frozen=True)
class Knob:
    """One fitted setting: its name (in the report and the YAML comment), the candidate values,
    and how a value is written into a raw recipe (in place; False when it does not apply)."""

    name: str
    values: tuple
    write: Callable[[dict, float], bool]


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


def _set_range_end(op_name: str, key: str, end: int, default: tuple, integer: bool = False, scaled: bool = False):
    """A writer that sets one end (0 low, 1 high) of ``key`` in every ``op_name`` step. scaled:
    the value is a factor on each step's own end (stages keep their ratio); else the value
    itself. Refuses (False) when it would put low above high."""

    def write(raw: dict, value: float) -> bool:
        found = False
        for step in _op_steps(raw.get("degrade"), op_name):
            low, high = (float(v) for v in step.get(key, default))
            own = (low, high)[end]
            new = own * value if scaled else value
            new = int(round(new)) if integer else round(float(new), 4)
            pair = [new, high] if end == 0 else [low, new]
            if pair[0] > pair[1]:
                return False
            step[key] = [int(v) for v in pair] if integer else [float(v) for v in pair]
            found = True
        return found

    return write


def _set_key(op_names: tuple, key: str):
    def write(raw: dict, value: float) -> bool:
        steps = [s for name in op_names for s in _op_steps(raw.get("degrade"), name)]
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


def superres_knobs() -> list[Knob]:
    """The settings fitted for superres recipes, in search order."""
    return [
        Knob("weight of final branches ending in JPEG", (0.0, 0.25, 0.5, 0.75, 1.0), _set_jpeg_last_weight),
        Knob("jpeg.quality_range[1]", _QUALITIES, _set_range_end("jpeg", "quality_range", 1, (30, 95), integer=True)),
        Knob("jpeg.quality_range[0]", _QUALITIES, _set_range_end("jpeg", "quality_range", 0, (30, 95), integer=True)),
        Knob("noise level high (x recipe's)", _FACTORS,
             lambda raw, v: _set_range_end("gaussian_noise", "sigma_range", 1, (1, 30), scaled=True)(raw, v)
             | _set_range_end("poisson_noise", "scale_range", 1, (0.05, 3.0), scaled=True)(raw, v)),
        Knob("noise level low (x recipe's)", _FACTORS,
             lambda raw, v: _set_range_end("gaussian_noise", "sigma_range", 0, (1, 30), scaled=True)(raw, v)
             | _set_range_end("poisson_noise", "scale_range", 0, (0.05, 3.0), scaled=True)(raw, v)),
        Knob("noise gray_prob", (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), _set_key(("gaussian_noise", "poisson_noise"), "gray_prob")),
        Knob("blur.sigma_range[1] (x recipe's)", (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0),
             _set_range_end("blur", "sigma_range", 1, (0.2, 3.0), scaled=True)),
    ]


# ----------------------------------------------------------------------------- simulating


@dataclass(frozen=True)
class Simulator:
    """Makes LR outputs of a raw superres recipe on fixed clean crops with fixed generators."""

    recipe: Recipe
    crops: tuple  # uint8 HR crops
    seed: int

    def outputs(self, raw: dict) -> list:
        """(LR uint8 image, its record) per crop."""
        from .tasks.base import BuildInputs
        from .tasks.superres import SuperResOptions, SuperResTask

        task = SuperResTask(Recipe(self.recipe.name, self.recipe.path, raw),
                            SuperResOptions(crop=self.crops[0].shape[0]), BuildInputs(seed=self.seed))
        out = []
        for index, crop in enumerate(self.crops):
            rng = np.random.default_rng([self.seed, index])
            record: dict = {}
            out.append((task.make_crop(crop, rng, record)["lr.png"], record))
        return out

    def statistics(self, raw: dict) -> list:
        """Statistics of each output. An output whose last step was a JPEG round trip is what a
        real JPEG file is, so its quality is the recorded one (what the file's tables would
        say), as for real JPEG files; the others are estimated from their pixels, as for real
        PNGs."""
        stats = []
        for lr, record in self.outputs(raw):
            stat = estimators.image_statistics(lr)
            last = record["degrade_ops"][-1] if record["degrade_ops"] else {}
            if last.get("op") == "jpeg":
                stat = dataclasses.replace(stat, jpeg_quality=int(last["params"]["quality"]), jpeg_quality_source="record")
            stats.append(stat)
        return stats


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


def wasserstein_1d(a, b) -> float:
    """1-D Wasserstein (earth mover's) distance between two samples, in their units: the mean
    absolute difference of their quantile functions. NaNs are left out; inf when one is empty."""
    a = np.sort(np.asarray([v for v in a if np.isfinite(v)], dtype=np.float64))
    b = np.sort(np.asarray([v for v in b if np.isfinite(v)], dtype=np.float64))
    if not len(a) or not len(b):
        return math.inf
    grid = (np.arange(2048) + 0.5) / 2048  # quantile levels: exact enough for samples of any size
    return float(np.mean(np.abs(np.quantile(a, grid, method="inverted_cdf") - np.quantile(b, grid, method="inverted_cdf"))))


def column(stats: list, name: str) -> list:
    return [float(getattr(s, name)) for s in stats]


def distances(real: list, made: list) -> dict:
    """statistic -> Wasserstein distance (its units) between real and made statistics."""
    return {name: wasserstein_1d(column(real, name), column(made, name)) for name in estimators.FITTED_STATISTICS}


def spreads(real: list) -> dict:
    out = {}
    for name in estimators.FITTED_STATISTICS:
        values = np.asarray([v for v in column(real, name) if np.isfinite(v)])
        out[name] = max(float(values.std()) if len(values) else 0.0, _SPREAD_FLOOR[name])
    return out


def objective(real: list, made: list, spread: dict) -> float:
    return sum(d / spread[name] for name, d in distances(real, made).items())


# ----------------------------------------------------------------------------- fitting


@dataclass
class Fit:
    raw: dict  # the calibrated recipe (plain dicts and lists)
    settings: dict  # knob name -> fitted value (knobs left at the recipe's values are absent)
    objective_default: float
    objective_calibrated: float
    evaluations: int


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
    so the result is deterministic."""
    spread = spreads(real)
    base = plain(raw)
    knobs = [k for k in knobs if k.write(plain(raw), k.values[0]) or k.write(plain(raw), k.values[-1])]  # those that apply
    best = objective(real, simulator.statistics(base), spread)
    start, evaluations, settings, current = best, 1, {}, base
    for round_ in range(passes):
        for knob in knobs:
            for value in knob.values:
                if settings.get(knob.name) == value:
                    continue
                trial = materialize(raw, knobs, {**settings, knob.name: value})
                if trial is None or trial == current:
                    continue
                score = objective(real, simulator.statistics(trial), spread)
                evaluations += 1
                if score < best - 1e-9:
                    best, current, settings = score, trial, {**settings, knob.name: value}
            if log:
                log(f"pass {round_ + 1}, {knob.name}: {settings.get(knob.name, 'recipe value')} (distance {best:.3f})")
    return Fit(current, settings, start, best, evaluations)


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


def calibrate(real_folder: str, recipe: str, out: str, src=(), samples: int = 32, lr_side: int = 128,
              seed: int = 0, passes: int = 2, report: str | None = None, log=None) -> Calibration:
    """Fit ``recipe`` (a superres recipe) to the images in ``real_folder``; write the calibrated
    recipe to ``out`` and the report to ``report`` (default: OUT without .yaml + .report.png /
    .report.json). ``samples`` LR outputs of ``lr_side`` px per candidate, from crops of the
    clean ``src`` photos (default: the embedded ones)."""
    recipe_ = load_recipe(recipe)
    if recipe_.task != "superres":
        raise UsageError(f"--recipe {recipe}: calibration fits superres recipes only for now (this one is task "
                         f"{recipe_.task!r}); the film statistics of old photos are not measured yet")
    if not out.endswith((".yaml", ".yml")):
        raise UsageError(f"--out {out}: the calibrated recipe is a YAML file; name it e.g. my-superres.yaml")
    if samples < 4 or lr_side < 16:
        raise UsageError(f"--samples must be >= 4 and --lr-size >= 16 (got {samples}, {lr_side})")
    real = measure_real(real_folder)
    if len(real.statistics) < MIN_REAL_IMAGES:
        raise UsageError(
            f"--real {real_folder}: {len(real.statistics)} usable images, calibration needs at least {MIN_REAL_IMAGES} "
            f"(half to fit on, half held out to check the fit)"
            + (f"; skipped: " + "; ".join(f"{p}: {r}" for p, r in real.skipped[:5]) if real.skipped else ""))
    fit_half, held_out = real.statistics[0::2], real.statistics[1::2]
    scale = int(recipe_.raw.get("scale", 4))
    side = lr_side * scale
    simulator = Simulator(recipe_, clean_crops(list(src), samples, side, seed), seed)
    result = fit(recipe_.raw, fit_half, simulator, superres_knobs(), passes=passes, log=log)
    # Held-out check: fresh clean crops and generators, the held-out real half.
    fresh = Simulator(recipe_, clean_crops(list(src), samples, side, seed + 1), seed + 1)
    default_stats = fresh.statistics(plain(recipe_.raw))
    calibrated_stats = fresh.statistics(result.raw)
    d_default, d_calibrated = distances(held_out, default_stats), distances(held_out, calibrated_stats)
    base = report or os.path.splitext(out)[0] + ".report"
    for path in (out, base):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    _write_recipe(out, result, recipe_, real_folder, real, samples, lr_side, seed, d_default, d_calibrated)
    payload = {
        "recipe": recipe_.path, "calibrated_recipe": out, "real": real_folder, "seed": seed,
        "real_images": len(real.statistics), "fit_images": len(fit_half), "held_out_images": len(held_out),
        "simulated_samples": samples, "lr_side": lr_side, "evaluations": result.evaluations,
        "settings": result.settings, "skipped": [{"path": p, "reason": r} for p, r in real.skipped], "notes": real.notes,
        "statistics": {
            name: {"units": units, "wasserstein_default": d_default[name], "wasserstein_calibrated": d_calibrated[name],
                   "real_held_out": column(held_out, name), "default": column(default_stats, name),
                   "calibrated": column(calibrated_stats, name)}
            for name, units in estimators.FITTED_STATISTICS.items()
        },
        "real_images_statistics": [{"path": p, **s.to_json()} for p, s in zip(real.paths, real.statistics)],
    }
    with open(base + ".json", "w", encoding="utf-8") as handle:
        json.dump(_finite(payload), handle, indent=1)
    report_histograms(payload["statistics"], base + ".png", title=f"{recipe_.name} calibrated on {real_folder}")
    return Calibration(out, base + ".json", base + ".png", d_default, d_calibrated, len(real.statistics),
                       real.skipped, real.notes)


def _finite(value):
    """JSON without NaN/inf (strict readers refuse them): None instead."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_recipe(out, result: Fit, recipe_: Recipe, real_folder, real: RealSet, samples, lr_side, seed, d_default, d_calibrated):
    lines = [
        f"# Calibrated by `pairgen calibrate` from the recipe {recipe_.name} ({recipe_.path}).",
        f"# Fitted on {len(real.statistics)} real images in {real_folder} (every other one by name fitted on, the rest",
        f"# held out), {len(real.skipped)} skipped; {samples} simulated {lr_side}x{lr_side} px LR outputs per candidate, seed {seed}.",
        "# Settings fitted (coordinate search, 1-D Wasserstein per statistic / real spread):",
    ]
    lines += [f"#   {name}: {value}" for name, value in result.settings.items()] or ["#   none: the recipe already fits best"]
    lines.append("# Wasserstein distance to the held-out images, default -> calibrated:")
    for name, units in estimators.FITTED_STATISTICS.items():
        lines.append(f"#   {name}: {d_default[name]:.3f} -> {d_calibrated[name]:.3f} ({units})")
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
    figure = Figure(figsize=(3.6 * len(names), 3.2), dpi=100)
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=10)
    for index, name in enumerate(names):
        entry = statistics[name]
        axes = figure.add_subplot(1, len(names), index + 1)
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
    figure.tight_layout(rect=(0, 0, 1, 0.92) if title else None)
    figure.savefig(path, format="png")
