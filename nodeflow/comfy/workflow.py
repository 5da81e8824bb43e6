"""Editor workflows (the LiteGraph JSON the ComfyUI frontend saves) <-> nodeflow graphs.

A graph becomes a workflow laid out by nodeflow.drawing.layout.columns (the same left-to-right
columns as every other view); nodeflow ids and devices ride in each node's
`properties.nodeflow`, the graph's title, description and defaults in `extra.nodeflow`.
A node's slots are its inputs in the editor's order (link-only inputs, then those with a
widget); its widget values are its literal inputs in that order, a seed followed by its
control mode, and an upload button's value last.
"""

from __future__ import annotations

import uuid
from typing import Any

from nodeflow.comfy.catalogue import (
    LOAD_IMAGE,
    comfy_class_type,
    control_values,
    is_widget,
    output_names,
    placeholder,
    slot_order,
    trailing_values,
)
from nodeflow.comfy.translate import META_KEY, comfy_ids, graph_info, prompt_to_graph
from nodeflow.graph import as_link, parse_graph
from nodeflow.registry import load_nodes

# The editor's (LiteGraph's) metrics: a node's body is drawn below its `pos`, its title bar
# above it; a row of sockets, a widget and a multiline text box have these heights.
NODE_WIDTH, TITLE_HEIGHT, SLOT_HEIGHT, WIDGET_HEIGHT, MULTILINE_HEIGHT = 340, 30, 20, 24, 56
CHAR_WIDTH = 8  # a title or slot label's width per character, generously
OUTPUT_IMAGE_HEIGHT = 300  # room under a node for the image it shows
COLUMN_GAP, ROW_GAP = 80, 50
# The view a workflow opens with: the whole graph in the part of the editor's canvas that its
# side bar, tabs and Run bar leave free in a 1600 x 1000 window, never zoomed in past 1.
VIEW_LEFT, VIEW_TOP, VIEW_WIDTH, VIEW_HEIGHT, MAX_SCALE = 70, 100, 1480, 840, 1.0


def _is_multiline(cls: Any, name: str) -> bool:
    return cls.input_specs[name].port.name == "STRING" and name.endswith("prompt")


def node_size(cls: Any) -> tuple[int, int]:
    """(width, height) of a node's body as the editor draws it (title bar not included): a row
    per socket (link-only inputs beside outputs), a row per widget (a seed's control and an
    upload button included, a multiline text box taller), then room for the image an output or
    upload node shows. Never smaller than the editor's own computeSize, so it never grows them."""
    names = slot_order(cls)
    widget_names = [n for n in names if is_widget(cls.input_specs[n])]
    widgets = sum(1 + len(control_values(cls, n)) for n in widget_names) + len(trailing_values(cls))
    multiline = sum(1 for n in widget_names if _is_multiline(cls, n))
    sockets = max(len(names) - len(widget_names), len(cls.output_specs), 1)
    height = SLOT_HEIGHT * sockets + 6
    if widgets:
        height += WIDGET_HEIGHT * widgets + (MULTILINE_HEIGHT - WIDGET_HEIGHT) * multiline + 8
    if cls.output_node or trailing_values(cls):  # an output or upload preview
        height += OUTPUT_IMAGE_HEIGHT
    labels = [cls.type] + names + list(cls.output_specs)
    width = max(NODE_WIDTH, 60 + CHAR_WIDTH * max(len(s) for s in labels))
    return width, height


