"""Errors for bad input (exit status 2 / HTTP 422) and run-time node failures (exit 1)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Issue:
    """One validation problem, located by node id and input name where it has them."""
    code: str
    message: str
    node: str | None = None
    input: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node '{self.node}'")
        if self.input is not None:
            where.append(f"input '{self.input}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def to_dict(self) -> dict:
        return asdict(self)


class GraphInvalid(Exception):
    """The graph (or its file) is invalid; carries every issue found."""

    def __init__(self, issues: list[Issue]):
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class NodeFailed(Exception):
    """A node raised while running."""

    def __init__(self, node: str, node_type: str, message: str, input: str | None = None):
        where = f"node '{node}' ({node_type})" + (f", input '{input}'" if input else "")
        super().__init__(f"{where}: {message}")
        self.node, self.node_type, self.message, self.input = node, node_type, message, input


class Cancelled(Exception):
    """The run was cancelled (checked between nodes and inside long nodes)."""
