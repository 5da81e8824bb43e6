"""CLI output in a log (not a terminal): one line per node, coarse progress lines, no
carriage-return bars, and a very long node id doesn't pad every line."""

from __future__ import annotations

import io

from nodeflow import events as ev
from nodeflow.cli.render import MAX_ID_WIDTH, ConsoleRenderer
from nodeflow.graph import MAX_ID, parse_graph
from nodeflow.plan import build_plan

LONG = "n" + "x" * (MAX_ID - 1)  # the longest id a graph may have


def _plan():
    return build_plan(
        parse_graph(
            {
                "nodes": {
                    "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png"}},
                    LONG: {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
                    "save": {"type": "Save", "inputs": {"image": {"from": f"{LONG}.magnitude"}}},
                }
            }
        )
    )


def test_a_log_gets_lines_not_bars(assets):
    plan = _plan()
    out = io.StringIO()
    render = ConsoleRenderer(plan, stream=out)
    render(ev.RunStarted("r", list(plan.nodes), {n: "cpu" for n in plan.nodes}))
    for i in range(1, 1001):
        render(ev.NodeProgress("load", i, 1000))
    render(ev.NodeFinished("load", "LoadImage", 1.0))
    render(ev.NodeFinished(LONG, "Sobel", 1.0))
    render(ev.NodeFinished("save", "Save", 1.0, ["outputs/x.png"]))
    render(ev.RunFinished("r", "succeeded", 3.0))
    render.close()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    progress = [line for line in text.splitlines() if "%" in line]
    assert [line.split()[2] for line in progress] == [f"{p}%" for p in range(10, 101, 10)]
    save_line = next(line for line in text.splitlines() if line.strip().startswith("save"))
    assert len(save_line) < 80 and save_line.startswith("  save" + " " * (MAX_ID_WIDTH - 2))
    assert any(line.startswith(f"  {LONG}  Sobel") for line in text.splitlines())


def test_slow_progress_is_logged_every_ten_seconds(assets, monkeypatch):
    import nodeflow.cli.render as render_module

    clock = [0.0]
    monkeypatch.setattr(render_module.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    render = ConsoleRenderer(_plan(), stream=out)
    for i in range(1, 40):  # 1 % every 2 s: only the time rule fires
        clock[0] = 2.0 * i
        render(ev.NodeProgress("load", i, 1000))
    lines = [line for line in out.getvalue().splitlines() if "%" in line]
    assert len(lines) == 7  # at 12, 22, ... 72 s


def test_outputs_follow_the_umask(tmp_path):
    import os
    import stat

    from nodeflow.cache import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.png", b"x")
        os.umask(0o027)
        atomic_write(tmp_path / "b.png", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == 0o640
