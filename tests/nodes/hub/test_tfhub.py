"""HubStylize's tfhub route through the real loading code (tensorflow_hub.load on a local
SavedModel given as `handle`), and its clear errors when the model is missing offline.

The SavedModel is a tiny stand-in built here with TF Hub Magenta's call signature,
`module(content, style)[0]`; it computes 0.5 * content + 0.5 * mean colour of the style, so
every output can be checked exactly. TensorFlow is imported once, by the fixture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.extras import import_extra

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan

UNREACHABLE = "https://tfhub.invalid/google/magenta/arbitrary-image-stylization-v1-256/2"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    tf = import_extra("tfhub", "tensorflow")
    import_extra("tfhub", "tensorflow_hub")
    image = tf.TensorSpec([None, None, None, 3], tf.float32)

    class TinyStylizer(tf.Module):
        @tf.function(input_signature=[image, image])
        def __call__(self, content, style):
            colour = tf.reduce_mean(tf.cast(style, tf.float64), axis=[1, 2], keepdims=True)  # exact sum
            return [0.5 * content + 0.5 * tf.cast(colour, tf.float32)]

    path = tmp_path_factory.mktemp("tiny_magenta")
    tf.saved_model.save(TinyStylizer(), str(path))
    return path


def write_png(folder, name, array):
    Image.fromarray(array.astype(np.uint8)).save(folder / name)
    return np.asarray(Image.open(folder / name), dtype=np.float32) / 255.0


def run(folder, **stylize_inputs):
    nodes = {
        "content": {"type": "LoadImage", "inputs": {"path": "content.png"}},
        "style": {"type": "LoadImage", "inputs": {"path": "style.png"}},
        "style2": {"type": "LoadImage", "inputs": {"path": "style2.png"}},
        "stylize": {
            "type": "HubStylize",
            "inputs": {
                "content": {"from": "content.image"},
                "style": {"from": "style.image"},
                "model_source": "tfhub",
                **stylize_inputs,
            },
        },
    }
    plan = build_plan(parse_graph({"nodes": nodes}), Settings(input_dir=folder), only=["stylize"])
    result = Executor().run(plan)
    assert result.status == "succeeded", result.error
    return result.values["stylize"]["image"]


@pytest.mark.slow  # imports TensorFlow (5-10 s)
def test_tfhub_route_loads_a_savedmodel_handle_and_blends(saved_model, tmp_path):
    rng = np.random.default_rng(1)
    content = write_png(tmp_path, "content.png", rng.integers(0, 256, (30, 42, 3)))  # not multiples of 4
    red = write_png(tmp_path, "style.png", np.full((50, 70, 3), (200, 40, 20)))[0, 0]
    blue = write_png(tmp_path, "style2.png", np.full((64, 64, 3), (10, 30, 220)))[0, 0]

    out = run(tmp_path, handle=str(saved_model))
    assert out.shape == content.shape and out.dtype == np.float32
    assert np.allclose(out, 0.5 * content + 0.5 * red, atol=1e-4)

    # Two styles, weighted 3:1: the TF Hub route mixes the two outputs.
    two = run(tmp_path, handle=str(saved_model), style2={"from": "style2.image"}, style_weights="3, 1")
    assert np.allclose(two, 0.5 * content + 0.5 * (0.75 * red + 0.25 * blue), atol=1e-4)


@pytest.mark.slow
def test_tfhub_strength_mixes_with_the_content_only_output(saved_model, tmp_path):
    content_colour = write_png(tmp_path, "content.png", np.full((24, 20, 3), (40, 160, 90)))[0, 0]
    red = write_png(tmp_path, "style.png", np.full((32, 32, 3), (200, 40, 20)))[0, 0]
    write_png(tmp_path, "style2.png", np.zeros((8, 8, 3)))
    out = run(tmp_path, handle=str(saved_model), strength=0.25)
    styled, own = 0.5 * content_colour + 0.5 * red, content_colour  # f(c, style), f(c, c)
    assert np.allclose(out, 0.25 * styled + 0.75 * own, atol=1e-4)


def test_offline_url_without_a_cached_copy_says_what_to_download_and_where(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    proc = cli(
        "run",
        "graphs/hub_starry.json",
        "--out",
        str(tmp_path / "out"),
        "-q",
        "--set",
        "stylize.model_source=tfhub",
        "--set",
        f"stylize.handle={UNREACHABLE}",
        timeout=120,
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert "node 'stylize' (HubStylize), input 'handle'" in err
    assert f"{UNREACHABLE}?tf-hub-format=compressed" in err  # what to download
    assert str(tmp_path / "tfhub") in err and "TFHUB_CACHE_DIR" in err  # where to put it
    assert "model_source 'onnx'" in err  # the offline alternative
    assert "Traceback" not in err


def test_missing_local_savedmodel_is_a_validation_error(tmp_path):
    graph = parse_graph(
        {
            "nodes": {
                "c": {"type": "LoadImage", "inputs": {"path": "astronaut.png"}},
                "stylize": {
                    "type": "HubStylize",
                    "inputs": {
                        "content": {"from": "c.image"},
                        "style": {"from": "c.image"},
                        "model_source": "tfhub",
                        "handle": str(tmp_path / "nope"),
                    },
                },
            }
        }
    )
    with pytest.raises(GraphInvalid) as info:
        build_plan(graph, only=["stylize"])
    issue = info.value.issues[0]
    assert (issue.node, issue.input) == ("stylize", "handle")
    assert "neither a TF Hub URL nor an existing directory" in issue.message
    (tmp_path / "empty").mkdir()
    graph.nodes["stylize"].inputs["handle"] = str(tmp_path / "empty")
    with pytest.raises(GraphInvalid, match="not a SavedModel directory"):
        build_plan(graph, only=["stylize"])
