#!/usr/bin/env python
"""Train a pix2pix-style model on a pairgen shard folder.

    python train/fit.py shards/ --out runs/sr1
    python train/fit.py shards/ --out runs/sr1 --steps 20000 --batch-size 16 --gan --perceptual-weights vgg16.pth
    python train/fit.py shards/ --out runs/sr1 --resume
    python train/fit.py flow_shards/ --out runs/flow1

The folder's ``dataset.json`` says which fields are inputs and targets and the task's kind
(``train_kind``); the kind picks the loss, the metrics, the baseline and the output head (see
``train/kinds.py``). Cards without a kind with PNG inputs and targets train as generic
image-to-image. Inputs are brought to the target's
pixel grid first (bicubic), so super-resolution trains on the upsampled LR.

Writes to ``--out``: ``metrics.jsonl`` (one object per logged step: ``step``, ``loss``, ...;
evaluation rows have ``"split": "val"`` and the metrics with their ``baseline_*``),
``checkpoints/step_NNNNNN.pt`` (model, optimizer, step, RNG states, config) and
``samples/step_NNNNNN.png`` (rows of input | output | target of held-out samples).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python train/fit.py`: make `train` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np
import torch

from train.data import (Card, DataError, KeyHoldout, Prepare, TrainStream, channel_count, channels_first_fields,
                        check_shards, decode_field, eval_samples, first_sample, load_card, round_crop, to_channels_last,
                        to_model, worker_error_text)
from train.kinds import Kind, kind_of, sample_metrics
from train.losses import GANLoss, WeightsError, load_vgg16
from train.metrics import summarize
from train.models import Generator, PatchGAN

# settings that fix the model or the data order; --resume takes them from the checkpoint
RUN_SETTINGS = ("input", "target", "crop", "batch_size", "depth", "width", "norm", "dropout", "output", "lr", "beta1", "beta2",
                "gan", "lambda_task", "d_width", "d_layers", "perceptual_weights", "lambda_perceptual",
                "lambda_style", "seed", "shuffle_buffer", "val", "val_shards", "num_workers")
# settings --resume also takes from the checkpoint, unless typed again (then the new value wins)
SCHEDULE_SETTINGS = ("log_every", "eval_every", "ckpt_every", "keep_checkpoints", "val_samples")


# The model when --depth/--width/--crop are not given: pix2pix's own on a GPU; on a CPU one that
# trains at tens of samples per second, so a first run shows progress within seconds.
GPU_MODEL = {"depth": 8, "width": 64, "crop": 256}
CPU_MODEL = {"depth": 6, "width": 32, "crop": 128}


def default_model(args, device) -> None:
    """Fill the model settings the user did not give, by device (depth is fitted to the samples later)."""
    chosen = GPU_MODEL if device.type == "cuda" else CPU_MODEL
    args.depth_preferred = chosen["depth"]
    for key in ("width", "crop"):
        if getattr(args, key) is None:
            setattr(args, key, chosen[key])


def fitted_depth(args, height: int, width: int) -> int:
    """--depth as given, or the device's depth reduced until 2**depth fits the samples' smaller side."""
    if args.depth is not None:
        return args.depth
    depth = getattr(args, "depth_preferred", CPU_MODEL["depth"])
    while depth > 1 and 2**depth > min(height, width, args.crop):
        depth -= 1
    return depth


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the unset ones (None / off) whose help says what happens."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS or isinstance(action, argparse._StoreFalseAction):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python train/fit.py", description=__doc__.split("\n\n")[0],
                                formatter_class=_HelpFormatter)
    p.add_argument("folder", help="pairgen shard folder (dataset.json + .tar shards)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<name of the shard folder>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--input", action="append", default=None, metavar="FIELD",
                   help="train on this input field instead of the card's inputs (repeatable; e.g. damaged or damaged.png)")
    p.add_argument("--target", action="append", default=None, metavar="FIELD",
                   help="predict this field instead of the card's target (repeatable; e.g. mono, to train one restore stage)")
    p.add_argument("--val", default=None, help="held-out shard folder (default: the last --val-shards shards)")
    p.add_argument("--val-shards", type=int, default=1, help="shards held out for evaluation when there is no --val")
    p.add_argument("--val-samples", type=int, default=64, help="held-out samples evaluated")
    p.add_argument("--steps", type=int, default=2000, help="total optimizer steps")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (evaluate, checkpoint) after this much training time even before --steps; --resume continues")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop", type=int, default=None, help="random square crop side, target pixels (rounded down to a multiple "
                   f"of 2**depth; default {GPU_MODEL['crop']} on a GPU, {CPU_MODEL['crop']} on a CPU)")
    p.add_argument("--depth", type=int, default=None, help="U-Net levels (default: 8 = pix2pix unet_256 on a GPU, "
                   f"{CPU_MODEL['depth']} on a CPU; fewer when the samples are smaller than 2**depth px)")
    p.add_argument("--width", type=int, default=None, help="U-Net channels of the first level (default: 64 = pix2pix on a "
                   f"GPU, {CPU_MODEL['width']} on a CPU)")
    p.add_argument("--norm", choices=("batch", "instance"), default="batch")
    p.add_argument("--no-dropout", dest="dropout", action="store_false",
                   help="no dropout in the decoder (default: pix2pix's dropout in the inner decoder blocks)")
    p.add_argument("--output", choices=("auto", "tanh", "linear", "residual"), default="auto",
                   help="output head; auto: residual over the input for image tasks whose input has the target's channels, tanh for other image tasks, linear otherwise")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--gan", action="store_true", help="add pix2pix's conditional PatchGAN")
    p.add_argument("--lambda-task", "--lambda-l1", dest="lambda_task", type=float, default=None,
                   help="weight of the task loss (L1 for images); default 100 with --gan, else 1")
    p.add_argument("--d-width", type=int, default=64, help="PatchGAN channels of the first layer")
    p.add_argument("--d-layers", type=int, default=3, help="PatchGAN layers (3 = 70x70 patches)")
    p.add_argument("--perceptual-weights", default=None, help="local torchvision vgg16 state dict (.pth) for the perceptual loss")
    p.add_argument("--lambda-perceptual", type=float, default=1.0)
    p.add_argument("--lambda-style", type=float, default=1e5, help="Gram-matrix loss weight (style task)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader worker processes")
    p.add_argument("--shuffle-buffer", type=int, default=256, help="samples in each worker's shuffle buffer")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=500, help="evaluate and write a sample grid every N steps (and at the end)")
    p.add_argument("--ckpt-every", type=int, default=500, help="checkpoint every N steps (and at the end)")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="newest checkpoints kept")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads of the training process (default: torch's choice); 1 is often faster on a shared CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Destinations of the options the user actually typed (to tell them from defaults on --resume)."""
    typed = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    return {action.dest for action in parser._actions if typed & set(action.option_strings)}


