"""Save: write an IMAGE as PNG or JPEG into the output directory, atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from nodeflow.cache import atomic_write
from nodeflow.errors import shown
from nodeflow.filenames import NAME_MAX
from nodeflow.graph import PNG_GRAPH_KEY
from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE, STRING

KEY_FIELD = "nodeflow:key"
META_FIELD = "nodeflow:metadata"
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
MAX_NUMBERED = 9999


def _stored_key(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.info.get(KEY_FIELD) or _key_from_comment(im.info.get("comment"))
    except Exception:
        return None


def _key_from_comment(comment: Any) -> str | None:
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", "replace")
    if isinstance(comment, str) and comment.startswith(KEY_FIELD + "="):
        return comment.split("=", 1)[1]
    return None


def _add_text(info: Any, key: str, text: str) -> None:
    """Compressed zTXt when the text is Latin-1, else plain iTXt: the web editor's PNG reader
    hangs on compressed iTXt (so a dropped PNG would never load), and skips zTXt."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        info.add_itxt(key, text, zip=False)
        return
    info.add_text(key, str.__str__(text), zip=True)  # a plain str: Pillow writes its iTXt strings as iTXt


def _target(filename: str, settings: Any) -> tuple[Path, str]:
    """The path in the output directory and the image format, or InputError."""
    target = settings.output_path(filename, "filename")
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InputError("filename", f"{shown(filename)}: use a .png, .jpg or .jpeg name")
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise InputError(
            "filename", f"{shown(filename)}: control characters (such as a line break) are not allowed in file names"
        )
    # Room for the numbered name (name_0001.png) used when the name is taken.
    if len(target.name.encode("utf-8", "surrogateescape")) + len(f"_{MAX_NUMBERED}") > NAME_MAX:
        raise InputError(
            "filename", f"{shown(filename)}: the name is too long (at most {NAME_MAX - len(f'_{MAX_NUMBERED}')} bytes)"
        )
    return target, fmt


class Save(Node):
    """Write an image to the output directory. Never overwrites silently: if the name is
    taken by a different image, the next free numbered name (name_0001.png, ...) is used,
    unless `overwrite` is set. A file that already holds this exact result is left alone.
    PNGs carry the graph, so `nodeflow run that.png` re-runs it, and ComfyUI's `prompt` and
    `workflow` chunks, so dropping one on the web editor opens its graph."""

    version = "1"
    category = "image/io"
    output_node = True

    class Inputs(NodeInputs):
        image: Any = Input(port=IMAGE, description="image to save")
        filename: str = Input(
            "nodeflow.png",
            min_length=1,
            names_file=True,
            description="name in the output directory; .png, .jpg or .jpeg",
        )
        overwrite: bool = Input(False, description="replace an existing file of the same name")
        quality: int = Input(95, ge=1, le=100, description="JPEG quality")
        metadata: str | None = Input(
            None, port=STRING, description="text stored in the file (e.g. which weights made it)"
        )

    class Outputs(NodeOutputs):
        path: Any = Output(STRING, "the file written")

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        # Before anything runs: a bad extension, or a path escaping the output directory
        # (HTTP server), is a validation error, not a failure after a long computation.
        if isinstance(inputs.get("filename"), str):
            _target(inputs["filename"], settings)

    def run(self, image: Any, filename: str, overwrite: bool, quality: int, metadata: str | None) -> dict:
        target, fmt = _target(filename, self.ctx.settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        path = self._choose_path(target, overwrite)
        if path is None:
            return {"path": str(self.ctx.outputs_written[-1])}
        atomic_write(path, self._encode(image, fmt, quality, metadata))
        self.ctx.wrote(path)
        return {"path": str(path)}

    def _choose_path(self, target: Path, overwrite: bool) -> Path | None:
        """Where to write, or None if a file already holds this exact result."""
        for i in range(MAX_NUMBERED + 1):
            cand = target if i == 0 else target.with_name(f"{target.stem}_{i:04d}{target.suffix}")
            if not cand.exists():
                return cand
            if _stored_key(cand) == self.ctx.key:
                self.ctx.mark_up_to_date(cand)
                return None
            if overwrite:
                return cand
        raise InputError(
            "filename",
            f"{MAX_NUMBERED} numbered files named like {target.name} exist; pick another name or set overwrite",
        )

    def _encode(self, image: Any, fmt: str, quality: int, metadata: str | None) -> bytes:
        from nodes._shared.comfy_metadata import comfy_chunks
        from nodes._shared.pixels import to_pil

        im = to_pil(image)
        buf = io.BytesIO()
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_text(KEY_FIELD, self.ctx.key)
            _add_text(info, PNG_GRAPH_KEY, self.ctx.graph_json)
            for key, text in comfy_chunks(self.ctx).items():
                info.add_text(key, text)
            if metadata:
                _add_text(info, META_FIELD, metadata)
            for key, text in self.ctx.settings.output_metadata.items():  # e.g. a sweep's values
                _add_text(info, key, text)
            im.save(buf, "PNG", pnginfo=info)
        else:
            im.convert("RGB").save(buf, "JPEG", quality=quality, comment=f"{KEY_FIELD}={self.ctx.key}")
        return buf.getvalue()
