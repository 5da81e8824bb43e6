"""Fan-out of the engine's event stream to SSE and WebSocket subscribers.

Worker threads publish; subscribers are asyncio queues on the server's loop.
Each job keeps a bounded replay log, so a client that subscribes right after
submitting still sees the job from its first event.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from nodeflow import events as ev

PREVIEW_MAX_SIDE = 256
# Like chaiNNer: at most one progress message per node every 50 ms (the last one always goes).
PROGRESS_INTERVAL = 0.05
PREVIEW_INTERVAL = 0.25
REPLAY_JOBS = 64
REPLAY_EVENTS = 512
SUBSCRIBER_BACKLOG = 1000
TERMINAL = "job_finished"


def encode_preview(image: Any, full: bool = False) -> str | None:
    """A small PNG (longest side 256; `full`: the whole image) as base64, or None if it isn't an image."""
    try:
        import numpy as np
        from PIL import Image

        a = np.asarray(image, dtype=np.float32)
        if a.ndim == 2:
            a = a[:, :, None]
        u8 = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        im = Image.fromarray(u8[:, :, 0] if u8.shape[2] == 1 else u8[:, :, :4])
        if not full:
            im.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return base64.b64encode(buf.getvalue()).decode("ascii")
    except Exception:
        return None


TEMP_MARK = " [temp]"  # ComfyUI's annotation: a name in the temp folder, not the output folder


def relative_name(path: Any, root: Any, temp: Any = None) -> str:
    """A written file's name in its job's output folder; a preview in the job's `temp`
    folder is named relative to it, with TEMP_MARK."""
    from pathlib import Path

    p = Path(path).resolve()
    for base, mark in ((root, ""), (temp, TEMP_MARK)):
        if base is None:
            continue
        try:
            return p.relative_to(Path(base).resolve()).as_posix() + mark
        except ValueError:
            pass
    return p.name


class Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, job_id: str | None):
        self.loop = loop
        self.job_id = job_id
        self.queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_BACKLOG)

    def push(self, message: dict) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            pass  # a client that doesn't read loses messages, never the server's memory


class Broker:
    def __init__(self, clean: Callable[[Any], Any] | None = None) -> None:
        self._clean = clean or (lambda payload: payload)  # e.g. a Scrubber's deep(): no server paths
        self._lock = threading.Lock()
        self._subs: set[Subscriber] = set()
        self._replay: OrderedDict[str, deque] = OrderedDict()
        # Event ids grow across restarts too (they start from the clock, in microseconds),
        # so a reconnecting client's Last-Event-ID never hides new events.
        self._seq = itertools.count(time.time_ns() // 1000)

    def publish(self, job_id: str, payload: dict[str, Any]) -> None:
        message = {"seq": next(self._seq), "job_id": job_id, "time": round(time.time(), 3), **self._clean(payload)}
        with self._lock:
            log = self._replay.get(job_id)
            if log is None:
                log = self._replay[job_id] = deque(maxlen=REPLAY_EVENTS)
                while len(self._replay) > REPLAY_JOBS:
                    self._replay.popitem(last=False)
            if payload.get("event") != "node_preview":  # previews are live-only
                log.append(message)
            subs = [s for s in self._subs if s.job_id in (None, job_id)]
        for s in subs:
            s.loop.call_soon_threadsafe(s.push, message)

    def subscribe(self, job_id: str | None) -> tuple[Subscriber, list[dict]]:
        """A new subscriber and the events of `job_id` already sent (if still kept)."""
        sub = Subscriber(asyncio.get_running_loop(), job_id)
        with self._lock:
            self._subs.add(sub)
            backlog = list(self._replay.get(job_id, ())) if job_id else []
        return sub, backlog

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._replay.pop(job_id, None)


class Throttle:
    """Drops progress and previews beyond their rates (the last progress always goes).
    Used by JobEmitter, and by Ray workers before events cross the network."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}

    def _skip(self, kind: str, node: str, interval: float, final: bool) -> bool:
        now = time.monotonic()
        last = self._last.get((kind, node))
        if not final and last is not None and now - last < interval:
            return True
        self._last[(kind, node)] = now
        return False

    def drops(self, event: ev.Event) -> bool:
        if isinstance(event, ev.NodeProgress):
            return self._skip("progress", event.node, PROGRESS_INTERVAL, event.value >= event.total)
        if isinstance(event, ev.NodePreview) and not event.full:
            return self._skip("preview", event.node, PREVIEW_INTERVAL, False)
        return False


class JobEmitter:
    """The `emit` callback a job's Executor.run gets: turns engine events into
    messages, throttles progress, encodes previews, and tracks live node states."""

    def __init__(self, broker: Broker, job_id: str, output_dir: Any = None, temp_dir: Any = None):
        self.broker = broker
        self.job_id = job_id
        self.output_dir = output_dir
        self.temp_dir = temp_dir
        self.nodes: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()  # the worker writes `nodes`, HTTP threads read it
        self._throttle = Throttle()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: dict(v) for k, v in self.nodes.items()}

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            d = self._message(event)
        if d is not None:
            self.broker.publish(self.job_id, d)

    def _message(self, event: ev.Event) -> dict[str, Any] | None:
        if self._throttle.drops(event):
            return None
        d = event.to_dict()
        if isinstance(event, ev.RunStarted):
            for nid in event.nodes:
                self.nodes.setdefault(nid, {"state": "pending", "device": event.placement.get(nid, "cpu")})
        elif isinstance(event, ev.NodeStarted):
            self.nodes.setdefault(event.node, {})["state"] = "running"
        elif isinstance(event, ev.NodeCached):
            self.nodes.setdefault(event.node, {}).update(state="cached", source=event.source)
        elif isinstance(event, ev.NodeFinished):
            self.nodes.setdefault(event.node, {}).update(state="ran", seconds=event.seconds)
            if self.output_dir is not None:  # clients see names they can download, not server paths
                d["outputs"] = [relative_name(p, self.output_dir, self.temp_dir) for p in event.outputs]
        elif isinstance(event, ev.NodeFailed):
            self.nodes.setdefault(event.node, {}).update(state="failed", error=event.error)
        elif isinstance(event, ev.NodeProgress):
            self.nodes.setdefault(event.node, {})["progress"] = [event.value, event.total]
        elif isinstance(event, ev.NodePreview):
            png = encode_preview(event.image, event.full)
            if png is None:
                return None
            d["image"] = {"format": "png", "base64": png}
        return d
