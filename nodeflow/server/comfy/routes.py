"""ComfyUI's HTTP routes, each at /X (scripts) and /api/X (the editor).

Bodies are read raw: the editor labels JSON as text/plain, ComfyUI's example scripts label it
as a form. A prompt is translated to a graph, validated by the planner (the same
plan_request as /jobs) and queued in the one job store through the worker pool.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from nodeflow.comfy import catalogue, history
from nodeflow.comfy.errors import error, node_errors
from nodeflow.comfy.translate import PromptInvalid, prompt_to_graph, with_workflow_meta
from nodeflow.jobs import store as st
from nodeflow.jobs.planning import plan_request

from ...errors import GraphInvalid
from ...jsonload import loads
from ..deps import Config, Pool, Recent, Store
from ..previews import preview as render_preview
from ..sniff import FILE_HEADERS, content_disposition, sniffed_type
from ..uploads import UploadRejected, check_image
from .files import FileRefused, confined, free_name, resolve, safe_filename, store_bytes

log = logging.getLogger("nodeflow.server")
PROMPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # always fullmatch: "abc\n" is not an id
MAX_LIST = 10000
# Bodies over the default limit: image uploads.
UPLOAD_PATHS = ("/upload/image", "/api/upload/image")


def both(router: APIRouter, method: str, path: str, **kwargs: Any) -> Callable:
    """Register a handler at `path` and at `/api` + `path`, as ComfyUI does."""

    def register(fn: Callable) -> Callable:
        for p in (path, "/api" + path):
            router.add_api_route(p, fn, methods=[method], include_in_schema=False, **kwargs)
        return fn

    return register


async def body_json(request: Request, default: Any = None) -> Any:
    """The body as JSON, whatever its content type says; `...` for a body that is not JSON.
    (The strict checks, NaN, duplicate keys, depth, ran before: jsonguard.StrictJSON.)"""
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        return loads(raw)[0]
    except ValueError:
        return ...


def bad(type_: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error(type_, message), "node_errors": {}}, status_code=status)


def prompt_request(body: dict) -> tuple[dict, dict[str, str], list]:
    """(the job's request, nodeflow id -> prompt id, issues found while translating).
    Raises PromptInvalid."""
    extra = body.get("extra_data") or {}
    if not isinstance(extra, dict):
        raise PromptInvalid("extra_data must be an object")
    pnginfo = extra.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    wf_extra = workflow.get("extra") if isinstance(workflow, dict) else None
    info = wf_extra.get("nodeflow") if isinstance(wf_extra, dict) else None
    tr = prompt_to_graph(with_workflow_meta(body["prompt"], workflow), info if isinstance(info, dict) else None)
    targets = body.get("partial_execution_targets") or []
    if not isinstance(targets, list) or any(str(t) not in tr.ids for t in targets):
        raise PromptInvalid(f"partial_execution_targets must list node ids of the prompt, got {targets!r}")
    comfy = {
        "prompt": body["prompt"],
        "extra_data": extra,
        "ids": tr.ids,
        "outputs_to_execute": [str(t) for t in targets],
    }
    if isinstance(body.get("number"), (int, float)) and not isinstance(body.get("number"), bool):
        comfy["number"] = body["number"]
    request = {"graph": tr.graph, "overrides": {}, "only": [tr.ids[str(t)] for t in targets] or None, "comfy": comfy}
    return request, tr.back, tr.issues


router = APIRouter()


@both(router, "POST", "/prompt")
async def post_prompt(request: Request, config: Config, store: Store, pool: Pool, recent: Recent) -> Any:
    body = await body_json(request, {})
    if not isinstance(body, dict):
        return bad("invalid_prompt", "the body must be a JSON object")
    if "prompt" not in body:
        return bad("no_prompt", "No prompt provided")
    job_id = body.get("prompt_id") or str(uuid.uuid4())
    if not isinstance(job_id, str) or not PROMPT_ID.fullmatch(job_id):
        return bad("invalid_prompt", "prompt_id names a folder: use letters, digits, '-' and '_' (at most 128)")
    client_id = body.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 128):
        return bad("invalid_prompt", "client_id must be a string of at most 128 characters")

    def validate_and_queue() -> Any:
        if store.get(job_id) is not None:
            return bad("invalid_prompt", f"prompt_id {job_id!r} is already taken", 409)
        try:
            req, back, issues = prompt_request(body)
        except PromptInvalid as exc:
            return bad("invalid_prompt", str(exc))
        try:
            if issues:
                raise GraphInvalid(issues)
            plan_request(config, job_id, req)
        except GraphInvalid as exc:
            types = {cid: str(n.get("class_type")) for cid, n in body["prompt"].items() if isinstance(n, dict)}
            return JSONResponse(node_errors(exc.issues, back, types), status_code=400)
        job = pool.enqueue(req, client_id, job_id)
        recent.add(job)
        return {"prompt_id": job.id, "number": req["comfy"].get("number", job.seq), "node_errors": {}}

    return await asyncio.to_thread(validate_and_queue)


@both(router, "GET", "/prompt")
def get_prompt(store: Store) -> Any:
    return {"exec_info": {"queue_remaining": store.unfinished()}}


@both(router, "GET", "/object_info")
def object_info(config: Config) -> Any:
    return catalogue.object_info(config.input_dir)


@both(router, "GET", "/object_info/{node_type}")
def object_info_one(node_type: str, config: Config) -> Any:
    return catalogue.object_info(config.input_dir, node_type)


@both(router, "GET", "/queue")
def get_queue(store: Store) -> Any:
    running = store.list(st.RUNNING, limit=MAX_LIST)
    pending = list(reversed(store.list((st.QUEUED, st.WAITING), limit=MAX_LIST)))
    return {
        "queue_running": [history.queue_item(j) for j in running],
        "queue_pending": [history.queue_item(j) for j in pending],
    }


@both(router, "POST", "/queue")
async def post_queue(request: Request, store: Store, pool: Pool) -> Any:
    body = await body_json(request, {})
    if not isinstance(body, dict):
        return bad("invalid_request", "the body must be a JSON object")

    def act() -> None:
        ids = [j.id for j in store.list(st.QUEUED, limit=MAX_LIST)] if body.get("clear") else []
        ids += [str(i) for i in body.get("delete") or []]
        for job_id in ids:
            job = store.get(job_id)
            if job is not None and job.status in (st.QUEUED, st.WAITING):
                pool.cancel(job_id)

    await asyncio.to_thread(act)
    return Response(status_code=200)


@both(router, "POST", "/interrupt")
async def interrupt(request: Request, store: Store, pool: Pool) -> Any:
    body = await body_json(request, {})
    wanted = body.get("prompt_id") if isinstance(body, dict) else None

    def act() -> None:
        for job in store.list((st.RUNNING, st.WAITING), limit=MAX_LIST):
            if wanted in (None, job.id):
                pool.cancel(job.id)

    await asyncio.to_thread(act)
    return Response(status_code=200)


@both(router, "GET", "/history")
def get_history(store: Store, max_items: int | None = None, offset: int = 0) -> Any:
    limit = max(1, min(max_items or MAX_LIST, MAX_LIST))
    jobs = store.list(st.FINISHED, limit=limit, offset=max(0, offset))
    return {j.id: history.history_entry(j) for j in reversed(jobs) if j.started is not None}


@both(router, "GET", "/history/{prompt_id}")
def get_history_one(prompt_id: str, store: Store) -> Any:
    job = store.get(prompt_id)
    if job is None or job.status not in st.FINISHED or job.started is None:
        return {}
    return {job.id: history.history_entry(job)}


@both(router, "POST", "/history")
async def post_history(request: Request, pool: Pool) -> Any:
    body = await body_json(request, {})
    if not isinstance(body, dict):
        return bad("invalid_request", "the body must be a JSON object")
    ids = [str(i) for i in body.get("delete") or []]
    await asyncio.to_thread(pool.forget_finished, None if body.get("clear") else ids)
    return Response(status_code=200)


@router.get("/api/jobs", include_in_schema=False)
def list_jobs(store: Store, status: str | None = None, limit: int = 200, offset: int = 0) -> Any:
    wanted = [s for s in (status or "").split(",") if s] or list(history.STORE_STATUS)
    unknown = [s for s in wanted if s not in history.STORE_STATUS]
    if unknown:
        return JSONResponse({"error": f"unknown status {unknown[0]!r}"}, status_code=400)
    statuses = tuple(s for w in wanted for s in history.STORE_STATUS[w])
    limit, offset = max(1, min(limit, MAX_LIST)), max(0, offset)
    jobs = store.list(statuses, limit=limit, offset=offset)
    counts = store.counts()
    total = sum(counts.get(s, 0) for s in statuses)
    return {
        "jobs": [history.job_item(j) for j in jobs],
        "pagination": {"offset": offset, "limit": limit, "total": total, "has_more": offset + len(jobs) < total},
    }


@router.get("/api/jobs/{job_id}", include_in_schema=False)
def job_detail(job_id: str, store: Store) -> Any:
    job = store.get(job_id)
    if job is None:
        return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
    return history.job_item(job, detail=True)


@both(router, "GET", "/view")
def view(
    config: Config, filename: str = "", subfolder: str = "", type: str = "output", preview: str | None = None
) -> Any:
    path = resolve(config, filename, subfolder, type)
    if preview:
        data, media = render_preview(path, preview, config.data_dir / "previews")
        return Response(data, media_type=media, headers=dict(FILE_HEADERS))
    # The type of what the file holds, never of its name: x.svg holding a PNG is a PNG, and
    # markup or scripts are never served as such.
    headers = {**FILE_HEADERS, "Content-Disposition": content_disposition(path.name)}
    return FileResponse(path, media_type=sniffed_type(path), headers=headers)


@both(router, "POST", "/upload/image")
async def upload_image(request: Request, config: Config) -> Any:
    form = await request.form()
    image = form.get("image")
    if image is None or not hasattr(image, "read"):
        return JSONResponse({"error": "send the file as multipart field 'image'"}, status_code=400)
    data = await image.read()
    kind = str(form.get("type") or "input")
    subfolder = str(form.get("subfolder") or "")
    overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
    if kind != "input":
        return JSONResponse({"error": "uploads go to the input folder (type=input)"}, status_code=400)

    def store_file() -> Any:
        target_dir = confined(config.input_dir, subfolder)
        check_image(data, config.max_upload_pixels)
        name = safe_filename(getattr(image, "filename", None))
        if overwrite:
            path, exists = confined(target_dir, name), False
        elif target_dir.exists() and not target_dir.is_dir():
            raise FileRefused(409, "the subfolder names an existing file, not a folder")
        else:
            path, exists = free_name(target_dir, name, data)
        if not exists:
            store_bytes(path, data)
        return {"name": path.name, "subfolder": subfolder, "type": "input"}

    try:
        return await asyncio.to_thread(store_file)
    except UploadRejected as exc:
        log.info("upload refused: %s", exc.message)
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)
