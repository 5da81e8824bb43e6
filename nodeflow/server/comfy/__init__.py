"""ComfyUI compatibility: nodeflow speaks ComfyUI's HTTP and WebSocket protocol, so the
official ComfyUI frontend (the optional `comfyui-frontend-package`) and ComfyUI API scripts
drive nodeflow's own engine.

Everything here translates and delegates: prompts become nodeflow graphs, validated by the
planner and queued in the one persistent job store; the worker runs them; the event broker's
messages become ComfyUI's. There is no second queue, executor or cache.

The formats (nodeflow/comfy/: catalogue, translate, workflow, convert, errors, history,
events) import only nodeflow's engine, so the CLI and the Save node use them without the
server's dependencies. Here, the routers the app includes:

  routes.py     ComfyUI's HTTP routes (/prompt, /queue, /history, /object_info, /view, /upload/image, ...)
  userdata.py   the editor's user data (/userdata: saved workflows, the bundled graphs' workflows)
  frontend.py   the editor's start-up routes (settings, templates, ...); editor_router(): its static files
  websocket.py  WS /ws: ComfyUI's message stream
  files.py      files as ComfyUI names them (input/output folder, subfolder, annotations)
"""
