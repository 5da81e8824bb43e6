"""The `nodeflow` command: argument parsing, console output, the run log and the sweep runner.
It stands on the engine, sweeps, drawing, ComfyUI formats and the Ray backend; never on the web server."""

from nodeflow.cli.command import main

__all__ = ["main"]
