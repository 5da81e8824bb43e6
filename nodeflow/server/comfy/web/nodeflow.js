// nodeflow's own editor extension (MIT, like the rest of nodeflow; the editor itself is the
// separate GPL-3.0 comfyui-frontend-package). The editor falls back to its built-in default
// graph when it has no workflow to restore; nodeflow's is a bundled graph instead.
import { app } from "/scripts/app.js";

app.registerExtension({
  name: "nodeflow.defaultWorkflow",
  async setup() {
    let fallback = null;
    try {
      const reply = await fetch("/templates/default.json", { cache: "no-store" });
      if (reply.ok) fallback = await reply.json();
    } catch (err) {
      console.warn("nodeflow: no default workflow", err);
    }
    if (!fallback) return;
    const load = app.loadGraphData.bind(app);
    app.loadGraphData = (graph, ...rest) => load(graph ?? structuredClone(fallback), ...rest);
  },
});
