"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.services import Services

__all__ = ["healthz", "metrics", "readyz"]


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(coro: Any, timeout: float = 1.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return bool(await coro)
    except Exception:  # noqa: BLE001 - any failure of a dependency means: not ready
        return False


async def _database(services: Services) -> bool:
    async with services.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
    return True


@get("/readyz")
async def readyz(state: State) -> Response[dict[str, Any]]:
    services: Services = state.services
    checks = {
        "database": await _check(_database(services)),
        "limiter": await _check(services.limiter.ready()),
        "policy": await _check(services.policy.ready()),
        "audit": await _check(services.audit.ready()),
    }
    if services.pii is not None:
        checks["pii"] = await _check(services.pii.ready())
    ok = all(checks.values())
    return Response(
        {"status": "ready" if ok else "not_ready", "checks": checks},
        status_code=200 if ok else 503,
    )


@get("/metrics")
async def metrics(state: State) -> Response[bytes]:
    services: Services = state.services
    return Response(
        generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST.split(";")[0]
    )
