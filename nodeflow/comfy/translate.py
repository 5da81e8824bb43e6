"""API-format prompts <-> nodeflow graphs.

A prompt is {id: {"class_type", "inputs": {name: literal | [source id, output index]},
"_meta": {"title"}}} with ids such as "1" or "5:3". nodeflow ids are names, so each prompt
id maps to one (kept in `_meta.nodeflow.id` when a graph was the source, else derived from
the type and the id), and the map is kept with the job to translate every event back.
What a prompt has no place for (a node's device, the graph's title and defaults) travels in
`_meta.nodeflow` and in the workflow's `extra.nodeflow`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nodeflow.comfy.catalogue import (
    COMFY_LOAD_IMAGE,
    EDITOR_ONLY_INPUTS,
    LOAD_IMAGE,
    NODEFLOW_LOAD_IMAGE_EXTRAS,
    comfy_class_type,
    load_image_type,
    output_names,
    placeholder,
)
from nodeflow.errors import Issue
from nodeflow.graph import NODE_ID_PATTERN, as_link
from nodeflow.registry import load_nodes

META_KEY = "nodeflow"


class PromptInvalid(Exception):
    """The prompt is not a prompt at all (not an object of node objects)."""


@dataclass
class Translation:
    graph: dict[str, Any]
    ids: dict[str, str]  # prompt id -> nodeflow id
    issues: list[Issue] = field(default_factory=list)  # found while translating (nodeflow ids)

    @property
    def back(self) -> dict[str, str]:
        return {nf: cid for cid, nf in self.ids.items()}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _nodeflow_ids(prompt: dict[str, dict]) -> dict[str, str]:
    """Keep a node's nodeflow id from `_meta` when it is valid and unique; else derive one
    from its type and prompt id ("5:3" of Sobel -> sobel_5_3)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for cid, node in prompt.items():
        kept = ((node.get("_meta") or {}).get(META_KEY) or {}).get("id")
        if isinstance(kept, str) and re.fullmatch(NODE_ID_PATTERN, kept) and kept not in taken:
            ids[cid] = kept
            taken.add(kept)
    for cid, node in prompt.items():
        if cid in ids:
            continue
        base = _snake(str(node.get("class_type") or "node"))
        base = re.sub(r"[^A-Za-z0-9_]", "_", f"{base}_{cid}")
        if not re.match(r"[A-Za-z_]", base):
            base = f"n{base}"
        nid, n = base, 1
        while nid in taken:
            n += 1
            nid = f"{base}_{n}"
        ids[cid] = nid
        taken.add(nid)
    return ids


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def check_prompt(prompt: Any) -> dict[str, dict]:
    if not isinstance(prompt, dict) or not prompt:
        raise PromptInvalid("the prompt must be a non-empty object of nodes")
    for cid, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise PromptInvalid(f"node {cid!r} must be an object with a class_type")
        if not isinstance(node.get("inputs", {}), dict):
            raise PromptInvalid(f"node {cid!r}: inputs must be an object")
    return prompt


def with_workflow_meta(prompt: dict[str, dict], workflow: Any) -> dict[str, dict]:
    """The prompt, each node's `_meta.nodeflow` taken from the editor workflow's node
    properties (the editor doesn't copy them into the prompt)."""
    if not isinstance(workflow, dict) or not isinstance(prompt, dict):
        return prompt
    kept = {
        str(n.get("id")): (n.get("properties") or {}).get(META_KEY)
        for n in workflow.get("nodes") or []
        if isinstance(n, dict)
    }
    out = {}
    for cid, node in prompt.items():
        if isinstance(node, dict) and isinstance(kept.get(cid), dict):
            node = {**node, "_meta": {**(node.get("_meta") or {}), META_KEY: kept[cid]}}
        out[cid] = node
    return out


def node_type(node: dict[str, Any]) -> str:
    """The nodeflow type a prompt node runs as: its class_type, except that LoadImage is
    ComfyUI's or nodeflow's as its inputs (or its kept nodeflow type) say."""
    ctype = node["class_type"]
    if ctype != LOAD_IMAGE:
        return ctype
    kept = ((node.get("_meta") or {}).get(META_KEY) or {}).get("type")
    return load_image_type(node.get("inputs") or {}, kept)


