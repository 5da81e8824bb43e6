"""ComfyUI's `prompt` and `workflow` PNG chunks of the running graph, for the nodes that save
PNGs (Save, SaveImage, PreviewImage), so that ComfyUI's editor loads the graph from the file."""

from __future__ import annotations

from typing import Any


def comfy_chunks(ctx: Any) -> dict[str, str]:
    """The chunks of `ctx`'s graph (empty if it has none, or if they can't be made)."""
    from nodeflow.comfy.pnginfo import png_chunks

    try:
        return png_chunks(ctx.graph_json)
    except Exception as exc:  # the image matters more than its editor metadata
        ctx.log(f"no ComfyUI metadata in the PNG: {exc}")
        return {}
