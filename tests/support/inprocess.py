"""The API in-process: FastAPI's TestClient on `create_app(ServerConfig(...))`, for tests of
status codes, JSON bodies and the OpenAPI document. No socket and no subprocess: the app's
worker threads run the jobs in this process, with the test plugins (support/plugins) loaded
the way a server loads them. Streams (SSE, WebSockets) and the process itself (its log, its
memory, kill -9) are for a live server (support.server_harness)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.paths import ASSETS, PLUGINS

# The host the app is asked for: a loopback name, so the Host check lets it through.
BASE_URL = "http://127.0.0.1:8188"


@contextmanager
def app_client(
    data_dir: Path,
    *,
    token: str | None = None,
    seed: tuple[str, ...] = ("astronaut.png", "starry_night.jpg"),
    **settings,
) -> Iterator:
    """A started app (its lifespan ran) and a client for it, authorised with `token` if the
    app has one. `settings` are ServerConfig fields; `seed` images are put in its inputs.
    The client's `.config` is the app's ServerConfig."""
    from fastapi.testclient import TestClient

    from nodeflow.jobs.config import ServerConfig
    from nodeflow.server.app import create_app

    data_dir = Path(data_dir)
    (data_dir / "inputs").mkdir(parents=True, exist_ok=True)
    for image in seed:
        (data_dir / "inputs" / image).write_bytes((ASSETS / image).read_bytes())
    if str(PLUGINS) not in sys.path:
        sys.path.append(str(PLUGINS))
    config = ServerConfig(data_dir=data_dir, token=token, plugins=["slow_nodes"], **settings)
    # What `serve` sets for its worker threads when downloads are off: nodes fail at once
    # instead of fetching.
    policy = {} if config.allow_downloads else {"NODEFLOW_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    saved_env = {name: os.environ.get(name) for name in policy}
    umask = os.umask(0o022)  # the app's start sets the process umask to 077: put it back after
    os.umask(umask)
    os.environ.update(policy)
    try:
        with TestClient(create_app(config), base_url=BASE_URL) as client:
            if token:
                client.headers["Authorization"] = f"Bearer {token}"
            client.config = config
            yield client
    finally:
        os.umask(umask)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def another_client(client, token: str | None = None):
    """A second client on `client`'s app (already started: this one does not run its
    lifespan again), sending `token` if given. Use it in a `with`: it closes."""
    from fastapi.testclient import TestClient

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(client.app, base_url=BASE_URL, headers=headers)
