"""Planning a job's request: the one validation path, at submit (the HTTP API, ComfyUI's
/prompt, a sweep's every variation) and again when a worker (here or a Ray actor) runs it;
and a run's result summarised as the job store keeps it."""

from __future__ import annotations

from typing import Any

from nodeflow.context import Checkpoints, Settings
from nodeflow.executor import RunResult
from nodeflow.graph import parse_graph
from nodeflow.jobs.broadcast import TEMP_MARK, relative_name
from nodeflow.jobs.config import ServerConfig
from nodeflow.jobs.policy import check_plan
from nodeflow.plan import Plan
from nodeflow.sweeps.sweep import tag_settings
from nodeflow.validate import plan_graph


def job_settings(config: ServerConfig, job_id: str) -> Settings:
    """Every path a job's graph names is confined to the input dir and its own output dir;
    its long nodes checkpoint into the job's checkpoint folder."""
    return Settings(
        input_dir=config.input_dir,
        output_dir=config.job_output_dir(job_id),
        temp_dir=config.job_temp_dir(job_id),
        confine_paths=True,
        checkpoints=Checkpoints(config.checkpoint_dir(job_id)),
    )


def has_checkpoint(config: ServerConfig, job_id: str) -> bool:
    """Whether a job holds a checkpoint to resume from."""
    folder = config.checkpoint_dir(job_id)
    return folder.is_dir() and any(folder.glob("*.ckpt"))


def plan_request(config: ServerConfig, job_id: str, request: dict[str, Any]) -> Plan:
    """The one validation path, at submit and again when the job runs. Raises GraphInvalid.
    A sweep's job carries its values ("sweep"): they tag its output files."""
    settings = tag_settings(job_settings(config, job_id), request.get("sweep"))
    plan = plan_graph(
        lambda: parse_graph(request["graph"]),
        request.get("overrides") or {},
        settings=settings,
        only=request.get("only") or None,
        available=config.devices,
    )
    check_plan(plan, config.allow_downloads)
    return plan


def summarize(job_id: str, result: RunResult, out_dir: Any, temp_dir: Any = None) -> dict[str, Any]:
    nodes, outputs = {}, []
    for nid, r in result.nodes.items():
        names = [relative_name(p, out_dir, temp_dir) for p in r.outputs]
        nodes[nid] = {
            "state": r.state,
            "cached": r.state == "cached",
            "source": r.source,
            "seconds": round(r.seconds, 4),
            "device": r.device,
            "error": r.error,
            "outputs": names,
        }
        # Previews in the temp folder are no job output: only ComfyUI's history lists them.
        kept = [n for n in names if not n.endswith(TEMP_MARK)]
        outputs += [{"node": nid, "name": n, "url": f"/jobs/{job_id}/outputs/{n}"} for n in kept]
    error = None
    if result.error is not None:
        e = result.error
        error = {"message": str(e), "node": e.node, "type": e.node_type, "input": e.input}
    return {"nodes": nodes, "outputs": outputs, "error": error, "seconds": round(result.seconds, 4)}
