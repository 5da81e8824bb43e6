"""Renders the event stream on a terminal: one line per node, tqdm bars for progress."""
from __future__ import annotations

import sys
from typing import Any

from . import events as ev


class ConsoleRenderer:
    def __init__(self, plan: Any, quiet: bool = False, stream: Any = None):
        self.plan = plan
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.width = max((len(n) for n in plan.nodes), default=4)
        self.bar = None
        self.counts = {"ran": 0, "cached": 0}

    def _line(self, node: str, text: str) -> None:
        self._close_bar()
        t = self.plan.nodes[node].cls.type if node in self.plan.nodes else ""
        print(f"  {node:<{self.width}}  {t:<14} {text}", file=self.stream, flush=True)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            title = self.plan.graph.title or "graph"
            print(f"nodeflow: {title}: {len(event.nodes)} node(s)", file=self.stream)
            by_device: dict[str, list[str]] = {}
            for node, device in event.placement.items():
                fw = event.frameworks.get(node)
                by_device.setdefault(f"{device} ({fw})" if fw else device, []).append(node)
            print("  placement: " + "; ".join(f"{d}: {', '.join(ns)}" for d, ns in by_device.items()),
                  file=self.stream)
        elif isinstance(event, ev.NodeCached):
            self.counts["cached"] += 1
            self._line(event.node, f"cached ({event.source})")
        elif isinstance(event, ev.NodeStarted):
            if event.device != "cpu":
                self._line(event.node, f"started on {event.device}")
        elif isinstance(event, ev.NodeProgress):
            if self.quiet:
                return
            if self.bar is None:
                from tqdm import tqdm
                self.bar = tqdm(total=event.total, desc=f"  {event.node}", file=self.stream,
                                leave=False, dynamic_ncols=True)
            self.bar.total = event.total
            self.bar.n = event.value
            self.bar.refresh()
        elif isinstance(event, ev.NodeFinished):
            self.counts["ran"] += 1
            files = f" -> {', '.join(event.outputs)}" if event.outputs else ""
            self._line(event.node, f"ran in {event.seconds:.2f}s{files}")
        elif isinstance(event, ev.NodeFailed):
            self._line(event.node, f"FAILED: {event.error}")
        elif isinstance(event, ev.Log):
            self._close_bar()
            print(f"  {event.node + ': ' if event.node else ''}{event.message}", file=self.stream, flush=True)
        elif isinstance(event, ev.RunFinished):
            self._close_bar()
            print(f"{event.status} in {event.seconds:.2f}s: {self.counts['ran']} ran, "
                  f"{self.counts['cached']} cached", file=self.stream)

    def close(self) -> None:
        self._close_bar()
