"""Errors for bad input (exit status 2 / HTTP 422) and run-time node failures (exit 1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Issue:
    """One validation problem, located by node id and input name where it has them."""

    code: str
    message: str
    node: str | None = None
    input: str | None = None

    def __post_init__(self) -> None:
        # Whatever a message echoes must print and encode as UTF-8 (no lone surrogates),
        # and stay short enough to read.
        for name in ("message", "node", "input"):
            value = getattr(self, name)
            if isinstance(value, str):
                safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
                if name == "message" and len(safe) > MESSAGE_LIMIT:
                    safe = safe[:MESSAGE_LIMIT] + "..."
                if safe != value:
                    object.__setattr__(self, name, safe)

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node {_short(self.node)}")
        if self.input is not None:
            where.append(f"input {_short(self.input)}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def to_dict(self) -> dict:
        return asdict(self)


class GraphInvalid(Exception):
    """The graph (or its file) is invalid; carries every issue found. `partial` is what
    could be read of the graph despite them, so later stages can check it too."""

    def __init__(self, issues: list[Issue], partial: object = None):
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
        self.partial = partial


class NodeFailed(Exception):
    """A node raised while running."""

    def __init__(self, node: str, node_type: str, message: str, input: str | None = None):
        where = f"node '{node}' ({node_type})" + (f", input '{input}'" if input else "")
        super().__init__(f"{where}: {message}")
        self.node, self.node_type, self.message, self.input = node, node_type, message, input


class Cancelled(Exception):
    """The run was cancelled (checked between nodes and inside long nodes)."""


ECHO_LIMIT = 200


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """repr(value) for an error message, cut to about `limit` characters: a bad value is
    echoed so it can be found, not sent back whole (it may be megabytes)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 10_000:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"  # repr() would refuse it
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _short(name: str, limit: int = 60) -> str:
    return f"'{name}'" if len(name) <= limit else f"'{name[:limit]}...'"