# ---------------------------------------------------------------------------------------------
# the data a run trains and evaluates on


@dataclass
class RunData:
    card: Card
    kind: Kind
    prepare: Prepare  # for training (cropped)
    train_paths: list[str]
    train_keep: KeyHoldout | None
    val: list  # (key, inputs, targets) as stored, uncropped
    in_channels: int
    out_channels: int
    baseline_channels: int | None  # leading input channels that are the trivial prediction
    holdout: str  # in words, for the log


def segment_classes(card: Card) -> int:
    entry = card.fields[card.targets[0]]
    for source in (entry, card.raw):
        for key in ("num_classes", "classes"):
            value = source.get(key)
            if isinstance(value, int):
                return value
            if isinstance(value, (list, dict)):
                return len(value)
    raise DataError(f"{card.card_path}: a segmentation card needs 'num_classes' (or a 'classes' list) for field {card.targets[0]}")


def choose_fields(card: Card, inputs: list[str] | None, targets: list[str] | None) -> Card:
    """The card with --input / --target fields in place of its roles (names with or without
    their extension); an unknown or non-picture field is a DataError naming the ones there are."""
    pictures = [n for n, e in card.fields.items() if e.get("role") != "meta" and n.rsplit(".", 1)[-1] in ("png", "npy")]

    def resolve(names, default):
        if not names:
            return default
        out = []
        for name in names:
            match = [n for n in pictures if n == name or n.rsplit(".", 1)[0] == name]
            if not match:
                raise DataError(f"{card.card_path}: no field {name!r} to train on (fields: {', '.join(pictures)})")
            out.append(match[0])
        return tuple(out)
    chosen = dataclasses.replace(card, inputs=resolve(inputs, card.inputs), targets=resolve(targets, card.targets))
    if set(chosen.inputs) & set(chosen.targets):
        raise DataError(f"{card.card_path}: {', '.join(set(chosen.inputs) & set(chosen.targets))} is both input and target")
    return chosen


