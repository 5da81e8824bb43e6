"""Jobs of the one job store, seen as ComfyUI sees its queue and history.

A job submitted through /prompt keeps its prompt, extra_data and id map under
request["comfy"]; a job submitted through /jobs is translated on the fly (numbered ids in
graph order), so every job shows in the editor's queue and history panels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from nodeflow.comfy.translate import comfy_ids, graph_to_prompt
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import TEMP_MARK

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
# nodeflow job status -> the jobs API's. A job cancelled while it ran, and one the server's
# stop interrupted, are "cancelled", as ComfyUI lists its own interrupted prompts.
JOB_STATUS = {
    st.QUEUED: "pending",
    st.WAITING: "pending",
    st.RUNNING: "in_progress",
    st.SUCCEEDED: "completed",
    st.FAILED: "failed",
    st.INTERRUPTED: "cancelled",
    st.CANCELLED: "cancelled",
}
STORE_STATUS = {
    "pending": (st.QUEUED, st.WAITING),
    "in_progress": (st.RUNNING,),
    "completed": (st.SUCCEEDED,),
    "failed": (st.FAILED,),
    "cancelled": (st.CANCELLED, st.INTERRUPTED),
}
STOPPED = (st.CANCELLED, st.INTERRUPTED)


@dataclass
class ComfyView:
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    number: float
    ids: dict[str, str]  # prompt id -> nodeflow id
    outputs_to_execute: list[str]

    @property
    def back(self) -> dict[str, str]:
        return {nf: cid for cid, nf in self.ids.items()}


def view(job: st.Job) -> ComfyView:
    comfy = job.request.get("comfy")
    if comfy:
        extra = dict(comfy.get("extra_data") or {})
        return ComfyView(
            comfy["prompt"], extra, comfy.get("number", job.seq), comfy["ids"], comfy.get("outputs_to_execute") or []
        )
    graph = job.request.get("graph") or {}
    to_comfy = comfy_ids(graph)
    only = job.request.get("only") or []
    return ComfyView(
        graph_to_prompt(graph, to_comfy),
        {},
        job.seq,
        {c: n for n, c in to_comfy.items()},
        [to_comfy[n] for n in only if n in to_comfy],
    )


class RecentJobs:
    """Jobs this process just queued through /prompt, so the sockets translating their
    events needn't read them back from the store (bounded: older ones are read)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._jobs: OrderedDict[str, st.Job] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job: st.Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.size:
                self._jobs.popitem(last=False)

    def get(self, job_id: str) -> st.Job | None:
        with self._lock:
            return self._jobs.get(job_id)


def image_ref(job_id: str, name: str) -> dict[str, str] | None:
    """A file a job wrote (relative to its output folder, or to its temp folder when marked
    " [temp]") as ComfyUI's image reference."""
    kind = "output"
    if name.endswith(TEMP_MARK):
        name, kind = name[: -len(TEMP_MARK)], "temp"
    path = PurePosixPath(name)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    sub = str(path.parent)
    return {"filename": path.name, "subfolder": job_id if sub == "." else f"{job_id}/{sub}", "type": kind}


def images(job_id: str, names: list[str]) -> list[dict[str, str]]:
    return [ref for ref in (image_ref(job_id, n) for n in names) if ref is not None]


def node_outputs(job: st.Job, back: dict[str, str]) -> dict[str, Any]:
    out = {}
    for nid, state in ((job.result or {}).get("nodes") or {}).items():
        refs = images(job.id, state.get("outputs") or [])
        if refs and nid in back:
            out[back[nid]] = {"images": refs}
    return out


def main_image(job: st.Job, v: ComfyView) -> tuple[str, dict[str, str]] | None:
    """(prompt id, image reference) of the job's main image: the first image of an output
    node the graph marks `"main": true`, else the first image saved by an output node whose
    image doesn't come from a plot (a node class with `plot = True`, e.g. PlotLoss), else the
    first image at all."""
    from nodeflow.graph import as_link
    from nodeflow.registry import load_nodes

    back = v.back
    saved = [
        (nid, refs[0])
        for nid, state in ((job.result or {}).get("nodes") or {}).items()
        if nid in back and (refs := images(job.id, state.get("outputs") or []))
    ]
    if not saved:
        return None
    specs = (job.request.get("graph") or {}).get("nodes") or {}
    registry = load_nodes()

    def from_plot(nid: str) -> bool:
        for value in ((specs.get(nid) or {}).get("inputs") or {}).values():
            link = as_link(value)
            if link is not None and not isinstance(link, str):
                cls = registry.get(str((specs.get(link.node) or {}).get("type")))
                if cls is not None and cls.plot:
                    return True
        cls = registry.get(str((specs.get(nid) or {}).get("type")))
        return bool(cls is not None and cls.plot)

    nid, ref = (
        next((s for s in saved if (specs.get(s[0]) or {}).get("main")), None)
        or next((s for s in saved if not from_plot(s[0])), None)
        or saved[0]
    )
    return back[nid], ref


