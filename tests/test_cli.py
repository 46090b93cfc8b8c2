"""The command line: wrong usage exits 2 with a message saying what to fix; bad input exits 1."""
import json

import pytest

from conftest import run_cli


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "superres", "--out", "{o}", "--scale", "5"], "'5' is not one of"),
        (["build", "superres", "--out", "{o}", "--crop", "250"], "not a multiple of the scale"),
        (["build", "superres", "--out", "{o}", "--workers", "0"], "must be at least 1"),
        (["build", "superres"], "Missing option '--out'"),
        (["build", "nosuchrecipe", "--out", "{o}"], "unknown recipe 'nosuchrecipe'"),
        (["build", "superres", "--out", "{o}", "--set", "degrade.blur1.sigma=2"], "unknown parameter 'sigma'"),
        (["build", "superres", "--out", "{o}", "--set", "novalue"], "expected key=value"),
        (["build", "superres", "--out", "{o}", "--format", "zip"], "'zip' is not one of"),
        (["frobnicate"], "No such command"),
        (["build", "superres", "--out", "{o}", "--src", "a.jpg", "b.jpg"], "quote it"),
    ],
)
def test_wrong_usage_exits_2(tmp_path, args, message):
    result = run_cli(*[a.format(o=tmp_path / "out") for a in args])
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_and_empty_sources_exit_1(tmp_path):
    result = run_cli("build", "superres", "--src", tmp_path / "nope", "--out", tmp_path / "o")
    assert result.returncode == 1 and "no such file or directory" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("build", "superres", "--src", tmp_path / "empty", "--out", tmp_path / "o")
    assert result.returncode == 1 and "no files found" in result.stderr
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"")
    result = run_cli("build", "superres", "--src", tmp_path / "junk", "--out", tmp_path / "o")
    assert result.returncode == 1 and "all 1 inputs were skipped" in result.stderr and "empty file" in result.stderr


def test_inspect_without_card_exits_1(tmp_path):
    result = run_cli("inspect", tmp_path)
    assert result.returncode == 1 and "no dataset.json" in result.stderr


def test_scale_3_picks_a_crop_on_its_grid(tmp_path):
    out = tmp_path / "x3"
    result = run_cli("build", "superres-bicubic", "--out", out, "--scale", "3", "--limit", "2", "--workers", "1")
    assert result.returncode == 0, result.stderr
    card = json.loads((out / "dataset.json").read_text())
    assert card["crop"] == 255 and card["fields"]["lr.png"]["shape"] == [85, 85, 3]


def test_recipes_lists_builtins():
    result = run_cli("recipes")
    assert result.returncode == 0
    for name in ("superres ", "superres-bsrgan", "superres-bicubic"):
        assert name in result.stdout


def test_default_build_uses_embedded_photos_and_summarises(tmp_path):
    out = tmp_path / "shards"
    result = run_cli("build", "superres", "--out", out, "--limit", "6", "--crop", "128", "--workers", "2", "--shard-size", "4")
    assert result.returncode == 0, result.stderr
    assert "wrote 6 samples in 2 shards" in result.stderr
    card = json.loads((out / "dataset.json").read_text())
    assert card["counts"]["samples"] == 6 and card["shards"][0]["file"] == "superres-000000.tar"
