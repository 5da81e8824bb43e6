"""The VGG network on TensorFlow: Keras's own VGG19 and VGG16 conv stacks (include_top=False),
and the VGG port's value for them.

  vgg19: keras.applications.VGG19's ImageNet weights file, downloaded once into the Keras
         cache ($KERAS_HOME/models, default ~/.keras/models) and checked against the md5 sum
         Keras publishes for it (Keras gives no sha256).
  vgg16: the same offline weights the torch route uses (_vgg_weights.vgg16_weights, as numpy),
         set into keras.applications.VGG16's conv layers.
Both take Keras's caffe preprocessing. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodes._shared.tf_device import tf_device

from ._vgg_net import VGG, Source
from ._vgg_weights import WeightsUnavailable, file_digest, vgg16_weights

KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"

KERAS_VGG19_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_VGG19_FILE

# keras.applications.vgg19's file_hash for the notop weights.
KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"

# Keras's VGG weights take caffe preprocessing (BGR 0..255 minus the ImageNet mean), both.
TF_SOURCES = {"vgg19": Source("vgg19", "vgg19", "caffe"), "vgg16": Source("vgg16", "vgg16", "caffe")}


def keras_models_dir() -> Path:
    """Keras's download cache (its own rule, without importing Keras): $KERAS_HOME/models,
    else ~/.keras/models, else /tmp/.keras/models when the home directory is read-only."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home) / "models"


def keras_vgg19_url() -> str:
    """Keras's URL, or a mirror named by $NODEFLOW_KERAS_VGG19_URL (same file and checksum)."""
    return os.environ.get("NODEFLOW_KERAS_VGG19_URL") or KERAS_VGG19_URL


def keras_vgg19_file(
    path: str | None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    cancel: Callable[[], None] = lambda: None,
) -> Path:
    """The Keras VGG19 notop weights file: `path` if given, else the Keras cache's copy,
    downloaded there first if missing. The cached file is checked on every load."""
    md5 = KERAS_VGG19_MD5
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"vgg19 weights file not found: {p}")
        return p
    url = keras_vgg19_url()
    dest = keras_models_dir() / KERAS_VGG19_FILE
    if not dest.exists():
        from nodes._shared.download import DownloadError, fetch

        if log:
            log(f"downloading the Keras VGG19 weights from {url} into {dest.parent}")
        try:
            fetch(url, dest, md5, progress=progress, cancel=cancel, algorithm="md5")
        except DownloadError as exc:
            raise WeightsUnavailable(
                f"{exc}. Download {url} yourself and put it at {dest} "
                f"(or set the VGGFeatures `weights` input to its path)"
            ) from None
        return dest
    got = file_digest(dest, "md5")
    if got != md5:
        raise WeightsUnavailable(
            f"{dest} has md5 {got}, expected {md5}: delete the file and it will be downloaded again"
        )
    return dest


def build_keras_vgg(
    name: str,
    path: str | None,
    device: str,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    cancel: Callable[[], None] = lambda: None,
) -> tuple[Any, str]:
    """(frozen Keras conv stack, weights description), its variables on `device`.
    cancel() is called between getting the weights and building the model."""
    import tensorflow as tf

    with tf.device(tf_device(device)):
        if name == "vgg19":
            weights = keras_vgg19_file(path, progress, log, cancel)
            cancel()
            model = tf.keras.applications.VGG19(include_top=False, weights=None)
            try:
                model.load_weights(str(weights))
            except Exception as exc:  # a truncated or foreign .h5
                raise WeightsUnavailable(
                    f"{weights} is not a Keras VGG19 notop weights file ({exc.__class__.__name__}: {exc})"
                ) from None
            where = str(weights)
        else:
            state, where = vgg16_weights(path, log=log, as_numpy=True, cancel=cancel)
            cancel()
            model = tf.keras.applications.VGG16(include_top=False, weights=None)
            for layer in model.layers:
                if layer.name + ".weight" in state:
                    kernel = state[layer.name + ".weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
                    layer.set_weights([kernel, state[layer.name + ".bias"]])
    model.trainable = False
    return model, where


class TFVGG(VGG):
    """The value of a VGG port on TensorFlow: a frozen Keras VGG (`module`) plus where its
    weights came from."""

    framework = "tensorflow"

    def __init__(self, source: Source, module: Any, weights: str, device: str, info: str):
        super().__init__(source, module, weights, device, info)
        self._extractors: dict[tuple[str, ...], Any] = {}

    def extractor(self, layers) -> tuple[tuple[str, ...], Any]:
        """(layer names, a Keras model from the image to those layers' outputs), as in the
        tutorial's vgg_layers(); it runs only as deep as the deepest of them."""
        import tensorflow as tf

        names = tuple(sorted(set(layers)))
        if names not in self._extractors:
            outputs = [self.module.get_layer(n).output for n in names]
            self._extractors[names] = tf.keras.Model([self.module.input], outputs)
        return names, self._extractors[names]

    def features(self, image, layers) -> dict:
        """1 x H x W x 3 RGB in 0..1 -> {layer: 1 x h x w x C features}."""
        import tensorflow as tf

        names, model = self.extractor(layers)
        outs = model(tf.keras.applications.vgg16.preprocess_input(image * 255.0))
        return dict(zip(names, outs if isinstance(outs, (list, tuple)) else [outs], strict=False))

    def to(self, device: str) -> TFVGG:
        # TF places each op by the tf.device scope it runs under; the model stays as it is.
        return self
