"""Run the server's jobs on a Ray cluster (`nodeflow serve --ray ADDRESS`).

The server keeps the one queue (the job store), the API and every output file.
Each worker thread that claims a job hands its "run this plan" step to a Ray actor:
a nodeflow worker process with its own Executor (memory cache, disk cache on its
machine) and model caches, kept warm between jobs. Ray is imported only in this
package, and only when --ray is given.
"""

from nodeflow.ray_backend.backend import RayBackend

__all__ = ["RayBackend"]
