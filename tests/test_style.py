"""Unpaired style data: the card says so and lists the styles, style crops follow the resize
rule, bad style files are skipped like any source, and the trainer says what it cannot do
without VGG weights (and trains Gram + content with a weights file the user passes)."""
import json
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pairgen.api import build, replay
from pairgen.errors import PairgenError

from conftest import write_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import fit  # noqa: E402
from train.kinds import STYLE_WITHOUT_VGG  # noqa: E402
from train.losses import VGG16Features  # noqa: E402

TRAIN = ["--crop", "32", "--depth", "4", "--width", "8", "--batch-size", "2", "--no-progress", "--val-samples", "2",
         "--num-workers", "0", "--steps", "2", "--eval-every", "2", "--log-every", "1"]


@pytest.fixture(scope="module")
def style_set(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("styles")
    rng = np.random.default_rng(0)
    write_rgb(str(folder / "stripes.png"), np.repeat(np.tile(np.array([[255, 0, 0], [0, 0, 255]], np.uint8), (10, 1)), 8, axis=0)[:, None].repeat(300, axis=1))
    write_rgb(str(folder / "noise.jpg"), rng.integers(0, 256, (120, 200, 3), dtype=np.uint8))
    good = (folder / "noise.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    huge = folder / "huge.png"  # a valid PNG header claiming 30000 x 30000 pixels
    write_rgb(str(huge), np.zeros((8, 8, 3), np.uint8))
    data = bytearray(huge.read_bytes())
    data[16:24] = (30000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    huge.write_bytes(bytes(data))
    out = tmp_path_factory.mktemp("style_out") / "shards"
    result = build("style", src=[str(photos)], style=str(folder), out=str(out), progress=False, log=False, crop=64,
                   crops_per_image=3, shard_size=4, max_pixels=10_000_000)
    return folder, out, result


def test_card_marks_the_data_unpaired_and_lists_the_styles(style_set):
    folder, out, result = style_set
    card = json.loads((out / "dataset.json").read_text())
    assert card["paired"] is False and card["train_kind"] == "style"
    names = [Path(s["path"]).name for s in card["styles"]]
    skipped = {Path(s["path"]).name: s["reason"] for s in card["skipped"]}
    assert "decompression bomb refused" in skipped["huge.png"] and "huge.png" not in names
    # the header reads, the pixels do not: decoded at plan time, reported once, never drawn
    assert skipped["truncated.jpg"].startswith("style image: truncated or corrupt image data")
    assert "truncated.jpg" not in names
    lost = [s for s in card["skipped"] if s["reason"].startswith("style image") and not s["path"].endswith("truncated.jpg")]
    assert not lost  # no sample skipped for its style


def test_style_crops_follow_the_resize_rule_and_replay(style_set):
    folder, out, result = style_set
    import webdataset as wds

    card = result.card
    samples = list(wds.WebDataset([str(out / r["file"]) for r in card["shards"]], shardshuffle=False).decode("rgb8"))
    used = set()
    for sample in samples:
        record = sample["json"]
        info = record["style"]
        used.add(info["index"])
        assert card["styles"][info["index"]]["path"] == info["path"]
        original = cv2.imread(info["path"])[:, :, ::-1]
        h, w = original.shape[:2]
        scale = 512 / min(h, w)
        resized = cv2.resize(original, (max(512, round(w * scale)), max(512, round(h * scale))), interpolation=cv2.INTER_CUBIC)
        x0, y0, x1, y1 = info["crop_box"]
        assert min(resized.shape[:2]) == 512 and np.array_equal(sample["style.png"], resized[y0:y1, x0:x1])
        again = replay(record)
        assert np.array_equal(again["style.png"], sample["style.png"]) and np.array_equal(again["content.png"], sample["content.png"])
    assert len(used) >= 2
    assert not any(card["styles"][s["json"]["style"]["index"]]["path"].endswith("truncated.jpg") for s in samples)


def test_only_broken_styles_is_an_error_naming_them(style_set, photos, tmp_path):
    folder, _, _ = style_set
    only = tmp_path / "broken_styles"
    only.mkdir()
    (only / "truncated.jpg").write_bytes((folder / "truncated.jpg").read_bytes())  # its header reads, its pixels do not
    with pytest.raises(PairgenError, match=r"no usable style image .*truncated.jpg: style image: truncated or corrupt"):
        build("style", src=[str(photos)], style=str(only), out=str(tmp_path / "out"), progress=False, log=False, crop=64)


def test_beyond_the_plan_time_check_a_broken_style_skips_the_samples_that_drew_it(style_set, photos, tmp_path, monkeypatch):
    from pairgen.tasks import style as style_task

    monkeypatch.setattr(style_task, "DECODE_AT_PLAN", 0)  # as with a style collection too large to decode up front
    folder, _, _ = style_set
    only = tmp_path / "broken_styles"
    only.mkdir()
    (only / "truncated.jpg").write_bytes((folder / "truncated.jpg").read_bytes())
    result = build("style", src=[str(photos)], style=str(only), out=str(tmp_path / "out"), progress=False, log=False, crop=64)
    assert result.card["counts"]["samples"] == 0
    reasons = {s["path"]: s["reason"] for s in result.card["skipped"]}
    assert reasons[str(only / "truncated.jpg")].startswith("style image: truncated or corrupt image data")


def test_trainer_says_what_it_cannot_do_without_vgg_weights(style_set, tmp_path, capsys, one_torch_thread):
    _, out, _ = style_set
    assert fit.main([str(out), "--out", str(tmp_path / "run"), *TRAIN]) == 0
    err = capsys.readouterr().err
    assert "no --perceptual-weights" in err and "colour statistics only" in err and "not brush strokes" in err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["limitation"] == STYLE_WITHOUT_VGG
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"content_l1", "colour_gram"} <= set(rows[0])
    val = [r for r in rows if r.get("split") == "val"][-1]
    assert np.isfinite(val["colour_gram"]) and val["baseline_content_l1"] == 0.0


def test_trainer_uses_gram_and_content_losses_with_a_weights_file(style_set, tmp_path, capsys, one_torch_thread):
    _, out, _ = style_set
    torch.manual_seed(0)
    weights = tmp_path / "vgg16_random.pth"  # the user's file; random weights stand in for ImageNet ones
    torch.save({f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}, weights)
    assert fit.main([str(out), "--out", str(tmp_path / "run"), "--perceptual-weights", str(weights), *TRAIN]) == 0
    assert "no --perceptual-weights" not in capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"content", "style"} <= set(rows[0]) and np.isfinite(rows[0]["style"])
    assert "limitation" not in json.loads((tmp_path / "run" / "config.json").read_text())
