"""The node context's checkpoints: one file per node key in the job's folder, written atomically,
told to a listener (the Ray worker ships them), absent in the CLI."""

from __future__ import annotations

import pytest

from nodeflow.context import Checkpoints, NodeContext, Settings, default_checkpoint_seconds


def ctx(settings: Settings, key: str = "ab12") -> NodeContext:
    return NodeContext("opt", "AdamOptimize", "cpu", key, settings, "{}", lambda e: None, None)  # type: ignore[arg-type]


def test_a_node_saves_and_loads_its_checkpoint_under_its_key(tmp_path):
    told = []
    settings = Settings(checkpoints=Checkpoints(tmp_path / "job", 5.0, lambda name, data: told.append((name, data))))
    a, b = ctx(settings, "ab12"), ctx(settings, "cd34")
    assert a.checkpoint_interval == 5.0 and a.load_checkpoint() is None
    a.save_checkpoint(b"one")
    a.save_checkpoint(b"two")
    assert a.load_checkpoint() == b"two" and b.load_checkpoint() is None  # another key: another node
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["ab12.ckpt"]  # no temp file left
    assert told == [("ab12.ckpt", b"one"), ("ab12.ckpt", b"two")]


def test_without_checkpoints_nothing_is_saved(tmp_path):
    c = ctx(Settings())
    assert c.checkpoint_interval is None and c.load_checkpoint() is None
    c.save_checkpoint(b"x")  # a no-op


@pytest.mark.parametrize("key", ["", "../x", "a/b", ".hidden"])
def test_a_checkpoint_name_stays_in_its_folder(tmp_path, key):
    with pytest.raises(ValueError):
        Checkpoints(tmp_path).path(key)


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("NODEFLOW_CHECKPOINT_SECONDS", "2.5")
    assert default_checkpoint_seconds() == 2.5
    monkeypatch.delenv("NODEFLOW_CHECKPOINT_SECONDS")
    assert default_checkpoint_seconds() == 30.0
    for bad in ("soon", "-1"):
        monkeypatch.setenv("NODEFLOW_CHECKPOINT_SECONDS", bad)
        with pytest.raises(ValueError, match="NODEFLOW_CHECKPOINT_SECONDS"):
            default_checkpoint_seconds()
