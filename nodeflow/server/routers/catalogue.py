"""The catalogue: node types (from their declared schemas), the graph JSON Schema, and the
graphs bundled with nodeflow."""

from __future__ import annotations

import json
from typing import Any, cast

from fastapi import APIRouter
from starlette.exceptions import HTTPException

from nodeflow.bundled import GRAPH_NAME, bundled_graphs
from nodeflow.bundled import GRAPHS_DIR as BUNDLED_GRAPHS
from nodeflow.node import Node
from nodeflow.registry import load_nodes

from .. import models as m

router = APIRouter(tags=["catalogue"])


def node_types() -> dict[str, type[Node]]:
    return cast(dict[str, type[Node]], load_nodes())


@router.get("/nodes", response_model=list[m.NodeInfo])
def nodes() -> Any:
    """Every node type, from its declared schema."""
    return [cls.describe() for _, cls in sorted(node_types().items())]


@router.get("/nodes/{node_type}", response_model=m.NodeInfo, responses={404: {"model": m.ErrorMessage}})
def node(node_type: str) -> Any:
    cls = node_types().get(node_type)
    if cls is None:
        raise HTTPException(404, f"no node type {node_type!r}")
    return cls.describe()


@router.get("/schema")
def schema() -> Any:
    """The JSON Schema of graphs, with every node type's inputs (as `nodeflow schema`)."""
    from nodeflow.schema import graph_schema

    return graph_schema()


@router.get("/graphs", response_model=list[m.GraphInfo])
def graphs() -> Any:
    """The graphs bundled with nodeflow."""
    out = []
    for name, data in bundled_graphs().items():
        out.append(
            m.GraphInfo(
                name=name,
                title=data.get("title"),
                description=data.get("description"),
                url=f"/graphs/{name}",
            )
        )
    return out


@router.get("/graphs/{name}", responses={404: {"model": m.ErrorMessage}})
def graph(name: str) -> Any:
    """One bundled graph, ready to submit as `graph`."""
    path = BUNDLED_GRAPHS / f"{name}.json"
    if not GRAPH_NAME.fullmatch(name) or not path.is_file():
        raise HTTPException(404, f"no bundled graph {name!r}")
    return json.loads(path.read_text("utf-8"))
