"""The HTTP API (`nodeflow serve`, `python server.py`). Needs the `server` extra:
fastapi, uvicorn, python-multipart. Nothing outside this package imports it."""