def prepare_data(args: argparse.Namespace) -> RunData:
    card = choose_fields(load_card(args.folder), args.input, args.target)
    try:
        kind = kind_of(card.raw, card.fields[card.targets[0]].get("view"))
    except KeyError as exc:
        raise DataError(f"{card.card_path}: {exc.args[0]}") from None
    if kind.input_baseline and not all(n.endswith(".png") for n in card.targets):
        raise DataError(f"{card.card_path}: task '{card.task}' has non-PNG targets {list(card.targets)} and no "
                        f"train_kind; the trainer knows image targets as PNG only")
    check_shards(card)
    sample = first_sample(card)
    where = f"{card.shards[0].path}: sample {sample['__key__']}"
    decoded = {n: decode_field(n, sample[n], where) for n in card.inputs + card.targets}
    channels_first = channels_first_fields(card)
    for name, array in decoded.items():  # the card's shapes, where given, must be what the shards hold
        shape = card.fields[name].get("shape")
        if shape and all(isinstance(s, int) for s in shape) and list(array.shape) != list(shape):
            raise DataError(f"{where}: field {name} has shape {list(array.shape)} but {card.card_path} says {shape}")
        if name in channels_first:
            decoded[name] = to_channels_last(array, name, where)
    in_channels = sum(channel_count(decoded[n]) for n in card.inputs)
    labels = kind.labels
    out_channels = segment_classes(card) if labels else sum(channel_count(decoded[n]) for n in card.targets)
    first_in = channel_count(decoded[card.inputs[0]])
    baseline_channels = first_in if kind.input_baseline and first_in in (out_channels, 1) else None

    height, width = decoded[card.targets[0]].shape[:2]
    args.depth = fitted_depth(args, height, width)
    multiple = 2**args.depth
    crop = round_crop(args.crop, height, width, multiple)
    if crop == 0:
        raise DataError(f"{where}: targets of {height}x{width} are too small for a U-Net of depth {args.depth} "
                        f"(needs {multiple} px); use a smaller --depth")
    prepare = Prepare(card.inputs, card.targets, labels=labels, crop=crop, channels_first=channels_first)
    eval_prepare = Prepare(card.inputs, card.targets, labels=labels, crop=None, channels_first=channels_first)

    paths = [str(s.path) for s in card.shards if s.samples != 0]
    train_keep = None
    if args.val:
        val_card = choose_fields(load_card(args.val), args.input, args.target)
        if (val_card.task, val_card.inputs, val_card.targets) != (card.task, card.inputs, card.targets):
            raise DataError(f"{val_card.card_path}: task/inputs/targets {val_card.task} {list(val_card.inputs)} "
                            f"{list(val_card.targets)} differ from {card.card_path}")
        check_shards(val_card)
        train_paths, val_paths, val_keep = paths, [str(s.path) for s in val_card.shards], None
        holdout = f"--val {args.val}"
    elif len(paths) > args.val_shards >= 1:
        train_paths, val_paths, val_keep = paths[: -args.val_shards], paths[-args.val_shards :], None
        holdout = f"last {args.val_shards} shard(s): {', '.join(Path(p).name for p in val_paths)}"
    else:  # one shard: hold out samples instead
        train_paths, val_paths = paths, paths
        train_keep, val_keep = KeyHoldout(validation=False), KeyHoldout(validation=True)
        holdout = "samples whose key % 10 == 9 (single shard)"
    val = eval_samples(val_paths, eval_prepare, args.val_samples, keep=val_keep)
    if not val:
        raise DataError(f"no held-out samples ({holdout}); add shards or give --val DIR")
    args.crop = crop
    return RunData(card, kind, prepare, train_paths, train_keep, val, in_channels, out_channels,
                   baseline_channels, holdout)


