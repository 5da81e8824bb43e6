"""The tfhub route: TF Hub's `arbitrary-image-stylization-v1-256/2`, called as
`module(content, style)[0]`, with its download cache and clear offline errors.
TensorFlow is imported only when this route runs; loaded modules are cached per handle
and device, never in the value cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from nodeflow.errors import shown
from nodeflow.node import InputError
from nodes._shared.tf_device import tf_device

from ._style import pad_to_multiple

DEFAULT_TFHUB_HANDLE = "https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2"
DEFAULT_TFHUB_MAX_BYTES = 300 << 20
UNPACKED_MAX_BYTES = 2 << 30


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
    return (
        f"cannot download the TF Hub model {handle} ({why}), and there is no cached copy in "
        f"{target}. On a machine with internet, download {handle}?tf-hub-format=compressed "
        f"(a .tar.gz SavedModel) and unpack it into {target} (the cache dir is $TFHUB_CACHE_DIR), "
        "or unpack it anywhere and set `handle` to that directory. "
        "Or use model_source 'onnx', which needs no download."
    )


def tfhub_local_path(handle: str, settings: Any, input: str = "handle") -> Path | None:
    """The local SavedModel directory for `handle`, or None for a URL not cached yet.
    A local handle is as given in the CLI, and confined to the inputs in the server.
    Raises InputError for a local path that is not a SavedModel."""
    if is_url(handle):
        cached = tfhub_cached_path(handle)
        return cached if _is_saved_model(cached) else None
    path = settings.local_path(handle, input)
    if not path.is_dir():
        raise InputError(input, f"{shown(handle)} is neither a TF Hub URL nor an existing directory")
    if not _is_saved_model(path):
        raise InputError(
            input, f"{settings.shown_path(path)} holds no saved_model.pb: it is not a SavedModel directory"
        )
    return path


def download_tfhub(handle: str, cancel=None, progress=None) -> Path:
    """Fetch `handle`'s compressed SavedModel into its cache folder, as tensorflow_hub would,
    but through the guarded downloader (http(s) on every hop, public hosts only, size cap,
    deadline, cancellation), and unpack it with tarfile's 'data' filter (no links out, no
    absolute names)."""
    import tarfile

    from nodes._shared.download import DownloadError, fetch

    target = tfhub_cached_path(handle)
    url = handle + ("&" if "?" in handle else "?") + "tf-hub-format=compressed"
    archive = target.with_name(target.name + ".tar.gz")
    # The default model is about 90 MB; a handle a client chose gets the default cap.
    cap = DEFAULT_TFHUB_MAX_BYTES if handle == DEFAULT_TFHUB_HANDLE else None
    try:
        fetch(url, archive, None, progress, cancel=cancel, max_bytes=cap)
    except DownloadError as exc:
        raise InputError("handle", _offline_message(handle, str(exc))) from None
    unpacking = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if sum(m.size for m in members) > UNPACKED_MAX_BYTES:
                raise InputError("handle", f"{handle}: the archive unpacks to over {UNPACKED_MAX_BYTES >> 20} MB")
            tar.extractall(unpacking, filter="data")
        if not _is_saved_model(unpacking):
            raise InputError("handle", f"{handle} is not a TF Hub SavedModel (no saved_model.pb inside)")
        os.replace(unpacking, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(
            "handle", f"{handle}: the download is not a readable SavedModel archive ({exc.__class__.__name__})"
        ) from None
    finally:
        archive.unlink(missing_ok=True)
        if unpacking.exists():
            import shutil

            shutil.rmtree(unpacking, ignore_errors=True)
    return target


_tf_models: dict[tuple[str, str], Any] = {}

_tf_lock = threading.Lock()


def load_tfhub(handle: str, device: str, settings: Any, log=lambda msg: None, cancel=None, progress=None):
    """The loaded TF Hub module (cached per handle and device)."""
    local = tfhub_local_path(handle, settings)
    if local is None:
        log(f"downloading {handle} into {tfhub_cache_dir()}")
        local = download_tfhub(handle, cancel, progress)
    key = (str(local), device)
    with _tf_lock:
        if key in _tf_models:
            return _tf_models[key]
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if cancel:
            cancel()  # between the download and the load
        try:
            import tensorflow as tf
            import tensorflow_hub as hub
        except ImportError as exc:
            raise InputError(
                "model_source",
                f"the tfhub route needs TensorFlow ({exc}): pip install 'nodeflow[tfhub]', or use model_source 'onnx'",
            ) from None
        try:
            with tf.device(tf_device(device)):
                module = hub.load(str(local))
        except Exception as exc:  # a broken SavedModel
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
