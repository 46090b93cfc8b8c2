"""The task contract, over every built-in recipe of every registered task: a few samples built
at tiny sizes, read back with the webdataset library, hold exactly the card's fields with its
dtypes and shapes, replay bit-exactly where the task replays, preview through the view table,
and train with train/fit.py. A new task gets all of this from its recipe alone."""
import dataclasses
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import webdataset as wds

from pairgen.api import build, make_task, replay
from pairgen.preview import CHANNELS_FIRST_VIEWS, VIEWS, field_to_rgb
from pairgen.recipes import builtin_recipes
from pairgen.tasks import registered_tasks

from conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import fit  # noqa: E402
from train.kinds import KINDS  # noqa: E402

# Tiny sizes for any task that has these options (rendered: 32 px; photos: 64 px crops).
TINY_OPTIONS = {"crop": 64, "crops_per_image": 2, "resolution": "32x32", "scenes": 4, "samples": 1}
TRAIN = ["--crop", "32", "--depth", "4", "--width", "8", "--batch-size", "2", "--no-progress", "--val-samples", "2",
         "--num-workers", "0", "--steps", "4", "--eval-every", "4", "--log-every", "2"]


def tiny_options(recipe: str) -> dict:
    _, task = make_task(recipe)
    names = {f.name for f in dataclasses.fields(type(task).Options)}
    return {k: v for k, v in TINY_OPTIONS.items() if k in names}


@pytest.fixture(scope="module", params=sorted(builtin_recipes()))
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "shards"
    build(request.param, out=str(out), limit=4, shard_size=2, workers=1, progress=False, **tiny_options(request.param))
    return request.param, out


def decode(name: str, data: bytes):
    ext = name.rsplit(".", 1)[-1]
    if ext == "png":
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        return image[:, :, ::-1] if image.ndim == 3 else image  # RGB, as pairgen writes it
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    return json.loads(data)


def read_back(out: Path):
    card = json.loads((out / "dataset.json").read_text())
    urls = [str(out / row["file"]) for row in card["shards"]]
    samples = [{k: decode(k, v) if not k.startswith("__") else v for k, v in s.items()}
               for s in wds.WebDataset(urls, shardshuffle=False)]
    return card, samples


def test_every_registered_task_is_covered_by_a_builtin_recipe():
    covered = {make_task(name)[1].name for name in builtin_recipes()}
    assert covered == set(registered_tasks())


def test_fields_are_exactly_the_cards(built):
    recipe, out = built
    card, samples = read_back(out)
    _, task = make_task(recipe, **tiny_options(recipe))
    assert card["task"] == task.name and len(samples) == card["counts"]["samples"] == 4
    assert card["fields"] == {k: v.to_json() for k, v in task.fields().items()}
    assert card["train_kind"] in KINDS
    for sample in samples:
        assert sample["__key__"].isdigit()
        assert {k for k in sample if not k.startswith("__")} == set(card["fields"]), recipe
        assert sample["json"]["task"] == task.name
        for name, spec in card["fields"].items():
            if spec["dtype"] == "json":
                continue
            value = sample[name]
            assert str(value.dtype) == spec["dtype"], (recipe, name)
            assert len(value.shape) == len(spec["shape"]), (recipe, name)
            assert all(want is None or want == got for want, got in zip(spec["shape"], value.shape)), (recipe, name, value.shape)


def test_replay_is_bit_exact_where_the_task_replays(built):
    recipe, out = built
    card, samples = read_back(out)
    if not card["replayable"]:
        with pytest.raises(Exception, match="cannot be replayed"):
            replay(samples[0]["json"])
        return
    for sample in samples:
        again = replay(sample["json"])
        assert set(again) == {n for n, s in card["fields"].items() if s["role"] != "meta"}
        for name, value in again.items():
            assert np.array_equal(value, sample[name]) and value.dtype == sample[name].dtype, (recipe, name)


def test_every_field_previews_through_its_view(built):
    recipe, out = built
    card, samples = read_back(out)
    pictures = [n for n, s in card["fields"].items() if s["role"] != "meta"]
    for name in pictures:
        view = card["fields"][name]["view"]
        assert view in VIEWS
        picture = field_to_rgb(name, samples[0][name], view)
        spatial = samples[0][name].shape[1:3] if view in CHANNELS_FIRST_VIEWS else samples[0][name].shape[:2]
        assert picture.dtype == np.uint8 and picture.shape == spatial + (3,), (recipe, name)
    result = run_cli("inspect", out, "--samples", "3")
    assert result.returncode == 0, result.stderr
    sheet = cv2.imread(str(out / "preview" / "contact_sheet.png"))
    cell, gap, header = 192, 4, 24  # one column per picture field, one row per sample
    keys = {VIEWS[card["fields"][n]["view"]].legend_title for n in pictures if VIEWS[card["fields"][n]["view"]].legend}
    assert sheet.shape[1] == gap + len(pictures) * (cell + gap), recipe
    if keys:  # captions under the tiles and colour keys under the grid
        assert sheet.shape[0] > header + 3 * (cell + gap) and all(k in result.stdout for k in keys), recipe
    else:
        assert sheet.shape[0] == header + 3 * (cell + gap), recipe
    for name in pictures:
        assert name in result.stdout


def test_trains_a_few_steps(built, tmp_path, one_torch_thread):
    recipe, out = built
    card, _ = read_back(out)
    assert fit.main([str(out), "--out", str(tmp_path / "run"), *TRAIN]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["kind"] == card["train_kind"] and config["task"] == card["task"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r.get("split") == "val"][-1]
    headline = KINDS[card["train_kind"]].headline
    assert val["step"] == 4 and val["n"] == 2 and np.isfinite(val[headline]), (recipe, val)
    grid = cv2.imread(str(tmp_path / "run" / "samples" / "step_000004.png"))
    n_inputs = sum(1 for s in card["fields"].values() if s["role"] == "input")
    n_targets = sum(1 for s in card["fields"].values() if s["role"] == "target")
    # one row per held-out sample: its inputs, the prediction and its targets, each 2 px apart
    target_shape = [s["shape"] for s in card["fields"].values() if s["role"] == "target"][0]
    assert grid.shape[1] == (n_inputs + 1 + n_targets) * (target_shape[1] + 2), (recipe, grid.shape)
