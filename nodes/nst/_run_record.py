"""What an optimizer run keeps track of across its stages, whichever loop drives it: the hooks
to its node (progress, previews, cancellation, early stops), the loss history, the steps done,
the best image so far and the time limit. No framework is imported here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The runs' one clock: the history's seconds and the time limit read it (tests put a fake here).
clock: Callable[[], float] = time.perf_counter


@dataclass
class Hooks:
    """How an optimizer talks to its node: progress, previews, cancellation."""

    step: Callable[[int, int], None] = lambda i, n: None
    preview: Callable[[Any, int], None] = lambda image, i: None
    cancelled: Callable[[], None] = lambda: None
    preview_every: int = 0
    # Stop early (the benchmark; time limits): called with each step's objective and image size.
    stop: Callable[[float, tuple], bool] = lambda total, size: False
    # Every evaluation as it happens: objective, its terms, image size (the benchmark logs them).
    evaluated: Callable[[float, dict, tuple], None] = lambda total, parts, size: None
    # Where the run saves its state now and then, and resumes from (the server's jobs); None: nowhere.
    checkpoint: Checkpointing | None = None


@dataclass
class Checkpointing:
    """A run's checkpoint: `load` the last one (None: start afresh), `save` a new one at most
    every `interval` seconds of the run (0: after every step)."""

    load: Callable[[], bytes | None]
    save: Callable[[bytes], None]
    interval: float
    last: float = field(default_factory=lambda: clock())
    saves: int = 0
    resumed: int | None = None  # the steps a resumed run found done

    def due(self) -> bool:
        return clock() - self.last >= self.interval

    def write(self, data: bytes) -> None:
        self.save(data)
        self.saves += 1
        self.last = clock()


@dataclass
class History:
    total: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    size: list[list[int]] = field(default_factory=list)
    started: float = field(default_factory=lambda: clock())

    def add(self, total: float, parts: dict[str, float], size) -> None:
        self.total.append(total)
        for k, v in parts.items():
            self.terms.setdefault(k, []).append(v)
        self.seconds.append(round(clock() - self.started, 4))
        self.size.append([int(size[0]), int(size[1])])

    def result_total(self) -> float | None:
        """The result's objective: the lowest evaluated at the final size (the Adam routes return
        that image; L-BFGS's accepted steps only go down)."""
        return result_total(self.as_dict())

    def as_dict(self) -> dict:
        return {"total": self.total, "terms": self.terms, "seconds": self.seconds, "size": self.size}


def result_total(history: dict) -> float | None:
    """History.result_total for a history as the node outputs it."""
    last = history["size"][-1] if history["size"] else None
    return min((v for v, size in zip(history["total"], history["size"], strict=False) if size == last), default=None)


@dataclass
class TimeLimit:
    """A stop hook: true from the first evaluation more than `seconds` after it was made
    (0: never); `reached` says whether it stopped the run."""

    seconds: float
    started: float = field(default_factory=lambda: clock())
    reached: bool = False

    def __call__(self, total: float, size: tuple) -> bool:
        self.reached = self.reached or bool(self.seconds) and clock() - self.started > self.seconds
        return self.reached


@dataclass
class RunRecord:
    """What an optimizer run carries across its stages: hooks, history, steps done."""

    hooks: Hooks
    total_steps: int
    history: History = field(default_factory=History)
    done: int = 0
    # The lowest-objective image evaluated at the current stage's size: the run's result.
    best: Any = None
    best_total: float = math.inf

    def record(self, total: float, parts: dict[str, float], size) -> bool:
        """Log one evaluation; False when the stop hook says the run is over."""
        self.history.add(total, parts, size)
        self.hooks.evaluated(total, parts, size)
        return not self.hooks.stop(total, size)

    def keep_if_best(self, total: float, image, copy: Callable[[Any], Any]) -> None:
        if total < self.best_total:
            self.best_total, self.best = total, copy(image)

    def score_last(self, parts: dict[str, float], size, image, copy: Callable[[Any], Any]) -> Any:
        """Log the last step's image, unseen by the stop and evaluation hooks, so the history ends
        with it; return the run's result."""
        total = sum(parts.values())
        self.history.add(total, parts, size)
        self.keep_if_best(total, image, copy)
        return self.best

    def new_stage(self) -> None:
        self.best, self.best_total = None, math.inf

    def state(self) -> dict:
        """What a checkpoint keeps of the run (plain values; the best image apart)."""
        h = self.history
        return {
            "history": {"total": h.total, "terms": h.terms, "seconds": h.seconds, "size": h.size},
            "done": self.done,
            "best_total": self.best_total,
        }

    def restore(self, state: dict, best: Any) -> None:
        """Carry on from a checkpoint's state(): the history's clock goes on from its last second."""
        h = state["history"]
        self.history = History(
            list(h["total"]), {k: list(v) for k, v in h["terms"].items()}, list(h["seconds"]), list(h["size"])
        )
        self.history.started = clock() - (h["seconds"][-1] if h["seconds"] else 0.0)
        self.done = int(state["done"])
        self.best_total = float(state["best_total"])
        self.best = best

    def checkpoint_due(self) -> bool:
        c = self.hooks.checkpoint
        return c is not None and c.due()

    def stepped(self, image) -> None:
        self.done += 1
        self.hooks.step(self.done, self.total_steps)
        if self.hooks.preview_every and self.done % self.hooks.preview_every == 0:
            self.hooks.preview(image, self.done)
