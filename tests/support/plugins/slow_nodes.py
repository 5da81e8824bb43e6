"""Slow (and deadly) nodes for the server tests, loaded by the test server process through
$NODEFLOW_PLUGINS (the operator's way to add local node modules). Not part of
the built-in library."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE, STRING

GATE_TIMEOUT = 120.0  # seconds: a test that never opens its gate fails, it does not hang


class SlowInvert(Node):
    """Invert an image slowly: `steps` steps of `delay` seconds, with progress, a preview
    each step, and a cancellation check each step and while waiting; if `gate` is named,
    first wait until that file exists (after `gate_after` steps, if given). Tests hold a
    job running, for as long as they need, by not creating its gate yet."""

    version = "1"
    category = "test"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to invert")
        steps: int = Input(10, ge=1, le=10000)
        delay: float = Input(0.1, ge=0, le=10)
        gate: str = Input("", description="wait until this file exists (absolute path; test use only)")
        log_every: int = Input(0, ge=0, description="a log line every this many steps (0: none)")
        gate_after: int = Input(0, ge=0, description="wait for `gate` after this many steps (0: before the first)")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "inverted image")

    def run(self, image: Any, steps: int, delay: float, gate: str, log_every: int, gate_after: int) -> dict:
        for i in range(steps):
            if gate and i == gate_after:
                self._wait_for(gate)
            self.ctx.check_cancelled()
            time.sleep(delay)
            self.ctx.progress(i + 1, steps)
            self.ctx.preview(image)
            if log_every and (i + 1) % log_every == 0:
                self.ctx.log(f"step {i + 1} of {steps}")
        return {"image": np.ascontiguousarray(1.0 - image, dtype=np.float32)}

    def _wait_for(self, gate: str) -> None:
        self.ctx.log(f"waiting for {os.path.basename(gate)}")
        deadline = time.monotonic() + GATE_TIMEOUT
        while not os.path.exists(gate):
            self.ctx.check_cancelled()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{gate} did not appear in {GATE_TIMEOUT:.0f} s")
            time.sleep(0.01)


class GatedLoad(Node):
    """Load a 'model' that blocks until the file `gate` exists and ignores cancels meanwhile,
    as torch.load or from_pretrained do, through the helper the real loaders use."""

    version = "1"
    category = "test"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="passed through once the model is loaded")
        gate: str = Input(description="the load blocks until this file exists (absolute path)")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "the image")

    def run(self, image: Any, gate: str) -> dict:
        from nodes._shared.interruptible import interruptible

        def load() -> None:
            deadline = time.monotonic() + GATE_TIMEOUT
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)

        interruptible(load, self.ctx.check_cancelled)
        return {"image": image}


class KillProcess(Node):
    """Kill the process that runs it (kill -9 of itself): a job that keeps killing its
    Ray workers. Never use it with local worker threads: it would kill the server."""

    version = "1"
    category = "test"

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="passed through, were it to survive")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "never produced")

    def run(self, image: Any) -> dict:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
        return {"image": image}


class DownloadPlaces(Node):
    """Write where this process's downloads would go, as the real download helpers compute
    them, and its download policy, to a JSON file in the outputs."""

    version = "1"
    category = "test"
    output_node = True

    class Inputs(NodeInputs):
        filename: str = Input("places.json")

    class Outputs(NodeOutputs):
        path: Any = Output(STRING, "the file written")

    def run(self, filename: str) -> dict:
        import json

        from nodeflow.cache import atomic_write
        from nodes._shared.download import downloads_dir
        from nodes.hub._tfhub import tfhub_cache_dir
        from nodes.nst._tf_vgg import keras_models_dir
        from nodes.nst._vgg_weights import torch_hub_checkpoints, weights_dir
        from nodes.sd._source import hf_cache_dir, hf_offline

        places = {
            "files": downloads_dir(),
            "torch": torch_hub_checkpoints(),
            "keras": keras_models_dir(),
            "tfhub": tfhub_cache_dir(),
            "huggingface": hf_cache_dir(),
            "weights": weights_dir(),
        }
        report = {name: str(path) for name, path in places.items()}
        report.update(offline=os.environ.get("NODEFLOW_OFFLINE") == "1", hf_offline=hf_offline())
        path = self.ctx.settings.output_path(filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(report).encode())
        self.ctx.wrote(path)
        return {"path": str(path)}