# ---------------------------------------------------------------------------------------------
# pictures


def panels(data: RunData, inputs: tuple, output: np.ndarray, targets: tuple) -> list[np.ndarray]:
    """One sample's pictures: every input field, the prediction, every target field, each
    through its field's view (``pairgen.preview.VIEWS``, as ``pairgen inspect`` shows them);
    the prediction is shown in its target's convention and colour scale."""
    from pairgen.preview import field_to_rgb

    fields = data.card.fields
    names = data.card.inputs + data.card.targets
    stored = [a.transpose(2, 0, 1) if n in data.prepare.channels_first else a for n, a in zip(names, inputs + targets)]
    shown = [field_to_rgb(n, a, fields[n].get("view")) for n, a in zip(names, stored)]
    first = data.card.targets[0]
    guess = field_to_rgb(first, data.kind.prediction(output), fields[first].get("view"), reference=stored[len(inputs)])
    n = len(data.card.inputs)
    return shown[:n] + [guess] + shown[n:]


def write_grid(path: Path, rows: list[list[np.ndarray]]) -> None:
    height = max(p.shape[0] for row in rows for p in row)
    lines = []
    for row in rows:
        padded = [np.pad(p, ((0, height - p.shape[0]), (0, 2), (0, 0))) for p in row]
        lines.append(np.concatenate(padded, axis=1))
    width = max(line.shape[1] for line in lines)
    grid = np.concatenate([np.pad(line, ((0, 2), (0, width - line.shape[1]), (0, 0))) for line in lines], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


# ---------------------------------------------------------------------------------------------
# evaluation, checkpoints, log


def baseline_for(data: RunData, x: torch.Tensor) -> torch.Tensor | None:
    """The trivial prediction from the input: its leading channels (the bicubic upsampling for
    super-resolution), a gray input repeated to the target's channels."""
    if data.baseline_channels is None:
        return None
    base = x[:, : data.baseline_channels]
    return base.expand(-1, data.out_channels, -1, -1) if base.shape[1] == 1 else base


@torch.no_grad()
def evaluate(model, data: RunData, device, loss_kwargs: dict, grid_path: Path | None, grid_samples: int = 4) -> dict:
    """Mean loss and metrics over the held-out samples (whole images, one at a time since sizes
    may vary); optionally writes the sample grid of the first ``grid_samples``."""
    model.eval()
    per_sample: dict[str, list[float]] = defaultdict(list)
    losses, rows = [], []
    for i, (_key, inputs, targets) in enumerate(data.val):
        x = to_model([torch.from_numpy(a)[None].to(device) for a in inputs])
        y = to_model([torch.from_numpy(a)[None].to(device) for a in targets], labels=data.kind.labels)
        output = model(x)
        loss, _ = data.kind.loss(output, y, x, **loss_kwargs)
        losses.append(float(loss))
        for k, v in sample_metrics(data.kind, output, y, baseline_for(data, x), x).items():
            per_sample[k] += v
        if grid_path is not None and i < grid_samples:
            rows.append(panels(data, inputs, output[0].float().cpu().numpy(), targets))
    model.train()
    if rows:
        write_grid(grid_path, rows)
    return {"loss": float(np.mean(losses)), **summarize(per_sample), "n": len(data.val)}


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out: Path, step: int, nets: dict, config: dict, keep: int) -> Path:
    """Atomic write of ``checkpoints/step_NNNNNN.pt``; older ones beyond ``keep`` are removed."""
    folder = out / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:06d}.pt"
    state = {"step": step, "config": config, "rng": rng_state(),
             **{name: obj.state_dict() for name, obj in nets.items()}}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in sorted(folder.glob("step_*.pt"))[:-keep] if keep > 0 else []:
        old.unlink()
    return path


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


