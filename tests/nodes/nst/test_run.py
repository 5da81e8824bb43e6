"""Style transfer runs on the real offline VGG16 weights, at tiny sizes: the objective
goes down, the value cache spares the optimization, cancellation stops it, the bundled
graphs validate, the quick graph runs end to end, and image sources download."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading

import pytest
from support.extras import import_extra

torch = import_extra("nst", "torch")

from support.nst_graphs import history as _history  # noqa: E402
from support.nst_graphs import run as _run  # noqa: E402
from support.nst_graphs import tiny as _tiny  # noqa: E402
from support.paths import ROOT  # noqa: E402

from nodeflow import events as ev  # noqa: E402
from nodeflow.cache import DiskCache  # noqa: E402
from nodeflow.context import CancelToken  # noqa: E402
from nodeflow.executor import Executor  # noqa: E402
from nodeflow.graph import apply_overrides, parse_graph, read_graph_file  # noqa: E402
from nodeflow.plan import build_plan  # noqa: E402

QUICK = ROOT / "graphs" / "nst_quick.json"


@pytest.fixture(autouse=True)
def offline_vgg19(monkeypatch, tmp_path):
    """No VGG19 here: a closed local port stands for the unreachable download."""
    monkeypatch.setenv("NODEFLOW_VGG19_URL", "http://127.0.0.1:9/vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def test_a_tiny_adam_run_lowers_the_objective_on_real_vgg16_weights():
    result, events = _run(_tiny(steps=6, preview_every=3))
    assert result.status == "succeeded", result.error
    h = _history(result)
    assert len(h["total"]) == 7 and h["total"][-1] < 0.7 * h["total"][0]
    assert set(h["terms"]) == {"style", "content", "tv"}
    assert h["total"][2] == pytest.approx(sum(v[2] for v in h["terms"].values()), rel=1e-4)
    img = result.values["opt"]["image"]
    assert img.shape == (48, 48, 3) and 0 <= img.min() and img.max() <= 1
    assert json.loads(result.values["opt"]["info"])["weights"] == "vgg16"
    progress = [e for e in events if isinstance(e, ev.NodeProgress) and e.node == "opt"]
    assert [p.value for p in progress] == [1, 2, 3, 4, 5, 6]
    assert len([e for e in events if isinstance(e, ev.NodePreview) and e.node == "opt"]) == 2


def test_adam_scores_its_last_image_and_returns_the_lowest_objective_image_it_evaluated():
    from nodes.nst._adam import run_adam
    from nodes.nst._losses import LossTerm, total_variation

    torch.manual_seed(0)
    start = torch.rand(1, 3, 16, 16)
    # Plain sign-like steps of 0.3 on TV alone overshoot: the first step is the best.
    image, h = run_adam([LossTerm("tv", 1.0)], start, stages=[((16, 16), 8)], lr=0.3, beta1=0.0, beta2=0.999, eps=1e-8)
    assert len(h.total) == 9 and min(h.total) == h.total[1] < h.total[-1]
    assert float(total_variation(image)) == pytest.approx(h.total[1], rel=1e-6)


def test_a_time_limit_stops_the_run_at_the_step_under_way_and_says_so(monkeypatch):
    from nodes.nst import _run_record

    # A fake clock: each step takes 0.3 s, so a 1 s limit is past at the 4th step's image.
    now = [0.0]
    monkeypatch.setattr(_run_record, "clock", lambda: now[0])

    def tick(e):
        if isinstance(e, ev.NodeProgress) and e.node == "opt":
            now[0] += 0.3

    # 50 steps: far more than the limit holds (and, should the clock not be the run's, over soon).
    result, _ = _run(_tiny(steps=50, time_limit=1.0, preview_every=0), emit=tick)
    assert result.status == "succeeded", result.error
    info, h = json.loads(result.values["opt"]["info"]), _history(result)
    assert info["time_limited"] and info["steps"] == 4
    # Every step taken was scored, on the run's clock; the result is the best of them.
    assert len(h["total"]) == 5 and h["seconds"] == [0.0, 0.3, 0.6, 0.9, 1.2]
    assert info["final_loss"] == min(h["total"]) and info["seconds"] == 1.2
    # The same 4 steps without a limit score the same images and return the same best one.
    unlimited, _ = _run(_tiny(steps=4, preview_every=0), emit=tick)
    assert not json.loads(unlimited.values["opt"]["info"])["time_limited"]
    assert _history(unlimited)["total"] == pytest.approx(h["total"], rel=1e-6)
    assert (unlimited.values["opt"]["image"] == result.values["opt"]["image"]).all()


def test_lbfgs_and_coarse_to_fine_lower_the_objective_and_save_frames(isolated_env):
    result, _ = _run(_tiny("LBFGSOptimize", steps=8))
    h = _history(result)
    assert result.status == "succeeded" and h["total"][-1] < 0.5 * h["total"][0]
    result, _ = _run(_tiny(schedule="24:3,full:3", preview_every=3, save_frames=True, frame_prefix="f"))
    h = _history(result)
    assert result.status == "succeeded" and h["size"][0] == [24, 24] and h["size"][-1] == [48, 48]
    assert h["total"][-1] < h["total"][3]  # the full-size stage itself makes progress
    assert sorted(p.name for p in isolated_env["NODEFLOW_OUTPUT_DIR"].glob("f_*.png")) == ["f_00003.png", "f_00006.png"]


def test_lbfgs_on_a_pyramid_starts_from_the_content_and_lowers_the_objective():
    plain, _ = _run(_tiny("LBFGSOptimize", steps=8))
    pyramid, _ = _run(_tiny("LBFGSOptimize", steps=8, pyramid=4))
    assert pyramid.status == "succeeded", pyramid.error
    p, h = _history(plain), _history(pyramid)
    # The coarse levels start at zero: the first evaluation is the content image's, as without them.
    assert h["total"][0] == pytest.approx(p["total"][0], rel=1e-6)
    assert h["total"][-1] < 0.5 * h["total"][0]
    # A different parametrization takes a different path.
    assert h["total"][-1] != pytest.approx(p["total"][-1], rel=1e-3)


def test_the_pyramid_sums_its_upsampled_levels_and_spreads_gradients_down():
    from nodes.nst._lbfgs import Pyramid

    image = torch.rand(1, 3, 8, 12)
    pyr = Pyramid(image, 3)
    assert [tuple(level.shape[-2:]) for level in pyr.levels] == [(8, 12), (4, 6), (2, 3)]
    assert torch.equal(pyr.image(), image)
    with torch.no_grad():
        pyr.levels[2].fill_(0.25)
    assert torch.allclose(pyr.image(), image + 0.25)
    pyr.image().sum().backward()
    # Each coarse value feeds (side ratio)^2 full-size pixels: its gradient is their sum.
    assert torch.allclose(pyr.levels[1].grad, torch.full((1, 3, 4, 6), 4.0))
    assert torch.allclose(pyr.levels[2].grad, torch.full((1, 3, 2, 3), 16.0))


def test_lbfgs_then_warm_adam_keeps_lowering_the_objective_without_a_jump():
    result, events = _run(_tiny("LBFGSOptimize", steps=6, adam_steps=6, preview_every=0))
    assert result.status == "succeeded", result.error
    h = _history(result)
    assert len(h["total"]) == 12
    assert [p.value for p in events if isinstance(p, ev.NodeProgress) and p.node == "opt"][-1] == 12
    # Warm-started Adam continues from the L-BFGS result: no jump back up, then further down.
    assert h["total"][6] < 1.01 * min(h["total"][:6])
    assert h["total"][-1] < h["total"][6]
    info = json.loads(result.values["opt"]["info"])
    assert info["route"] == "lbfgs + 6 adam steps" and info["steps"] == 12


def test_bad_adam_finish_inputs_name_the_node_and_input():
    from nodeflow.errors import GraphInvalid

    with pytest.raises(GraphInvalid) as info:
        build_plan(parse_graph(_tiny("LBFGSOptimize", adam_steps=-1, adam_lr=0, adam_lr_schedule="linear")))
    named = {(i.node, i.input) for i in info.value.issues}
    assert {("opt", "adam_steps"), ("opt", "adam_lr"), ("opt", "adam_lr_schedule")} <= named


def test_bfloat16_convolutions_give_nearly_the_same_objective_and_still_descend():
    exact, _ = _run(_tiny(steps=1))
    fast, _ = _run(_tiny(steps=4, precision="bfloat16"))
    assert fast.status == "succeeded", fast.error
    h = _history(fast)
    assert h["total"][0] == pytest.approx(_history(exact)["total"][0], rel=0.05)
    assert h["total"][-1] < h["total"][0]
    assert json.loads(fast.values["opt"]["info"])["precision"] == "bfloat16"


def test_precision_auto_runs_what_the_hardware_does_fast_and_records_it():
    from nodes.nst._precision import fast_bfloat16

    result, events = _run(_tiny(steps=2, precision="auto"))
    assert result.status == "succeeded", result.error
    expected = "bfloat16" if fast_bfloat16("cpu") else "float32"
    assert json.loads(result.values["opt"]["info"])["precision"] == expected


def test_noise_init_is_seeded():
    a, _ = _run(_tiny(steps=1, init="noise", seed=3))
    b, _ = _run(_tiny(steps=1, init="noise", seed=3))
    c, _ = _run(_tiny(steps=1, init="noise", seed=4))
    assert (a.values["opt"]["image"] == b.values["opt"]["image"]).all()
    assert not (a.values["opt"]["image"] == c.values["opt"]["image"]).all()


def test_cancellation_stops_the_optimization_cleanly():
    token = CancelToken()

    def cancel_on_step_3(e):
        if isinstance(e, ev.NodeProgress) and e.node == "opt" and e.value == 3:
            token.cancel()

    result, events = _run(_tiny(steps=50), cancel=token, emit=cancel_on_step_3)
    assert result.status == "cancelled" and result.nodes["opt"].state == "cancelled"
    assert max(e.value for e in events if isinstance(e, ev.NodeProgress) and e.node == "opt") == 3


def test_changing_save_or_sobel_does_not_rerun_the_optimization(tmp_path):
    graph = read_graph_file(QUICK)
    executor = Executor(disk=DiskCache(tmp_path / "values"))
    first = executor.run(build_plan(graph))
    assert first.status == "succeeded" and first.nodes["optimize"].state == "ran"
    # A new executor: only the disk cache carries over, as in a new process.
    changed = apply_overrides(
        graph,
        {"save.filename": "other.png", "result_sobel.normalize": "fixed", "content_sobel.channels": "per_channel"},
    )
    events = []
    second = Executor(disk=DiskCache(tmp_path / "values")).run(build_plan(changed), emit=events.append)
    assert second.status == "succeeded"
    assert second.nodes["optimize"].state == "cached" and second.nodes["optimize"].source == "disk"
    assert second.nodes["result_sobel"].state == "ran"
    ran = {e.node for e in events if isinstance(e, ev.NodeStarted)}
    assert not ran & {"vgg", "style_loss", "content_loss", "optimize"}
    # A loss input does re-run it.
    third = Executor(disk=DiskCache(tmp_path / "values")).run(
        build_plan(apply_overrides(graph, {"tv_loss.weight": 10.0}))
    )
    assert third.nodes["optimize"].state == "ran"


def test_the_bundled_graphs_validate(cli):
    graphs = [
        str(ROOT / "graphs" / n)
        for n in ("nst_starry.json", "nst_starry_hq.json", "nst_tutorial.json", "nst_quick.json")
    ]
    proc = cli("validate", *graphs)
    assert proc.returncode == 0, proc.stderr
    tutorial = read_graph_file(ROOT / "graphs" / "nst_tutorial.json")
    opt = tutorial.nodes["optimize"].inputs
    assert (opt["steps"], opt["lr"], opt["beta1"], opt["epsilon"]) == (1000, 0.02, 0.99, 0.1)
    assert tutorial.nodes["content"].inputs["max_size"] == tutorial.nodes["style"].inputs["max_size"] == 512


def test_quick_graph_end_to_end_on_the_cli(cli, tmp_path):
    out = tmp_path / "out"
    proc = cli(
        "run",
        str(QUICK),
        "--out",
        str(out),
        "--quiet",
        env={"NODEFLOW_VGG19_URL": "http://127.0.0.1:9/vgg19-dcbb9e9d.pth", "TORCH_HOME": str(tmp_path / "torch")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "FALLBACK: vgg19 weights unavailable, using vgg16 instead" in proc.stderr
    from PIL import Image

    with Image.open(out / "nst_quick_output.png") as im:
        assert im.size == (64, 64)
        info = json.loads(im.info["nodeflow:metadata"])
    assert info["weights"] == "vgg16 (fallback from vgg19)" and info["steps"] == 8
    assert (out / "nst_quick_edges.png").exists() and (out / "nst_quick_loss.png").exists()


def test_images_download_once_from_their_url_with_a_strict_checksum(tmp_path, assets, isolated_env, monkeypatch):
    monkeypatch.setenv("NODEFLOW_DOWNLOAD_ALLOW_PRIVATE", "1")  # the test server is on loopback
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(assets / "astronaut.png", www / "astronaut.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        graph = apply_overrides(
            read_graph_file(QUICK),
            {
                "content.path": "not_here_astronaut.png",
                "content.url": f"http://127.0.0.1:{server.server_address[1]}/astronaut.png",
            },
        )
        result = Executor().run(build_plan(graph, only=["content"]))
        assert result.status == "succeeded", result.error
        assert result.values["content"]["image"].shape == (64, 64, 3)
        assert len(list(isolated_env["NODEFLOW_DOWNLOAD_DIR"].glob("*astronaut.png"))) == 1
        bad = apply_overrides(graph, {"content.sha256": "0" * 64})
        result = Executor().run(build_plan(bad, only=["content"]))
        assert result.status == "failed" and "checksum mismatch" in str(result.error)
    finally:
        server.shutdown()