def _view(rects: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    """The editor's view (`extra.ds`) that shows all these rectangles, centred."""
    if not rects:
        return {"scale": MAX_SCALE, "offset": [0, 0]}
    x0 = min(r[0] for r in rects)
    y0 = min(r[1] for r in rects)
    x1 = max(r[0] + r[2] for r in rects)
    y1 = max(r[1] + r[3] for r in rects)
    scale = min(MAX_SCALE, VIEW_WIDTH / (x1 - x0), VIEW_HEIGHT / (y1 - y0))
    offset = [  # screen = (canvas + offset) * scale
        (VIEW_LEFT + (VIEW_WIDTH - (x1 - x0) * scale) / 2) / scale - x0,
        (VIEW_TOP + (VIEW_HEIGHT - (y1 - y0) * scale) / 2) / scale - y0,
    ]
    return {"scale": round(scale, 4), "offset": [round(v, 1) for v in offset]}


def graph_to_workflow(graph: dict[str, Any]) -> dict[str, Any]:
    from nodeflow.drawing.layout import place

    registry = load_nodes()
    model = parse_graph(graph)
    unknown = next((nid for nid, spec in graph["nodes"].items() if spec["type"] not in registry), None)
    if unknown is not None:
        raise ValueError(f"node {unknown!r}: unknown node type {graph['nodes'][unknown]['type']!r}")
    sizes = {nid: node_size(registry[spec["type"]]) for nid, spec in graph["nodes"].items()}
    # Each node's whole rectangle, title bar included, is what must not overlap.
    pos = place(model, {nid: (w, h + TITLE_HEIGHT) for nid, (w, h) in sizes.items()}, COLUMN_GAP, ROW_GAP)
    ids = {nid: int(cid) for nid, cid in comfy_ids(graph).items()}
    nodes_in = graph["nodes"]
    links: list[list] = []
    out_links: dict[tuple[int, int], list[int]] = {}
    nodes_out: list[tuple[dict[str, Any], Any]] = []  # (workflow node, its class)
    for order, (nid, spec) in enumerate(nodes_in.items()):
        cls = registry.get(spec["type"])
        if cls is None:
            raise ValueError(f"node {nid!r}: unknown node type {spec['type']!r}")
        slots, widgets = [], []
        for slot, name in enumerate(slot_order(cls)):
            ispec = cls.input_specs[name]
            value = spec.get("inputs", {}).get(name)
            link = as_link(value)
            entry: dict[str, Any] = {"name": name, "type": "COMBO" if ispec.choices else ispec.port.name, "link": None}
            if link is not None and not isinstance(link, str) and link.node in ids:
                src_cls = registry[nodes_in[link.node]["type"]]
                index = output_names(src_cls).index(link.output) if link.output in src_cls.output_specs else 0
                links.append(
                    [
                        len(links) + 1,
                        ids[link.node],
                        index,
                        ids[nid],
                        slot,
                        src_cls.output_specs[output_names(src_cls)[index]].port.name,
                    ]
                )
                out_links.setdefault((ids[link.node], index), []).append(len(links))
                entry["link"] = len(links)
                value = None
            if is_widget(ispec):
                entry["widget"] = {"name": name}
                shown = value if value is not None and link is None else ispec.default
                widgets += [shown if shown is not None else placeholder(ispec), *control_values(cls, name)]
            slots.append(entry)
        widgets += trailing_values(cls)
        ctype = comfy_class_type(cls.type)
        props: dict[str, Any] = {"Node name for S&R": ctype, META_KEY: {"id": nid}}
        if spec.get("device"):
            props[META_KEY]["device"] = spec["device"]
        if ctype == LOAD_IMAGE:  # nodeflow's or ComfyUI's: the prompt the editor queues runs the same one
            props[META_KEY]["type"] = cls.type
        if spec.get("main"):
            props[META_KEY]["main"] = True
        x, y = pos[nid]
        node: dict[str, Any] = {
            "id": ids[nid],
            "type": ctype,
            "pos": [x, y + TITLE_HEIGHT],  # the body's top; the title bar is drawn above it
            "size": list(sizes[nid]),
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": slots,
            "outputs": [],
            "properties": props,
            "widgets_values": widgets,
        }
        node["title"] = spec.get("title") or nid  # unique: clients address nodes by title
        nodes_out.append((node, cls))
    rects = [(n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["size"][0], n["size"][1] + TITLE_HEIGHT) for n, _ in nodes_out]
    for node, cls in nodes_out:
        node["outputs"] = [
            {
                "name": o,
                "type": cls.output_specs[o].port.name,
                "links": out_links.get((node["id"], i), []),
                "slot_index": i,
            }
            for i, o in enumerate(output_names(cls))
        ]
    return {
        "id": str(uuid.uuid4()),
        "revision": 0,
        "last_node_id": len(nodes_out),
        "last_link_id": len(links),
        "nodes": [n for n, _ in nodes_out],
        "links": links,
        "groups": [],
        "config": {},
        "extra": {META_KEY: graph_info(graph), "ds": _view(rects)},
        "version": 0.4,
    }


def _widget_values(cls: Any, node: dict) -> dict[str, Any]:
    values = node.get("widgets_values")
    if isinstance(values, dict):
        return values
    out, i = {}, 0
    values = values or []
    for name in slot_order(cls):
        if not is_widget(cls.input_specs[name]):
            continue
        if i < len(values):
            out[name] = values[i]
        i += 1 + len(control_values(cls, name))
    return out


def workflow_to_prompt(workflow: dict[str, Any]) -> dict[str, dict]:
    """The API-format prompt the editor would queue for this workflow (muted and bypassed
    nodes left out)."""
    registry = load_nodes()
    link_src = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            link_src[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:
            link_src[link[0]] = (link[1], link[2])
    prompt: dict[str, dict] = {}
    for node in workflow.get("nodes") or []:
        if node.get("mode", 0) in (2, 4):
            continue
        cls = registry.get(node.get("type"))
        if cls is None:
            raise ValueError(f"workflow node {node.get('id')}: unknown node type {node.get('type')!r}")
        inputs: dict[str, Any] = dict(_widget_values(cls, node))
        if cls.type == LOAD_IMAGE:  # ComfyUI's names: `image`, and the upload button's value last
            inputs = {("image" if k == "path" else k): v for k, v in inputs.items() if v != "image"}
        for slot in node.get("inputs") or []:
            if slot.get("link") in link_src and slot.get("name") in cls.input_specs:
                src, index = link_src[slot["link"]]
                inputs[slot["name"]] = [str(src), index]
        meta: dict[str, Any] = {"title": node.get("title") or cls.type}
        kept = (node.get("properties") or {}).get(META_KEY)
        if isinstance(kept, dict):
            meta[META_KEY] = kept
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": cls.type, "_meta": meta}
    return prompt


def workflow_to_graph(workflow: dict[str, Any]) -> dict[str, Any]:
    info = (workflow.get("extra") or {}).get(META_KEY) or {}
    return prompt_to_graph(workflow_to_prompt(workflow), info).graph
