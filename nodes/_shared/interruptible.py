"""Model loads that a cancel can't reach inside (torch.load, from_pretrained, hub.load run
for seconds or minutes in C code, with no callback): run on a thread of their own, so
that the job waiting for them ends as cancelled at once.

The load itself can't be stopped in the middle. It goes on in the background until its
next check between phases (the loaders take `cancel` and call it between download,
reading and placing), or to its end, where the model cache it fills serves the next
job. The worker thread is free for the next job meanwhile; the server stays up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.05


def interruptible(work: Callable[[], T], cancel: Callable[[], None], name: str = "nodeflow-load") -> T:
    """work()'s result, or its exception; raises what cancel() raises (Cancelled) as soon
    as the job is cancelled, leaving work() to finish on its own thread."""
    done = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread, or dropped if it left
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    while not done.wait(POLL_SECONDS):
        cancel()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def silenced(report: Callable[..., None], token: Any) -> Callable[..., None]:
    """`report` (a progress or log callback), silent once `token` (the job's CancelToken) is
    cancelled: a load left running in the background must not report into a job that has ended."""
    return lambda *args: None if token.cancelled else report(*args)


def acquire(lock: threading.Lock, cancel: Callable[[], None]) -> None:
    """Take `lock`, checking for a cancel while another job holds it."""
    while not lock.acquire(timeout=POLL_SECONDS):
        cancel()
