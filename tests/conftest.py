"""Fixtures for every test: an isolated cache/output/input environment, the test images,
the real CLI in a subprocess, and the running servers. The helpers behind them live in the
`support` package (tests/support)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.register_assert_rewrite("support")

from support import extras  # noqa: E402
from support.cli_runner import run_cli  # noqa: E402
from support.inprocess import app_client  # noqa: E402
from support.paths import ASSETS  # noqa: E402
from support.server_harness import LiveServers, Server  # noqa: E402

# The environment before any fixture patched it: the shared servers start with it.
SESSION_ENVIRON = dict(os.environ)
TESTS = Path(__file__).resolve().parent


def pytest_sessionstart(session):
    """The test images are not in the repository: say where they are looked for, before any test runs."""
    wanted = ("astronaut.png", "starry_night.jpg", "chelsea.png", "coffee.png")
    absent = [name for name in wanted if not (ASSETS / name).is_file()]
    if absent:
        raise pytest.UsageError(
            f"test images missing from {ASSETS}: {', '.join(absent)}. Put them in ../shared/assets beside "
            "the checkout, or set NODEFLOW_TEST_ASSETS to their folder."
        )


class _NeedsExtra(pytest.Module):
    """A test file in a folder whose extra is not installed: skipped, naming the extra, unimported."""

    reason = ""

    def collect(self):
        raise pytest.skip.Exception(self.reason, _use_item_location=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    """Skip (never import) the files of a test folder whose extra is missing (support.extras.FOLDER_EXTRAS)."""
    try:
        rel = Path(module_path).resolve().relative_to(TESTS).parent.as_posix()
    except ValueError:
        return None
    for folder, extra in extras.FOLDER_EXTRAS.items():
        if rel == folder or rel.startswith(folder + "/"):
            reason = extras.skip_reason(extra)
            if reason:
                module = _NeedsExtra.from_parent(parent, path=Path(module_path))
                module.reason = f"tests/{folder}/: {reason}"
                return module
    return None


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own disk cache, download cache, input and output dirs."""
    env = {
        "NODEFLOW_CACHE_DIR": tmp_path / "cache",
        "NODEFLOW_DOWNLOAD_DIR": tmp_path / "downloads",
        "NODEFLOW_INPUT_DIR": ASSETS,
        "NODEFLOW_OUTPUT_DIR": tmp_path / "out",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    return {k: Path(v) for k, v in env.items()}


@pytest.fixture
def assets() -> Path:
    if not (ASSETS / "astronaut.png").exists():
        pytest.fail(f"test images missing: expected them in {ASSETS}")
    return ASSETS


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def servers(tmp_path_factory) -> Iterator[LiveServers]:
    """The session's running server processes, one per configuration (servers.shared(...)),
    stopped when the session ends. For tests that need a live socket: SSE, WebSockets, a
    browser, or the process itself (its log, its memory)."""
    pool = LiveServers(tmp_path_factory.mktemp("servers"), SESSION_ENVIRON)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def live_server(servers) -> Server:
    """The shared server with the default settings (its inputs hold astronaut.png and
    starry_night.jpg). Other tests' jobs and uploads are on it too."""
    return servers.shared()


@pytest.fixture
def own_server(tmp_path) -> Iterator:
    """own_server(*args, token=, env=, data_dir=) -> a Server (not started) that this test
    alone drives: kills, restarts, starts that must fail. Killed when the test ends."""
    made: list[Server] = []

    def make(*args: str, token: str | None = None, env: dict | None = None, data_dir: Path | None = None) -> Server:
        srv = Server(data_dir or tmp_path / "data", *args, token=token, env=env)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.kill()


@pytest.fixture
def api(tmp_path) -> Iterator:
    """api(**settings) -> a TestClient on a fresh in-process app (support.inprocess.app_client)
    with its own data folder, shut down when the test ends."""
    with ExitStack() as stack:
        count = itertools.count()

        def make(**settings):
            return stack.enter_context(app_client(tmp_path / f"app{next(count)}" / "data", **settings))

        yield make
