"""Helpers shared by the tests (importable as `support`: pytest puts tests/ on sys.path).

paths: where the checkout, the test images, the bundled graphs and the test plugins are.
cli_runner: run the real `nodeflow` command in a subprocess.
server_harness: the real server (`python server.py`) in a subprocess, and HTTP helpers.
inprocess: the API in-process (FastAPI's TestClient on create_app).
engine_nodes: small nodes for engine tests (importing it registers them).
nst_graphs: tiny style-transfer graphs and a runner.
sd_fixture: a tiny random Stable Diffusion pipeline, saved as a diffusers folder.
ray_cluster, ray_scenario: a Ray cluster in a loopback-only namespace, and what runs in it.
plugins/: node modules a test server loads through $NODEFLOW_PLUGINS (not a package).
"""
