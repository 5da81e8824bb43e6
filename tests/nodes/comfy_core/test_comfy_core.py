"""ComfyUI's core image nodes, run through the real engine: ComfyUI's contracts (outputs,
counter naming, masks, sizes, blend modes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan


def run_nodes(nodes, tmp_path, input_dir=None):
    """Runs every node (a graph without an output node runs them all)."""
    settings = Settings(input_dir=input_dir or tmp_path, output_dir=tmp_path / "out", temp_dir=tmp_path / "temp")
    events = []
    plan = build_plan(parse_graph({"nodes": nodes}), settings, only=list(nodes))
    result = Executor().run(plan, emit=events.append)
    assert result.status == "succeeded", result.error
    return result, events


def loaded(name: str) -> dict:
    return {"load": {"type": "ComfyLoadImage", "inputs": {"image": name}}}


def test_load_image_gives_rgb_then_a_mask_from_alpha(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :5, 3] = 255  # left quarter opaque
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.new("RGB", (30, 12), (0, 0, 255)).save(tmp_path / "b.jpg")
    r, _ = run_nodes(
        {**loaded("a.png [input]"), "b": {"type": "ComfyLoadImage", "inputs": {"image": "b.jpg"}}}, tmp_path
    )
    image, mask = r.values["load"]["IMAGE"], r.values["load"]["MASK"]
    assert image.shape == (10, 20, 3) and image.dtype == np.float32
    assert mask.shape == (10, 20) and mask[:, :5].max() == 0.0 and mask[:, 5:].min() == 1.0  # 1 - alpha
    assert r.values["b"]["MASK"].shape == (64, 64) and not r.values["b"]["MASK"].any()  # no alpha: zeros


def test_a_missing_image_is_a_validation_error_on_the_image_input(tmp_path):
    with pytest.raises(GraphInvalid) as exc:
        build_plan(parse_graph({"nodes": loaded("nope.png")}), Settings(input_dir=tmp_path), only=["load"])
    issue = exc.value.issues[0]
    assert (issue.node, issue.input) == ("load", "image") and "nope.png" in issue.message


def test_a_file_that_is_no_image_is_a_validation_error_on_the_image_input(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": loaded("notes.png")}), Settings(input_dir=tmp_path), only=["load"])
    (issue,) = info.value.issues
    assert issue.node == "load" and issue.input == "image" and "not a readable image" in issue.message


def test_save_image_counts_like_comfyui_and_preview_goes_to_temp(tmp_path, assets):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "out" / "sub" / "shot_00007_.png")  # an earlier run's
    nodes = {
        **loaded("astronaut.png"),
        "small": {
            "type": "ImageScale",
            "inputs": {
                "image": {"from": "load.IMAGE"},
                "upscale_method": "area",
                "width": 32,
                "height": 0,
                "crop": "disabled",
            },
        },
        "save": {"type": "SaveImage", "inputs": {"images": {"from": "small.IMAGE"}, "filename_prefix": "sub/shot"}},
        "plain": {"type": "SaveImage", "inputs": {"images": {"from": "small.IMAGE"}}},
        "preview": {"type": "PreviewImage", "inputs": {"images": {"from": "small.IMAGE"}}},
    }
    r, _ = run_nodes(nodes, tmp_path, assets)
    saved = r.nodes["save"].outputs
    assert [p.split("/")[-1] for p in map(str, saved)] == ["shot_00008_.png"]
    assert str(r.nodes["plain"].outputs[0]).endswith("out/ComfyUI_00001_.png")
    with Image.open(saved[0]) as im:
        assert im.size == (32, 32) and "prompt" in im.info and "workflow" in im.info
    preview = str(r.nodes["preview"].outputs[0])
    assert preview.startswith(str(tmp_path / "temp")) and preview.endswith("_00001_.png")
    assert "ComfyUI_temp_" in preview
    r2, _ = run_nodes(nodes, tmp_path, assets)  # output nodes always run: the counter goes on
    assert str(r2.nodes["save"].outputs[0]).endswith("shot_00009_.png")


def test_a_filename_prefix_may_not_leave_the_output_folder(tmp_path, assets):
    nodes = {
        **loaded("astronaut.png"),
        "save": {"type": "SaveImage", "inputs": {"images": {"from": "load.IMAGE"}, "filename_prefix": "../x"}},
    }
    with pytest.raises(GraphInvalid) as exc:
        build_plan(parse_graph({"nodes": nodes}), Settings(input_dir=assets, output_dir=tmp_path / "out"))
    assert exc.value.issues[0].input == "filename_prefix"


def test_scale_scale_by_and_crop_sizes(tmp_path):
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "wide.png")

    def scaled(node_type, **inputs):
        nodes = {**loaded("wide.png"), "s": {"type": node_type, "inputs": {"image": {"from": "load.IMAGE"}, **inputs}}}
        return run_nodes(nodes, tmp_path)[0].values["s"]["IMAGE"]

    common = {"upscale_method": "bilinear", "crop": "disabled"}
    assert scaled("ImageScale", width=20, height=0, **common).shape == (10, 20, 3)  # aspect kept
    assert scaled("ImageScale", width=0, height=0, **common).shape == (20, 40, 3)  # unchanged
    assert scaled("ImageScale", width=10, height=10, **{**common, "crop": "center"}).shape == (10, 10, 3)
    out = scaled("ImageScaleBy", upscale_method="nearest-exact", scale_by=0.25)
    assert out.shape == (5, 10, 3) and np.allclose(out[..., 0], 1.0) and np.allclose(out[..., 1:], 0.0)


def test_invert_and_blend_modes(tmp_path):
    Image.new("RGB", (8, 8), (51, 102, 204)).save(tmp_path / "a.png")  # 0.2, 0.4, 0.8
    Image.new("RGB", (16, 4), (255, 255, 255)).save(tmp_path / "b.png")  # another size: resized to a's
    a = np.array([0.2, 0.4, 0.8], np.float32)

    def blended(mode, factor=1.0):
        nodes = {
            **loaded("a.png"),
            "b": {"type": "ComfyLoadImage", "inputs": {"image": "b.png"}},
            "inv": {"type": "ImageInvert", "inputs": {"image": {"from": "load.IMAGE"}}},
            "mix": {
                "type": "ImageBlend",
                "inputs": {
                    "image1": {"from": "load.IMAGE"},
                    "image2": {"from": "b.IMAGE"},
                    "blend_factor": factor,
                    "blend_mode": mode,
                },
            },
        }
        values = run_nodes(nodes, tmp_path)[0].values
        return values["inv"]["IMAGE"], values["mix"]["IMAGE"]

    inv, mix = blended("multiply")
    assert np.allclose(inv[0, 0], 1 - a, atol=1e-6)
    assert mix.shape == (8, 8, 3) and np.allclose(mix[0, 0], a, atol=1e-6)  # a * 1
    assert np.allclose(blended("screen")[1][0, 0], 1.0, atol=1e-6)
    assert np.allclose(blended("difference")[1][0, 0], 0.0, atol=1e-6)  # a - 1, clamped
    assert np.allclose(blended("normal", 0.5)[1][0, 0], (a + 1) / 2, atol=1e-6)


def test_save_image_websocket_delivers_the_full_image(tmp_path):
    Image.new("RGB", (300, 200), (0, 255, 0)).save(tmp_path / "big.png")
    nodes = {**loaded("big.png"), "ws": {"type": "SaveImageWebsocket", "inputs": {"images": {"from": "load.IMAGE"}}}}
    r, events = run_nodes(nodes, tmp_path)
    delivered = [e for e in events if getattr(e, "kind", "") == "node_preview" and e.full]
    assert len(delivered) == 1 and delivered[0].image.shape == (200, 300, 3)
    assert r.nodes["ws"].outputs == []  # nothing written
