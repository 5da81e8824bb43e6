"""Where Stable Diffusion weights come from: the node's `model` and `config` inputs
resolved to a Hugging Face repo id, a local diffusers folder or a single-file checkpoint
(`.safetensors`, as ComfyUI keeps them in models/), and a cheap fingerprint of them for
cache keys. Relative paths resolve against the input directory, like LoadImage's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeflow.node import InputError

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"

SINGLE_FILE_SUFFIX = ".safetensors"

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+", re.ASCII)  # matched whole


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "repo", "folder" or "single_file"
    ref: str  # repo id, or an absolute path

    def describe(self) -> str:
        return {"repo": "Hugging Face repo", "folder": "diffusers folder", "single_file": "checkpoint"}[
            self.kind
        ] + f" {self.ref}"


def resolve_source(model: str, settings: Any) -> ModelSource:
    """Decide what `model` names: an existing local path wins over a repo id."""
    text = model.strip()
    if not text:
        raise InputError("model", "empty: give a Hugging Face repo id, a diffusers folder or a .safetensors file")
    path = settings.input_path(text, "model")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InputError("model", f"{path} is a folder but not a diffusers pipeline (no model_index.json)")
        return ModelSource("folder", str(path.resolve()))
    if path.is_file():
        if path.suffix.lower() != SINGLE_FILE_SUFFIX:
            raise InputError(
                "model",
                f"{path}: only {SINGLE_FILE_SUFFIX} checkpoints are loaded (.ckpt files are pickles that can run code)",
            )
        return ModelSource("single_file", str(path.resolve()))
    looks_like_path = (
        text.lower().endswith((SINGLE_FILE_SUFFIX, ".ckpt")) or text.startswith(("/", ".", "~")) or text.count("/") != 1
    )
    if looks_like_path or not REPO_ID.fullmatch(text):
        raise InputError(
            "model",
            f"not found: {path} (give a Hugging Face repo id such as {DEFAULT_MODEL}, "
            "a diffusers folder or a .safetensors file)",
        )
    return ModelSource("repo", text)


def hf_cache_dir() -> Path:
    """The standard HF hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _repo_folder(repo_id: str) -> Path:
    return hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def repo_cached(repo_id: str) -> bool:
    """Whether a snapshot of the repo (its model_index.json at least) is in the HF cache."""
    return any((_repo_folder(repo_id) / "snapshots").glob("*/model_index.json"))


def fingerprint(source: ModelSource) -> Any:
    """Cheap identity of the weights for cache keys: file sizes and times, or the
    cached commit of a repo. Reads no weights."""
    if source.kind == "repo":
        ref = _repo_folder(source.ref) / "refs" / "main"
        return [source.ref, ref.read_text().strip() if ref.is_file() else None]
    root = Path(source.ref)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [source.kind, source.ref] + [
        [str(p.relative_to(root)) if p != root else p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files
    ]


def resolve_config(config: str | None, settings: Any) -> str | None:
    """`config` of a single-file checkpoint: a local diffusers folder (relative to the input
    directory) or a repo id, passed on as is."""
    if not config:
        return None
    path = settings.input_path(config, "config")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InputError("config", f"{path} is not a diffusers folder (no model_index.json)")
        return str(path.resolve())
    if not REPO_ID.fullmatch(config.strip()):
        raise InputError("config", f"not found: {path} (give a diffusers folder or a Hugging Face repo id)")
    return config.strip()
