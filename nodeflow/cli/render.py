"""Renders the event stream: one line per node; on a terminal, tqdm bars for progress,
and in a log (stdout or stderr not a terminal: CI, `| tee`) a plain progress line every
10 % or every 10 s instead of carriage-return bars."""

from __future__ import annotations

import sys
import time
from typing import Any

from nodeflow import events as ev

# Node ids are padded to line up up to this width; a longer id is printed as it is.
MAX_ID_WIDTH = 24
LOG_PROGRESS_STEP = 0.10
LOG_PROGRESS_SECONDS = 10.0


class ConsoleRenderer:
    def __init__(self, plan: Any, quiet: bool = False, stream: Any = None):
        self.plan = plan
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.width = min(max((len(n) for n in plan.nodes), default=4), MAX_ID_WIDTH)
        self.bar: Any = None  # a tqdm bar while a node reports progress
        self.counts = {"ran": 0, "cached": 0}
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self._logged: dict[str, tuple[int, float]] = {}  # node -> (10 % step, time) last logged

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
            print("  placement: " + "; ".join(f"{d}: {', '.join(ns)}" for d, ns in by_device.items()), file=self.stream)
        elif isinstance(event, ev.NodeCached):
            self.counts["cached"] += 1
            self._line(event.node, f"cached ({event.source})")
        elif isinstance(event, ev.NodeStarted):
            if event.device != "cpu":
                self._line(event.node, f"started on {event.device}")
        elif isinstance(event, ev.NodeProgress):
            if self.quiet:
                return
            if not self.interactive:
                self._log_progress(event)
                return
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=event.total, desc=f"  {event.node}", file=self.stream, leave=False, dynamic_ncols=True
                )
            bar = self.bar
            bar.total = event.total
            bar.n = event.value
            bar.refresh()
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
            print(
                f"{event.status} in {event.seconds:.2f}s: {self.counts['ran']} ran, {self.counts['cached']} cached",
                file=self.stream,
            )

    def _log_progress(self, event: ev.NodeProgress) -> None:
        fraction = event.value / event.total if event.total else 0.0
        step = int(fraction / LOG_PROGRESS_STEP + 1e-9)
        now = time.monotonic()
        last_step, last_time = self._logged.get(event.node, (0, now))
        if event.node in self._logged and step <= last_step and now - last_time < LOG_PROGRESS_SECONDS:
            return
        if event.node not in self._logged and step == 0:
            self._logged[event.node] = (0, now)  # the clock starts at the first report
            return
        self._logged[event.node] = (step, now)
        self._line(event.node, f"{fraction:.0%} ({event.value:g}/{event.total:g})")

    def close(self) -> None:
        self._close_bar()
