"""Jobs: submit a graph (or a sweep of it), list jobs, follow one, cancel it, download its outputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException

from nodeflow.errors import GraphInvalid
from nodeflow.jobs import store as st
from nodeflow.jobs.broadcast import Broker
from nodeflow.jobs.groups import Groups
from nodeflow.jobs.planning import plan_request
from nodeflow.jobs.worker import WorkerPool

from .. import models as m
from ..deps import Config, Events, Pool, Scrub, Store, SweepGroups

MAX_OFFSET = 2**31  # far past any history, and well inside sqlite's integers

router = APIRouter(tags=["jobs"])


def get_job(store: st.JobStore, job_id: str) -> st.Job:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def summary(job: st.Job) -> m.JobSummary:
    return m.JobSummary(
        id=job.id,
        status=cast(m.JobStatus, job.status),
        client_id=job.client_id,
        created=job.created,
        started=job.started,
        finished=job.finished,
        attempts=job.attempts,
        waiting=job.waiting if job.status in (st.QUEUED, st.WAITING) else None,
    )


def submitted(job: st.Job) -> m.SubmitResponse:
    return m.SubmitResponse(
        job_id=job.id, status=cast(m.JobStatus, job.status), url=f"/jobs/{job.id}", events_url=f"/jobs/{job.id}/events"
    )


@router.post(
    "/jobs",
    status_code=202,
    response_model=m.SubmitResponse | m.GroupSubmitResponse,
    responses={422: {"model": m.InvalidRequest, "description": "the graph is invalid: not queued"}},
)
def submit(
    body: m.SubmitRequest,
    response: Response,
    config: Config,
    pool: Pool,
    groups: SweepGroups,
    broker: Events,
    scrub: Scrub,
) -> Any:
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
            return submit_sweep(request, body.sweep, body.client_id, response, groups, broker, pool)
        plan_request(config, job_id, request)
    except GraphInvalid as exc:
        return JSONResponse(
            {"error": "invalid_graph", "issues": scrub.deep([i.to_dict() for i in exc.issues])}, status_code=422
        )
    job = pool.enqueue(request, body.client_id, job_id)
    response.headers["Location"] = f"/jobs/{job.id}"
    return submitted(job)


def submit_sweep(
    request: dict,
    sweep: dict,
    client_id: str | None,
    response: Response,
    groups: Groups,
    broker: Broker,
    pool: WorkerPool,
) -> m.GroupSubmitResponse:
    group_id, jobs = groups.submit(request, sweep, client_id)
    for job in jobs:
        broker.publish(job.id, {"event": "job_queued", "client_id": job.client_id, "group_id": group_id})
    pool.notify()
    response.headers["Location"] = f"/groups/{group_id}"
    return m.GroupSubmitResponse(group_id=group_id, url=f"/groups/{group_id}", jobs=[submitted(j) for j in jobs])


@router.get("/jobs", response_model=m.JobList)
def list_jobs(
    store: Store,
    status: m.JobStatus | None = None,
    client_id: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Any:
    """Jobs, newest first."""
    jobs = store.list(status, client_id, limit, offset)
    return m.JobList(jobs=[summary(j) for j in jobs], counts=store.counts())


@router.get("/jobs/{job_id}", response_model=m.Job, responses={404: {"model": m.ErrorMessage}})
def job_detail(job_id: str, store: Store, pool: Pool) -> Any:
    """A job's status, per-node state (timings, cached or not), errors and outputs."""
    job = get_job(store, job_id)
    result = job.result or {}
    nodes = result.get("nodes") or {}
    if job.status == st.RUNNING:
        nodes = pool.live_nodes(job_id) or {}
    position = store.position(job) if job.status == st.QUEUED else None
    return m.Job(
        **summary(job).model_dump(),
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


@router.post("/jobs/{job_id}/cancel", response_model=m.CancelResponse, responses={404: {"model": m.ErrorMessage}})
def cancel(job_id: str, store: Store, pool: Pool) -> Any:
    """Cancel a queued job, or stop a running one at its next check."""
    get_job(store, job_id)
    outcome = pool.cancel(job_id) or get_job(store, job_id).status
    return m.CancelResponse(job_id=job_id, status=outcome)


@router.get(
    "/jobs/{job_id}/outputs/{name:path}",
    response_class=FileResponse,
    responses={404: {"model": m.ErrorMessage}},
)
def download(job_id: str, name: str, store: Store, config: Config) -> Any:
    """Download one of the files the job wrote (only those are served)."""
    job = get_job(store, job_id)
    listed = {o["name"] for o in (job.result or {}).get("outputs") or []}
    if name not in listed:
        raise HTTPException(404, f"job {job_id} has no output {name!r}")
    root = config.job_output_dir(job_id).resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        raise HTTPException(404, f"output {name!r} is gone")
    return FileResponse(path, filename=Path(name).name)
