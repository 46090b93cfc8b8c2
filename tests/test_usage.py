"""Usage errors are usage errors: exit 2, no traceback, a message that says what to fix and
names where the bad value came from (the --set argument, or the file and line)."""
import pytest

from conftest import run_cli

BUILD = ["build", "superres", "--limit", "2", "--quiet"]


@pytest.mark.parametrize("argument, message", [
    ("a=[unclosed", "--set a=[unclosed: the value '[unclosed' is not valid YAML"),
    ("scale=abc", "--set scale=abc: scale must be an integer, got 'abc' (a string)"),
    ("scale=4.0", "--set scale=4.0: scale must be an integer, got 4.0"),
    ("degrade.0.p=true", "--set degrade.0.p=true: p must be a probability in [0, 1], got True (a boolean)"),
    ("degrade.0.p=1e-1", "which YAML reads as a string (YAML 1.1 needs a dot in a float: write 1.0e-1)"),
    ("degrade.blur1.sigma_range=[a,2]", "--set degrade.blur1.sigma_range=[a,2]: operation 'blur': sigma_range must be a list of 2 numbers"),
    ("crop=3", "--set crop=3: unknown key 'crop'"),
])
def test_bad_set_values_name_the_argument_and_the_reason(tmp_path, argument, message):
    result = run_cli(*BUILD, "--out", tmp_path / "out", "--set", argument)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "line" not in result.stderr.split(message)[0]  # not a line of the built-in file


@pytest.mark.parametrize("line, message", [
    ("scale: abc", "line 7: scale must be an integer, got 'abc' (a string)"),
    ("scale: 4.0", "line 7: scale must be an integer, got 4.0 (a number)"),
])
def test_bad_values_in_a_recipe_file_name_file_and_line(tmp_path, line, message):
    from pairgen.recipes import builtin_recipes

    text = open(builtin_recipes()["superres"]).read()
    lines = text.splitlines()
    index = next(i for i, l in enumerate(lines) if l.startswith("scale:"))
    assert index == 6  # the line number the message gives
    lines[index] = line
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    result = run_cli("build", recipe, "--out", tmp_path / "out", "--limit", "2")
    assert result.returncode == 2 and f"{recipe} {message}" in result.stderr, result.stderr


def test_a_misspelt_task_is_a_usage_error_with_a_suggestion(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: superress\n")
    result = run_cli("build", recipe, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "unknown task 'superress'" in result.stderr and "did you mean 'superres'?" in result.stderr


@pytest.mark.parametrize("out, message", [("/dev/null", "is a file, not a folder"), ("", "--out is empty")])
def test_bad_out_is_a_usage_error(out, message):
    result = run_cli(*BUILD, "--out", out)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_a_refused_resume_says_what_differs(tmp_path):
    out = tmp_path / "out"
    assert run_cli(*BUILD, "--out", out).returncode == 0
    result = run_cli(*BUILD, "--out", out, "--seed", "3")
    assert result.returncode == 1
    assert "seed: 0 there, 3 now" in result.stderr
    result = run_cli(*BUILD, "--out", out, "--set", "degrade.0.p=0.5")
    assert result.returncode == 1 and "recipe." in result.stderr and "there" in result.stderr
