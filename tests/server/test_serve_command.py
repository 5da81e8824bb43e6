"""`nodeflow serve` and `python server.py`: one set of options (nodeflow/server/command.py), found
by the CLI through the `nodeflow.commands` entry point; the CLI never imports the server."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ASSETS, ROOT
from support.server_harness import Server, upload

SERVE_ENTRY_POINT = "[nodeflow.commands]\nserve = nodeflow.server.command:register\n"


def fake_distribution(where: Path, name: str, entry_points: str) -> Path:
    """A distribution's metadata on a path entry, declaring `entry_points` (as an install would)."""
    dist = where / f"{name}-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return where


@pytest.fixture
def serve_registered(tmp_path) -> dict:
    """The environment of a subprocess that sees the `serve` entry point (whether or not the
    installed nodeflow's metadata already declares it)."""
    path = fake_distribution(tmp_path / "ep", "nodeflow_serve_test", SERVE_ENTRY_POINT)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(path), os.environ.get("PYTHONPATH")]))}


def options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def test_nodeflow_serve_help_lists_every_server_option(cli, serve_registered):
    r = cli("serve", "--help", env=serve_registered)
    assert r.returncode == 0, r.stderr
    for flag in ("--plugins", "--log-level", "--input-dir", "--data-dir", "--token", "--ray", "--allow-downloads"):
        assert flag in r.stdout, flag
    assert "serve" in cli("--help", env=serve_registered).stdout


def test_server_py_and_nodeflow_serve_take_the_same_options(cli, serve_registered, tmp_path, monkeypatch):
    from nodeflow.cli.command import _parser
    from nodeflow.server.command import parser

    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path / "inproc", "nodeflow_serve_test", SERVE_ENTRY_POINT)))
    subparsers = next(a for a in _parser()._actions if a.dest == "command")
    serve = subparsers.choices["serve"]
    assert options(serve) == options(parser())
    assert {"--plugins", "--log-level", "--input-dir"} <= options(serve)
    # The same help, option by option, from both commands.
    env = dict(os.environ, **serve_registered)
    script = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    command = cli("serve", "--help", env=serve_registered)
    assert script.returncode == 0 and command.returncode == 0
    assert script.stdout.split("options:", 1)[1] == command.stdout.split("options:", 1)[1]


def test_both_refuse_the_same_bad_configuration(cli, serve_registered, tmp_path):
    args = ["--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path), "--input-dir", str(tmp_path / "in")]
    env = dict(os.environ, **serve_registered)
    env.pop("NODEFLOW_TOKEN", None)
    script = subprocess.run([sys.executable, str(ROOT / "server.py"), *args], env=env, capture_output=True, text=True)
    command = cli("serve", *args, env={**serve_registered, "NODEFLOW_TOKEN": ""})
    for r in (script, command):
        assert r.returncode == 2 and "without a token" in r.stderr, r.stderr


def test_without_its_entry_point_serve_says_which_extra_to_install(monkeypatch, capsys):
    import importlib.metadata

    from nodeflow.cli import command

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    assert command.main(["serve", "--port", "1", "--input-dir", "x"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "nodeflow[server]"' in err and "Traceback" not in err


def test_without_the_server_extra_serve_says_which_extra_to_install(monkeypatch, capsys, tmp_path):
    from nodeflow.server import command

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert command.main(["--data-dir", str(tmp_path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "nodeflow[server]"' in err and "uvicorn" in err


def test_a_broken_command_plugin_does_not_break_the_cli(cli, tmp_path):
    path = fake_distribution(tmp_path, "broken_plugin", "[nodeflow.commands]\nbroken = no_such_module_xyz:register\n")
    r = cli("validate", "graphs/edges.json", env={"PYTHONPATH": os.pathsep.join([str(path), str(ROOT)])})
    assert r.returncode == 0, r.stderr
    assert "'broken'" in r.stderr and "Traceback" not in r.stderr


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_cli_never_imports_the_web_server():
    for path in sorted((ROOT / "nodeflow" / "cli").glob("*.py")):
        assert not any(n.split(".")[:2] == ["nodeflow", "server"] for n in imported_modules(path)), path.name


def test_the_job_layer_imports_no_web_framework():
    for path in sorted((ROOT / "nodeflow" / "jobs").glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in ("fastapi", "starlette", "uvicorn") and not name.startswith("nodeflow.server"), (
                path.name,
                name,
            )


def test_input_dir_is_where_uploads_go_and_graphs_read(tmp_path):
    inputs = tmp_path / "my inputs"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "coffee.png").write_bytes((ASSETS / "coffee.png").read_bytes())
    srv = Server(tmp_path / "data", "--input-dir", str(inputs)).start()
    try:
        with srv.client() as c:
            name = upload(c)
            assert (inputs / name).is_file() and not (tmp_path / "data" / "inputs").exists()
            graph = {
                "nodes": {
                    "load": {"type": "LoadImage", "inputs": {"path": "sub/coffee.png", "max_size": 16}},
                    "save": {"type": "Save", "inputs": {"image": {"from": "load.image"}, "filename": "c.png"}},
                }
            }
            r = c.post("/jobs", json={"graph": graph})
            assert r.status_code == 202, r.text
            listed = c.get("/object_info/LoadImage").json()["LoadImage"]["input"]["required"]["image"][1]
            assert {name, "sub/coffee.png"} <= set(listed["options"])
            missing = c.post("/jobs", json={"graph": graph, "overrides": {"load.path": "nope.png"}}).json()
            assert "--input-dir" in missing["issues"][0]["message"]
            assert str(inputs) not in str(missing)  # the server's own paths stay its own
    finally:
        srv.stop()


def test_a_bad_checkpoint_interval_is_refused_at_start(cli, serve_registered, tmp_path):
    args = ["--port", "1", "--data-dir", str(tmp_path)]
    r = cli("serve", *args, env={**serve_registered, "NODEFLOW_CHECKPOINT_SECONDS": "often"})
    assert r.returncode == 2 and "$NODEFLOW_CHECKPOINT_SECONDS must be a number" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
