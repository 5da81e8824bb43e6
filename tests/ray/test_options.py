"""How the Ray backend starts its worker actors, checked without starting Ray: the
resources they ask for and the server's download policy in their environment."""

from __future__ import annotations

import json

from support.extras import import_extra

import_extra("ray", "ray")

from nodeflow.ray_backend.backend import actor_options  # noqa: E402


def test_workers_of_a_server_without_downloads_are_offline(monkeypatch):
    monkeypatch.delenv("NODEFLOW_RAY_RESOURCES", raising=False)
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_MAX_MB", "7")
    opts = actor_options("gpu", allow_downloads=False)
    assert opts["num_gpus"] == 1 and opts["num_cpus"] == 1 and opts["max_concurrency"] == 2
    assert opts["runtime_env"]["env_vars"] == {
        "NODEFLOW_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "NODEFLOW_DOWNLOAD_MAX_MB": "7",
    }


def test_workers_of_a_server_with_downloads_get_its_limits(monkeypatch):
    monkeypatch.setenv("NODEFLOW_RAY_RESOURCES", json.dumps({"nodeflow": 1}))
    for name in (
        "NODEFLOW_OFFLINE",
        "HF_HUB_OFFLINE",
        "NODEFLOW_DOWNLOAD_MAX_MB",
        "NODEFLOW_DOWNLOAD_DEADLINE_S",
        "NODEFLOW_DOWNLOAD_ALLOW_PRIVATE",
    ):
        monkeypatch.delenv(name, raising=False)
    opts = actor_options("cpu", allow_downloads=True)
    assert opts["num_gpus"] == 0 and opts["resources"] == {"nodeflow": 1} and "runtime_env" not in opts
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")
    assert actor_options("cpu", allow_downloads=True)["runtime_env"]["env_vars"] == {
        "NODEFLOW_DOWNLOAD_ALLOW_PRIVATE": "1"
    }
