"""Health: liveness, version, queue counts and the memory cache (open without a token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from nodeflow import __version__

from .. import models as m
from ..deps import Config, Pool, Store

router = APIRouter(tags=["health"])


@router.get("/health", response_model=m.Health)
def health(config: Config, store: Store, pool: Pool) -> Any:
    return m.Health(
        status="ok",
        version=__version__,
        workers=config.workers,
        jobs=store.counts(),
        auth=config.token is not None,
        memory_cache=pool.memory_cache_stats(),
    )
