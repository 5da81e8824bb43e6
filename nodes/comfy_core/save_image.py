"""SaveImage: ComfyUI's counter-named PNGs in the output folder."""

from __future__ import annotations

from typing import Any

from nodeflow.cache import atomic_write
from nodeflow.node import Input, Node, NodeInputs, NodeOutputs
from nodeflow.types import IMAGE


class SaveImage(Node):
    """ComfyUI's SaveImage: writes the image as `<prefix>_00001_.png` in the job's output
    folder, the counter one past the highest already there. The prefix may name a subfolder
    ("portraits/cat") and use %width%, %height%, %year%, %month%, %day%, %hour%, %minute%,
    %second%. The PNG carries ComfyUI's `prompt` and `workflow` chunks; ComfyUI's history lists
    it with type `output`."""

    version = "1"
    category = "image"
    output_node = True

    class Inputs(NodeInputs):
        images: Any = Input(port=IMAGE, description="the image to save")
        filename_prefix: str = Input("ComfyUI", min_length=1, names_file=True, description="the file name's start")

    class Outputs(NodeOutputs):
        pass

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        prefix = inputs.get("filename_prefix")
        if isinstance(prefix, str):
            settings.output_path(f"{prefix}_00001_.png", "filename_prefix")

    def run(self, images: Any, filename_prefix: str) -> dict:
        from nodes._shared.comfy_metadata import comfy_chunks
        from nodes.comfy_core._images import numbered_path, png_bytes

        settings = self.ctx.settings
        path = numbered_path(lambda n: settings.output_path(n, "filename_prefix"), filename_prefix, images)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, png_bytes(images, comfy_chunks(self.ctx), compress_level=4))
        self.ctx.wrote(path)
        return {}
