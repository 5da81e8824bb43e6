"""Small nodes for engine tests. Importing this module registers them (in the
test process only; the CLI subprocess never sees them)."""

from __future__ import annotations

import random
import time
from typing import Any, Literal

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
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


class TCtx(Node):
    """Records what its context tells it."""

    seen: list = []

    class Inputs(NodeInputs):
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        c = self.ctx
        TCtx.seen.append(
            {
                "node": c.node_id,
                "type": c.node_type,
                "device": c.device,
                "key": c.key,
                "settings": c.settings,
                "graph_json": c.graph_json,
            }
        )
        return {"value": value}


class TPartial(Node):
    """Forgets to return its outputs."""

    class Inputs(NodeInputs):
        value: float = Input(0.0)

    class Outputs(NodeOutputs):
        b: Any = Output(FLOAT)
        a: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        return {}


class TRejects(Node):
    """Finds its input bad only when it runs."""

    class Inputs(NodeInputs):
        value: float = Input(1.0)

    class Outputs(NodeOutputs):
        value: Any = Output(FLOAT)

    def run(self, value: float) -> dict:
        raise InputError("value", "must be even")


class TFile(Node):
    """An output node that writes a text file, or finds it already written."""

    output_node = True

    class Inputs(NodeInputs):
        value: float = Input()
        name: str = Input("value.txt")

    class Outputs(NodeOutputs):
        pass

    def run(self, value: float, name: str) -> dict:
        path = self.ctx.settings.output_path(name)
        if path.is_file() and path.read_text() == f"{value:g}":
            self.ctx.mark_up_to_date(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{value:g}")
            self.ctx.wrote(path)
        return {}
