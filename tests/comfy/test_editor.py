"""The official ComfyUI editor (comfyui-frontend-package) against nodeflow, in headless
Chromium driven by Playwright: it starts offline without a failed request, a console error or
a request for another host; runs the bundled edges graph and shows the result on the Save
node, loads a graph from an output PNG, outlines an invalid node, and shows the optimizer's
previews while style transfer runs; opens every template with no two nodes overlapping; runs
a subgraph built in the editor (its progress, previews and errors on the inner nodes); and
runs only the selected output nodes.
Screenshots of each check are kept in the test's tmp folder."""

from __future__ import annotations

import importlib.util
import json
import struct

import pytest
from support.browser import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None or not CHROMIUM.exists(),
        reason="needs Playwright's Python package and /usr/bin/chromium",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("comfyui_frontend_package") is None,
        reason="needs the [ui] extra (comfyui-frontend-package)",
    ),
]


@pytest.fixture(scope="module")
def server(live_server):
    """The shared live server: its inputs hold astronaut.png and starry_night.jpg."""
    return live_server


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        yield context
        context.close()


class Editor:
    """One page on the editor, offline: every request for another host than the server is
    recorded, then refused. Records failed requests, console errors and WebSocket frames."""

    def __init__(self, context, server):
        self.page = context.new_page()
        self.failures: list[str] = []
        self.outside: list[str] = []
        self.console_errors: list[str] = []
        self.frames: list[str | bytes] = []
        self.posted: list[dict] = []
        local = f"http://127.0.0.1:{server.port}"

        def route(route):
            if route.request.url.startswith(local):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        def request(r):
            if r.method == "POST" and r.url.startswith(local) and r.url.endswith("/prompt"):
                self.posted.append(json.loads(r.post_data or "{}"))

        self.page.route("**/*", route)
        self.page.on("request", request)
        self.page.on("requestfailed", lambda r: self.failures.append(f"failed {r.url}"))
        self.page.on("response", lambda r: r.status >= 400 and self.failures.append(f"{r.status} {r.url}"))
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: self.frames.append(frame)))
        self.page.goto(local + "/")
        self.page.wait_for_function("window.app && app.graph && app.graph._nodes.length > 0", timeout=90_000)

    def startup_failures(self) -> list[str]:
        return self.failures + [f"outside {url}" for url in self.outside]

    def messages(self, kind: str) -> list[dict]:
        out = []
        for frame in self.frames:
            if isinstance(frame, str):
                m = json.loads(frame)
                if m.get("type") == kind:
                    out.append(m["data"])
        return out

    def preview_nodes(self) -> list[str]:
        """The nodes named by the type-4 preview frames received so far."""
        out = []
        for frame in self.frames:
            if isinstance(frame, bytes) and frame[:4] == b"\x00\x00\x00\x04":
                (size,) = struct.unpack(">I", frame[4:8])
                out.append(json.loads(frame[8 : 8 + size])["node_id"])
        return out

    def run(self) -> None:
        self.page.get_by_role("button", name="Run", exact=True).first.click()

    def node_types(self) -> set[str]:
        return set(self.page.evaluate("app.graph._nodes.map(n => n.type)"))


def test_the_editor_opens_on_edges_runs_it_and_shows_the_result(browser, server, tmp_path):
    editor = Editor(browser, server)
    assert editor.node_types() == {"LoadImage", "Sobel", "HighPass", "Grid", "Save"}  # the default workflow
    editor.page.wait_for_timeout(3000)  # the requests the editor makes once it is up
    # Offline by default: no failed request, no console error, nothing asked of another host.
    assert editor.outside == []
    assert editor.failures == []
    assert editor.console_errors == []
    # The bundled graphs are templates, and in the workflow browser.
    editor.page.get_by_text("Templates", exact=True).first.click()
    editor.page.get_by_text("Neural style transfer: tiny test run").first.wait_for(timeout=30_000)
    editor.page.screenshot(path=str(tmp_path / "templates.png"))
    editor.page.keyboard.press("Escape")
    editor.page.get_by_text("Workflows", exact=True).first.click()
    editor.page.get_by_text("nodeflow", exact=True).first.wait_for(timeout=30_000)
    editor.page.get_by_text("Workflows", exact=True).first.click()
    assert editor.startup_failures() == []
    editor.run()
    editor.page.wait_for_function(
        "(() => { const n = app.graph._nodes.find(n => n.type === 'Save');"
        " return n && n.imgs && n.imgs.length > 0 && n.imgs[0].complete && n.imgs[0].naturalWidth > 0 })()",
        timeout=120_000,
    )
    src = editor.page.evaluate("app.graph._nodes.find(n => n.type === 'Save').imgs[0].src")
    assert "filename=edges.png" in src and "type=output" in src
    editor.page.screenshot(path=str(tmp_path / "edges_result.png"))
    assert editor.startup_failures() == []

    # Dropping the output PNG on the editor loads its graph (the workflow chunk Save wrote).
    editor.page.evaluate(
        """async (src) => {
        const blob = await (await fetch(src)).blob();
        app.graph.clear();
        window.dropped = app.handleFile(new File([blob], 'edges.png', {type: 'image/png'}));
    }""",
        src,
    )
    editor.page.wait_for_function("app.graph._nodes.length === 6", timeout=30_000)
    loaded = sorted(editor.page.evaluate("app.graph._nodes.map(n => n.type)"))
    assert loaded == ["Grid", "HighPass", "HighPass", "LoadImage", "Save", "Sobel"]

    # An invalid graph is refused by the planner and the node is outlined, its input named.
    sobel = editor.page.evaluate("""() => {
        const s = app.graph._nodes.find(n => n.type === 'Sobel'); s.disconnectInput(0); return String(s.id) }""")
    editor.run()
    editor.page.wait_for_function(f"app.lastNodeErrors && app.lastNodeErrors['{sobel}']", timeout=30_000)
    error = editor.page.evaluate(f"app.lastNodeErrors['{sobel}'].errors[0]")
    assert error["type"] == "required_input_missing" and error["extra_info"]["input_name"] == "image"
    assert editor.page.evaluate(f"app.graph.getNodeById({sobel}).has_errors") is True
    editor.page.screenshot(path=str(tmp_path / "edges_error.png"))
    editor.page.close()


