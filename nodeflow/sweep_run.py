"""`nodeflow run GRAPH --sweep NODE.INPUT=v1,v2 ...`: every variation on one Executor,
so what no swept input touches runs once and the cache serves it to the others."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .contact_sheet import sheets_for
from .cache import DiskCache, default_cache_dir, disk_budget
from .executor import Executor, RunResult
from .graph import Graph, apply_overrides
from .plan import build_plan
from .sweep import DEFAULT_LIMIT, parse_specs, plan_sweep


def written(result: RunResult) -> dict[str, list[Path]]:
    """The files each node of a run wrote."""
    return {nid: [Path(p) for p in r.outputs] for nid, r in result.nodes.items() if r.outputs}


def run_sweep(graph: Graph, settings: Any, args: Any) -> str:
    """Validate and run the cross product, then save the contact sheets. Returns the
    overall status: succeeded, failed (some variation failed) or cancelled."""
    parsed = parse_specs(args.sweep)
    limit = args.sweep_limit if args.sweep_limit is not None else DEFAULT_LIMIT
    planned = plan_sweep(parsed, lambda v: build_plan(apply_overrides(graph, v.values), v.settings(settings),
                                                    device=args.device, only=args.only), limit)
    disk = None if args.no_cache else DiskCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    try:
        return _run_all(parsed[0], planned, settings, Executor(disk=disk), args.quiet)
    finally:
        if disk is not None:
            disk.prune(disk_budget())


def _run_all(axes: list, planned: list, settings: Any, executor: Executor, quiet: bool) -> str:
    from .render import ConsoleRenderer
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
    sheets = sheets_for(axes, outputs, settings.output_dir)
    for s in sheets:
        print(f"nodeflow: contact sheet ({s['node']}): {s['path']}", file=sys.stderr)
    return status
