"""SaveImageWebsocket: the image, full size, over the WebSocket of the client that queued it."""

from __future__ import annotations

from typing import Any

from nodeflow.node import Input, Node, NodeInputs, NodeOutputs
from nodeflow.types import IMAGE


class SaveImageWebsocket(Node):
    """ComfyUI's SaveImageWebsocket: sends the image as a PNG to the client that queued the
    prompt, as a binary WebSocket frame (event type 1, then image format 2 = PNG, then the
    file), right after the `executing` message naming this node. Nothing is written to disk;
    a run without such a client (the CLI) sends it nowhere."""

    version = "1"
    category = "api/image"
    output_node = True

    class Inputs(NodeInputs):
        images: Any = Input(port=IMAGE, description="the image to send")

    class Outputs(NodeOutputs):
        pass

    def run(self, images: Any) -> dict:
        self.ctx.progress(0, 1)
        self.ctx.deliver(images)
        self.ctx.progress(1, 1)
        return {}
