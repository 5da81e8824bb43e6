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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import jsonload
from .bundled import bundled_graph_names, bundled_graph_path, is_bare_name
from .errors import GraphInvalid, Issue, shown

# Patterns are always matched whole (re.fullmatch): "$" alone would let a final newline in.
NODE_ID_PATTERN = r"[A-Za-z_][A-Za-z0-9_\-]*"
LINK_PATTERN = r"[A-Za-z_][A-Za-z0-9_\-]*\.[A-Za-z_][A-Za-z0-9_]*"
MAX_ID = 128  # characters in a node id (they are printed on every progress line)
PNG_GRAPH_KEY = "nodeflow:graph"
# The type of a node whose structure was too broken to check further (already reported).
UNCHECKED = jsonload.Refused("unchecked", "the node's structure is invalid")


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
    if len(value) != 1 or not isinstance(ref, str) or not re.fullmatch(LINK_PATTERN, ref):
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
    main: bool | None = Field(
        None,
        description="this output node's image is the job's main image (its thumbnail in the editor's queue); "
        "without it: the first image saved by an output node that isn't a plot",
    )


class Graph(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_ref: str | None = Field(None, alias="$schema")
    title: str | None = None
    description: str | None = None
    defaults: GraphDefaults = Field(default_factory=GraphDefaults)
    nodes: dict[str, NodeSpec]

    def links(self) -> Iterator[tuple[str, str, Link]]:
        """(node id, input name, link) for every well-formed link to a node of this graph."""
        for nid, spec in self.nodes.items():
            for name, value in spec.inputs.items():
                link = as_link(value)
                if isinstance(link, Link) and link.node in self.nodes:
                    yield nid, name, link

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True, indent=2)


def _structure_issues(exc: ValidationError, source: str) -> list[Issue]:
    issues = []
    for err in exc.errors():
        if isinstance(err.get("input"), jsonload.Refused):
            continue  # already reported by the JSON reader
        loc = [str(p) for p in err["loc"]]
        node = loc[1] if len(loc) > 1 and loc[0] == "nodes" else None
        inp = loc[3] if len(loc) > 3 and loc[2] == "inputs" else None
        if node is not None and len(loc) == 3 and loc[2] == "device":
            inp = "device"
        where = jsonload.path_text(tuple(err["loc"]))
        issues.append(Issue("invalid_structure", f"{source}: {where}: {err['msg']}", node, inp))
    return issues


def _salvage(data: dict) -> Graph | None:
    """What can still be checked of a graph whose structure has problems: every node with a
    type and an inputs object (its other fields dropped), and valid defaults."""
    nodes = data.get("nodes")
    if not isinstance(nodes, dict):
        return None
    kept = {}
    for nid, spec in nodes.items():
        try:
            kept[nid] = NodeSpec.model_validate(spec)
        except ValidationError:
            if (
                isinstance(spec, dict)
                and isinstance(spec.get("type"), str)
                and isinstance(spec.get("inputs", {}), dict)
            ):
                kept[nid] = NodeSpec(type=spec["type"], inputs=spec.get("inputs", {}))
            else:  # kept, so links to it are not reported as links to nothing, but not checked
                kept[nid] = NodeSpec.model_construct(type=cast(Any, UNCHECKED), inputs={}, device=None, title=None)
    try:
        defaults = GraphDefaults.model_validate(data.get("defaults", {}))
    except ValidationError:
        defaults = GraphDefaults()
    return Graph.model_construct(nodes=kept, defaults=defaults, title=None, description=None, schema_ref=None)


def _device_issues(graph: Graph, source: str) -> list[Issue]:
    from .devices import name_problem

    issues = []
    problem = name_problem(graph.defaults.device)
    if problem:
        issues.append(Issue("invalid_device", f"{source}: defaults.device: {problem}"))
    for nid, spec in graph.nodes.items():
        problem = name_problem(spec.device) if spec.device is not None else None
        if problem:
            issues.append(Issue("invalid_device", problem, nid, "device"))
    return issues


