"""The FastAPI application and `serve()`.

One engine: submits are validated by the same parse_graph/apply_overrides/build_plan
as the CLI, jobs run on one shared Executor, and progress is the engine's own event
stream. No endpoint imports or runs anything a client names; node modules come only
from the installed plugins and the operator's $NODEFLOW_PLUGINS.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Query, Request, Response, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import TERMINAL, Broker
from nodeflow.jobs.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig, default_data_dir, make_private
from nodeflow.jobs.download_env import keep_downloads_inside
from nodeflow.jobs.groups import Groups, add_group_routes
from nodeflow.jobs.scrub import Scrubber
from nodeflow.jobs.worker import WorkerPool, plan_request

from .. import __version__
from ..cache import DiskCache
from ..errors import GraphInvalid, shown
from ..executor import Executor
from ..registry import load_nodes
from . import login
from . import models as m
from .auth import BodyLimit, RedactToken, TokenAuth
from .comfy import mount as comfy_mount
from .jsonguard import StrictJSON
from .openapi_doc import declare_guards
from .origin import HostOriginGuard, allowed_host_names
from .uploads import UploadRejected, store_upload

BUNDLED_GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
GRAPH_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
UPLOAD_OVERHEAD = 64 * 1024  # multipart framing around the file
KEEPALIVE_SECONDS = 15.0
MAX_OFFSET = 2**31  # far past any history, and well inside sqlite's integers


class ServerError(Exception):
    """The server can't start (bad configuration or plugin)."""


def load_plugins(modules: list[str]) -> None:
    """Import the operator's node modules (each Node subclass registers itself)."""
    load_nodes()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ServerError(f"cannot import node module {name!r} from $NODEFLOW_PLUGINS: {exc}") from exc


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _issues_from_request(exc: RequestValidationError, config: ServerConfig) -> tuple[str, list[dict]]:
    """A bad submit body gets the CLI's own issue list: its graph goes through every stage
    of validation, and the rest of the body's problems are added."""
    body = getattr(exc, "body", None)
    issues: list[dict] = []
    graph_problem = False
    if isinstance(body, dict) and "graph" in body:
        overrides, only = body.get("overrides"), body.get("only")
        request = {
            "graph": body["graph"],
            "overrides": overrides if isinstance(overrides, dict) else {},
            "only": only if isinstance(only, list) and all(isinstance(o, str) for o in only) else None,
        }
        try:
            plan_request(config, "validation", request)
        except GraphInvalid as gi:
            issues += [i.to_dict() for i in gi.issues]
            graph_problem = True
    request_problem = False
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if graph_problem and loc[:2] == ["body", "graph"]:
            continue  # reported above, by node and input
        request_problem = True
        code = "invalid_json" if err.get("type") == "json_invalid" else "invalid_request"
        where = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "(body)"
        issues.append({"code": code, "message": f"{shown(where)}: {err.get('msg')}", "node": None, "input": None})
    return ("invalid_request" if request_problem or not graph_problem else "invalid_graph"), issues


def _sse(message: dict) -> str:
    return f"id: {message['seq']}\nevent: {message['event']}\ndata: {json.dumps(message)}\n\n"


