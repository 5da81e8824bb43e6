"""Broker messages (nodeflow's event stream) -> ComfyUI WebSocket messages.

Text messages are {"type", "data"}; a preview is a binary frame of 4 bytes big-endian event
type, then the image (the broker's preview PNG, already shrunk and throttled). Type 1 (for
scripts): 4 bytes image format (2: PNG), the image. Type 4, for clients that announce
`supports_preview_metadata` (the editor shows only these on their node): 4 bytes length,
JSON naming the node and prompt, the image. SaveImageWebsocket's full-size images always go as
type 1, after the `executing` message naming their node, as ComfyUI sends them. The end of a
run is `executing` with node null, sent after the job's result is in the store (the worker
stores it before job_finished), so a script that reads /history on that message finds it.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

from nodeflow.comfy.history import ComfyView, class_types, error_payload, execution_error, images
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import TERMINAL

PREVIEW_IMAGE, PREVIEW_WITH_METADATA = 1, 4
PNG_FORMAT = 2
QUEUE_EVENTS = {"job_queued", "job_started", TERMINAL}


def message(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": data}


def status(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return message("status", data)


def preview_frame(png_base64: str, metadata: dict[str, Any] | None = None) -> bytes:
    png = base64.b64decode(png_base64)
    if metadata is None:
        return struct.pack(">II", PREVIEW_IMAGE, PNG_FORMAT) + png
    meta = json.dumps({**metadata, "image_type": "image/png"}).encode()
    return struct.pack(">II", PREVIEW_WITH_METADATA, len(meta)) + meta + png


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunTranslator:
    """Translates one job's messages. It remembers the running node (for an interruption)
    and a node's failure, so the end of a run needs no store lookup unless a job failed
    without a node failing (its graph no longer validated, say)."""

    def __init__(self, job: st.Job, v: ComfyView):
        self.job_id = job.id
        self.view = v
        self.back = v.back
        self.current: str | None = None
        self.ran = job.started is not None
        self.failure: dict[str, Any] | None = None

    def _node(self, msg: dict) -> str | None:
        return self.back.get(msg.get("node") or "")

    def needs_stored_job(self, msg: dict) -> bool:
        return (
            msg.get("event") == TERMINAL
            and msg.get("status") not in (st.SUCCEEDED, st.CANCELLED)
            and self.failure is None
        )

    def translate(self, msg: dict, stored: st.Job | None = None, metadata_previews: bool = False) -> list[dict | bytes]:
        """ComfyUI messages for one broker message. `stored`: the finished job, when
        needs_stored_job(msg); metadata_previews: the client takes type-4 preview frames."""
        event, pid = msg.get("event"), self.job_id
        node = self._node(msg)
        if event == "job_started":
            self.ran = True
            return [message("execution_start", {"prompt_id": pid, "timestamp": _now_ms()})]
        if event == "node_cached" and node:
            return [message("execution_cached", {"nodes": [node], "prompt_id": pid, "timestamp": _now_ms()})]
        if event == "node_started" and node:
            self.current = node
            return [message("executing", {"node": node, "display_node": node, "prompt_id": pid})]
        if event == "node_progress" and node:
            return [message("progress", {"value": msg["value"], "max": msg["total"], "prompt_id": pid, "node": node})]
        if event == "node_preview" and node and (msg.get("image") or {}).get("base64"):
            if msg.get("full"):  # SaveImageWebsocket's image: type 1 to every client, as ComfyUI sends it
                return [preview_frame(msg["image"]["base64"])]
            meta = (
                {
                    "node_id": node,
                    "display_node_id": node,
                    "parent_node_id": None,
                    "real_node_id": node,
                    "prompt_id": pid,
                }
                if metadata_previews
                else None
            )
            return [preview_frame(msg["image"]["base64"], meta)]
        if event == "node_finished" and node:
            refs = images(pid, msg.get("outputs") or [])
            if refs:
                return [
                    message(
                        "executed", {"node": node, "display_node": node, "output": {"images": refs}, "prompt_id": pid}
                    )
                ]
            return []
        if event == "node_failed" and node:
            where = f"{msg['input']}: " if msg.get("input") else ""
            self.failure = error_payload(pid, node, msg.get("type", ""), where + str(msg.get("error")))
            return []
        if event == TERMINAL:
            return self._end(msg.get("status"), stored)
        return []

    def _end(self, status: str | None, stored: st.Job | None) -> list[dict | bytes]:
        pid = self.job_id
        if not self.ran:
            return []  # cancelled while queued: it never ran
        if status == st.SUCCEEDED:
            out: list[dict | bytes] = [message("execution_success", {"prompt_id": pid, "timestamp": _now_ms()})]
        elif status == st.CANCELLED:
            node = self.current or ""
            out = [
                message(
                    "execution_interrupted",
                    {
                        "prompt_id": pid,
                        "node_id": node,
                        "node_type": class_types(self.view).get(node, ""),
                        "executed": [],
                        "timestamp": _now_ms(),
                    },
                )
            ]
        else:
            err = self.failure or (execution_error(stored, self.back, class_types(self.view)) if stored else None)
            out = [
                message("execution_error", {**(err or error_payload(pid, "", "", "failed")), "timestamp": _now_ms()})
            ]
        out.append(message("executing", {"node": None, "display_node": None, "prompt_id": pid}))
        return out