def queue_item(job: st.Job, v: ComfyView | None = None) -> list:
    v = v or view(job)
    extra = {**v.extra_data, "client_id": job.client_id, "create_time": int(job.created * 1000)}
    return [v.number, job.id, v.prompt, extra, v.outputs_to_execute]


def _ms(t: float | None) -> int | None:
    return int(t * 1000) if t is not None else None


def error_payload(prompt_id: str, node_id: str, node_type: str, message: str) -> dict[str, Any]:
    """ComfyUI's execution_error data."""
    return {
        "prompt_id": prompt_id,
        "node_id": node_id,
        "node_type": node_type,
        "executed": [],
        "exception_message": message,
        "exception_type": "NodeFailed",
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
    }


def execution_error(job: st.Job, back: dict[str, str], class_types: dict[str, str]) -> dict[str, Any] | None:
    if job.status != st.FAILED:
        return None
    err = (job.result or {}).get("error") or {}
    issues = (job.result or {}).get("issues") or []
    node = err.get("node") or next((i.get("node") for i in issues if i.get("node")), None)
    cid = back.get(node, "") if node else ""
    message = err.get("message") or "failed"
    if issues:
        message += ": " + "; ".join(i.get("message", "") for i in issues)
    return error_payload(job.id, cid, err.get("type") or class_types.get(cid, ""), message)


def status_messages(job: st.Job, v: ComfyView) -> list:
    back = v.back
    nodes = (job.result or {}).get("nodes") or {}
    msgs: list = []
    if job.started:
        msgs.append(["execution_start", {"prompt_id": job.id, "timestamp": _ms(job.started)}])
        cached = [back[n] for n, s in nodes.items() if s.get("state") == "cached" and n in back]
        msgs.append(["execution_cached", {"nodes": cached, "prompt_id": job.id, "timestamp": _ms(job.started)}])
    end = {"prompt_id": job.id, "timestamp": _ms(job.finished)}
    if job.status == st.SUCCEEDED:
        msgs.append(["execution_success", end])
    elif job.status in STOPPED:
        msgs.append(["execution_interrupted", {**end, "node_id": "", "node_type": "", "executed": []}])
    else:
        msgs.append(["execution_error", {**end, **(execution_error(job, back, class_types(v)) or {})}])
    return msgs


def class_types(v: ComfyView) -> dict[str, str]:
    return {cid: n.get("class_type", "") for cid, n in v.prompt.items()}


def _status(job: st.Job, v: ComfyView) -> dict[str, Any]:
    ok = job.status == st.SUCCEEDED
    return {"status_str": "success" if ok else "error", "completed": ok, "messages": status_messages(job, v)}


def history_entry(job: st.Job) -> dict[str, Any]:
    v = view(job)
    outputs = node_outputs(job, v.back)
    return {
        "prompt": queue_item(job, v),
        "outputs": outputs,
        "status": _status(job, v),
        "meta": {
            cid: {"node_id": cid, "display_node": cid, "parent_node": None, "real_node_id": cid} for cid in outputs
        },
    }


def job_item(job: st.Job, detail: bool = False) -> dict[str, Any]:
    """One job as the jobs API lists it (with `detail`: its workflow and outputs too)."""
    v = view(job)
    outputs = node_outputs(job, v.back)
    refs = [(cid, ref) for cid, o in outputs.items() for ref in o["images"]]
    main = main_image(job, v)
    workflow = (v.extra_data.get("extra_pnginfo") or {}).get("workflow")
    item: dict[str, Any] = {
        "id": job.id,
        "status": JOB_STATUS.get(job.status, "failed"),
        "create_time": _ms(job.created),
        "priority": v.number,
        "outputs_count": len(refs),
        "previewable_outputs_count": len(refs),
        "execution_start_time": _ms(job.started),
        "execution_end_time": _ms(job.finished),
        "execution_error": execution_error(job, v.back, class_types(v)),
        "preview_output": {**main[1], "nodeId": main[0], "mediaType": "images"} if main else None,
        "workflow_id": workflow.get("id") if isinstance(workflow, dict) else None,
    }
    if detail:
        item.update(
            outputs=outputs,
            update_time=_ms(job.finished or job.started or job.created),
            workflow={"prompt": v.prompt, "extra_data": v.extra_data},
            execution_status=_status(job, v) if job.status in st.FINISHED else None,
        )
    return item
