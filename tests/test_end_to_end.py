"""Rendered shards made by pairgen train with the reference trainer: the two halves agree on
the dataset card (fields, roles, dtypes) without hand-written glue."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pairgen.api import build

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train import fit  # noqa: E402

TINY = ["--crop", "32", "--depth", "4", "--width", "8", "--batch-size", "2", "--no-progress", "--val-samples", "2",
        "--num-workers", "0", "--steps", "12", "--eval-every", "12", "--log-every", "4"]


def baseline_of(recipe: str, sample: dict) -> float:
    """The trivial prediction's error on one held-out sample, computed here from the shard:
    zero motion for flow (mean |flow|), each image's median depth for depth (AbsRel)."""
    if recipe == "flow":
        return float(np.linalg.norm(sample["flow.npy"].astype(np.float64), axis=-1).mean())
    depth = sample["depth.npy"].astype(np.float64)
    valid = np.sort(depth[depth > 0])
    median = valid[(valid.size - 1) // 2]  # torch.median: the lower middle value
    return float(np.mean(np.abs(median - valid) / valid))


@pytest.mark.parametrize("recipe, metric, channels", [("flow", "epe", (6, 2)), ("depth", "absrel", (3, 1))])
def test_rendered_shards_train(recipe, metric, channels, tmp_path, one_torch_thread):
    import webdataset as wds

    shards = tmp_path / "shards"
    build(recipe, out=str(shards), scenes=4, resolution=(32, 32), samples=1, shard_size=2, workers=1, progress=False)
    assert fit.main([str(shards), "--out", str(tmp_path / "run"), *TINY]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["kind"], config["in_channels"], config["out_channels"]) == (recipe, *channels)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r.get("split") == "val"][-1]
    assert np.isfinite(val[metric]) and val["n"] == 2
    # the held-out part is the last shard, and the trainer's baseline is computed on it
    card = json.loads((shards / "dataset.json").read_text())
    held_out = list(wds.WebDataset(str(shards / card["shards"][-1]["file"]), shardshuffle=False).decode())
    expected = np.mean([baseline_of(recipe, s) for s in held_out])
    assert val[f"baseline_{metric}"] == pytest.approx(expected, rel=1e-4)


def test_trainer_runs_distributed_on_two_cpu_processes(tmp_path):
    """torchrun with 2 processes (gloo on the CPU): the data splits by rank, rank 0 writes."""
    import subprocess

    shards = tmp_path / "shards"
    build("superres", out=str(shards), crop=64, crops_per_image=2, limit=24, shard_size=8, workers=1, progress=False)
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2",
                             str(Path(__file__).resolve().parent.parent / "train" / "fit.py"), str(shards),
                             "--out", str(run), "--threads", "1", *TINY], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 12 and "psnr" in [r for r in rows if r.get("split") == "val"][-1]
    assert list((run / "checkpoints").glob("*.pt"))
