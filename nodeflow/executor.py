"""Plan -> execution -> outputs.

Demand driven: walking back from the targets, a node whose result is cached stops
the walk, so nothing upstream of a cached value is loaded or run. Identical nodes
(one cache key) run once per run: the first in order runs, its twins take its
outputs. Output nodes always run (their side effect is the point). Values are
dropped as soon as their last consumer has read them.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from . import memtrim
from .cache import DiskCache, MemoryCache, memory_budget
from .context import CancelToken, NodeContext
from .errors import Cancelled, NodeFailed
from .node import InputError
from .plan import Plan, PlannedNode


@dataclass
class NodeReport:
    state: str = "pending"  # pending, running, ran, cached, failed, cancelled
    source: str | None = None  # for cached: memory, disk, downstream, output up to date, same as <node>
    seconds: float = 0.0
    device: str = "cpu"
    outputs: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    status: str  # succeeded, failed, cancelled
    nodes: dict[str, NodeReport]
    values: dict[str, dict[str, Any]]  # outputs of the target nodes
    seconds: float
    error: NodeFailed | None = None

    @property
    def files(self) -> list[str]:
        return [f for r in self.nodes.values() for f in r.outputs]


class Executor:
    """Holds the caches; shared by every run in a process (CLI run or HTTP workers)."""

    def __init__(self, memory: MemoryCache | None = None, disk: DiskCache | None = None, trim: bool = False):
        self.memory = memory if memory is not None else MemoryCache(memory_budget())
        self.disk = disk
        # A long-lived process (the server) gives the memory a run freed back to the system
        # when the run ends (glibc keeps it otherwise); $NODEFLOW_TRIM=0 turns that off.
        self.trim = trim and os.environ.get("NODEFLOW_TRIM", "1") != "0"

    def run(
        self,
        plan: Plan,
        emit: Callable[[ev.Event], None] | None = None,
        cancel: CancelToken | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        emit = emit or (lambda e: None)
        cancel = cancel or CancelToken()
        run_id = run_id or uuid.uuid4().hex[:12]
        started = time.perf_counter()
        reports = {nid: NodeReport(device=p.device) for nid, p in plan.nodes.items()}
        values: dict[str, dict[str, Any]] = {}
        where: dict[str, str] = {}  # the device each live value is on
        to_run, twins = self._decide(plan, values, where, reports, emit)
        graph_json = plan.graph.to_json()  # embedded by Save; serialised once per run

        emit(
            ev.RunStarted(
                run_id,
                plan.order,
                {n: p.device for n, p in plan.nodes.items()},
                {n: p.framework for n, p in plan.nodes.items() if p.framework},
            )
        )
        for nid, p in plan.nodes.items():
            if p.placement_note:
                emit(ev.Log(f"placement: {nid} ({p.cls.type}) on {p.device}: {p.placement_note}", nid))
        for nid, r in reports.items():
            if r.state == "cached":
                emit(ev.NodeCached(nid, plan.nodes[nid].cls.type, r.source or ""))

        remaining = {nid: 0 for nid in plan.nodes}
        for nid in to_run:
            for link in plan.nodes[nid].links.values():
                remaining[link.node] += 1
        for nid in [n for n in values if not remaining[n] and n not in plan.targets]:
            del values[nid]  # a cached node read only by its twins, which hold its outputs now
        status, error = "succeeded", None
        written: list[str] = []  # disk cache entries this run wrote
        try:
            for nid in plan.order:
                if nid not in to_run:
                    continue
                cancel.check()
                if self._run_node(plan, plan.nodes[nid], values, where, reports[nid], emit, cancel, graph_json):
                    written.append(plan.nodes[nid].key)
                _share(plan, nid, twins.get(nid, ()), values, where, reports, emit)
                if not remaining[nid] and nid not in plan.targets:
                    del values[nid]  # it ran only for its twins
                for link in plan.nodes[nid].links.values():
                    remaining[link.node] -= 1
                    if remaining[link.node] == 0 and link.node not in plan.targets:
                        values.pop(link.node, None)  # last consumer done: free it
        except Cancelled:
            status = "cancelled"
            for r in reports.values():
                if r.state in ("pending", "running"):
                    r.state = "cancelled"
        except NodeFailed as exc:
            status, error = "failed", exc
            if self.disk is not None and _caused_by_full_disk(exc) and written:
                # A full disk: what this run cached goes, so its retry finds the space again.
                self.disk.remove(written)
        seconds = time.perf_counter() - started
        if self.trim:
            memtrim.trim()
        emit(ev.RunFinished(run_id, status, seconds, str(error) if error else None))
        targets = {t: values[t] for t in plan.targets if t in values}
        return RunResult(run_id, status, reports, targets, seconds, error)

    def _lookup(self, plan: Plan, nid: str, emit: Callable) -> tuple[dict | None, str, str]:
        p = plan.nodes[nid]
        if not plan.cacheable(nid):
            return None, "", ""
        hit = self.memory.get(p.key)
        if hit is not None:
            return hit[0], "memory", hit[1]
        if self.disk is not None:
            outputs = self.disk.get(p.key, on_corrupt=lambda msg: emit(ev.Log(msg, nid)))
            if outputs is not None:
                return outputs, "disk", "cpu"
        return None, "", ""

    def _decide(
        self, plan: Plan, values: dict, where: dict, reports: dict, emit: Callable
    ) -> tuple[set[str], dict[str, list[str]]]:
        """Walk back from the targets; return the nodes that must run, and the twins
        {first node of a key: later nodes of that key} that take the first one's outputs."""
        needed, to_run = set(plan.targets), set()
        first = first_of_key(plan)
        twins: dict[str, list[str]] = {}
        for nid in reversed(plan.order):
            r = reports[nid]
            if nid not in needed:
                r.state, r.source = "cached", "downstream"
                continue
            if first.get(nid, nid) != nid:  # its twin comes earlier in the order
                twins.setdefault(first[nid], []).append(nid)
                needed.add(first[nid])
                continue
            outputs, source, device = self._lookup(plan, nid, emit)
            if outputs is not None:
                values[nid], where[nid] = outputs, device
                r.state, r.source = "cached", source
                _share(plan, nid, twins.pop(nid, ()), values, where, reports, None)
                continue
            to_run.add(nid)
            needed.update(link.node for link in plan.nodes[nid].links.values())
        return to_run, twins

    def _inputs(self, plan: Plan, p: PlannedNode, values: dict, where: dict) -> dict[str, Any]:
        inputs = dict(p.literals)
        for name, link in p.links.items():
            value = values[link.node][link.output]
            port = plan.nodes[link.node].cls.output_specs[link.output].port
            if port.to_device is not None and where[link.node] != p.device:
                value = port.to_device(value, p.device)  # only at edges that cross devices
            inputs[name] = value
        return inputs

    def _run_node(
        self,
        plan: Plan,
        p: PlannedNode,
        values: dict,
        where: dict,
        report: NodeReport,
        emit: Callable,
        cancel: CancelToken,
        graph_json: str,
    ) -> bool:
        """Run one node; True if its outputs were written to the disk cache."""
        ctx = NodeContext(p.id, p.cls.type, p.device, p.key, plan.settings, graph_json, emit, cancel)
        report.state = "running"
        emit(ev.NodeStarted(p.id, p.cls.type, p.device))
        t0 = time.perf_counter()
        try:
            result = p.cls(ctx).run(**self._inputs(plan, p, values, where))
            missing = set(p.cls.output_specs) - set(result or {})
            if missing:
                raise RuntimeError(f"node returned no value for output(s) {', '.join(sorted(missing))}")
        except Cancelled:
            report.state = "cancelled"
            raise
        except Exception as exc:
            inp = exc.input if isinstance(exc, InputError) else None
            msg = str(exc) if isinstance(exc, InputError) else f"{exc.__class__.__name__}: {exc}"
            report.state, report.error, report.seconds = "failed", msg, time.perf_counter() - t0
            emit(ev.NodeFailed(p.id, p.cls.type, msg, inp))
            raise NodeFailed(p.id, p.cls.type, msg, inp) from exc
        report.seconds = time.perf_counter() - t0
        report.outputs = ctx.outputs_written
        values[p.id] = {k: result[k] for k in p.cls.output_specs}
        where[p.id] = p.device
        if ctx.up_to_date:
            report.state, report.source = "cached", "output up to date"
            emit(ev.NodeCached(p.id, p.cls.type, "output up to date"))
            return False
        report.state = "ran"
        emit(ev.NodeFinished(p.id, p.cls.type, report.seconds, ctx.outputs_written))
        if plan.cacheable(p.id):
            return self._store(p, values[p.id])
        return False

    def _store(self, p: PlannedNode, outputs: dict[str, Any]) -> bool:
        """Cache a node's outputs; True if they were written to the disk cache."""
        ports = {k: s.port for k, s in p.cls.output_specs.items()}
        if all(ports[k].memory_cache for k in outputs):
            nbytes = sum(ports[k].nbytes(v) for k, v in outputs.items())
            self.memory.put(p.key, (outputs, p.device), nbytes)
        if self.disk is not None and all(ports[k].persist for k in outputs):
            on_cpu = {k: _to_cpu(ports[k].to_device, v) if p.device != "cpu" else v for k, v in outputs.items()}
            return self.disk.put(p.key, on_cpu)
        return False


def _caused_by_full_disk(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _to_cpu(to_device: Callable[[Any, str], Any] | None, value: Any) -> Any:
    return to_device(value, "cpu") if to_device else value


def first_of_key(plan: Plan) -> dict[str, str]:
    """{node: the first node in the run's order with its cache key}, for cacheable nodes.
    Output nodes and unstable ones (unseeded, unhashable) are never twins."""
    seen: dict[str, str] = {}
    return {nid: seen.setdefault(p.key, nid) for nid, p in plan.nodes.items() if plan.cacheable(nid)}


def _share(plan: Plan, first: str, twins, values: dict, where: dict, reports: dict, emit: Callable | None) -> None:
    """Give `first`'s outputs to its twins, which count as cached (emit: None before the run starts,
    when every cached node is announced at once)."""
    for nid in twins:
        values[nid], where[nid] = values[first], where[first]
        reports[nid].state, reports[nid].source = "cached", f"same as {first}"
        if emit:
            emit(ev.NodeCached(nid, plan.nodes[nid].cls.type, reports[nid].source))
