"""The planner's issues as ComfyUI's validation reply: HTTP 400 with `error` and
`node_errors` keyed by prompt id, so the editor outlines each node and names its input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nodeflow.errors import Issue

# nodeflow issue code -> ComfyUI error type, where ComfyUI has one.
ERROR_TYPES = {
    "required_input_missing": "required_input_missing",
    "value_too_small": "value_smaller_than_min",
    "value_too_large": "value_bigger_than_max",
    "invalid_choice": "value_not_in_list",
    "type_mismatch": "return_type_mismatch",
    "invalid_type": "invalid_input_type",
    "missing_output": "bad_linked_input",
    "missing_node": "bad_linked_input",
    "unknown_type": "invalid_prompt",
}


def error(type_: str, message: str, details: str = "", extra: dict | None = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": extra or {}}


def node_errors(issues: list[Issue], back: dict[str, str], class_types: dict[str, str]) -> dict[str, Any]:
    """{"error": ..., "node_errors": {prompt id: {"errors", "dependent_outputs", "class_type"}}}.
    `back` maps nodeflow ids to prompt ids; class_types maps prompt ids to types."""
    per_node: dict[str, Any] = {}
    general: list[Issue] = []
    for issue in issues:
        cid = back.get(issue.node) if issue.node else None
        if cid is None:
            general.append(issue)
            continue
        if issue.input == "path" and class_types.get(cid) == "LoadImage":
            issue = replace(issue, input="image")  # nodeflow's LoadImage path, as ComfyUI names it
        extra = {"input_name": issue.input} if issue.input else {}
        entry = per_node.setdefault(
            cid, {"errors": [], "dependent_outputs": [], "class_type": class_types.get(cid, "")}
        )
        where = f"{issue.input}: " if issue.input else ""
        entry["errors"].append(
            error(
                ERROR_TYPES.get(issue.code, issue.code),
                f"{where}{issue.message}",
                f"{issue.input}: {issue.message}" if issue.input else issue.message,
                extra,
            )
        )
    if per_node:
        top = error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", "; ".join(str(i) for i in general)
        )
    elif general and general[0].code == "no_output":
        top = error("prompt_no_outputs", "Prompt has no outputs", general[0].message)
    else:
        top = error(
            "invalid_prompt",
            general[0].message if general else "invalid prompt",
            "; ".join(str(i) for i in general[1:]),
        )
    return {"error": top, "node_errors": per_node}
