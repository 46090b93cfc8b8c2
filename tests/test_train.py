"""The reference trainer (train/): data stream, models, losses, metrics and the fit.py CLI.

Training runs are tiny (32 px crops, depth-4 width-8 U-Nets, a few dozen steps) and run
in-process through ``fit.main``; one subprocess checks the real command line. Real shards come
from ``pairgen.api.build``; hand-written shards (webdataset.TarWriter, following the dataset
card contract) cover flow, depth, other tasks and broken input.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import webdataset as wds

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `train/` is a folder of the repository, not an installed package

from train import fit  # noqa: E402
from train.data import (DataError, KeyHoldout, Prepare, TrainStream, check_shards, epoch_samples, load_card,
                        to_model, worker_error_text)
from train.kinds import KINDS
from train.losses import VGG16Features, WeightsError, depth_loss, gram_matrix, load_vgg16
from train.metrics import depth_metrics, epe, psnr, ssim
from train.models import Generator, PatchGAN  # noqa: E402

TINY = ["--crop", "32", "--depth", "4", "--width", "8", "--batch-size", "4", "--no-progress", "--val-samples", "4"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small models gain nothing from a second thread, and on a shared 2-core machine spinning
    thread pools beside the loader workers multiply the run time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# shards


@pytest.fixture(scope="session")
def sr_shards(tmp_path_factory) -> Path:
    """Real super-resolution shards from the embedded photos: 64 px HR, 16 px LR, 16 per shard."""
    from pairgen.api import build

    out = tmp_path_factory.mktemp("sr") / "shards"
    build("superres", src=[], out=str(out), crop=64, crops_per_image=2, scale=4, limit=40, seed=0, workers=1,
          shard_size=16, progress=False)
    return out


def _png(image: np.ndarray) -> bytes:
    if image.ndim == 3:
        image = image[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    assert ok
    return buf.tobytes()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_shards(folder: Path, task: str, fields: dict, make, count: int, shard_size: int, **card_extra) -> Path:
    """Shards following the pairgen contract: ``fields`` name -> card entry; ``make(i)`` the
    sample's encoded fields."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for start in range(0, count, shard_size):
        name = f"{task}-{len(shards):06d}.tar"
        with wds.TarWriter(str(folder / name), encoder=False, mtime=0) as writer:
            for i in range(start, min(count, start + shard_size)):
                writer.write({"__key__": f"{i:06d}", **make(i)})
        shards.append({"file": name, "samples": min(count, start + shard_size) - start})
    card = {"pairgen_version": "0.1.0", "task": task, "recipe_name": task, "seed": 0, "format": "wds",
            "shards": shards, "counts": {"samples": count}, "fields": fields, **card_extra}
    (folder / "dataset.json").write_text(json.dumps(card))
    return folder


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random RGB image (blurred noise), uint8."""
    noise = rng.random((size // 4, size // 4, 3)).astype(np.float32)
    return (cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def flow_shards(folder: Path, count: int = 24) -> Path:
    """img1 is img0 moved by an integer (dx, dy); flow.npy holds that motion."""
    def make(i):
        rng = np.random.default_rng(i)
        dx, dy = int(rng.integers(-3, 4)), int(rng.integers(-3, 4))
        img0 = texture(rng, 48)
        img1 = np.roll(img0, (dy, dx), axis=(0, 1))
        flow = np.broadcast_to(np.array([dx, dy], np.float32), (48, 48, 2)).copy()
        return {"img0.png": _png(img0), "img1.png": _png(img1), "flow.npy": _npy(flow), "json": b"{}"}
    fields = {"img0.png": {"role": "input", "dtype": "uint8", "shape": [48, 48, 3], "meaning": "frame 0"},
              "img1.png": {"role": "input", "dtype": "uint8", "shape": [48, 48, 3], "meaning": "frame 1"},
              "flow.npy": {"role": "target", "dtype": "float32", "shape": [48, 48, 2], "meaning": "dx, dy pixels"},
              "json": {"role": "meta", "dtype": "json", "shape": [], "meaning": "record"}}
    return write_shards(folder, "flow", fields, make, count, 8)


def depth_shards(folder: Path, count: int = 24) -> Path:
    """Depth grows with brightness; a band of invalid (0) pixels. One shard: the trainer holds
    out samples (keys ending in 9) instead of shards."""
    def make(i):
        rng = np.random.default_rng(i)
        rgb = texture(rng, 48)
        depth = 1.0 + 4.0 * rgb.mean(axis=2).astype(np.float32) / 255.0
        depth[:4] = 0.0
        return {"rgb.png": _png(rgb), "depth.npy": _npy(depth.astype(np.float32))}
    fields = {"rgb.png": {"role": "input", "dtype": "uint8", "shape": [48, 48, 3], "meaning": "image"},
              "depth.npy": {"role": "target", "dtype": "float32", "shape": [48, 48], "meaning": "planar depth, 0 invalid"}}
    return write_shards(folder, "depth", fields, make, count, count)


def colorize_shards(folder: Path, count: int = 16) -> Path:
    """A task the trainer has no entry for: generic image-to-image (gray -> RGB)."""
    def make(i):
        rgb = texture(np.random.default_rng(i), 32)
        return {"gray.png": _png(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), "rgb.png": _png(rgb)}
    fields = {"gray.png": {"role": "input", "dtype": "uint8", "shape": [32, 32], "meaning": "gray"},
              "rgb.png": {"role": "target", "dtype": "uint8", "shape": [32, 32, 3], "meaning": "colour"}}
    return write_shards(folder, "colorize", fields, make, count, 8)


def rows(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r.get("split") != "val"], [r for r in lines if r.get("split") == "val"]


# ---------------------------------------------------------------------------------------------
# training runs


def test_superres_on_pairgen_shards_trains_evaluates_and_checkpoints(sr_shards, tmp_path):
    run = tmp_path / "run"
    # tanh output from a random start: the loss must fall clearly within 40 steps
    assert fit.main([str(sr_shards), "--out", str(run), "--steps", "40", "--eval-every", "20", "--ckpt-every", "20",
                     "--log-every", "5", "--num-workers", "1", "--output", "tanh", "--lr", "2e-3", *TINY]) == 0
    train_rows, val_rows = rows(run)
    assert [r["step"] for r in train_rows] == list(range(5, 41, 5))
    assert all("loss" in r and "samples_per_s" in r for r in train_rows)
    assert np.mean([r["loss"] for r in train_rows[-2:]]) < 0.7 * np.mean([r["loss"] for r in train_rows[:2]])
    assert [r["step"] for r in val_rows] == [20, 40]
    for r in val_rows:
        assert r["n"] == 4 and np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1
        assert 15 < r["baseline_psnr"] < 40  # bicubic upsampling of the real LR
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000020.pt", "step_000040.pt"]
    state = torch.load(run / "checkpoints" / "step_000040.pt", weights_only=False)
    assert state["step"] == 40 and {"model", "optimizer", "rng", "config"} <= set(state)
    grid = cv2.imread(str(run / "samples" / "step_000040.png"))
    assert grid is not None and grid.shape[0] >= 4 * 64  # four held-out samples, whole 64 px images
    # the default residual head starts at the bicubic baseline exactly
    run2 = tmp_path / "residual"
    assert fit.main([str(sr_shards), "--out", str(run2), "--steps", "1", "--num-workers", "0", *TINY]) == 0
    (val,) = rows(run2)[1]
    assert abs(val["psnr"] - val["baseline_psnr"]) < 0.5


def test_resume_continues_exactly(sr_shards, tmp_path):
    """7 steps + resume to 16 == 16 steps straight: same weights, same losses, 2 loader workers
    (the resumed workers must skip exactly the batches each already delivered)."""
    common = ["--log-every", "1", "--eval-every", "100", "--ckpt-every", "100", "--num-workers", "2",
              "--seed", "3", *TINY]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert fit.main([str(sr_shards), "--out", str(whole), "--steps", "16", *common]) == 0
    assert fit.main([str(sr_shards), "--out", str(parts), "--steps", "7", *common]) == 0
    # a resume names only what changes; the run settings come from the checkpoint
    assert fit.main([str(sr_shards), "--out", str(parts), "--resume", "--steps", "16", "--no-progress"]) == 0
    a = torch.load(whole / "checkpoints" / "step_000016.pt", weights_only=False)
    b = torch.load(parts / "checkpoints" / "step_000016.pt", weights_only=False)
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    loss_a = [r["loss"] for r in rows(whole)[0]]
    loss_b = [r["loss"] for r in rows(parts)[0]]
    assert [r["step"] for r in rows(parts)[0]] == list(range(1, 17))
    assert loss_a == loss_b
    # changing a run setting on resume is refused
    assert fit.main([str(sr_shards), "--out", str(parts), "--resume", "--steps", "20", "--batch-size", "8"]) == 1
    # a fresh run into a folder with checkpoints is refused
    assert fit.main([str(sr_shards), "--out", str(parts), "--steps", "20"]) == 1


@pytest.mark.parametrize("maker, kind_metrics", [
    (flow_shards, ("epe", "baseline_epe")),
    (depth_shards, ("absrel", "delta1", "baseline_absrel", "baseline_delta1")),
    (colorize_shards, ("psnr", "ssim", "baseline_psnr", "baseline_ssim")),
])
def test_other_tasks_train_with_their_metrics(maker, kind_metrics, tmp_path):
    shards = maker(tmp_path / "shards")
    run = tmp_path / "run"
    assert fit.main([str(shards), "--out", str(run), "--steps", "30", "--eval-every", "30", "--log-every", "10",
                     "--num-workers", "0", "--lr", "1e-3", *TINY]) == 0
    train_rows, (val,) = rows(run)
    for key in kind_metrics:
        assert np.isfinite(val[key]), key
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    if maker is flow_shards:  # 2 inputs x 3 channels -> (dx, dy)
        assert json.loads((run / "config.json").read_text())["in_channels"] == 6
        assert val["epe"] < val["baseline_epe"] * 1.5
    if maker is depth_shards:  # single shard: samples 000009 and 000019 held out
        assert val["n"] == 2


def test_separate_validation_folder(tmp_path, capsys):
    train_dir, val_dir = colorize_shards(tmp_path / "train", 16), colorize_shards(tmp_path / "val", 8)
    run = tmp_path / "run"
    assert fit.main([str(train_dir), "--out", str(run), "--val", str(val_dir), "--steps", "2", "--num-workers", "0",
                     *TINY]) == 0
    (val,) = rows(run)[1]
    assert val["n"] == 4  # --val-samples 4 of the 8
    assert "2 training shard(s)" in capsys.readouterr().out  # nothing held out of the training folder
    other = flow_shards(tmp_path / "flow", 8)
    assert fit.main([str(train_dir), "--out", str(tmp_path / "run2"), "--val", str(other), "--steps", "2", *TINY]) == 1
    assert "differ from" in capsys.readouterr().err


def test_gan_and_perceptual_loss_with_a_local_vgg_file(sr_shards, tmp_path):
    weights = tmp_path / "vgg16.pth"
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # other torchvision keys are ignored
    torch.save(state, weights)
    run = tmp_path / "run"
    assert fit.main([str(sr_shards), "--out", str(run), "--steps", "4", "--log-every", "2", "--num-workers", "0",
                     "--gan", "--d-width", "8", "--perceptual-weights", str(weights), *TINY]) == 0
    train_rows, _ = rows(run)
    assert {"loss", "l1", "perceptual", "d_loss", "g_gan"} <= set(train_rows[-1])
    ckpt = torch.load(run / "checkpoints" / "step_000004.pt", weights_only=False)
    assert {"disc", "disc_optimizer"} <= set(ckpt)


def test_perceptual_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_vgg16(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsError, match=r"bad.pth: not a torchvision VGG16 state dict: missing features.0.weight"):
        load_vgg16(bad)
    wrong = tmp_path / "wrong.pth"
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, wrong)
    with pytest.raises(WeightsError, match=r"features.0.weight has shape \(64, 1, 3, 3\)"):
        load_vgg16(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="not a readable torch state dict"):
        load_vgg16(garbage)


# ---------------------------------------------------------------------------------------------
# bad input: a message naming the file and the problem, exit 1, no traceback, no hang


def _good(folder: Path) -> Path:
    return colorize_shards(folder, count=16)


def _break_no_card(folder):
    (folder / "dataset.json").unlink()
    return "dataset.json: missing"


def _break_empty(folder):
    for p in folder.iterdir():
        p.unlink()
    return "the folder is empty"


def _break_corrupt_tar(folder):
    (folder / "colorize-000001.tar").write_bytes(b"\x00garbage" * 300)
    return "colorize-000001.tar: not a readable tar file"


def _break_truncated_tar(folder):
    path = folder / "colorize-000001.tar"
    path.write_bytes(path.read_bytes()[:3000])
    return "colorize-000001.tar: truncated"


def _break_fields(folder):
    card = json.loads((folder / "dataset.json").read_text())
    card["fields"]["color.png"] = card["fields"].pop("rgb.png")
    (folder / "dataset.json").write_text(json.dumps(card))
    return "need ['color.png']"


def _break_shape(folder):
    card = json.loads((folder / "dataset.json").read_text())
    card["fields"]["rgb.png"]["shape"] = [64, 64, 3]
    (folder / "dataset.json").write_text(json.dumps(card))
    return "field rgb.png has shape [32, 32, 3] but"


def _break_missing_shard(folder):
    (folder / "colorize-000000.tar").unlink()
    return "colorize-000000.tar: listed in"


def _break_count(folder):
    card = json.loads((folder / "dataset.json").read_text())
    card["shards"][0]["samples"] = 9
    (folder / "dataset.json").write_text(json.dumps(card))
    return "holds 8 samples but"


def _break_json(folder):
    (folder / "dataset.json").write_text("{")
    return "dataset.json: not valid JSON"


@pytest.mark.parametrize("damage", [_break_no_card, _break_empty, _break_corrupt_tar, _break_truncated_tar,
                                    _break_fields, _break_shape, _break_missing_shard, _break_count, _break_json])
def test_bad_input_is_reported_by_file(damage, tmp_path, capsys):
    folder = _good(tmp_path / "shards")
    expected = damage(folder)
    assert fit.main([str(folder), "--out", str(tmp_path / "run"), "--steps", "2", *TINY]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_corrupt_png_inside_a_worker_is_reported_cleanly(tmp_path, capsys):
    """A sample that only fails when decoded, in a DataLoader worker process."""
    folder = _good(tmp_path / "shards")
    path = folder / "colorize-000000.tar"
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT")  # damage the first PNG's pixel data, keep the tar intact
    data[at + 4 : at + 40] = b"\xff" * 36
    path.write_bytes(bytes(data))
    assert fit.main([str(folder), "--out", str(tmp_path / "run"), "--steps", "6", "--num-workers", "1", *TINY]) == 1
    err = capsys.readouterr().err
    assert "colorize-000000.tar: sample 000000: field gray.png: not a decodable PNG" in err
    assert "Traceback" not in err


def test_cli_exit_status_and_message(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, str(REPO / "train" / "fit.py"), str(tmp_path / "empty"), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'empty'}: the folder is empty (expected dataset.json and .tar shards)"


# ---------------------------------------------------------------------------------------------
# the data stream


def _keys(stream) -> list[str]:
    return [s["__key__"] for s in stream]


def test_shards_and_samples_split_across_slots_without_overlap(tmp_path):
    folder = colorize_shards(tmp_path / "s", count=40)  # 5 shards of 8
    paths = [str(s.path) for s in load_card(folder).shards]
    everything = sorted(f"{i:06d}" for i in range(40))
    for slots in (2, 4, 8):  # 8 slots > 5 shards: split by sample instead
        parts = [_keys(epoch_samples(paths, {"gray.png"}, seed=1, epoch=0, slot=s, slots=slots, keep=None,
                                     shuffle_buffer=8)) for s in range(slots)]
        assert sorted(sum(parts, [])) == everything
        assert all(parts)
    once = _keys(epoch_samples(paths, {"gray.png"}, seed=1, epoch=0, slot=0, slots=1, keep=None, shuffle_buffer=8))
    assert once == _keys(epoch_samples(paths, {"gray.png"}, seed=1, epoch=0, slot=0, slots=1, keep=None, shuffle_buffer=8))
    assert once != _keys(epoch_samples(paths, {"gray.png"}, seed=2, epoch=0, slot=0, slots=1, keep=None, shuffle_buffer=8))
    assert once != _keys(epoch_samples(paths, {"gray.png"}, seed=1, epoch=1, slot=0, slots=1, keep=None, shuffle_buffer=8))
    held = _keys(epoch_samples(paths, {"gray.png"}, seed=1, epoch=0, slot=0, slots=1, keep=KeyHoldout(True), shuffle_buffer=8))
    assert sorted(held) == ["000009", "000019", "000029", "000039"]


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_started_at_batch_k_equals_the_tail_of_a_fresh_stream(tmp_path, workers):
    folder = colorize_shards(tmp_path / "s", count=24)
    card = load_card(folder)
    prepare = Prepare(card.inputs, card.targets, crop=16)
    paths = [str(s.path) for s in card.shards]

    def take(start: int, n: int):
        stream = TrainStream(paths, prepare, batch_size=5, seed=7, start_batch=start, shuffle_buffer=6)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
        it = iter(loader)
        return [next(it) for _ in range(n)]

    fresh = take(0, 12)  # 60 samples: crosses epochs (24 per epoch)
    resumed = take(5, 7)
    for (xa, ya), (xb, yb) in zip(fresh[5:], resumed):
        assert all(torch.equal(a, b) for a, b in zip(xa + ya, xb + yb))


def test_joint_crop_keeps_input_and_target_aligned():
    rng = np.random.default_rng(0)
    hr = texture(rng, 64)
    lr = cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA)
    sample = {"__key__": "000001", "__url__": "mem", "lr.png": _png(lr), "hr.png": _png(hr)}
    prepare = Prepare(("lr.png",), ("hr.png",), crop=32)
    (lr_up,), (hr_crop,) = prepare(sample, np.random.default_rng(5))
    assert lr_up.shape == hr_crop.shape == (32, 32, 3) and lr_up.dtype == np.uint8
    x = lr_up.astype(np.float32)
    y = hr_crop.astype(np.float32)
    assert np.abs(x - y).mean() < 0.5 * np.abs(x - np.roll(y, 6, axis=1)).mean()
    # the same rng draws the same crop; the crop is not always the same
    again, _ = prepare(sample, np.random.default_rng(5))
    other, _ = prepare(sample, np.random.default_rng(6))
    assert np.array_equal(lr_up, again[0]) and not np.array_equal(lr_up, other[0])
    # model convention: channels first, float32 in [-1, 1]
    batch = to_model([torch.from_numpy(lr_up)[None], torch.from_numpy(lr_up[:, :, 0])[None]])
    assert batch.shape == (1, 4, 32, 32) and batch.dtype == torch.float32
    assert torch.allclose(batch[0, 0], torch.from_numpy(x[:, :, 0]) / 127.5 - 1, atol=1e-6)
    assert torch.equal(batch[0, 3], batch[0, 0])


def test_check_shards_and_worker_error_text(tmp_path):
    folder = colorize_shards(tmp_path / "s", count=16)
    check_shards(load_card(folder))  # intact: no error
    wrapped = RuntimeError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                           '  File "x.py", line 1, in f\ntrain.data.DataError: a.tar: sample 1: broken\n')
    assert worker_error_text(wrapped) == "a.tar: sample 1: broken"
    with pytest.raises(DataError, match="no such folder"):
        load_card(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# models, losses, metrics


def test_default_unet_and_patchgan_are_pix2pix_sizes():
    g = Generator(3, 3)  # depth 8, width 64
    assert sum(p.numel() for p in g.parameters()) == 54_413_955  # pix2pix unet_256: 54.414 M
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3
    d = PatchGAN(6)
    assert sum(p.numel() for p in d.parameters()) == 2_768_705  # pix2pix basic D: 2.769 M
    small = Generator(6, 2, depth=3, width=4, output="linear")
    assert small(torch.zeros(1, 6, 20, 12)).shape == (1, 2, 20, 12)  # padded to 8 px multiples, cropped back
    res = Generator(3, 3, depth=3, width=4, output="residual")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(res(x), x)  # starts at the baseline


def test_losses():
    target = torch.zeros(1, 2, 4, 4)
    pred = torch.zeros(1, 2, 4, 4)
    pred[:, 0] = 3.0
    pred[:, 1] = 4.0
    loss, parts = KINDS["flow"].loss(pred, target)
    assert abs(float(loss) - 5.0) < 1e-4 and abs(parts["epe"] - 5.0) < 1e-4
    depth = torch.full((1, 4, 4), 2.0)
    depth[0, 0] = 0.0  # invalid row: the prediction there must not matter
    out = torch.log(torch.full((1, 4, 4), 2.0))
    out_bad = out.clone()
    out_bad[0, 0] = 9.0
    assert float(depth_loss(out, depth)[0]) < 1e-6
    assert float(depth_loss(out_bad, depth)[0]) < 1e-6
    feats = torch.ones(1, 2, 3, 3)
    assert torch.allclose(gram_matrix(feats), torch.full((1, 2, 2), 9.0 / 18.0))
    logits = torch.zeros(1, 3, 2, 2)
    logits[:, 1] = 10.0
    ce, _ = KINDS["segment"].loss(logits, torch.ones(1, 2, 2, dtype=torch.long))
    assert float(ce) < 1e-3


def test_metrics_known_values():
    a = torch.zeros(1, 3, 16, 16)
    b = torch.full((1, 3, 16, 16), 0.1)
    assert abs(float(psnr(a, b)) - 20.0) < 1e-4
    assert float(psnr(a, a)) == 100.0
    img = torch.rand(2, 3, 24, 24)
    assert torch.allclose(ssim(img, img), torch.ones(2))
    assert float(ssim(img, 1 - img).mean()) < 0.5
    flow = torch.zeros(1, 2, 4, 4)
    assert torch.allclose(epe(flow + torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), flow), torch.tensor([5.0]))
    gt = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])
    pred = torch.tensor([[[1.1, 2.0], [6.0, 7.0]]])
    absrel, delta1 = depth_metrics(pred, gt)
    assert abs(float(absrel) - (0.1 + 0.0 + 0.5) / 3) < 1e-5
    assert abs(float(delta1) - 2 / 3) < 1e-5
