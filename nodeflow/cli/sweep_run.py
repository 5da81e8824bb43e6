"""`nodeflow run GRAPH --sweep NODE.INPUT=v1,v2 ...`: every variation on one Executor,
so what no swept input touches runs once and the cache serves it to the others."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodeflow.cache import DiskCache, default_cache_dir, disk_budget
from nodeflow.errors import GraphInvalid, Issue
from nodeflow.executor import Executor, RunResult
from nodeflow.graph import Graph, apply_overrides
from nodeflow.plan import build_plan
from nodeflow.sweeps.contact_sheet import sheets_for
from nodeflow.sweeps.sweep import DEFAULT_LIMIT, parse_specs, plan_sweep


def written(result: RunResult) -> dict[str, list[Path]]:
    """The files each node of a run wrote."""
    return {nid: [Path(p) for p in r.outputs] for nid, r in result.nodes.items() if r.outputs}


def run_sweep(graph: Graph | None, settings: Any, args: Any, earlier: Sequence[Issue] = ()) -> str:
    """Validate and run the cross product, then save the contact sheets. Returns the
    overall status: succeeded, failed (some variation failed) or cancelled. `earlier`: the
    problems reading the graph and its --set overrides found (graph: what could be read,
    None if nothing); they are reported with every later stage's."""
    parsed = parse_specs(args.sweep)
    parsed[1][:0] = earlier
    if getattr(args, "run_log", None):
        parsed[1].append(Issue("invalid_option", "--run-log records a single run, not a sweep"))
    if graph is None:
        raise GraphInvalid(parsed[1])
    limit = args.sweep_limit if args.sweep_limit is not None else DEFAULT_LIMIT
    if args.ray:
        return _run_on_ray(graph, parsed, settings, args, limit)
    planned = plan_sweep(parsed, _builder(graph, settings, args), limit)
    disk = None if args.no_cache else DiskCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    try:
        return _run_all(parsed[0], planned, settings, Executor(disk=disk), args.quiet)
    finally:
        if disk is not None:
            disk.prune(disk_budget())


def _builder(graph: Graph, settings: Any, args: Any, available: dict | None = None):
    return lambda v: build_plan(
        apply_overrides(graph, v.values), v.settings(settings), device=args.device, only=args.only, available=available
    )


def _run_on_ray(graph: Graph, parsed: tuple, settings: Any, args: Any, limit: int) -> str:
    """The variations on a Ray cluster's warm workers, planned for the cluster's devices."""
    issues = list(parsed[1])
    if args.device:
        issues.append(
            Issue(
                "invalid_option",
                "--device is not used with --ray: workers place nodes on "
                "their own devices; pin devices in the graph instead",
            )
        )
    from nodeflow.extras import missing

    absent = missing("ray", "ray")
    if absent:
        issues.append(Issue("invalid_option", f"--ray: {absent}"))
    if issues:  # with the variations' own problems, checked here without joining the cluster
        try:
            plan_sweep(parsed, _builder(graph, settings, args), limit)
        except GraphInvalid as exc:
            issues += [i for i in exc.issues if i not in issues]
        raise GraphInvalid(issues)
    from nodeflow.ray_backend.fanout import RayFanout

    fan = RayFanout(args.ray)
    try:
        planned = plan_sweep(parsed, _builder(graph, settings, args, fan.devices), limit)
        outputs, status = fan.run(json.loads(graph.to_json()), args.only, planned, settings)
    finally:
        fan.close()
    _print_sheets(sheets_for(parsed[0], outputs, settings.output_dir))
    return status


def _print_sheets(sheets: list[dict]) -> None:
    for s in sheets:
        print(f"nodeflow: contact sheet ({s['node']}): {s['path']}", file=sys.stderr)


def _run_all(axes: list, planned: list, settings: Any, executor: Executor, quiet: bool) -> str:
    from nodeflow.cli.render import ConsoleRenderer

    outputs, status = [], "succeeded"
    for var, plan in planned:
        label = ", ".join(f"{t}={v!r}" for t, v in var.values.items())
        print(f"nodeflow: variation {var.index + 1}/{len(planned)}: {label}", file=sys.stderr, flush=True)
        renderer = ConsoleRenderer(plan, quiet=quiet)
        try:
            result = executor.run(plan, emit=renderer)
        finally:
            renderer.close()
        outputs.append(written(result))
        if result.status == "cancelled":
            return "cancelled"
        if result.status == "failed":
            print(f"error: {result.error}", file=sys.stderr)
            status = "failed"
    _print_sheets(sheets_for(axes, outputs, settings.output_dir))
    return status
