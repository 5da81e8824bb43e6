"""WS /ws?clientId=ID: ComfyUI's message stream, from the one event broker.

Each connection subscribes to the broker's stream of every job. Queue changes go to every
client as `status` (once a burst of messages is sent, so the store is never asked between a
run's last message and the client); a job's run messages go only to the client_id that
submitted it, each translated with that job's id map (looked up once per job: in the jobs
this process just queued, else in the store).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nodeflow.comfy import events as ev
from nodeflow.comfy.history import view

from ..deps import Config, Events, Recent, Store

KNOWN_JOBS = 64

router = APIRouter()


def server_features(max_upload_bytes: int) -> dict:
    return {"supports_preview_metadata": True, "max_upload_size": max_upload_bytes}


@router.websocket("/ws")
async def comfy_socket(ws: WebSocket, config: Config, broker: Events, store: Store, recent: Recent) -> None:
    features = server_features(config.max_upload_bytes)
    await ws.accept()
    sid = ws.query_params.get("clientId") or uuid.uuid4().hex
    sub, _ = broker.subscribe(None)
    runs: OrderedDict[str, ev.RunTranslator | None] = OrderedDict()
    client_features: dict = {}

    async def remaining() -> int:
        return await asyncio.to_thread(store.unfinished)

    async def run_of(msg: dict) -> ev.RunTranslator | None:
        """This client's translator for the message's job, or None for someone else's job."""
        job_id = msg["job_id"]
        if job_id not in runs:
            if msg.get("event") == "job_queued" and msg.get("client_id") != sid:
                runs[job_id] = None  # queued by another client: no need to look it up
            else:
                job = recent.get(job_id) or await asyncio.to_thread(store.get, job_id)
                runs[job_id] = ev.RunTranslator(job, view(job)) if job is not None and job.client_id == sid else None
            while len(runs) > KNOWN_JOBS:
                runs.popitem(last=False)
        return runs[job_id]

    async def read() -> None:
        """The client's first message may announce its features; answer with ours."""
        first = True
        while True:
            text = await ws.receive_text()
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                if isinstance(data.get("data"), dict):
                    client_features.update(data["data"])
                await ws.send_json(ev.message("feature_flags", features))
            first = False

    async def write() -> None:
        await ws.send_json(ev.status(await remaining(), sid))
        status_due = False
        while True:
            if status_due and sub.queue.empty():
                # After the burst: the end of a run goes out before the store is asked.
                status_due = False
                await ws.send_json(ev.status(await remaining()))
                continue
            msg = await sub.queue.get()
            run = await run_of(msg)
            stored = None
            if run is not None and run.needs_stored_job(msg):
                stored = await asyncio.to_thread(store.get, msg["job_id"])
            rich = client_features.get("supports_preview_metadata") is True
            for out in run.translate(msg, stored, rich) if run is not None else []:
                if isinstance(out, bytes):
                    await ws.send_bytes(out)
                else:
                    await ws.send_json(out)
            status_due = status_due or msg.get("event") in ev.QUEUE_EVENTS

    tasks = [asyncio.create_task(read()), asyncio.create_task(write())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        broker.unsubscribe(sub)
        try:
            await ws.close()
        except (RuntimeError, WebSocketDisconnect):
            pass
