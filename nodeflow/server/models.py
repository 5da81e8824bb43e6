"""Request and response models. The graph in a submit is the engine's own `Graph`
model, so the OpenAPI docs and the CLI's graph files share one schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..graph import Graph

JobStatus = Literal["queued", "waiting", "running", "succeeded", "failed", "cancelled", "interrupted"]


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph: Graph = Field(
        description="a graph, exactly as in a graph file; each node type's inputs "
        "are in the GraphWithNodeTypes schema (and GET /schema)"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='{"node.input": value}, like the CLI\'s --set',
        examples=[{"load.path": "photo.png"}],
    )
    only: list[str] | None = Field(None, description="run only what these nodes need (default: every output node)")
    client_id: str | None = Field(None, max_length=128, description="your own label, to filter jobs and events")
    sweep: dict[str, Any] | None = Field(
        None,
        description='{"node.input": [v1, v2, ...]}: queue one job per '
        "combination of the values, as a group with a contact sheet",
        examples=[{"sobel.normalize": ["max", "fixed"]}],
    )


class SubmitResponse(BaseModel):
    job_id: str
    status: JobStatus
    url: str = Field(description="GET it for the job's state")
    events_url: str = Field(description="Server-Sent Events of this job")


class GroupSubmitResponse(BaseModel):
    group_id: str
    url: str = Field(description="GET it for the group's jobs and contact sheets")
    jobs: list[SubmitResponse]


class Issue(BaseModel):
    """One problem, located by node id and input name where it has them (as the CLI prints them)."""

    code: str
    message: str
    node: str | None = None
    input: str | None = None


class InvalidRequest(BaseModel):
    error: Literal["invalid_graph", "invalid_request"]
    issues: list[Issue]


class ErrorMessage(BaseModel):
    error: str
    message: str


class NodeState(BaseModel):
    state: str = Field(description="pending, running, ran, cached, failed or cancelled")
    cached: bool = False
    source: str | None = Field(
        None,
        description="for cached nodes: memory, disk, downstream, output up to date, "
        "or same as <node> (an identical node of the same run)",
    )
    seconds: float | None = None
    device: str | None = None
    error: str | None = None
    outputs: list[str] = Field(default_factory=list, description="files written, relative to the job's outputs")
    progress: list[float] | None = Field(None, description="[value, total] while running")


class OutputFile(BaseModel):
    node: str
    name: str
    url: str


class JobError(BaseModel):
    message: str
    node: str | None = None
    type: str | None = None
    input: str | None = None


class JobSummary(BaseModel):
    id: str
    status: JobStatus
    client_id: str | None = None
    created: float
    started: float | None = None
    finished: float | None = None
    attempts: int = Field(0, description="runs started; above 1 after an interruption was re-queued")
    waiting: str | None = Field(
        None,
        description="while queued or waiting: why it is not running (e.g. waiting for a CPU on the cluster, "
        "or re-queued after its worker was lost)",
    )


class Job(JobSummary):
    position: int | None = Field(None, description="jobs ahead of this one, while queued")
    overrides: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, NodeState] = Field(default_factory=dict)
    outputs: list[OutputFile] = Field(default_factory=list)
    error: JobError | None = None
    issues: list[Issue] | None = Field(None, description="validation problems found when the job started")
    seconds: float | None = None
    group_id: str | None = Field(None, description="the sweep this job belongs to")
    sweep: dict[str, Any] | None = Field(None, description="this job's values in its sweep")
    worker: dict[str, Any] | None = Field(
        None, description="where it ran: host, pid, and with --ray the Ray node id and address"
    )


class JobList(BaseModel):
    jobs: list[JobSummary]
    counts: dict[str, int] = Field(description="jobs per status, over the whole store")


class CancelResponse(BaseModel):
    job_id: str
    status: str = Field(
        description="cancelled (it was queued), cancelling (it stops at its next check), or the status it already had"
    )


class Upload(BaseModel):
    name: str = Field(description="use it as LoadImage's path")
    size: int
    width: int
    height: int
    format: str
    sha256: str


class InputInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    required: bool
    description: str = ""


class OutputInfo(BaseModel):
    type: str
    description: str = ""


class NodeInfo(BaseModel):
    """A node type, from its declared schema (the same data as `nodeflow nodes --json`)."""

    type: str
    version: str
    category: str
    description: str
    output_node: bool
    deterministic: bool
    devices: list[str]
    frameworks: list[str]
    inputs: dict[str, InputInfo]
    outputs: dict[str, OutputInfo]


class GraphInfo(BaseModel):
    name: str
    title: str | None = None
    description: str | None = None
    url: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    workers: int
    jobs: dict[str, int]
    auth: bool = Field(description="whether a bearer token is required")
    memory_cache: dict[str, int] = Field(
        description="the shared value cache: items, bytes, budget_bytes ($NODEFLOW_MEMORY_CACHE_MB)"
    )


class SweepAxis(BaseModel):
    target: str = Field(description="node.input")
    values: list[Any]


class GroupJob(BaseModel):
    id: str
    status: JobStatus
    values: dict[str, Any] = Field(description="this variation's values")
    url: str
    outputs: list[OutputFile] = Field(default_factory=list)


class ContactSheet(BaseModel):
    node: str = Field(description="the output node whose images it shows")
    name: str
    url: str
    layout: dict[str, Any] = Field(description="row and column labels, and each cell's box and file")


class Group(BaseModel):
    id: str
    client_id: str | None = None
    created: float
    finished: float | None = None
    status: Literal["running", "finished"]
    sweep: list[SweepAxis]
    jobs: list[GroupJob]
    contact_sheets: list[ContactSheet] = Field(default_factory=list)
    error: str | None = None
