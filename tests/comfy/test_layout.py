"""Editor workflows are laid out with each node's real size: no two nodes of a bundled graph
(as a template, and as `nodeflow convert` writes it, from the graph or from its API prompt)
overlap, title bars included, and the view the workflow opens with shows all of them."""

from __future__ import annotations

import json

import pytest

from nodeflow.bundled import GRAPHS_DIR as BUNDLED_GRAPHS
from nodeflow.comfy.convert import convert
from nodeflow.comfy.workflow import TITLE_HEIGHT, VIEW_HEIGHT, VIEW_LEFT, VIEW_TOP, VIEW_WIDTH, graph_to_workflow

GRAPH_FILES = sorted(BUNDLED_GRAPHS.glob("*.json"))


def rects(workflow: dict) -> dict[int, tuple[float, float, float, float]]:
    """{node id: (x, y, w, h)} as the editor draws it: the title bar above `pos`."""
    return {
        n["id"]: (n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["size"][0], n["size"][1] + TITLE_HEIGHT)
        for n in workflow["nodes"]
    }


def overlapping(workflow: dict) -> list[tuple[str, str]]:
    r = rects(workflow)
    types = {n["id"]: f"{n['type']}#{n['id']}" for n in workflow["nodes"]}
    ids = sorted(r)
    out = []
    for i, a in enumerate(ids):
        ax, ay, aw, ah = r[a]
        for b in ids[i + 1 :]:
            bx, by, bw, bh = r[b]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((types[a], types[b]))
    return out


def test_there_are_bundled_graphs_to_check():
    assert len(GRAPH_FILES) >= 7


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.stem)
def test_no_two_nodes_overlap_in_a_bundled_graphs_workflow(path):
    graph = json.loads(path.read_text("utf-8"))
    template = graph_to_workflow(graph)
    assert overlapping(template) == []
    kind, converted = convert(graph, "workflow")  # what `nodeflow convert g.json wf.json` writes
    assert kind == "workflow" and overlapping(converted) == []
    _, prompt = convert(graph, "api")
    _, from_prompt = convert(prompt, "workflow")  # an API prompt converted to a workflow
    assert overlapping(from_prompt) == []


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: p.stem)
def test_the_opening_view_shows_every_node(path):
    workflow = graph_to_workflow(json.loads(path.read_text("utf-8")))
    ds = workflow["extra"]["ds"]
    scale, (ox, oy) = ds["scale"], ds["offset"]
    assert 0 < scale <= 1
    for x, y, w, h in rects(workflow).values():  # screen = (canvas + offset) * scale
        assert VIEW_LEFT - 1 <= (x + ox) * scale and (x + w + ox) * scale <= VIEW_LEFT + VIEW_WIDTH + 1
        assert VIEW_TOP - 1 <= (y + oy) * scale and (y + h + oy) * scale <= VIEW_TOP + VIEW_HEIGHT + 1


def test_rows_stack_whatever_the_file_order_and_sizes():
    """Nodes listed in the file before the node above them in their column, tall and short:
    the stacking follows the rows, not the file order (a later row once landed at y 0)."""
    graph = {
        "nodes": {
            "late": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
            "opt": {
                "type": "AdamOptimize",
                "inputs": {
                    "vgg": {"from": "vgg.vgg"},
                    "content": {"from": "load.image"},
                    "loss1": {"from": "tv.loss"},
                },
            },
            "tv": {"type": "TVLoss", "inputs": {}},
            "vgg": {"type": "VGGFeatures", "inputs": {}},
            "load": {"type": "LoadImage", "inputs": {"path": "a.png"}},
            "hp": {"type": "HighPass", "inputs": {"image": {"from": "load.image"}}},
            "save": {"type": "Save", "inputs": {"image": {"from": "opt.image"}, "filename": "x.png"}},
        }
    }
    workflow = graph_to_workflow(graph)
    assert overlapping(workflow) == []
    by_type = {n["type"]: n for n in workflow["nodes"]}
    # The optimizer, the tallest node, and its output node to its right clear each other.
    opt, save = by_type["AdamOptimize"], by_type["Save"]
    assert save["pos"][0] >= opt["pos"][0] + opt["size"][0]
