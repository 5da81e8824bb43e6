"""The text chunks ComfyUI writes into its output PNGs: `prompt` (API format) and `workflow`
(the editor's JSON, laid out in columns). Dropping such a PNG on the editor loads its graph.
Used by the Save node, beside nodeflow's own graph chunk."""

from __future__ import annotations

import json

from nodeflow.comfy.translate import graph_to_prompt
from nodeflow.comfy.workflow import graph_to_workflow


def png_chunks(graph_json: str) -> dict[str, str]:
    graph = json.loads(graph_json)
    return {"prompt": json.dumps(graph_to_prompt(graph)), "workflow": json.dumps(graph_to_workflow(graph))}
