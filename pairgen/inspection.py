"""`pairgen inspect` and `pairgen replay`: read a shard folder back, summarise it, write previews."""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from .api import read_card, replay
from .encoding import encode
from .errors import PairgenError, UsageError
from .shards import iter_samples, stats_file

MAX_SCANNED = 2000  # samples read for parameter summaries; enough for histograms, cheap on big sets


@dataclass
class Report:
    text: str
    contact_sheet: str
    histograms: str
    parameters: dict


def shard_paths(folder: str, card: dict) -> list[str]:
    paths = []
    for row in card.get("shards", []):
        path = os.path.join(folder, row["file"])
        if not os.path.exists(path):
            raise PairgenError(f"{path}: listed in dataset.json but missing")
        paths.append(path)
    return paths


def iter_folder(folder: str, card: dict):
    for path in shard_paths(folder, card):
        for key, fields in iter_samples(path):
            yield path, key, fields


def field_views(card: dict) -> dict:
    """Field name -> its view (None: guessed from the array) for every picture field of a card."""
    return {name: spec.get("view") for name, spec in card.get("fields", {}).items() if spec.get("role") != "meta"}


def inspect(folder: str, n_samples: int = 8) -> Report:
    from .encoding import encode_png
    from .preview import VIEWS, annotate, contact_sheet, field_to_rgb, parameter_histograms

    card = read_card(folder)
    fields = card.get("fields", {})
    views = field_views(card)
    order = [n for role in ("input", "target", "aux") for n, f in fields.items() if f.get("role") == role]
    preview_dir = os.path.join(folder, "preview")
    os.makedirs(preview_dir, exist_ok=True)

    rows, columns, values = [], None, defaultdict(list)
    scanned = 0
    for _, key, sample in iter_folder(folder, card):
        if scanned >= MAX_SCANNED:
            break
        scanned += 1
        record = sample.get("json", {})
        _collect_parameters(record, values)
        if len(rows) < n_samples:
            images = [(name, field_to_rgb(name, sample[name], views.get(name))) for name in order if name in sample]
            images = [(n, im) for n, im in images if im is not None]
            images = list(annotate(dict(images), sample, views).items())  # keypoints, boundaries on the image
            if columns is None:
                columns = [n for n, _ in images]
            rows.append([im for _, im in images])

    sheet = os.path.join(preview_dir, "contact_sheet.png")
    hist = os.path.join(preview_dir, "parameters.png")
    if rows:
        contact_sheet(rows, columns or [], sheet, row_labels=None)
    legends = []
    for view in sorted({views.get(name) for name in columns or []} - {None}):
        if VIEWS[view].legend is not None:  # the colour key of those columns (e.g. the flow wheel)
            legends.append(os.path.join(preview_dir, VIEWS[view].legend_file or f"{view}_legend.png"))
            with open(legends[-1], "wb") as handle:
                handle.write(encode_png(VIEWS[view].legend()))
    parameter_histograms(dict(sorted(values.items())), hist, title=f"{card.get('recipe_name', '')}: drawn parameters ({scanned} samples)")
    return Report(_summary(folder, card, values, scanned, sheet if rows else "", hist, legends), sheet, hist, dict(values))


def _applied_ops(record: dict):
    """Every applied-operation entry of a record: the items of its lists of {"op", "params"}
    (a photo task's target_ops, degrade_ops, edge_ops, ...)."""
    for entries in record.values():
        if isinstance(entries, list) and entries and all(isinstance(e, dict) and "op" in e and "params" in e for e in entries):
            yield from entries


def _collect_parameters(record: dict, values: dict) -> None:
    for entry in _applied_ops(record):
        prefix = entry.get("label") or entry["op"]
        for name, value in entry["params"].items():
            if name == "seed" or value is None or isinstance(value, (list, dict)):
                continue
            values[f"{prefix}.{name}"].append(value)
    for name, value in record.get("summary", {}).items():  # tasks may add scalar summaries
        if isinstance(value, (int, float, str)):
            values[name].append(value)


