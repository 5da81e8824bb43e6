"""Where the server's downloads go: with --allow-downloads, into <data>/downloads/ (a place
the operator chose wins); without, nothing is fetched and the libraries' caches stay."""

from __future__ import annotations

from pathlib import Path

from support.server_harness import submit, wait_job

from nodeflow.jobs.download_env import download_places, policy_env

PLACE_VARS = (
    "NODEFLOW_DOWNLOAD_DIR",
    "TORCH_HOME",
    "KERAS_HOME",
    "TFHUB_CACHE_DIR",
    "HF_HOME",
    "HF_HUB_CACHE",
    "NODEFLOW_WEIGHTS_DIR",
    "NODEFLOW_CACHE_DIR",
    "NODEFLOW_OFFLINE",
    "HF_HUB_OFFLINE",
    "XDG_CACHE_HOME",
)


def test_places_with_downloads_on(tmp_path):
    places = download_places(tmp_path, True, {"KERAS_HOME": "/models/keras"})
    assert places == {
        "NODEFLOW_DOWNLOAD_DIR": str(tmp_path / "downloads" / "files"),
        "TFHUB_CACHE_DIR": str(tmp_path / "downloads" / "tfhub"),
        "TORCH_HOME": str(tmp_path / "downloads" / "torch"),
        "HF_HUB_CACHE": str(tmp_path / "downloads" / "huggingface" / "hub"),
        "NODEFLOW_WEIGHTS_DIR": str(tmp_path / "downloads" / "weights"),
    }
    assert "HF_HUB_CACHE" not in download_places(tmp_path, True, {"HF_HOME": "/models/hf"})


def test_places_with_downloads_off_keep_the_library_caches(tmp_path):
    assert set(download_places(tmp_path, False, {})) == {"NODEFLOW_DOWNLOAD_DIR", "TFHUB_CACHE_DIR"}
    assert download_places(tmp_path, False, {"TFHUB_CACHE_DIR": "/m", "NODEFLOW_DOWNLOAD_DIR": "/d"}) == {}


def test_the_policy_as_variables():
    assert policy_env(False, {}) == {"NODEFLOW_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    assert policy_env(True, {}) == {}
    operator = {"NODEFLOW_DOWNLOAD_MAX_MB": "5", "NODEFLOW_DOWNLOAD_ALLOW_PRIVATE": "1", "HOME": "/root"}
    assert policy_env(True, operator) == {"NODEFLOW_DOWNLOAD_MAX_MB": "5", "NODEFLOW_DOWNLOAD_ALLOW_PRIVATE": "1"}
    assert policy_env(False, {"NODEFLOW_OFFLINE": "0"})["NODEFLOW_OFFLINE"] == "1"


def places_seen(own_server, monkeypatch, *args: str, env: dict | None = None) -> tuple[dict, Path]:
    """What the server's worker computes for each download place (the DownloadPlaces test node)."""
    for name in PLACE_VARS:
        monkeypatch.delenv(name, raising=False)
    srv = own_server(*args, env=env).start()
    try:
        with srv.client() as c:
            job_id = submit(c, {"nodes": {"places": {"type": "DownloadPlaces", "inputs": {}}}})
            job = wait_job(c, job_id)
            assert job["status"] == "succeeded", (job["error"], job["nodes"])
            r = c.get(f"/jobs/{job_id}/outputs/places.json")
            assert r.status_code == 200, r.text
            return r.json(), srv.data_dir.resolve()
    finally:
        srv.stop()


def test_with_downloads_on_everything_lands_in_the_data_folder(own_server, tmp_path, monkeypatch):
    operator_keras = tmp_path / "operator" / "keras"
    seen, data = places_seen(own_server, monkeypatch, "--allow-downloads", env={"KERAS_HOME": str(operator_keras)})
    downloads = data / "downloads"
    for name in ("files", "torch", "tfhub", "huggingface", "weights"):
        assert downloads in Path(seen[name]).resolve().parents, (name, seen[name])
    assert seen["keras"] == str(operator_keras / "models")  # the operator's choice stands
    assert not seen["offline"] and not seen["hf_offline"]


def test_with_downloads_off_nothing_is_fetched_and_caches_stay(own_server, monkeypatch):
    seen, data = places_seen(own_server, monkeypatch)
    assert seen["offline"] and seen["hf_offline"]
    assert data in Path(seen["files"]).resolve().parents and data in Path(seen["tfhub"]).resolve().parents
    for name in ("torch", "huggingface", "weights"):  # models the operator already has still serve
        assert data not in Path(seen[name]).resolve().parents, (name, seen[name])
