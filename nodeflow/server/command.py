"""`nodeflow serve` and `python server.py`: one set of options, one run function.

The `nodeflow` command finds `serve` through the entry-point group `nodeflow.commands`
(register() adds the subcommand); server.py calls main(). Only argparse at import time: the
CLI registers its commands at every start-up. FastAPI and uvicorn are imported when the
server starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nodeflow.jobs.config import DEFAULT_HOST, DEFAULT_PORT

DESCRIPTION = (
    "Start the nodeflow HTTP API (and the web editor at /). Binds 127.0.0.1:8188 by default; "
    "beyond loopback a bearer token is required."
)
EXTRA = "server"  # the extra that brings fastapi and uvicorn: pip install "nodeflow[server]"


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="queue, uploads, outputs and cache (default $NODEFLOW_DATA_DIR or the user data dir)",
    )
    p.add_argument(
        "--input-dir",
        metavar="DIR",
        help="the input folder: uploads go there, and every path a graph names resolves inside it "
        "(default DATA_DIR/inputs)",
    )
    p.add_argument("--token", help="bearer token (or $NODEFLOW_TOKEN); required beyond loopback")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once")
    p.add_argument(
        "--requeue-interrupted",
        action="store_true",
        help="re-queue every job that was running when the server last stopped (a job that holds "
        "a checkpoint is re-queued anyway, and resumes from it)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the jobs on a Ray cluster: auto, or the head's host:port (or $NODEFLOW_RAY_ADDRESS); "
        "--workers is then jobs at once across it",
    )
    p.add_argument(
        "--plugins", metavar="MODULES", help="comma-separated node modules to import (adds to $NODEFLOW_PLUGINS)"
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument(
        "--allowed-hosts",
        type=_names,
        default=[],
        metavar="H1,H2",
        help="host names the server answers to besides loopback and --host (or $NODEFLOW_ALLOWED_HOSTS; '*' for any)",
    )
    p.add_argument(
        "--allowed-origins",
        type=_names,
        default=[],
        metavar="URL1,URL2",
        help="origins (scheme://host:port) allowed to make cross-site requests (or $NODEFLOW_ALLOWED_ORIGINS)",
    )
    p.add_argument(
        "--allow-downloads",
        action="store_true",
        default=None,
        help="let graphs make the server download files (LoadImage url, model weights); "
        "off by default ($NODEFLOW_DOWNLOADS=1 also turns it on)",
    )


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The `nodeflow.commands` entry point: add `nodeflow serve`."""
    p = subparsers.add_parser("serve", help="start the HTTP API", description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(handler=run)
    return p


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """server.py's parser: the same options as `nodeflow serve`."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Start the server with parsed options (blocks). Returns an exit code."""
    return serve(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        input_dir=args.input_dir,
        token=args.token,
        workers=args.workers,
        requeue_interrupted=args.requeue_interrupted,
        log_level=args.log_level,
        allowed_hosts=args.allowed_hosts,
        allowed_origins=args.allowed_origins,
        ray=args.ray,
        allow_downloads=args.allow_downloads,
        plugins=_names(args.plugins or ""),
    )


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    data_dir: str | Path | None = None,
    input_dir: str | Path | None = None,
    token: str | None = None,
    workers: int = 1,
    requeue_interrupted: bool = False,
    log_level: str = "info",
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    ray: str | None = None,
    allow_downloads: bool | None = None,
    plugins: list[str] | None = None,
) -> int:
    """Start the API with uvicorn (blocks). Returns an exit code."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        print(
            f"nodeflow serve: error: the HTTP API needs the {EXTRA!r} extra ({exc.name} is missing): "
            f'pip install "nodeflow[{EXTRA}]"',
            file=sys.stderr,
        )
        return 2
    from nodeflow.jobs.config import ServerConfig, default_data_dir
    from nodeflow.jobs.download_env import keep_downloads_inside

    from .app import ServerError, create_app
    from .auth import RedactToken

    config = ServerConfig(
        data_dir=Path(data_dir) if data_dir else default_data_dir(),
        inputs=Path(input_dir) if input_dir else None,
        host=host,
        port=port,
        token=token or os.environ.get("NODEFLOW_TOKEN") or None,
        workers=workers,
        requeue_interrupted=requeue_interrupted,
        ray_address=ray or os.environ.get("NODEFLOW_RAY_ADDRESS") or None,
    )
    config.plugins += [name for name in plugins or [] if name not in config.plugins]
    config.allowed_hosts += allowed_hosts or []
    config.allowed_origins += allowed_origins or []
    if allow_downloads is not None:
        config.allow_downloads = allow_downloads
    problem = config.check()
    if not problem:
        from nodeflow.context import default_checkpoint_seconds

        try:
            default_checkpoint_seconds()
        except ValueError as exc:
            problem = str(exc)
    if not problem and config.ray_address:
        from nodeflow.extras import missing

        problem = missing("ray", "ray")
        problem = f"--ray: {problem}" if problem else None
    if not problem and config.ray_address:
        from nodeflow.ray_backend.backend import unreachable

        problem = unreachable(config.ray_address)
    if problem:
        print(f"nodeflow serve: error: {problem}", file=sys.stderr)
        return 2
    keep_downloads_inside(config.data_dir, config.allow_downloads)
    try:
        app = create_app(config)
    except ServerError as exc:
        print(f"nodeflow serve: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"nodeflow: serving http://{host}:{port} (data {config.data_dir}, {workers} worker(s)"
        f"{' on the Ray cluster at ' + config.ray_address if config.ray_address else ''}, "
        f"token {'required' if config.token else 'not required'})",
        file=sys.stderr,
        flush=True,
    )
    redact = RedactToken(config.token)
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "nodeflow"):  # handshakes go to uvicorn.error
        logging.getLogger(name).addFilter(redact)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3)
    except SystemExit as exc:  # uvicorn exits when it can't bind
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    return 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """`python server.py [options]`."""
    return run(parser(prog).parse_args(argv))