def _summary(folder, card, values, scanned, sheet, hist, legends=()) -> str:
    counts = card.get("counts", {})
    lines = [
        f"{folder}: {card.get('task')} dataset, recipe {card.get('recipe_name')}, seed {card.get('seed')}, format {card.get('format')}, pairgen {card.get('pairgen_version')}",
        f"  {counts.get('samples', 0)} samples in {counts.get('shards', 0)} shards; {counts.get('inputs', 0)} inputs, {counts.get('skipped', 0)} skipped",
        "  fields:",
    ]
    for name, spec in card.get("fields", {}).items():
        shape = "x".join("?" if s is None else str(s) for s in spec.get("shape", [])) or "-"
        lines.append(f"    {name:<14} {spec.get('role', ''):<7} {spec.get('dtype', ''):<8} {shape:<12} {spec.get('view') or '':<9} {spec.get('meaning', '')[:70]}")
    if values:
        lines.append(f"  drawn parameters and per-sample values (over {scanned} samples; count, then min / mean / max or the most common values):")
        for name in sorted(values):
            vals = values[name]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                arr = np.asarray(vals, dtype=np.float64)
                lines.append(f"    {name:<36} n={len(vals):<6} {arr.min():.4g} / {arr.mean():.4g} / {arr.max():.4g}")
            else:
                common = ", ".join(f"{v}: {c}" for v, c in Counter(map(str, vals)).most_common(4))
                lines.append(f"    {name:<36} n={len(vals):<6} {common}")
    reasons = Counter(s["reason"].split(":")[0] for s in card.get("skipped", []))
    if reasons:
        lines.append("  skipped inputs by reason: " + "; ".join(f"{r} ({n})" for r, n in reasons.most_common()))
    if sheet:
        lines.append(f"  preview: {sheet}")
    for legend in legends:
        lines.append(f"  colour key: {legend}")
    lines.append(f"  parameter histograms: {hist}")
    return "\n".join(lines)


def find_sample(folder: str, key: str) -> tuple[str, dict]:
    card = read_card(folder)
    for path in shard_paths(folder, card):
        stats_path = os.path.join(folder, stats_file(os.path.basename(path)))
        if os.path.exists(stats_path):
            with open(stats_path, encoding="utf-8") as handle:
                stats = json.load(handle)
            if stats.get("first_key") is None or not stats["first_key"] <= key <= stats["last_key"]:
                continue
        for sample_key, fields in iter_samples(path):
            if sample_key == key:
                return path, fields
    raise PairgenError(f"{folder}: no sample with key {key!r}")


def replay_key(folder: str, key: str, out: str | None = None) -> tuple[bool, str]:
    path, stored = find_sample(folder, key)
    regenerated = replay(stored["json"], task=read_card(folder).get("task"))
    lines, ok = [f"{key} from {path}:"], True
    for name, value in regenerated.items():
        same = name in stored and encode(name, value) == encode(name, stored[name]) and np.array_equal(value, stored[name])
        ok &= same
        lines.append(f"  {name}: {'bit-exact' if same else 'DIFFERS'}")
        if out:
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, f"{key}.{name}"), "wb") as handle:
                handle.write(encode(name, value))
    if out:
        lines.append(f"  written to {out}/")
    return ok, "\n".join(lines)


def export_folder(folder: str, out: str, formats) -> tuple[int, int]:
    """Write every sample's flow/depth fields as .flo / KITTI PNG / PFM files; (samples, files)."""
    from .formats import EXPORT_FORMATS, export_sample

    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise UsageError(f"--to: unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(EXPORT_FORMATS)}")
    card = read_card(folder)
    specs = card.get("fields", {})
    if not any(spec.get("view") in ("flow", "depth") for spec in specs.values()):
        raise PairgenError(f"{folder}: a {card.get('task')} dataset has no flow or depth fields to export")
    count = files = 0
    for _, key, fields in iter_folder(folder, card):
        files += len(export_sample(fields, out, key, formats, specs))
        count += 1
    return count, files
