"""object_info: what the ComfyUI editor reads of each node, and the widgets it builds from it."""

from __future__ import annotations

import json
import math

import pytest
from support.paths import ASSETS, GRAPHS

from nodeflow.comfy.catalogue import COMFY_LOAD_IMAGE, comfy_class_type, object_info, output_names
from nodeflow.registry import load_nodes

# An output's index in a ComfyUI link is its position here: this order is part of each
# node's public contract, so changing it must be a deliberate change of this test.
OUTPUT_ORDER = {
    "AdamOptimize": ["image", "history", "info"],
    "ComfyLoadImage": ["IMAGE", "MASK"],
    "ContentLoss": ["loss"],
    "Grid": ["image"],
    "HighPass": ["image"],
    "MatchColors": ["image"],
    "HubStylize": ["image"],
    "ImageBlend": ["IMAGE"],
    "ImageInvert": ["IMAGE"],
    "ImageScale": ["IMAGE"],
    "ImageScaleBy": ["IMAGE"],
    "LBFGSOptimize": ["image", "history", "info"],
    "LoadImage": ["image"],
    "MultiStyle": ["image"],
    "PlotLoss": ["image"],
    "PreviewImage": [],
    "SDImg2Img": ["image"],
    "Save": ["path"],
    "SaveImage": [],
    "SaveImageWebsocket": [],
    "Sobel": ["magnitude", "x", "y"],
    "StyleLoss": ["loss"],
    "StyleVector": ["vector"],
    "TVLoss": ["loss"],
    "VGGFeatures": ["vgg"],
}
REQUIRED_KEYS = {
    "input",
    "input_order",
    "output",
    "output_is_list",
    "output_name",
    "name",
    "display_name",
    "description",
    "category",
    "output_node",
    "python_module",
}


def bundled_nodes() -> dict:
    return {t: c for t, c in load_nodes().items() if c.__module__.startswith("nodes.")}


def shown_specs(info: dict, node_type: str) -> dict:
    """A node's inputs as the catalogue shows them: ComfyUI's LoadImage is shown as LoadImage,
    nodeflow's LoadImage's `path` as its `image`."""
    d = info[comfy_class_type(node_type)]["input"]
    specs = {**d["required"], **d["optional"]}
    if node_type == "LoadImage":
        specs["path"] = specs["image"]
    return specs


def test_every_bundled_node_keeps_its_output_order():
    assert {t: output_names(c) for t, c in bundled_nodes().items()} == OUTPUT_ORDER
    info = object_info(ASSETS)
    for node_type, outputs in OUTPUT_ORDER.items():
        if node_type != "LoadImage":  # nodeflow's LoadImage: its `image` is index 0, as ComfyUI's IMAGE
            assert info[comfy_class_type(node_type)]["output_name"] == outputs
    assert info["LoadImage"]["output_name"] == OUTPUT_ORDER[COMFY_LOAD_IMAGE]
    assert info["LoadImage"]["output"] == ["IMAGE", "MASK"]
    assert COMFY_LOAD_IMAGE not in info  # one LoadImage


def test_every_node_has_what_the_editor_needs():
    info = object_info(ASSETS)
    assert {comfy_class_type(t) for t in bundled_nodes()} <= set(info)
    for name, d in info.items():
        assert REQUIRED_KEYS <= set(d), name
        assert d["category"] and d["python_module"]
        assert d["input_order"] == {k: list(v) for k, v in d["input"].items()}
        for spec in [*d["input"]["required"].values(), *d["input"]["optional"].values()]:
            assert isinstance(spec[0], str)
    assert info["Save"]["output_node"] is True
    assert "tooltip" in info["AdamOptimize"]["input"]["optional"]["lr"][1]
    assert info["Sobel"]["input"]["optional"]["channels"] == [
        "COMBO",
        {"options": ["gray", "per_channel"], "default": "gray", "tooltip": "on luma, or on each channel"},
    ]


