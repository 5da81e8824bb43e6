"""Strict JSON bodies for every route, as ASGI middleware before any parsing.

FastAPI reads bodies with json.loads, which quietly drops repeated keys, accepts NaN and
Infinity, and fails with a 400 or a 500 on integers past the int-string limit or nesting
past the recursion limit. Here every JSON body is read once with nodeflow.jsonload first:
any such problem is a 422 that names its place (node and input inside a graph), and the
body is then handed on unchanged. Covers routes that other packages add too (a ComfyUI
{"prompt": ...} is located by node and input like nodeflow's {"graph": ...}).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import Issue
from ..jsonload import graph_location, loads, path_text
from .auth import _header, _send_json

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# ComfyUI's routes read their bodies as JSON whatever the content type says (the editor sends
# text/plain, ComfyUI's example scripts a form type): they get the same checks.
RAW_JSON_PATHS = frozenset(
    p + route for p in ("", "/api") for route in ("/prompt", "/queue", "/interrupt", "/history", "/settings")
)


def _is_json(scope: dict) -> bool:
    ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        return True
    return scope.get("path") in RAW_JSON_PATHS and not ctype.startswith("multipart/")


def body_issues(body: bytes) -> tuple[str, list[dict]] | None:
    """(error code, issues) for a body that must be refused, or None."""
    try:
        _, problems = loads(body)
    except UnicodeDecodeError:
        return "invalid_request", [
            {"code": "invalid_json", "message": "the body is not UTF-8 text", "node": None, "input": None}
        ]
    except json.JSONDecodeError as exc:
        return "invalid_request", [
            {
                "code": "invalid_json",
                "message": f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                "node": None,
                "input": None,
            }
        ]
    if not problems:
        return None
    issues = []
    in_graph = False
    for p in problems:
        node = inp = None
        if p.path[:1] in (("graph",), ("prompt",)):
            in_graph = True
            # nodeflow's graph has its nodes under "nodes"; a ComfyUI prompt is the nodes object itself.
            node, inp = graph_location(p.path[1:] if p.path[0] == "graph" else ("nodes",) + p.path[1:])
        issues.append(Issue(p.code, f"request body: {path_text(p.path)}: {p.message}", node, inp).to_dict())
    return ("invalid_graph" if in_graph else "invalid_request"), issues


class StrictJSON:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS or not _is_json(scope):
            return await self.app(scope, receive, send)
        chunks = []
        while True:  # the body limit (outside this middleware) bounds what is read here
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        refused = body_issues(body) if body.strip() else None
        if refused is not None:
            code, issues = refused
            return await _send_json(send, 422, {"error": code, "issues": issues})
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
