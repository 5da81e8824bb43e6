"""Progress: the broker's event stream as Server-Sent Events (one job, or every job) and
over a WebSocket (/jobs/ws)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import TERMINAL, Broker

from .. import models as m
from ..deps import Events, Store
from .jobs import get_job

KEEPALIVE_SECONDS = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

router = APIRouter(tags=["progress"])


def sse(message: dict) -> str:
    return f"id: {message['seq']}\nevent: {message['event']}\ndata: {json.dumps(message)}\n\n"


async def stream(
    broker: Broker, store: st.JobStore, job_id: str | None, last_event_id: str | None = None
) -> AsyncIterator[str]:
    """SSE text: the job's kept events, then live ones. With Last-Event-ID (a
    reconnecting EventSource), what the client already has is skipped."""
    sub, backlog = broker.subscribe(job_id)
    try:
        if job_id is not None:
            job = await asyncio.to_thread(store.get, job_id)
            done = any(msg["event"] == TERMINAL for msg in backlog)
            if job is not None and job.status in st.FINISHED and not done:
                # its events are no longer kept: say how it ended
                backlog.append({"seq": 0, "job_id": job_id, "event": TERMINAL, "status": job.status})
        seen = int(last_event_id) if last_event_id and last_event_id.isascii() and last_event_id.isdigit() else 0
        last = seen
        for msg in backlog:
            last = max(last, msg["seq"])
            if msg["seq"] and msg["seq"] <= seen:
                continue
            yield sse(msg)
            if msg["event"] == TERMINAL:
                return
        yield ": connected\n\n"
        while True:
            try:
                msg = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if msg["seq"] <= last:
                continue
            yield sse(msg)
            if job_id is not None and msg["event"] == TERMINAL:
                return
    finally:
        broker.unsubscribe(sub)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": m.ErrorMessage}},
)
def job_events(job_id: str, request: Request, store: Store, broker: Events) -> Any:
    """Server-Sent Events of one job, from its first event; ends when the job does.
    Events: job_queued, job_started, run_started, node_started, node_cached,
    node_progress, node_preview (base64 PNG, 256 px), node_finished, node_failed,
    log, run_finished, job_finished."""
    get_job(store, job_id)
    return StreamingResponse(
        stream(broker, store, job_id, request.headers.get("last-event-id")),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def all_events(request: Request, store: Store, broker: Events) -> Any:
    """Server-Sent Events of every job, live (each message carries its job_id)."""
    return StreamingResponse(
        stream(broker, store, None, request.headers.get("last-event-id")),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.websocket("/jobs/ws")
async def websocket_events(ws: WebSocket, store: Store, broker: Events, job_id: str | None = None) -> None:
    """The same messages as the SSE streams, as JSON text frames (?job_id= for one job)."""
    await ws.accept()
    if job_id is not None and await asyncio.to_thread(store.get, job_id) is None:
        await ws.close(code=1008, reason=f"no job {job_id!r}")
        return
    try:
        async for chunk in stream(broker, store, job_id):
            if chunk.startswith("id:"):
                await ws.send_text(chunk.split("data: ", 1)[1].strip())
        await ws.close()
    except WebSocketDisconnect:
        pass