def widget_value(spec: list, typed: float) -> float:
    """What the editor's FLOAT/INT widget keeps of a typed value (its rounding and clamping,
    as in the frontend's onFloatValueChange / onValueChange)."""
    opts = spec[1]
    if spec[0] == "FLOAT":
        precision = max(0, -math.floor(math.log10(opts["step"])))
        value = round(round(typed / opts["round"]) * opts["round"], precision)
    else:
        value = round(typed)
    return min(max(value, opts["min"]), opts["max"])


def test_bundled_values_survive_the_widgets_exactly():
    info = object_info(ASSETS)
    for path in GRAPHS.glob("*.json"):
        for node in json.loads(path.read_text())["nodes"].values():
            inputs = {**info[node["type"]]["input"]["required"], **info[node["type"]]["input"]["optional"]}
            for name, value in node["inputs"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert widget_value(inputs[name], value) == value, (path.name, node["type"], name)
    adam = info["AdamOptimize"]["input"]["optional"]
    for name, typed in (("lr", 0.02), ("beta1", 0.99), ("epsilon", 0.1)):
        assert widget_value(adam[name], typed) == typed
    assert widget_value(info["StyleLoss"]["input"]["optional"]["weight"], 1e-2) == 1e-2
    assert widget_value(info["ContentLoss"]["input"]["optional"]["weight"], 1e4) == 1e4


def test_no_number_is_capped_below_its_real_maximum():
    info = object_info(ASSETS)
    for node_type, cls in bundled_nodes().items():
        described = cls.describe()["inputs"]
        specs = shown_specs(info, node_type)
        for name, d in described.items():
            if specs[name][0] not in ("INT", "FLOAT"):
                continue
            shown = specs[name][1]
            if "exclusiveMaximum" in d:  # the last step below it
                assert shown["max"] < d["exclusiveMaximum"] <= shown["max"] + shown["step"], (node_type, name)
            elif "maximum" in d:
                assert shown["max"] == d["maximum"], (node_type, name)
            else:
                assert shown["max"] >= 2**53, (node_type, name)
    assert info["HighPass"]["input"]["optional"]["sigma"][1]["max"] == 100


def test_seeds_stay_fixed_and_load_image_lists_the_input_folder():
    info = object_info(ASSETS)
    for node_type in ("AdamOptimize", "LBFGSOptimize", "SDImg2Img"):
        assert info[node_type]["input"]["optional"]["seed"][1]["control_after_generate"] == "fixed"
    path = info["LoadImage"]["input"]["required"]["image"]
    assert path[0] == "COMBO" and path[1]["image_upload"] is True
    assert "astronaut.png" in path[1]["options"] and "starry_night.jpg" in path[1]["options"]
    # an optional input whose default is None shows the placeholder 0, which the widget allows
    max_size = info["LoadImage"]["input"]["optional"]["max_size"][1]
    assert max_size["default"] == 0 and max_size["min"] == 0 and max_size["max"] == 16384


def test_every_advertised_min_and_max_is_a_value_the_server_accepts():
    """An exclusive bound (gt=0) is shown as the first step inside it: no client offers a
    value that validation then rejects. The one exception is the editor's "unset"
    placeholder of an optional input without a default, which /prompt drops."""
    from nodeflow.comfy.catalogue import placeholder

    info = object_info(ASSETS)
    checked = 0
    for node_type, cls in bundled_nodes().items():
        specs = shown_specs(info, node_type)
        for name, ispec in cls.input_specs.items():
            if specs[name][0] not in ("INT", "FLOAT"):
                continue
            for bound in ("min", "max"):
                value = specs[name][1][bound]
                if bound == "min" and ispec.default is None and value == placeholder(ispec):
                    continue
                ispec.validate_literal(value)  # raises if the server would reject it
                checked += 1
    assert checked > 40
    lr = info["AdamOptimize"]["input"]["optional"]["lr"][1]
    assert lr["min"] == lr["step"] > 0  # gt=0: the first step above 0
    beta2 = info["AdamOptimize"]["input"]["optional"]["beta2"][1]
    assert 1 - beta2["step"] == pytest.approx(beta2["max"]) and beta2["max"] < 1  # lt=1
    assert info["HighPass"]["input"]["optional"]["sigma"][1]["min"] > 0
