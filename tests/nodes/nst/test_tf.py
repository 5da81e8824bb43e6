"""Style transfer on TensorFlow: the same objective as torch on the same weights, a tiny run
that lowers it, the Keras VGG19 download (from a local server, md5-checked), the fallback
chain, and the validation errors for mixed or unsupported frameworks."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from support.extras import import_extra

tf = import_extra("nst-tf", "tensorflow")
torch = import_extra("nst", "torch")


from support import nst_graphs  # noqa: E402
from support.nst_graphs import run  # noqa: E402

from nodeflow import events as ev  # noqa: E402
from nodeflow.context import CancelToken  # noqa: E402
from nodeflow.errors import GraphInvalid  # noqa: E402
from nodeflow.graph import parse_graph  # noqa: E402
from nodeflow.plan import build_plan  # noqa: E402
from nodes.nst import _tf_vgg, _vgg_models  # noqa: E402

L = lambda ref: {"from": ref}


@pytest.fixture(autouse=True)
def offline_vgg19(monkeypatch, tmp_path):
    """No VGG19 here: empty torch and Keras caches, and closed local ports for the downloads."""
    monkeypatch.setenv("NODEFLOW_VGG19_URL", "http://127.0.0.1:9/vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("NODEFLOW_KERAS_VGG19_URL", "http://127.0.0.1:9/" + _tf_vgg.KERAS_VGG19_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def tiny(framework: str = "tensorflow", optimizer: str = "AdamOptimize", vgg: dict | None = None, **opt_inputs) -> dict:
    return nst_graphs.tiny(optimizer, framework=framework, vgg=vgg, **opt_inputs)


def issues_of(graph: dict) -> list:
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(graph))
    return info.value.issues


def test_tf_objective_and_gradient_equal_torch_on_the_same_image_and_weights(assets):
    from PIL import Image

    from nodes._shared.pixels import fit_max_side, from_pil
    from nodes.nst import _losses, _objective, _tensors, _tf_optimize, _vgg_net

    load = lambda name: fit_max_side(from_pil(Image.open(assets / name).convert("RGB")), 64)
    content, style = load("astronaut.png"), load("starry_night.jpg")
    _vgg_models.clear_model_cache()  # both from this test's weights dir
    module, where = _vgg_models.load_source("vgg16", None, "cpu")
    model, tf_where = _vgg_models.load_source("vgg16", None, "cpu", framework="tensorflow")
    assert where == tf_where
    extractors = {
        "torch": _vgg_net.VGG(_vgg_net.SOURCES["vgg16"], module, where, "cpu", "vgg16"),
        "tensorflow": _tf_vgg.TFVGG(_tf_vgg.TF_SOURCES["vgg16"], model, where, "cpu", "vgg16"),
    }
    terms = {
        fw: [
            _losses.feature_term("style", vgg, style, ",".join(_losses.TUTORIAL_STYLE_LAYERS), 1e-2, "cpu"),
            _losses.feature_term("content", vgg, content, "block5_conv2", 1e4, "cpu"),
            _losses.LossTerm("tv", 30.0),
        ]
        for fw, vgg in extractors.items()
    }
    # A point away from the content image, so that every term is far from zero.
    x = np.clip(content + np.random.default_rng(0).normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    xt = _tensors.image_tensor(x, "cpu").requires_grad_(True)
    total_t, parts_t = _objective.Objective(terms["torch"], x.shape[:2], "cpu")(xt)
    grad_t = torch.autograd.grad(total_t, xt)[0][0].permute(1, 2, 0).numpy()
    xf = tf.Variable(x[None])
    with tf.GradientTape() as tape:
        total_f, parts_f = _tf_optimize.TFObjective(terms["tensorflow"], x.shape[:2], "cpu")(xf)
    grad_f = tape.gradient(total_f, xf).numpy()[0]
    assert float(total_f) == pytest.approx(float(total_t.detach()), rel=1e-3)
    for name, value in zip(["style", "content", "tv"], parts_f.numpy(), strict=False):
        assert value == pytest.approx(parts_t[name], rel=1e-3), name
    assert np.linalg.norm(grad_f - grad_t) / np.linalg.norm(grad_t) < 1e-3


def test_a_tiny_tensorflow_run_lowers_the_objective_with_progress_and_previews(isolated_env):
    result, events = run(tiny(steps=6, preview_every=3))
    assert result.status == "succeeded", result.error
    h = result.values["opt"]["history"]
    assert len(h["total"]) == 7 and h["total"][-1] < 0.7 * h["total"][0]
    assert set(h["terms"]) == {"style", "content", "tv"}
    img = result.values["opt"]["image"]
    assert img.shape == (48, 48, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    info = json.loads(result.values["opt"]["info"])
    assert (info["framework"], info["weights"], info["steps"]) == ("tensorflow", "vgg16", 6)
    assert [e.value for e in events if isinstance(e, ev.NodeProgress) and e.node == "opt"] == [1, 2, 3, 4, 5, 6]
    previews = [e for e in events if isinstance(e, ev.NodePreview) and e.node == "opt"]
    assert len(previews) == 2 and previews[0].image.shape == (48, 48, 3)
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.frameworks["opt"] == started.frameworks["style_loss"] == "tensorflow"
    assert "save" not in started.frameworks


def test_tensorflow_coarse_to_fine_with_cosine_lr_follows_the_torch_route_step_by_step():
    histories = {}
    for fw in ("torch", "tensorflow"):
        result, _ = run(
            tiny(framework=fw, steps=8, schedule="24:4,full:4", lr_schedule="cosine", lr=0.05, preview_every=0)
        )
        assert result.status == "succeeded", result.error
        assert result.values["opt"]["image"].shape == (48, 48, 3)
        histories[fw] = result.values["opt"]["history"]
    tf_h, torch_h = histories["tensorflow"], histories["torch"]
    assert tf_h["size"] == torch_h["size"] and tf_h["size"][3:5] == [[24, 24], [48, 48]]
    # Adam's moments and step count carry across the upsampling on both routes; the two
    # resamplers differ slightly, so the later steps agree to 1e-2.
    assert tf_h["total"] == pytest.approx(torch_h["total"], rel=1e-2)
    assert tf_h["total"][3] < 0.5 * tf_h["total"][0]


def test_tensorflow_run_cancels_cleanly():
    cancel = CancelToken()
    seen = []

    def on(e):
        if isinstance(e, ev.NodeProgress) and e.node == "opt":
            seen.append(e.value)
            if e.value == 2:
                cancel.cancel()

    result, _ = run(tiny(steps=50), cancel=cancel, emit=on)
    assert result.status == "cancelled" and max(seen) <= 3


def _keras_vgg19_h5(path) -> np.ndarray:
    """A VGG19 notop weights file in Keras's own (legacy .h5) format, with random weights;
    returns its block1_conv1 kernel."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = tf.keras.applications.VGG19(include_top=False, weights=None)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return model.get_layer("block1_conv1").get_weights()[0]