def test_style_transfer_previews_reach_the_page(browser, server, tmp_path):
    editor = Editor(browser, server)
    optimizer_id = editor.page.evaluate("""async () => {
        const workflow = await (await fetch('/templates/nst_quick.json')).json();
        await app.loadGraphData(workflow);
        const opt = app.graph._nodes.find(n => n.type === 'AdamOptimize');
        opt.widgets.find(w => w.name === 'steps').value = 12;
        opt.widgets.find(w => w.name === 'preview_every').value = 1;
        return String(opt.id);
    }""")
    editor.run()
    editor.page.wait_for_function(f"app.nodePreviewImages && app.nodePreviewImages['{optimizer_id}']", timeout=300_000)
    editor.page.wait_for_timeout(500)
    editor.page.screenshot(path=str(tmp_path / "nst_preview.png"))
    previews = [f for f in editor.frames if isinstance(f, bytes)]
    assert previews and previews[0][:4] == b"\x00\x00\x00\x04"  # preview frames with their node
    editor.page.wait_for_function(
        "app.graph._nodes.filter(n => n.type === 'Save').every(n => n.imgs && n.imgs.length && n.imgs[0].complete)",
        timeout=300_000,
    )
    editor.page.screenshot(path=str(tmp_path / "nst_done.png"))
    editor.page.close()


# The rectangles the editor draws, title bars included, once it has sized each node.
RECTS = """() => app.graph._nodes.map(n => ({
    id: `${n.type}#${n.id}`,
    rect: [n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT, n.size[0], n.size[1] + LiteGraph.NODE_TITLE_HEIGHT],
}))"""


