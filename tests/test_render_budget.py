"""The default render settings: the per-scene sample budget ("auto", from a pilot render) and the
material override of the ground-truth render. Real Blender renders at tiny sizes, one render
worker for the module."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pairgen.tasks.flow import FlowTask
from renderers.scene import AUTO_SAMPLES, CameraSpec, LightSpec, MaterialSpec, Motion, ObjectSpec, RoomSpec, SceneSpec, auto_samples
from renderers.worker import RenderWorker

LOOK_Y = (math.pi / 2, 0.0, 0.0)


@pytest.fixture(scope="module")
def worker():
    w = RenderWorker(recycle_every=1000, retries=1, timeout=300)
    yield w
    w.close()


ROOM = RoomSpec(center=(0.0, 3.0, 0.5), half_extent=(4.0, 6.0, 3.0),
                materials=tuple(MaterialSpec(color=(0.7, 0.6, 0.5), roughness=0.6) for _ in range(6)))
OBJECTS = (
    ObjectSpec("box", "cube", Motion((0.8, 4.0, -0.5), (0.3, 0.5, 0.2), (0.05, 0.0, 0.02), scale=(0.6, 0.6, 0.6)),
               MaterialSpec(color=(0.8, 0.2, 0.1), roughness=0.3)),
    ObjectSpec("ball", "sphere", Motion((-1.0, 5.0, 0.0), (0.0, 0.0, 0.0), (-0.04, 0.0, 0.0), scale=(0.8, 0.8, 0.8)),
               MaterialSpec(color=(0.2, 0.5, 0.8), roughness=0.2, metallic=0.5)),
)


def _scene(light: LightSpec, resolution=(64, 48)) -> SceneSpec:
    return SceneSpec(seed=0, resolution=resolution, frame_start=1, frame_end=2,
                     camera=CameraSpec(motion=Motion((0.0, 0.0, 0.0), LOOK_Y)), objects=OBJECTS, lights=(light,), room=ROOM)


POINT = LightSpec("POINT", (0.0, 3.0, 3.0), energy=100.0, size=0.05)


def _frames(worker, spec, settings, times=(1.0, 2.0), truth=True, rgb=True, **kw):
    frames = [{"time": t, "settings": {"seed": 7 + i, "threads": 1, **settings}, "truth": truth, "rgb": rgb}
              for i, t in enumerate(times)]
    return worker.call("render", source={"spec": spec}, frames=frames, **kw)


def test_auto_samples_rule():
    a = AUTO_SAMPLES
    assert auto_samples(a["reference_noise"]) == a["reference_samples"]
    budgets = [auto_samples(n) for n in np.linspace(0, 200, 401)]
    assert budgets == sorted(budgets), "more noise never gets fewer samples"
    assert budgets[0] == a["min"] and budgets[-1] == a["max"]
    assert auto_samples(a["reference_noise"] * 1.3) >= 2 * a["reference_samples"]  # the steep part: area-lit rooms


def test_auto_budget_follows_the_measured_noise(worker):
    """The same room under a dim, a medium and a bright light: the pilot measures more noise
    in 8-bit levels the brighter it is, and the budget grows with it. Every frame of a scene
    gets the budget of its one pilot, repeated renders are the same bytes, and a number of
    samples is taken as it is."""
    pilot = {"samples": "auto", "pilot_time": 1.0, "pilot_seed": 123}
    got = {}
    for name, energy in (("dim", 20.0), ("medium", 100.0), ("bright", 300.0)):
        frames = _frames(worker, _scene(dataclasses.replace(POINT, energy=energy)), pilot, truth=False)
        assert len({(f["samples"], f["pilot_noise"]) for f in frames}) == 1, f"{name}: frames of one scene got different budgets"
        got[name] = frames[0]
        assert AUTO_SAMPLES["min"] <= frames[0]["samples"] <= AUTO_SAMPLES["max"]
        assert frames[0]["samples"] == auto_samples(frames[0]["pilot_noise"])
    noise = [f["pilot_noise"] for f in got.values()]
    samples = [f["samples"] for f in got.values()]
    assert 0 < noise[0] < noise[1] < noise[2], noise
    assert samples == sorted(samples) and samples[0] < samples[2], samples
    again = _frames(worker, _scene(dataclasses.replace(POINT, energy=300.0)), pilot, truth=False)
    assert np.array_equal(again[0]["rgb"], got["bright"]["rgb"]) and again[0]["pilot_noise"] == noise[2]
    fixed = _frames(worker, _scene(POINT), {"samples": 3}, truth=False)[0]
    assert fixed["samples"] == 3 and fixed["pilot_noise"] is None


def test_truth_material_override_changes_no_ground_truth(worker):
    """The ground-truth render of a procedural scene replaces its materials (a black emission)
    unless normals are asked for; depth, flow, ids and classes are the same bits either way."""
    spec = _scene(POINT, resolution=(48, 36))
    settings = {"samples": 1, "denoise": False}
    overridden = _frames(worker, spec, settings, rgb=False)
    with_materials = _frames(worker, spec, settings, rgb=False, normals=True)
    for a, b in zip(overridden, with_materials):
        assert "normal" not in a and "normal" in b
        for name in ("depth", "seg", "cls", "flow_fwd", "flow_bwd"):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert (a["seg"] > 0).all() and np.abs(a["flow_fwd"]).max() > 0.1  # a closed room with moving objects


def test_flow_task_records_the_budget(worker):
    task = FlowTask(scenes=1, resolution=(32, 32), seed=5, threads=1)
    task._worker = worker
    items, _ = task.plan()
    (_, fields), = task.make(items[0], np.random.default_rng(0))
    render = fields["json"]["render"]
    assert render["samples"] == "auto"
    assert render["samples_used"] == auto_samples(render["pilot_noise"])
    assert render["auto_samples"]["reference_noise"] == AUTO_SAMPLES["reference_noise"] and "rule" in render["auto_samples"]
    assert "black emission" in render["truth_pass"] and render["clamp_indirect"] == 5.0
    assert task.card()["render"]["auto_samples"] == render["auto_samples"]
    fixed = FlowTask(scenes=1, resolution=(32, 32), seed=5, threads=1, samples=2)
    assert "auto_samples" not in fixed.render_record() and fixed.render_record()["samples"] == 2


def test_clamp_indirect_reaches_cycles(worker):
    """clamp_indirect caps indirect light samples (darker when tiny); None keeps the scene's own."""
    spec = _scene(dataclasses.replace(POINT, energy=300.0))
    own, clamped = (_frames(worker, spec, {"samples": 2, "denoise": False, "clamp_indirect": c}, times=(1.0,), truth=False)[0]
                    for c in (None, 0.05))
    assert clamped["rgb"].mean() < own["rgb"].mean() - 1, (clamped["rgb"].mean(), own["rgb"].mean())
