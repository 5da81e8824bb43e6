"""`nodeflow convert IN OUT`: ComfyUI API prompts and editor workflows that use nodeflow's
nodes <-> nodeflow graphs. The input's kind is recognised; a graph becomes a workflow (or an
API prompt with to="api"), anything else becomes a graph. Bad input raises GraphInvalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nodeflow.comfy.translate import META_KEY, PromptInvalid, graph_info, graph_to_prompt, prompt_to_graph
from nodeflow.comfy.workflow import graph_to_workflow, workflow_to_graph
from nodeflow.errors import GraphInvalid, Issue
from nodeflow.graph import parse_graph, read_graph_file

KINDS = ("graph", "workflow", "api")


def kind_of(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("nodes"), dict):
        return "graph"
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return "workflow"
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        return "request"  # a /prompt body
    if isinstance(data, dict) and data and all(isinstance(n, dict) and "class_type" in n for n in data.values()):
        return "api"
    raise GraphInvalid([Issue("unknown_format", "not a nodeflow graph, a ComfyUI workflow or an API prompt")])


def _read(path: Path) -> Any:
    raw = path.read_bytes() if path.is_file() else None
    if raw is None:
        raise GraphInvalid([Issue("file_not_found", f"file not found: {path}")])
    if raw.startswith(b"\x89PNG"):
        return json.loads(read_graph_file(path).to_json())
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise GraphInvalid([Issue("invalid_json", f"{path}: not JSON ({exc})")]) from None


def to_graph(data: Any) -> dict[str, Any]:
    kind = kind_of(data)
    try:
        if kind == "graph":
            return data
        if kind == "workflow":
            return workflow_to_graph(data)
        workflow = (
            ((data.get("extra_data") or {}).get("extra_pnginfo") or {}).get("workflow") if kind == "request" else None
        )
        prompt = data["prompt"] if kind == "request" else data
        info = ((workflow or {}).get("extra") or {}).get(META_KEY)
        return prompt_to_graph(prompt, info).graph
    except (PromptInvalid, ValueError) as exc:
        raise GraphInvalid([Issue("invalid_prompt", str(exc))]) from None


def convert(data: Any, to: str | None = None) -> tuple[str, dict[str, Any]]:
    """(kind written, JSON). Default: a graph becomes a workflow, anything else a graph."""
    graph = to_graph(data)
    target = to or ("workflow" if kind_of(data) == "graph" else "graph")
    parse_graph(graph)  # the structure must hold whichever way it goes
    if target == "graph":
        return target, graph
    if target == "workflow":
        return target, graph_to_workflow(graph)
    prompt = graph_to_prompt(graph)
    info = graph_info(graph)
    if info and prompt:  # an API prompt has no graph-level place: the first node carries it
        prompt[next(iter(prompt))]["_meta"][META_KEY]["graph"] = info
    return target, prompt


def convert_file(src: str | Path, dst: str | Path, to: str | None = None, force: bool = False) -> str:
    dst = Path(dst)
    if dst.exists() and not force:
        raise GraphInvalid([Issue("file_exists", f"{dst} exists: pass --force to replace it")])
    kind, out = convert(_read(Path(src)), to)
    from nodeflow.cache import atomic_write

    atomic_write(dst, (json.dumps(out, indent=2) + "\n").encode())
    return kind
