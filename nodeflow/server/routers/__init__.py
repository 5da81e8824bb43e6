"""The HTTP API's routes, one APIRouter per concern; services come from ..deps.

  jobs.py       POST/GET /jobs, /jobs/{id}, its cancel and its outputs
  groups.py     /groups/{id} (sweeps) and their contact sheets
  progress.py   SSE /jobs/{id}/events and /events, WebSocket /jobs/ws
  inputs.py     POST /uploads
  catalogue.py  /nodes, /schema, /graphs
  health.py     /health
  login.py      /login, /logout (a browser session for the web editor)

ComfyUI's routes are routers of ../comfy/.
"""
