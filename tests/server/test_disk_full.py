"""A nearly full disk (issue 30, item 8): outputs and the job store come before the disk
cache, which evicts or stops writing above a reserve; a job that fails for want of space
keeps no cache entry, and the same job succeeds once space is freed. The data folder is a
small tmpfs (mounted as root; skipped with the reason where mounting is not permitted)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from support.inprocess import app_client
from support.server_harness import submit, wait_job
from support.tmpfs import fill, small_disk

from nodeflow.cache import DiskCache


def _graph(name: str = "out.png", size: int = 300) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": "noise.png", "max_size": size}},
            "edges": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
            "save": {"type": "Save", "inputs": {"image": {"from": "edges.magnitude"}, "filename": name}},
        }
    }


def _cache_files(config) -> list:
    return [p for p in config.cache_dir.rglob("*") if p.is_file()]


def test_the_cache_steps_aside_for_outputs_and_a_failed_job_keeps_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("NODEFLOW_DISK_RESERVE_MB", "1")
    with small_disk(tmp_path / "data", "8m") as data:
        with app_client(data, seed=()) as client:
            noise = (np.random.default_rng(0).random((300, 300, 3)) * 255).astype("uint8")
            Image.fromarray(noise).save(client.config.input_dir / "noise.png")  # ~270 KB; 1 MB as floats

            # Room for the output, not for the cache above its reserve: the job succeeds, uncached.
            filler = fill(data, leave=int(1.8 * (1 << 20)))
            job = wait_job(client, submit(client, _graph("a.png")))
            assert job["status"] == "succeeded", job
            assert _cache_files(client.config) == []

            # With no reserve, the cache takes what space there is, the output then finds none: the
            # job fails on the disk, and what it cached goes with it.
            monkeypatch.setenv("NODEFLOW_DISK_RESERVE_MB", "0")
            filler.unlink()
            filler = fill(data, leave=int(1.12 * (1 << 20)))  # room for the first entry only
            job = wait_job(client, submit(client, _graph("b.png", 298)))
            assert job["status"] == "failed", job
            assert "No space left" in str(job), job
            assert _cache_files(client.config) == []

            # Space freed: the job succeeds, and now the cache keeps its entries.
            monkeypatch.setenv("NODEFLOW_DISK_RESERVE_MB", "1")
            filler.unlink()
            assert not list(client.config.output_root.rglob("*.tmp"))
            job = wait_job(client, submit(client, _graph("b.png", 297)))
            assert job["status"] == "succeeded", job
            assert len(_cache_files(client.config)) == 2


def test_the_disk_cache_evicts_its_oldest_entries_to_keep_the_reserve(tmp_path):
    with small_disk(tmp_path / "disk", "8m") as disk:
        cache = DiskCache(disk / "cache", reserve=2 << 20)
        blob = {"v": np.zeros(1 << 18, dtype="float32")}  # 1 MiB
        for i in range(4):
            assert cache.put(f"{i:02d}" + "a" * 62, blob)
        assert len(cache.entries()) == 4
        filler = fill(disk, leave=(2 << 20) + (512 << 10))  # the reserve and half an entry
        assert cache.put("ff" + "b" * 62, blob)  # room made by evicting the oldest
        kept = {p.name[:2] for p, _, _ in cache.entries()}
        assert "ff" in kept and "00" not in kept
        assert not list((disk / "cache").rglob("*.tmp"))
        # Nothing left to evict and no room: the entry is not written, and nothing is left half-written.
        for p, _, _ in cache.entries():
            p.unlink()
        filler.unlink()
        fill(disk, leave=(2 << 20) + 4096)
        assert not cache.put("ee" + "c" * 62, blob)
        assert cache.skipped == 1 and cache.entries() == []
        assert not [p for p in (disk / "cache").rglob("*") if p.is_file()]
