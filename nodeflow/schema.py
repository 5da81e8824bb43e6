"""JSON Schema for graph files, generated from the node schemas."""

from __future__ import annotations

from typing import Any

from .graph import LINK_PATTERN, NODE_ID_PATTERN, GraphDefaults
from .registry import load_nodes

SCHEMA_ID = "https://nodeflow.dev/schema/graph.schema.json"

LINK_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["from"],
    "properties": {"from": {"type": "string", "pattern": f"^{LINK_PATTERN}$", "description": "node_id.output_name"}},
}


def _node_schema(cls: Any) -> dict[str, Any]:
    props: dict[str, dict[str, Any]] = {}
    for name, spec in cls.input_specs.items():
        link = {"$ref": "#/$defs/link"}
        literal = spec.literal_schema
        props[name] = {"anyOf": [literal, link]} if literal else dict(link)
        props[name]["description"] = f"{spec.port.name}. {spec.description}".strip()
    inputs = {"type": "object", "properties": props, "additionalProperties": False}
    required = [n for n, s in cls.input_specs.items() if s.required]
    if required:
        inputs["required"] = required
    return {
        "type": "object",
        "description": cls.description,
        "additionalProperties": False,
        "required": ["type"] + (["inputs"] if required else []),
        "properties": {
            "type": {"const": cls.type},
            "inputs": inputs,
            "device": {"type": "string"},
            "title": {"type": "string"},
            "main": {
                "type": "boolean",
                "description": "this output node's image is the job's main image (the queue's thumbnail)",
            },
        },
    }


def graph_schema() -> dict[str, Any]:
    nodes = load_nodes()
    defs = {f"node_{t}": _node_schema(c) for t, c in sorted(nodes.items())}
    defs["link"] = LINK_SCHEMA
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "nodeflow graph",
        "type": "object",
        "additionalProperties": False,
        "required": ["nodes"],
        "properties": {
            "$schema": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "defaults": GraphDefaults.model_json_schema(),
            "nodes": {
                "type": "object",
                "propertyNames": {"pattern": f"^{NODE_ID_PATTERN}$"},
                "additionalProperties": {"oneOf": [{"$ref": f"#/$defs/node_{t}"} for t in sorted(nodes)]},
            },
        },
        "$defs": defs,
    }
