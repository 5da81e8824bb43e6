"""ComfyUI compatibility: nodeflow speaks ComfyUI's HTTP and WebSocket protocol, so the
official ComfyUI frontend (the optional `comfyui-frontend-package`) and ComfyUI API scripts
drive nodeflow's own engine.

Everything here translates and delegates: prompts become nodeflow graphs, validated by the
planner and queued in the one persistent job store; the worker runs them; the event broker's
messages become ComfyUI's. There is no second queue, executor or cache.

  catalogue.py  node schemas -> object_info
  translate.py  API-format prompts <-> graphs, id maps, output indices
  workflow.py   editor workflows (LiteGraph JSON) <-> graphs
  convert.py    files: `nodeflow convert`
  errors.py     planner issues -> node_errors
  history.py    jobs -> history entries, queue items, /api/jobs items
  events.py     broker messages -> WebSocket messages and binary preview frames
  frontend.py   the editor's static files and its start-up routes
  routes.py     the HTTP routes; websocket.py: /ws

The translation modules import only nodeflow's engine, so the CLI and the Save node can use
them without the server's dependencies.
"""