def parse_graph(data: Any, source: str = "graph", problems: list[jsonload.Problem] | None = None) -> Graph:
    """Validate the file structure, node ids and device names (not node types or inputs:
    see plan.py). `problems` are the JSON reader's. Raises GraphInvalid with every issue,
    and with the part of the graph that can still be checked as `partial`."""
    issues = [_json_issue(p, source) for p in problems or []]
    if problems is None:
        data, found = jsonload.clean(data)  # a graph parsed elsewhere (an HTTP body)
        issues += [_json_issue(p, source) for p in found]
    if not isinstance(data, dict):
        if isinstance(data, jsonload.Refused) and issues:
            raise GraphInvalid(issues)  # the JSON reader said what is wrong, and where
        raise GraphInvalid(
            issues
            + [
                Issue(
                    "invalid_structure",
                    f'{source}: a graph must be a JSON object with a "nodes" object, not a {type(data).__name__}',
                )
            ]
        )
    try:
        graph: Graph | None = Graph.model_validate(data)
    except ValidationError as exc:
        issues += _structure_issues(exc, source)
        graph = _salvage(data)
    if graph is not None:
        issues += [
            Issue("invalid_node_id", f"a node id is at most {MAX_ID} characters, this one has {len(i)}", i[:40] + "...")
            for i in graph.nodes
            if len(i) > MAX_ID
        ]
        issues += [
            Issue("invalid_node_id", "node ids must start with a letter or _ and use only letters, digits, _ and -", i)
            for i in graph.nodes
            if len(i) <= MAX_ID and not re.fullmatch(NODE_ID_PATTERN, i)
        ]
        issues += _device_issues(graph, source)
    if issues or graph is None:
        raise GraphInvalid(issues, partial=graph)
    return graph


def _json_issue(problem: jsonload.Problem, source: str) -> Issue:
    """An Issue for a JSON reader's problem, by node and input when it lies in a node."""
    node, inp = jsonload.graph_location(problem.path)
    return Issue(problem.code, f"{source}: {jsonload.path_text(problem.path)}: {problem.message}", node, inp)


def read_graph_file(path: str | Path) -> Graph:
    """Read a graph from .json, or from a PNG written by Save (graph in its metadata)."""
    path = Path(path)
    name = shown(str(path))
    if not path.exists() and is_bare_name(str(path)):
        # A bare name with no such file: one of the graphs bundled with the package.
        bundled = bundled_graph_path(str(path))
        if bundled is None:
            names = ", ".join(bundled_graph_names()) or "none"
            raise GraphInvalid(
                [Issue("file_not_found", f"graph file not found: {name}, and no bundled graph of that name ({names})")]
            )
        path = bundled
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GraphInvalid([Issue("file_not_found", f"graph file not found: {name}")]) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = getattr(exc, "strerror", None) or str(exc)
        raise GraphInvalid([Issue("file_unreadable", f"cannot read graph file {name}: {reason}")]) from None
    text: str | bytes = _graph_from_png(path) if raw.startswith(b"\x89PNG") else raw
    try:
        data, problems = jsonload.loads(text)
    except UnicodeDecodeError:
        raise GraphInvalid([Issue("invalid_json", f"{name}: not UTF-8 text")]) from None
    except json.JSONDecodeError as exc:
        raise GraphInvalid(
            [Issue("invalid_json", f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    return parse_graph(data, source=str(path), problems=problems)


def _graph_from_png(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            text = im.info.get(PNG_GRAPH_KEY)
    except (UnidentifiedImageError, OSError) as exc:
        raise GraphInvalid([Issue("file_unreadable", f"{shown(str(path))}: not a readable PNG ({exc})")]) from None
    except Exception as exc:  # Pillow raises ValueError, SyntaxError, ... for malformed files
        raise GraphInvalid(
            [Issue("file_unreadable", f"{shown(str(path))}: a malformed PNG ({exc.__class__.__name__})")]
        ) from None
    if not text:
        raise GraphInvalid([Issue("no_graph", f"{shown(str(path))}: this PNG carries no nodeflow graph")])
    return text


def apply_overrides(graph: Graph, overrides: dict[str, Any]) -> Graph:
    """Apply {"node.input": value} overrides (CLI --set, HTTP submit)."""
    issues = []
    data = graph.model_copy(deep=True)
    for target, value in overrides.items():
        node, sep, inp = target.partition(".")
        if not sep or not inp:
            issues.append(Issue("invalid_override", f"override {shown(target)} must be NODE.INPUT"))
        elif node not in data.nodes:
            issues.append(Issue("unknown_node", f"override {shown(target)}: no such node", node, inp))
        else:
            data.nodes[node].inputs[inp] = value
    if issues:
        raise GraphInvalid(issues, partial=data)
    return data
