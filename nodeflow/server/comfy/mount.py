"""Wires ComfyUI compatibility into the FastAPI app: its routes, /ws, and the editor at /."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, WebSocket

from nodeflow.comfy.history import RecentJobs
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import Broker
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.worker import WorkerPool

from . import frontend, routes
from .websocket import serve_socket, server_features

# Bodies over the default limit: image uploads.
UPLOAD_PATHS = ("/upload/image", "/api/upload/image")


def mount(
    app: FastAPI, config: ServerConfig, broker: Broker, store: Callable[[], st.JobStore], pool: Callable[[], WorkerPool]
) -> None:
    recent = RecentJobs()
    app.include_router(routes.create_router(config, store, pool, recent))
    app.include_router(frontend.create_router(config))
    features = server_features(config.max_upload_bytes)

    @app.websocket("/ws")
    async def comfy_socket(ws: WebSocket) -> None:
        await serve_socket(ws, broker, store, recent, features)

    frontend.mount_editor(app)  # last: static files under /
