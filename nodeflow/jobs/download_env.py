"""Where the server's downloads go, and whether there are any: environment variables that
the download helpers and the model libraries read when they fetch.

With --allow-downloads, everything a job downloads lands in <data>/downloads/: files
(LoadImage urls), torch (VGG19 checkpoints), keras (Keras VGG19), tfhub (TF Hub models),
huggingface (SD), weights (converted VGG16). A variable the operator set wins: that is
their choice of place (a shared model store, say). Without --allow-downloads nothing is
fetched, so the libraries' usual caches stay in use (models the operator has already
downloaded serve the server too); only nodeflow's own download folder and TF Hub's (by
default in the world-writable /tmp) are the data folder's always.
"""

from __future__ import annotations

import os
from pathlib import Path

ALWAYS = {"NODEFLOW_DOWNLOAD_DIR": "files", "TFHUB_CACHE_DIR": "tfhub"}
WITH_DOWNLOADS = {
    "TORCH_HOME": "torch",
    "KERAS_HOME": "keras",
    "HF_HUB_CACHE": "huggingface/hub",
    "NODEFLOW_WEIGHTS_DIR": "weights",
}
# Set instead of a variable above, they say the operator already chose the place.
CHOSEN_BY = {"HF_HUB_CACHE": ("HF_HOME",)}
# The download policy: what every process that runs the server's jobs must see.
POLICY = (
    "NODEFLOW_OFFLINE",
    "HF_HUB_OFFLINE",
    "NODEFLOW_DOWNLOAD_ALLOW_PRIVATE",
    "NODEFLOW_DOWNLOAD_MAX_MB",
    "NODEFLOW_DOWNLOAD_DEADLINE_S",
)


def download_places(data_dir: Path, allow_downloads: bool, environ: dict[str, str]) -> dict[str, str]:
    """The variables to set: a folder under <data>/downloads/ for each the operator left unset."""
    places = {**ALWAYS, **(WITH_DOWNLOADS if allow_downloads else {})}
    root = Path(data_dir) / "downloads"
    return {
        name: str(root / sub)
        for name, sub in places.items()
        if not environ.get(name) and not any(environ.get(o) for o in CHOSEN_BY.get(name, ()))
    }


def policy_env(allow_downloads: bool, environ: dict[str, str]) -> dict[str, str]:
    """The download policy as variables, with the operator's own limits: off means nodes'
    own downloads fail at once (so a fallback can take over) and the Hugging Face hub is
    not asked."""
    env = {name: environ[name] for name in POLICY if environ.get(name)}
    if not allow_downloads:
        env["NODEFLOW_OFFLINE"] = env["HF_HUB_OFFLINE"] = "1"
    return env


def keep_downloads_inside(data_dir: Path, allow_downloads: bool) -> None:
    """Set both in this process (the server, whose worker threads run the jobs)."""
    os.environ.update(download_places(data_dir, allow_downloads, dict(os.environ)))
    os.environ.update(policy_env(allow_downloads, dict(os.environ)))
