"""The README's quick start, run as a new user runs it: every command, in order, in an empty
folder (the trainer's step count is the only change: a test cannot wait for 2,000 steps)."""
import os
import shlex
import subprocess
import sys

from conftest import PAIRGEN, REPO

TRAINER_LIMITS = ["--steps", "2", "--eval-every", "2", "--val-samples", "2"]


def quick_start_commands():
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    block = text.split("## Quick start", 1)[1].split("\n\n", 2)[1]
    commands = []
    for line in block.splitlines():
        command = shlex.split(line.strip(), comments=True)
        if command:
            commands.append(command)
    return commands


def as_run_here(command):
    if command[0] == ".venv/bin/pairgen":
        return [*PAIRGEN, *command[1:]]
    if command[:2] == [".venv/bin/python", "train/fit.py"]:
        return [sys.executable, os.path.join(REPO, "train", "fit.py"), *command[2:], *TRAINER_LIMITS]
    raise AssertionError(f"the quick start runs something this test does not know: {command}")


def test_every_quick_start_command_runs_as_written(tmp_path):
    commands = quick_start_commands()
    assert [c[1] for c in commands[:2]] == ["example-photos", "example-scene"]  # the inputs come first
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for command in commands:
        result = subprocess.run(as_run_here(command), cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    for made in ("photos", "scene.blend", "shards", "shards-x4", "flow", "runs/sr1"):
        assert (tmp_path / made).exists(), made


def test_the_quick_start_outputs_are_ignored_by_git():
    targets = []
    for command in quick_start_commands():
        if command[1] in ("example-photos", "example-scene"):
            targets.append(command[2])
        targets += [command[i + 1] for i, word in enumerate(command[:-1]) if word == "--out"]
    assert len(targets) >= 6
    for target in targets:
        probe = target.rstrip("/") + ("/x" if target.endswith("/") else "")  # a file inside an output folder
        result = subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO)
        assert result.returncode == 0, f"{target} is not in .gitignore"
