"""The app's exception handlers: an HTTP error is answered {"error": code, "message": text},
an invalid request body with the CLI's own issue list (every problem, by node and input)."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request

from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.planning import plan_request

from ..errors import GraphInvalid, shown

CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict", 413: "body_too_large"}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def issues_from_request(exc: RequestValidationError, config: ServerConfig) -> tuple[str, list[dict]]:
    """A bad submit body gets the CLI's own issue list: its graph goes through every stage
    of validation, and the rest of the body's problems are added."""
    body = getattr(exc, "body", None)
    issues: list[dict] = []
    graph_problem = False
    if isinstance(body, dict) and "graph" in body:
        overrides, only = body.get("overrides"), body.get("only")
        request = {
            "graph": body["graph"],
            "overrides": overrides if isinstance(overrides, dict) else {},
            "only": only if isinstance(only, list) and all(isinstance(o, str) for o in only) else None,
        }
        try:
            plan_request(config, "validation", request)
        except GraphInvalid as gi:
            issues += [i.to_dict() for i in gi.issues]
            graph_problem = True
    request_problem = False
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if graph_problem and loc[:2] == ["body", "graph"]:
            continue  # reported above, by node and input
        request_problem = True
        code = "invalid_json" if err.get("type") == "json_invalid" else "invalid_request"
        where = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "(body)"
        issues.append({"code": code, "message": f"{shown(where)}: {err.get('msg')}", "node": None, "input": None})
    return ("invalid_request" if request_problem or not graph_problem else "invalid_graph"), issues


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    code, issues = issues_from_request(exc, request.app.state.config)
    return JSONResponse({"error": code, "issues": request.app.state.scrub.deep(issues)}, status_code=422)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse(
        {"error": CODES.get(exc.status_code, "error"), "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


HANDLERS: dict[Any, Any] = {RequestValidationError: invalid_request, HTTPException: http_error}
