"""Recipe files: validation errors name file, line and allowed names; --set overrides; LR/HR alignment."""
import cv2
import numpy as np
import pytest
from skimage import data

from pairgen import ops
from pairgen.api import make_task
from pairgen.errors import RecipeError
from pairgen.recipes import apply_overrides, builtin_recipes, read_recipe
from pairgen.preview import VIEWS
from pairgen.rng import sample_rng
from pairgen.steps import run_steps
from pairgen.tasks import registered_tasks


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_builtin_recipes_compile():
    assert {"superres", "superres-bsrgan", "superres-bicubic", "flow", "depth"} <= set(builtin_recipes())
    for name in builtin_recipes():
        recipe_name, task = make_task(name)
        assert recipe_name == name and type(task) is registered_tasks()[read_recipe(name)[2]["task"]]
        fields = task.fields()
        roles = [spec.role for spec in fields.values()]
        assert roles.count("meta") == 1 and fields["json"].role == "meta", name
        assert "input" in roles and "target" in roles, name
        for field, spec in fields.items():
            assert spec.role in ("input", "target", "aux", "meta"), (name, field)
            assert (spec.view in VIEWS) == (spec.role != "meta"), (name, field, spec.view)
            assert field.rsplit(".", 1)[-1] in ("png", "npy", "json"), (name, field)
        card = task.card()
        if task.replayable:  # photo recipes: the resolved recipe in the card lists every step with its settings
            assert card["recipe"]["task"] == task.name, name
            step_lists = list(_step_lists(card["recipe"]))
            steps_free = not any(isinstance(v, (list, dict)) for v in card["recipe"].values())  # style: a resize side only
            assert (step_lists and any(step_lists)) or steps_free, name
            for steps in step_lists:
                assert all("op" in step or "one_of" in step or "shuffle" in step for step in steps), (name, steps)
        else:
            assert card["render"]["samples"] == "auto" and card["conventions"]["depth"], name


