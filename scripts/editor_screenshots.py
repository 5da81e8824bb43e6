"""Opens every bundled template in the web editor (headless Chromium), fits it to the view
as the editor does on load, saves a screenshot of each and prints the node rectangles the
editor draws, with any two that overlap.

    python scripts/editor_screenshots.py OUT_DIR [--width 1600 --height 1000] [name ...]

Starts a real server (python server.py) on a free loopback port with a fresh data dir;
every request that would leave 127.0.0.1 is recorded and aborted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "tests"), str(ROOT)]

from browser import ARGS, CHROMIUM  # noqa: E402
from server_harness import ASSETS, Server  # noqa: E402

# The rectangles the editor draws, title bar included ([x, y, w, h] in canvas units).
RECTS = """() => app.graph._nodes.map(n => {
    const th = LiteGraph.NODE_TITLE_HEIGHT;
    return {id: String(n.id), type: n.type, rect: [n.pos[0], n.pos[1] - th, n.size[0], n.size[1] + th]};
})"""


def overlaps(rects: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            ax, ay, aw, ah = a["rect"]
            bx, by, bw, bh = b["rect"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((f"{a['type']}#{a['id']}", f"{b['type']}#{b['id']}"))
    return out


def shoot(page, url: str, name: str, out: Path) -> dict:
    page.evaluate(
        """async (name) => {
        const wf = await (await fetch('/templates/' + name + '.json')).json();
        await app.loadGraphData(wf);
    }""",
        name,
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / f"{name}.png"))
    rects = page.evaluate(RECTS)
    return {"name": name, "rects": rects, "overlaps": overlaps(rects)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "inputs").mkdir(parents=True)
        for name in ("astronaut.png", "starry_night.jpg"):
            shutil.copy(ASSETS / name, data / "inputs" / name)
        server = Server(data).start()
        outside: list[str] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.route(
                    "**/*",
                    lambda r: (
                        r.continue_()
                        if r.request.url.startswith(server.url)
                        else (outside.append(r.request.url), r.abort())
                    ),
                )
                page.goto(server.url + "/")
                page.wait_for_function("window.app && app.graph && app.graph._nodes.length > 0", timeout=120_000)
                names = args.names or page.evaluate(
                    "async () => (await (await fetch('/templates/index.json')).json())[0].templates.map(t => t.name)"
                )
                report = [shoot(page, server.url, name, args.out) for name in names]
                browser.close()
        finally:
            server.stop()
    for r in report:
        print(f"{r['name']}: {len(r['rects'])} nodes, overlaps: {r['overlaps'] or 'none'}")
    (args.out / "rects.json").write_text(json.dumps(report, indent=1))
    if outside:
        print("requests that would leave the server:", *sorted(set(outside)), sep="\n  ")
    return 1 if any(r["overlaps"] for r in report) else 0


if __name__ == "__main__":
    sys.exit(main())
