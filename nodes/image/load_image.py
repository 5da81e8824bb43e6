"""LoadImage: read an image file from the input directory (or download it once)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nodeflow.hashing import file_sha256
from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE
from nodes._shared.image_files import MAX_PIXELS, read_header

# Example images that ship with the package (see examples/SOURCES.md), so the bundled graphs
# run offline with no input directory.
EXAMPLES = Path(__file__).resolve().parent / "examples"


def bundled_example(name: str, sha256: str | None) -> Path | None:
    """The bundled example image called `name`, if there is one and it is the file `sha256` names."""
    if Path(name).name != name:
        return None
    path = EXAMPLES / name
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg") or not path.is_file():
        return None
    if sha256 and file_sha256(path) != sha256.lower():
        return None  # the graph asks for another file of that name: download it
    return path


class LoadImage(Node):
    """Load an image as RGB, honouring EXIF orientation, optionally shrunk to a max side.
    `path` resolves against the input directory: `nodeflow run --input-dir`, $NODEFLOW_INPUT_DIR or ./inputs;
    in the server, where uploads go: `nodeflow serve --input-dir` or DATA_DIR/inputs.
    A name not there may be one of the example images that ship with nodeflow (astronaut.png,
    starry_night.jpg). With `url` and `sha256`, any other missing file is downloaded once into the
    cache and verified."""

    version = "1"
    category = "image/io"

    class Inputs(NodeInputs):
        path: str = Input(description="file name, relative to the input directory", min_length=1, names_file=True)
        max_size: int | None = Input(None, ge=8, le=16384, description="longest side in pixels; keeps the aspect ratio")
        url: str | None = Input(None, description="where to download the file if it is not in the input directory")
        sha256: str | None = Input(None, pattern=r"^[0-9a-fA-F]{64}$", description="checksum the download must match")

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "RGB image, float32 0..1")

    @classmethod
    def locate(cls, inputs: dict[str, Any], settings: Any) -> tuple[Path, bool]:
        """(path, is_local). A missing local file with url + sha256 maps to the download cache."""
        local = settings.input_path(inputs["path"])
        if local.is_file():
            return local, True
        example = bundled_example(inputs["path"], inputs.get("sha256"))
        if example is not None:
            return example, True
        if inputs.get("url"):
            if not inputs.get("sha256"):
                raise InputError("sha256", "a url needs the sha256 of the file, so a download can be verified")
            from nodes._shared.download import downloads_dir

            # Cached under the full checksum (fetch verifies it again on reuse).
            name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(inputs["path"]).name)[:100]
            return downloads_dir() / f"{inputs['sha256'].lower()}-{name}", False
        shown = settings.shown_path(local)
        if local.exists():
            raise InputError("path", f"{shown} is not a file")
        raise InputError(
            "path",
            f"file not found: {shown} (put it in the input directory "
            f"{settings.shown_path(settings.input_dir)}/, or pass --input-dir)",
        )

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        """A local file must be an image: its header is read now (cheap), not at run time."""
        path, local = cls.locate(inputs, settings)
        if local:
            read_header(path, settings.shown_path(path))

    @classmethod
    def downloads(cls, inputs: dict[str, Any], settings: Any) -> list[tuple[str, str]]:
        path, local = cls.locate(inputs, settings)
        return [] if local or path.exists() else [("url", inputs["url"])]

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        path, local = cls.locate(inputs, settings)
        try:
            return file_sha256(path) if local else inputs["sha256"].lower()
        except OSError as exc:
            raise InputError("path", f"cannot read {path}: {exc.strerror}") from None

    def run(self, path: str, max_size: int | None, url: str | None, sha256: str | None) -> dict:
        from PIL import Image, ImageOps, UnidentifiedImageError

        from nodes._shared.pixels import fit_max_side, from_pil

        file, local = self.locate({"path": path, "url": url, "sha256": sha256}, self.ctx.settings)
        if not local:  # downloaded now, or a cached download verified again
            from nodes._shared.download import DownloadError, fetch

            if not file.exists():
                self.ctx.log(f"downloading {url}")
            try:
                fetch(
                    url,
                    file,
                    sha256,
                    progress=lambda d, t: self.ctx.progress(d, t or d),
                    cancel=self.ctx.check_cancelled,
                )
            except DownloadError as exc:
                raise InputError(
                    "url",
                    f"{exc}. Offline? Put {Path(path).name} in "
                    f"{self.ctx.settings.shown_path(self.ctx.settings.input_dir)}/ instead",
                ) from None
        try:
            with Image.open(file) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError(
                        "path",
                        f"{file} is {im.width}x{im.height}: over the "
                        f"{MAX_PIXELS // 1_000_000} megapixel limit (decompression bomb?)",
                    )
                if max_size:
                    im.draft("RGB", (max_size, max_size))  # JPEG: decode at reduced scale
                im = ImageOps.exif_transpose(im)
                rgb = im.convert("RGB")
        except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise InputError("path", f"{file} is not a readable image ({exc})") from None
        except OSError as exc:
            raise InputError("path", f"{file} is corrupt or unreadable ({exc})") from None
        return {"image": fit_max_side(from_pil(rgb), max_size)}
