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
from .shards import UNVERIFIABLE, iter_samples, read_stats, shard_damage, stats_file

MAX_SCANNED = 2000  # samples read for parameter summaries; enough for histograms, cheap on big sets


@dataclass
class Report:
    text: str
    contact_sheet: str
    histograms: str
    parameters: dict
    problems: list  # damaged or missing shards, named with the last good key


def shard_paths(folder: str, card: dict) -> list[str]:
    return [os.path.join(folder, row["file"]) for row in card.get("shards", [])]


def iter_folder(folder: str, card: dict, problems: list | None = None):
    """(shard path, key, fields) of every sample. A missing or damaged shard (its checksum, or a
    sample that does not decode) is named with the last good key: appended to ``problems`` and
    skipped when a list is given, an error otherwise."""
    for path in shard_paths(folder, card):
        name = os.path.basename(path)
        damage = shard_damage(folder, name, read_stats(folder, name))
        if damage in UNVERIFIABLE:  # nothing to check against (`pairgen verify` lists these)
            damage = None
        if damage == "missing" or (damage and problems is None):
            _damaged(problems, f"{path}: {damage}")
            continue
        if damage:
            _damaged(problems, f"{path}: {damage}; reading what decodes")
        key = None
        try:
            for key, fields in iter_samples(path):
                yield path, key, fields
        except Exception as exc:  # noqa: BLE001 - any decoder's error: name the place, go on
            where = f"after sample {key}" if key else "at its first sample"
            _damaged(problems, f"{path}: unreadable {where}: {type(exc).__name__}: {exc}")


def _damaged(problems: list | None, message: str) -> None:
    if problems is None:
        raise PairgenError(message + "; run `pairgen verify --repair` on the folder")
    problems.append(message)


def field_views(card: dict) -> dict:
    """Field name -> its view (None: guessed from the array) for every picture field of a card."""
    return {name: spec.get("view") for name, spec in card.get("fields", {}).items() if spec.get("role") != "meta"}


def preview_folder(folder: str, preview_dir: str | None) -> tuple[str, str]:
    """Where previews go: --preview-dir, else FOLDER/preview, else (a read-only dataset) a
    folder in the user's cache; with a note when it is not the usual place."""
    candidates = [preview_dir] if preview_dir else [os.path.join(folder, "preview"), _cache_preview_dir(folder)]
    for candidate in candidates:
        try:
            os.makedirs(candidate, exist_ok=True)
            probe = os.path.join(candidate, f".write-test-{os.getpid()}")
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError as exc:
            last = exc
            continue
        note = "" if candidate == os.path.join(folder, "preview") or preview_dir else \
            f"  note: {folder} is not writable; previews written to {candidate} (choose with --preview-dir)"
        return candidate, note
    raise PairgenError(f"cannot write previews to {candidates[-1]}: {last.strerror}; choose a writable --preview-dir")


def _cache_preview_dir(folder: str) -> str:
    import hashlib

    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = hashlib.sha256(os.path.abspath(folder).encode()).hexdigest()[:12]
    return os.path.join(cache, "pairgen", "previews", f"{os.path.basename(os.path.abspath(folder))}-{tag}")


