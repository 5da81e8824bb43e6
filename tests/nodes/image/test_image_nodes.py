"""The framework-free image nodes, run through the real engine."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nodeflow.context import Settings
from nodeflow.errors import GraphInvalid
from nodeflow.executor import Executor
from nodeflow.graph import parse_graph
from nodeflow.plan import build_plan
from nodes.image.high_pass import pixel_differences


def run_nodes(nodes, tmp_path, input_dir=None, only=None):
    settings = Settings(input_dir=input_dir or tmp_path, output_dir=tmp_path / "out")
    plan = build_plan(parse_graph({"nodes": nodes}), settings, only=only)
    result = Executor().run(plan)
    assert result.status == "succeeded", result.error
    return result


def load(tmp_path, name, input_dir, **inputs):
    r = run_nodes(
        {"load": {"type": "LoadImage", "inputs": {"path": name, **inputs}}}, tmp_path, input_dir, only=["load"]
    )
    return r.values["load"]["image"]


def test_load_image_representation_and_max_size(tmp_path, assets):
    img = load(tmp_path, "starry_night.jpg", assets, max_size=512)
    assert img.dtype == np.float32 and img.flags.c_contiguous
    assert img.shape == (406, 512, 3)  # 1280x1014 scaled, aspect kept
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_load_image_honours_exif_orientation_and_converts_to_rgb(tmp_path):
    im = Image.new("L", (40, 20), 128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "rotated.jpg", exif=exif)
    img = load(tmp_path, "rotated.jpg", tmp_path)
    assert img.shape == (40, 20, 3)


def test_load_image_refuses_decompression_bombs(tmp_path, monkeypatch):
    import nodes.image.load_image as mod

    monkeypatch.setattr(mod, "MAX_PIXELS", 1000)
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    plan = build_plan(
        parse_graph({"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "big.png"}}}}),
        Settings(input_dir=tmp_path, output_dir=tmp_path),
        only=["load"],
    )
    result = Executor().run(plan)
    assert result.status == "failed"
    assert result.error.input == "path" and "megapixel" in result.error.message


def test_load_image_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GraphInvalid) as info:  # no image header: caught by validation
        build_plan(
            parse_graph({"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "broken.png"}}}}),
            Settings(input_dir=tmp_path, output_dir=tmp_path),
            only=["load"],
        )
    [issue] = info.value.issues
    assert (issue.node, issue.input) == ("load", "path") and "not a readable image" in issue.message
    # a header that reads, pixels cut short: a clear error at run time
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(whole, "PNG")
    (tmp_path / "broken.png").write_bytes(whole.getvalue()[:60])
    plan = build_plan(
        parse_graph({"nodes": {"load": {"type": "LoadImage", "inputs": {"path": "broken.png"}}}}),
        Settings(input_dir=tmp_path, output_dir=tmp_path),
        only=["load"],
    )
    result = Executor().run(plan)
    assert result.status == "failed" and result.error.node == "load" and result.error.input == "path"
    assert "is corrupt or unreadable (image file is truncated)" in result.error.message


def test_url_without_checksum_is_refused(tmp_path):
    with pytest.raises(GraphInvalid) as info:
        build_plan(
            parse_graph(
                {
                    "nodes": {
                        "load": {"type": "LoadImage", "inputs": {"path": "x.png", "url": "http://127.0.0.1:9/x.png"}}
                    }
                }
            ),
            Settings(input_dir=tmp_path, output_dir=tmp_path),
            only=["load"],
        )
    assert info.value.issues[0].input == "sha256"


def step_image() -> np.ndarray:
    img = np.zeros((16, 16, 3), np.float32)
    img[:, 8:] = 1.0  # a vertical edge
    return img


def test_sobel_finds_a_vertical_edge(tmp_path):
    from nodes.image.sobel import Sobel

    out = Sobel(None).run(step_image(), channels="gray", normalize="fixed")
    assert np.allclose(out["y"], 0.5)  # no vertical change
    assert np.allclose(out["x"][:, :6], 0.5) and np.allclose(out["x"][:, 10:], 0.5)
    # A unit step gives gx = 4 (the kernel's largest response) at the two columns beside it.
    assert np.allclose(out["magnitude"][:, 7:9], 4 / (4 * np.sqrt(2)), atol=1e-5)
    assert np.allclose(out["x"][:, 7:9], 0.5 + 4 / (2 * 4 * np.sqrt(2)), atol=1e-5)
    per_channel = Sobel(None).run(step_image(), channels="per_channel", normalize="max")
    assert per_channel["magnitude"].shape == (16, 16, 3) and per_channel["magnitude"].max() == 1.0


def test_high_pass_diff_matches_the_tf_tutorial_and_gaussian_of_flat_is_flat():
    from nodes.image.high_pass import HighPass

    rng = np.random.default_rng(0)
    img = rng.random((9, 7, 3), dtype=np.float32)
    dx, dy = pixel_differences(img)
    assert dx.shape == (9, 6, 3) and dy.shape == (8, 7, 3)
    assert np.allclose(dx, img[:, 1:] - img[:, :-1])
    view = HighPass(None).run(img, mode="diff", direction="x", sigma=1.0, gain=0.25)["image"]
    assert np.allclose(view[:, :-1], np.clip(0.5 + 0.25 * dx, 0, 1), atol=1e-6)
    flat = np.full((20, 20, 3), 0.3, np.float32)
    assert np.allclose(
        HighPass(None).run(flat, mode="gaussian", direction="both", sigma=2.0, gain=2.0)["image"], 0.5, atol=1e-5
    )


def test_match_colors_takes_the_reference_palette_and_invents_no_colour_in_flat_images():
    from nodes.image.match_colors import MatchColors

    rng = np.random.default_rng(1)
    image = rng.random((40, 30, 3)).astype(np.float32) * 0.4 + 0.1  # a dim, grey-ish image
    mix = np.array([[0.5, 0.3, 0.0], [0.0, 0.2, 0.1], [0.1, 0.0, 0.3]])
    reference = np.clip(rng.random((50, 20, 3)) @ mix.T + [0.2, 0.3, 0.4], 0, 1).astype(np.float32)
    out = MatchColors(None).run(image, reference, strength=1.0)["image"]
    assert out.shape == (40, 30, 3) and out.dtype == np.float32
    pixels, ref = out.reshape(-1, 3), reference.reshape(-1, 3)
    assert np.allclose(pixels.mean(0), ref.mean(0), atol=2e-3)
    assert np.allclose(np.cov(pixels, rowvar=False), np.cov(ref, rowvar=False), atol=2e-3)
    # Strength 0 is the image itself; a half blends linearly.
    assert np.allclose(MatchColors(None).run(image, reference, strength=0.0)["image"], image, atol=1e-6)
    half = MatchColors(None).run(image, reference, strength=0.5)["image"]
    assert np.allclose(half, (image + out) / 2, atol=1e-5)
    # A flat image has no colour spread to scale: it moves to the reference's mean, no noise invented.
    flat = np.full((8, 8, 4), 0.6, np.float32)
    moved = MatchColors(None).run(flat, reference, strength=1.0)["image"]
    assert moved.shape == (8, 8, 3) and np.allclose(moved, ref.mean(0), atol=1e-5)
    one_pixel = MatchColors(None).run(image[:1, :1], reference, strength=1.0)["image"]
    assert np.allclose(one_pixel, ref.mean(0), atol=1e-5)


def test_match_colors_refuses_a_strength_outside_0_to_1_naming_the_node_and_input(tmp_path):
    graph = parse_graph(
        {
            "nodes": {
                "load": {"type": "LoadImage", "inputs": {"path": "a.png"}},
                "palette": {
                    "type": "MatchColors",
                    "inputs": {"image": {"from": "load.image"}, "reference": {"from": "load.image"}, "strength": 2},
                },
            }
        }
    )
    with pytest.raises(GraphInvalid) as info:
        build_plan(graph, Settings(input_dir=tmp_path, output_dir=tmp_path))
    assert ("palette", "strength") in {(i.node, i.input) for i in info.value.issues}


def test_grid_layout_and_labels():
    from nodes.image.grid import Grid

    a = np.zeros((50, 100, 3), np.float32)
    b = np.ones((100, 100, 1), np.float32)
    slots = {f"image{i}": None for i in range(1, 9)} | {f"label{i}": "" for i in range(1, 9)}
    slots.update(image1=a, image2=b)
    out = Grid(None).run(columns=0, cell_height=100, padding=10, background="white", **slots)["image"]
    assert out.shape == (100 + 20, 200 + 100 + 30, 3)  # a scaled to 200x100
    slots.update(label1="first")
    labelled = Grid(None).run(columns=1, cell_height=100, padding=10, background="white", **slots)["image"]
    assert labelled.shape[0] > 2 * 100 + 30
    assert labelled[100 + 10 : 100 + 10 + 28, 10:210].min() < 0.5  # the caption drew dark pixels


def test_save_numbers_names_embeds_graph_and_never_overwrites_silently(tmp_path, assets):
    nodes = {
        "load": {"type": "LoadImage", "inputs": {"path": "chelsea.png", "max_size": 64}},
        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "cat.png"}},
    }
    out = tmp_path / "out"
    run_nodes(nodes, tmp_path, assets)
    assert (out / "cat.png").exists()
    # Same result again: the file already holds it, nothing new is written.
    r = run_nodes(nodes, tmp_path, assets)
    assert r.nodes["save"].state == "cached" and sorted(p.name for p in out.iterdir()) == ["cat.png"]
    # A different image under the same name gets a numbered name.
    nodes["load"]["inputs"]["max_size"] = 32
    run_nodes(nodes, tmp_path, assets)
    assert sorted(p.name for p in out.iterdir()) == ["cat.png", "cat_0001.png"]
    with Image.open(out / "cat_0001.png") as im:
        assert im.size == (32, 21) and '"LoadImage"' in im.info["nodeflow:graph"]
    # overwrite replaces in place.
    nodes["load"]["inputs"]["max_size"] = 16
    nodes["save"]["inputs"]["overwrite"] = True
    run_nodes(nodes, tmp_path, assets)
    with Image.open(out / "cat.png") as im:
        assert im.size == (16, 11)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_save_jpeg_and_rejects_unknown_extension(tmp_path, assets):
    nodes = {
        "load": {"type": "LoadImage", "inputs": {"path": "coffee.png", "max_size": 40}},
        "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "c.jpg"}},
    }
    run_nodes(nodes, tmp_path, assets)
    with Image.open(tmp_path / "out" / "c.jpg") as im:
        assert im.format == "JPEG" and im.size == (40, 27)
    nodes["save"]["inputs"]["filename"] = "c.gif"
    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph({"nodes": nodes}), Settings(input_dir=assets, output_dir=tmp_path))
    assert (info.value.issues[0].node, info.value.issues[0].input) == ("save", "filename")


def test_confined_paths_refuse_escapes(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link.png").symlink_to("/etc/hostname")
    settings = Settings(input_dir=tmp_path / "in", output_dir=tmp_path / "out", confine_paths=True)
    for bad in ("../x.png", "/etc/hostname", "link.png"):
        with pytest.raises(GraphInvalid) as info:
            build_plan(
                parse_graph({"nodes": {"load": {"type": "LoadImage", "inputs": {"path": bad}}}}),
                settings,
                only=["load"],
            )
        assert info.value.issues[0].input == "path"