def trim_log(path: Path, step: int) -> None:
    """On resume, drop log rows written after the checkpoint (they will be written again)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(r + "\n" for r in rows))


def log_row(path: Path, row: dict) -> None:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    with path.open("a") as f:
        f.write(json.dumps(clean) + "\n")


# ---------------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"--device {name}: CUDA is not available on this machine")
    return device


def apply_resume(args: argparse.Namespace, explicit: set[str], out: Path) -> dict | None:
    """Load the latest checkpoint; its run settings replace the defaults, and an explicitly
    typed setting that differs is an error (it would change the model or the data order)."""
    path = latest_checkpoint(out)
    if path is None:
        raise DataError(f"{out / 'checkpoints'}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read checkpoint ({str(exc).splitlines()[0]})") from None
    saved = state["config"]
    for key in RUN_SETTINGS:
        if key in explicit and key in saved and getattr(args, key) != saved[key]:
            raise DataError(f"--resume: --{key.replace('_', '-')} {getattr(args, key)} differs from the "
                            f"checkpoint's {saved[key]} ({path}); start a new --out instead")
        if key in saved:
            setattr(args, key, saved[key])
    for key in SCHEDULE_SETTINGS:
        if key not in explicit and key in saved:
            setattr(args, key, saved[key])
    state["path"] = path
    return state


def train(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path("runs") / Path(args.folder).resolve().name
    state = apply_resume(args, explicit_options(parser, argv), out) if args.resume else None
    if not args.resume and latest_checkpoint(out) is not None:
        raise DataError(f"{out}: holds checkpoints already; use --resume to continue or another --out")
    for name in ("steps", "batch_size", "val_samples", "log_every", "eval_every", "ckpt_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lambda_task is None:
        args.lambda_task = 100.0 if args.gan else 1.0

    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(args.device)
    default_model(args, device)
    if world_size > 1:  # launched by torchrun: one process per device, the data split by rank
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    main_process = rank == 0

    data = prepare_data(args)
    vgg = load_vgg16(args.perceptual_weights).to(device) if args.perceptual_weights else None
    limitation = data.kind.without_vgg if vgg is None else ""
    if limitation and main_process:
        print(f"note: {limitation}", file=sys.stderr, flush=True)
    if args.gan and not data.kind.supports_gan:
        raise DataError(f"--gan is not supported for {data.kind.name} tasks")
    output = args.output
    if output == "auto":
        output = data.kind.head(data.baseline_channels, data.out_channels)
    args.output = output
    config = {key: getattr(args, key) for key in RUN_SETTINGS + SCHEDULE_SETTINGS}
    config.update(folder=str(args.folder), task=data.card.task, kind=data.kind.name, in_channels=data.in_channels,
                  out_channels=data.out_channels, steps=args.steps)
    if limitation:
        config["limitation"] = limitation

    torch.manual_seed(args.seed)
    model = Generator(data.in_channels, data.out_channels, depth=args.depth, width=args.width, norm=args.norm,
                      dropout=args.dropout, output=output).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    nets: dict = {"model": model, "optimizer": optimizer}
    disc = None
    if args.gan:
        disc = PatchGAN(data.in_channels + data.out_channels, args.d_width, args.d_layers, args.norm).to(device)
        nets.update(disc=disc, disc_optimizer=torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(args.beta1, args.beta2)))
    start = 0
    if state is not None:
        for name, obj in nets.items():
            obj.load_state_dict(state[name])
        set_rng_state(state["rng"])
        start = state["step"]
    train_model = model
    if world_size > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "metrics.jsonl"
    if main_process:
        if state is not None:
            trim_log(log_path, start)
        (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    loss_kwargs = {"vgg": vgg, "perceptual_weight": args.lambda_perceptual, "style_weight": args.lambda_style}
    gan_loss = GANLoss()
    say = print if main_process else (lambda *a, **k: None)
    say(f"{data.card.card_path}: task {data.card.task} ({data.kind.name}), {len(data.train_paths)} training shard(s), "
        f"held out: {data.holdout} ({len(data.val)} samples); {data.in_channels} -> {data.out_channels} channels, "
        f"crop {args.crop}, U-Net depth {args.depth} width {args.width}, output {output}, device {device}"
        + (f"; resuming at step {start} from {state['path']}" if state is not None else ""), flush=True)

    stream = TrainStream(data.train_paths, data.prepare, batch_size=args.batch_size, seed=args.seed, start_batch=start,
                         rank=rank, world_size=world_size, keep=data.train_keep, shuffle_buffer=args.shuffle_buffer)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=args.num_workers,
                                         pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(args.seed))  # keeps the global RNG untouched
    batches = iter(loader)

    from tqdm import tqdm

    bar = tqdm(total=args.steps, initial=start, disable=True if (args.no_progress or not main_process) else None,
               unit="step", dynamic_ncols=True)
    window: dict[str, list[float]] = defaultdict(list)
    window_start, data_wait = time.perf_counter(), 0.0
    deadline = time.perf_counter() + args.max_minutes * 60 if args.max_minutes else math.inf
    step = start
    model.train()

    def checkpoint_and_eval(step: int, final: bool = False) -> None:
        if not main_process:
            return
        if final or step % args.eval_every == 0:
            result = evaluate(model, data, device, loss_kwargs, out / "samples" / f"step_{step:06d}.png")
            log_row(log_path, {"step": step, "split": "val", **result})
            head = data.kind.headline
            base = result.get(f"baseline_{head}")
            msg = f"step {step}: val loss {result['loss']:.4f}, {head} {result.get(head, float('nan')):.4f}"
            bar.write(msg + (f" (baseline {base:.4f})" if base is not None else ""))
        if final or step % args.ckpt_every == 0:
            save_checkpoint(out, step, nets, config, args.keep_checkpoints)

    try:
        while step < args.steps and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                inputs, targets = next(batches)
            except DataError:
                raise
            except Exception as exc:  # a worker's error arrives wrapped in its traceback text
                raise DataError(worker_error_text(exc)) from None
            data_wait += time.perf_counter() - t0
            x = to_model([t.to(device, non_blocking=True) for t in inputs])
            y = to_model([t.to(device, non_blocking=True) for t in targets], labels=data.kind.labels)
            fake = train_model(x)
            parts: dict[str, float] = {}
            if disc is not None:
                disc.requires_grad_(True)
                nets["disc_optimizer"].zero_grad(set_to_none=True)
                d_loss = 0.5 * (gan_loss(disc(torch.cat([x, fake.detach()], 1)), False)
                                + gan_loss(disc(torch.cat([x, y], 1)), True))
                d_loss.backward()
                nets["disc_optimizer"].step()
                disc.requires_grad_(False)
                parts["d_loss"] = float(d_loss.detach())
            optimizer.zero_grad(set_to_none=True)
            rec, rec_parts = data.kind.loss(fake, y, x, **loss_kwargs)
            loss = args.lambda_task * rec
            parts.update(rec_parts)
            if disc is not None:
                g_gan = gan_loss(disc(torch.cat([x, fake], 1)), True)
                parts["g_gan"] = float(g_gan.detach())
                loss = loss + g_gan
            loss.backward()
            optimizer.step()
            step += 1
            window["loss"].append(float(loss.detach()))
            for k, v in parts.items():
                window[k].append(v)
            if step % args.log_every == 0 or step == args.steps or time.perf_counter() >= deadline:
                elapsed = time.perf_counter() - window_start
                n = len(window["loss"])
                row = {"step": step, **{k: float(np.mean(v)) for k, v in window.items()},
                       "samples_per_s": n * args.batch_size / max(elapsed, 1e-9),
                       "data_wait_frac": data_wait / max(elapsed, 1e-9)}
                if main_process:
                    log_row(log_path, row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", samples_s=f"{row['samples_per_s']:.1f}")
                window.clear()
                window_start, data_wait = time.perf_counter(), 0.0
            bar.update(1)
            if step < args.steps and time.perf_counter() < deadline:
                checkpoint_and_eval(step)
        checkpoint_and_eval(step, final=True)
        if world_size > 1:  # no rank tears gloo down while another still uses it (SIGABRT otherwise)
            torch.distributed.barrier()
    except KeyboardInterrupt:
        if main_process and step > start:
            path = save_checkpoint(out, step, nets, config, args.keep_checkpoints)
            bar.write(f"interrupted: saved {path}; continue with --resume")
        return 130
    finally:
        bar.close()
        del batches  # stops the DataLoader workers
        if world_size > 1:
            torch.distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return train(argv)
    except (DataError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
