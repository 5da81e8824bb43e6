"""The tutorial's loss terms on TensorFlow: the same formulas as _losses.py (Gram matrices
divided by H*W, per-layer mean squared errors averaged over the layers, TV as summed absolute
differences), on 1 x H x W x 3 images. TensorFlow is imported inside functions only."""

from __future__ import annotations

from typing import Any

from nodes._shared.tf_device import tf_device


def gram(features):
    """1 x H x W x C -> 1 x C x C Gram matrix divided by H*W (the tutorial's gram_matrix)."""
    import tensorflow as tf

    result = tf.linalg.einsum("bijc,bijd->bcd", features, features)
    shape = tf.shape(features)
    return result / tf.cast(shape[1] * shape[2], tf.float32)


def resize_image(x, size: tuple[int, int]):
    """Bilinear, antialiased, clipped to [0, 1] (as _tensors.resize_tensor on torch)."""
    import tensorflow as tf

    if tuple(x.shape[1:3]) == tuple(size):
        return x
    return tf.clip_by_value(tf.image.resize(x, size, method="bilinear", antialias=True), 0.0, 1.0)


def tf_targets(term: Any, size: tuple[int, int], device: str) -> dict:
    """{layer: target} of a style or content term (a _losses.LossTerm bound to a TF extractor)."""
    import tensorflow as tf

    from nodes._shared.pixels import to_rgb

    with tf.device(tf_device(device)):
        x = tf.constant(to_rgb(term.image)[None])
        if term.resize_to_input:
            x = resize_image(x, size)
        feats = term.vgg.features(x, term.layers)
        return {n: gram(f) if term.kind == "style" else tf.identity(f) for n, f in feats.items()}


def term_value(term: Any, feats: dict, image, targets: dict):
    """The weighted term, given the VGG features of the 1 x H x W x 3 image being optimized."""
    import tensorflow as tf

    if term.kind == "tv":
        return term.weight * tf.reduce_sum(tf.image.total_variation(image))
    per_layer = [
        tf.reduce_mean(((gram(feats[n]) if term.kind == "style" else feats[n]) - targets[n]) ** 2) for n in term.layers
    ]
    return term.weight * tf.add_n(per_layer) / len(per_layer)
