"""The built-in recipes draw what the published pipelines draw.

Each test draws thousands of parameter sets from one step of a recipe, with the step's own
sampler and config as compiled from the YAML, and compares every parameter with the published
distribution, written out here independently of the YAML:

* Real-ESRGAN (``superres``): BasicSR's ``degradations.py`` / ``realesrgan_dataset.py`` and
  ``options/train_realesrgan_x4plus.yml``;
* BSRGAN (``superres-bsrgan``): ``utils/utils_blindsr.py``, ``degradation_bsrgan`` with sf=4,
  whose x2 settings apply after its halving step.

Continuous parameters: Kolmogorov-Smirnov distance below KS_BOUND (two-sided alpha ~ 1e-3 at
N draws); discrete ones: chi-square p above 1e-3; probabilities: within 4 standard errors. The
generators are seeded, so a pass is stable; a range typed wrong in a YAML (say 0.2..2 for
0.2..3) moves the KS distance to ~0.3, far past the bound (test_a_wrong_range_is_caught).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import linalg, stats

from pairgen import ops
from pairgen.api import make_task
from pairgen.steps import OneOf, OpStep, Shuffle, run_steps
from pairgen.rng import sample_rng

N = 4000
KS_BOUND = 1.95 / math.sqrt(N)
BIG = 10**7  # image side for resize draws: int(BIG * factor) recovers the factor to 1e-7
CTX = ops.Context((512, 512), 4)
KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


# ----------------------------------------------------------------------------- helpers


def find(node, *keys):
    """Walk compiled steps: a str finds the step with that label (looking inside unlabelled
    shuffles and one_of branches), an int picks a branch of a one_of or an item of a list."""
    for key in keys:
        if isinstance(key, int):
            node = node.branches[key] if isinstance(node, OneOf) else node[key]
        else:
            found = _search(node.steps if isinstance(node, Shuffle) else node, key)
            assert found is not None, f"no step labelled {key!r}"
            node = found
    return node


def _search(steps, label):
    for step in steps:
        if step.label == label:
            return step
        inner = []
        if isinstance(step, Shuffle) and not step.label:
            inner = [step.steps]
        elif isinstance(step, OneOf) and not step.label:
            inner = list(step.branches)
        for steps_ in inner:
            found = _search(steps_, label)
            if found is not None:
                return found
    return None


def draws(step: OpStep, n: int = N, shape=(BIG, BIG, 3), ctx=CTX, seed: int = 0) -> list:
    assert isinstance(step, OpStep), step
    rng = np.random.default_rng(seed)
    return [step.op.sample(rng, step.config, shape, ctx) for _ in range(n)]


def assert_ks(values, cdf, what: str) -> None:
    values = np.asarray(values, dtype=np.float64)
    assert len(values) >= 100, f"{what}: only {len(values)} draws"
    d = stats.kstest(values, cdf).statistic
    bound = 1.95 / math.sqrt(len(values))
    assert d < bound, f"{what}: KS distance {d:.3f} > {bound:.3f} from the published distribution"


def uniform_cdf(low: float, high: float):
    return stats.uniform(low, high - low).cdf


def mixture_cdf(*parts):
    """parts: (weight, cdf) pairs."""
    return lambda x: sum(w * cdf(x) for w, cdf in parts)


def assert_uniform_over(values, support, what: str) -> None:
    counts = np.array([sum(1 for v in values if v == s) for s in support])
    assert counts.sum() == len(values), f"{what}: values outside {support}: {sorted(set(values) - set(support))[:5]}"
    p = stats.chisquare(counts).pvalue
    assert p > 1e-3, f"{what}: counts {counts.tolist()} not uniform over {support} (chi-square p={p:.1e})"


def assert_frequency(hits: int, n: int, p: float, what: str) -> None:
    se = math.sqrt(p * (1 - p) / n) if 0 < p < 1 else 0.0
    assert abs(hits / n - p) <= 4 * se + 1e-12, f"{what}: {hits}/{n} = {hits / n:.3f}, published {p}"


def assert_modes(params, probs: dict, what: str) -> None:
    for mode, p in probs.items():
        assert_frequency(sum(q.mode == mode for q in params), len(params), p, f"{what} mode {mode}")
    assert {q.mode for q in params} <= set(probs), f"{what}: unexpected modes {({q.mode for q in params} - set(probs))}"


# ----------------------------------------------------------------------------- checks


def check_realesrgan_blur(step: OpStep, sigma_high: float, what: str) -> None:
    """BasicSR random_mixed_kernels + the sinc branch of realesrgan_dataset.py."""
    params = draws(step)
    assert_uniform_over([p.size for p in params], list(range(7, 22, 2)), f"{what} size")
    sinc = [p for p in params if p.kind == "sinc"]
    assert_frequency(len(sinc), N, 0.1, f"{what} sinc")
    assert_ks([p.cutoff for p in sinc if p.size < 13], uniform_cdf(math.pi / 3, math.pi), f"{what} sinc cutoff, size < 13")
    assert_ks([p.cutoff for p in sinc if p.size >= 13], uniform_cdf(math.pi / 5, math.pi), f"{what} sinc cutoff, size >= 13")
    mixed = [p for p in params if p.kind != "sinc"]
    for kind, prob in zip(KERNEL_KINDS, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)):
        assert_frequency(sum(p.kind == kind for p in mixed), len(mixed), prob, f"{what} kind {kind}")
    sigma = uniform_cdf(0.2, sigma_high)
    assert_ks([p.sigma_x for p in mixed], sigma, f"{what} sigma_x")
    aniso = [p for p in mixed if p.kind.endswith("aniso")]
    assert_ks([p.sigma_y for p in aniso], sigma, f"{what} sigma_y")
    assert_ks([p.theta for p in aniso], uniform_cdf(-math.pi, math.pi), f"{what} rotation")
    assert all(p.sigma_y == p.sigma_x and p.theta == 0 for p in mixed if not p.kind.endswith("aniso"))
    # beta: 50/50 below or above 1 (BasicSR), which for plateau's [1, 2] puts half the mass at 1
    generalized = [p.beta for p in mixed if p.kind.startswith("generalized")]
    assert_ks(generalized, mixture_cdf((0.5, uniform_cdf(0.5, 1.0)), (0.5, uniform_cdf(1.0, 4.0))), f"{what} generalized beta")
    plateau = [p.beta for p in mixed if p.kind.startswith("plateau")]
    assert_frequency(sum(b == 1.0 for b in plateau), len(plateau), 0.5, f"{what} plateau beta == 1")
    assert_ks([b for b in plateau if b != 1.0], uniform_cdf(1.0, 2.0), f"{what} plateau beta != 1")


def check_resize(step: OpStep, probs, up, down, what: str, ctx=CTX, base: int = BIG) -> None:
    """Real-ESRGAN random resize: up / down / keep, factor uniform in each range, mode 1/3 each."""
    shape = (BIG, BIG, 3)
    params = draws(step, shape=shape, ctx=ctx)
    factors = np.array([p.out_height / base for p in params])
    ups, downs, keeps = factors[factors > 1], factors[factors < 1], factors[factors == 1]
    for name, group, p in (("up", ups, probs[0]), ("down", downs, probs[1]), ("keep", keeps, probs[2])):
        assert_frequency(len(group), N, p, f"{what} {name}")
    assert_ks(ups, uniform_cdf(*up), f"{what} up factor")
    assert_ks(downs, uniform_cdf(*down), f"{what} down factor")
    assert_modes(params, {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3}, what)


def check_gaussian_noise(step: OpStep, high: float, what: str) -> None:
    params = draws(step, shape=(8, 8, 3))
    assert_ks([p.sigma * 255 for p in params], uniform_cdf(1.0, high), f"{what} sigma")
    assert_modes(params, {"gray": 0.4, "color": 0.6}, what)


def check_poisson_noise(step: OpStep, high: float, what: str) -> None:
    params = draws(step, shape=(8, 8, 3))
    assert_ks([p.scale for p in params], uniform_cdf(0.05, high), f"{what} scale")
    assert_frequency(sum(p.gray for p in params), N, 0.4, f"{what} gray")


def check_jpeg(step: OpStep, what: str) -> None:
    assert_uniform_over([p.quality for p in draws(step, shape=(8, 8, 3))], list(range(30, 96)), f"{what} quality")


def check_bsrgan_blur(step: OpStep, sf: int, what: str) -> None:
    """add_blur(img, sf): 50% anisotropic, l1, l2 ~ U[0, 4 + sf] (variances), theta ~ U[0, pi];
    50% isotropic, sigma ~ U[0, 2 + 0.2 sf]; size 2 * randint(2, 11) + 3."""
    params = draws(step)
    assert_uniform_over([p.size for p in params], list(range(7, 26, 2)), f"{what} size")
    assert not [p for p in params if p.kind not in ("iso", "aniso")], f"{what}: only Gaussians"
    aniso = [p for p in params if p.kind == "aniso"]
    assert_frequency(len(aniso), N, 0.5, f"{what} aniso")
    variance = uniform_cdf(0.0, 4.0 + sf)
    assert_ks([p.sigma_x**2 for p in aniso], variance, f"{what} aniso variance l1")
    assert_ks([p.sigma_y**2 for p in aniso], variance, f"{what} aniso variance l2")
    assert_ks([p.theta for p in aniso], uniform_cdf(0.0, math.pi), f"{what} aniso angle")
    assert_ks([p.sigma_x for p in params if p.kind == "iso"], uniform_cdf(0.0, 2.0 + 0.2 * sf), f"{what} iso sigma")


def check_bsrgan_intermediate(step: OneOf, sf: int, what: str) -> None:
    """downsample2: 75% cv2.resize by 1 / U[1, 2 sf] (linear/cubic/area), 25% Gaussian blur
    sigma ~ U[0.1, 0.6 sf] shifted by (sf - 1) / 2, then every sf-th pixel."""
    assert isinstance(step, OneOf) and len(step.branches) == 2
    np.testing.assert_allclose(step.weights, (0.75, 0.25))
    (resize,), (stride,) = step.branches
    params = draws(resize)
    divisors = [BIG / p.out_height for p in params]
    assert_ks(divisors, uniform_cdf(1.0, 2.0 * sf), f"{what} resize divisor")
    assert_modes(params, {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3}, f"{what} resize")
    params = draws(stride, shape=(64, 64, 3))
    assert {p.stride for p in params} == {sf}, f"{what}: stride must be sf = {sf}"
    assert_ks([p.sigma for p in params], uniform_cdf(0.1, 0.6 * sf), f"{what} stride sigma")


def published_bsrgan_covariances(n: int, seed: int = 0) -> np.ndarray:
    """add_Gaussian_noise's channel-correlated branch, as published: |L^2 U^T D U| with
    D = diag(rand(3)), U = orth(rand(3, 3)), L = 25 / 255 (the legacy global generator is
    BSRGAN's own; this is the reference, not pairgen)."""
    legacy = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        d = np.diag(legacy.rand(3))
        u = linalg.orth(legacy.rand(3, 3))
        out.append(np.abs((25 / 255) ** 2 * (u.T @ d @ u)))
    return np.array(out)


def check_bsrgan_noise(step: OpStep, what: str) -> None:
    """noise_level = randint(2, 25); 40% color, 40% gray, 20% correlated at level 25."""
    params = draws(step, shape=(8, 8, 3))
    assert_modes(params, {"color": 0.4, "gray": 0.4, "correlated": 0.2}, what)
    levels = [round(p.sigma * 255, 6) for p in params if p.mode != "correlated"]
    assert_uniform_over(levels, [float(v) for v in range(2, 26)], f"{what} level")
    correlated = [p for p in params if p.mode == "correlated"]
    assert all(abs(p.sigma * 255 - 25) < 1e-9 for p in correlated), f"{what}: correlated level must be 25"
    ours = np.array([np.reshape(p.covariance, (3, 3)) for p in correlated])
    ref = published_bsrgan_covariances(len(ours))
    for (i, j) in ((0, 0), (1, 1), (0, 1), (0, 2), (1, 2)):
        d = stats.ks_2samp(ours[:, i, j], ref[:, i, j]).statistic
        n = len(ours)
        bound = 1.95 * math.sqrt(2 / n)
        assert d < bound, f"{what}: covariance entry ({i}, {j}) KS {d:.3f} > {bound:.3f} from BSRGAN's"


def check_bsrgan_shuffle(shuffle: Shuffle, sf: int, what: str) -> None:
    assert isinstance(shuffle, Shuffle)
    labels = sorted(s.label for s in shuffle.steps)
    assert labels == sorted(["blur_a", "blur_b", "intermediate_downsample", "final_resize", "noise", "jpeg_inner"]), labels
    assert shuffle.keep_order == ("intermediate_downsample", "final_resize")
    for label in ("blur_a", "blur_b"):
        check_bsrgan_blur(find(shuffle, label), sf, f"{what} {label}")
    check_bsrgan_intermediate(find(shuffle, "intermediate_downsample"), sf, f"{what} intermediate")
    final = find(shuffle, "final_resize")
    assert_modes(draws(final, shape=(8, 8, 3)), {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3}, f"{what} final resize")
    check_bsrgan_noise(find(shuffle, "noise"), f"{what} noise")
    jpeg = find(shuffle, "jpeg_inner")
    assert jpeg.p == pytest.approx(0.9), f"{what}: inner JPEG p"
    check_jpeg(jpeg, f"{what} jpeg_inner")


# ----------------------------------------------------------------------------- the recipes


@pytest.fixture(scope="module")
def realesrgan():
    return make_task("superres", crop=512)[1]


@pytest.fixture(scope="module")
def bsrgan():
    return make_task("superres-bsrgan", crop=512)[1]


def test_realesrgan_stage1(realesrgan):
    steps = realesrgan.degrade_steps
    assert find(steps, "blur1").p == 1.0
    check_realesrgan_blur(find(steps, "blur1"), 3.0, "blur1")
    check_resize(find(steps, "resize1"), (0.2, 0.7, 0.1), (1.0, 1.5), (0.15, 1.0), "resize1")
    noise = find(steps, "noise1")
    np.testing.assert_allclose(noise.weights, (0.5, 0.5))
    check_gaussian_noise(find(noise, 0, 0), 30.0, "noise1 gaussian")
    check_poisson_noise(find(noise, 1, 0), 3.0, "noise1 poisson")
    check_jpeg(find(steps, "jpeg1"), "jpeg1")


def test_realesrgan_stage2_and_final(realesrgan):
    steps = realesrgan.degrade_steps
    assert find(steps, "blur2").p == pytest.approx(0.8)
    check_realesrgan_blur(find(steps, "blur2"), 1.5, "blur2")
    # stage 2 scales the *target* size: int(ori_h / scale * factor)
    big = ops.Context((4 * BIG, 4 * BIG), 4)
    check_resize(find(steps, "resize2"), (0.3, 0.4, 0.3), (1.0, 1.2), (0.3, 1.0), "resize2", ctx=big)
    noise = find(steps, "noise2")
    np.testing.assert_allclose(noise.weights, (0.5, 0.5))
    check_gaussian_noise(find(noise, 0, 0), 25.0, "noise2 gaussian")
    check_poisson_noise(find(noise, 1, 0), 2.5, "noise2 poisson")
    final = find(steps, "final")
    np.testing.assert_allclose(final.weights, (0.5, 0.5))
    # branch 0: resize, sinc (p .8), JPEG; branch 1: JPEG, resize, sinc
    for branch, (resize_i, sinc_i, jpeg_i) in ((0, (0, 1, 2)), (1, (1, 2, 0))):
        resize, sinc, jpeg = (find(final, branch, i) for i in (resize_i, sinc_i, jpeg_i))
        assert resize.op.name == "resize_to_target" and sinc.op.name == "sinc" and jpeg.op.name == "jpeg"
        assert_modes(draws(resize, shape=(8, 8, 3)), {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3}, "final resize")
        assert sinc.p == pytest.approx(0.8)
        params = draws(sinc, shape=(8, 8, 3))
        assert_uniform_over([p.size for p in params], list(range(7, 22, 2)), "final sinc size")
        assert_ks([p.cutoff for p in params], uniform_cdf(math.pi / 3, math.pi), "final sinc cutoff")
        check_jpeg(jpeg, "final jpeg")


def test_bsrgan_structure_and_halving(bsrgan):
    path = find(bsrgan.degrade_steps, "scale_path")
    np.testing.assert_allclose(path.weights, (0.75, 0.25))  # scale2_prob = .25 at sf 4
    assert len(path.branches[0]) == 1 and len(path.branches[1]) == 2
    halve = find(path, 1, "halve")
    params = draws(halve, shape=(512, 512, 3))
    assert all((p.out_height, p.out_width) == (256, 256) for p in params)
    # 50% cv2.resize with random.choice([1, 2, 3]), 50% MATLAB-style imresize_np
    assert_modes(params, {"bilinear": 1 / 6, "bicubic": 1 / 6, "area": 1 / 6, "bicubic_antialias": 0.5}, "halve")
    last = find(bsrgan.degrade_steps, "jpeg_last")
    assert last.p == 1.0
    check_jpeg(last, "jpeg_last")


def test_bsrgan_x4_settings(bsrgan):
    check_bsrgan_shuffle(find(bsrgan.degrade_steps, "scale_path", 0, 0), 4, "x4")


def test_bsrgan_x2_settings_after_halving(bsrgan):
    check_bsrgan_shuffle(find(bsrgan.degrade_steps, "scale_path", 1, 1), 2, "x2")


def test_bsrgan_records_follow_the_branch(bsrgan):
    """End to end through run_steps: a quarter of the samples are halved, and those (only those)
    carry the x2 draws; the intermediate downsample always precedes the final resize."""
    image = ops.to_float(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    ctx = ops.Context((64, 64), 4)
    halved = 0
    n = 300
    for i in range(n):
        record: list = []
        run_steps(bsrgan.degrade_steps, image, sample_rng(0, f"fidelity{i}"), ctx, record)
        labels = [r["label"] for r in record]
        is_halved = "halve" in labels
        halved += is_halved
        strides = [r["params"]["stride"] for r in record if r["op"] == "stride_downsample"]
        assert all(s == (2 if is_halved else 4) for s in strides)
        variance_high = 6.0 if is_halved else 8.0
        for r in record:
            if r["op"] == "blur" and r["params"]["kind"] == "aniso":
                assert r["params"]["sigma_x"] ** 2 <= variance_high + 1e-9
        assert labels.index("final_resize") > max(j for j, l in enumerate(labels) if l.startswith("intermediate_downsample"))
    assert_frequency(halved, n, 0.25, "halved samples")


def test_a_wrong_range_is_caught(bsrgan, realesrgan):
    """The checks have power: one range typed as the old recipe had it, or slightly off, fails."""
    blur = find(bsrgan.degrade_steps, "scale_path", 0, 0, "blur_a")
    wrong = [
        dataclasses.replace(blur.config, variance_range=(0.0, 6.0)),  # x2 value in the x4 branch
        dataclasses.replace(blur.config, variance_range=None, sigma_range=(0.1, 2.8)),  # the old sigma ~ U
        dataclasses.replace(blur.config, sigma_range=(0.001, 2.4)),
    ]
    for config in wrong:
        with pytest.raises(AssertionError):
            check_bsrgan_blur(dataclasses.replace(blur, config=config), 4, "mutated")
    blur1 = find(realesrgan.degrade_steps, "blur1")
    for change in ({"sigma_range": (0.2, 2.5)}, {"plateau_beta_range": (1.2, 2.0)}, {"rotation_range": (0.0, math.pi)}):
        with pytest.raises(AssertionError):
            check_realesrgan_blur(dataclasses.replace(blur1, config=dataclasses.replace(blur1.config, **change)), 3.0, "mutated")
    resize1 = find(realesrgan.degrade_steps, "resize1")
    with pytest.raises(AssertionError):
        check_resize(dataclasses.replace(resize1, config=dataclasses.replace(resize1.config, down_range=(0.2, 1.0))),
                     (0.2, 0.7, 0.1), (1.0, 1.5), (0.15, 1.0), "mutated")
