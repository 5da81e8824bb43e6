"""Every stage of validation in one pass: reading the file, overrides, then the plan.
A stage that finds problems hands on what it could read, so the later stages still check
it and every problem is reported at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import GraphInvalid, Issue
from .graph import Graph, apply_overrides
from .plan import Plan, build_plan


def read_graph(
    load: Callable[[], Graph], overrides: Callable[[], dict[str, Any]] | dict[str, Any] | None = None
) -> tuple[Graph | None, list[Issue]]:
    """The stages before planning: load() reads the graph, then the overrides (or a function
    that parses them) are applied. Returns what could be read (None: nothing) and the issues
    found, so that the caller's later stages still check the rest."""
    issues: list[Issue] = []

    def stage(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except GraphInvalid as exc:
            issues.extend(exc.issues)
            return exc.partial

    graph = stage(load)
    values = stage(overrides) if callable(overrides) else overrides
    if graph is not None and values:
        graph = stage(lambda: apply_overrides(graph, values))
    return graph, issues


def plan_graph(
    load: Callable[[], Graph],
    overrides: Callable[[], dict[str, Any]] | dict[str, Any] | None = None,
    **plan_options: Any,
) -> Plan:
    """read_graph(load, overrides), then build_plan(**plan_options). Raises GraphInvalid
    with the issues of every stage."""
    graph, issues = read_graph(load, overrides)
    plan = None
    if graph is not None:
        try:
            plan = build_plan(graph, **plan_options)
        except GraphInvalid as exc:
            issues.extend(exc.issues)
    if issues or plan is None:
        raise GraphInvalid(issues)
    return plan