def test_keras_vgg19_downloads_once_with_progress_checks_md5_and_loads(tmp_path, http_dir, monkeypatch):
    root, url = http_dir
    kernel = _keras_vgg19_h5(root / _tf_vgg.KERAS_VGG19_FILE)
    md5 = hashlib.md5((root / _tf_vgg.KERAS_VGG19_FILE).read_bytes()).hexdigest()
    monkeypatch.setenv("NODEFLOW_KERAS_VGG19_URL", f"{url}/{_tf_vgg.KERAS_VGG19_FILE}")
    monkeypatch.setattr(_tf_vgg, "KERAS_VGG19_MD5", "0" * 32)
    dest = tmp_path / "keras" / "models" / _tf_vgg.KERAS_VGG19_FILE
    with pytest.raises(_tf_vgg.WeightsUnavailable, match="checksum mismatch"):
        _tf_vgg.keras_vgg19_file(None)
    assert not dest.exists()  # a bad download is not kept

    monkeypatch.setattr(_tf_vgg, "KERAS_VGG19_MD5", md5)
    progress, logs = [], []
    model, where = _tf_vgg.build_keras_vgg("vgg19", None, "cpu", lambda d, t: progress.append((d, t)), logs.append)
    assert where == str(dest) and dest.is_file() and len(logs) == 1
    assert progress and progress[-1][0] == progress[-1][1] == dest.stat().st_size
    np.testing.assert_array_equal(model.get_layer("block1_conv1").get_weights()[0], kernel)
    (root / _tf_vgg.KERAS_VGG19_FILE).unlink()  # cached now: no second download
    _tf_vgg.build_keras_vgg("vgg19", None, "cpu")
    with open(dest, "r+b") as f:  # a cached file that went bad is refused
        f.seek(4096)
        f.write(b"\0" * 64)
    with pytest.raises(_tf_vgg.WeightsUnavailable, match="md5"):
        _tf_vgg.build_keras_vgg("vgg19", None, "cpu")


