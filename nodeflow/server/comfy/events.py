"""Broker messages (nodeflow's event stream) -> ComfyUI WebSocket messages.

Text messages are {"type", "data"}; a preview is a binary frame of 4 bytes big-endian event
type, then the image (the broker's preview PNG, already shrunk and throttled). Type 1 (for
scripts): 4 bytes image format (2: PNG), the image. Type 4, for clients that announce
`supports_preview_metadata` (the editor shows only these on their node): 4 bytes length,
JSON naming the node and prompt, the image. The end of a run is `executing` with node null, sent
after the job's result is in the store (the worker stores it before job_finished), so a
script that reads /history on that message finds it.
"""
from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

from .. import store as st
from ..broadcast import TERMINAL
from .history import ComfyView, class_types, execution_error, images

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
    """Translates one job's messages; remembers the running node (for interruptions)."""

    def __init__(self, job: st.Job, v: ComfyView):
        self.job_id = job.id
        self.view = v
        self.back = v.back
        self.current: str | None = None

    def _node(self, msg: dict) -> str | None:
        return self.back.get(msg.get("node") or "")

    def translate(self, msg: dict, finished: st.Job | None = None, metadata_previews: bool = False) -> list[dict | bytes]:
        """ComfyUI messages for one broker message. `finished`: the stored job, for job_finished;
        metadata_previews: the client takes type-4 preview frames."""
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
        if event == "node_preview" and node and (msg.get("image") or {}).get("base64"):
            meta = {"node_id": node, "display_node_id": node, "parent_node_id": None, "real_node_id": node,
                    "prompt_id": pid} if metadata_previews else None
            return [preview_frame(msg["image"]["base64"], meta)]
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
