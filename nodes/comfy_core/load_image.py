"""LoadImage as ComfyUI declares it: an image of the input folder, giving IMAGE then MASK."""

from __future__ import annotations

from typing import Any

from nodeflow.hashing import file_sha256
from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE, MASK
from nodes._shared.image_files import MAX_PIXELS, read_header

INPUT_MARK = " [input]"  # ComfyUI's annotation of a name in the input folder


def _name(image: str) -> str:
    return image[: -len(INPUT_MARK)] if image.endswith(INPUT_MARK) else image


class ComfyLoadImage(Node):
    """ComfyUI's LoadImage: `image` names a file in the input folder (the editor's upload
    button puts files there). Gives the image as RGB, EXIF orientation applied, and its mask:
    1 - alpha where the file has transparency, else a 64 x 64 mask of zeros, as ComfyUI does.
    The ComfyUI layer (/object_info, /prompt) names this node LoadImage; nodeflow's own
    graphs use nodeflow's LoadImage (input `path`)."""

    version = "1"
    category = "image"

    class Inputs(NodeInputs):
        image: str = Input(description="file name in the input folder", min_length=1, names_file=True)

    class Outputs(NodeOutputs):
        IMAGE: Any = Output(IMAGE, "RGB image, float32 0..1")
        MASK: Any = Output(MASK, "1 - alpha (zeros, 64 x 64, for an image without transparency)")

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        """The file must be an image: its header is read now (cheap), not at run time."""
        if isinstance(inputs.get("image"), str):
            path = cls._file(inputs["image"], settings)
            read_header(path, settings.shown_path(path), "image")

    @classmethod
    def _file(cls, image: str, settings: Any) -> Any:
        path = settings.input_path(_name(image), "image")
        if not path.is_file():
            raise InputError("image", f"Invalid image file: {image} (no such file in the input folder)")
        return path

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        path = cls._file(inputs["image"], settings)
        try:
            return file_sha256(path)
        except OSError as exc:
            raise InputError("image", f"cannot read {settings.shown_path(path)}: {exc.strerror}") from None

    def run(self, image: str) -> dict:
        import numpy as np
        from PIL import Image, ImageOps, UnidentifiedImageError

        from nodes._shared.pixels import from_pil

        path = self._file(image, self.ctx.settings)
        shown = self.ctx.settings.shown_path(path)
        try:
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError("image", f"{shown} is {im.width}x{im.height}: over the pixel limit")
                frame = ImageOps.exif_transpose(im)
                if frame.mode == "I":
                    frame = frame.point(lambda v: v * (1 / 255))
                rgb = frame.convert("RGB")
                if "A" in frame.getbands():
                    alpha = frame.getchannel("A")
                elif frame.mode == "P" and "transparency" in frame.info:
                    alpha = frame.convert("RGBA").getchannel("A")
                else:
                    alpha = None
                mask = (
                    1.0 - np.asarray(alpha, dtype=np.float32) / 255.0
                    if alpha is not None
                    else np.zeros((64, 64), dtype=np.float32)
                )
        except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise InputError("image", f"{shown} is not a readable image ({exc})") from None
        except OSError as exc:
            raise InputError("image", f"{shown} is corrupt or unreadable ({exc})") from None
        return {"IMAGE": from_pil(rgb), "MASK": np.ascontiguousarray(mask)}
