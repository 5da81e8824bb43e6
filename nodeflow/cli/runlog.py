"""The run log: per-node states of one run, as JSON (`nodeflow run --run-log FILE`), in the
same shape as the HTTP API's GET /jobs/{id}, so `nodeflow show --run-log` reads either."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nodeflow.errors import GraphInvalid, Issue


def run_log(result: Any, graph: str) -> dict:
    """JSON-ready log of an executor RunResult."""
    return {
        "graph": graph,
        "run_id": result.run_id,
        "status": result.status,
        "seconds": round(result.seconds, 4),
        "error": str(result.error) if result.error else None,
        "nodes": {nid: asdict(report) for nid, report in result.nodes.items()},
    }


def write_run_log(path: Path, log: dict) -> None:
    """Written atomically; a log names the last run, so an existing one is replaced."""
    from nodeflow.cache import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(log, indent=2) + "\n").encode("utf-8"))


def read_states(source: str) -> dict[str, dict]:
    """{node id: {state, source, seconds, error, ...}} from a run log file, a saved GET
    /jobs/{id} answer, or that URL itself (with $NODEFLOW_TOKEN as the bearer token)."""
    try:
        if source.startswith(("http://", "https://")):
            import urllib.request

            req = urllib.request.Request(source)
            if os.environ.get("NODEFLOW_TOKEN"):
                req.add_header("Authorization", f"Bearer {os.environ['NODEFLOW_TOKEN']}")
            with urllib.request.urlopen(req, timeout=30) as resp:
                data = json.loads(resp.read())
        else:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraphInvalid([Issue("invalid_run_log", f"--run-log {source}: cannot read it ({exc})")]) from None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict) or not all(isinstance(v, dict) for v in nodes.values()):
        raise GraphInvalid(
            [
                Issue(
                    "invalid_run_log",
                    f"--run-log {source}: no per-node states "
                    "(expected a `nodeflow run --run-log` file or a GET /jobs/ID answer)",
                )
            ]
        )
    return nodes