def _step_lists(value):
    """Every list of step descriptions in a resolved recipe (values of any depth)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list) and all(isinstance(s, dict) for s in item):
                yield item
            else:
                yield from _step_lists(item)


def test_every_registered_task_has_a_builtin_recipe_and_a_test():
    import os

    recipes_by_task = {read_recipe(name)[2]["task"] for name in builtin_recipes()}
    tests = os.listdir(os.path.dirname(__file__))
    for name, task_class in registered_tasks().items():
        assert name in recipes_by_task, f"task {name} has no recipe in recipes/"
        assert f"test_{name}.py" in tests or name in ("superres", "flow", "depth"), f"task {name} has no tests/test_{name}.py"
        assert task_class.Options is not None and task_class.name == name


def test_an_option_of_another_task_is_a_usage_error_named_by_the_task(tmp_path):
    from pairgen.errors import UsageError

    with pytest.raises(UsageError, match=r"--normals is not an option of recipe 'superres' \(task superres; its options: --crop, --crops-per-image, --scale\)"):
        make_task("superres", normals=True)
    with pytest.raises(UsageError, match="--scale is not an option of recipe 'flow'"):
        make_task("flow", scale=2)
    with pytest.raises(UsageError, match="--normals is not an option of recipe 'flow'"):
        make_task("flow", normals=True)
    with pytest.raises(RecipeError, match="unknown task 'superress'"):
        make_task(write(tmp_path, "task: superress\n"))


def test_unknown_operation_names_file_line_and_allowed(tmp_path):
    path = write(tmp_path, "task: superres\nscale: 4\ndegrade:\n  - op: resize_to_target\n  - op: blurr\n    sigma_range: [1, 2]\n")
    with pytest.raises(RecipeError) as err:
        make_task(path)
    message = str(err.value)
    assert path in message and "line 5" in message and "'blurr'" in message
    assert "blur" in message and "jpeg" in message and "resize_to_target" in message


def test_unknown_parameter_names_file_line_and_allowed(tmp_path):
    path = write(tmp_path, "task: superres\ndegrade:\n  - op: jpeg\n    quality: 50\n")
    with pytest.raises(RecipeError) as err:
        make_task(path)
    message = str(err.value)
    assert "line 4" in message and "'quality'" in message and "quality_range" in message


def test_unknown_top_level_key_and_bad_probability(tmp_path):
    with pytest.raises(RecipeError, match=r"line 2: unknown key 'degrad'"):
        make_task(write(tmp_path, "task: superres\ndegrad: []\n"))
    with pytest.raises(RecipeError, match=r"line 3: p must be a probability"):
        make_task(write(tmp_path, "task: superres\ndegrade:\n  - {op: jpeg, p: 1.5}\n  - op: resize_to_target\n"))
    with pytest.raises(RecipeError, match="not valid YAML"):
        make_task(write(tmp_path, "task: superres\ndegrade: [\n"))
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        make_task("nope")


def test_rendered_recipe_errors_name_the_line(tmp_path):
    with pytest.raises(RecipeError, match=r"line 3: unknown key 'scenes'"):
        make_task(write(tmp_path, "task: flow\nstep: 1\nscenes: 4\n"))


def test_set_overrides_by_index_and_label(tmp_path):
    name, path, raw = read_recipe("superres")
    raw = apply_overrides(raw, ["degrade.blur2.p=0.25", "degrade.0.sigma_range=[0.5, 1]", "scale=2"], path)
    assert raw["degrade"][4]["p"] == 0.25 and raw["degrade"][0]["sigma_range"] == [0.5, 1] and raw["scale"] == 2
    with pytest.raises(RecipeError, match="matches no item"):
        apply_overrides(raw, ["degrade.nolabel.p=1"], path)
    with pytest.raises(RecipeError, match="unknown parameter 'sigma'"):
        make_task("superres", overrides=["degrade.blur1.sigma=3"])


def test_shuffle_keeps_declared_order():
    _, task = make_task("superres-bsrgan")
    image = ops.to_float(data.astronaut()[:128, :128])
    for i in range(20):
        record = []
        run_steps(task.degrade_steps, image, sample_rng(i, "x"), ops.Context((128, 128), 4), record)
        labels = [r["label"] for r in record]
        downs = [j for j, l in enumerate(labels) if l.startswith("intermediate_downsample")]
        final = labels.index("final_resize")
        assert all(j < final for j in downs), labels


def phase_shift(hr: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """Sub-pixel (dx, dy) of the LR against the HR, in HR pixels, by phase correlation.

    The HR is first brought to the LR's band (area downscale, then both bicubic-upsampled), so
    the whitened spectra compare like with like instead of HR detail against LR blur."""
    size = (hr.shape[1], hr.shape[0])
    up = lambda im: cv2.resize(im, size, interpolation=cv2.INTER_CUBIC)
    hr_band = up(cv2.resize(hr, (lr.shape[1], lr.shape[0]), interpolation=cv2.INTER_AREA))
    gray = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float64)
    window = cv2.createHanningWindow(size, cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(gray(hr_band), gray(up(lr)), window)
    return np.array([dx, dy])


# Noise and JPEG move no pixel; switched off here so phase correlation sees geometry only.
GEOMETRY_ONLY = {
    "superres-bicubic": [],
    "superres": ["degrade.noise1.p=0", "degrade.noise2.p=0", "degrade.jpeg1.p=0",
                 "degrade.final.one_of.0.steps.2.p=0", "degrade.final.one_of.1.steps.0.p=0"],
    "superres-bsrgan": [f"degrade.scale_path.one_of.{branch}.steps.{step}.shuffle.steps.{label}.p=0"
                        for branch, step in ((0, 0), (1, 1)) for label in ("noise", "jpeg_inner")]
                       + ["degrade.jpeg_last.p=0"],
}


@pytest.mark.parametrize("recipe", sorted(GEOMETRY_ONLY))
def test_lr_and_hr_share_the_pixel_grid(recipe):
    """No half-pixel shift: over many random degradations the LR sits on the HR grid (median
    shift; single heavily blurred 32 px LRs defeat any registration, so no per-sample bound)."""
    _, task = make_task(recipe, crop=128, overrides=GEOMETRY_ONLY[recipe])
    photo = data.astronaut()
    shifts = []
    for i in range(24):
        rng = sample_rng(0, f"align{i}")
        y, x = rng.integers(0, 512 - 128, size=2)
        fields = task.make_crop(photo[int(y):int(y) + 128, int(x):int(x) + 128], rng, {})
        hr, lr = fields["hr.png"], fields["lr.png"]
        shifts.append(phase_shift(hr, lr, 4))
    shifts = np.array(shifts)
    assert np.all(np.abs(np.median(shifts, axis=0)) < 0.1), (recipe, np.median(shifts, axis=0))
    if recipe == "superres-bicubic":
        assert np.abs(shifts).max() < 0.2, shifts
    # A deliberately shifted LR (one LR pixel = 4 HR pixels) is detected: the test can fail.
    hr = photo[100:228, 100:228]
    shifted = cv2.resize(photo[100:228, 104:232], (32, 32), interpolation=cv2.INTER_AREA)
    dx, dy = phase_shift(hr, shifted, 4)
    assert abs(abs(dx) - 4.0) < 0.3 and abs(dy) < 0.3
