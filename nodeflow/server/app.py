"""The FastAPI application: create_app assembles the middleware, the lifespan, the OpenAPI
document and the routers. The routes live in routers/ (the native API) and comfy/ (ComfyUI's
protocol and the web editor); the services they share live on app.state (services.py) and
reach them through deps.py.

One engine: submits are validated by the same parse_graph/apply_overrides/build_plan
as the CLI, jobs run on one shared Executor, and progress is the engine's own event
stream. No endpoint imports or runs anything a client names; node modules come only
from the installed plugins and the operator's $NODEFLOW_PLUGINS (or --plugins).
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI

from nodeflow.jobs.config import ServerConfig

from .. import __version__
from ..registry import load_nodes
from . import models as m
from . import services
from .auth import BodyLimit, TokenAuth
from .comfy import frontend, userdata, websocket
from .comfy import routes as comfy_routes
from .handlers import HANDLERS
from .jsonguard import StrictJSON
from .openapi_doc import openapi_document
from .options import Options
from .origin import HostOriginGuard, allowed_host_names
from .routers import catalogue, groups, health, inputs, jobs, login, progress
from .sessions import Guesses, Sessions
from .sniff import NoSniff

UPLOAD_OVERHEAD = 64 * 1024  # multipart framing around the file


class ServerError(Exception):
    """The server can't start (bad configuration or plugin)."""


def load_plugins(modules: list[str]) -> None:
    """Import the operator's node modules (each Node subclass registers itself)."""
    load_nodes()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ServerError(f"cannot import node module {name!r} ($NODEFLOW_PLUGINS, --plugins): {exc}") from exc


def create_app(config: ServerConfig) -> FastAPI:
    load_plugins(config.plugins)
    app = FastAPI(
        title="nodeflow",
        version=__version__,
        lifespan=services.lifespan,
        responses={422: {"model": m.InvalidRequest, "description": "invalid request or graph"}},
        description="Submit node graphs, follow their progress, fetch their outputs. "
        "Send `Authorization: Bearer TOKEN` (or HTTP Basic auth with the token as password) "
        "when the server has a token.",
        exception_handlers=HANDLERS,
    )
    services.attach(app, config)

    # The last added runs first: Host and Origin, auth, the body limit, strict JSON, then
    # routing and parsing.
    upload_limit = config.max_upload_bytes + UPLOAD_OVERHEAD
    app.add_middleware(Options)
    app.add_middleware(StrictJSON)
    app.add_middleware(
        BodyLimit,
        default=config.max_body_bytes,
        per_path={p: upload_limit for p in ("/uploads", *comfy_routes.UPLOAD_PATHS)},
    )
    app.state.guesses = guesses = Guesses()
    app.state.sessions = sessions = Sessions(config.data_dir / "sessions.json", config.token) if config.token else None
    app.add_middleware(TokenAuth, token=config.token, sessions=sessions, guesses=guesses)
    app.add_middleware(NoSniff)
    app.add_middleware(
        HostOriginGuard,
        allowed_hosts=allowed_host_names(config.host, config.allowed_hosts),
        allowed_origins=config.allowed_origins,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app, token_required=config.token is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    for router in (
        jobs.router,
        groups.router,
        progress.router,
        inputs.router,
        catalogue.router,
        health.router,
        login.router,
        # ComfyUI's protocol and the web editor; the editor last: its static files sit under /.
        comfy_routes.router,
        userdata.router,
        frontend.router,
        websocket.router,
        frontend.editor_router(frontend.static_root(), config),
    ):
        app.include_router(router)
    return app