def inspect(folder: str, n_samples: int = 8, preview_dir: str | None = None) -> Report:
    from .preview import VIEWS, annotate, bin_chart, contact_sheet, field_caption, field_to_rgb, mask_overlay, parameter_histograms

    card = read_card(folder)
    fields = card.get("fields", {})
    views = field_views(card)
    order = [n for role in ("input", "target", "aux") for n, f in fields.items() if f.get("role") == role]
    # A task may say how its columns read best: their order, and masks shown over another field.
    preferred = [n for n in card.get("preview", {}).get("order", []) if n in order]
    order = preferred + [n for n in order if n not in preferred]
    overlays = {m: on for m, on in card.get("preview", {}).get("overlays", {}).items() if m in fields and on in fields}
    preview_dir, note = preview_folder(folder, preview_dir)

    rows, captions, columns, values, problems = [], [], None, defaultdict(list), []
    scanned = 0
    for _, key, sample in iter_folder(folder, card, problems):
        if scanned >= MAX_SCANNED:
            break
        scanned += 1
        record = sample.get("json", {})
        _collect_parameters(record, values)
        if len(rows) < n_samples:
            target = next((sample[n] for n in order if fields[n].get("role") == "target" and n in sample), None)
            images = [(name, field_to_rgb(name, sample[name], views.get(name),
                                          reference=target if views.get(name) in VIEWS and VIEWS[views[name]].over_target else None))
                      for name in order if name in sample]
            images = [(n, mask_overlay(field_to_rgb(overlays[n], sample[overlays[n]], views.get(overlays[n])), sample[n])
                       if n in overlays and overlays[n] in sample else im) for n, im in images]
            images = [(n, im) for n, im in images if im is not None]
            images = list(annotate(dict(images), sample, views).items())  # keypoints, boundaries on the image
            if columns is None:
                columns = [n for n, _ in images]
            rows.append([im for _, im in images])
            captions.append([field_caption(sample[n], views.get(n)) for n, _ in images])  # each tile's scale

    sheet = os.path.join(preview_dir, "contact_sheet.png")
    hist = os.path.join(preview_dir, "parameters.png")
    # the colour keys of the sheet's columns (flow wheel, depth bar), drawn in the sheet itself
    shown = [VIEWS[v] for v in sorted({views.get(name) for name in columns or []} - {None})]
    legends = [(view.legend_title, view.legend()) for view in shown if view.legend is not None]
    if rows:
        contact_sheet(rows, columns or [], sheet, row_labels=None, captions=captions, legends=legends)
    parameter_histograms(dict(sorted(values.items())), hist, title=f"{card.get('recipe_name', '')}: drawn parameters ({scanned} samples)")
    text = _summary(folder, card, values, scanned, sheet if rows else "", hist, [t for t, _ in legends])
    for key, entry in card.items():  # card statistics in standard bins (e.g. inpainting's hole ratio)
        if isinstance(entry, dict) and isinstance(entry.get("standard_bins"), dict):
            chart = os.path.join(preview_dir, f"{key}_bins.png")
            bin_chart(entry["standard_bins"], chart, title=f"{key} per standard bin (all samples)")
            text += (f"\n  {key} per standard bin: " + ", ".join(f"{k}: {v}" for k, v in entry["standard_bins"].items())
                     + f"\n  {key} chart: {chart}")
    if note:
        text += "\n" + note
    if problems:
        text += f"\n  DAMAGED: {len(problems)} problem(s); the rest was read (`pairgen verify --repair` rebuilds damaged shards):"
        text += "".join(f"\n    {p}" for p in problems)
    return Report(text, sheet, hist, dict(values), problems)


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
    lines.append("  preview files written:")
    if sheet:
        lines.append(f"    contact sheet: {sheet}" + (f" (colour keys in it: {'; '.join(legends)})" if legends else ""))
    lines.append(f"    parameter histograms: {hist}")
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


def export_folder(folder: str, out: str, formats) -> dict:
    """Write every sample's flow/depth fields as .flo / KITTI PNG / PFM files and/or BlenderProc's
    per-frame HDF5 files ("blenderproc"). Returns the export summary (also written to
    OUT/export_summary.json): samples, files, and per KITTI file the pixels stored invalid because
    their flow does not fit the format's range."""
    from .formats import EXPORT_FORMATS, BlenderProcWriter, export_sample
    from .shards import write_json_atomic

    known = (*EXPORT_FORMATS, "blenderproc")
    unknown = [f for f in formats if f not in known]
    if unknown or not formats:
        raise UsageError(f"--to: unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    card = read_card(folder)
    specs = card.get("fields", {})
    if not any(spec.get("view") in ("flow", "depth") for spec in specs.values()):
        raise PairgenError(f"{folder}: a {card.get('task')} dataset has no flow or depth fields to export")
    per_sample = tuple(f for f in formats if f in EXPORT_FORMATS)
    blenderproc = BlenderProcWriter(out, card) if "blenderproc" in formats else None
    count = files = 0
    out_of_range: dict[str, int] = {}
    for _, key, fields in iter_folder(folder, card):
        if per_sample:
            written = export_sample(fields, out, key, per_sample, specs)
            files += len(written)
            out_of_range.update({os.path.basename(p): n for p, n in written.items() if p.endswith("_kitti.png")})
        if blenderproc is not None:
            blenderproc.add(fields)
        count += 1
    if blenderproc is not None:
        blenderproc.close()
        files += blenderproc.files
    summary = {"samples": count, "files": files, "formats": list(formats),
               "kitti_invalid_for_range": {"pixels": sum(out_of_range.values()), "per_file": out_of_range}
               if "kitti" in formats else None}
    os.makedirs(out, exist_ok=True)
    write_json_atomic(os.path.join(out, "export_summary.json"), summary)
    return summary
