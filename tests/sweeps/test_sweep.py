"""Parameter sweeps: the CLI's --sweep and the HTTP API's sweep groups (in-process)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image
from support.extras import requires_extra
from support.server_harness import upload

SWEEP = ["--sweep", "sobel.normalize=max,fixed", "--sweep", "load.max_size=64,96,128"]


def layout_of(path: Path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.info["nodeflow:contact_sheet"])


def assert_cells_show(sheet: Path, files: dict[str, Path]) -> None:
    """Each cell of the sheet holds exactly its variation's image, scaled."""
    layout = layout_of(sheet)
    with Image.open(sheet) as im:
        canvas = im.convert("RGB")
    for cell in layout["cells"]:
        x, y, w, h = cell["box"]
        with Image.open(files[cell["file"]]) as src:
            want = src.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
        assert canvas.crop((x, y, x + w, y + h)).tobytes() == want.tobytes(), cell


def test_cli_sweep_names_tags_and_sheets_every_variation_and_shares_upstream_work(cli, tmp_path):
    out = tmp_path / "out"
    r = cli("run", "graphs/edges.json", "--out", str(out), "--no-cache", *SWEEP)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    expected = sorted(
        f"edges__sobel.normalize={n}__load.max_size={s}.png" for n in ("max", "fixed") for s in (64, 96, 128)
    )
    assert names == sorted(expected + ["edges__sweep.png"])
    for n in ("max", "fixed"):
        for s in (64, 96, 128):
            with Image.open(out / f"edges__sobel.normalize={n}__load.max_size={s}.png") as im:
                assert json.loads(im.info["nodeflow:sweep"]) == {"sobel.normalize": n, "load.max_size": s}
                assert max(im.size) > s  # the grid of four views at that size
    # LoadImage (and the two high-pass views) don't depend on sobel.normalize: they ran
    # once per max_size, and the second half of the sweep took them from the cache.
    log = r.stderr.splitlines()
    load_runs = [line for line in log if line.split()[:2] == ["load", "LoadImage"]]
    assert sum("ran in" in line for line in load_runs) == 3
    assert sum("cached (memory)" in line for line in load_runs) == 3
    assert sum(line.split()[:1] == ["sobel"] and "ran in" in line for line in log) == 6

    layout = layout_of(out / "edges__sweep.png")
    assert layout["rows"] == ["normalize = max", "normalize = fixed"]
    assert layout["columns"] == ["max_size = 64", "max_size = 96", "max_size = 128"]
    assert [(c["row"], c["column"]) for c in layout["cells"]] == [(r, c) for r in range(2) for c in range(3)]
    assert layout["cells"][5]["file"] == "edges__sobel.normalize=fixed__load.max_size=128.png"
    assert_cells_show(out / "edges__sweep.png", {p.name: p for p in out.iterdir()})


def test_cli_sweep_three_axes_fold_into_rows(cli, tmp_path):
    out = tmp_path / "out"
    r = cli(
        "run", "graphs/edges.json", "--out", str(out), "--no-cache", "-q", *SWEEP, "--sweep", "detail.sigma=[1.0, 2.5]"
    )
    assert r.returncode == 0, r.stderr
    layout = layout_of(out / "edges__sweep.png")
    assert layout["columns"] == ["sigma = 1.0", "sigma = 2.5"]
    assert layout["rows"][:2] == ["normalize = max, max_size = 64", "normalize = max, max_size = 96"]
    assert len(layout["rows"]) == 6 and len(layout["cells"]) == 12
    assert len(list(out.glob("edges__*sigma=*.png"))) == 12


