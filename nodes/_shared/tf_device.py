"""TensorFlow glue shared by TF nodes: the device probe and the engine-device -> TF-device
name. TensorFlow itself is imported only when a probe or a placement actually runs."""

from __future__ import annotations

import os

from nodeflow.devices import base, register_framework

# Before TensorFlow loads: keep its C++ start-up chatter out of the run log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _probe() -> set[str]:
    try:
        import tensorflow as tf
    except ImportError:  # reported by the node that asks for TensorFlow (VGGFeatures.check)
        return {"cpu"}
    gpus = tf.config.list_physical_devices("GPU")
    return {"cpu"} | ({"cuda"} | {f"cuda:{i}" for i in range(len(gpus))} if gpus else set())


register_framework("tensorflow", _probe)


def tf_device(device: str) -> str:
    """TF's name for the engine device; CPU when TF sees no such GPU."""
    import tensorflow as tf

    if base(device) == "cuda":
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if len(tf.config.list_physical_devices("GPU")) > index:
            return f"/GPU:{index}"
    return "/CPU:0"