def overlapping(rects: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(rects):
        ax, ay, aw, ah = a["rect"]
        for b in rects[i + 1 :]:
            bx, by, bw, bh = b["rect"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((a["id"], b["id"]))
    return out


def test_every_template_opens_with_no_two_nodes_overlapping(browser, server, tmp_path):
    editor = Editor(browser, server)
    names = editor.page.evaluate(
        "async () => (await (await fetch('/templates/index.json')).json())[0].templates.map(t => t.name)"
    )
    assert len(names) >= 7
    for name in names:
        editor.page.evaluate(
            "async (name) => app.loadGraphData(await (await fetch(`/templates/${name}.json`)).json())", name
        )
        editor.page.wait_for_timeout(300)
        editor.page.screenshot(path=str(tmp_path / f"template_{name}.png"))  # at the view the workflow opens with
        rects = editor.page.evaluate(RECTS)
        assert len(rects) >= 5 and overlapping(rects) == [], name
        # Every node is in view: the whole graph fits the canvas at the zoom it opens with.
        inside = editor.page.evaluate("""() => { const c = app.canvas, r = c.visible_area;
            return app.graph._nodes.every(n => n.pos[0] >= r[0] && n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT >= r[1]
              && n.pos[0] + n.size[0] <= r[0] + r[2] && n.pos[1] + n.size[1] <= r[1] + r[3]) }""")
        assert inside, name
    assert editor.startup_failures() == []
    editor.page.close()


def test_a_subgraph_built_in_the_editor_runs_with_progress_previews_and_errors_on_its_inner_nodes(
    browser, server, tmp_path
):
    editor = Editor(browser, server)
    # On the default edges graph: LoadImage -> SlowInvert -> a new Save; then Sobel, a
    # HighPass and the SlowInvert become a subgraph, as "Convert Selection to Subgraph" does.
    built = editor.page.evaluate("""async () => {
        await app.loadGraphData(await (await fetch('/templates/edges.json')).json());
        const g = app.graph, c = app.canvas;
        const load = g._nodes.find(n => n.type === 'LoadImage');
        const slow = LiteGraph.createNode('SlowInvert'); g.add(slow);
        slow.widgets.find(w => w.name === 'steps').value = 3;
        slow.widgets.find(w => w.name === 'delay').value = 0.3;
        const save = LiteGraph.createNode('Save'); g.add(save);
        save.widgets.find(w => w.name === 'filename').value = 'subgraph_inverted.png';
        load.connect(0, slow, 0); slow.connect(0, save, 0);
        c.deselectAll();
        for (const n of [g._nodes.find(n => n.type === 'Sobel'), g._nodes.find(n => n.type === 'HighPass'), slow])
            c.select(n);
        await app.extensionManager.command.execute('Comfy.Graph.ConvertToSubgraph');
        const sub = g._nodes.find(n => n.isSubgraphNode && n.isSubgraphNode());
        const inner = Object.fromEntries(sub.subgraph.nodes.map(n => [n.type, String(n.id)]));
        const prompt = (await app.graphToPrompt()).output;
        return {sub: String(sub.id), inner, save: String(save.id), ids: Object.keys(prompt)};
    }""")
    sub, inner = built["sub"], built["inner"]
    assert set(inner) == {"Sobel", "HighPass", "SlowInvert"}
    slow_id = f"{sub}:{inner['SlowInvert']}"
    assert {slow_id, f"{sub}:{inner['Sobel']}", f"{sub}:{inner['HighPass']}"} <= set(built["ids"])
    assert sub not in built["ids"]  # the subgraph node itself is flattened away

    editor.run()
    editor.page.wait_for_function(
        f"""(() => {{ const n = app.graph.getNodeById({built["save"]});
            return n && n.imgs && n.imgs.length > 0 && n.imgs[0].complete && n.imgs[0].naturalWidth > 0 }})()""",
        timeout=120_000,
    )
    editor.page.screenshot(path=str(tmp_path / "subgraph_result.png"))
    assert slow_id in [m["node"] for m in editor.messages("executing")]
    assert slow_id in [m["node"] for m in editor.messages("progress")]
    assert slow_id in editor.preview_nodes()
    executed = {m["node"]: m["output"] for m in editor.messages("executed")}
    assert executed[built["save"]]["images"][0]["filename"] == "subgraph_inverted.png"
    assert editor.page.evaluate("Object.keys(app.nodePreviewImages || {})"), "the previews reached the page"

    # An inner node's error is outlined on that node, inside the subgraph.
    editor.page.evaluate(f"""() => {{
        const sub = app.graph.getNodeById({sub});
        sub.subgraph.getNodeById({inner["Sobel"]}).disconnectInput(0) }}""")
    editor.run()
    sobel_id = f"{sub}:{inner['Sobel']}"
    editor.page.wait_for_function(f"app.lastNodeErrors && app.lastNodeErrors['{sobel_id}']", timeout=30_000)
    error = editor.page.evaluate(f"app.lastNodeErrors['{sobel_id}'].errors[0]")
    assert error["type"] == "required_input_missing" and error["extra_info"]["input_name"] == "image"
    assert (
        editor.page.evaluate(f"app.graph.getNodeById({sub}).subgraph.getNodeById({inner['Sobel']}).has_errors") is True
    )
    editor.page.screenshot(path=str(tmp_path / "subgraph_error.png"))
    assert editor.outside == []
    assert [f for f in editor.failures if not f.endswith("/api/prompt")] == []  # the refused prompt's 400 only
    editor.page.close()


def test_running_selected_outputs_runs_only_what_they_need(browser, server, tmp_path):
    editor = Editor(browser, server)
    ids = editor.page.evaluate("""async () => {
        await app.loadGraphData(await (await fetch('/templates/edges.json')).json());
        const g = app.graph, c = app.canvas;
        const sobel = g._nodes.find(n => n.type === 'Sobel');
        const save = LiteGraph.createNode('Save'); g.add(save);
        save.widgets.find(w => w.name === 'filename').value = 'selected_sobel_x.png';
        sobel.connect(1, save, 0);
        c.deselectAll(); c.select(save);
        const other = g._nodes.find(n => n.type === 'Save' && n !== save);
        await app.extensionManager.command.execute('Comfy.QueueSelectedOutputNodes');
        return {save: String(save.id), other: String(other.id)};
    }""")
    editor.page.wait_for_function(
        f"""(() => {{ const n = app.graph.getNodeById({ids["save"]});
            return n && n.imgs && n.imgs.length > 0 && n.imgs[0].complete }})()""",
        timeout=120_000,
    )
    assert editor.posted[-1]["partial_execution_targets"] == [ids["save"]]
    ran = {m["node"] for m in editor.messages("executing") if m["node"]}
    ran |= {n for m in editor.messages("execution_cached") for n in m["nodes"]}
    prompt = editor.posted[-1]["prompt"]
    assert ids["other"] not in ran  # the other Save, and what only it needs, never ran
    assert {cid for cid, n in prompt.items() if n["class_type"] in ("Grid", "HighPass")}.isdisjoint(ran)
    assert editor.page.evaluate(f"app.graph.getNodeById({ids['other']}).imgs?.length ?? 0") == 0
    editor.page.screenshot(path=str(tmp_path / "selected_outputs.png"))
    assert editor.startup_failures() == []
    editor.page.close()
