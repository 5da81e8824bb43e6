"""ComfyUI route benchmark: submit-to-done of one small graph through POST /prompt (the
ComfyUI adapter) against POST /jobs (nodeflow's own API, the baseline), interleaved; and
the web editor's load in headless Chromium (time and bytes from the server).

    .venv/bin/python bench/comfy.py [--jobs 30] [--rounds 3] [--loads 3]

Starts a real server (python server.py) on a free loopback port with a fresh data dir.
Both routes are followed the way their clients do: one WebSocket opened beforehand
(/ws?clientId= for ComfyUI, /jobs/ws for nodeflow); a job is done at `executing` with node
null (ComfyUI) or `job_finished` (nodeflow). Each job gets a slightly different graph, so
it runs instead of being a cache hit. Prints each round's medians and ratio /prompt : /jobs,
and the median ratio over the rounds.
Timings on a shared machine are noisy: compare the ratios, run it more than once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests")]  # the test helpers, and `support`
sys.path.insert(0, str(ROOT))

from server_harness import ASSETS, Server  # noqa: E402

from nodeflow.comfy.translate import graph_to_prompt  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def graph(i: int) -> dict:
    return {
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"path": "astronaut.png", "max_size": 64}},
            "hp": {
                "type": "HighPass",
                "inputs": {"image": {"from": "load.image"}, "mode": "gaussian", "sigma": round(1.0 + i * 0.001, 4)},
            },
            "save": {"type": "Save", "inputs": {"image": {"from": "hp.image"}, "filename": "b.png"}},
        }
    }


def via_jobs(client, ws, i: int) -> float:
    t0 = time.perf_counter()
    job_id = client.post("/jobs", json={"graph": graph(i)}).json()["job_id"]
    while True:
        e = json.loads(ws.recv(timeout=120))
        if e["event"] == "job_finished" and e["job_id"] == job_id:
            assert e["status"] == "succeeded", e
            return time.perf_counter() - t0


def via_prompt(client, ws, client_id: str, i: int) -> float:
    t0 = time.perf_counter()
    reply = client.post("/prompt", json={"prompt": graph_to_prompt(graph(i)), "client_id": client_id})
    prompt_id = reply.json()["prompt_id"]
    while True:
        out = ws.recv(timeout=120)
        if isinstance(out, str):
            m = json.loads(out)
            if m["type"] == "executing" and m["data"]["node"] is None and m["data"]["prompt_id"] == prompt_id:
                return time.perf_counter() - t0


def bench_routes(server: Server, jobs: int, rounds: int) -> None:
    from websockets.sync.client import connect

    client_id = uuid.uuid4().hex
    base = f"ws://127.0.0.1:{server.port}"
    ratios = []
    with (
        server.client() as client,
        connect(base + "/jobs/ws", open_timeout=30) as jobs_ws,
        connect(f"{base}/ws?clientId={client_id}", open_timeout=30, max_size=None) as comfy_ws,
    ):
        comfy_ws.recv(timeout=30)  # status
        for i in range(3):  # warm up both paths (imports, caches of the unchanged nodes)
            via_jobs(client, jobs_ws, -1 - i)
            via_prompt(client, comfy_ws, client_id, -100 - i)
        print(f"submit-to-done, {jobs} jobs each per round, interleaved:")
        for r in range(rounds):
            jobs_s, prompt_s = [], []
            for i in range(jobs):
                n = 2 * (r * jobs + i)
                if i % 2:
                    prompt_s.append(via_prompt(client, comfy_ws, client_id, n))
                    jobs_s.append(via_jobs(client, jobs_ws, n + 1))
                else:
                    jobs_s.append(via_jobs(client, jobs_ws, n))
                    prompt_s.append(via_prompt(client, comfy_ws, client_id, n + 1))
            mj, mp = statistics.median(jobs_s), statistics.median(prompt_s)
            ratios.append(mp / mj)
            print(
                f"  round {r + 1}: POST /jobs (baseline) median {mj * 1000:6.1f} ms, "
                f"POST /prompt median {mp * 1000:6.1f} ms, ratio {mp / mj:.3f}x"
            )
    print(f"  median ratio /prompt : /jobs over {rounds} rounds: {statistics.median(ratios):.3f}x (target <= 1.05x)")


def appender(items: list):
    """An event handler that appends each event to `items` (playwright wants a function it may
    set attributes on, not a bound builtin such as items.append)."""
    return lambda event: items.append(event)


def bench_editor(server: Server, loads: int, tmp: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("editor load: skipped (no playwright)")
        return
    local = server.url
    times, sizes, counts = [], [], []
    with sync_playwright() as p:
        for n in range(loads):  # a fresh profile each time: a first visit, nothing cached
            context = p.chromium.launch_persistent_context(
                str(tmp / f"profile-{n}"),
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": 1600, "height": 1000},
            )
            page = context.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(local) else r.abort())
            responses = []
            page.on("requestfinished", appender(responses))
            t0 = time.perf_counter()
            page.goto(local + "/")
            page.wait_for_function("window.app && app.graph && app.graph._nodes.length > 0", timeout=120_000)
            times.append(time.perf_counter() - t0)
            page.wait_for_timeout(1000)
            sizes.append(sum(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in responses))
            counts.append(len(responses))
            context.close()
    print(f"editor first load in Chromium, {loads} fresh profiles:")
    print(
        f"  until the default graph is on the canvas: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f})"
    )
    print(
        f"  from the server: median {statistics.median(sizes) / 1e6:.2f} MB "
        f"in {int(statistics.median(counts))} responses"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loads", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "inputs").mkdir(parents=True)
        shutil.copy(ASSETS / "astronaut.png", data / "inputs" / "astronaut.png")
        server = Server(data).start()
        try:
            bench_routes(server, args.jobs, args.rounds)
            if args.loads:
                bench_editor(server, args.loads, Path(tmp))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
