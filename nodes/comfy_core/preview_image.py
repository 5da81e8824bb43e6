"""PreviewImage: a PNG in the temp folder, for the editor to show."""

from __future__ import annotations

import random
import string
from typing import Any

from nodeflow.cache import atomic_write
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs
from nodeflow.types import IMAGE


class PreviewImage(Node):
    """ComfyUI's PreviewImage: writes the image to the temp folder (`ComfyUI_temp_xxxxx_00001_.png`,
    fast compression), where nothing is kept: the server empties it at start-up and when a job
    is deleted from the history. ComfyUI's history lists it with type `temp`."""

    version = "1"
    category = "image"
    output_node = True

    class Inputs(NodeInputs):
        images: Any = Input(port=IMAGE, description="the image to show")

    class Outputs(NodeOutputs):
        pass

    def run(self, images: Any) -> dict:
        from nodes._shared.comfy_metadata import comfy_chunks
        from nodes.comfy_core._images import numbered_path, png_bytes

        settings = self.ctx.settings
        prefix = "ComfyUI_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))
        path = numbered_path(lambda n: settings.temp_path(n, "images"), prefix, images)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, png_bytes(images, comfy_chunks(self.ctx), compress_level=1))
        self.ctx.wrote(path)
        return {}
