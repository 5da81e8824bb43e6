"""Every command exits quietly when the reader of its output stops early (`| head`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.paths import GRAPHS, ROOT


@pytest.mark.parametrize(
    "args", [["nodes"], ["nodes", "--json"], ["schema"], ["validate", str(GRAPHS / "edges.json")], ["--help"]]
)
def test_a_closed_pipe_ends_the_command_quietly(args, assets):
    env = dict(os.environ, NODEFLOW_INPUT_DIR=str(assets))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nodeflow", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()  # the reader stops, like `head -c 1`
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert status in (0, 141), (status, err)
