"""ComfyUI route benchmark: submit-to-done of one small graph through POST /prompt (the
ComfyUI adapter) against POST /jobs (nodeflow's own API, the baseline), interleaved; and
the web editor's first load and reload in headless Chromium (time, bytes over the wire,
responses, cache hits) against the same server with its editor files served plain
($NODEFLOW_EDITOR_CACHING=0: no compression, no cache headers), interleaved.

    .venv/bin/python bench/comfy.py [--jobs 30] [--rounds 3] [--loads 3] [--mbit 100]   # --rounds 0: editor only

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
import os
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

from browser import ARGS, CHROMIUM  # noqa: E402
from server_harness import ASSETS, Server  # noqa: E402

from nodeflow.comfy.translate import graph_to_prompt  # noqa: E402

ARGS_OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
OUTSIDE: list[str] = []  # requests for other hosts than the server's


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


class Load:
    """What one page load took: seconds until the default graph is on the canvas, and per the
    browser's network log (Chrome DevTools protocol): bytes over the wire (headers and
    encoded bodies), responses, those served from the browser's cache, and 304s."""

    def __init__(self, page):
        self.page = page
        self.seconds = 0.0
        self.bytes = 0
        self.responses = 0
        self.cached: set[str] = set()
        self.not_modified = 0
        self.sizes: dict[str, int] = {}  # url -> bytes over the wire
        self.urls: dict[str, str] = {}

    def listen(self, cdp) -> None:
        """Count this page's network events here from now on (the previous Load stops counting)."""
        cdp.load = self
        if not getattr(cdp, "listening", False):
            cdp.listening = True
            cdp.on("Network.loadingFinished", lambda e: cdp.load.finished(e))
            cdp.on("Network.responseReceived", lambda e: cdp.load.received(e))
            cdp.on("Network.requestServedFromCache", lambda e: cdp.load.cached.add(e["requestId"]))

    def finished(self, event: dict) -> None:
        size = int(event.get("encodedDataLength") or 0)
        self.bytes += size
        self.sizes[self.urls.get(event["requestId"], event["requestId"])] = size

    def received(self, event: dict) -> None:
        response = event["response"]
        if response["url"].startswith("data:"):
            return
        self.responses += 1
        self.urls[event["requestId"]] = response["url"]
        if response.get("fromDiskCache") or response.get("fromMemoryCache"):
            self.cached.add(event["requestId"])
        if response.get("status") == 304:
            self.not_modified += 1

    def run(self, action) -> Load:
        t0 = time.perf_counter()
        action()
        self.page.wait_for_function("window.app && app.graph && app.graph._nodes.length > 0", timeout=120_000)
        self.seconds = time.perf_counter() - t0
        self.page.wait_for_timeout(1000)  # the requests the editor makes once it is up
        return self


def editor_loads(p, server: Server, profile: Path, mbit: float = 0) -> tuple[Load, Load]:
    """A first visit (fresh profile: nothing cached) and then a reload of the same page."""
    context = p.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=ARGS + ARGS_OFFLINE,
        viewport={"width": 1600, "height": 1000},
    )
    try:
        page = context.new_page()
        local = server.url
        # No page.route here: routing turns the browser's HTTP cache off. Other hosts don't
        # resolve (ARGS_OFFLINE); any request for one is recorded.
        page.on("request", lambda r: r.url.startswith((local, "data:", "blob:")) or OUTSIDE.append(r.url))
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        if mbit:  # a network link of this speed and 2 ms each way instead of loopback
            rate = mbit * 1e6 / 8
            cdp.send(
                "Network.emulateNetworkConditions",
                {"offline": False, "latency": 4, "downloadThroughput": rate, "uploadThroughput": rate},
            )
        first, again = Load(page), Load(page)
        first.listen(cdp)
        first.run(lambda: page.goto(local + "/"))
        again.listen(cdp)
        again.run(page.reload)
        if os.environ.get("BENCH_VERBOSE"):
            for url, size in sorted(again.sizes.items(), key=lambda kv: -kv[1])[:12]:
                print(f"    reload {server.url}: {size:9d} {url}")
        return first, again
    finally:
        context.close()


def bench_editor(baseline: Server, fast: Server, loads: int, tmp: Path, mbit: float = 0) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("editor load: skipped (no playwright)")
        return
    results: dict[str, list[tuple[Load, Load]]] = {"baseline": [], "fast": []}
    servers = {"baseline": baseline, "fast": fast}
    with sync_playwright() as p:
        for name, server in servers.items():  # untimed: the server's imports, the gzip copies made once
            editor_loads(p, server, tmp / f"warm-{name}")
        for n in range(loads):  # interleaved, a fresh profile each time
            for name, server in servers.items():
                results[name].append(editor_loads(p, server, tmp / f"profile-{name}-{n}", mbit))

    def med(name: str, which: int, attr: str) -> float:
        return statistics.median(getattr(pair[which], attr) for pair in results[name])

    def cached(name: str, which: int) -> float:
        return statistics.median(len(pair[which].cached) for pair in results[name])

    link = f"a {mbit:g} Mbit/s link (emulated)" if mbit else "loopback"
    print(f"editor load in Chromium over {link}, {loads} fresh profiles per server, medians (baseline: plain files):")
    for which, label in ((0, "first load"), (1, "reload")):
        for name in ("baseline", "fast"):
            print(
                f"  {label:10s} {name:8s}: {med(name, which, 'seconds'):6.2f} s, "
                f"{med(name, which, 'bytes') / 1e6:6.2f} MB over the wire in {med(name, which, 'responses'):.0f} "
                f"responses ({cached(name, which):.0f} from the browser cache, "
                f"{med(name, which, 'not_modified'):.0f} not modified)"
            )
        b, f = med("baseline", which, "bytes"), med("fast", which, "bytes")
        tb, tf = med("baseline", which, "seconds"), med("fast", which, "seconds")
        print(f"  {label:10s} ratio fast : baseline: bytes {f / b:.3f}x, time {tf / tb:.3f}x")
    print(f"  requests for other hosts than the server: {len(OUTSIDE)}", *sorted(set(OUTSIDE)), sep="\n    ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--mbit", type=float, default=0, help="editor loads over an emulated link of this speed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("data", "plain"):
            (Path(tmp) / name / "inputs").mkdir(parents=True)
            shutil.copy(ASSETS / "astronaut.png", Path(tmp) / name / "inputs" / "astronaut.png")
        server = Server(Path(tmp) / "data").start()
        baseline = None
        try:
            if args.rounds:
                bench_routes(server, args.jobs, args.rounds)
            if args.loads:
                # The same server with the editor's files served plain: no compression, no cache headers.
                baseline = Server(Path(tmp) / "plain", env={"NODEFLOW_EDITOR_CACHING": "0"}).start()
                bench_editor(baseline, server, args.loads, Path(tmp), args.mbit)
        finally:
            server.stop()
            if baseline is not None:
                baseline.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