def _load_image_inputs(ntype: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A LoadImage's prompt inputs as the chosen node names them: ComfyUI's `image` is
    nodeflow's `path`; the upload button's value and unset nodeflow extras go."""
    out = {k: v for k, v in inputs.items() if k not in EDITOR_ONLY_INPUTS}
    if ntype == LOAD_IMAGE and "image" in out and "path" not in out:
        out["path"] = out.pop("image")
    if ntype == COMFY_LOAD_IMAGE:
        registry = load_nodes()
        specs = registry[LOAD_IMAGE].input_specs if LOAD_IMAGE in registry else {}
        for name in NODEFLOW_LOAD_IMAGE_EXTRAS:
            if name in out and name in specs and out[name] in (None, placeholder(specs[name])):
                del out[name]
    return out


def prompt_to_graph(prompt: Any, graph_info: dict | None = None) -> Translation:
    """A nodeflow graph (JSON) from a prompt. Placeholders the editor sends for unset
    optional inputs are dropped; a link to an output index that doesn't exist is named
    `output_N`, which the planner reports against the input."""
    prompt = check_prompt(prompt)
    registry = load_nodes()
    ids = _nodeflow_ids(prompt)
    nodes: dict[str, Any] = {}
    issues: list[Issue] = []
    types = {cid: node_type(node) for cid, node in prompt.items()}
    for cid, node in prompt.items():
        nid, ctype = ids[cid], types[cid]
        cls = registry.get(ctype)
        inputs: dict[str, Any] = {}
        given = node.get("inputs") or {}
        if node["class_type"] == LOAD_IMAGE:
            given = _load_image_inputs(ctype, given)
        for name, value in given.items():
            if _is_link(value):
                src = str(value[0])
                if src not in prompt:
                    issues.append(
                        Issue("missing_node", f"link to node {src!r}: the prompt has no such node", nid, name)
                    )
                    continue
                src_cls = registry.get(types[src])
                outs = output_names(src_cls) if src_cls else []
                out = outs[value[1]] if 0 <= value[1] < len(outs) else f"output_{value[1]}"
                inputs[name] = {"from": f"{ids[src]}.{out}"}
                continue
            spec = cls.input_specs.get(name) if cls else None
            if (
                spec is not None
                and not spec.required
                and spec.default is None
                and value == placeholder(spec)
                and value is not None
            ):
                continue  # the editor's "unset"
            inputs[name] = value
        entry: dict[str, Any] = {"type": ctype, "inputs": inputs}
        meta = node.get("_meta") or {}
        title = meta.get("title")
        if isinstance(title, str) and title and title not in (ctype, node["class_type"], nid):
            entry["title"] = title
        device = (meta.get(META_KEY) or {}).get("device")
        if isinstance(device, str) and device:
            entry["device"] = device
        if (meta.get(META_KEY) or {}).get("main") is True:
            entry["main"] = True
        nodes[nid] = entry
    if graph_info is None:
        graph_info = _kept_graph_info(prompt)
    graph: dict[str, Any] = {}
    for key in ("title", "description", "defaults"):
        if graph_info and graph_info.get(key):
            graph[key] = graph_info[key]
    graph["nodes"] = nodes
    return Translation(graph, ids, issues)


def _kept_graph_info(prompt: dict[str, dict]) -> dict | None:
    """The graph fields an API prompt written by `nodeflow convert --to api` keeps on a node."""
    for node in prompt.values():
        kept = ((node.get("_meta") or {}).get(META_KEY) or {}).get("graph")
        if isinstance(kept, dict):
            return kept
    return None


def comfy_ids(graph: dict[str, Any]) -> dict[str, str]:
    """nodeflow id -> prompt id, numbered in file order (what the editor would number)."""
    return {nid: str(i) for i, nid in enumerate(graph.get("nodes") or {}, start=1)}


def graph_info(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph-level fields a prompt has no place for."""
    return {k: graph[k] for k in ("title", "description", "defaults") if graph.get(k)}


def graph_to_prompt(graph: dict[str, Any], ids: dict[str, str] | None = None) -> dict[str, dict]:
    """An API-format prompt from a graph (JSON): links by output index, nodeflow ids and
    devices in `_meta.nodeflow`. Each node's title is its own title, else its nodeflow id, so
    titles are unique (clients address nodes by title). A LoadImage, nodeflow's or ComfyUI's,
    is ComfyUI's LoadImage with `image` (its nodeflow type kept in `_meta.nodeflow.type`)."""
    registry = load_nodes()
    ids = ids or comfy_ids(graph)
    nodes = graph.get("nodes") or {}
    prompt: dict[str, dict] = {}
    for nid, spec in nodes.items():
        inputs: dict[str, Any] = {}
        for name, value in (spec.get("inputs") or {}).items():
            link = as_link(value)
            if link is None or isinstance(link, str):
                inputs[name] = value
                continue
            src_cls = registry.get(str((nodes.get(link.node) or {}).get("type")))
            outs = output_names(src_cls) if src_cls else []
            index = outs.index(link.output) if link.output in outs else 0
            inputs[name] = [ids.get(link.node, link.node), index]
        meta: dict[str, Any] = {"title": spec.get("title") or nid, META_KEY: {"id": nid}}
        if spec.get("device"):
            meta[META_KEY]["device"] = spec["device"]
        if spec.get("main"):
            meta[META_KEY]["main"] = True
        ctype = comfy_class_type(spec["type"])
        if ctype == LOAD_IMAGE:
            meta[META_KEY]["type"] = spec["type"]
            if "path" in inputs:
                inputs = {"image": inputs.pop("path"), **inputs}
        prompt[ids[nid]] = {"inputs": inputs, "class_type": ctype, "_meta": meta}
    return prompt
