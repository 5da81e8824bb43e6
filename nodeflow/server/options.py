"""The serve options that guard the server, shared by `nodeflow serve` and server.py.
Only argparse here: the CLI builds its parser at start-up."""

from __future__ import annotations

import argparse


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_guard_options(p: argparse.ArgumentParser) -> None:
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


def guard_kwargs(args: argparse.Namespace) -> dict:
    return {
        "allowed_hosts": args.allowed_hosts,
        "allowed_origins": args.allowed_origins,
        "allow_downloads": args.allow_downloads,
    }
