"""Graph files: reading, the pydantic model, and links.

    {"$schema": "schema/graph.schema.json", "title": "...", "defaults": {"device": "auto"},
     "nodes": {"load": {"type": "LoadImage", "inputs": {"path": "a.png"}},
               "edges": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}}}}

A link is an object with the single key "from" whose value is "node_id.output".
No literal input is ever such an object, so links and literals can't be confused.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import GraphInvalid, Issue

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
LINK_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*\.[A-Za-z_][A-Za-z0-9_]*$"
PNG_GRAPH_KEY = "nodeflow:graph"


@dataclass(frozen=True)
class Link:
    node: str
    output: str

    def __str__(self) -> str:
        return f"{self.node}.{self.output}"


def as_link(value: Any) -> Link | None | str:
    """Link for a link object, None for a literal, an error string for a malformed link."""
    if not (isinstance(value, dict) and "from" in value):
        return None
    ref = value["from"]
    if len(value) != 1 or not isinstance(ref, str) or not re.match(LINK_PATTERN, ref):
        return 'a link must be {"from": "node_id.output_name"}'
    node, output = ref.split(".", 1)
    return Link(node, output)


class GraphDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field("auto", description="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps")


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="node type, see `nodeflow nodes`")
    inputs: dict[str, Any] = Field(default_factory=dict)
    device: str | None = Field(None, description="overrides the graph's default device")
    title: str | None = None


class Graph(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_ref: str | None = Field(None, alias="$schema")
    title: str | None = None
    description: str | None = None
    defaults: GraphDefaults = Field(default_factory=GraphDefaults)
    nodes: dict[str, NodeSpec]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True, indent=2)


def parse_graph(data: Any, source: str = "graph") -> Graph:
    """Validate the file structure (not node types or inputs: see plan.py)."""
    if not isinstance(data, dict):
        raise GraphInvalid([Issue("invalid_structure", f'{source}: a graph must be a JSON object '
                                  f'with a "nodes" object, not a {type(data).__name__}')])
    try:
        graph = Graph.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            node = loc[1] if len(loc) > 1 and loc[0] == "nodes" else None
            inp = loc[3] if len(loc) > 3 and loc[2] == "inputs" else None
            where = ".".join(loc) or "(top level)"
            issues.append(Issue("invalid_structure", f"{source}: {where}: {err['msg']}", node, inp))
        raise GraphInvalid(issues) from None
    bad_ids = [i for i in graph.nodes if not re.match(NODE_ID_PATTERN, i)]
    if bad_ids:
        raise GraphInvalid([Issue("invalid_node_id", "node ids must start with a letter or _ and "
                                  "use only letters, digits, _ and -", i) for i in bad_ids])
    return graph


def read_graph_file(path: str | Path) -> Graph:
    """Read a graph from .json, or from a PNG written by Save (graph in its metadata)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GraphInvalid([Issue("file_not_found", f"graph file not found: {path}")]) from None
    except OSError as exc:
        raise GraphInvalid([Issue("file_unreadable", f"cannot read graph file {path}: {exc.strerror}")]) from None
    if raw.startswith(b"\x89PNG"):
        text = _graph_from_png(path)
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GraphInvalid([Issue("invalid_json", f"{path}: not UTF-8 text")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphInvalid([Issue("invalid_json", f"{path}: invalid JSON at line {exc.lineno}, "
                                  f"column {exc.colno}: {exc.msg}")]) from None
    return parse_graph(data, source=str(path))


def _graph_from_png(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            text = im.info.get(PNG_GRAPH_KEY)
    except (UnidentifiedImageError, OSError) as exc:
        raise GraphInvalid([Issue("file_unreadable", f"{path}: not a readable PNG ({exc})")]) from None
    if not text:
        raise GraphInvalid([Issue("no_graph", f"{path}: this PNG carries no nodeflow graph")])
    return text


def apply_overrides(graph: Graph, overrides: dict[str, Any]) -> Graph:
    """Apply {"node.input": value} overrides (CLI --set, HTTP submit)."""
    issues = []
    data = graph.model_copy(deep=True)
    for target, value in overrides.items():
        node, sep, inp = target.partition(".")
        if not sep or not inp:
            issues.append(Issue("invalid_override", f"override {target!r} must be NODE.INPUT"))
        elif node not in data.nodes:
            issues.append(Issue("unknown_node", f"override {target!r}: no such node", node, inp))
        else:
            data.nodes[node].inputs[inp] = value
    if issues:
        raise GraphInvalid(issues)
    return data
