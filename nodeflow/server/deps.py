"""The server's services, as FastAPI dependencies: a route names what it needs by type
(`store: Store`), and gets the one instance on `app.state` (see services.py).

The dependencies are async so FastAPI calls them on the event loop, not on a worker thread.
They take an HTTPConnection, so WebSocket routes use them too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from nodeflow.comfy.history import RecentJobs
from nodeflow.jobs.broadcast import Broker
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.groups import Groups
from nodeflow.jobs.scrub import Scrubber
from nodeflow.jobs.store import JobStore
from nodeflow.jobs.worker import WorkerPool


async def get_config(conn: HTTPConnection) -> ServerConfig:
    return conn.app.state.config


async def get_store(conn: HTTPConnection) -> JobStore:
    return conn.app.state.store


async def get_pool(conn: HTTPConnection) -> WorkerPool:
    return conn.app.state.pool


async def get_broker(conn: HTTPConnection) -> Broker:
    return conn.app.state.broker


async def get_groups(conn: HTTPConnection) -> Groups:
    return conn.app.state.groups


async def get_scrubber(conn: HTTPConnection) -> Scrubber:
    return conn.app.state.scrub


async def get_recent(conn: HTTPConnection) -> RecentJobs:
    return conn.app.state.recent


Config = Annotated[ServerConfig, Depends(get_config)]
Store = Annotated[JobStore, Depends(get_store)]
Pool = Annotated[WorkerPool, Depends(get_pool)]
Events = Annotated[Broker, Depends(get_broker)]
SweepGroups = Annotated[Groups, Depends(get_groups)]
Scrub = Annotated[Scrubber, Depends(get_scrubber)]
Recent = Annotated[RecentJobs, Depends(get_recent)]
