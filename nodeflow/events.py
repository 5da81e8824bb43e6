"""The one event stream every front end (CLI, HTTP) renders."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.kind}
        for f in fields(self):
            d[f.name] = getattr(self, f.name)
        return d


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    nodes: list[str]  # the nodes this run needs, in execution order
    placement: dict[str, str] = field(default_factory=dict)
    frameworks: dict[str, str] = field(default_factory=dict)  # for nodes that run on one


@dataclass
class NodeStarted(Event):
    kind: ClassVar[str] = "node_started"
    node: str
    type: str
    device: str


@dataclass
class NodeCached(Event):
    kind: ClassVar[str] = "node_cached"
    node: str
    type: str
    source: str  # "memory", "disk", "downstream" (not needed), "output up to date", "same as <node>"


@dataclass
class NodeProgress(Event):
    kind: ClassVar[str] = "node_progress"
    node: str
    value: float
    total: float


@dataclass
class NodePreview(Event):
    kind: ClassVar[str] = "node_preview"
    node: str
    image: Any  # IMAGE (numpy HxWxC, 0..1); front ends encode it
    full: bool = False  # an image delivered at full size (never shrunk or dropped), not a glimpse

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "node": self.node, **({"full": True} if self.full else {})}


@dataclass
class NodeFinished(Event):
    kind: ClassVar[str] = "node_finished"
    node: str
    type: str
    seconds: float
    outputs: list[str] = field(default_factory=list)  # files written


@dataclass
class NodeFailed(Event):
    kind: ClassVar[str] = "node_failed"
    node: str
    type: str
    error: str
    input: str | None = None


@dataclass
class Log(Event):
    kind: ClassVar[str] = "log"
    message: str
    node: str | None = None


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    run_id: str
    status: str  # succeeded, failed, cancelled
    seconds: float
    error: str | None = None
