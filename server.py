#!/usr/bin/env python
"""Start the nodeflow HTTP API: `python server.py [--host H] [--port P] [--data-dir D] ...`.

The same as `nodeflow serve`. Binds 127.0.0.1:8188 by default. Beyond loopback a
bearer token is required (--token or $NODEFLOW_TOKEN). Extra node modules are
imported at start-up from $NODEFLOW_PLUGINS (comma-separated module names) or --plugins.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="nodeflow HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="queue, uploads, outputs and cache (default $NODEFLOW_DATA_DIR or the user data dir)",
    )
    p.add_argument("--token", help="bearer token (or $NODEFLOW_TOKEN); required beyond loopback")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once")
    p.add_argument(
        "--requeue-interrupted",
        action="store_true",
        help="re-queue jobs that were running when the server last stopped",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the jobs on a Ray cluster: auto, or the head's host:port (or $NODEFLOW_RAY_ADDRESS)",
    )
    p.add_argument(
        "--plugins", metavar="MODULES", help="comma-separated node modules to import (adds to $NODEFLOW_PLUGINS)"
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    from nodeflow.server.options import add_guard_options, guard_kwargs

    add_guard_options(p)
    args = p.parse_args(argv)
    if args.plugins:
        os.environ["NODEFLOW_PLUGINS"] = ",".join(filter(None, [os.environ.get("NODEFLOW_PLUGINS"), args.plugins]))
    from nodeflow.server.app import serve

    return serve(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        token=args.token,
        workers=args.workers,
        requeue_interrupted=args.requeue_interrupted,
        log_level=args.log_level,
        ray=args.ray,
        **guard_kwargs(args),
    )


if __name__ == "__main__":
    sys.exit(main())
