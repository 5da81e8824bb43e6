"""Small nodes for engine tests. Importing this module registers them (in the
test process only; the CLI subprocess never sees them)."""
from __future__ import annotations

import random
import time
from typing import Any, Literal

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import FLOAT, INT, STRING

CALLS: dict[str, int] = {}


def count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


class TNumber(Node):
    """A constant."""
    class Inputs(NodeInputs):
        value: float = Input(1.0, ge=-1000, le=1000)
        label: Literal["a", "b"] = Input("a")

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float, label: str) -> dict:
        count("TNumber")
        return {"value": value}


class TAdd(Node):
    """a + b."""
    class Inputs(NodeInputs):
        a: float = Input()
        b: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, a: float, b: float) -> dict:
        count("TAdd")
        return {"value": a + b}


class TRandom(Node):
    """Not deterministic unless seeded."""
    deterministic = False
    seed_input = "seed"

    class Inputs(NodeInputs):
        seed: int | None = Input(None)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, seed: int | None) -> dict:
        count("TRandom")
        return {"value": random.Random(seed).random()}


class TText(Node):
    """Formats a number as text."""
    class Inputs(NodeInputs):
        value: float = Input()

    class Outputs(NodeOutputs):
        text: Any = Output(STRING)

    def run(self, value: float) -> dict:
        return {"text": f"{value:g}"}


class TSink(Node):
    """An output node that records what it received."""
    output_node = True
    received: list = []

    class Inputs(NodeInputs):
        value: float = Input()

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        count("TSink")
        TSink.received.append(value)
        return {"value": value}


class TSlow(Node):
    """Sleeps in small steps, reporting progress and checking cancellation."""
    class Inputs(NodeInputs):
        steps: int = Input(10, ge=1)
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, steps: int, value: float) -> dict:
        for i in range(steps):
            self.ctx.check_cancelled()
            time.sleep(0.01)
            self.ctx.progress(i + 1, steps)
        return {"value": value}


class TFails(Node):
    """Always raises."""
    class Inputs(NodeInputs):
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        raise ValueError("boom")


class TGpu(Node):
    """Pretends to need torch; used to test placement with faked devices."""
    frameworks = ("torch",)
    devices = ("cuda", "mps", "cpu")

    class Inputs(NodeInputs):
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        return {"value": value}


class TCount(Node):
    """INT output, for type-mismatch tests."""
    class Inputs(NodeInputs):
        n: int = Input(3)

    class Outputs(NodeOutputs):
        n: Any = Output(INT)

    def run(self, n: int) -> dict:
        return {"n": n}
