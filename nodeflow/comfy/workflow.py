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

COLUMN_WIDTH, NODE_WIDTH, ROW_GAP = 420, 340, 50
TITLE_HEIGHT, SLOT_HEIGHT, WIDGET_HEIGHT = 30, 22, 26
OUTPUT_IMAGE_HEIGHT = 300  # room under a node for the image it shows
DS = {"scale": 0.6, "offset": [100, 230]}


def _node_height(cls: Any) -> int:
    names = slot_order(cls)
    widgets = sum(1 for n in names if is_widget(cls.input_specs[n])) + len(trailing_values(cls))
    sockets = max(len(names) - widgets, len(cls.output_specs))
    extra = OUTPUT_IMAGE_HEIGHT if cls.output_node or trailing_values(cls) else 0  # an output or upload preview
    return 20 + SLOT_HEIGHT * sockets + WIDGET_HEIGHT * widgets + extra


def graph_to_workflow(graph: dict[str, Any]) -> dict[str, Any]:
    from nodeflow.drawing.layout import columns

    registry = load_nodes()
    model = parse_graph(graph)
    pos = columns(model)
    ids = {nid: int(cid) for nid, cid in comfy_ids(graph).items()}
    nodes_in = graph["nodes"]
    links: list[list] = []
    out_links: dict[tuple[int, int], list[int]] = {}
    heights: dict[tuple[int, int], int] = {}
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
        col, row = pos[nid]
        ctype = comfy_class_type(cls.type)
        props: dict[str, Any] = {"Node name for S&R": ctype, META_KEY: {"id": nid}}
        if spec.get("device"):
            props[META_KEY]["device"] = spec["device"]
        if ctype == LOAD_IMAGE:  # nodeflow's or ComfyUI's: the prompt the editor queues runs the same one
            props[META_KEY]["type"] = cls.type
        if spec.get("main"):
            props[META_KEY]["main"] = True
        height = _node_height(cls)
        y = heights.get((col, row - 1), 0) if row else 0
        heights[(col, row)] = y + height + TITLE_HEIGHT + ROW_GAP
        node: dict[str, Any] = {
            "id": ids[nid],
            "type": ctype,
            "pos": [col * COLUMN_WIDTH, y],
            "size": [NODE_WIDTH, height],
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
        "extra": {META_KEY: graph_info(graph), "ds": DS},
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