def test_cli_sweep_rerun_leaves_the_files_alone(cli, tmp_path):
    out = tmp_path / "out"
    spec = ["--sweep", "sobel.normalize=max,fixed"]
    assert cli("run", "graphs/edges.json", "--out", str(out), "-q", *spec).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = cli("run", "graphs/edges.json", "--out", str(out), "-q", *spec)
    assert again.returncode == 0, again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_sweep_errors_are_all_reported_naming_node_and_input(cli, tmp_path):
    r = cli(
        "run",
        "graphs/edges.json",
        "--out",
        str(tmp_path / "out"),
        "--sweep",
        "sobel.normalize=max,sideways",
        "--sweep",
        "nosuch.sigma=1,2",
        "--sweep",
        "sobel.nope=1,2",
        "--sweep",
        "load.max_size=2,64",
        "--sweep",
        "detail.sigma=" + ",".join(str(1 + i / 10) for i in range(40)),
    )
    assert r.returncode == 2, r.stderr
    err = r.stderr
    assert "Traceback" not in err
    assert "node 'sobel', input 'normalize'" in err and "'sideways' is not one of" in err
    assert "node 'nosuch', input 'sigma'" in err and "no such node" in err
    assert "node 'sobel', input 'nope'" in err and "[unknown_input]" in err
    assert "node 'load', input 'max_size'" in err and "[value_too_small]" in err
    # 2 x 2 x 2 x 2 x 40 = 640 variations, over the default limit of 64
    assert "node 'detail', input 'sigma'" in err and "640 variations" in err and "[sweep_too_large]" in err
    assert not (tmp_path / "out").exists()


def test_cli_sweep_reports_every_stage_at_once(cli, tmp_path, assets):
    """The file (a key given twice, a bad device), --set, the sweep specs and each swept
    value: all named in one go, with or without --ray."""
    graph = tmp_path / "g.json"
    graph.write_text(
        '{"nodes": {'
        '"load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 32}},'
        '"sobel": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}, "normalize": "max",'
        ' "normalize": "fixed"}, "device": "cuda:abc"},'
        '"save": {"type": "Save", "inputs": {"image": {"from": "sobel.magnitude"}}}}}'
    )
    common = [
        "run",
        str(graph),
        "--input-dir",
        str(assets),
        "--out",
        str(tmp_path / "out"),
        "--set",
        "nosuch.x=1",
        "--sweep",
        "sobel.normalize=max,sideways",
        "--sweep",
        "bad",
    ]
    for extra in ([], ["--ray", "127.0.0.1:9", "--device", "cpu"]):
        r = cli(*common, *extra, timeout=120)
        assert r.returncode == 2, r.stderr
        err = r.stderr
        assert "Traceback" not in err
        assert "node 'sobel', input 'normalize'" in err and "[duplicate_key]" in err  # the file
        assert "node 'sobel', input 'device'" in err  # the file
        assert "node 'nosuch', input 'x'" in err  # --set
        assert "expected NODE.INPUT=v1,v2" in err  # a sweep spec
        assert "'sideways' is not one of" in err  # a swept value
        assert ("--device is not used with --ray" in err) == bool(extra)
    assert not (tmp_path / "out").exists()


def test_cli_sweep_malformed_specs_and_limit(cli, tmp_path):
    r = cli(
        "run",
        "graphs/edges.json",
        "--sweep",
        "sobel.normalize",
        "--sweep",
        "x=1,2",
        "--sweep",
        "sobel.channels=gray,gray",
    )
    assert r.returncode == 2
    assert "expected NODE.INPUT=v1,v2" in r.stderr and "name the input as NODE.INPUT" in r.stderr
    assert "node 'sobel', input 'channels'" in r.stderr and "repeat" in r.stderr
    r = cli("run", "graphs/edges.json", "--sweep-limit", "2", "--sweep", "load.max_size=32,48,64")
    assert r.returncode == 2 and "over the limit of 2" in r.stderr and "node 'load', input 'max_size'" in r.stderr


def edges_graph(path: str) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": path, "max_size": 48}},
            "sobel": {"type": "Sobel", "inputs": {"image": {"from": "load.image"}}},
            "save": {"type": "Save", "inputs": {"image": {"from": "sobel.magnitude"}, "filename": "edges.png"}},
        }
    }