def test_the_fallback_chain_works_on_tensorflow(isolated_env):
    _vgg_models.clear_model_cache()
    result, events = run(
        tiny(vgg={"model": "vgg19", "fallback": "vgg16", "framework": "tensorflow"}, steps=2, preview_every=0)
    )
    assert result.status == "succeeded", result.error
    lines = [e.message for e in events if isinstance(e, ev.Log) and "FALLBACK" in e.message]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "using vgg16 instead" in lines[0] and "Keras" in lines[0] and _tf_vgg.KERAS_VGG19_FILE in lines[0]
    from PIL import Image

    with Image.open(isolated_env["NODEFLOW_OUTPUT_DIR"] / "r.png") as im:
        info = json.loads(im.info["nodeflow:metadata"])
    assert info["weights"] == "vgg16 (fallback from vgg19)" and info["framework"] == "tensorflow"

    failed, events = run(tiny(vgg={"model": "vgg19", "framework": "tensorflow"}, steps=1))
    assert failed.status == "failed" and failed.error.input == "model"
    assert _tf_vgg.KERAS_VGG19_FILE in str(failed.error) and "put it at" in str(failed.error)
    assert not any(isinstance(e, ev.Log) and "FALLBACK" in e.message for e in events)


def test_mixing_frameworks_is_rejected_naming_the_node_and_input():
    graph = tiny(steps=1)
    graph["nodes"]["vgg_tf"] = {"type": "VGGFeatures", "inputs": {"model": "vgg16", "framework": "tensorflow"}}
    graph["nodes"]["vgg"]["inputs"]["framework"] = "torch"
    graph["nodes"]["content_loss"]["inputs"]["vgg"] = L("vgg_tf.vgg")
    issues = issues_of(graph)
    mixed = [i for i in issues if i.code == "mixed_frameworks"]
    assert [(i.node, i.input) for i in mixed] == [("opt", "loss2")]
    assert "tensorflow" in mixed[0].message and "torch" in mixed[0].message and "content_loss" in mixed[0].message


def test_lbfgs_and_bfloat16_reject_tensorflow_terms_at_validation():
    lbfgs = issues_of(tiny(optimizer="LBFGSOptimize", steps=1))
    assert [(i.code, i.node, i.input) for i in lbfgs] == [("unsupported_framework", "opt", "loss1")]
    assert "LBFGSOptimize runs on torch only" in lbfgs[0].message
    bf16 = issues_of(tiny(steps=1, precision="bfloat16"))
    assert [(i.code, i.node, i.input) for i in bf16] == [("invalid_input", "opt", "precision")]


def test_quick_tf_graph_on_the_cli_names_the_framework_in_the_placement_line(cli, tmp_path):
    done = cli(
        "run",
        "graphs/nst_quick.json",
        "--set",
        "vgg.framework=tensorflow",
        "--out",
        str(tmp_path),
        "--set",
        "optimize.steps=3",
    )
    assert done.returncode == 0, done.stderr
    placement = next(line for line in done.stderr.splitlines() if "placement:" in line)
    assert "cpu (tensorflow): vgg" in placement and "optimize" in placement.split("(tensorflow):")[1]
    assert "FALLBACK: vgg19 weights unavailable, using vgg16" in done.stderr
    from PIL import Image

    with Image.open(tmp_path / "nst_quick_output.png") as im:
        assert json.loads(im.info["nodeflow:metadata"])["framework"] == "tensorflow"
