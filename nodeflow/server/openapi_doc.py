"""The OpenAPI document: FastAPI's, plus every node type's inputs, plus what the middleware
does: the bearer-token scheme, and the 401, 403, 413 and 422 answers that come from outside
the routes themselves."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..schema import graph_schema
from .auth import PUBLIC_PATHS
from .origin import SAFE_METHODS

SCHEME = "bearerAuth"
ERROR_REF = {"$ref": "#/components/schemas/ErrorMessage"}
INVALID_REF = {"$ref": "#/components/schemas/InvalidRequest"}


def _answer(description: str, ref: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def declare_guards(spec: dict, token_required: bool) -> dict:
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer TOKEN` when the server has a token (SSE and WebSocket "
        "routes also take `?token=`)",
    }
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            answers = op["responses"]
            if path not in PUBLIC_PATHS:
                # Without a token configured, no credentials are needed ({} = none).
                op["security"] = [{SCHEME: []}] if token_required else [{SCHEME: []}, {}]
                answers.setdefault("401", _answer("no bearer token, or the wrong one", ERROR_REF))
            if method.upper() not in SAFE_METHODS:
                answers.setdefault("403", _answer("the request comes from another site's page (Origin)", ERROR_REF))
                answers.setdefault("413", _answer("the body is over the size limit", ERROR_REF))
                answers.setdefault(
                    "422", _answer("invalid request or graph: every problem, by node and input", INVALID_REF)
                )
    return spec


def openapi_document(app: FastAPI, token_required: bool) -> dict[str, Any]:
    """FastAPI's schema, plus every node type's inputs from the node schemas
    (`nodeflow schema`), as components node_<Type> and GraphWithNodeTypes."""
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    graph = json.loads(json.dumps(graph_schema()).replace("#/$defs/", "#/components/schemas/"))
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(graph.pop("$defs"))
    graph.pop("$schema", None)
    graph.pop("$id", None)
    components["GraphWithNodeTypes"] = {
        **graph,
        "title": "GraphWithNodeTypes",
        "description": "The graph in a submit, with each node type's inputs spelled out.",
    }
    return declare_guards(spec, token_required=token_required)
