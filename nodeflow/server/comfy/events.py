"""Broker messages (nodeflow's event stream) -> ComfyUI WebSocket messages.

Text messages are {"type", "data"}; a preview is a binary frame: 4 bytes big-endian event
type 1 (preview image), 4 bytes image format (2: PNG), then the image (the broker's preview
PNG, already shrunk and throttled). The end of a run is `executing` with node null, sent
after the job's result is in the store (the worker stores it before job_finished), so a
script that reads /history on that message finds it.
"""
from __future__ import annotations

import base64
import struct
import time
from typing import Any

from .. import store as st
from ..broadcast import TERMINAL
from .history import ComfyView, class_types, execution_error, images

PREVIEW_IMAGE = 1
PNG_FORMAT = 2
QUEUE_EVENTS = {"job_queued", "job_started", TERMINAL}


def message(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": data}


def status(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return message("status", data)


def preview_frame(png_base64: str) -> bytes:
    return struct.pack(">II", PREVIEW_IMAGE, PNG_FORMAT) + base64.b64decode(png_base64)


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunTranslator:
    """Translates one job's messages; remembers the running node (for interruptions)."""

    def __init__(self, job: st.Job, v: ComfyView):
        self.job_id = job.id
        self.view = v
        self.back = v.back
        self.current: str | None = None

    def _node(self, msg: dict) -> str | None:
        return self.back.get(msg.get("node") or "")

    def translate(self, msg: dict, finished: st.Job | None = None) -> list[dict | bytes]:
        """ComfyUI messages for one broker message. `finished`: the stored job, for job_finished."""
        event, pid = msg.get("event"), self.job_id
        node = self._node(msg)
        if event == "job_started":
            return [message("execution_start", {"prompt_id": pid, "timestamp": _now_ms()})]
        if event == "node_cached" and node:
            return [message("execution_cached", {"nodes": [node], "prompt_id": pid, "timestamp": _now_ms()})]
        if event == "node_started" and node:
            self.current = node
            return [message("executing", {"node": node, "display_node": node, "prompt_id": pid})]
        if event == "node_progress" and node:
            return [message("progress", {"value": msg["value"], "max": msg["total"], "prompt_id": pid, "node": node})]
        if event == "node_preview" and (msg.get("image") or {}).get("base64"):
            return [preview_frame(msg["image"]["base64"])]
        if event == "node_finished" and node:
            refs = images(pid, msg.get("outputs") or [])
            if refs:
                return [message("executed", {"node": node, "display_node": node, "output": {"images": refs},
                                             "prompt_id": pid})]
            return []
        if event == TERMINAL and finished is not None:
            return self._end(finished)
        return []

    def _end(self, job: st.Job) -> list[dict | bytes]:
        pid = job.id
        if job.started is None:
            return []  # cancelled while queued: it never ran
        if job.status == st.SUCCEEDED:
            out = [message("execution_success", {"prompt_id": pid, "timestamp": _now_ms()})]
        elif job.status == st.CANCELLED:
            node = self.current or ""
            out = [message("execution_interrupted", {
                "prompt_id": pid, "node_id": node, "node_type": class_types(self.view).get(node, ""),
                "executed": [], "timestamp": _now_ms()})]
        else:
            err = execution_error(job, self.back, class_types(self.view)) or {}
            out = [message("execution_error", {**err, "timestamp": _now_ms()})]
        out.append(message("executing", {"node": None, "display_node": None, "prompt_id": pid}))
        return out