def create_app(config: ServerConfig) -> FastAPI:
    load_plugins(config.plugins)
    scrub = Scrubber(config.data_dir)
    broker = Broker(clean=scrub.deep)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        make_private(config.data_dir)
        for d in (config.input_dir, config.output_root, config.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        store = st.JobStore(config.db_path)
        interrupted, requeued = store.recover(config.requeue_interrupted)
        if interrupted or requeued:
            print(
                f"nodeflow: {len(interrupted)} job(s) interrupted by the last stop"
                + (f", {len(requeued)} re-queued" if requeued else ""),
                file=sys.stderr,
            )
        backend = None
        if config.ray_address:
            from nodeflow.ray_backend import RayBackend  # Ray is imported only here

            backend = await asyncio.to_thread(RayBackend, config)
        pool = WorkerPool(config, store, broker, Executor(disk=DiskCache(config.cache_dir)), backend, scrub)
        pool.groups = groups = Groups(config, store, plan_request)
        state.update(store=store, pool=pool, groups=groups)
        for group_id in store.unfinished_groups():  # its last job ended just before a crash
            groups.finish_if_done(group_id)
        pool.prune()  # the history limit may have been lowered since the last run
        pool.start()
        try:
            yield
        finally:
            await asyncio.to_thread(pool.stop)
            store.close()
            print("nodeflow: stopped", file=sys.stderr, flush=True)

    app = FastAPI(
        title="nodeflow",
        version=__version__,
        lifespan=lifespan,
        responses={422: {"model": m.InvalidRequest, "description": "invalid request or graph"}},
        description="Submit node graphs, follow their progress, fetch their outputs. "
        "Send `Authorization: Bearer TOKEN` when the server has a token.",
    )
    # The last added runs first: Host and Origin, auth, the body limit, strict JSON, then
    # routing and parsing.
    upload_limit = config.max_upload_bytes + UPLOAD_OVERHEAD
    app.add_middleware(StrictJSON)
    app.add_middleware(
        BodyLimit,
        default=config.max_body_bytes,
        per_path={p: upload_limit for p in ("/uploads", *comfy_mount.UPLOAD_PATHS)},
    )
    app.add_middleware(TokenAuth, token=config.token)
    app.add_middleware(
        HostOriginGuard,
        allowed_hosts=allowed_host_names(config.host, config.allowed_hosts),
        allowed_origins=config.allowed_origins,
    )

    def openapi() -> dict:
        """FastAPI's schema, plus every node type's inputs from the node schemas
        (`nodeflow schema`), as components node_<Type> and GraphWithNodeTypes."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            from ..schema import graph_schema

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            graph = json.loads(json.dumps(graph_schema()).replace("#/$defs/", "#/components/schemas/"))
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(graph.pop("$defs"))
            graph.pop("$schema", None)
            graph.pop("$id", None)
            components["GraphWithNodeTypes"] = {
                **graph,
                "title": "GraphWithNodeTypes",
                "description": "The graph in a submit, with each node type's inputs spelled out.",
            }
            app.openapi_schema = declare_guards(spec, token_required=config.token is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def store() -> st.JobStore:
        return state["store"]

    def pool() -> WorkerPool:
        return state["pool"]

    def get_job(job_id: str) -> st.Job:
        job = store().get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, issues = _issues_from_request(exc, config)
        return JSONResponse({"error": code, "issues": scrub.deep(issues)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            413: "body_too_large",
        }
        return JSONResponse(
            {"error": codes.get(exc.status_code, "error"), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # ---- jobs -------------------------------------------------------------------------

    @app.post(
        "/jobs",
        status_code=202,
        response_model=m.SubmitResponse | m.GroupSubmitResponse,
        tags=["jobs"],
        responses={422: {"model": m.InvalidRequest, "description": "the graph is invalid: not queued"}},
    )
    def submit(body: m.SubmitRequest, response: Response) -> Any:
        """Validate a graph and queue it. An invalid graph is never queued. With `sweep`,
        queue one job per combination of the values, as a group (GET /groups/{id})."""
        request = {
            "graph": body.graph.model_dump(mode="json", by_alias=True, exclude_unset=True),
            "overrides": body.overrides,
            "only": body.only,
        }
        job_id = os.urandom(16).hex()
        try:
            if body.sweep is not None:
                return submit_sweep(request, body.sweep, body.client_id, response)
            plan_request(config, job_id, request)
        except GraphInvalid as exc:
            return JSONResponse(
                {"error": "invalid_graph", "issues": scrub.deep([i.to_dict() for i in exc.issues])}, status_code=422
            )
        job = pool().enqueue(request, body.client_id, job_id)
        response.headers["Location"] = f"/jobs/{job.id}"
        return m.SubmitResponse(
            job_id=job.id, status=job.status, url=f"/jobs/{job.id}", events_url=f"/jobs/{job.id}/events"
        )

    def submit_sweep(request: dict, sweep: dict, client_id: str | None, response: Response) -> Any:
        group_id, jobs = state["groups"].submit(request, sweep, client_id)
        for job in jobs:
            broker.publish(job.id, {"event": "job_queued", "client_id": job.client_id, "group_id": group_id})
        pool().notify()
        response.headers["Location"] = f"/groups/{group_id}"
        return m.GroupSubmitResponse(
            group_id=group_id,
            url=f"/groups/{group_id}",
            jobs=[
                m.SubmitResponse(job_id=j.id, status=j.status, url=f"/jobs/{j.id}", events_url=f"/jobs/{j.id}/events")
                for j in jobs
            ],
        )

    add_group_routes(app, lambda: state["groups"], config)

    @app.get("/jobs", response_model=m.JobList, tags=["jobs"])
    def list_jobs(
        status: m.JobStatus | None = None,
        client_id: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
    ) -> Any:
        """Jobs, newest first."""
        jobs = store().list(status, client_id, limit, offset)
        return m.JobList(jobs=[_summary(j) for j in jobs], counts=store().counts())

    @app.get("/jobs/{job_id}", response_model=m.Job, tags=["jobs"], responses={404: {"model": m.ErrorMessage}})
    def job_detail(job_id: str) -> Any:
        """A job's status, per-node state (timings, cached or not), errors and outputs."""
        job = get_job(job_id)
        result = job.result or {}
        nodes = result.get("nodes") or {}
        if job.status == st.RUNNING:
            nodes = pool().live_nodes(job_id) or {}
        position = store().position(job) if job.status == st.QUEUED else None
        return m.Job(
            **_summary(job).model_dump(),
            position=position,
            overrides=job.request.get("overrides") or {},
            nodes={k: m.NodeState(**{"cached": v.get("state") == "cached", **v}) for k, v in nodes.items()},
            outputs=result.get("outputs") or [],
            error=result.get("error"),
            issues=result.get("issues"),
            seconds=result.get("seconds"),
            group_id=job.group_id,
            sweep=job.request.get("sweep"),
            worker=job.worker,
        )

    @app.post(
        "/jobs/{job_id}/cancel",
        response_model=m.CancelResponse,
        tags=["jobs"],
        responses={404: {"model": m.ErrorMessage}},
    )
    def cancel(job_id: str) -> Any:
        """Cancel a queued job, or stop a running one at its next check."""
        get_job(job_id)
        outcome = pool().cancel(job_id) or get_job(job_id).status
        return m.CancelResponse(job_id=job_id, status=outcome)

    @app.get(
        "/jobs/{job_id}/outputs/{name:path}",
        tags=["jobs"],
        response_class=FileResponse,
        responses={404: {"model": m.ErrorMessage}},
    )
    def download(job_id: str, name: str) -> Any:
        """Download one of the files the job wrote (only those are served)."""
        job = get_job(job_id)
        listed = {o["name"] for o in (job.result or {}).get("outputs") or []}
        if name not in listed:
            raise HTTPException(404, f"job {job_id} has no output {name!r}")
        root = config.job_output_dir(job_id).resolve()
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            raise HTTPException(404, f"output {name!r} is gone")
        return FileResponse(path, filename=Path(name).name)

    # ---- progress -----------------------------------------------------------------------

    async def stream(job_id: str | None, last_event_id: str | None = None) -> AsyncIterator[str]:
        """SSE text: the job's kept events, then live ones. With Last-Event-ID (a
        reconnecting EventSource), what the client already has is skipped."""
        sub, backlog = broker.subscribe(job_id)
        try:
            if job_id is not None:
                job = await asyncio.to_thread(store().get, job_id)
                done = any(msg["event"] == TERMINAL for msg in backlog)
                if job is not None and job.status in st.FINISHED and not done:
                    # its events are no longer kept: say how it ended
                    backlog.append({"seq": 0, "job_id": job_id, "event": TERMINAL, "status": job.status})
            seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
            last = seen
            for msg in backlog:
                last = max(last, msg["seq"])
                if msg["seq"] and msg["seq"] <= seen:
                    continue
                yield _sse(msg)
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
                yield _sse(msg)
                if job_id is not None and msg["event"] == TERMINAL:
                    return
        finally:
            broker.unsubscribe(sub)

    sse_headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    @app.get(
        "/jobs/{job_id}/events",
        tags=["progress"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": m.ErrorMessage}},
    )
    def job_events(job_id: str, request: Request) -> Any:
        """Server-Sent Events of one job, from its first event; ends when the job does.
        Events: job_queued, job_started, run_started, node_started, node_cached,
        node_progress, node_preview (base64 PNG, 256 px), node_finished, node_failed,
        log, run_finished, job_finished."""
        get_job(job_id)
        return StreamingResponse(
            stream(job_id, request.headers.get("last-event-id")), media_type="text/event-stream", headers=sse_headers
        )

    @app.get(
        "/events",
        tags=["progress"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def all_events(request: Request) -> Any:
        """Server-Sent Events of every job, live (each message carries its job_id)."""
        return StreamingResponse(
            stream(None, request.headers.get("last-event-id")), media_type="text/event-stream", headers=sse_headers
        )

    @app.websocket("/jobs/ws")
    async def websocket_events(ws: WebSocket, job_id: str | None = None) -> None:
        """The same messages as the SSE streams, as JSON text frames (?job_id= for one job)."""
        await ws.accept()
        if job_id is not None and await asyncio.to_thread(store().get, job_id) is None:
            await ws.close(code=1008, reason=f"no job {job_id!r}")
            return
        try:
            async for chunk in stream(job_id):
                if chunk.startswith("id:"):
                    await ws.send_text(chunk.split("data: ", 1)[1].strip())
            await ws.close()
        except WebSocketDisconnect:
            pass

    # ---- inputs, catalogue, health ------------------------------------------------------

    @app.post(
        "/uploads",
        status_code=201,
        response_model=m.Upload,
        tags=["inputs"],
        responses={413: {"model": m.ErrorMessage}, 415: {"model": m.ErrorMessage}},
    )
    def upload(file: UploadFile = File(description="an image: PNG, JPEG, WebP, BMP, TIFF or GIF")) -> Any:
        """Store an input image under a name the server chooses; use that name as LoadImage's path."""
        data = file.file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            return _error(413, "body_too_large", f"uploads are limited to {config.max_upload_bytes} bytes")
        try:
            saved = store_upload(data, file.filename, config.input_dir, config.max_upload_pixels)
        except UploadRejected as exc:
            return _error(exc.status, exc.code, exc.message)
        return m.Upload(**saved.__dict__)

    @app.get("/nodes", response_model=list[m.NodeInfo], tags=["catalogue"])
    def nodes() -> Any:
        """Every node type, from its declared schema."""
        return [cls.describe() for _, cls in sorted(load_nodes().items())]

    @app.get(
        "/nodes/{node_type}", response_model=m.NodeInfo, tags=["catalogue"], responses={404: {"model": m.ErrorMessage}}
    )
    def node(node_type: str) -> Any:
        cls = load_nodes().get(node_type)
        if cls is None:
            raise HTTPException(404, f"no node type {node_type!r}")
        return cls.describe()

    @app.get("/schema", tags=["catalogue"])
    def schema() -> Any:
        """The JSON Schema of graphs, with every node type's inputs (as `nodeflow schema`)."""
        from ..schema import graph_schema

        return graph_schema()

    @app.get("/graphs", response_model=list[m.GraphInfo], tags=["catalogue"])
    def graphs() -> Any:
        """The graphs bundled with nodeflow."""
        out = []
        for path in sorted(BUNDLED_GRAPHS.glob("*.json")):
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or "nodes" not in data:
                continue
            out.append(
                m.GraphInfo(
                    name=path.stem,
                    title=data.get("title"),
                    description=data.get("description"),
                    url=f"/graphs/{path.stem}",
                )
            )
        return out

    @app.get("/graphs/{name}", tags=["catalogue"], responses={404: {"model": m.ErrorMessage}})
    def graph(name: str) -> Any:
        """One bundled graph, ready to submit as `graph`."""
        path = BUNDLED_GRAPHS / f"{name}.json"
        if not GRAPH_NAME.match(name) or not path.is_file():
            raise HTTPException(404, f"no bundled graph {name!r}")
        return json.loads(path.read_text("utf-8"))

    @app.get("/health", response_model=m.Health, tags=["health"])
    def health() -> Any:
        return m.Health(
            status="ok",
            version=__version__,
            workers=config.workers,
            jobs=store().counts(),
            auth=config.token is not None,
            memory_cache=pool().memory_cache_stats(),
        )

    app.include_router(login.create_router(config.token))
    # ComfyUI's protocol and the web editor (last: the editor's static files sit under /).
    comfy_mount.mount(app, config, broker, store, pool)
    return app


def _summary(job: st.Job) -> m.JobSummary:
    return m.JobSummary(
        id=job.id,
        status=job.status,
        client_id=job.client_id,
        created=job.created,
        started=job.started,
        finished=job.finished,
        attempts=job.attempts,
    )


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    data_dir: str | Path | None = None,
    token: str | None = None,
    workers: int = 1,
    requeue_interrupted: bool = False,
    log_level: str = "info",
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    ray: str | None = None,
    allow_downloads: bool | None = None,
) -> int:
    """Start the API with uvicorn (blocks). Returns an exit code."""
    config = ServerConfig(
        data_dir=Path(data_dir) if data_dir else default_data_dir(),
        host=host,
        port=port,
        token=token or os.environ.get("NODEFLOW_TOKEN") or None,
        workers=workers,
        requeue_interrupted=requeue_interrupted,
        ray_address=ray or os.environ.get("NODEFLOW_RAY_ADDRESS") or None,
    )
    config.allowed_hosts += allowed_hosts or []
    config.allowed_origins += allowed_origins or []
    if allow_downloads is not None:
        config.allow_downloads = allow_downloads
    problem = config.check()
    if not problem and config.ray_address:
        from nodeflow.ray_backend.backend import unreachable

        problem = unreachable(config.ray_address)
    if problem:
        print(f"nodeflow serve: error: {problem}", file=sys.stderr)
        return 2
    keep_downloads_inside(config.data_dir, config.allow_downloads)
    try:
        app = create_app(config)
    except ServerError as exc:
        print(f"nodeflow serve: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    print(
        f"nodeflow: serving http://{host}:{port} (data {config.data_dir}, {workers} worker(s)"
        f"{' on the Ray cluster at ' + config.ray_address if config.ray_address else ''}, "
        f"token {'required' if config.token else 'not required'})",
        file=sys.stderr,
        flush=True,
    )
    redact = RedactToken(config.token)
    for name in ("uvicorn.access", "uvicorn.error"):  # uvicorn logs WebSocket handshakes on .error
        logging.getLogger(name).addFilter(redact)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3)
    except SystemExit as exc:  # uvicorn exits when it can't bind
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    return 0