def wait_group(c, group_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        group = c.get(f"/groups/{group_id}").json()
        if group["status"] == "finished" or time.monotonic() > deadline:
            return group
        time.sleep(0.2)


def test_http_sweep_queues_a_group_and_draws_its_contact_sheet(api, tmp_path):
    c = api(workers=2)  # in-process
    name = upload(c)
    r = c.post(
        "/jobs",
        json={
            "graph": edges_graph(name),
            "client_id": "me",
            "sweep": {"sobel.normalize": ["max", "fixed"], "load.max_size": [32, 48]},
        },
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert len(body["jobs"]) == 4 and r.headers["location"] == f"/groups/{body['group_id']}"
    group = wait_group(c, body["group_id"])
    assert group["status"] == "finished", group
    assert [j["values"] for j in group["jobs"]] == [
        {"sobel.normalize": n, "load.max_size": s} for n in ("max", "fixed") for s in (32, 48)
    ]
    files = {}
    for j in group["jobs"]:
        job = c.get(j["url"]).json()
        assert job["status"] == "succeeded" and job["group_id"] == body["group_id"]
        assert job["sweep"] == j["values"] and job["worker"]["pid"] > 0
        (out,) = job["outputs"]
        assert (
            out["name"] == f"edges__sobel.normalize={j['values']['sobel.normalize']}"
            f"__load.max_size={j['values']['load.max_size']}.png"
        )
        files[out["name"]] = tmp_path / out["name"]
        files[out["name"]].write_bytes(c.get(out["url"]).content)
    (sheet,) = group["contact_sheets"]
    assert sheet["node"] == "save" and sheet["name"] == "edges__sweep.png"
    assert sheet["layout"]["rows"] == ["normalize = max", "normalize = fixed"]
    assert sheet["layout"]["columns"] == ["max_size = 32", "max_size = 48"]
    path = tmp_path / "sheet.png"
    path.write_bytes(c.get(sheet["url"]).content)
    assert layout_of(path) == sheet["layout"]
    assert_cells_show(path, files)
    assert c.get(f"/groups/{body['group_id']}/outputs/nope.png").status_code == 404
    assert c.get("/groups/nosuch").status_code == 404


def test_http_sweep_errors_get_422_naming_node_and_input_and_queue_nothing(api):
    c = api()  # in-process
    name = upload(c)
    r = c.post(
        "/jobs",
        json={
            "graph": edges_graph(name),
            "sweep": {
                "sobel.normalize": ["max", "sideways"],
                "load.max_size": [4, 32],
                "nosuch.x": [1],
                "sobel.channels": "gray",
            },
        },
    )
    assert r.status_code == 422, r.text
    issues = {(i["node"], i["input"], i["code"]) for i in r.json()["issues"]}
    assert ("sobel", "normalize", "invalid_choice") in issues
    assert ("load", "max_size", "value_too_small") in issues
    assert ("nosuch", "x", "unknown_node") in issues
    assert ("sobel", "channels", "invalid_sweep") in issues
    r = c.post("/jobs", json={"graph": edges_graph(name), "sweep": {"load.max_size": list(range(16, 16 + 65))}})
    assert r.status_code == 422
    assert [(i["node"], i["input"], i["code"]) for i in r.json()["issues"]] == [("load", "max_size", "sweep_too_large")]
    assert c.get("/jobs").json()["jobs"] == []


def test_cli_sweep_on_ray_reports_bad_options_before_connecting(cli, tmp_path):
    r = cli(
        "run",
        "graphs/edges.json",
        "--sweep",
        "sobel.normalize=max,fixed",
        "--sweep",
        "bad",
        "--ray",
        "127.0.0.1:9",
        "--device",
        "cpu",
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "--device is not used with --ray" in r.stderr and "expected NODE.INPUT=v1,v2" in r.stderr


@requires_extra("ray")
def test_an_unreachable_ray_address_is_a_clear_error(cli, tmp_path):
    from support.server_harness import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    r = cli("run", "graphs/edges.json", "--sweep", "sobel.normalize=max,fixed", "--ray", address, timeout=120)
    assert r.returncode == 2 and "cannot reach the Ray cluster" in r.stderr and "Traceback" not in r.stderr
    r = cli("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), "--ray", address, timeout=120)
    assert r.returncode == 2 and "cannot reach the Ray cluster" in r.stderr and "Traceback" not in r.stderr
