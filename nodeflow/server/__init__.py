"""The HTTP API (`nodeflow serve`, `python server.py`). Needs the `server` extra:
fastapi, uvicorn, python-multipart. Nothing outside this package imports it: the CLI finds
`serve` through the `nodeflow.commands` entry point.

  command.py      the serve options and run function, shared by `nodeflow serve` and server.py
  app.py          create_app: assembles the middleware, lifespan, OpenAPI document and routers
  services.py     the shared services on app.state, and the lifespan that opens and closes them
  deps.py         the services as FastAPI dependencies (Annotated aliases: Config, Store, Pool, ...)
  routers/        the native API, one APIRouter per concern (jobs, groups, progress, inputs, ...)
  comfy/          ComfyUI's protocol and the web editor, as routers
  handlers.py     exception handlers: {"error", "message"} answers, 422 issue lists
  models.py       the request and response models
  openapi_doc.py  the OpenAPI document: node types' inputs, the token scheme, middleware answers
  auth.py         bearer-token and session-cookie auth, body limits (ASGI middleware)
  origin.py       Host allowlist and Origin checks (ASGI middleware)
  jsonguard.py    strict JSON bodies (ASGI middleware)
  uploads.py      checking and storing uploaded images
"""
